"""The seed README's snippets run with only the import line changed (``from xcs import ...``)."""

from __future__ import annotations


from xcs import Operator, create_scheduler, dump, execution_options, jit


def process(data):
    return data.upper() if isinstance(data, str) else data


def test_simple_usage_with_automatic_strategy():
    @jit
    class MyOperator(Operator):
        def forward(self, *, inputs):
            return {"result": process(inputs["data"])}

    op = MyOperator()
    assert op(inputs={"data": "abc"}) == {"result": "ABC"}
    assert op(inputs={"data": "xyz"}) == {"result": "XYZ"}


def test_parameterized_usage_with_sample_input_compiles_at_construction():
    calls = []

    class SubOperator1(Operator):
        def forward(self, *, inputs):
            calls.append("op1")
            return {"query": inputs["query"] + "!"}

    class SubOperator2(Operator):
        def forward(self, *, inputs):
            calls.append("op2")
            return {"answer": inputs["query"].upper()}

    @jit(mode="trace", sample_input={"query": "example"})
    class CompositeOperator(Operator):
        def __init__(self):
            self.op1 = SubOperator1()
            self.op2 = SubOperator2()

        def forward(self, *, inputs):
            intermediate = self.op1(inputs=inputs)
            return self.op2(inputs=intermediate)

    op = CompositeOperator()
    assert calls == ["op1", "op2"]  # the sample ran at construction
    assert op(inputs={"query": "hi"}) == {"answer": "HI!"}
    assert calls == ["op1", "op2", "op1", "op2"]


def test_parameterized_usage_with_the_enhanced_strategy_compiles_ahead_of_time():
    calls = []

    class SubOperator1(Operator):
        def forward(self, *, inputs):
            calls.append("op1")
            return {"query": inputs["query"] + "?"}

    class SubOperator2(Operator):
        def forward(self, *, inputs):
            calls.append("op2")
            return {"answer": inputs["query"].lower()}

    @jit(mode="enhanced", sample_input={"query": "example"})
    class CompositeOperator(Operator):
        def __init__(self):
            self.op1 = SubOperator1()
            self.op2 = SubOperator2()

        def forward(self, *, inputs):
            intermediate = self.op1(inputs=inputs)
            return self.op2(inputs=intermediate)

    op = CompositeOperator()
    assert calls == []  # compiled at construction, and nothing ran
    assert "strategy: enhanced" in dump(op, {"query": "x"})
    assert op(inputs={"query": "HI"}) == {"answer": "hi?"}
    assert calls == ["op1", "op2"]


def test_execution_options_and_create_scheduler():
    @jit
    class MyOperator(Operator):
        def forward(self, *, inputs):
            return {"result": process(inputs["query"])}

    op = MyOperator()
    with execution_options(scheduler="wave", max_workers=4):
        results = op(inputs={"query": "example"})
    assert results == {"result": "EXAMPLE"}
    scheduler = create_scheduler("parallel", max_workers=8)
    with execution_options(scheduler=scheduler):
        assert op(inputs={"query": "again"}) == {"result": "AGAIN"}
