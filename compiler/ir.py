"""The graph IR: plain frozen dataclasses for a captured operator graph, and its lint.

A ``Graph`` is a tuple of nodes in definition order. Node kinds form a closed set:

- ``Input``: the operator's ``inputs`` mapping (always the first node, named ``inputs``);
- ``OperatorCall``: a call of a sub-operator (``target`` is a static path or a module global);
- ``Glue``: a pure expression between calls (subscript, container, arithmetic, format, pure call...);
- ``Guard``: a condition on the inputs that must hold for a traced plan to be valid;
- ``Output``: the value ``forward`` returns (always the last node);
- ``MapRegion``: a body of nodes run once per element of a runtime sequence (concurrently);
- ``Branch``: two bodies, of which only the side the runtime condition selects runs;
- ``Call``: a call the capture cannot prove pure (an effect): a step of its own, in program order;
- ``Function``: a function made in forward (a ``lambda``) used as a value, written as a ``lambda``;
- ``With``: a body of nodes run inside a ``with`` statement on a context manager;
- ``Loop``: a ``while`` or ``for`` loop on runtime data: a body run iteration by iteration, with
  carried variables, ``break``/``continue``/``return`` and ``else``;
- ``Try``: a body of nodes run inside ``try``, with its ``except`` handlers, ``else`` and ``finally``;
- ``Kernel``: a numeric segment, steps fused into one function of arrays and scalars
  (``compiler.numeric``).

Steps carry ``after``: the steps they must follow without reading their values (the previous effect,
and the steps that read state an effect may change), so effects happen once, in eager's order, and
state is read where the program reads it.

Operands are ``Ref`` (a node by name), ``Const`` (a literal), ``Static`` (an attribute path of the
root operator, rendered as ``ops.<path>``) or ``Global`` (a module-level name). Every node has a stable
name derived from the source and a ``Loc``. Nothing here depends on object identity or hash order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterator, Union


@dataclass(frozen=True)
class Loc:
    """A user source location: repository-relative file, line, and the stripped source line."""

    file: str = ""
    line: int = 0
    text: str = ""
    col: int = -1  # the column where the expression starts (joins bytecode to source positions)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Static:
    """A path from the root operator: ``members[0]``, ``tools['search']``, ``judge``."""

    path: str


@dataclass(frozen=True)
class Global:
    """A module-level name; ``qualname`` may be dotted (``json.dumps``)."""

    module: str
    qualname: str


Operand = Union[Ref, Const, Static, Global]

# The closed set of glue operations (checked by lint; their meaning is ``compiler.glue.RULES``). "call"
# and "method" take positional operands then keyword operands named by ``keys``.
GLUE_OPS = frozenset(
    {
        "getitem", "getattr", "list", "tuple", "set", "dict", "binop", "unary", "not",
        "compare", "contains", "is", "format", "string", "call", "method", "slice", "truth",
        "match_mapping", "match_sequence", "match_keys", "match_class", "match_rest", "unpack",
    }
)


@dataclass(frozen=True)
class Input:
    name: str = "inputs"
    loc: Loc = Loc()


@dataclass(frozen=True)
class OperatorCall:
    name: str
    target: Operand  # Static or Global
    args: tuple[Operand, ...] = ()
    kwargs: tuple[tuple[str, Operand], ...] = ()
    loc: Loc = Loc()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """The user's own statements a ``Call`` runs (a graph break costs the statements it happens in):
    ``text`` defines a function of the local names they read, with the globals of ``module``; its
    ``def`` line is line ``line`` of that module's file, so every statement keeps its line."""

    module: str
    line: int
    text: str


@dataclass(frozen=True)
class Call:
    """A call of ``func`` the capture cannot see into or prove pure (a library or user function with
    effects, ``print``, logging, a mutation of state the operator holds, or the user's statements of
    ``source``). It runs as a step of its own, after the previous ``Call`` (``after``), with the same
    arguments as in eager Python. A ``barrier`` (any call but the few that cannot fail: printing,
    logging, appending) also holds back every step after it: if it raises, eager Python never ran
    them."""

    name: str
    func: Operand
    args: tuple[Operand, ...] = ()
    kwargs: tuple[tuple[str, Operand], ...] = ()
    loc: Loc = Loc()
    after: tuple[str, ...] = ()
    source: Source | None = None
    barrier: bool = True


@dataclass(frozen=True)
class Glue:
    """``op`` with ``operands``; ``detail`` carries the operator symbol, attribute or method name,
    and ``keys`` the keyword names of a call's trailing operands. ``hoisted`` glue (set by the
    ``hoist_input_glue`` pass) is computed once before the steps that read it. ``text`` (set by the
    ``verbatim_glue`` pass) is the user's own source of the same computation, reading the local
    names of ``binds`` (name -> the operand it stands for)."""

    name: str
    op: str
    operands: tuple[Operand, ...] = ()
    detail: str = ""
    keys: tuple[str, ...] = ()
    loc: Loc = Loc()
    hoisted: bool = False  # computed once, as a step of its own, instead of inline in each consumer
    text: str = ""  # the user's expression, equivalent to op(operands) given ``binds``
    binds: tuple[tuple[str, Operand], ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Guard:
    """Holds when ``value`` == ``expected``; a traced plan runs only when all its guards hold."""

    name: str
    value: Operand
    expected: Any
    loc: Loc = Loc()


@dataclass(frozen=True)
class Output:
    name: str
    value: Operand
    loc: Loc = Loc()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Batching:
    """What makes a ``MapRegion`` a ``vmap``: ``over`` is the call's inputs mapping, split along
    ``in_axes`` (default: every list, tuple or array input) into one inputs mapping per element; the
    region's value is the assembled output (``{key: [value per element]}``, or a ``Collected`` when
    ``collect``). ``label`` names the vmap in errors; at most ``batch_size`` elements run at once."""

    label: str
    in_axes: tuple[str, ...] | None = None
    batch_size: int | None = None
    collect: bool = False
    out_keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MapRegion:
    """Runs ``body`` once per element of ``over`` (the element is ``Ref(item)`` inside the body); the
    region's value is the list of the per-element ``result`` values, in order (``None`` when the loop
    only has effects), or, for a ``vmap`` (``batch`` set), the batch's assembled output.

    A filter (``keep`` set: ``[x for x in xs if c]``, an ``append`` under a condition) keeps only the
    elements whose ``keep`` is true, in order; ``result`` is read only for them. A ``generator``
    region is a generator expression: when it runs no step, the plan writes it as one, so its consumer
    (``any``, ``"".join``) computes the elements as eager Python does, one at a time. A ``hoisted``
    region (one that reads state an effect after it may change) is a step of its own, computed where
    the program computes it (a generator region then gives its consumer the list of its elements)."""

    name: str
    over: Operand
    item: str
    body: tuple = ()
    result: Operand | None = None
    loc: Loc = Loc()
    batch: Batching | None = None
    after: tuple[str, ...] = ()
    keep: Operand | None = None
    generator: bool = False
    hoisted: bool = False


@dataclass(frozen=True)
class Branch:
    """Evaluates ``cond``, runs only the chosen side's body; its value is that side's ``*_out`` tuple."""

    name: str
    cond: Operand
    then_body: tuple = ()
    then_out: tuple = ()
    else_body: tuple = ()
    else_out: tuple = ()
    loc: Loc = Loc()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kernel:
    """Numeric steps (``members``) fused into one function: ``text`` defines ``function`` (its
    parameters take ``args``, in order), which the plan compiles with numba for the argument types
    ``signature`` (numba's notation) or runs as Python. Its value is the tuple ``function`` returns;
    ``modules`` are the modules its text names (``numpy``, ``math``), ``numpy_functions`` the (global
    name, numpy function) it calls through ``runtime.kernels.numpy_function``."""

    name: str
    function: str
    args: tuple[Operand, ...]
    text: str
    signature: str
    members: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    numpy_functions: tuple[tuple[str, str], ...] = ()
    loc: Loc = Loc()


@dataclass(frozen=True)
class Function:
    """A function made in forward (a ``lambda``) passed as a value (``sorted(xs, key=lambda r: ...)``):
    its ``params``, the glue of its ``body`` (nothing else: it runs wherever its caller calls it) and
    the value it returns. The plan writes it as a ``lambda``; it reads what it closes over when called."""

    name: str
    params: tuple[str, ...]
    body: tuple = ()
    result: Operand = Const(None)
    loc: Loc = Loc()


@dataclass(frozen=True)
class With:
    """Runs ``body`` inside ``with manager as entered:`` (entered and exited when the plan runs, the
    body's exception passed to ``__exit__`` as Python does); its value is the ``outs`` tuple (the
    variables the body assigns). Always an effect: entering and exiting are calls."""

    name: str
    manager: Operand
    entered: str
    body: tuple = ()
    outs: tuple = ()
    loc: Loc = Loc()
    after: tuple[str, ...] = ()


# What one iteration of a ``Loop`` ends with: its status (the first item of its result tuple).
LOOP_NEXT, LOOP_BREAK, LOOP_RETURN, LOOP_END = 0, 1, 2, 3


@dataclass(frozen=True)
class Loop:
    """A ``while`` loop (``over`` is None) or a ``for`` loop over ``over`` (the element is
    ``Ref(item)``) on runtime data, run iteration by iteration. ``params`` are the carried variables
    (assigned in the loop, read by the next iteration or after it), starting at ``init``; one
    iteration runs ``body`` with them bound and ends with ``result``: the tuple
    ``(status, *params' new values, value)``. The status is ``LOOP_NEXT`` (go on: the end of the body
    or ``continue``), ``LOOP_BREAK``, ``LOOP_RETURN`` (``return value`` inside the loop) or
    ``LOOP_END`` (a while loop's condition is false). When the loop ends without ``break``
    (``LOOP_END``, or a for loop's sequence is exhausted), ``else_body`` runs (when the loop has an
    ``else``) and ``else_result`` is the loop's value; the region's value is the last such tuple."""

    name: str
    params: tuple[str, ...]
    init: tuple[Operand, ...]
    body: tuple = ()
    result: Operand = Const(None)
    over: Operand | None = None
    item: str = ""
    else_body: tuple = ()
    else_result: Operand | None = None
    loc: Loc = Loc()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Handler:
    """One ``except`` clause of a ``Try``: it runs when the body raises an instance of ``types`` (an
    exception class or a tuple of them, read when the body raised; None: a bare ``except:``), the
    exception named ``bound`` in its body (unbound after it, as Python does; "" without ``as``). Its value
    is its ``outs``, unless it ends by raising: ``raises`` (an exception, ``cause`` its ``from``), or the
    exception it handles again when ``reraise``."""

    types: Operand | None
    bound: str
    body: tuple = ()
    outs: tuple = ()
    raises: Operand | None = None
    cause: Operand | None = None
    reraise: bool = False
    loc: Loc = Loc()

    @property
    def ends(self) -> tuple[Operand, ...]:
        """What it reads after its body: its outputs, or the exception it raises."""
        return tuple(o for o in (self.raises, self.cause) if o is not None) if self.raising else self.outs

    @property
    def raising(self) -> bool:
        return self.reraise or self.raises is not None


@dataclass(frozen=True)
class Try:
    """``try: body`` with its ``handlers`` (tried in order, each on an exception the body raises),
    ``else_body`` (when the body raised nothing; its exceptions are not handled) and ``final_body``
    (always, last). Its value is the outputs of the path taken (``outs`` after the body and else, or
    the handler's) followed by ``final_outs`` (the variables ``finally`` assigns). An exception no
    handler matches, or one a handler raises (chained to the body's), propagates after ``finally``."""

    name: str
    body: tuple = ()
    handlers: tuple[Handler, ...] = ()
    else_body: tuple = ()
    outs: tuple = ()
    final_body: tuple = ()
    final_outs: tuple = ()
    loc: Loc = Loc()
    after: tuple[str, ...] = ()

    @property
    def bodies(self) -> tuple[tuple, ...]:
        """Every body, in source order: try, each handler, else, finally."""
        return (self.body, *(h.body for h in self.handlers), self.else_body, self.final_body)


Node = Union[Input, OperatorCall, Call, Glue, Guard, Output, MapRegion, Branch, Kernel, Function, With, Loop, Try]
REGIONS = (MapRegion, Branch, Function, With, Loop, Try)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def calls(self) -> tuple[OperatorCall, ...]:
        """The top-level operator calls (calls inside regions belong to their region)."""
        return tuple(n for n in self.nodes if isinstance(n, OperatorCall))

    @property
    def steps(self) -> tuple:
        """What the plan schedules: top-level operator calls and regions, in order."""
        return tuple(n for n in self.nodes if isinstance(n, (OperatorCall, Call, MapRegion, Branch, Kernel, Loop)))

    @property
    def guards(self) -> tuple[Guard, ...]:
        return tuple(n for n in self.nodes if isinstance(n, Guard))

    @property
    def output(self) -> Output:
        return self.nodes[-1]  # type: ignore[return-value]


def walk(nodes: tuple) -> Iterator[Node]:
    """Every node, region bodies included (depth first, in order)."""
    for node in nodes:
        yield node
        if isinstance(node, (MapRegion, Function, With)):
            yield from walk(node.body)
        elif isinstance(node, Branch):
            yield from walk(node.then_body)
            yield from walk(node.else_body)
        elif isinstance(node, Loop):
            yield from walk(node.body)
            yield from walk(node.else_body)
        elif isinstance(node, Try):
            for body in node.bodies:
                yield from walk(body)


def rebuild(nodes: tuple, change: Any) -> tuple:
    """``nodes`` with ``change(node)`` for every node, region bodies included (None drops the node)."""
    out = []
    for node in nodes:
        if isinstance(node, (MapRegion, Function, With)):
            node = replace(node, body=rebuild(node.body, change))
        elif isinstance(node, Branch):
            node = replace(node, then_body=rebuild(node.then_body, change), else_body=rebuild(node.else_body, change))
        elif isinstance(node, Loop):
            node = replace(node, body=rebuild(node.body, change), else_body=rebuild(node.else_body, change))
        elif isinstance(node, Try):
            node = replace(
                node, body=rebuild(node.body, change), else_body=rebuild(node.else_body, change),
                final_body=rebuild(node.final_body, change),
                handlers=tuple(replace(h, body=rebuild(h.body, change)) for h in node.handlers),
            )
        node = change(node)
        if node is not None:
            out.append(node)
    return tuple(out)


def operands(node: Node) -> tuple[Operand, ...]:
    """Every operand a node reads, in order (ordering-only ``after`` steps last)."""
    after = tuple(Ref(name) for name in getattr(node, "after", ()))
    if isinstance(node, (OperatorCall, Call)):
        target = node.target if isinstance(node, OperatorCall) else node.func
        return (target, *node.args, *(v for _, v in node.kwargs), *after)
    if isinstance(node, Glue):
        return (node.operands + tuple(o for _, o in node.binds) if node.binds else node.operands) + after
    if isinstance(node, Guard):
        return (node.value,)
    if isinstance(node, Kernel):
        return node.args
    if isinstance(node, Output):
        return (node.value, *after)
    if isinstance(node, MapRegion):
        inner = _free(node.body, _region_outs(node), {node.item})
        return (node.over, *inner, *after)
    if isinstance(node, Branch):
        return (node.cond, *_free(node.then_body, node.then_out, set()), *_free(node.else_body, node.else_out, set()), *after)
    if isinstance(node, Function):
        return _free(node.body, (node.result,), set(node.params))
    if isinstance(node, With):
        return (node.manager, *_free(node.body, node.outs, {node.entered}), *after)
    if isinstance(node, Loop):
        return (*loop_heads(node), *_free(node.body, (node.result,), {node.item, *node.params}),
                *_free(node.else_body, (node.else_result,) if node.else_result is not None else (), set(node.params)), *after)
    if isinstance(node, Try):
        return (*try_operands(node), *after)
    return ()


def loop_heads(node: Loop) -> tuple[Operand, ...]:
    """What a loop reads before its first iteration: its sequence and the carried variables' values."""
    return ((node.over,) if node.over is not None else ()) + node.init


def try_operands(node: Try) -> tuple[Operand, ...]:
    """What a ``Try`` reads from outside it: its bodies' free operands and its handlers' types."""
    found: list[Operand] = []
    parts = [_free(node.body, (), set())]
    for h in node.handlers:
        parts.append((h.types,) if h.types is not None else ())
        parts.append(_free(h.body, h.ends, {h.bound} if h.bound else set()))
    parts.append(_free(node.body + node.else_body, node.outs, set()))
    parts.append(_free(node.final_body, node.final_outs, set()))
    for part in parts:
        found += [o for o in part if o not in found]
    return tuple(found)


def _region_outs(node: MapRegion) -> tuple[Operand, ...]:
    """What a map region reads after its body, per element: its ``keep`` condition and ``result``."""
    return tuple(o for o in (node.keep, node.result) if o is not None)


def _free(body: tuple, outs: tuple, bound: set[str]) -> tuple[Operand, ...]:
    """The operands a region body reads from outside it, in order of first use."""
    bound = set(bound)
    found: list[Operand] = []
    for node in body:
        for operand in operands(node):
            if not (isinstance(operand, Ref) and operand.name in bound) and operand not in found:
                found.append(operand)
        bound.add(node.name)
    for operand in outs:
        if not (isinstance(operand, Ref) and operand.name in bound) and operand not in found:
            found.append(operand)
    return tuple(found)


class LintError(ValueError):
    """The graph breaks an IR invariant."""


def lint(graph: Graph) -> None:
    """Check order, names, defined-before-use and one output; raise ``LintError`` on the first problem."""
    nodes = graph.nodes
    if not nodes or not isinstance(nodes[0], Input):
        raise LintError("the first node must be the Input")
    if not isinstance(nodes[-1], Output):
        raise LintError("the last node must be the Output")
    _lint_body(nodes, set(), top=True)


def _lint_body(nodes: tuple, seen: set[str], top: bool = False) -> None:
    for node in nodes:
        if not top and isinstance(node, (Input, Output, Guard)):
            raise LintError(f"{node.name}: a region body holds only calls, glue and regions")
        if not node.name.isidentifier():
            raise LintError(f"node name {node.name!r} is not an identifier")
        if node.name in seen:
            raise LintError(f"duplicate node name {node.name!r}")
        if top and isinstance(node, Input) and node is not nodes[0]:
            raise LintError("more than one Input")
        if top and isinstance(node, Output) and node is not nodes[-1]:
            raise LintError("more than one Output")
        if isinstance(node, MapRegion):
            _lint_body(node.body, seen | {node.item}) if node.item not in seen else _dup(node.item)
            _lint_outs(node.name, _region_outs(node), seen | {node.item} | _names(node.body))
        if isinstance(node, Function):
            if seen & set(node.params):
                _dup(sorted(seen & set(node.params))[0])
            _lint_body(node.body, seen | set(node.params))
            if any(isinstance(n, (OperatorCall, Call)) for n in walk(node.body)):
                raise LintError(f"{node.name}: a function value's body holds only glue")
            _lint_outs(node.name, (node.result,), seen | set(node.params) | _names(node.body))
        if isinstance(node, With):
            _lint_body(node.body, seen | {node.entered}) if node.entered not in seen else _dup(node.entered)
            _lint_outs(node.name, node.outs, seen | {node.entered} | _names(node.body))
        if isinstance(node, Try):
            _lint_body(node.body, set(seen))
            _lint_body(node.else_body, seen | _names(node.body))
            _lint_outs(node.name, node.outs, seen | _names(node.body) | _names(node.else_body))
            for h in node.handlers:
                inner = seen | ({h.bound} if h.bound else set())
                if h.bound in seen:
                    _dup(h.bound)
                _lint_body(h.body, set(inner))
                _lint_outs(node.name, h.ends, inner | _names(h.body))
                if not h.raising and len(h.outs) != len(node.outs):
                    raise LintError(f"{node.name}: a handler's outputs differ from the body's")
            _lint_body(node.final_body, set(seen))
            _lint_outs(node.name, node.final_outs, seen | _names(node.final_body))
        if isinstance(node, Branch):
            _lint_body(node.then_body, set(seen))
            _lint_body(node.else_body, set(seen))
            _lint_outs(node.name, node.then_out, seen | _names(node.then_body))
            _lint_outs(node.name, node.else_out, seen | _names(node.else_body))
        if isinstance(node, Loop):
            _lint_loop(node, seen)
        if isinstance(node, Glue) and node.op not in GLUE_OPS:
            raise LintError(f"{node.name}: unknown glue op {node.op!r}")
        for operand in (operands(node) if not isinstance(node, REGIONS) else () if isinstance(node, Function) else (node.manager,) if isinstance(node, With)
                        else loop_heads(node) if isinstance(node, Loop)
                        else tuple(h.types for h in node.handlers if h.types is not None) if isinstance(node, Try)
                        else (node.over if isinstance(node, MapRegion) else node.cond,)):
            if isinstance(operand, Ref) and operand.name not in seen:
                raise LintError(f"{node.name} uses {operand.name!r} before it is defined")
        seen.add(node.name)


def _lint_loop(node: Loop, seen: set[str]) -> None:
    bound = {node.item, *node.params} - {""}
    if seen & bound or len(set(node.params)) != len(node.params) or node.item in node.params:
        _dup(sorted(seen & bound)[0] if seen & bound else node.name)
    if len(node.init) != len(node.params):
        raise LintError(f"{node.name}: {len(node.params)} carried variables but {len(node.init)} initial values")
    _lint_body(node.body, seen | bound)
    _lint_outs(node.name, (node.result,), seen | bound | _names(node.body))
    _lint_body(node.else_body, seen | set(node.params))
    if node.else_result is not None:
        _lint_outs(node.name, (node.else_result,), seen | set(node.params) | _names(node.else_body))


def _names(body: tuple) -> set[str]:
    return {n.name for n in body}


def _dup(name: str) -> None:
    raise LintError(f"duplicate node name {name!r}")


def _lint_outs(region: str, outs: tuple, scope: set[str]) -> None:
    for operand in outs:
        if isinstance(operand, Ref) and operand.name not in scope:
            raise LintError(f"{region} returns {operand.name!r}, which its body does not define")


def is_literal(value: Any) -> bool:
    if value is None or type(value) in (bool, int, str, bytes):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is tuple:
        return all(is_literal(v) for v in value)
    return False


def canonical_repr(value: Any) -> str:
    """A ``repr`` that is the same in every process: sets and frozensets list their items sorted by
    this same text (their own ``repr`` follows string hashing, so PYTHONHASHSEED), recursively; any
    other object that is not a literal container is its type and its ``repr`` as a string literal
    (one printable line whatever its ``__repr__`` returns)."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes, complex):
        return repr(value)
    if kind in (tuple, list):
        items = ", ".join(canonical_repr(v) for v in value)
        return f"({items},)" if kind is tuple and len(value) == 1 else (f"({items})" if kind is tuple else f"[{items}]")
    if kind in (set, frozenset):
        items = ", ".join(sorted(canonical_repr(v) for v in value))
        return f"{kind.__name__}({{{items}}})" if value else f"{kind.__name__}()"
    if kind is dict:
        return "{" + ", ".join(f"{canonical_repr(k)}: {canonical_repr(v)}" for k, v in value.items()) + "}"
    try:
        text = repr(value)
    except Exception:  # a __repr__ that raises: the type alone
        text = "?"
    return f"<{kind.__module__}.{kind.__qualname__} {text!r}>"


def resolve_static(root: Any, path: str) -> Any:
    """Follow a static path (``members[0].tools['a']``) from ``root``."""
    return eval("ops" + ("" if path.startswith("[") else ".") + path, {}, {"ops": root}) if path else root


def output_keys(nodes: tuple, value: Any) -> tuple[str, ...] | None:
    """The keys of the mapping ``value`` (an operand over ``nodes``) when the code fixes them: a dict
    display whose keys are all string literals; None when only running it can tell."""
    named = {getattr(node, "name", None): node for node in nodes}
    node = named.get(value.name) if isinstance(value, Ref) else None
    if not isinstance(node, Glue) or node.op != "dict" or len(node.operands) % 2:
        return None
    keys = node.operands[::2]
    if not all(isinstance(k, Const) and isinstance(k.value, str) for k in keys):
        return None
    found = tuple(k.value for k in keys)
    return found if len(set(found)) == len(found) else None
