"""Source facts for the ``enhanced`` strategy: the user's names, exact call spans and expression texts,
computed once per module and cached by the module's fingerprint (a hash of its source text).

The bytecode gives every operator call a (line, column); the positions of the module's ``Call`` nodes
give the same coordinates. Joining them yields the call's verbatim source (even over several lines),
the source of each keyword argument and, when the call is the whole right-hand side of ``name = ...``,
the user's variable name. Likewise a ``STORE_FAST``'s position is its target's, which gives the
right-hand side of ``name = <value>``, and a ``return``'s gives its value. A value's text keeps the
parentheses the user wrote around it (``x = (a + b)`` gives ``(a + b)``).

The module is parsed whole with the standard library's ``ast`` (its columns are UTF-8 byte offsets,
as the bytecode's are). libcst did the same job at about 1.5 ms per line of module (parse, positions
and parents: 17 s for a 10,000-line ``forward`` on the 2-CPU benchmark machine, ``ast``: 0.3 s), which
no capture budget absorbs; the facts needed here are positions and source spans, which ``ast`` has.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class CallSite:
    text: str  # the call's source, whitespace between lines collapsed
    multiline: bool  # the call spans several lines
    name: str | None  # the variable the call is assigned to, if it is the whole right-hand side
    keywords: tuple[tuple[str, str], ...] = ()  # (keyword, the argument's source) of ``key=value`` arguments


@dataclass(frozen=True)
class Sites:
    """One module's sites by (line, col): calls, the values of ``name = value`` (at the target's
    position) and of ``return value`` (at the statement's position)."""

    calls: dict
    assigned: dict
    returned: dict


@dataclass(frozen=True)
class Module:
    """A module's source text, equal to (and hashed as) its fingerprint."""

    fingerprint: str
    text: str = field(compare=False, hash=False, repr=False)


def call_site(filename: str, line: int, col: int) -> CallSite | None:
    """The call expression starting at ``line``/``col`` of ``filename`` (1-based line, 0-based col)."""
    sites = _file_sites(filename)
    return sites.calls.get((line, col)) if sites else None


def assigned_value(filename: str, line: int, col: int) -> str | None:
    """The source of ``value`` in ``name = value`` whose target ``name`` starts at ``line``/``col``."""
    sites = _file_sites(filename)
    return sites.assigned.get((line, col)) if sites else None


def returned_value(filename: str, line: int, col: int) -> str | None:
    """The source of ``value`` in the ``return value`` statement starting at ``line``/``col``."""
    sites = _file_sites(filename)
    return sites.returned.get((line, col)) if sites else None


def _file_sites(filename: str) -> Sites | None:
    lines = linecache.getlines(filename)
    if not lines:
        return None
    module = _modules.get(filename)
    if module is None or module[0] is not lines:  # linecache hands out the same list until the file changes
        text = "".join(lines)
        module = _modules[filename] = (lines, Module(hashlib.blake2b(text.encode(), digest_size=16).hexdigest(), text))
    return _sites(module[1])


_modules: dict[str, tuple[list[str], Module]] = {}  # filename -> (linecache's lines, their module)


@lru_cache(maxsize=64)
def _sites(module: Module) -> Sites:
    found = Sites({}, {}, {})
    try:
        tree = ast.parse(module.text)
    except (SyntaxError, ValueError):
        return found
    lines = [line.encode() for line in module.text.splitlines(keepends=True)]

    def span(node: ast.AST) -> str:
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return lines[first][node.col_offset:node.end_col_offset].decode()
        parts = [lines[first][node.col_offset:], *lines[first + 1:last], lines[last][:node.end_col_offset]]
        return b"".join(parts).decode()

    def after(node: ast.AST, token: str) -> str:
        """The text of ``node`` after its first ``token`` (``=``, ``return``): a value with its parentheses."""
        text = span(node)
        return text[text.index(token) + len(token):].strip()

    named: dict[ast.Call, str] = {}  # a call that is the whole right-hand side of ``name = call``
    for node in ast.walk(tree):  # breadth first: a statement before the calls in it, an outer call before an inner
        if isinstance(node, ast.Call):
            code = span(node)
            keywords = tuple((k.arg, after(k, "=")) for k in node.keywords if k.arg is not None)
            text = " ".join(part.strip() for part in code.splitlines())
            # ``f(x).g(y)``: both calls start here; the inner one, visited later, is the one kept
            found.calls[(node.lineno, node.col_offset)] = CallSite(text, "\n" in code, named.get(node), keywords)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0]
            if isinstance(node.value, ast.Call):
                named[node.value] = target.id
            rest = span(node)[len(span(target)):].lstrip()  # `` = value``, unless the target is parenthesized
            if rest.startswith("="):
                found.assigned.setdefault((target.lineno, target.col_offset), rest[1:].strip())
        elif isinstance(node, ast.Return) and node.value is not None:
            found.returned.setdefault((node.lineno, node.col_offset), after(node, "return"))
    return found
