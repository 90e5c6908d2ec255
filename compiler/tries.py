"""The ``try`` statement in the static capture: one ``Try`` region (``compiler.ir``).

Normalisation marks where a ``try`` body starts (``TRY_BEGIN``, its ``bytecode_versions.TryStart``
holding the exception table). There ``enter`` interprets, as sub-runs of the frame (as a branch runs
its sides): the body, up to where it leaves the range its handler protects; each ``except`` clause from
its handler's code (the types read before ``CHECK_EXC_MATCH``, the clause's body up to its
``POP_EXCEPT``, or a ``raise`` ending it); ``else`` up to where the handlers rejoin; and ``finally``
(its normal-path copy). The statement's shape (clauses, ``else``, ``finally``, ``except*``) is read from
the source with ``ast``. A body of glue only runs as written (``compiler.segments``), so what it raises
points at the user's line; a statement whose body and handlers all end by returning is a region whose
value the frame returns.

What a handler or ``finally`` reads of a variable the body assigns, and a variable one path assigns and
another may leave unset, is unknown until the plan runs: reading it is a break, as is ``return`` on
some of the statement's paths only, ``except*`` and a ``raise`` under a condition inside a handler. Like the regions, this
module is called by the interpreter with itself (``t``): trace -> tries -> regions -> values.
"""

from __future__ import annotations

import ast
import linecache
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from xcs.compiler.breaks import GraphBreak
from xcs.compiler.bytecode_versions import TryTable
from xcs.compiler import segments
from xcs.compiler.ir import Branch, Call, Const, Glue, Handler, Ref, Source, Try, With, operands, walk
from xcs.compiler.regions import LoopCarried, Scope, in_order, unguarded
from xcs.compiler.values import PENDING, STEP, Val

CODE = "unsupported-try"
KINDS = frozenset({"try", "handler", "else", "finally"})  # the scopes of a try's parts (run in program order)
TYPE_LOADS = frozenset({"LOAD_GLOBAL", "PUSH_NULL", "LOAD_ATTR", "LOAD_FAST", "LOAD_DEREF", "BUILD_TUPLE", "LOAD_CONST"})


class Unknown(LoopCarried):
    """A variable whose value after (or inside) a ``try`` depends on where the body raised."""

    code = CODE

    def reason(self) -> str:
        return f"{self.name!r} may or may not have been assigned when the try body raised"


class HandlerEnd(Exception):
    """An ``except`` clause being interpreted reached its ``POP_EXCEPT`` (instruction ``pc``)."""

    def __init__(self, pc: int):
        self.pc = pc


class HandlerRaise(Exception):
    """An ``except`` clause being interpreted ends by raising ``exc`` (None: ``raise`` again)."""

    def __init__(self, exc: Any, cause: Any):
        self.exc, self.cause = exc, cause


@dataclass(frozen=True)
class TryStart:
    """A ``try`` statement found at a ``TRY_BEGIN``: its line, the index of the handler of its body
    (its first ``except`` clause's, else its ``finally``'s), where its body starts, and the table."""

    line: int
    handler: int
    begin: int
    table: TryTable

    def handler_of(self, pc: int) -> int | None:
        return self.table.handler_of(pc)


def _find(t: Any, frame: Any, table: TryTable) -> tuple[ast.Try, TryStart] | None:
    """The ``try`` statement a ``TRY_BEGIN`` opens (None: the line opens none, a ``pass``). Statements
    opening at the same place (``try:`` right inside ``try:``) come after it; each inner one's handlers
    (one, or two with ``except`` and ``finally``) come first in the chain of the body's handlers."""
    ins, loc = frame.ins, t.loc
    found = _statements(frame.code.co_filename, "".join(linecache.getlines(frame.code.co_filename)))
    stmt = found.get(ins[frame.pc - 1].line)
    if stmt is None:
        return None
    if type(stmt).__name__ == "TryStar":
        raise GraphBreak(CODE, "except* is not modelled by the capture", loc)
    begin, skip = frame.pc, 0
    while begin < len(ins) and ins[begin].op == "TRY_BEGIN":
        inner = found.get(ins[begin].line)
        skip += 0 if inner is None else 1 + (bool(inner.handlers) and bool(inner.finalbody))
        begin += 1
    chain, handler = [], table.handler_of(begin)
    while handler is not None and len(chain) <= skip and len(chain) < 64:
        if ins[handler].op == "PUSH_EXC_INFO":
            chain.append(handler)
        handler = table.handler_of(handler)
    if len(chain) <= skip:
        raise GraphBreak(CODE, "a try statement whose handler the capture cannot find", loc)
    return stmt, TryStart(ins[frame.pc - 1].line or 0, chain[skip], begin, table)


def _in_handler(t: Any) -> bool:
    return bool(t.scopes) and t.scopes[-1].kind == "handler" and t.scopes[-1].depth == t.depth


def pop_except(t: Any, frame: Any) -> None:
    """``POP_EXCEPT``: the end of the clause being interpreted."""
    if not _in_handler(t):
        raise GraphBreak(CODE, "an except clause left other than at its end", t.loc)
    raise HandlerEnd(frame.pc - 1)


def raise_in_handler(t: Any, frame: Any, n: int) -> None:
    """``RAISE_VARARGS`` directly in a clause being interpreted ends it (``HandlerRaise``); elsewhere
    it returns and the raise is a break as before."""
    if not t.abstract or not _in_handler(t):
        return
    cause = frame.stack.pop() if n == 2 else None
    exc = frame.stack.pop() if n >= 1 else None
    raise HandlerRaise(exc, cause)


@lru_cache(maxsize=64)
def _statements(filename: str, text: str) -> dict[int, ast.AST]:
    """line -> the ``try`` statement starting there, in a source file's text."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    return {n.lineno: n for n in ast.walk(tree) if isinstance(n, (ast.Try, getattr(ast, "TryStar", ast.Try)))}


def _exit(t: Any, ins: tuple, start: TryStart, loc: Any) -> int:
    """The one instruction the body's normal path leaves for (a ``return`` ending the body included). An instruction is the body's when its chain of handlers reaches the body's handler (a
    comprehension's or a with block's own handler inside the body leads there)."""

    def inside(pc: int) -> bool:
        while pc < len(ins) and ins[pc].op == "TRY_BEGIN":  # a marker stands where the code after it is
            pc += 1
        handler, hops = start.handler_of(pc), 0
        while handler is not None and hops < 16:
            if handler == start.handler:
                return True
            handler, hops = start.handler_of(handler), hops + 1
        return False

    body = {pc for pc in range(start.begin, len(ins)) if inside(pc)}
    exits = set()
    for pc in sorted(body):
        op, arg = ins[pc].op, ins[pc].arg
        if op in ("RETURN_VALUE", "RETURN_GENERATOR", "YIELD_VALUE"):
            raise GraphBreak(CODE, "return inside a try statement", loc)
        if op == "UNREACHABLE":
            continue
        nexts = () if op in ("RAISE_VARARGS", "RERAISE") else (arg,) if op == "JUMP" else (
            (pc + 1, arg[0]) if op in ("JUMP_IF", "FOR_ITER") else (pc + 1,))
        exits |= {_hop(ins, n) for n in nexts if n not in body}  # (3.12+ may jump to a copy of what follows)
    if len(exits) != 1:
        raise GraphBreak(CODE, "a try body left in more than one way (break, continue)", loc)
    return exits.pop()


def _hop(ins: tuple, pc: int) -> int:
    """Where the instruction at ``pc`` continues: the target of a jump there (one jump: following more
    could leave an enclosing region's range), else ``pc``. The paths of a try statement meet there."""
    return ins[pc].arg if pc < len(ins) and ins[pc].op == "JUMP" else pc


def _follow(ins: tuple, pc: int) -> int:
    seen = set()
    while pc < len(ins) and ins[pc].op == "JUMP" and pc not in seen:
        seen.add(pc)
        pc = ins[pc].arg
    return pc


def _part(t: Any, frame: Any, kind: str, pc: int, stop: int, loc: Any) -> tuple:
    """Interpret ``frame`` from ``pc`` to ``stop`` in a scope of its own; its nodes."""
    nodes = t.builder.nodes
    scope = Scope(kind, len(nodes), loc=loc, depth=t.depth)
    t.scopes.append(scope)
    frame.pc = pc
    try:
        returned = t.execute(frame, stop=stop)
    finally:
        if t.scopes and t.scopes[-1] is scope:
            t.scopes.pop()
    if returned is not None:
        raise GraphBreak(CODE, "return inside a try statement", loc)
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    return body


def _outs(t: Any, vals: list, loc: Any) -> tuple[tuple, tuple]:
    """The operands of ``vals`` and the glue rendering them made."""
    nodes = t.builder.nodes
    start = len(nodes)
    t.scopes.append(Scope("side", start, loc=loc, depth=t.depth))
    try:
        outs = tuple(t.operand(v) for v in vals)
    finally:
        t.scopes.pop()
    made = tuple(nodes[start:])
    del nodes[start:]
    return outs, made


def _hoisted(body: tuple, outs: tuple = ()) -> tuple:
    """Glue of a try's body computed where the program computes it, so what it raises is raised inside
    the statement and in order: glue stays inline only in the first step after it that reads it;
    glue no step reads (dead, or read after the statement: ``outs``) or read only after another step
    is a statement of its own. An attribute nothing reads is the method a call was looked up from."""
    at = {n.name: i for i, n in enumerate(body) if isinstance(n, Glue)}
    read = {o.name for n in body for o in operands(n) if isinstance(o, Ref)} | {o.name for o in outs if isinstance(o, Ref)}
    inline: set[str] = {n.name for n in body if isinstance(n, Glue) and (
        (n.op == "getattr" and n.name not in read) or _cannot_raise(n))}
    previous, seen = -1, set()
    for i, n in enumerate(body):
        if isinstance(n, Glue):
            continue
        todo = [o.name for o in operands(n) if isinstance(o, Ref) and o.name in at]
        while todo:
            name = todo.pop()
            if name not in seen and at[name] > previous:
                seen.add(name)
                inline.add(name)
                todo += [o.name for o in operands(body[at[name]]) if isinstance(o, Ref) and o.name in at]
        previous = i
    out = []
    for n in body:
        if isinstance(n, Glue) and n.name not in inline:
            n = replace(n, hoisted=True)
        elif isinstance(n, Branch):
            n = replace(n, then_body=_hoisted(n.then_body, n.then_out), else_body=_hoisted(n.else_body, n.else_out))
        elif isinstance(n, With):
            n = replace(n, body=_hoisted(n.body, n.outs))
        out.append(n)
    return tuple(out)


def _cannot_raise(node: Glue) -> bool:
    """A list or tuple display, or a dict display with literal keys: building it raises nothing."""
    return node.op in ("list", "tuple") or (node.op == "dict" and all(isinstance(k, Const) for k in node.operands[::2]))


def _poisoned(base: dict, names: set) -> dict:
    out = dict(base)
    for n in names:
        out[n] = Val(PENDING, Unknown(n), STEP)
    return out


def _changed(before: dict, after: dict) -> set:
    return {n for n in set(before) | set(after) if before.get(n) is not after.get(n)}


def enter(t: Any, frame: Any, table: TryTable) -> Val | None:
    """``TRY_BEGIN``: capture the whole ``try`` statement as one ``Try`` node; leave the frame after it
    with the variables it assigns read from the node (or return the region's value when every path of
    the statement returns). A line that opens no ``try`` (a ``pass``) does nothing."""
    loc, ins = t.loc, frame.ins
    found = _find(t, frame, table)
    if found is None:
        return None
    stmt, start = found
    if frame.cells and any(isinstance(n, ast.Nonlocal) for n in ast.walk(stmt)):
        raise GraphBreak(CODE, "a try statement assigning a closure variable", loc)
    stack0, locals0 = list(frame.stack), dict(frame.locals)
    cells0 = {name: cell.val for name, cell in frame.cells.items()}
    exit_pc = _exit(t, ins, start, loc)
    body = _part(t, frame, "try", frame.pc, exit_pc, loc)
    returning = len(frame.stack) == len(stack0) + 1  # the value ``return`` ends the body with (then finally)
    if len(frame.stack) != len(stack0) + returning or (
            returning and not stmt.finalbody and ins[_follow(ins, exit_pc)].op != "RETURN_VALUE"):
        raise GraphBreak(CODE, "a try body left other than at its end", loc)
    returned = frame.stack.pop() if returning else None
    as_written = bool(body) and all(isinstance(n, Glue) for n in walk(body)) and not returning  # no step
    after_body = dict(frame.locals)
    assigned = _changed(locals0, after_body)

    handlers: list[tuple[Handler, dict | None]] = []  # (clause, its locals when it ends normally)
    types_nodes: list = []
    rejoin = None
    pc = start.handler + 1  # after PUSH_EXC_INFO
    for clause in stmt.handlers:
        frame.stack = stack0 + [Val(None, Const(None)), None]
        frame.locals = _poisoned(locals0, assigned)
        types = None
        if clause.type is not None:
            check = pc
            while check < len(ins) and ins[check].op in TYPE_LOADS:
                check += 1
            if ins[check].op != "CHECK_EXC_MATCH" or ins[check + 1].op != "JUMP_IF":
                raise GraphBreak(CODE, "an except clause whose types the capture cannot read", loc)
            mark = len(t.builder.nodes)
            frame.pc = pc
            t.execute(frame, stop=check)
            types = t.operand(frame.stack.pop())
            made = t.builder.nodes[mark:]
            if any(not isinstance(n, Glue) for n in made):
                raise GraphBreak(CODE, "an except clause whose types are computed by a call", loc)
            types_nodes += made
            del t.builder.nodes[mark:]
            body_pc, next_pc = check + 2, ins[check + 1].arg[0]
        else:
            body_pc, next_pc = pc, None
        bound = ""
        if clause.name and ins[body_pc].op == "STORE_FAST":
            bound = t.builder.fresh(clause.name)
        frame.stack[-1] = Val(PENDING, Ref(bound or "error"), STEP)
        nodes = t.builder.nodes
        scope = Scope("handler", len(nodes), loc=loc, depth=t.depth)
        t.scopes.append(scope)
        frame.pc = body_pc
        ended, raised = None, None
        try:
            if t.execute(frame, stop=-1) is not None:
                raise GraphBreak(CODE, "return inside an except clause", loc)
        except HandlerEnd as end:
            ended = end.pc
        except HandlerRaise as exc:
            raised = exc
        finally:
            if t.scopes and t.scopes[-1] is scope:
                t.scopes.pop()
        hbody = tuple(nodes[scope.start:])
        del nodes[scope.start:]
        if raised is not None:
            ends = [v for v in (raised.exc, raised.cause) if v is not None]
            operands_, made = _outs(t, ends, loc)
            exc_op = operands_[0] if raised.exc is not None else None
            cause_op = operands_[1] if raised.cause is not None else None
            handler = Handler(types, bound, hbody + made, (), exc_op, cause_op, raised.exc is None, loc)
            handlers.append((handler, None))
        else:
            if clause.name:
                frame.locals.pop(clause.name, None)  # ``del e`` at the clause's end
            after = ended + 1
            cleanup = [(i.op, i.arg) for i in ins[after:after + 3]]
            if clause.name and cleanup == [("LOAD_CONST", None), ("STORE_FAST", clause.name), ("DELETE_FAST", clause.name)]:
                after += 3  # ``e = None; del e``
            target = _hop(ins, after)
            value = frame.stack[-2] if len(frame.stack) == len(stack0) + 2 else None  # ``return value; POP_EXCEPT``
            if returning != (value is not None and ins[target].op == "RETURN_VALUE"):
                raise GraphBreak(CODE, "return inside a try statement on some of its paths only", loc)
            if not returning and rejoin is not None and target != rejoin:
                raise GraphBreak(CODE, "except clauses that continue in different places", loc)
            rejoin = target
            h_locals = dict(frame.locals) if value is None else {"": value}
            handlers.append((Handler(types, bound, hbody, (), loc=loc), h_locals))
        if next_pc is None:
            break
        pc = next_pc

    frame.stack = list(stack0)
    if as_written:  # once nothing else can break (names are given the same way on every version)
        body = _as_written(t, frame, stmt, locals0, loc)
        after_body = dict(frame.locals)
    frame.locals = dict(after_body)
    if returning:
        return _returns(t, frame, start, stmt, (body, exit_pc, locals0, assigned), handlers, types_nodes, returned, loc)
    exit_to = _hop(ins, exit_pc)
    if rejoin is None:
        if stmt.orelse and stmt.handlers:
            raise GraphBreak(CODE, "a try with else whose except clauses all raise", loc)
        rejoin = exit_to
    else_body = () if exit_to == rejoin else _part(t, frame, "else", exit_pc, rejoin, loc)
    if len(frame.stack) != len(stack0):
        raise GraphBreak(CODE, "a try statement whose paths join inside an expression", loc)
    normal = dict(frame.locals)
    if any(frame.cells[n].val is not v for n, v in cells0.items()):
        raise GraphBreak(CODE, "a try statement assigning a closure variable", loc)

    paths = [normal] + [h_locals for _, h_locals in handlers if h_locals is not None]
    names = sorted(set().union(*(_changed(locals0, p) for p in paths)))
    unknown = {n for n in names if any(p.get(n) is None or isinstance(p[n].expr, Unknown) for p in paths)}
    kept = [n for n in names if n not in unknown]
    outs, made = _outs(t, [normal[n] for n in kept], loc)
    else_body = else_body + made if else_body else else_body
    body = body if else_body else body + made
    built = []
    for handler, h_locals in handlers:
        if h_locals is not None:
            h_outs, h_made = _outs(t, [h_locals[n] for n in kept], loc)
            handler = replace(handler, body=handler.body + h_made, outs=h_outs)
        built.append(replace(handler, body=in_order(t, _hoisted(unguarded(handler.body, loc), handler.ends))))

    final_body, final_outs, final_names, end = (), (), [], rejoin
    if stmt.finalbody:
        final_body, final_names, end = _finally(t, frame, start, stmt, rejoin, locals0, set(names), loc)
        final_outs, made = _outs(t, [frame.locals[n] for n in final_names], loc)
        final_body += made

    name = _emit(t, Try(
        t.builder.fresh("try_block"), in_order(t, _hoisted(unguarded(body, loc), () if else_body else outs)), tuple(built),
        in_order(t, _hoisted(unguarded(else_body, loc), outs)), outs,
        in_order(t, _hoisted(unguarded(final_body, loc), final_outs)), final_outs, loc,
    ), types_nodes)
    result = dict(locals0)
    for i, n in enumerate(kept + final_names):
        ref = t.node(Glue(t.builder.fresh("picked"), "getitem", (Ref(name), Const(i)), loc=loc))
        result[n] = Val(PENDING, ref, STEP)
    for n in unknown - set(final_names):
        result[n] = Val(PENDING, Unknown(n), STEP)
    frame.locals, frame.stack, frame.pc = result, list(stack0), end


def _returns(t: Any, frame: Any, start: TryStart, stmt: ast.Try, body_state: tuple, handlers: list, types_nodes: list,
             returned: Any, loc: Any) -> Val:
    """A ``try`` whose body and every handler that does not raise end by returning (a helper's
    ``try: return self.main(...) except E: return self.backup(...)``, or ``try: return ... finally:``
    without handlers): each path's value is the one it returns; the frame returns the region's."""
    body, exit_pc, locals0, assigned = body_state
    if stmt.orelse or (stmt.finalbody and stmt.handlers):
        raise GraphBreak(CODE, "return inside a try statement with else, or with both except and finally", loc)
    final_body = ()
    if stmt.finalbody:  # between the value and the return: the finally's normal-path copy
        final_body, final_names, end = _finally(t, frame, start, stmt, exit_pc, locals0, assigned, loc)
        if final_names or frame.ins[_follow(frame.ins, end)].op != "RETURN_VALUE":
            raise GraphBreak(CODE, "a finally block that assigns a variable after a return", loc)
    outs, made = _outs(t, [returned], loc)
    built = []
    for handler, h_locals in handlers:
        if h_locals is not None:
            h_outs, h_made = _outs(t, [h_locals[""]], loc)
            handler = replace(handler, body=handler.body + h_made, outs=h_outs)
        built.append(replace(handler, body=in_order(t, _hoisted(unguarded(handler.body, loc), handler.ends))))
    name = _emit(t, Try(t.builder.fresh("try_block"), in_order(t, _hoisted(unguarded(body + made, loc), outs)),
                        tuple(built), (), outs, in_order(t, _hoisted(unguarded(final_body, loc))), loc=loc), types_nodes)
    return Val(PENDING, t.node(Glue(t.builder.fresh("picked"), "getitem", (Ref(name), Const(0)), loc=loc)), STEP)


def _emit(t: Any, node: Try, types_nodes: list) -> str:
    """Append the region (after the glue its handlers' types need); it is an effect when it holds one."""
    t.builder.nodes.extend(types_nodes)
    t.builder.nodes.append(node)
    if not t.scopes and any(isinstance(n, (Call, With)) for n in walk((node,))):
        t.effects.append(node.name)
    t.stepped = True
    return node.name


def _as_written(t: Any, frame: Any, stmt: ast.Try, locals0: dict, loc: Any) -> tuple:
    """A body of glue only as one ``Call`` of the user's own statements (``compiler.segments``): what
    it raises is raised at the user's line. The variables it assigns are read from its result."""
    part = segments.block(stmt.body)
    code = frame.code
    held = {n: c.val for n, c in frame.cells.items() if c.val is not None}  # closure variables (3.11)
    held.update(locals0)
    params = tuple(n for n in part.reads if n in held)
    writes = tuple(n for n in part.writes if n in code.co_varnames)
    if any(n in frame.cells for n in part.writes):
        raise GraphBreak(CODE, "a try statement assigning a closure variable", loc)
    name = t.builder.fresh("segment")
    text = segments.function_text(code.co_filename, name, params, (part,), writes) if part.ok and not part.returns else None
    if text is None:
        raise GraphBreak(CODE, "a try body the capture cannot run as written", loc)
    nodes = t.builder.nodes
    start = len(nodes)
    args = tuple(t.operand(held[n]) for n in params)
    module = frame.globals.get("__name__", "__main__")
    nodes.append(Call(name, Const(None), args, (), _loc_of(loc, code, part.first), (), Source(module, part.first - 1, text)))
    frame.locals = dict(locals0)
    for i, written in enumerate(writes):
        frame.locals[written] = Val(PENDING, t.node(Glue(t.builder.fresh(written), "getitem", (Ref(name), Const(i)), loc=loc)), STEP)
    body = tuple(nodes[start:])
    del nodes[start:]
    return body


def _loc_of(loc: Any, code: Any, line: int) -> Any:
    text = linecache.getline(code.co_filename, line).strip()
    return replace(loc, line=line, text=text, col=-1)


def _finally(t: Any, frame: Any, start: TryStart, stmt: ast.Try, rejoin: int, locals0: dict, assigned: set,
             loc: Any) -> tuple[tuple, list, int]:
    """The ``finally`` body (its copy on the normal path, from ``rejoin``): its nodes, the variables it
    assigns and where the statement ends."""
    ins = start.handler_of
    handler = start.handler if not stmt.handlers else ins(ins(start.handler) or -1)
    code = frame.ins
    if handler is None or code[handler].op != "PUSH_EXC_INFO":
        raise GraphBreak(CODE, "a finally block the capture cannot find", loc)
    cleanup = ins(handler)
    last = max((e for s, e, h in start.table.table if h == cleanup and s >= handler), default=-1) - 1
    if last < 0 or code[last].op != "RERAISE":
        raise GraphBreak(CODE, "a finally block the capture cannot find", loc)
    size = last - handler - 1
    copy = code[rejoin:rejoin + size]
    if [i.op for i in copy] != [i.op for i in code[handler + 1:last]]:
        raise GraphBreak(CODE, "a finally block whose two copies differ", loc)
    frame.locals = _poisoned(locals0, assigned)
    before = dict(frame.locals)
    body = _part(t, frame, "finally", rejoin, rejoin + size, loc)
    names = sorted(n for n in _changed(before, frame.locals) if n in frame.locals)
    return body, names, rejoin + size
