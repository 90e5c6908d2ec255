"""Tests of ``compiler.analysis``: waves, critical path, cycles, bad dependency mappings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcs.compiler.analysis import critical_path, waves
from xcs.runtime.errors import CycleError, XCSError

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
CHAIN = {"n0": [], "n1": ["n0"], "n2": ["n1"], "n3": ["n2"]}
ALL = [waves, lambda deps: critical_path(deps, {})]


# -- order -----------------------------------------------------------------------------------------


def test_dependency_iteration_order_does_not_matter():
    as_lists = {"a": [], "b": [], "c": ["b", "a"], "d": ["c", "a", "b"]}
    reordered = {"a": [], "b": [], "c": ["a", "b"], "d": ("b", "a", "c")}
    as_sets = {k: set(v) for k, v in as_lists.items()}
    expected = (waves(as_lists), critical_path(as_lists, {}))
    for deps in (reordered, as_sets):
        assert (waves(deps), critical_path(deps, {})) == expected


def test_order_is_independent_of_hash_seed():
    code = (
        "from xcs.compiler.analysis import waves, critical_path\n"
        "names = [f'op{i}' for i in range(40)]\n"
        "deps = {n: {names[j] for j in range(i) if (i * 7 + j) % 5 == 0} for i, n in "
        "enumerate(reversed(names))}\n"
        "deps = {n: {d for d in ds if names.index(d) < names.index(n)} for n, ds in deps.items()}\n"
        "print(waves(deps), critical_path(deps, {}))\n"
        "deps['op0'] = set(names[1:])\n"
        "try:\n"
        "    waves(deps)\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_empty_graph():
    assert waves({}) == ()
    assert critical_path({}, {}) == ((), 0.0)


def test_deep_chain_does_not_recurse():
    n = 30_000
    deps = {f"n{i}": [f"n{i - 1}"] if i else [] for i in reversed(range(n))}
    assert waves(deps) == tuple((f"n{i}",) for i in range(n))
    assert critical_path(deps, {})[0] == tuple(f"n{i}" for i in range(n))


# -- errors --------------------------------------------------------------------------------------


def test_three_cycle_path_and_message():
    deps = {"a": ["b"], "b": ["c"], "c": ["a"]}
    with pytest.raises(CycleError) as info:
        waves(deps)
    # depends-on direction: a depends on b, b on c, c on a.
    assert info.value.cycle == ("a", "b", "c", "a")
    assert str(info.value) == "dependency cycle: a -> b -> c -> a"
    assert isinstance(info.value, XCSError) and isinstance(info.value, ValueError)


def test_cycle_path_excludes_the_tail_leading_into_it():
    deps = {"x": ["a"], "a": ["b"], "b": ["a"], "y": []}
    with pytest.raises(CycleError) as info:
        waves(deps)
    assert info.value.cycle == ("a", "b", "a")


def test_self_loop():
    with pytest.raises(CycleError) as info:
        waves({"ok": [], "a": ["ok", "a"]})
    assert info.value.cycle == ("a", "a")
    assert str(info.value) == "dependency cycle: a -> a"


@pytest.mark.parametrize("analyse", ALL)
def test_every_analysis_rejects_a_cycle(analyse):
    with pytest.raises(CycleError):
        analyse({"a": ["b"], "b": ["a"]})


@pytest.mark.parametrize("analyse", ALL)
def test_unknown_dependency_names_both_nodes(analyse):
    with pytest.raises(ValueError, match=r"'b'.*unknown node 'ghost'") as info:
        analyse({"a": [], "b": ["a", "ghost"]})
    assert not isinstance(info.value, CycleError)


# -- waves, critical path --------------------------------------------------------


def test_waves_of_a_diamond_and_a_chain():
    assert waves(DIAMOND) == (("a",), ("b", "c"), ("d",))
    assert waves(CHAIN) == (("n0",), ("n1",), ("n2",), ("n3",))


def test_wave_is_the_longest_chain_not_the_shortest():
    deps = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": []}
    assert waves(deps) == (("a", "e"), ("b",), ("c",), ("d",))


def test_critical_path_with_costs():
    costs = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.5}
    assert critical_path(DIAMOND, costs) == (("a", "b", "d"), 7.5)


def test_critical_path_missing_costs_and_ties():
    # No costs: every chain costs 0, so the longest chain (in nodes) wins.
    assert critical_path(DIAMOND, {}) == (("a", "b", "d"), 0.0)
    assert critical_path(CHAIN, {}) == (tuple(CHAIN), 0.0)
    # b and c tie: the earlier dependency in node order (b) is taken.
    assert critical_path(DIAMOND, {"d": 1.0}) == (("a", "b", "d"), 1.0)
    # Two disjoint chains of equal cost: the one ending earlier in node order wins.
    deps = {"x": [], "y": ["x"], "p": [], "q": ["p"]}
    assert critical_path(deps, {"x": 1, "y": 1, "p": 1, "q": 1, "nope": 9}) == (("x", "y"), 2.0)
    # A zero-cost tail still extends the chain.
    assert critical_path(DIAMOND, {"c": 3}) == (("a", "c", "d"), 3.0)


# -- properties ----------------------------------------------------------------------------------


@st.composite
def dags(draw):
    """A random DAG whose mapping order is a random permutation of a hidden topological order."""
    n = draw(st.integers(0, 25))
    hidden = [f"v{i}" for i in range(n)]
    deps = {
        hidden[i]: draw(st.sets(st.sampled_from(hidden[:i]), max_size=4)) if i else set()
        for i in range(n)
    }
    keys = draw(st.permutations(hidden))
    costs = {k: draw(st.floats(0, 10, allow_nan=False)) for k in keys if draw(st.booleans())}
    return {k: sorted(deps[k], reverse=True) for k in keys}, costs


def ancestors(deps, node):
    seen, todo = set(), list(deps[node])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(deps[dep])
    return frozenset(seen)


@settings(max_examples=300, deadline=None)
@given(dags())
def test_random_dags(graph):
    deps, costs = graph
    layers = waves(deps)
    wave_of = {name: k for k, layer in enumerate(layers) for name in layer}
    assert sorted(wave_of) == sorted(deps) and sum(map(len, layers)) == len(deps)
    rank = {name: i for i, name in enumerate(deps)}
    for k, layer in enumerate(layers):
        assert layer, "no empty waves"
        assert list(layer) == sorted(layer, key=rank.__getitem__)
        for node in layer:
            assert k == (1 + max(wave_of[d] for d in deps[node]) if deps[node] else 0)

    path, total = critical_path(deps, costs)
    if deps:
        assert not deps[path[0]], "starts at a source"
        assert all(path[-1] not in ds for ds in deps.values()), "ends at a sink"
        assert all(a in deps[b] for a, b in zip(path, path[1:]))
        assert total == pytest.approx(sum(costs.get(p, 0.0) for p in path))
        best: dict[str, float] = {}
        for node in (name for layer in layers for name in layer):
            best[node] = costs.get(node, 0.0) + max((best[d] for d in deps[node]), default=0.0)
        assert total == pytest.approx(max(best.values()))


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_random_cycles_report_a_real_cycle(graph, data):
    deps, _ = graph
    edges = [(node, dep) for node, ds in deps.items() for dep in ds]
    if not edges:
        return
    # Close a cycle: make some ancestor depend on one of its descendants (or a node on itself).
    node, dep = data.draw(st.sampled_from(edges))
    low = data.draw(st.sampled_from(sorted(ancestors(deps, dep) | {dep})))
    cyclic = {k: list(v) for k, v in deps.items()}
    cyclic[low].append(node)
    with pytest.raises(CycleError) as info:
        waves(cyclic)
    cycle = info.value.cycle
    assert len(cycle) >= 2 and cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    assert all(b in cyclic[a] for a, b in zip(cycle, cycle[1:]))
