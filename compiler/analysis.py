"""Dependency analysis of a DAG: topological order, cycles, closure, waves, critical path, width.

This module owns every question the compiler asks about the *shape* of a dependency graph, and
nothing else: it knows no IR node kinds and imports nothing from ``xcs`` or other compiler modules.
A graph is given as ``deps: Mapping[str, Iterable[str]]``, node name -> names of the nodes it
depends on. Every dependency must itself be a key. The mapping's iteration order is the *node
order*; it is the only thing ties are broken by. The iteration order of each dependency collection
is ignored (dependencies are visited in node order), so passing sets gives the same answers as
passing lists, whatever ``PYTHONHASHSEED`` is.

Conventions:

- ``topological_order`` is the post-order of a depth-first search that starts from the nodes in node
  order and visits each node's dependencies in node order. Equivalently: nodes come out in node order,
  except that a node's not-yet-placed dependencies are pulled forward to just before it. A mapping that
  is already topologically ordered (a traced graph in definition order) comes back unchanged.
- A cycle raises ``runtime.errors.CycleError(path)`` where ``path`` reads in the *depends-on*
  direction with its first node repeated at the end: ``("a", "b", "c", "a")`` means a depends on b,
  b depends on c and c depends on a. A self-loop is ``("a", "a")``. (``graphlib`` is not used: its
  ``CycleError.args[1]`` lists the cycle the other way round, dependency before dependent, and its
  order is breadth-first, so an already ordered mapping would not come back unchanged.)
- Every function is linear in nodes + edges (plus sorting each node's dependency list, which is
  linear for bounded fan-in), except ``transitive_closure`` whose output alone can be quadratic.
"""

from __future__ import annotations

from itertools import compress
from typing import Iterable, Mapping

from xcs.runtime.errors import CycleError

__all__ = ["critical_path", "topological_order", "transitive_closure", "waves", "width"]

Deps = Mapping[str, Iterable[str]]

# bin(x) digits '0'/'1' (bytes 48/49) -> 0/1, so itertools.compress can select names by bit.
_BITS = bytes.maketrans(b"01", b"\x00\x01")


def _index(deps: Deps) -> tuple[list[str], list[list[int]]]:
    """Names in node order and, per node, the indices of its dependencies sorted ascending."""
    names = list(deps)
    position = dict(zip(names, range(len(names))))
    if len(position) != len(names):  # only possible for a Mapping with a broken __iter__
        raise ValueError("the dependency mapping yields a node name twice")
    index_of = position.__getitem__
    adj: list[list[int]] = []
    for name, wanted in deps.items():
        if isinstance(wanted, (str, bytes)):
            raise TypeError(
                f"dependencies of {name!r} must be a collection of names, not the string {wanted!r}"
            )
        try:
            row = list(map(index_of, wanted))
        except KeyError as missing:
            raise ValueError(
                f"node {name!r} depends on unknown node {missing.args[0]!r}"
            ) from None
        if len(row) > 1:
            row.sort()
        adj.append(row)
    return names, adj


def _order(names: list[str], adj: list[list[int]]) -> list[int]:
    """Node indices in topological order (dependencies first); raises ``CycleError``."""
    n = len(adj)
    state = bytearray(n)  # 0: unvisited, 1: on the DFS stack, 2: placed
    order: list[int] = []
    place = order.append
    for root in range(n):
        if state[root]:
            continue
        # Between searches every state is 0 or 2, so this is "all dependencies placed" (or none).
        if all(map(state.__getitem__, adj[root])):
            state[root] = 2
            place(root)
            continue
        state[root] = 1
        stack = [(root, iter(adj[root]))]
        push, pop = stack.append, stack.pop
        while stack:
            node, pending = stack[-1]
            for dep in pending:
                seen = state[dep]
                if seen == 0:
                    state[dep] = 1
                    push((dep, iter(adj[dep])))
                    break
                if seen == 1:
                    raise CycleError(_cycle(names, [entry[0] for entry in stack], dep))
            else:
                pop()
                state[node] = 2
                place(node)
    return order


def _cycle(names: list[str], path: list[int], back_to: int) -> tuple[str, ...]:
    """The cycle closed by the edge ``path[-1] -> back_to``, in depends-on direction."""
    start = path.index(back_to)
    return tuple(names[i] for i in path[start:]) + (names[back_to],)


def _levels(adj: list[list[int]], order: list[int]) -> list[int]:
    """Per node, the length of its longest dependency chain (0 for a node without dependencies)."""
    level = [0] * len(adj)
    get = level.__getitem__
    for node in order:
        row = adj[node]
        if row:
            level[node] = 1 + max(map(get, row))
    return level


def _waves(deps: Deps) -> list[list[str]]:
    names, adj = _index(deps)
    level = _levels(adj, _order(names, adj))
    buckets: list[list[str]] = [[] for _ in range(max(level, default=-1) + 1)]
    for name, k in zip(names, level):
        buckets[k].append(name)
    return buckets


def topological_order(deps: Deps) -> tuple[str, ...]:
    """Every node once, each after all of its dependencies; stable (see the module docstring).

    Raises ``CycleError`` (path in depends-on direction, first node repeated at the end) on a cycle,
    ``ValueError`` naming both nodes when a dependency is not a key of ``deps``.
    """
    names, adj = _index(deps)
    return tuple(map(names.__getitem__, _order(names, adj)))


def transitive_closure(deps: Deps) -> dict[str, frozenset[str]]:
    """Every node -> all of its ancestors (direct and indirect dependencies, never itself).

    Keyed in node order; raises like ``topological_order``. Along the topological order each node
    gets an int bitset over node indices (the OR of its dependencies' sets and bits), and its
    frozenset is a copy of its largest dependency's frozenset plus that dependency plus the names of
    the bits that set lacks. So the cost is the output size plus ``O(edges * nodes / 64)`` word
    operations in C, with no per-ancestor Python work when ancestor sets nest (chains, layers).
    """
    names, adj = _index(deps)
    bits = [0] * len(adj)
    sets = [frozenset()] * len(adj)
    for node in _order(names, adj):
        row = adj[node]
        if not row:
            continue
        mask = 0
        big = row[0]
        for dep in row:
            mask |= bits[dep] | (1 << dep)
            if len(sets[dep]) > len(sets[big]):
                big = dep
        bits[node] = mask
        rest = mask & ~(bits[big] | (1 << big))
        sets[node] = sets[big].union((names[big],), _members(names, rest) if rest else ())
    return dict(zip(names, sets))


def _members(names: list[str], mask: int) -> Iterable[str]:
    """The names whose index bit is set in ``mask``, selected in C via ``itertools.compress``."""
    # bin() is most-significant first: reverse it so that character i is bit i.
    return compress(names, bin(mask)[:1:-1].encode().translate(_BITS))


def waves(deps: Deps) -> tuple[tuple[str, ...], ...]:
    """Wave ``k`` holds the nodes whose longest dependency chain has ``k`` edges, in node order.

    Wave 0 is the nodes without dependencies; every node's dependencies lie in earlier waves, so the
    nodes of one wave can run concurrently. An empty graph has no waves. Raises like
    ``topological_order``.
    """
    return tuple(tuple(bucket) for bucket in _waves(deps))


def critical_path(deps: Deps, costs: Mapping[str, float]) -> tuple[tuple[str, ...], float]:
    """The most expensive dependency chain, dependencies first, and its total cost.

    A chain starts at a node without dependencies and follows depends-on edges forward; its cost is
    the sum of its nodes' costs. A node missing from ``costs`` costs 0; keys of ``costs`` that are not
    nodes are ignored. Among chains of equal cost the one with more nodes wins (so with no costs at
    all this is a longest chain), then the one ending at the earliest node in node order, taking the
    earliest dependency in node order at each step. An empty graph gives ``((), 0.0)``. Raises like
    ``topological_order``.
    """
    names, adj = _index(deps)
    n = len(adj)
    if not n:
        return (), 0.0
    total = [0.0] * n
    hops = [0] * n
    via = [-1] * n
    for node in _order(names, adj):
        arg = -1
        for dep in adj[node]:
            if arg < 0 or (total[dep], hops[dep]) > (total[arg], hops[arg]):
                arg = dep
        if arg < 0:
            total[node] = float(costs.get(names[node], 0.0))
        else:
            total[node] = total[arg] + float(costs.get(names[node], 0.0))
            hops[node] = hops[arg] + 1
        via[node] = arg
    # max() keeps the first of equal maxima, i.e. the earliest end in node order.
    end = max(range(n), key=lambda i: (total[i], hops[i]))
    path: list[str] = []
    node = end
    while node >= 0:
        path.append(names[node])
        node = via[node]
    path.reverse()
    return tuple(path), total[end]


def width(deps: Deps) -> int:
    """The size of the largest wave: how many nodes can run at once at most (0 for an empty graph).

    Raises like ``topological_order``.
    """
    return max(map(len, _waves(deps)), default=0)
