"""``Operator``: frozen after ``__init__``, sub-operator discovery, repr, call forms; the forms of ``jit``."""

from __future__ import annotations

import pytest

import corpus
from runtime.plan import Plan
from xcs import FrozenOperatorError, JitError, Operator, OperatorInputError, jit
from xcs.plans import PLANS, JittedFunction
from xcs.operator import is_operator, sub_operators

pytestmark = pytest.mark.usefixtures("fresh_plans")


class Pure(Operator):
    """A leaf without side effects (the corpus leaves count their calls, which a trace refuses)."""

    def __init__(self, name: str):
        self.name = name

    def forward(self, *, inputs):
        return {"answer": f"{self.name}:{inputs['query']}"}


class Deep(Operator):
    """Operators in attributes, lists, tuples, dicts and nested containers."""

    def __init__(self):
        self.solo = corpus.Echo("solo")
        self.members = [corpus.Echo("m0"), corpus.Echo("m1")]
        self.pair = (corpus.Upper("u"), corpus.Judge("j"))
        self.tools = {"search": corpus.Echo("s"), "nested": [corpus.Echo("n0")]}
        self.chain = corpus.Chain()
        self.settings = {"temperature": 0.5}
        self.label = "deep"

    def forward(self, *, inputs):
        return self.solo(inputs=inputs)


# ---------------------------------------------------------------------- frozen
def test_assignment_after_init_raises_naming_the_attribute():
    op = corpus.Chain()
    with pytest.raises(FrozenOperatorError, match=r"^Chain\.a: operators are frozen after __init__"):
        op.a = corpus.Upper()
    with pytest.raises(FrozenOperatorError, match=r"^Chain\.brand_new: operators are frozen"):
        op.brand_new = 1
    with pytest.raises(FrozenOperatorError, match=r"^Chain\.b: operators are frozen after __init__"):
        del op.b
    assert isinstance(op.a, corpus.Wrap)  # unchanged


def test_frozen_error_is_an_attribute_error():
    op = corpus.Echo("e")
    with pytest.raises(AttributeError):
        op.name = "other"
    assert op.name == "e"


def test_jitted_operators_stay_frozen():
    op = jit(Pure("e"))
    op(query="x")
    with pytest.raises(FrozenOperatorError, match=r"Pure\.name"):
        op.name = "f"


# ---------------------------------------------------------------------- discovery and repr
def test_sub_operators_have_stable_paths():
    paths = [path for path, _ in sub_operators(Deep())]
    assert paths == [
        "solo",
        "members[0]", "members[1]",
        "pair[0]", "pair[1]",
        "tools['search']", "tools['nested'][0]",
        "chain", "chain.a", "chain.b", "chain.c",
    ]
    assert [path for path, _ in sub_operators(Deep())] == paths  # the same on every construction


def test_sub_operator_paths_resolve_to_the_operators():
    from compiler.ir import resolve_static

    op = Deep()
    for path, child in sub_operators(op):
        assert resolve_static(op, path) is child


def test_repr_shows_the_tree():
    assert repr(corpus.Ensemble(2)) == "Ensemble\n  members[0]: Echo\n  members[1]: Echo\n  judge: Judge"
    lines = [line.strip() for line in repr(corpus.NestedJit()).splitlines()]
    assert lines == ["NestedJit", "inner: Inner", "inner.a: Echo", "inner.b: Upper", "after: Wrap"]
    assert repr(corpus.Echo("leaf")) == "Echo"


def test_is_operator():
    assert is_operator(corpus.Echo("e"))
    assert not is_operator(corpus.Echo)
    assert not is_operator({"forward": None})


# ---------------------------------------------------------------------- call forms
def test_inputs_mapping_or_keywords():
    op = Pure("e")
    assert op(inputs={"query": "q"}) == op(query="q") == {"answer": "e:q"}
    jitted = jit(Pure("e"))
    assert jitted(inputs={"query": "q"}) == jitted(query="q") == op(query="q")


def test_both_call_forms_at_once_is_an_error():
    for op in (corpus.Chain(), jit(corpus.Chain())):
        with pytest.raises(OperatorInputError, match=r"^Chain: pass inputs=\{\.\.\.\} or keyword inputs, not both"):
            op(inputs={"text": "x"}, text="y")


def test_forward_must_be_defined():
    class Empty(Operator):
        pass

    with pytest.raises(NotImplementedError, match="Empty must define forward"):
        Empty()(x=1)


# ---------------------------------------------------------------------- jit forms
def test_jit_decorator_on_a_class():
    @jit
    class Decorated(corpus.Chain):
        """A jitted subclass."""

    op = Decorated()
    assert op(text="ab") == corpus.Chain()(text="ab") == {"text": "[(AB)]"}
    assert op(text="cd") == {"text": "[(CD)]"}
    assert len(PLANS) == 1
    assert Decorated.__doc__ == "A jitted subclass."


def test_jit_with_sample_input_captures_at_construction():
    @jit(mode="trace", sample_input={"query": "sample"})
    class Warm(corpus.Ensemble):
        """Compiled when constructed."""

    corpus.CALLS.clear()
    op = Warm(2)
    assert dict(corpus.CALLS) == {"m0": 1, "m1": 1, "judge": 1}  # the sample really ran, once
    assert len(PLANS) == 1
    (entry,) = next(iter(PLANS._entries.values()))
    assert isinstance(entry.plan, Plan)
    corpus.CALLS.clear()
    assert op(query="live") == {"final": "m0:live | m1:live", "query": "live"}
    assert dict(corpus.CALLS) == {"m0": 1, "m1": 1, "judge": 1}
    assert len(PLANS) == 1  # served by the plan captured at construction


def test_jit_on_an_instance_returns_it():
    op = corpus.Chain()
    assert jit(op) is op
    assert op(text="x") == {"text": "[(X)]"}
    other = corpus.Chain()  # only the instance was jitted
    assert other.__xcs_jit__ is None


def test_jit_on_an_instance_with_sample_input():
    corpus.CALLS.clear()
    op = jit(corpus.Chain(), mode="trace", sample_input={"text": "s"})
    assert dict(corpus.CALLS) == {"a": 1, "b": 1, "c": 1}
    assert len(PLANS) == 1


def test_jit_on_a_function():
    fn = jit(corpus.pipeline)
    assert isinstance(fn, JittedFunction)
    assert fn.__name__ == "pipeline" and fn.__doc__ == corpus.pipeline.__doc__
    assert fn(inputs={"text": "ab"}) == fn(text="ab") == corpus.pipeline(inputs={"text": "ab"})
    assert repr(fn) == "jit(pipeline)"


def test_jit_on_a_function_with_sample_input():
    corpus.CALLS.clear()
    fn = jit(mode="trace", sample_input={"text": "warm"})(corpus.pipeline)
    assert dict(corpus.CALLS) == {"module-shout": 1}
    assert fn(text="x") == {"text": "X", "length": 1}


def test_jit_decorator_with_options_on_a_function():
    @jit(mode="auto")
    def shout(*, inputs):
        return {"text": corpus.SHOUT(text=inputs["text"])["text"] + "!"}

    assert shout(text="a") == {"text": "A!"}
    assert shout(text="b") == {"text": "B!"}


def test_unknown_mode_lists_the_valid_ones():
    with pytest.raises(JitError, match=r"^unknown jit mode 'fast'; valid modes: auto, enhanced, structural, trace$"):
        jit(corpus.Chain(), mode="fast")
    with pytest.raises(JitError, match="strict must be True or False"):
        jit(corpus.Chain(), strict="yes")


def test_jitted_operator_used_inside_an_eager_parent():
    class Parent(Operator):
        """Eager parent of a jitted child."""

        def __init__(self):
            self.child = jit(corpus.Chain())

        def forward(self, *, inputs):
            return {"out": self.child(text=inputs["q"])["text"]}

    assert Parent()(q="z") == {"out": "[(Z)]"}
    assert Parent()(q="y") == {"out": "[(Y)]"}
    assert len(PLANS) == 1
