"""The ``verbatim_glue`` pass of ``enhanced``: glue the user wrote as one expression is emitted as the
user's own text.

For a glue value the user stored in a local (``listing = "\\n".join(...)``), passed as a keyword
argument of an operator call (``inputs={"prompt": f"..."}``) or returned from ``forward``, libcst
gives the expression's source (``compiler.source``). The pass captures that text again on its own —
compiled into a function of the local names it reads, interpreted abstractly with those names bound to
what they held at that point (``trace.Origin``) — and keeps it only when the graph it yields is the
graph the capture recorded: the same operations on the same operands, up to internal node names. The
glue node then carries the ``text`` and its ``binds`` (the local names the text reads and the
operands they stand for), which the plan assigns before the statement that uses the text.

Anything that cannot be proven this way keeps the rendering from the IR: a text over several lines
(or holding any other character that is not printable), a name that held a container built in
``forward``, a module global the plan cannot see, a text that calls an operator.
"""

from __future__ import annotations

import ast
import builtins
import dis
import types
from dataclasses import replace
from typing import Any, Callable

from xcs.compiler.codegen import is_step
from xcs.compiler.ir import Branch, Call, Function, Glue, Graph, MapRegion, OperatorCall, Ref, rebuild, walk
from xcs.compiler.source import assigned_value, call_site, returned_value
from xcs.compiler.trace import Builder, Origin, Tracer
from xcs.compiler.values import Val


def verbatim_glue(
    graph: Graph, origins: dict[str, Origin], files: dict[str, str], root: Any, is_operator: Callable[[Any], bool],
) -> tuple[Graph, str]:
    nodes = {n.name: n for n in walk(graph.nodes)}
    found: dict[str, tuple[str, tuple]] = {}
    for key, origin in origins.items():
        filename = files.get(origin.loc.file)
        if filename is None or origin.loc.col < 0:
            continue
        for operand, text in _candidates(key, origin, filename, nodes, graph):
            if not isinstance(operand, Ref) or not isinstance(nodes.get(operand.name), Glue) or operand.name in found:
                continue
            proven = _prove(operand, text, origin, nodes, root, is_operator)
            if proven is not None:
                found[operand.name] = proven
    if not found:
        return graph, ""
    return Graph(_annotate(graph.nodes, found)), f"kept {len(found)} expression(s) as written: {', '.join(sorted(found))}"


def _candidates(key: str, origin: Origin, filename: str, nodes: dict, graph: Graph) -> list[tuple[Any, str]]:
    """(operand, the user's source text of it) pairs offered by one origin."""
    line, col = origin.loc.line, origin.loc.col
    if origin.kind == "call":  # an operator call, or a vmap-ed operator's call (its ``inputs``)
        node = nodes.get(key)
        site = call_site(filename, line, col) if isinstance(node, (OperatorCall, MapRegion)) else None
        if site is None:
            return []
        texts = dict(site.keywords)
        kwargs = node.kwargs if isinstance(node, OperatorCall) else (("inputs", node.over),)
        return [(operand, texts[k]) for k, operand in kwargs if k in texts]
    text = assigned_value(filename, line, col) if origin.kind == "store" else returned_value(filename, line, col)
    if text is None:
        return []
    return [(Ref(key) if origin.kind == "store" else graph.output.value, text)]


def _computes_a_step(operand: Any, nodes: dict) -> bool:
    """Whether ``operand``'s glue reaches a node computed once at its own point (a hoisted read, a
    step): its text would compute that again where the plan uses it."""
    stack, seen = [operand], set()
    while stack:
        item = stack.pop()
        if not isinstance(item, Ref) or item.name in seen:
            continue
        seen.add(item.name)
        node = nodes.get(item.name)
        if isinstance(node, Glue):
            if node.hoisted:
                return True
            stack.extend(node.operands)
    return False


def _prove(
    operand: Ref, text: str, origin: Origin, nodes: dict, root: Any, is_operator: Callable[[Any], bool],
) -> tuple[str, tuple] | None:
    """``(text, binds)`` when ``text``, captured alone over ``origin``'s names, is ``operand``'s graph."""
    if not text.isprintable():  # one line of printable text: no line break, control or format character
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
    inner = {n.id for n in names if not isinstance(n.ctx, ast.Load)}  # comprehension variables, ``:=``
    inner |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in ast.walk(n.args) if isinstance(a, ast.arg)}
    read = {n.id for n in names if isinstance(n.ctx, ast.Load)} - inner
    values = {name: origin.names.get(name) for name in sorted(read)}
    params = [name for name, value in values.items() if value is not None]
    source = f"def _verbatim({', '.join(params)}):\n    return ({text})\n"
    try:
        module = compile(source, origin.loc.file or "<verbatim>", "exec")
    except SyntaxError:
        return None
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    if any(name in origin.globals or not hasattr(builtins, name) for name in _global_reads(code)):
        return None  # the plan module sees builtins only
    tracer = Tracer(root, "", is_operator, abstract=True)
    tracer.builder = Scratch()
    args = [Val(*values[p]) for p in params]
    try:
        got = tracer.operand(tracer.call_function(types.FunctionType(code, origin.globals), args, {}))
    except Exception:  # a break, or anything the capture cannot prove: keep the IR's rendering
        return None
    made = {n.name: n for n in walk(tuple(tracer.builder.nodes[1:]))}
    if any(isinstance(n, (OperatorCall, Call)) or (isinstance(n, (MapRegion, Branch)) and is_step(n)) for n in made.values()):
        return None  # the text calls an operator or has an effect: written again, it would run again
    if tracer.readers or _computes_a_step(operand, nodes):
        return None  # it reads held state (the text would read it where the plan uses it) or a step's value
    if _canon(got, made, nodes) != _canon(operand, {}, nodes):
        return None
    binds = tuple((p, values[p][1]) for p in params)
    if any(isinstance(o, Ref) and o.name == operand.name for _, o in binds):
        return None  # ``x`` standing for itself: nothing to show
    return text, binds


class Scratch(Builder):
    """The builder of a proof's capture: its node names cannot clash with the graph's (``$`` is not
    in any identifier), so a name in the comparison says which graph a node is from."""

    def fresh(self, base: str) -> str:
        return "$" + super().fresh(base)


def _global_reads(code: types.CodeType) -> set[str]:
    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_reads(const)
    return names


def _canon(operand: Any, made: dict, nodes: dict, items: tuple = ()) -> Any:
    """``operand``'s computation as a nested tuple: glue and pure regions expanded, steps, inputs and
    map elements as leaves (elements by depth, so internal names do not matter)."""
    if not isinstance(operand, Ref):
        return ("operand", operand)
    name = operand.name
    if name in items:
        return ("item", len(items) - 1 - items[::-1].index(name))
    node = made.get(name) or nodes.get(name)
    if isinstance(node, Glue):
        return ("glue", node.op, node.detail, node.keys, tuple(_canon(o, made, nodes, items) for o in node.operands))
    if isinstance(node, MapRegion) and not is_step(node):
        inner = items + (node.item,)
        result, keep = (None if o is None else _canon(o, made, nodes, inner) for o in (node.result, node.keep))
        return ("map", _canon(node.over, made, nodes, items), result, keep, node.generator)
    if isinstance(node, Function):
        return ("function", len(node.params), _canon(node.result, made, nodes, items + node.params))
    if isinstance(node, Branch) and not is_step(node):
        sides = (tuple(_canon(o, made, nodes, items) for o in outs) for outs in (node.then_out, node.else_out))
        return ("branch", _canon(node.cond, made, nodes, items), *sides)
    return ("ref", name)


def _annotate(nodes: tuple, found: dict[str, tuple[str, tuple]]) -> tuple:
    def change(node: Any) -> Any:
        if isinstance(node, Glue) and node.name in found:
            text, binds = found[node.name]
            return replace(node, text=text, binds=binds)
        return node

    return rebuild(nodes, change)
