"""The ``verbatim_glue`` pass of ``enhanced``: glue is emitted as the user wrote it where a re-capture
proves the text computes the same graph, with the names it reads assigned first; everything else keeps
the IR's rendering. Outputs always equal eager execution."""

from __future__ import annotations

import json

import pytest

from xcs import Operator, dump, jit


class Echo(Operator):
    def forward(self, *, inputs):
        return {"text": ",".join(f"{k}={v}" for k, v in sorted(inputs.items()))}


class Written(Operator):
    def __init__(self):
        self.a = Echo()
        self.b = Echo()

    def forward(self, *, inputs):
        question = inputs["question"].strip()
        first = self.a(inputs={"prompt": f"Q: {question}"})["text"]
        listing = "\n".join(["- " + part for part in first.split(",")])
        return {"answer": self.b(inputs={"prompt": listing.upper(), "n": len(question)})["text"], "q": question}


class Fallbacks(Operator):
    def __init__(self):
        self.op = Echo()

    def forward(self, *, inputs):
        q = inputs["a"]
        x = q + "!"
        q = inputs["b"]
        first = self.op(inputs={"v": x, "w": q})
        dumped = json.dumps(inputs["a"], sort_keys=True)
        second = self.op(inputs={"d": dumped})
        spread = (
            inputs["a"]
            + inputs["b"]
        )
        third = self.op(inputs={"s": spread})
        built = [inputs["a"], inputs["b"]]
        fourth = self.op(inputs={"b": built[0] + ":" + built[1]})
        return {"texts": [first["text"], second["text"], third["text"], fourth["text"]]}


INPUTS = [{"question": "  Why is the sky blue? "}, {"question": "a,b"}, {"question": ""}]


def plan_of(op, inputs):
    return dump(jit(op, mode="enhanced", strict=True), inputs)


@pytest.mark.parametrize("inputs", INPUTS)
def test_outputs_equal_eager(inputs):
    assert jit(Written(), mode="enhanced", strict=True)(inputs=inputs) == Written()(inputs=inputs)


def test_the_plan_reads_like_the_source():
    text = plan_of(Written(), INPUTS[0])
    for line in (
        'return inputs["question"].strip()',  # hoisted: read by two steps
        "return ops.a(inputs={\"prompt\": f\"Q: {question}\"})",
        "first = a['text']",
        'listing = "\\n".join(["- " + part for part in first.split(",")])',
        'return ops.b(inputs={"prompt": listing.upper(), "n": len(question)})',
    ):
        assert line in text, line
    assert "return {'answer': b['text'], 'q': question}" in text  # the return text calls an operator: IR


@pytest.mark.parametrize("inputs", [{"a": "x", "b": "y"}, {"a": "", "b": "z"}])
def test_what_cannot_be_proven_keeps_the_ir_rendering(inputs):
    compiled = jit(Fallbacks(), mode="enhanced", strict=True)
    assert compiled(inputs=inputs) == Fallbacks()(inputs=inputs)
    text = plan_of(Fallbacks(), inputs)
    steps = text.split("\n\n\n")
    first, second, third, fourth = (next(s for s in steps if s.startswith(f"def {name}(")) for name in
                                    ("first", "second", "third", "fourth"))
    # x's text reads q when it held inputs["a"]; the call reads q holding inputs["b"]: x keeps the IR's
    # rendering, so each name holds one value in the step
    assert 'q = inputs["b"]\n    x = inputs["a"] + \'!\'\n    return ops.op(inputs={"v": x, "w": q})' in first
    assert "json.dumps(inputs['a'], sort_keys=True)" in second  # a module global the plan cannot see
    assert "inputs['a'] + inputs['b']" in third  # a text over several lines
    assert "inputs['a'] + ':' + inputs['b']" in fourth  # a list built in forward


def test_structural_capture_renders_from_the_ir():
    text = dump(jit(Written(), mode="structural", strict=True), INPUTS[0])
    assert "inputs['question'].strip()" in text and 'inputs["question"]' not in text


def test_dump_passes_lists_the_kept_expressions():
    from xcs import explain

    explanation = explain(Written(), INPUTS[0])
    assert any(name == "verbatim_glue" and summary.startswith("kept 4 expression(s) as written")
               for name, summary in explanation.passes), explanation.passes
