"""Constructs the static capture turns into regions or glue besides loops and branches
(``compiler.regions``): generator expressions (``GenState``, ``consume``), functions as values
(``function``), an operator picked by a runtime key (``pick``, ``switch``) and ``with`` blocks
(``open_with``, ``close_with``).

Like the regions, they are called by the interpreter (``compiler.trace``) with itself (``t``) and build
on ``compiler.regions`` and ``compiler.values`` only: trace -> constructs -> regions -> values.
"""

from __future__ import annotations

import collections
import types
from dataclasses import dataclass, replace
from typing import Any, Callable

from xcs.compiler.breaks import GraphBreak
from xcs.compiler.codegen import is_step
from xcs.compiler.ir import Branch, Call, Const, Function, Glue, MapRegion, OperatorCall, Ref, Static, With, is_literal, walk
from xcs.compiler.regions import MapIter, Scope, in_order, unguarded
from xcs.compiler.values import INPUT, PENDING, STATIC, STEP, IterState, Val


# ---------------------------------------------------------------------- generator expressions
@dataclass
class GenState:
    """A generator expression made in forward and not consumed yet: its function (an ``Interpreted``
    taking the iterator ``over``), and ``native``, which makes the real generator for code that runs
    natively. Made lazily, as Python does: its body runs when a call consumes it (``consume``)."""

    fn: Any
    over: Any
    native: Callable[[], Any]
    consumed: bool = False


# Callables that consume an iterable argument to its end (unless an element or they raise), so that
# giving them the list of its elements is giving them the generator; and those that may stop early.
DRAINING = frozenset({sum, min, max, sorted, list, tuple, set, frozenset, dict, collections.Counter})
SHORT_CIRCUIT = frozenset({any, all})


def _consumer(target: Any) -> str:
    """``"drain"``, ``"short"`` or ``""`` (how ``target`` consumes a generator is not known)."""
    if isinstance(target, types.BuiltinMethodType) and target.__name__ == "join" and isinstance(target.__self__, str):
        return "drain"
    try:
        return "drain" if target in DRAINING else "short" if target in SHORT_CIRCUIT else ""
    except TypeError:  # unhashable
        return ""


def consume(t: Any, fn: Any, args: list, kwargs: dict) -> list:
    """``args`` of a call of ``fn`` with each generator expression among them made the list of its
    elements (interpreted as a comprehension; a map region over runtime data marked ``generator``).
    Only for a callee that consumes it as it would that list: one that drains it (``sum``,
    ``"".join``), or one that may stop early (``any``, ``all``) when the elements run no step (the
    plan writes the region as a generator expression, so the same elements are computed). Anything
    else is a break: the statement runs as written."""
    loc = t.loc
    if any(isinstance(v.raw, GenState) for v in kwargs.values()):
        t.breaks("unsupported-bytecode", "a generator expression passed by keyword")
        return args
    how = _consumer(fn.raw)
    if not how or (how == "short" and not t.abstract):
        name = getattr(fn.raw, "__name__", type(fn.raw).__name__)
        t.breaks("unsupported-bytecode", f"a generator expression consumed by {name}, which the capture does not model")
        return args
    out = []
    for val in args:
        gen = val.raw
        if not isinstance(gen, GenState):
            out.append(val)
            continue
        if gen.consumed:
            t.breaks("unsupported-bytecode", "a generator expression consumed twice")
            return args
        gen.consumed = True
        over = gen.over.raw
        if t.abstract and isinstance(over, IterState) and not over.index and any(v.kind != STATIC for v in over.items):
            # over a list built in forward of runtime values (operator outputs): one region over that list
            gen.over = Val(MapIter(t.make_box(list(over.items), list)))
        acc = t.make_box([], list)
        made = t.call_interpreted(gen.fn, [gen.over], {}, gen=acc)
        t.loc = loc
        ref = made.expr if made.box is None else None
        node = next((n for n in reversed(t.builder.nodes) if isinstance(ref, Ref) and n.name == ref.name), None)
        if isinstance(node, MapRegion):
            t.builder.nodes[t.builder.nodes.index(node)] = node = replace(node, generator=True)
        if how == "short" and not (
            (isinstance(node, MapRegion) and not is_step(node)) or (made.box is not None and t.kind(*made.box) == STATIC)
        ):
            t.breaks("unsupported-bytecode", "a generator expression that any()/all() may stop early runs a step per element")
            return args
        out.append(made)
    return out


# ---------------------------------------------------------------------- functions as values
def function(t: Any, fn: Any) -> Ref:
    """A lambda made in forward and used as a value (``key=lambda r: r["score"]``): its body
    interpreted once on abstract parameters into a ``Function`` (glue only: a lambda that calls an
    operator or a function with effects is a break), which the plan writes as a ``lambda``."""
    code, loc = fn.code, t.loc
    if code.co_flags & 0x0C or code.co_kwonlyargcount or fn.defaults or fn.kwdefaults or not t.dry:
        raise GraphBreak("unrenderable-value", "a function made during the call is used as a value", loc)
    params = tuple(t.builder.fresh(n) for n in code.co_varnames[:code.co_argcount])
    scope = Scope("function", len(t.builder.nodes), loc=loc, depth=t.depth)
    t.scopes.append(scope)
    try:
        result = t.operand(t.call_interpreted(fn, [Val(PENDING, Ref(p), INPUT) for p in params], {}))
    finally:
        if t.scopes and t.scopes[-1] is scope:
            t.scopes.pop()
    t.loc = loc
    nodes = t.builder.nodes
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    if any(isinstance(n, (OperatorCall, Call)) for n in walk(unguarded(body, loc))):
        raise GraphBreak("unrenderable-value", "a function made during the call, and used as a value, calls an operator", loc)
    return t.node(Function(t.builder.fresh("function"), params, body, result, loc))


# ---------------------------------------------------------------------- switch
def _choices(t: Any, container: Any) -> list | None:
    """The (key, operator Val) pairs of a static dict/list/tuple of operators reachable by attribute
    paths (or of a literal container built in forward holding such), in order; None otherwise."""
    if container.box is not None:
        pairs = list(container.box.items()) if isinstance(container.box, dict) else list(enumerate(container.box))
    elif isinstance(container.raw, dict):
        pairs = [(k, t.glue("getitem", [container, Val(k, Const(k))])) for k in container.raw]
    elif isinstance(container.raw, (list, tuple)):
        pairs = [(i, t.glue("getitem", [container, Val(i, Const(i))])) for i in range(len(container.raw))]
    else:
        return None
    keys = [k for k, _ in pairs]
    if not pairs or not (all(type(k) is str for k in keys) or all(type(k) is int for k in keys)):
        return None
    if not all(isinstance(v.expr, Static) and v.expr.path and v.kind == STATIC and t.is_operator(v.raw) for _, v in pairs):
        return None
    return pairs


def pick(t: Any, container: Any, key: Any) -> Any:
    """``container[key]`` for a runtime ``key``: an operator of a static collection (called later:
    ``switch``), or an item of a dict literal built in forward (glue); None when neither."""
    if _choices(t, container) is not None:
        val = t.glue("getitem", [container, key])
        val.options = (container, key)
        return val
    if isinstance(container.box, dict) and all(is_literal(k) for k in container.box):
        return t.glue("getitem", [container, key])
    return None


def switch(t: Any, fn: Any, args: list, kwargs: dict) -> Any:
    """A call of an operator picked by a runtime key (``self.tools[route](...)``): one branch per
    operator, tested in order (``route == 'search'``); each side calls its operator (compiled like any
    call); a key none matches takes the lookup itself, which raises as eager Python does."""
    container, key = fn.options
    pairs = _choices(t, container)
    loc, nodes, size = t.loc, t.builder.nodes, len(pairs)
    sequence = isinstance(container.raw, (list, tuple))

    def chain(i: int) -> tuple[tuple, Any]:
        start = len(nodes)
        if i == size:  # no operator's key: the lookup raises (KeyError, IndexError, TypeError)
            return (), t.operand(t.glue("getitem", [container, key]))
        k, op = pairs[i]
        if sequence:  # ``models[-1]`` is ``models[2]``
            test = t.glue("contains", [key, Val((k, k - size), Const((k, k - size)))], "in")
        else:
            test = t.glue("compare", [key, Val(k, Const(k))], "==")
        cond = t.operand(test)
        side = len(nodes)
        t.scopes.append(Scope("side", side, loc=loc, depth=t.depth))
        try:
            out = t.operand(t.call(op, args, kwargs))
        finally:
            t.scopes.pop()
        then_body = in_order(t, unguarded(tuple(nodes[side:]), loc))
        del nodes[side:]
        else_body, else_out = chain(i + 1)
        t.loc = loc
        name = t.builder.fresh("switch")
        nodes.append(Branch(name, cond, then_body, (out,), else_body, (else_out,), loc))
        picked = t.node(Glue(t.builder.fresh("picked"), "getitem", (Ref(name), Const(0)), loc=loc))
        body = tuple(nodes[start:])
        del nodes[start:]
        return body, picked

    body, out = chain(0)
    nodes.extend(body)
    if not t.scopes and any(isinstance(n, (Call, With)) for n in walk(body)):
        t.effects.append(next(n.name for n in body if isinstance(n, Branch)))
    t.stepped = True
    return Val(PENDING, out, STEP)


# ---------------------------------------------------------------------- with
class WithExit:
    """The ``__exit__`` a ``with`` block pushes (``open_with``): calling it ends the block (``close_with``)."""

    def __init__(self, scope: Scope, manager: Any, entered: str):
        self.scope, self.manager, self.entered = scope, manager, entered


def open_with(t: Any, frame: Any) -> None:
    """``BEFORE_WITH`` in a static capture: open a ``with`` scope; push its exit and the value the
    block enters (what ``as`` names)."""
    manager = frame.stack.pop()
    if any(s.kind == "map" for s in t.scopes):
        raise GraphBreak("unsupported-bytecode", "a with block inside a loop over runtime data", t.loc)
    nxt = frame.ins[frame.pc] if frame.pc < len(frame.ins) else None
    entered = t.builder.fresh(nxt.arg if nxt is not None and nxt.op == "STORE_FAST" else "entered")
    scope = Scope("with", len(t.builder.nodes), locals_before=dict(frame.locals), loc=t.loc, depth=t.depth)
    scope.cells_before = {name: cell.val for name, cell in frame.cells.items()}
    t.scopes.append(scope)
    frame.stack += [Val(WithExit(scope, manager, entered)), Val(PENDING, Ref(entered), STEP)]


def close_with(t: Any, frame: Any, exit: WithExit, args: list) -> Any:
    """The block's normal exit (``__exit__(None, None, None)``): emit the ``With`` node; the variables
    its body assigned are read from it after."""
    scope = exit.scope
    if not t.scopes or t.scopes[-1] is not scope or len(args) != 3 or any(a.raw is not None for a in args):
        raise GraphBreak("unsupported-bytecode", "a with block left other than at its end", scope.loc)
    names = sorted(n for n, v in frame.locals.items() if scope.locals_before.get(n) is not v)
    cells = sorted(n for n, c in frame.cells.items() if scope.cells_before.get(n) is not c.val)
    values = [frame.locals[n] for n in names] + [frame.cells[n].val for n in cells]
    outs = tuple(t.operand(v) for v in values)
    nodes = t.builder.nodes
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    t.scopes.pop()
    t.loc = scope.loc
    name = t.builder.fresh("with_block")
    nodes.append(With(name, t.operand(exit.manager), exit.entered, in_order(t, unguarded(body, scope.loc)), outs, scope.loc))
    if not t.scopes:
        t.effects.append(name)
    t.stepped = True
    picked = [Val(PENDING, t.node(Glue(t.builder.fresh("picked"), "getitem", (Ref(name), Const(i)), loc=scope.loc)), STEP)
              for i in range(len(values))]
    for n, val in zip(names + cells, picked):
        if n in names:
            frame.locals[n] = val
        else:
            frame.cells[n].val = val
    return Val(None, Const(None))
