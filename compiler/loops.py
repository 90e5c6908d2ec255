"""Loop regions: a top-level ``while`` or ``for`` statement of ``forward`` on runtime data (a runtime
condition, ``break``/``continue``/``return`` under one, a loop over a runtime sequence that exits
early) captured as a ``Loop`` region instead of one opaque statement.

The capture (``compiler.trace``) meets such a loop as a ``runtime-loop`` break: a loop driven by
runtime data cannot be unrolled. It then rolls the statement back and calls ``capture``, which
rewrites the loop's syntax tree into a function of ONE iteration (line numbers and columns kept, so
every node keeps its user location): the carried variables (assigned in the loop and bound before
it) are parameters and come back in the tuple it returns, ``(status, *carried, value)``; ``break``,
``continue`` and ``return value`` become returns of that tuple with the status ``LOOP_BREAK``,
``LOOP_NEXT`` and ``LOOP_RETURN`` (``compiler.ir``); a while loop's condition guards the body (false:
``LOOP_END``). The interpreter captures that function once, on abstract carried values, with every
region it knows (an exit under a runtime condition is a branch whose sides both return); its nodes
are the loop's body. An ``else`` block is a second such function. A loop that may ``return`` takes
the rest of ``forward`` with it: a third function returns the loop's value when its status is
``LOOP_RETURN`` and else runs the statements after the loop.

Steps of one iteration that depend on no other step run together; effects, state reads and leaf
calls that change shared state keep program order (``after`` edges between the body's steps,
``order``). Whatever this cannot express (a variable first bound inside the loop and read after it,
a closure variable, a loop nested in another statement, a body the interpreter cannot capture)
leaves the statement to run as written, as before.
"""

from __future__ import annotations

import ast
import linecache
import types
from dataclasses import replace
from typing import Any

from xcs.compiler.codegen import is_step
from xcs.compiler.ir import (
    LOOP_BREAK, LOOP_END, LOOP_NEXT, LOOP_RETURN, Branch, Call, Const, Global, Glue, Loop, MapRegion, OperatorCall, Ref, With,
    walk,
)
from xcs.compiler.regions import Scope, in_order, unguarded
from xcs.compiler.values import PENDING, STEP, Val
from xcs.runtime.loops import defined

UNBOUND = Global("xcs.runtime.segments", "UNBOUND")  # a variable the loop may bind, before it does
DEFINED = Global("xcs.runtime.loops", "defined")
CHECK = "_xcs_defined"  # the iteration's parameter holding ``defined``
STATUS, VALUE = "_xcs_status", "_xcs_value"  # the rest function's parameters (not user names: a leading _xcs)


class NotALoop(Exception):
    """The statement is not a loop this module can capture (it then runs as written)."""


def statement_tree(filename: str, first: int, last: int) -> ast.stmt:
    """The statement on lines ``first``..``last`` of ``filename``, parsed with its real lines and columns."""
    lines = linecache.getlines(filename)[first - 1:last]
    if not lines or not lines[0][:1].isspace():
        raise NotALoop("not an indented statement")
    tree = ast.parse("if True:\n" + "".join(lines))
    ast.increment_lineno(tree, first - 2)
    return tree.body[0].body[0]


class _Exits(ast.NodeTransformer):
    """``break``/``continue``/``return`` of one loop (not of loops or functions nested in it) as a
    return of ``(status, *carried, value)``."""

    def __init__(self, carried: tuple[str, ...], loop: bool):
        self.carried, self.loop, self.returns = carried, loop, False

    def exit(self, node: ast.stmt, status: int, value: ast.expr | None = None) -> ast.Return:
        items = [ast.Constant(status), *(ast.Name(n, ast.Load()) for n in self.carried), value or ast.Constant(None)]
        made = ast.Return(ast.Tuple(items, ast.Load()))
        for each in ast.walk(made):
            if each is not value and not (value is not None and _inside(each, value)):
                ast.copy_location(each, node)
                each.col_offset = each.end_col_offset = 0  # no source site starts there
        return made

    def visit_Break(self, node: ast.Break) -> Any:
        return self.exit(node, LOOP_BREAK) if self.loop else node

    def visit_Continue(self, node: ast.Continue) -> Any:
        return self.exit(node, LOOP_NEXT) if self.loop else node

    def visit_Return(self, node: ast.Return) -> Any:
        self.returns = True
        return self.exit(node, LOOP_RETURN, node.value)

    def nested(self, node: ast.AST) -> Any:  # an inner loop: its break/continue are its own
        outer, self.loop = self.loop, False
        try:
            return self.generic_visit(node)
        finally:
            self.loop = outer

    visit_For = visit_While = visit_AsyncFor = nested

    def visit_FunctionDef(self, node: ast.AST) -> Any:
        return node

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef


class _Defined(ast.NodeTransformer):
    """Every read of ``names`` (variables the loop binds first) as ``_xcs_defined(name, "name")``."""

    def __init__(self, names: set[str]):
        self.names = names

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id not in self.names or not isinstance(node.ctx, ast.Load):
            return node
        made = ast.Call(ast.Name(CHECK, ast.Load()), [node, ast.Constant(node.id)], [])
        for each in (made, made.func, made.args[1]):
            ast.copy_location(each, node)
        return made

    def visit_FunctionDef(self, node: ast.AST) -> Any:
        return node

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef


def _holds(val: Val, target: Val, depth: int = 0) -> bool:
    """Whether ``val`` is ``target`` or a container built in forward holding it."""
    if val is target:
        return True
    box = val.box
    if box is None or depth > 8:
        return False
    return any(_holds(v, target, depth + 1) for v in (box.values() if isinstance(box, dict) else box))


def _inside(node: ast.AST, tree: ast.AST) -> bool:
    return any(node is n for n in ast.walk(tree))


def _function(name: str, params: tuple[str, ...], body: list[ast.stmt], at: ast.stmt, filename: str,
              globals_: dict) -> types.FunctionType:
    """``def name(params): body`` compiled with ``filename`` (its statements keep their lines)."""
    fn = ast.FunctionDef(name, ast.arguments([], [ast.arg(p) for p in params], None, [], [], None, []), body, [], None)
    if hasattr(fn, "type_params"):
        fn.type_params = []
    ast.copy_location(fn, at)
    module = ast.Module([fn], [])
    ast.fix_missing_locations(module)
    namespace: dict = {}
    exec(compile(module, filename, "exec"), globals_, namespace)  # noqa: S102 - the user's own statements
    return namespace[name]


def _names(node: ast.AST, ctx: type) -> list[str]:
    """The names ``node`` loads (``ast.Load``) or binds (``ast.Store``), outside nested scopes, in order."""
    found: dict[str, None] = {}

    def visit(n: ast.AST) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ctx):
            found.setdefault(n.id)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            found.setdefault(n.target.id)  # ``x += 1`` loads x too
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return list(found)


def _mutated(node: ast.AST) -> list[str]:
    """Names whose object the loop may change in place: a method's receiver, a subscript or attribute
    assigned or deleted through them."""
    found: dict[str, None] = {}
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            found.setdefault(n.func.value.id)
        if isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, (ast.Store, ast.Del)):
            if isinstance(n.value, ast.Name):
                found.setdefault(n.value.id)
    return list(found)


def is_loop(code: types.CodeType, stmt: Any) -> bool:
    """Whether the statement of ``code`` on ``stmt``'s lines is a ``while`` or ``for`` loop."""
    try:
        return isinstance(statement_tree(code.co_filename, stmt.first, stmt.last), (ast.While, ast.For))
    except (NotALoop, SyntaxError):
        return False


def may_leave_unbound(code: types.CodeType, stmt: Any) -> bool:
    """Whether the statement of ``code`` on ``stmt``'s lines may end without binding a name it binds
    (a compound statement: a loop that runs zero times, an ``if`` without ``else``, a ``try``)."""
    try:
        tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    except (NotALoop, SyntaxError):
        return True
    return isinstance(tree, (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.Match, ast.AsyncFor, ast.AsyncWith)) or (
        hasattr(ast, "TryStar") and isinstance(tree, ast.TryStar))


def capture(t: Any, frame: Any, stmt: Any, statements: Any) -> tuple[bool, Any]:
    """Capture the loop statement ``stmt`` (rolled back: ``frame`` holds the locals before it) as a
    ``Loop`` region. Returns (True, forward's result) when the loop takes the rest of ``forward`` with
    it, (False, None) when the capture goes on after the loop; raises ``NotALoop`` (or whatever the
    interpreter raises) when it cannot: the statement then runs as written."""
    code = frame.code
    tree = statement_tree(code.co_filename, stmt.first, stmt.last)
    if not isinstance(tree, (ast.While, ast.For)) or frame.cells:
        raise NotALoop("not a while or for statement of a function without closures")
    later = {n for s in statements.items[stmt.index + 1:] for n in s.reads}
    bound = frame.locals
    targets = _names(tree.target, ast.Store) if isinstance(tree, ast.For) else []
    writes = _names(tree, ast.Store)
    unbound = [n for n in writes if n not in bound and n in later and n not in targets]
    for name in writes:
        if name in targets and name in later:
            raise NotALoop(f"the loop variable {name!r} is read after the loop")
    if any(isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id in unbound for n in ast.walk(tree)):
        raise NotALoop("an augmented assignment of a variable the loop may leave unbound")
    tree = _Defined(set(unbound)).visit(tree)  # reading one of them raises as Python does while unbound
    carried = [n for n in writes if (n in bound or n in unbound) and n not in targets]
    containers = [n for n in dict.fromkeys(_mutated(tree) + _names(tree, ast.Load))
                  if n in bound and bound[n].box is not None and not isinstance(bound[n].raw, tuple)]
    carried += [n for n in containers if n not in carried]  # the loop may change them: runtime values in it
    for name in containers:
        if any(m != name and _holds(v, bound[name]) for m, v in bound.items()):
            raise NotALoop(f"the container {name!r} the loop may change is also held by another variable")
    reads = tuple(n for n in dict.fromkeys(_names(tree, ast.Load) + list(stmt.reads)) if n in bound and n not in carried)
    reads += (CHECK,) if unbound else ()
    carried_t = tuple(carried)

    exits = _Exits(carried_t, True)
    body = [exits.visit(s) for s in tree.body]
    end = exits.exit(tree, LOOP_NEXT)
    if isinstance(tree, ast.While):
        guarded = ast.If(tree.test, body + [end], [exits.exit(tree, LOOP_END)])
        ast.copy_location(guarded, tree)
        iteration_body, item_name = [guarded], ()
    else:
        item = "_xcs_item"
        assign = ast.copy_location(ast.Assign([tree.target], ast.Name(item, ast.Load())), tree.target)
        iteration_body, item_name = [assign, *body, end], (item,)
    if exits.returns and not all(s.ok for s in statements.items[stmt.index + 1:]):
        raise NotALoop("a statement after a loop that returns cannot run on its own")
    globals_ = frame.globals
    iteration = _function("_xcs_iteration", reads + carried_t + item_name, iteration_body, tree, code.co_filename, globals_)
    otherwise = None
    if tree.orelse:
        else_exits = _Exits(carried_t, False)
        otherwise = _function("_xcs_else", reads + carried_t, [else_exits.visit(s) for s in tree.orelse]
                              + [else_exits.exit(tree, LOOP_END)], tree, code.co_filename, globals_)
        exits.returns |= else_exits.returns
    over = None
    if isinstance(tree, ast.For):
        get = ast.copy_location(ast.Return(tree.iter), tree.iter)
        over = t.operand(t.call_function(_function("_xcs_over", reads, [get], tree, code.co_filename, globals_),
                                         [bound[n] if n != CHECK else Val(defined, DEFINED) for n in reads], {}))
    loc = t.loc = _loc_of(t, frame, stmt)
    name = t.builder.fresh("loop")
    params = tuple(t.builder.fresh(n) for n in carried_t)
    element = t.builder.fresh(targets[0] if len(targets) == 1 else "item") if over is not None else ""
    outer = [bound[n] if n != CHECK else Val(defined, DEFINED) for n in reads]
    init = tuple(t.operand(bound[n]) if n in bound else UNBOUND for n in carried_t)
    abstract = [Val(PENDING, Ref(p), STEP) for p in params]
    body_nodes, result = _body(t, iteration, outer + abstract + ([Val(PENDING, Ref(element), STEP)] if element else []), loc)
    else_nodes, else_result = _body(t, otherwise, outer + abstract, loc) if otherwise is not None else ((), None)
    node = Loop(name, params, init, _order(t, body_nodes), result, over, element, _order(t, else_nodes), else_result, loc)
    t.builder.nodes.append(node)
    if any(isinstance(n, (Call, With)) for n in walk((node,))) or any(n.name in t.writers for n in walk((node,))):
        t.effects.append(name)
    if any(n.name in t.writers for n in walk((node,))):
        t.writers.add(name)
    t.stepped = True
    state = Val(PENDING, Ref(name), STEP)
    for i, local in enumerate(carried_t, 1):
        frame.locals[local] = t.glue("getitem", [state, Val(i, Const(i))])
        if local in unbound:  # reading it raises as Python does when no iteration bound it
            frame.locals[local] = t.glue("call", [Val(defined, DEFINED), frame.locals[local], Val(local, Const(local))])
        if t.abstract:
            frame.seen.note(local, frame.locals[local])
    if not exits.returns:
        return False, None
    rest = [ast.If(ast.Compare(ast.Name(STATUS, ast.Load()), [ast.Eq()], [ast.Constant(LOOP_RETURN)]),
                   [ast.Return(ast.Name(VALUE, ast.Load()))], [])]
    for later_stmt in statements.items[stmt.index + 1:]:
        rest.append(statement_tree(code.co_filename, later_stmt.first, later_stmt.last))
    for each in ast.walk(rest[0]):
        ast.copy_location(each, tree)
        each.col_offset = each.end_col_offset = 0
    names = tuple(sorted(n for n in frame.locals))
    fn = _function("_xcs_rest", names + (STATUS, VALUE), rest, tree, code.co_filename, globals_)
    status = t.glue("getitem", [state, Val(0, Const(0))])
    value = t.glue("getitem", [state, Val(-1, Const(-1))])
    return True, t.call_function(fn, [frame.locals[n] for n in names] + [status, value], {})


def _loc_of(t: Any, frame: Any, stmt: Any) -> Any:
    from xcs.compiler.ir import Loc

    text = linecache.getline(frame.code.co_filename, stmt.first).strip()
    return replace(t.loc, line=stmt.first, text=text, col=-1) if t.loc.file else Loc(line=stmt.first, text=text)


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
