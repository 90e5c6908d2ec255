"""Dependency analysis of a plan's steps: waves and the critical path (``graphlib``, linear).

This module owns the questions codegen (a plan's ``waves``/``width`` header) and ``xcs.explain`` ask
about the *shape* of a dependency graph, and nothing else: it knows no IR node kinds. A graph is
``deps: Mapping[str, Collection[str]]``, node name -> names of the nodes it depends on; every
dependency must itself be a key. The mapping's iteration order is the *node order*, the only thing
ties are broken by; the iteration order of each dependency collection is ignored, so sets give the
same answers as lists whatever ``PYTHONHASHSEED`` is.

A cycle raises ``runtime.errors.CycleError(path)`` with ``path`` in the *depends-on* direction, from
the cycle's earliest node in node order, that node repeated at the end: ``("a", "b", "c", "a")`` means
a depends on b, b on c and c on a (``graphlib`` reports it the other way round).
"""

from __future__ import annotations

import graphlib
from typing import Collection, Mapping

from xcs.runtime.errors import CycleError

__all__ = ["critical_path", "waves"]

Deps = Mapping[str, Collection[str]]


def _rounds(deps: Deps) -> list[tuple[str, ...]]:
    """Kahn's algorithm in rounds (``graphlib``): round ``k`` holds the nodes whose longest dependency
    chain has ``k`` edges, in no particular order. Raises ``CycleError`` on a cycle and ``ValueError``
    naming both nodes when a dependency is not a node."""
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter(deps)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        raise CycleError(_cycle(deps)) from None
    rounds = []
    while sorter.is_active():
        ready = sorter.get_ready()
        rounds.append(ready)
        sorter.done(*ready)
    if sum(map(len, rounds)) != len(deps):  # graphlib took a dependency that is not a node of its own
        name, dep = next((name, dep) for name, row in deps.items() for dep in row if dep not in deps)
        raise ValueError(f"node {name!r} depends on unknown node {dep!r}")
    return rounds


def _cycle(deps: Deps) -> tuple[str, ...]:
    """A cycle of ``deps`` in depends-on direction from its earliest node, that node repeated at the end:
    the one ``graphlib`` finds when it meets nodes and dependencies in node order (so whatever the
    iteration order of each dependency collection)."""
    position = {name: i for i, name in enumerate(deps)}
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    for name in deps:
        sorter.add(name)
    for name, row in deps.items():
        sorter.add(name, *sorted(row, key=lambda dep: position.get(dep, len(position))))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1][-1:0:-1]  # graphlib: dependency before dependent; reversed: depends-on
    start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
    cycle = cycle[start:] + cycle[:start]
    return (*cycle, cycle[0])


def waves(deps: Deps) -> tuple[tuple[str, ...], ...]:
    """Wave ``k`` holds the nodes whose longest dependency chain has ``k`` edges, in node order.

    Wave 0 is the nodes without dependencies; every node's dependencies lie in earlier waves, so the
    nodes of one wave can run concurrently. An empty graph has no waves.
    """
    rounds = _rounds(deps)
    level: dict[str, int] = {}
    for k, ready in enumerate(rounds):
        level.update(dict.fromkeys(ready, k))
    buckets: list[list[str]] = [[] for _ in rounds]
    for name in deps:
        buckets[level[name]].append(name)
    return tuple(map(tuple, buckets))


def critical_path(deps: Deps, costs: Mapping[str, float]) -> tuple[tuple[str, ...], float]:
    """The most expensive dependency chain, dependencies first, and its total cost.

    A chain starts at a node without dependencies and follows depends-on edges forward; its cost is
    the sum of its nodes' costs. A node missing from ``costs`` costs 0; keys of ``costs`` that are not
    nodes are ignored. Among chains of equal cost the one with more nodes wins (so with no costs at
    all this is a longest chain), then the one ending at the earliest node in node order, taking the
    earliest dependency in node order at each step. An empty graph gives ``((), 0.0)``.
    """
    if not deps:
        return (), 0.0
    position = {name: i for i, name in enumerate(deps)}
    best: dict[str, tuple[float, int]] = {}  # node -> (cost, nodes) of the best chain ending there
    via: dict[str, str | None] = {}
    for node in (name for ready in _rounds(deps) for name in ready):
        row = sorted(deps[node], key=position.__getitem__)
        # max() keeps the first of equal maxima: the earliest dependency in node order.
        arg = max(row, key=best.__getitem__) if row else None
        total, hops = best[arg] if arg is not None else (0.0, -1)
        best[node] = (total + float(costs.get(node, 0.0)), hops + 1)
        via[node] = arg
    end: str | None = max(deps, key=best.__getitem__)  # the earliest end in node order among ties
    total = best[end][0]
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return tuple(reversed(path)), total
