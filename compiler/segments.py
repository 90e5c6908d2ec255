"""Statement segments: a graph break costs the statement it happens in, not the whole call.

``statements(code)`` reads ``forward``'s top-level statements from its source (the standard library's
``ast``): their lines, the local names each reads and writes, whether it returns, and whether it can
run on its own as the body of a generated function (no ``yield``, ``await``, ``global``/``nonlocal``
or zero-argument ``super()``). When the capture meets a construct it cannot express inside such a
statement, the statement becomes one opaque step: ``function_text`` is the user's own text wrapped in
a function of the names it reads, returning the names it writes (a statement that returns takes the
rest of ``forward`` with it). The plan defines that function with the user module's globals
(``runtime.segments``), so it runs exactly as the statement did, and tracebacks show the user's lines.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Statement:
    index: int
    first: int  # first line in the file
    last: int
    reads: tuple[str, ...]  # names it loads, in order of first use
    writes: tuple[str, ...]  # names it binds in forward's scope
    returns: bool
    ok: bool  # can run as the body of a generated function


@dataclass(frozen=True)
class Statements:
    items: tuple[Statement, ...]
    by_line: dict  # line -> Statement

    def tail(self, start: Statement) -> tuple[Statement, ...]:
        return self.items[start.index:]


class _Names(ast.NodeVisitor):
    """Loads and stores of one statement; stores inside nested scopes (lambdas, comprehensions,
    functions, classes) are not forward's."""

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}
        self.returns = False
        self.ok = True
        self.nested = 0

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.setdefault(node.id)
        elif not self.nested:
            self.writes.setdefault(node.id)

    def _scope(self, node: ast.AST) -> None:
        self.nested += 1
        self.generic_visit(node)
        self.nested -= 1

    visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _scope

    def visit_FunctionDef(self, node: ast.AST) -> None:
        if not self.nested:
            self.writes.setdefault(node.name)  # type: ignore[attr-defined]
        self._scope(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.reads.setdefault(node.target.id)  # ``x += 1`` reads x too
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if not self.nested:
            self.returns = True
        self.generic_visit(node)

    def _refuse(self, node: ast.AST) -> None:
        self.ok = False

    visit_Yield = visit_YieldFrom = visit_Await = visit_Global = visit_Nonlocal = _refuse

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name and not self.nested:
            self.writes.setdefault(node.name)
        self.generic_visit(node)

    def _capture(self, node: ast.AST) -> None:
        """A name a ``case`` pattern binds (``case {"q": q}``, ``[*rest]``, ``{**rest}``)."""
        name = getattr(node, "name", None) or getattr(node, "rest", None)
        if name and not self.nested:
            self.writes.setdefault(name)
        self.generic_visit(node)

    visit_MatchAs = visit_MatchStar = visit_MatchMapping = _capture

    def visit_alias(self, node: ast.alias) -> None:
        if not self.nested:
            self.writes.setdefault((node.asname or node.name).split(".")[0])

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args:
            self.ok = False  # needs forward's __class__ cell
        self.generic_visit(node)


def block(nodes: list[ast.stmt], index: int = 0) -> Statement:
    """A run of statements (a ``try`` body) as one ``Statement``: its lines and names (file lines when
    ``nodes`` were parsed from the whole file)."""
    names = _Names()
    for node in nodes:
        names.visit(node)
    last = nodes[-1].end_lineno or nodes[-1].lineno
    return Statement(index, nodes[0].lineno, last, tuple(names.reads), tuple(names.writes), names.returns, names.ok)


@lru_cache(maxsize=1024)
def statements(code: types.CodeType) -> Statements | None:
    """``code``'s (a ``forward``'s) top-level statements, or None when its source is not available."""
    lines = linecache.getlines(code.co_filename)
    try:
        block, first_line = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(block)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    start = first_line - 1
    fn = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if fn is None:
        return None
    items: list[Statement] = []
    declares = any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(fn))  # names not local
    for stmt in fn.body:
        first, last = stmt.lineno + start, (stmt.end_lineno or stmt.lineno) + start
        names = _Names()
        names.visit(stmt)
        reads, writes, returns, ok = tuple(names.reads), tuple(names.writes), names.returns, names.ok
        if items and first <= items[-1].last:  # ``a = f(x); a.update(y)``: statements sharing a line are one
            prev = items.pop()
            first, reads = prev.first, tuple(dict.fromkeys(prev.reads + reads))
            writes, returns, ok = tuple(dict.fromkeys(prev.writes + writes)), prev.returns or returns, prev.ok and ok
        ok = ok and not declares and _reindentable(lines[first - 1:last])
        items.append(Statement(len(items), first, last, reads, writes, returns, ok))
    by_line = {line: s for s in items for line in range(s.first, s.last + 1)}
    return Statements(tuple(items), by_line)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _reindentable(source: list[str]) -> bool:
    """Whether every line starts with the first line's indentation (comments and blank lines aside)."""
    if not source:
        return False
    indent = source[0][:_indent(source[0])]
    return all(not line.strip() or line.startswith(indent) or line.lstrip().startswith("#") for line in source)


def function_text(filename: str, name: str, params: tuple[str, ...], parts: tuple[Statement, ...],
                  returns: tuple[str, ...] | None) -> str | None:
    """``def name(params):`` around the lines of ``parts`` (comments and blank lines between them
    kept, so every line keeps its number); it returns the tuple of ``returns`` (None: the statements
    return forward's result themselves). None when the lines cannot be re-indented."""
    source = linecache.getlines(filename)[parts[0].first - 1:parts[-1].last]
    if not _reindentable(source):
        return None
    indent = source[0][:_indent(source[0])]
    body = ["    " + line[len(indent):].rstrip("\n") if line.strip() and line.startswith(indent) else "" for line in source]
    if returns is not None:  # a name the statements may leave unbound comes back as ``UNBOUND``
        names = ", ".join(repr(n) for n in returns)
        body.append(f"    return _xcs_bound(locals(), ({names}{',' if len(returns) == 1 else ''}))")
        params = (*params, "_xcs_bound=_xcs_bound")  # ``runtime.segments.bound``, given when it is defined
    return f"def {name}({', '.join(params)}):\n" + "\n".join(body) + "\n"
