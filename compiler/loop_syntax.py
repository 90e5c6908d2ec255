"""The syntax trees loop regions are built from (``compiler.loops``): a statement of a user's file
parsed with its real lines and columns (``statement_tree``), the rewrites of a loop into a function of
one iteration (``Exits``: ``break``/``continue``/``return`` as returns of a status tuple; ``Defined``:
reads of a variable the loop may leave unbound), the names a piece of code reads, binds and changes,
and ``function``: a rewritten tree compiled with the user's file name, so every line keeps its number.
Pure ``ast``: nothing here knows the interpreter or the IR.
"""

from __future__ import annotations

import ast
import copy
import linecache
import types
from typing import Any

from xcs.compiler.ir import LOOP_BREAK, LOOP_NEXT, LOOP_RETURN

CHECK = "_xcs_defined"  # the iteration's parameter holding ``defined``


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


class Exits(ast.NodeTransformer):
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


class Defined(ast.NodeTransformer):
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


def _inside(node: ast.AST, tree: ast.AST) -> bool:
    return any(node is n for n in ast.walk(tree))


def function(name: str, params: tuple[str, ...], body: list[ast.stmt], at: ast.stmt, filename: str,
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


def names(node: ast.AST, ctx: type) -> list[str]:
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


def mutated(node: ast.AST) -> list[str]:
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


def loads_outside(root: ast.AST, node: ast.AST) -> frozenset[str]:
    """The names ``root`` reads outside its part ``node`` (compared by position: ``node`` may be a copy)."""
    where = (node.lineno, node.col_offset, type(node))
    found: set[str] = set()

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.stmt) and (n.lineno, n.col_offset, type(n)) == where:
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            found.add(n.id)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            found.add(n.target.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(root)
    return frozenset(found)


def own_exits(node: ast.For) -> bool:
    """Whether a ``for`` loop has a ``break``, ``continue`` or ``return`` of its own (or an ``else``)."""
    found = False

    def visit(n: ast.AST, own: bool) -> None:
        nonlocal found
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return
        if isinstance(n, ast.Return) or own and isinstance(n, (ast.Break, ast.Continue)):
            found = True
        for child in ast.iter_child_nodes(n):
            visit(child, own and not isinstance(n, (ast.For, ast.While, ast.AsyncFor)))

    for stmt in node.body:
        visit(stmt, True)
    return found or bool(node.orelse)


def returns_in(tree: ast.AST) -> bool:
    """Whether ``tree`` holds a ``return`` (not of a function nested in it)."""
    def visit(n: ast.AST) -> bool:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        return isinstance(n, ast.Return) or any(visit(c) for c in ast.iter_child_nodes(n))

    return visit(tree)


def copied(tree: ast.stmt) -> ast.stmt:
    """A deep copy of a syntax tree (the rewrites change it in place)."""
    return copy.deepcopy(tree)


def synthetic(tree: ast.AST, at: ast.AST) -> None:
    """Give every node of ``tree`` the line of ``at`` and column 0 (no source site starts there)."""
    for each in ast.walk(tree):
        ast.copy_location(each, at)
        each.col_offset = each.end_col_offset = 0
