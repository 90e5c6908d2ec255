"""Optimisation passes of the ``enhanced`` strategy: small, named, each a function Graph -> Graph.

- ``source_names``: steps take the user's variable names and show the call's exact source (``source``);
- ``fold_constants``: glue whose operands are all literals becomes a literal;
- ``merge_identical_calls``: a second call of the same operator with the same arguments reuses the
  first's result, but only for operators that declare ``deterministic = True`` (two identical calls of
  a sampling LLM are intentional);
- ``eliminate_dead_glue``: glue nothing reads is dropped;
- ``hoist_input_glue``: a computation on the inputs alone (a call, a method, a format) that several
  steps read, or that a map region would redo per element, is computed once, as a step of its own.

``optimize`` runs them in that order, then the passes registered with ``register_pass``
(``compiler.extensions``), and reports what each changed (``xcs dump --passes`` prints it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any, Callable

from xcs.compiler.effects import is_iterator
from xcs.compiler.extensions import run_custom_passes
from xcs.compiler.glue import RULES
from xcs.compiler.ir import (
    Branch, Call, Const, Function, Glue, Graph, Guard, Handler, Loop, MapRegion, Try, With, OperatorCall, Output, Ref, Static, is_literal, loop_heads, operands,
    rebuild, resolve_static, walk,
)
from xcs.compiler.verbatim import verbatim_glue


@dataclass(frozen=True)
class Applied:
    """One pass's effect: its name and a one-line summary (empty when it changed nothing)."""

    name: str
    summary: str


def optimize(
    graph: Graph, is_operator: Callable[[Any], bool], root: Any, files: dict[str, str] | None = None,
    variables: dict[str, str] | None = None, origins: dict | None = None,
) -> tuple[Graph, list[Applied]]:
    """Run the passes in order; ``files`` maps repository-relative files to files (for source facts),
    ``variables`` node names to the user's variable names (for hoisted glue) and ``origins`` node
    names to where the user's code made them (``trace.Origin``, for verbatim glue)."""
    applied = []
    for name, fn in (
        ("verbatim_glue", lambda g: verbatim_glue(g, origins or {}, files or {}, root, is_operator)),
        ("source_names", lambda g: source_names(g, files or {}, variables or {})),
        ("fold_constants", lambda g: fold_constants(g)),
        ("merge_identical_calls", lambda g: merge_identical_calls(g, root)),
        ("eliminate_dead_glue", lambda g: eliminate_dead_glue(g)),
        ("hoist_input_glue", lambda g: hoist_input_glue(g, variables or {})),
    ):
        graph, summary = fn(graph)
        applied.append(Applied(name, summary))
    graph, custom = run_custom_passes(graph)
    return graph, applied + [Applied(name, summary) for name, summary in custom]


# ---------------------------------------------------------------------- rewriting helpers
def substitute(nodes: tuple, mapping: dict[str, Any]) -> tuple:
    """``nodes`` with every ``Ref`` named in ``mapping`` replaced by its operand (recursively)."""
    if not mapping:
        return nodes

    def sub(value: Any) -> Any:
        if isinstance(value, Ref):
            return mapping.get(value.name, value)
        if isinstance(value, tuple):
            items = tuple(sub(v) for v in value)
            return value if all(a is b for a, b in zip(items, value)) else items
        if isinstance(value, (OperatorCall, Call, Glue, MapRegion, Branch, Function, With, Loop, Try, Handler, Guard, Output)):
            return _sub_node(value)
        return value

    def _sub_node(node: Any) -> Any:
        changes = {}
        for name in _rewritten_fields(type(node)):
            old = getattr(node, name)
            new = sub(old)
            if new is not old:
                changes[name] = new
        if getattr(node, "after", ()):  # ordering-only steps: renamed with them, dropped when folded away
            moved = (mapping.get(name, Ref(name)) for name in node.after)
            changes["after"] = tuple(dict.fromkeys(m.name for m in moved if isinstance(m, Ref)))
        return replace(node, **changes) if changes else node

    return tuple(_sub_node(n) for n in nodes)


@lru_cache(maxsize=None)
def _rewritten_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node class that ``substitute`` rewrites (all but its name, location and order)."""
    return tuple(f.name for f in fields(kind) if f.name not in ("name", "loc", "after"))


def _drop(nodes: tuple, names: set[str]) -> tuple:
    return rebuild(nodes, lambda node: None if node.name in names else node)


# ---------------------------------------------------------------------- passes
def source_names(graph: Graph, files: dict[str, str], variables: dict[str, str]) -> tuple[Graph, str]:
    """Name each top-level operator call (a ``vmap``-ed operator's map region included) after the
    variable the user assigns it to, and each top-level map region after the variable that holds its
    list (when that name is free); replace a call's source line by its exact source span."""
    from xcs.compiler.codegen import RESERVED
    from xcs.compiler.source import call_site

    taken = {n.name for n in walk(graph.nodes)} | set(RESERVED)
    renames: dict[str, Any] = {}
    located: dict[str, Any] = {}
    for node in graph.nodes:
        user = variables.get(node.name)
        if isinstance(node, MapRegion) and node.batch is None:
            if user and user not in taken and user.isidentifier():
                taken.add(user)
                renames[node.name] = Ref(user)
            continue
        if not isinstance(node, (OperatorCall, MapRegion)) or node.loc.file not in files or node.loc.col < 0:
            continue
        site = call_site(files[node.loc.file], node.loc.line, node.loc.col)
        if site is None:
            continue
        if site.multiline:  # a call over several lines: show all of it, not just its first line
            located[node.name] = replace(node.loc, text=site.text)
        if site.name and site.name != node.name and site.name not in taken and site.name.isidentifier():
            taken.add(site.name)
            renames[node.name] = Ref(site.name)
    if not located and not renames:
        return graph, ""
    nodes = []
    for node in substitute(graph.nodes, renames):
        if node.name in located:
            node = replace(node, loc=located[node.name])
        if node.name in renames:
            node = replace(node, name=renames[node.name].name)
        nodes.append(node)
    summary = ", ".join(f"{k} -> {v.name}" for k, v in sorted(renames.items()))
    return Graph(tuple(nodes)), (f"renamed {len(renames)} step(s): {summary}" if renames else "exact spans of multi-line calls")


def fold_constants(graph: Graph) -> tuple[Graph, str]:
    mapping: dict[str, Any] = {}
    nodes = graph.nodes
    for node in walk(nodes):
        if isinstance(node, Glue) and node.op not in ("call", "method"):
            ops = [mapping.get(o.name, o) if isinstance(o, Ref) else o for o in node.operands]
            if ops and all(isinstance(o, Const) for o in ops):
                value = RULES[node.op].evaluate(node.detail, node.keys, [o.value for o in ops])
                if is_literal(value):
                    mapping[node.name] = Const(value)
    if not mapping:
        return graph, ""
    nodes = _drop(substitute(nodes, mapping), set(mapping))
    return Graph(nodes), f"folded {len(mapping)} glue expression(s): {', '.join(sorted(mapping))}"


def merge_identical_calls(graph: Graph, root: Any) -> tuple[Graph, str]:
    nodes = {n.name: n for n in graph.nodes}
    mapping: dict[str, Any] = {}
    memo: dict[str, Any] = {}

    def canon(operand: Any) -> Any:
        """A value number: equal for operands that always compute the same value."""
        if not isinstance(operand, Ref):
            return operand
        name = mapping[operand.name].name if operand.name in mapping else operand.name
        if name not in memo:
            node = nodes.get(name)
            memo[name] = (
                (node.op, node.detail, node.keys, tuple(canon(o) for o in node.operands))
                if isinstance(node, Glue) else name
            )
        return memo[name]

    seen: dict[Any, str] = {}
    for node in graph.nodes:  # top level only: calls inside regions run conditionally or per element
        if not isinstance(node, OperatorCall) or not isinstance(node.target, Static):
            continue
        if getattr(resolve_static(root, node.target.path), "deterministic", False) is not True:
            continue
        key = (node.target, tuple(canon(a) for a in node.args), tuple((k, canon(v)) for k, v in node.kwargs))
        if key in seen:
            mapping[node.name] = Ref(seen[key])
        else:
            seen[key] = node.name
    if not mapping:
        return graph, ""
    merged = _drop(substitute(graph.nodes, mapping), set(mapping))
    pairs = ", ".join(f"{k} -> {v.name}" for k, v in sorted(mapping.items()))
    return Graph(merged), f"merged {len(mapping)} call(s) of deterministic operators: {pairs}"


def _reads(node) -> tuple:
    """What a node reads directly; a region reads its condition or sequence and its bodies' outputs."""
    after = tuple(Ref(name) for name in getattr(node, "after", ()))
    if isinstance(node, MapRegion):
        return (node.over, *(o for o in (node.keep, node.result) if o is not None)) + after
    if isinstance(node, Branch):
        return (node.cond, *node.then_out, *node.else_out, *after)
    if isinstance(node, Function):
        return (node.result,)
    if isinstance(node, With):
        return (node.manager, *node.outs, *after)
    if isinstance(node, Loop):
        return (*loop_heads(node), node.result, *((node.else_result,) if node.else_result is not None else ()), *after)
    if isinstance(node, Try):
        return (*(h.types for h in node.handlers if h.types is not None), *(o for h in node.handlers for o in h.ends),
                *node.outs, *node.final_outs, *after)
    return operands(node)


def eliminate_dead_glue(graph: Graph) -> tuple[Graph, str]:
    live: set[str] = set()
    nodes = list(walk(graph.nodes))
    statements = {n.name for t in nodes if isinstance(t, Try) for n in walk(sum(t.bodies, ())) if getattr(n, "hoisted", False)}
    for node in reversed(nodes):  # roots: everything that is not glue, and a try's glue statements (what
        if not isinstance(node, Glue) or node.name in statements:  # they raise is handled)
            live.add(node.name)
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if node.name in live:
                for operand in _reads(node):
                    if isinstance(operand, Ref) and operand.name not in live:
                        live.add(operand.name)
                        changed = True
    dead = {n.name for n in nodes if isinstance(n, Glue) and n.name not in live}
    if not dead:
        return graph, ""
    return Graph(_drop(graph.nodes, dead)), f"dropped {len(dead)} unused glue expression(s)"


HOISTABLE = frozenset({"call", "method", "format", "string", "binop"})


def hoist_input_glue(graph: Graph, variables: dict[str, str]) -> tuple[Graph, str]:
    nodes = {n.name: n for n in graph.nodes}
    inputs_only: dict[str, bool] = {}

    def only_inputs(name: str) -> bool:
        if name not in inputs_only:
            node = nodes.get(name)
            if isinstance(node, Glue):
                inputs_only[name] = all(  # held state (a Static path) is read where the program reads it
                    not isinstance(o, (Ref, Static)) or (isinstance(o, Ref) and only_inputs(o.name)) for o in node.operands
                )
            else:
                inputs_only[name] = node is not None and type(node).__name__ == "Input"
        return inputs_only[name]

    def glue_reached(operand: Any, found: set[str]) -> None:
        """The top-level glue an operand reads through glue only (not through steps)."""
        if isinstance(operand, Ref) and isinstance(nodes.get(operand.name), Glue) and operand.name not in found:
            found.add(operand.name)
            for o in nodes[operand.name].operands:
                glue_reached(o, found)

    readers: dict[str, int] = {}
    for node in graph.nodes:
        if isinstance(node, Glue):
            continue
        found: set[str] = set()
        for operand in operands(node):
            glue_reached(operand, found)
        weight = 2 if isinstance(node, (MapRegion, Function)) else 1  # read once per element, or per call
        for name in found:
            readers[name] = readers.get(name, 0) + weight
    hoist = {
        name for name, count in readers.items()
        if count > 1 and nodes[name].op in HOISTABLE and only_inputs(name)
        and not is_iterator(nodes[name])  # each reader builds its own: one hoisted iterator would be shared
    }
    # only the outermost: glue inside a hoisted expression is computed with it
    inner: set[str] = set()
    for name in hoist:
        found: set[str] = set()
        for o in nodes[name].operands:
            glue_reached(o, found)
        inner |= found
    hoist -= inner
    if not hoist:
        return graph, ""
    from xcs.compiler.codegen import RESERVED

    taken = {n.name for n in walk(graph.nodes)} | set(RESERVED)
    renames: dict[str, Any] = {}
    for name in sorted(hoist):  # named after the user's variable when it is free
        user = variables.get(name)
        if user and user not in taken and user.isidentifier():
            taken.add(user)
            renames[name] = Ref(user)
    rebuilt = []
    for node in substitute(graph.nodes, renames):
        if node.name in hoist:
            node = replace(node, hoisted=True, name=renames[node.name].name if node.name in renames else node.name)
        rebuilt.append(node)
    shown = sorted(renames[n].name if n in renames else n for n in hoist)
    return Graph(tuple(rebuilt)), f"hoisted {len(hoist)} input-only computation(s): {', '.join(shown)}"
