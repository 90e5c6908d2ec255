"""``Operator``: frozen after ``__init__``, sub-operator discovery, repr, call forms; the forms of ``jit``."""

from __future__ import annotations

import pytest

import corpus
from xcs.runtime.plan import Plan
from xcs import FrozenOperatorError, JitError, Operator, OperatorInputError, jit
from xcs.compiler.driver import PLANS
from xcs.plans import JittedFunction
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
    from xcs.compiler.ir import resolve_static

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


# ---------------------------------------------------------------------- cycles in the operator tree
class Stage(Operator):
    """A stage that holds a back-reference to its pipeline (set by the pipeline's __init__)."""

    def __init__(self):
        self.parent = None
        self.peers = []

    def forward(self, *, inputs):
        return {"y": inputs["x"] + 1}


class Pipeline(Operator):
    """``stage.parent`` and ``stage.peers`` point back up the tree: a cycle of operators."""

    def __init__(self):
        self.stage = Stage()
        object.__setattr__(self.stage, "parent", self)  # the stage is frozen already
        self.stage.peers.append(self)

    def forward(self, *, inputs):
        return self.stage(inputs=inputs)


class Configured(Operator):
    """Holds a dict that contains itself."""

    def __init__(self):
        self.cfg = {"retries": 2}
        self.cfg["self"] = self.cfg
        self.stage = Stage()

    def forward(self, *, inputs):
        return self.stage(inputs=inputs)


def test_repr_of_a_cyclic_tree_shows_the_cycle():
    assert repr(Pipeline()) == (
        "Pipeline\n"
        "  stage: Stage\n"
        "  stage.parent: <cycle> -> Pipeline\n"
        "    stage.peers[0]: <cycle> -> Pipeline"
    )
    assert [path for path, _ in sub_operators(Pipeline())] == ["stage"]


@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_a_back_reference_to_an_operator_is_supported(mode, fresh_plans):
    """Decision: an operator that holds a back-reference to an operator above it (a parent, or itself:
    ``self.me = self``) runs jitted as it does eagerly. The structure hash records the reference
    (``<cycle>``) instead of following it, so such trees are keyed, captured and cached like any other."""
    op = jit(Pipeline(), mode=mode)
    assert op(x=1) == Pipeline()(x=1) == {"y": 2}
    assert op(x=2) == {"y": 3}


@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_a_container_that_contains_itself_is_named(mode, fresh_plans):
    """Decision: a list or dict among an operator's attributes that contains itself has no finite
    structure hash, so a jitted call raises ``OperatorCycleError`` (an ``XCSError`` and a ``CycleError``)
    with the attribute path of the cycle, before anything runs. Eager calls do not hash: they work."""
    from xcs import CycleError, OperatorCycleError, XCSError

    assert Configured()(x=1) == {"y": 2}
    with pytest.raises(OperatorCycleError) as info:
        jit(Configured(), mode=mode)(x=1)
    assert isinstance(info.value, CycleError) and isinstance(info.value, XCSError)
    assert info.value.cycle == ("Configured.cfg['self']", "Configured.cfg")
    assert str(info.value) == (
        "Configured.cfg['self'] -> Configured.cfg: Configured holds a container that contains itself; a jitted "
        "operator is keyed by its static attributes, which must be finite: keep the cyclic value out of the "
        "operator's attributes, or hold it in a plain object (whose fields other than literals the hash does "
        "not follow)"
    )
    assert "cfg: <cycle>" not in repr(Configured())  # repr lists operators only; it terminates


# ---------------------------------------------------------------------- classes without a source file
@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_a_class_defined_without_a_source_file_runs(mode, tmp_path):
    """``python -c``, a REPL, a notebook or ``exec``: no source file. The operator compiles from its
    bytecode and is labelled ``<__main__>:Name``; never an OSError."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "from xcs import Operator, jit, dump\n"
        "class Echo(Operator):\n"
        "    def forward(self, *, inputs):\n"
        "        return {'t': inputs['t']}\n"
        f"@jit(mode={mode!r})\n"
        "class Reader(Operator):\n"
        "    def __init__(self):\n"
        "        self.echo = Echo()\n"
        "    def forward(self, *, inputs):\n"
        "        return self.echo(t=inputs['q'] + '!')\n"
        "r = Reader()\n"
        "print(r(q='a'), r(q='b'))\n"
        "print(dump(r, {'q': 'c'}).splitlines()[0])\n"
    )
    env = {**__import__("os").environ, "XCS_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "{'t': 'a!'} {'t': 'b!'}"
    assert lines[1].startswith("# ember-xcs plan: <__main__>:Reader   strategy: ")
