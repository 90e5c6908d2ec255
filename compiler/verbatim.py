"""The ``verbatim_glue`` pass of ``enhanced``: glue the user wrote as one expression is emitted as the
user's own text.

For a glue value the user stored in a local (``listing = "\\n".join(...)``), passed as a keyword
argument of an operator call (``inputs={"prompt": f"..."}``) or returned from ``forward``, the module's
syntax tree gives the expression's source (``compiler.source``). The pass captures that text again on its own —
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
from functools import lru_cache
from typing import Any, Callable

from xcs.compiler.codegen import is_step
from xcs.compiler.ir import Branch, Call, Function, Glue, Graph, MapRegion, OperatorCall, Ref, rebuild, walk
from xcs.compiler.source import assigned_value, call_site, returned_value
from xcs.compiler.trace import Builder, Origin, Tracer
from xcs.compiler.values import PENDING, STEP, Val


def verbatim_glue(
    graph: Graph, origins: dict[str, Origin], files: dict[str, str], root: Any, is_operator: Callable[[Any], bool],
) -> tuple[Graph, str]:
    nodes = {n.name: n for n in walk(graph.nodes)}
    found: dict[str, tuple[str, tuple]] = {}
    shapes: dict[tuple, Any] = {}  # see ``_prove``
    for key, origin in origins.items():
        filename = files.get(origin.loc.file)
        if filename is None or origin.loc.col < 0:
            continue
        for operand, text in _candidates(key, origin, filename, nodes, graph):
            if not isinstance(operand, Ref) or not isinstance(nodes.get(operand.name), Glue) or operand.name in found:
                continue
            proven = _prove(operand, text, origin, nodes, root, is_operator, shapes)
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
    shapes: dict[tuple, Any],
) -> tuple[str, tuple] | None:
    """``(text, binds)`` when ``text``, captured alone over ``origin``'s names, is ``operand``'s graph.

    ``shapes`` (one per pass) holds what a capture of the text proved for the texts of one shape: the
    same expression up to the names of its parameters (``_positional``), in the same module, each
    parameter an operator's output the capture never computed (a step: nothing about it but its node
    can steer the capture). Such a capture is the same for every text of the shape but for the steps'
    names, so it runs once: its graph, with each parameter's step as a placeholder, is compared with
    each text's operand (``{"v": x16["v"]}``, ``{"v": x17["v"]}``, ... of a 10,000-call ``forward``)."""
    if not text.isprintable():  # one line of printable text: no line break, control or format character
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    nodes_ = list(ast.walk(tree))
    names = [n for n in nodes_ if isinstance(n, ast.Name)]
    inner = {n.id for n in names if not isinstance(n.ctx, ast.Load)}  # comprehension variables, ``:=``
    inner |= {a.arg for n in nodes_ if isinstance(n, ast.Lambda) for a in ast.walk(n.args) if isinstance(a, ast.arg)}
    read = {n.id for n in names if isinstance(n.ctx, ast.Load)} - inner
    values = {name: origin.names.get(name) for name in sorted(read)}
    params = [name for name, value in values.items() if value is not None]
    code = _proof_code(_positional(text, names, params), len(params), origin.loc.file or "<verbatim>")
    if code is None:
        return None
    steps = [_step_param(values[p], nodes) for p in params]
    shape = (code, origin.globals.get("__name__")) if all(steps) and len(set(steps)) == len(steps) else None
    template = shapes.get(shape) if shape is not None else None
    if template is None:
        graph = _capture_text(code, [values[p] for p in params], origin, nodes, root, is_operator)
        if shape is not None:
            shapes[shape] = _placeholders(graph, {step: ("param", i) for i, step in enumerate(steps)})
    else:
        graph = _placeholders(template, {("param", i): step for i, step in enumerate(steps)})
    if graph is False or _computes_a_step(operand, nodes) or graph != _canon(operand, {}, nodes):
        return None  # not proven; or a step's value the text would compute again where the plan uses it
    binds = tuple((p, values[p][1]) for p in params)
    if any(isinstance(o, Ref) and o.name == operand.name for _, o in binds):
        return None  # ``x`` standing for itself: nothing to show
    return text, binds


def _capture_text(
    code: types.CodeType, values: list[tuple], origin: Origin, nodes: dict, root: Any, is_operator: Callable[[Any], bool],
) -> Any:
    """The canonical graph (``_canon``) of ``code`` captured over ``values``, or False when it is not a
    pure expression of them the plan may write out again."""
    if any(name in origin.globals or not hasattr(builtins, name) for name in _global_reads(code)):
        return False  # the plan module sees builtins only
    tracer = Tracer(root, "", is_operator, abstract=True)
    tracer.builder = Scratch()
    try:
        got = tracer.operand(tracer.call_function(types.FunctionType(code, origin.globals), [Val(*v) for v in values], {}))
    except Exception:  # a break, or anything the capture cannot prove: keep the IR's rendering
        return False
    made = {n.name: n for n in walk(tuple(tracer.builder.nodes[1:]))}
    if any(isinstance(n, (OperatorCall, Call)) or (isinstance(n, (MapRegion, Branch)) and is_step(n)) for n in made.values()):
        return False  # the text calls an operator or has an effect: written again, it would run again
    if tracer.readers:
        return False  # it reads held state: the text would read it where the plan uses it
    return _canon(got, made, nodes)


def _step_param(value: tuple, nodes: dict) -> tuple | None:
    """``("ref", name)`` for a parameter holding the output of step ``name`` (never computed), else None."""
    raw, expr, kind = value
    if raw is PENDING and kind == STEP and isinstance(expr, Ref) and expr.name != "inputs":
        canon = _canon(expr, {}, nodes)
        return canon if canon == ("ref", expr.name) else None
    return None


def _placeholders(graph: Any, mapping: dict) -> Any:
    """``graph`` (a canonical graph, ``_canon``) with its step leaves (``("ref", name)``) or parameter
    leaves (``("param", i)``) in ``mapping`` replaced."""
    if graph is False or graph is None:
        return graph
    kind = graph[0]
    if kind in ("ref", "param"):
        return mapping.get(graph, graph)
    if kind == "glue":
        return (*graph[:4], tuple(_placeholders(g, mapping) for g in graph[4]))
    if kind == "map":
        return ("map", _placeholders(graph[1], mapping), _placeholders(graph[2], mapping))
    if kind == "branch":
        return ("branch", _placeholders(graph[1], mapping), *(tuple(_placeholders(g, mapping) for g in side) for side in graph[2:]))
    return graph


def _positional(text: str, names: list[ast.Name], params: list[str]) -> str:
    """``text`` (one line, whose ``Name`` nodes are ``names``) with its parameters renamed ``_xcs_0``,
    ``_xcs_1``, ... in ``params``' order: the same expression at every site (``{"v": x16["v"]}`` and
    ``{"v": x17["v"]}``) is compiled once."""
    index = {name: i for i, name in enumerate(params)}
    spans = sorted((n.col_offset, n.end_col_offset, index[n.id]) for n in names if n.id in index)
    raw, out, at = text.encode(), [], 0  # the columns are UTF-8 byte offsets
    for start, end, i in spans:
        out += [raw[at:start], f"_xcs_{i}".encode()]
        at = end
    return b"".join(out + [raw[at:]]).decode()


@lru_cache(maxsize=4096)
def _proof_code(expression: str, params: int, filename: str) -> types.CodeType | None:
    """The code of ``def _verbatim(_xcs_0, ...): return (expression)``, or None if it does not compile."""
    source = f"def _verbatim({', '.join(f'_xcs_{i}' for i in range(params))}):\n    return ({expression})\n"
    try:
        module = compile(source, filename, "exec")
    except SyntaxError:
        return None
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


class Scratch(Builder):
    """The builder of a proof's capture: its node names cannot clash with the graph's (``$`` is not
    in any identifier), so a name in the comparison says which graph a node is from."""

    def fresh(self, base: str) -> str:
        return "$" + super().fresh(base)


@lru_cache(maxsize=4096)
def _global_reads(code: types.CodeType) -> frozenset[str]:
    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_reads(const)
    return frozenset(names)


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
