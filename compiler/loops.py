"""Loop regions: a ``while`` or ``for`` loop on runtime data (a runtime condition, ``break``/
``continue``/``return`` under one, a loop over a runtime sequence that exits early or carries a
variable from one element to the next) captured as a ``Loop`` region instead of one opaque statement.

The capture (``compiler.trace``) meets such a loop as a break inside a statement of ``forward``. It
rolls the statement back and tries, in order (``WAYS``, ``capture_way``): the statement itself as a
loop region (``capture``); the statement as written with the loops inside it as loop regions
(``capture_statement``: a map region whose elements run a ``while``); the statement as a loop region
with its inner loops as loop regions too; then the statement runs as written, as before. A composite
sub-operator's ``forward`` that breaks is inlined again with its loops as loop regions (``inline``).

A loop region is built (``build``) by rewriting the loop's syntax tree into a function of ONE
iteration (line numbers and columns kept, so every node keeps its user location): the carried
variables (assigned in the loop and bound before it, or read after it; the containers it may change)
are parameters and come back in the tuple it returns, ``(status, *carried, value)``; ``break``,
``continue`` and ``return value`` become returns of that tuple with the status ``LOOP_BREAK``,
``LOOP_NEXT`` and ``LOOP_RETURN`` (``compiler.ir``); a while loop's condition guards the body (false:
``LOOP_END``). The interpreter captures that function once, on abstract carried values, with every
region it knows (an exit under a runtime condition is a branch whose sides both return); its nodes
are the loop's body. An ``else`` block is a second such function. A top-level loop that may
``return`` takes the rest of ``forward`` with it: a third function returns the loop's value when its
status is ``LOOP_RETURN`` and else runs the statements after the loop. Loops inside rewritten code
are ``Markers``: calls the interpreter answers by building their loop region in the calling frame.

Steps of one iteration that depend on no other step run together; effects, state reads and leaf
calls that change shared state keep program order (``after`` edges between the body's steps,
``_order``). A variable only the loop binds is read through ``runtime.segments.defined`` (unbound:
``UnboundLocalError``, as Python). Whatever this cannot express (a container the loop changes that
another variable holds, a loop in a helper function, a body the interpreter cannot capture) leaves
the statement to run as written.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import types
from dataclasses import replace
from typing import Any

from xcs.compiler.breaks import GraphBreak
from xcs.compiler.codegen import is_step
from xcs.compiler.ir import (
    LOOP_END, LOOP_NEXT, LOOP_RETURN, Branch, Call, Const, Global, Glue, Loc, Loop, MapRegion, OperatorCall, Ref, With,
    walk,
)
from xcs.compiler.loop_syntax import (
    CHECK, Defined, Exits, NotALoop, copied, function, loads_outside, mutated, names, own_exits, returns_in, statement_tree,
    synthetic,
)
from xcs.compiler.regions import Scope, in_order, unguarded
from xcs.compiler.values import PENDING, STEP, NeedsValue, Val
from xcs.runtime.segments import defined

UNBOUND = Global("xcs.runtime.segments", "UNBOUND")  # a variable the loop may bind, before it does
DEFINED = Global("xcs.runtime.segments", "defined")
LOOPS = "_xcs_loop"  # the rewritten code's parameter holding its ``Markers``
STATUS, VALUE = "_xcs_status", "_xcs_value"  # the rest function's parameters (not user names: a leading _xcs)
def _containers(bound: dict, names: Any) -> list[str]:
    """The ``names`` that hold a container built in forward (a list or dict the code may change in
    place); NotALoop when another variable also holds one (only the names given would be rebound)."""
    found = [n for n in names if n in bound and bound[n].box is not None and not isinstance(bound[n].raw, tuple)]
    for name in found:
        if any(m != name and _holds(v, bound[name]) for m, v in bound.items()):
            raise NotALoop(f"the container {name!r} the loop may change is also held by another variable")
    return found


def _holds(val: Val, target: Val, depth: int = 0) -> bool:
    """Whether ``val`` is ``target`` or a container built in forward holding it."""
    if val is target:
        return True
    box = val.box
    if box is None or depth > 8:
        return False
    return any(_holds(v, target, depth + 1) for v in (box.values() if isinstance(box, dict) else box))


WAYS = ("loop", "statement", "nested")  # ``capture_way``, in the order they are tried


def has_loop(code: types.CodeType, stmt: Any) -> bool:
    """Whether the statement of ``code`` on ``stmt``'s lines holds a ``while`` or ``for`` loop."""
    try:
        tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    except (NotALoop, SyntaxError):
        return False
    return any(isinstance(n, (ast.While, ast.For)) for n in ast.walk(tree))


def capture_way(t: Any, frame: Any, stmt: Any, statements: Any, way: str) -> tuple[bool, Any]:
    """One way to capture a statement holding loops on runtime data: the statement itself a loop
    region (``loop``: its inner loops as written; ``nested``: those as loop regions too), or the
    statement as written with its inner loops as loop regions (``statement``: a map region whose
    elements run a ``while``)."""
    if way == "statement":
        capture_statement(t, frame, stmt, statements)
        return False, None
    return capture(t, frame, stmt, statements, way == "nested")


def inline(t: Any, fn: Any, forward: types.FunctionType, call: Any) -> Any:
    """``call(forward)`` (a composite sub-operator inlined); when its capture breaks, once more with
    its loops on runtime data as loop regions (``inline_forward``); else the first break."""
    mark = snapshot(t)
    try:
        return call(forward)
    except (GraphBreak, NeedsValue) as exc:
        if not restore(t, mark):
            raise
        try:
            return inline_forward(t, fn, forward, call)
        except Exception:  # noqa: BLE001 - the first break stands
            restore(t, mark)
            raise exc from None


def may_leave_unbound(code: types.CodeType, stmt: Any) -> bool:
    """Whether the statement of ``code`` on ``stmt``'s lines may end without binding a name it binds
    (a compound statement: a loop that runs zero times, an ``if`` without ``else``, a ``try``)."""
    try:
        tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    except (NotALoop, SyntaxError):
        return True
    return isinstance(tree, (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.Match, ast.AsyncFor, ast.AsyncWith)) or (
        hasattr(ast, "TryStar") and isinstance(tree, ast.TryStar))


def capture(t: Any, frame: Any, stmt: Any, statements: Any, nested: bool) -> tuple[bool, Any]:
    """Capture the loop statement ``stmt`` (rolled back: ``frame`` holds the locals before it) as a
    ``Loop`` region (``nested``: the loops inside it too, see ``Markers``). Returns (True, forward's
    result) when the loop takes the rest of ``forward`` with it, (False, None) when the capture goes
    on after the loop; raises ``NotALoop`` (or whatever the interpreter raises) when it cannot: the
    statement then runs as written."""
    code = frame.code
    tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    if not isinstance(tree, (ast.While, ast.For)):
        raise NotALoop("not a while or for statement")
    later = {n for s in statements.items[stmt.index + 1:] for n in s.reads}
    if returns_in(tree) and not all(s.ok for s in statements.items[stmt.index + 1:]):
        raise NotALoop("a statement after a loop that returns cannot run on its own")
    state, returns = build(t, frame, tree, frozenset(later), nested)
    if not returns:
        return False, None
    rest = [ast.If(ast.Compare(ast.Name(STATUS, ast.Load()), [ast.Eq()], [ast.Constant(LOOP_RETURN)]),
                   [ast.Return(ast.Name(VALUE, ast.Load()))], [])]
    synthetic(rest[0], tree)
    for later_stmt in statements.items[stmt.index + 1:]:
        rest.append(statement_tree(code.co_filename, later_stmt.first, later_stmt.last))
    held = _bound(frame)
    params = tuple(sorted(held))
    fn = function("_xcs_rest", params + (STATUS, VALUE), rest, tree, code.co_filename, frame.globals)
    status = t.glue("getitem", [state, Val(0, Const(0))])
    value = t.glue("getitem", [state, Val(-1, Const(-1))])
    return True, t.call_function(fn, [held[n] for n in params] + [status, value], {})


def capture_statement(t: Any, frame: Any, stmt: Any, statements: Any) -> None:
    """A statement of forward holding loops on runtime data (a loop over a runtime list whose body
    runs a ``while``): captured as written but with those loops as loop regions (``Markers``), in a
    function of the names it reads that returns the names it binds for later statements."""
    code = frame.code
    tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    later = frozenset(n for s in statements.items[stmt.index + 1:] for n in s.reads)
    if stmt.returns:
        raise NotALoop("a statement that returns")
    bound = _bound(frame)
    reads = tuple(n for n in names(tree, ast.Load) if n in bound)
    changed = _containers(bound, reads)  # the loops in it may change them: rebound here after it
    writes = tuple(dict.fromkeys([n for n in names(tree, ast.Store) if n in later] + changed))
    table = Markers(code.co_filename)
    body = [table.rewrite(copied(tree), later)]
    if not table.loops:
        raise NotALoop("no loop on runtime data in the statement")
    back = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in writes], ast.Load()))
    synthetic(back, tree)
    fn = function("_xcs_statement", reads + (LOOPS,), [*body, back], tree, code.co_filename, frame.globals)
    result = t.call_function(fn, [bound[n] for n in reads] + [Val(table)], {})
    for i, name in enumerate(writes):
        assign(t, frame, name, result.box[i] if result.box is not None else t.glue("getitem", [result, Val(i, Const(i))]))


def inline_forward(t: Any, fn: Any, forward: types.FunctionType, call: Any) -> Any:
    """A composite sub-operator's ``forward`` (inlined into the caller's graph) whose loops on runtime
    data the interpreter could not unroll: captured again with those loops as loop regions."""
    if forward.__code__.co_freevars or forward.__closure__:
        raise NotALoop("a forward with closures")
    lines, first = inspect.getsourcelines(forward)
    tree = ast.parse("if True:\n" + "".join(lines)).body[0].body[0]
    ast.increment_lineno(tree, first - 2)
    if not isinstance(tree, ast.FunctionDef) or tree.decorator_list:
        raise NotALoop("not a plain function")
    table = Markers(forward.__code__.co_filename)
    tree.body = [table.rewrite(s, frozenset(), tree) for s in tree.body]
    if not table.loops:
        raise NotALoop("no loop on runtime data in forward")
    tree.args.kwonlyargs.append(ast.arg(LOOPS))
    tree.args.kw_defaults.append(None)
    module = ast.Module([tree], [])
    ast.fix_missing_locations(module)
    namespace: dict = {}
    exec(compile(module, forward.__code__.co_filename, "exec"), forward.__globals__, namespace)  # noqa: S102
    made = namespace[tree.name]
    made.__kwdefaults__ = {**(forward.__kwdefaults__ or {}), LOOPS: None}
    made.__defaults__ = forward.__defaults__
    made.__kwdefaults__[LOOPS] = table
    return call(made)


class Markers:
    """The loops on runtime data of a rewritten piece of code (``rewrite``): each replaced by
    ``_xcs_loop_K = _xcs_loop(K)`` (and, when it may return, ``if _xcs_loop_K[0] == LOOP_RETURN:
    return _xcs_loop_K[1]``); calling ``_xcs_loop`` (this table, a parameter of the rewritten
    function) captures loop K as a ``Loop`` in the calling frame (``call``)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.loops: list[tuple[ast.stmt, frozenset[str]]] = []

    def rewrite(self, tree: ast.stmt, later: frozenset[str], root: ast.AST | None = None) -> ast.stmt:
        """``tree`` (a part of ``root``) with every ``while`` and every ``for`` with its own
        ``break``/``continue``/``return`` replaced by a marker (a ``for`` without one stays a loop: a
        map region, markers inside). A marked loop's later reads: ``later`` and what ``root`` reads
        outside it."""
        table, root = self, tree if root is None else root

        class Replace(ast.NodeTransformer):
            def visit_While(self, node: ast.AST) -> Any:
                return table.mark(node, later | loads_outside(root, node))

            def visit_For(self, node: ast.For) -> Any:
                if own_exits(node):
                    return table.mark(node, later | loads_outside(root, node))
                return self.generic_visit(node)

            def visit_FunctionDef(self, node: ast.AST) -> Any:
                return node

            visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

        made = Replace().visit(tree)
        return made if not isinstance(made, list) else ast.copy_location(ast.If(ast.Constant(True), made, []), tree)

    def mark(self, node: ast.stmt, later: frozenset[str]) -> list[ast.stmt]:
        index = len(self.loops)
        self.loops.append((copied(node), later))
        local = f"{LOOPS}_{index}"
        made: list[ast.stmt] = [
            ast.Assign([ast.Name(local, ast.Store())], ast.Call(ast.Name(LOOPS, ast.Load()), [ast.Constant(index)], []))]
        if returns_in(node):
            item = lambda i: ast.Subscript(ast.Name(local, ast.Load()), ast.Constant(i), ast.Load())  # noqa: E731
            made.append(ast.If(ast.Compare(item(0), [ast.Eq()], [ast.Constant(LOOP_RETURN)]), [ast.Return(item(1))], []))
        for each in made:
            synthetic(each, node)
        return made

    def call(self, t: Any, frame: Any, index: int) -> Any:
        """Capture loop ``index`` in ``frame`` (its loops first as written, then as loop regions too)."""
        tree, later = self.loops[index]
        state, returns = attempt(t, lambda nested: build(t, frame, tree, later, nested))
        if not returns:
            return Val(None, Const(None))
        return t.make_box([t.glue("getitem", [state, Val(0, Const(0))]), t.glue("getitem", [state, Val(-1, Const(-1))])], tuple)


def attempt(t: Any, make: Any) -> Any:
    """``make(False)``, else (its capture rolled back) ``make(True)``: the loops inside as regions."""
    mark = snapshot(t)
    try:
        return make(False)
    except Exception:  # noqa: BLE001 - the second way, or the caller's fallback, decides
        if not restore(t, mark):
            raise
        return make(True)


def snapshot(t: Any) -> tuple:
    """What a failed capture of a piece of code must restore (``restore``)."""
    cp = t.cp
    return (len(t.builder.nodes), len(t.effects), len(t.required), list(t.scopes), list(t.helpers), t.depth, t.stepped,
            t.loc, t.frame, len(cp.boxes) if cp is not None else 0)


def restore(t: Any, mark: tuple) -> bool:
    """Undo what the interpreter recorded since ``mark``; False when it changed a container built in
    forward (only the statement's rollback restores those)."""
    nodes, effects, required, scopes, helpers, depth, stepped, loc, frame, boxes = mark
    if t.cp is not None and len(t.cp.boxes) != boxes:
        return False
    t.truncate(nodes, effects, required)
    t.scopes[:], t.helpers[:] = scopes, helpers
    t.depth, t.stepped, t.loc, t.frame = depth, stepped, loc, frame
    return True


def build(t: Any, frame: Any, tree: ast.stmt, later: frozenset[str], nested: bool) -> tuple[Any, bool]:
    """The ``Loop`` of the loop statement ``tree`` run in ``frame`` (whose locals hold the values
    before it), appended to the graph; ``later`` are the names read after it. Binds the carried
    variables in ``frame`` to the loop's values; returns the loop's value (the tuple) and whether it
    may ``return``."""
    code = frame.code
    bound = _bound(frame)
    targets = names(tree.target, ast.Store) if isinstance(tree, ast.For) else []
    writes = names(tree, ast.Store)
    unbound = [n for n in writes if n not in bound and n in later]
    if any(isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id in unbound for n in ast.walk(tree)):
        raise NotALoop("an augmented assignment of a variable the loop may leave unbound")
    loaded = names(tree, ast.Load)
    tree = Defined(set(unbound)).visit(copied(tree))  # reading one of them raises as Python does while unbound
    carried = [n for n in writes if n in bound or n in unbound]  # the loop variable too: read after it
    containers = _containers(bound, list(dict.fromkeys(mutated(tree) + loaded)))
    if not code.co_name.startswith("_xcs_"):  # a parameter's container: its caller may hold it too
        params = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        if params & set(mutated(tree)) & set(containers):
            raise NotALoop("the loop may change a container the function received")
    carried += [n for n in containers if n not in carried]  # the loop may change them: runtime values in it
    reads = tuple(n for n in loaded if n in bound and n not in carried)
    extra = {CHECK: Val(defined, DEFINED)} if unbound else {}
    table = Markers(code.co_filename)
    if nested:
        whole = copied(tree)
        tree.body = [table.rewrite(s, later, whole) for s in tree.body]
        tree.orelse = [table.rewrite(s, later, whole) for s in tree.orelse]
        if not table.loops:
            raise NotALoop("no loop inside the loop")
        extra[LOOPS] = Val(table)
    reads += tuple(extra)
    carried_t = tuple(carried)

    exits = Exits(carried_t, True)
    body = [exits.visit(s) for s in tree.body]
    end = exits.exit(tree, LOOP_NEXT)
    if isinstance(tree, ast.While):
        guarded = ast.If(tree.test, body + [end], [exits.exit(tree, LOOP_END)])
        ast.copy_location(guarded, tree)
        iteration_body, item_name = [guarded], ()
    else:
        item = "_xcs_item"
        first = ast.copy_location(ast.Assign([tree.target], ast.Name(item, ast.Load())), tree.target)
        iteration_body, item_name = [first, *body, end], (item,)
    globals_ = frame.globals
    iteration = function("_xcs_iteration", reads + carried_t + item_name, iteration_body, tree, code.co_filename, globals_)
    otherwise = None
    if tree.orelse:
        else_exits = Exits(carried_t, False)
        otherwise = function("_xcs_else", reads + carried_t, [else_exits.visit(s) for s in tree.orelse]
                              + [else_exits.exit(tree, LOOP_END)], tree, code.co_filename, globals_)
        exits.returns |= else_exits.returns
    outer = [extra[n] if n in extra else bound[n] for n in reads]
    over = None
    if isinstance(tree, ast.For):
        get = ast.copy_location(ast.Return(tree.iter), tree.iter)
        over = t.operand(t.call_function(function("_xcs_over", reads, [get], tree, code.co_filename, globals_), outer, {}))
    loc = t.loc = _loc_of(t, frame, tree.lineno)
    name = t.builder.fresh("loop")
    params = tuple(t.builder.fresh(n) for n in carried_t)
    element = t.builder.fresh(targets[0] if len(targets) == 1 else "item") if over is not None else ""
    init = tuple(t.operand(bound[n]) if n in bound else UNBOUND for n in carried_t)
    abstract = [Val(PENDING, Ref(p), STEP) for p in params]
    body_nodes, result = _body(t, iteration, outer + abstract + ([Val(PENDING, Ref(element), STEP)] if element else []), loc)
    else_nodes, else_result = _body(t, otherwise, outer + abstract, loc) if otherwise is not None else ((), None)
    node = Loop(name, params, init, _order(t, body_nodes), result, over, element, _order(t, else_nodes), else_result, loc)
    t.builder.nodes.append(node)
    inner = tuple(walk((node,)))
    if not t.scopes and (any(isinstance(n, (Call, With)) for n in inner) or any(n.name in t.writers for n in inner)):
        t.effects.append(name)  # inside a branch or another loop, that region is the effect
    if any(n.name in t.writers for n in inner):
        t.writers.add(name)
    t.stepped = True
    state = Val(PENDING, Ref(name), STEP)
    for i, local in enumerate(carried_t, 1):
        val = t.glue("getitem", [state, Val(i, Const(i))])
        if local in unbound:  # reading it raises as Python does when no iteration bound it
            val = t.glue("call", [Val(defined, DEFINED), val, Val(local, Const(local))])
        assign(t, frame, local, val)
    return state, exits.returns


def inside(t: Any) -> bool:
    """Whether the interpreter is inside a loop region's body: there a call of a method of a runtime
    value (``items.extend(page)``) runs as an effect, in program order (elsewhere its value is needed:
    a break, as before)."""
    return any(s.kind == "loop" for s in t.scopes)


def _bound(frame: Any) -> dict:
    """The names bound in ``frame`` (variables closures capture included)."""
    return {**{n: c.val for n, c in frame.cells.items() if c.val is not None}, **frame.locals}


def assign(t: Any, frame: Any, name: str, val: Val) -> None:
    """``name = val`` in ``frame`` (in its cell when a closure captures the variable)."""
    if name in frame.cells:
        frame.cells[name].val = val
    else:
        frame.locals[name] = val
    if t.abstract:
        frame.seen.note(name, val)


def _loc_of(t: Any, frame: Any, line: int) -> Any:
    text = linecache.getline(frame.code.co_filename, line).strip()
    return replace(t.loc, line=line, text=text, col=-1) if t.loc.file else Loc(line=line, text=text)


def _body(t: Any, fn: Any, args: list, loc: Any) -> tuple[tuple, Any]:
    """The nodes one call of ``fn`` records (inside a loop scope: containers built before it stay
    unchanged) and the operand of what it returns."""
    scope = Scope("loop", len(t.builder.nodes), loc=loc, depth=t.depth)
    t.scopes.append(scope)
    try:
        returned = t.call_function(fn, args, {})
        if t.scopes[-1] is not scope:
            raise NotALoop("a region inside the loop was left open")
        result = t.operand(returned)
    finally:
        if scope in t.scopes:
            t.scopes.remove(scope)
    nodes = t.builder.nodes
    body = tuple(nodes[scope.start:])
    del nodes[scope.start:]
    return in_order(t, unguarded(body, loc)), result


def _order(t: Any, body: tuple) -> tuple:
    """``body`` with ``after`` edges that keep its effects, state reads and calls that change shared
    state in program order: such a step follows every step before it, and every later step follows it
    (the other steps of one iteration may run together)."""
    reads = t.readers | t.shared | t.writers

    def ordered(node: Any) -> bool:
        if not is_step(node):
            return False
        inner = tuple(walk((node,)))
        return any(isinstance(n, (Call, With)) or n.name in reads or (isinstance(n, Glue) and n.hoisted) for n in inner) or (
            isinstance(node, (MapRegion, Branch, Loop)) and not all(
                isinstance(n, (OperatorCall, Glue, MapRegion, Branch)) for n in inner[1:]))

    out, before, last = [], [], None
    for node in body:
        if isinstance(node, Branch):  # each side is a sequence of its own
            node = replace(node, then_body=_order(t, node.then_body), else_body=_order(t, node.else_body))
        if is_step(node) and hasattr(node, "after"):
            extra = list(before) if ordered(node) else ([last] if last is not None else [])
            if extra:
                node = replace(node, after=tuple(dict.fromkeys((*node.after, *extra))))
            if ordered(node):
                last = node.name
            before.append(node.name)
        out.append(node)
    return tuple(out)
