"""The seed's extension points: a custom capture strategy (``Strategy``, ``register_strategy``) and a
custom graph transformation (``register_pass``), each registered, used by a call and shown by
``xcs dump --passes`` and ``xcs explain``; and the rest of the seed's API: an empty batch through
``vmap``, default mesh axis names, the values in a collected batch's repr."""

from __future__ import annotations

import dataclasses

import pytest

from xcs import (
    DeviceMesh, EmptyBatchError, GraphBreakWarning, JitError, Operator, Strategy, dump, explain, jit, register_pass,
    register_strategy, vmap,
)
from xcs.cli import main
from xcs.compiler import extensions
from xcs.compiler.ir import Graph, OperatorCall, Ref
from xcs.compiler.passes import substitute


@pytest.fixture
def registries():
    strategies, passes = dict(extensions.STRATEGIES), dict(extensions.PASSES)
    yield
    extensions.STRATEGIES.clear(), extensions.STRATEGIES.update(strategies)
    extensions.PASSES.clear(), extensions.PASSES.update(passes)


class Upper(Operator):
    def forward(self, *, inputs):
        return {"text": inputs["text"].upper()}


class Pipeline(Operator):
    def __init__(self):
        self.first, self.second = Upper(), Upper()

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)
        return self.second(inputs={"text": a["text"] + "!"})


class StaticOnly:
    """Never run user code to capture: the structural strategy's graph, else decline (eager)."""

    name = "static_only"
    calls = 0

    def capture(self, op, inputs, builtin):
        StaticOnly.calls += 1
        return builtin("structural")


def test_a_custom_strategy_is_registered_used_and_shown(fresh_plans, registries, capsys):
    strategy = register_strategy(StaticOnly())
    assert isinstance(strategy, Strategy)
    op = jit(Pipeline(), mode="static_only")
    assert op(inputs={"text": "hi"}) == {"text": "HI!"}
    assert StaticOnly.calls >= 1
    assert "strategy: static_only" in dump(op, {"text": "hi"}).splitlines()[0]
    assert "strategy: static_only" in str(explain(op, {"text": "hi"}))
    with pytest.raises(JitError, match="exists already"):
        register_strategy(StaticOnly())
    with pytest.raises(JitError, match="unknown jit mode 'nope'; valid modes: auto, enhanced, structural, trace, static_only"):
        jit(mode="nope")


class Declines:
    name = "declines"

    def capture(self, op, inputs, builtin):
        return None


def test_a_declining_strategy_runs_eagerly_with_its_break(fresh_plans, registries):
    register_strategy(Declines())
    op = jit(Pipeline(), mode="declines")
    with pytest.warns(GraphBreakWarning, match="strategy-declined"):
        assert op(inputs={"text": "a"}) == {"text": "A!"}
    assert "[strategy-declined]" in str(explain(op, {"text": "a"}))


def tag_calls(graph: Graph):
    """A custom pass: every operator-call step named ``call_<name>``."""
    renames = {n.name: f"call_{n.name}" for n in graph.nodes if isinstance(n, OperatorCall)}
    nodes = substitute(graph.nodes, {old: Ref(new) for old, new in renames.items()})
    nodes = tuple(dataclasses.replace(n, name=renames[n.name]) if n.name in renames else n for n in nodes)
    return Graph(nodes), f"renamed {len(renames)} step(s)"


class Exclaim(Operator):
    def __init__(self):
        self.first = Upper()

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)
        return {"text": a["text"] + "?"}


def test_a_custom_pass_is_registered_used_and_shown(fresh_plans, registries, capsys, tmp_path, monkeypatch):
    assert jit(Exclaim())(inputs={"text": "a"}) == {"text": "A?"}
    register_pass("tag_calls", tag_calls)
    op = jit(Exclaim())  # a new structure hash: the registered pass is part of it
    assert op(inputs={"text": "a"}) == {"text": "A?"}
    assert "def call_a(ops, inputs):" in dump(op, {"text": "a"})
    assert "pass tag_calls: renamed 1 step(s)" in str(explain(op, {"text": "a"}))
    with pytest.raises(JitError, match="exists already"):
        register_pass("tag_calls", tag_calls)
    (tmp_path / "app.py").write_text(
        "from xcs import Operator\n\n"
        "class Upper(Operator):\n    def forward(self, *, inputs):\n        return {'text': inputs['text'].upper()}\n\n"
        "class Exclaim(Operator):\n    def __init__(self):\n        self.first = Upper()\n\n"
        "    def forward(self, *, inputs):\n        a = self.first(inputs=inputs)\n        return {'text': a['text'] + '?'}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["dump", "--passes", "app.py:Exclaim", "--input", '{"text": "a"}']) == 0
    out = capsys.readouterr().out
    assert "# pass tag_calls: renamed 1 step(s)" in out and "def call_a(ops, inputs):" in out


# ---------------------------------------------------------------------- the rest of the seed's API
class Pair(Operator):
    def forward(self, *, inputs):
        return {"text": inputs["data"].upper(), "n": len(inputs["data"])}


@jit
def doubled(*, inputs):
    return {"doubled": inputs["data"] * 2}


def test_vmap_of_an_empty_batch_returns_an_empty_list_per_output_key(fresh_plans):
    assert vmap(Pair())(inputs={"data": []}) == {"text": [], "n": []}
    assert vmap(doubled)(inputs={"data": [], "shared": 1}) == {"doubled": []}
    assert vmap(vmap(Pair()))(inputs={"data": []}) == {"text": [], "n": []}
    assert dict(vmap(Pair(), on_error="collect")(inputs={"data": []})) == {"text": [], "n": []}
    assert vmap(Pair(), out_keys=["n"])(inputs={"data": []}) == {"n": []}


@jit
class Lengths(Operator):
    def __init__(self):
        self.each = vmap(jit(Pair()))

    def forward(self, *, inputs):
        return {"n": self.each(inputs={"data": inputs["data"]})["n"]}


def test_an_empty_batch_inside_a_plan_takes_the_keys_of_the_elements_plan(fresh_plans):
    assert Lengths()(inputs={"data": []}) == {"n": []}
    assert Lengths()(inputs={"data": ["ab", "c"]}) == {"n": [2, 1]}


class Opaque(Operator):
    def forward(self, *, inputs):
        return dict(inputs)


def test_out_keys_are_asked_for_only_when_they_cannot_be_known(fresh_plans):
    with pytest.raises(EmptyBatchError, match="cannot be known without running one.*pass out_keys"):
        vmap(Opaque())(inputs={"data": []})
    with pytest.raises(EmptyBatchError, match="pass out_keys"):
        vmap(lambda *, inputs: {"x": 1})(inputs={"data": []})


def test_a_mesh_of_any_rank_has_default_axis_names():
    assert DeviceMesh(shape=(2, 2)).axis_names == ("data", "model")
    assert DeviceMesh(shape=(2, 1, 2)).axis_names == ("data", "model", "axis2")
    assert DeviceMesh(shape=(4,)).axis_names == ("data",)


def test_a_collected_batch_shows_its_values():
    def maybe(*, inputs):
        if inputs["x"] < 0:
            raise ValueError("negative")
        return {"y": inputs["x"] * 10}

    shown = repr(vmap(maybe, on_error="collect")(inputs={"x": [1, -1, 2]}))
    assert "'y': [10, None, 20]" in shown and "element 1" in shown and "ValueError: negative" in shown
    assert repr(vmap(maybe, on_error="collect")(inputs={"x": [1]})).endswith("failures=[], skipped=[])")
