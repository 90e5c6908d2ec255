"""Dynamic structure in static capture: map regions (loops over runtime sequences) and branch regions
(decisions on runtime values).

The abstract interpreter (``compiler.trace`` with ``abstract=True``) knows no input values; it calls
these functions with itself (``t``) and its frame, and they build on ``compiler.values`` only, never
on the interpreter's module. A loop or
comprehension over a runtime sequence is interpreted once with an abstract element; the nodes it
records become the body of a ``MapRegion`` that the plan runs once per element, concurrently. A
conditional jump on a runtime value interprets both sides up to their join point (the jump's immediate
post-dominator) and merges them into a ``Branch``: the plan evaluates the condition and runs only the
chosen side; a side that appends an element's value to the loop's list makes the map a filter
(``_filter``). ``compiler.constructs`` builds the other regions (switch, with, generator expressions,
functions as values) on these scopes. Everything these regions cannot express is a graph break with a
stable code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import CodeType
from typing import Any

from xcs.compiler.breaks import GraphBreak
from xcs.compiler.codegen import is_step
from xcs.compiler.ir import (
    Batching, Branch, Call, Const, Glue, Guard, MapRegion, OperatorCall, Ref, Static, With, is_literal, output_keys,
    walk,
)
from xcs.compiler.values import INPUT, PENDING, STATE, STATIC, STEP, IterState, Val, instructions, step_name

EXIT = -1
MAX_REENTRY = 64  # sides of one conditional jump open at once (a static loop with a runtime exit)
ENDS = frozenset({"RETURN_VALUE", "RAISE_VARARGS", "RERAISE"})


@dataclass
class MapIter:
    """The iterator of a loop over a runtime sequence: yields one abstract element, once."""

    over: Any  # the Val iterated
    opened: bool = False
    scope: Any = None  # the region's Scope while it is open


@dataclass
class Scope:
    """An open region (``map``) or branch side (``side``): mutations of older boxes are tracked here."""

    kind: str
    start: int
    item: str = ""
    locals_before: dict = field(default_factory=dict)
    appends: list = field(default_factory=list)
    loc: Any = None
    depth: int = 0  # the helper-call depth of the frame that opened it
    mark: Any = None  # for a branch side: (frame, jump, static state) it was opened at
    cells_before: dict = field(default_factory=dict)  # for a map: the frame's cell values at its start
    read_before: set = field(default_factory=set)  # for a map: locals its body read before assigning them


class LoopCarried:
    """The value of a variable assigned inside a region, seen after it: using it is a break."""

    code = "runtime-loop"

    def __init__(self, name: str):
        self.name = name

    def reason(self) -> str:
        return f"{self.name!r} is assigned in a loop over runtime data and used after it"


def unguarded(body: tuple, loc: Any) -> tuple:
    """``body``, when the capture did not specialise it on an input (a trace's guard holds for a whole
    plan, not for a region's body); else a break."""
    if any(isinstance(n, Guard) for n in walk(body)):
        raise GraphBreak("runtime-value", "a region's body specialises on an input value", loc)
    return body


def in_order(t: Any, body: tuple) -> tuple:
    """A body that runs in program order (a branch side, a with block) holding an effect: its glue
    that reads state, or an object an effect receives, is computed where the program reads it (a
    statement of its own), not where its value is used, which may come after a later effect."""
    if not any(isinstance(n, (Call, With)) for n in walk(body)):
        return body
    reads = t.readers | t.shared

    def hoist(nodes: tuple) -> tuple:  # not into a map's elements or a lambda: those run elsewhere
        out = []
        for n in nodes:
            if isinstance(n, Glue) and n.name in reads:
                n = replace(n, hoisted=True)
            elif isinstance(n, Branch) and is_step(n):  # a pure branch is one expression
                n = replace(n, then_body=hoist(n.then_body), else_body=hoist(n.else_body))
            elif isinstance(n, With):
                n = replace(n, body=hoist(n.body))
            out.append(n)
        return tuple(out)

    return hoist(body)


# ---------------------------------------------------------------------- map regions
def open_map(t: Any, frame: Any, state: MapIter) -> Any:
    """Start a map region at the loop's first FOR_ITER; return the abstract element."""
    nxt = frame.ins[frame.pc] if frame.pc < len(frame.ins) else None
    base = nxt.arg if nxt is not None and nxt.op == "STORE_FAST" else "item"
    item = t.builder.fresh(base)
    state.scope = Scope("map", len(t.builder.nodes), item, dict(frame.locals), [], t.loc, t.depth)
    state.scope.cells_before = {name: cell.val for name, cell in frame.cells.items()}
    t.scopes.append(state.scope)
    return Val(PENDING, Ref(item), max(state.over.kind, INPUT))


def close_map(t: Any, frame: Any, state: MapIter) -> None:
    """End the region when the loop comes back to FOR_ITER: emit the ``MapRegion`` node."""
    scope = t.scopes[-1]
    if scope is not state.scope:  # a side of a branch inside the loop went on past the element
        raise GraphBreak("runtime-loop", "break, continue or return in a branch inside a loop over runtime data", t.loc)
    if len(scope.appends) > 1:
        raise GraphBreak("runtime-loop", "a loop over runtime data appends more than once per element", scope.loc)
    carried = sorted(n for n in scope.read_before if frame.locals.get(n) is not scope.locals_before.get(n))
    if carried:  # the next element reads what this one assigned: the elements cannot run apart
        raise GraphBreak("runtime-loop", f"{carried[0]!r} is carried from one iteration of a loop over runtime "
                         "data to the next", scope.loc)
    result = keep = None
    target = None
    if scope.appends:  # (list, value[, whether this element appends: a filter])
        target, item, *cond = scope.appends[0]
        result = t.operand(item)
        keep = t.operand(cond[0]) if cond else None
    nodes = t.builder.nodes
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    t.scopes.pop()
    name = t.builder.fresh(f"map_{scope.item}")
    nodes.append(MapRegion(name, t.operand(state.over), scope.item, body, result, scope.loc, keep=keep))
    if state.over.kind == STATE:  # it iterates over state: read where the program reads it
        t.readers.add(name)
    for local, val in list(frame.locals.items()):
        if scope.locals_before.get(local) is not val:
            frame.locals[local] = Val(PENDING, LoopCarried(local), STEP)
    for local, cell in frame.cells.items():  # variables a closure captures live in cells
        if scope.cells_before.get(local) is not cell.val:
            cell.val = Val(PENDING, LoopCarried(local), STEP)
    if target is not None:
        for local, val in frame.locals.items():  # the list the user appends to names the region
            if val is target:
                t.variables.setdefault(name, local)
                break
        if target.box:
            prior = t.operand(t.make_box(list(target.box), list))
            ref = t.node(Glue(t.builder.fresh("concat"), "binop", (prior, Ref(name)), "+", loc=scope.loc))
        else:
            ref = Ref(name)
        t.touch(target)
        target.box, target.expr, target.raw, target.kind = None, ref, PENDING, STEP


def note_read(t: Any, name: str, val: Any) -> None:
    """A local read inside open map regions: remembered by each region whose body has not assigned it
    yet (``close_map``: a variable carried between elements)."""
    for scope in t.scopes:
        if scope.kind == "map" and scope.depth == t.depth and scope.locals_before.get(name) is val:
            scope.read_before.add(name)


def batch_region(t: Any, fn: Any, vmapped: tuple[str, Batching], inputs: Any) -> Any:
    """A call of a ``vmap``-ed operator (``fn``, reachable by a static path) on ``inputs``: a map region
    whose body is one element's call of the mapped operator (inlined when it is jitted) on an abstract
    element inputs mapping; the region's value is the vmap's output. ``vmapped`` is the operator's
    ``__xcs_vmap__``: the attribute path from it to the mapped operator and the ``Batching``."""
    suffix, batching = vmapped
    loc = t.loc
    over = t.operand(inputs)
    name = t.builder.fresh(step_name(fn.expr))
    t.remember(name, "call", t.frame)
    item = t.builder.fresh("element")
    scope = Scope("map", len(t.builder.nodes), item, {}, [], loc, t.depth)
    t.scopes.append(scope)
    mapped = Val(_path(fn.value, suffix), Static(f"{fn.expr.path}.{suffix}"))
    element = Val(PENDING, Ref(item), INPUT)
    if t.is_operator(mapped.value):
        out = t.call(mapped, [], {"inputs": element})
    else:  # a ``*, inputs`` function: the unit of work of each element, one call per element
        out = t.call_operator(mapped, [], {"inputs": element})
    result = t.operand(out)
    if t.scopes[-1] is not scope:
        raise GraphBreak("runtime-loop", "the vmapped operator returns from inside a runtime branch", loc)
    t.scopes.pop()
    nodes = t.builder.nodes
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    t.loc = loc
    if batching.out_keys is None:  # the element's output keys, when its code fixes them: an empty batch's keys
        batching = replace(batching, out_keys=output_keys(body, result))
    nodes.append(MapRegion(name, over, item, body, result, loc, batching))
    return Val(PENDING, Ref(name), STEP)


def _path(value: Any, suffix: str) -> Any:
    for part in suffix.split("."):
        value = getattr(value, part)
    return value


def record_mutation(t: Any, target: Any, op: str, item: Any = None) -> bool:
    """Called before a box mutation: True when it was recorded as the region's per-element append
    (so the box itself must not change), False when it may proceed; a break when it cannot."""
    t.touch(target)
    if not t.scopes or target.scope >= len(t.scopes):
        return False
    scope = t.scopes[-1]
    if scope.kind == "map" and op == "append" and target.scope == len(t.scopes) - 1:
        scope.appends.append((target, item))
        return True
    if (  # a filter: one side of a branch directly inside the loop appends the element's value
        scope.kind == "side" and op == "append" and not scope.appends and len(t.scopes) > 1
        and t.scopes[-2].kind == "map" and target.scope == len(t.scopes) - 2
    ):
        scope.appends.append((target, item))
        return True
    raise GraphBreak(
        "runtime-loop" if scope.kind == "map" else "runtime-branch",
        f"a {'loop over' if scope.kind == 'map' else 'branch on'} runtime data changes a container built "
        "before it (only appending one value per element to one list is compiled)",
        t.loc,
    )


# ---------------------------------------------------------------------- branch regions
@lru_cache(maxsize=1024)
def _postdominators(code: CodeType) -> tuple[int, ...]:
    """The immediate post-dominator of every instruction of ``code`` (EXIT when none)."""
    ins = instructions(code)
    n = len(ins)

    def successors(pc: int) -> tuple[int, ...]:
        op = ins[pc].op
        if op in ENDS:
            return (EXIT,)
        if op == "JUMP":
            return (ins[pc].arg,)
        if op in ("JUMP_IF", "FOR_ITER"):
            return (pc + 1, ins[pc].arg[0])
        return (pc + 1,) if pc + 1 < n else (EXIT,)

    full = (1 << (n + 1)) - 1
    exit_bit = 1 << n
    pdom = [full] * n
    changed = True
    while changed:
        changed = False
        for pc in range(n - 1, -1, -1):
            inter = full
            for s in successors(pc):
                inter &= exit_bit if s == EXIT else pdom[s]
            new = inter | (1 << pc)
            if new != pdom[pc]:
                pdom[pc], changed = new, True
    result = []
    for pc in range(n):
        strict = pdom[pc] & ~(1 << pc)
        ipdom = EXIT
        for d in range(n):
            if strict >> d & 1 and pdom[d] == strict:
                ipdom = d
                break
        result.append(ipdom)
    return tuple(result)


class Same:
    """Compares equal to a ``Same`` of the very same object (identity, never value or address)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj

    __hash__ = None  # type: ignore[assignment]


def _static_state(frame: Any) -> tuple:
    """What static control flow in ``frame`` depends on: its static locals and static iterators."""
    state = []
    for name, val in sorted(frame.locals.items()):
        if val.kind == STATIC:
            raw = val.raw
            key = (Same(raw), len(val.box)) if val.box is not None else raw if is_literal(raw) else Same(raw)
            state.append((name, key))
    state += [(Same(v.raw), v.raw.index) for v in frame.stack if isinstance(getattr(v, "raw", None), IterState)]
    return tuple(state)


def branch(t: Any, frame: Any, cond: Any, target: int, pops: bool, when: str) -> Any:
    """Interpret both sides of a conditional jump on a runtime value and merge them into a ``Branch``.

    Returns a Val when both sides return from the function (the merged return value), else None
    after leaving the frame at the join point with merged stack and locals.
    """
    jump_pc = frame.pc - 1
    join = _postdominators(frame.code)[jump_pc]
    loc = t.loc
    # Meeting this jump again inside one of its own sides: a loop. When no static value changed since
    # (no static loop advanced), the loop is driven by runtime data and would unroll forever.
    mark = (Same(frame), jump_pc, _static_state(frame))
    again = [s for s in t.scopes if s.mark is not None and s.mark[:2] == mark[:2]]
    if any(s.mark == mark for s in again) or len(again) >= MAX_REENTRY:
        raise GraphBreak("runtime-loop", "a loop whose condition is a runtime value (a while loop on runtime data)", loc)
    # "then" is the fall-through side, unless that side only jumps (3.12+ writes ``if c:`` inside a
    # loop as "jump to the body if c, else jump back"): then the jumped side, so the IR is the same on
    # every version.
    stack0, locals0, pc0 = list(frame.stack), dict(frame.locals), frame.pc
    swap = pops and frame.ins[pc0].op == "JUMP"
    test = _test(t, cond, when, swap)  # true when the "then" side runs
    cells0 = {name: cell.val for name, cell in frame.cells.items()}  # variables closures capture
    sides, side_cells, side_appends = [], [], []
    for jumped in ((True, False) if swap else (False, True)):
        frame.stack, frame.locals = list(stack0), dict(locals0)
        for name, cell in frame.cells.items():
            cell.val = cells0[name]
        if not pops and not jumped:
            frame.stack.pop()  # 3.11's JUMP_IF_*_OR_POP keeps the value only when it jumps
        frame.pc = target if jumped else pc0
        t.scopes.append(Scope("side", len(t.builder.nodes), loc=loc, depth=t.depth, mark=mark))
        returned = t.execute(frame, stop=join)
        outs = [returned] if returned is not None else None
        sides.append((returned, list(frame.stack), dict(frame.locals), outs))
        side_cells.append({name: cell.val for name, cell in frame.cells.items()})
        scope = t.scopes.pop()
        side_appends.append(scope.appends)
        body = tuple(t.builder.nodes[scope.start:])
        del t.builder.nodes[scope.start:]
        sides[-1] = (*sides[-1], body)
    (ret_a, stack_a, locals_a, _, body_a), (ret_b, stack_b, locals_b, _, body_b) = sides
    if (ret_a is None) != (ret_b is None):
        raise GraphBreak("runtime-branch", "one side of a branch on runtime data returns and the other does not", loc)
    if ret_a is not None:
        values = [(ret_a, ret_b)]
    else:
        if len(stack_a) != len(stack_b):
            raise GraphBreak("runtime-branch", "the two sides of a branch leave different stacks", loc)
        values = [(a, b) for a, b in zip(stack_a, stack_b) if a is not b]
        names = sorted(n for n in set(locals_a) | set(locals_b) if locals_a.get(n) is not locals_b.get(n))
        values += [(locals_a.get(n), locals_b.get(n)) for n in names]
        cells_a, cells_b = side_cells
        cell_names = sorted(n for n in cells_a if cells_a[n] is not cells_b[n])
        values += [(cells_a[n], cells_b[n]) for n in cell_names]
    # a value that is True on one side and False on the other (a match case's flag) is the test itself
    flags = {i: pair[0].raw for i, pair in enumerate(values) if _flag(pair)}
    filtered = _filter(t, side_appends, values, loc)
    # Outputs are rendered by re-entering each side's scope, so glue they need lands in that side.
    outs_a, outs_b = [], []
    for side, (body, outs, pick) in enumerate(((body_a, outs_a, 0), (body_b, outs_b, 1))):
        t.scopes.append(Scope("side", len(t.builder.nodes), loc=loc))
        for i, pair in enumerate(values):
            if i in flags:
                continue
            val = pair[pick]
            outs.append(t.operand(val) if val is not None else Const(None))
        extra = tuple(t.builder.nodes[t.scopes[-1].start:])
        del t.builder.nodes[t.scopes[-1].start:]
        t.scopes.pop()
        if side == 0:
            body_a = body + extra
        else:
            body_b = body + extra
    has_steps = any(isinstance(n, (OperatorCall, Call, MapRegion, Branch)) for n in body_a + body_b)
    name = t.builder.fresh("branch" if has_steps else "choice")
    body_a, body_b = in_order(t, body_a), in_order(t, body_b)
    t.node(Branch(name, t.operand(test), body_a, tuple(outs_a), body_b, tuple(outs_b), loc))
    if not t.scopes and any(isinstance(n, (Call, With)) for n in walk(body_a + body_b)):
        t.effects.append(name)  # an effect under a runtime condition: the branch is the effect
    kind = STEP if has_steps else max(test.kind, *(v.kind for pair in values for v in pair if v is not None), 0)
    outputs = iter(range(len(values)))
    result_vals = [
        _test(t, cond, when, swap == flags[i], plain=True) if i in flags
        else Val(PENDING, t.node(Glue(t.builder.fresh("picked"), "getitem", (Ref(name), Const(next(outputs))), loc=loc)), kind)
        for i in range(len(values))
    ]
    if filtered is not None:  # the loop's append: the merged value and whether the element appends
        target, both = filtered
        t.scopes[-1].appends.append((target, result_vals[-1]) if both else (target, *result_vals[-2:]))
    if ret_a is not None:
        return result_vals[0]
    merged_vals = iter(result_vals)
    frame.stack = [a if a is b else next(merged_vals) for a, b in zip(stack_a, stack_b)]
    frame.locals = {}
    for n in sorted(set(locals_a) | set(locals_b)):
        a, b = locals_a.get(n), locals_b.get(n)
        frame.locals[n] = a if a is b else next(merged_vals)
    for n in sorted(frame.cells):
        a, b = cells_a[n], cells_b[n]
        frame.cells[n].val = a if a is b else next(merged_vals)
    frame.pc = join
    return None


def _test(t: Any, cond: Any, when: str, taken: bool, plain: bool = False) -> Any:
    """The glue that is true when a jump on ``cond`` (``when``: "true", "false", "none", "not_none") is
    ``taken`` (or, ``taken`` False, when it is not). ``plain``: a value, so a test that is already a
    bool is itself (``x == 1``, not ``bool(x == 1)``)."""
    if when in ("none", "not_none"):
        return t.glue("is", [cond, Val(None, Const(None))], detail="is" if (when == "none") == taken else "is not")
    if (when == "true") != taken:
        return t.glue("not", [cond])
    return cond if plain and _boolean(t, cond) else t.glue("truth", [cond])


BOOLEAN = frozenset({"compare", "is", "contains", "not", "truth", "match_mapping", "match_sequence"})


def _boolean(t: Any, val: Any) -> bool:
    """Whether ``val`` is glue whose value is always a bool (a comparison, a test)."""
    if not isinstance(val.expr, Ref):
        return False
    for node in reversed(t.builder.nodes):
        if node.name == val.expr.name:
            return isinstance(node, Glue) and node.op in BOOLEAN
    return False


def _flag(pair: tuple) -> bool:
    """Whether a merged value is ``True`` on one side and ``False`` on the other (literals both)."""
    return all(v is not None and type(v.raw) is bool and isinstance(v.expr, Const) for v in pair) and pair[0].raw is not pair[1].raw


def _filter(t: Any, appends: list, values: list, loc: Any) -> Any:
    """When a side of a branch appended an element's value to the list its loop builds (a filter), the
    list (and whether both sides append); ``values`` gets the value (None on a side that does not append) and, when only one side
    appends, whether the element appends, as the branch's last outputs. None when no side appended."""
    if not any(appends):
        return None
    targets = [a[0][0] for a in appends if a]
    if len(targets) == 2 and targets[0] is not targets[1]:
        raise GraphBreak("runtime-loop", "the two sides of a branch in a loop append to different lists", loc)
    none = Val(None, Const(None))
    values.append(tuple(a[0][1] if a else none for a in appends))
    if all(appends):
        return targets[0], True
    values.append(tuple(Val(bool(a), Const(bool(a))) for a in appends))
    return targets[0], False
