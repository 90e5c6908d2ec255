"""Source analysis for the ``enhanced`` strategy (libcst): the user's names, exact call spans and
expression texts.

The bytecode gives every operator call a (line, column); libcst's positions of the file's ``Call``
nodes give the same coordinates. Joining them yields the call's verbatim source (even over several
lines), the source of each keyword argument and, when the call is the whole right-hand side of
``name = ...``, the user's variable name. Likewise a ``STORE_FAST``'s position is its target's, which
gives the right-hand side of ``name = <value>``, and a ``return``'s gives its value. Files are parsed
whole (no dedent tricks needed), once per content.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass
from functools import lru_cache

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider


@dataclass(frozen=True)
class CallSite:
    text: str  # the call's source, whitespace between lines collapsed
    multiline: bool  # the call spans several lines
    name: str | None  # the variable the call is assigned to, if it is the whole right-hand side
    keywords: tuple[tuple[str, str], ...] = ()  # (keyword, the argument's source) of ``key=value`` arguments


@dataclass(frozen=True)
class Sites:
    """One file's sites by (line, col): calls, the values of ``name = value`` (at the target's
    position) and of ``return value`` (at the statement's position)."""

    calls: dict
    assigned: dict
    returned: dict


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
    joined = _joined.get(filename)
    if joined is None or joined[0] is not lines:  # linecache hands out the same list until the file changes
        joined = _joined[filename] = (lines, "".join(lines))
    return _sites(joined[1])


_joined: dict[str, tuple[list[str], str]] = {}  # filename -> (linecache's lines, their text)


@lru_cache(maxsize=64)
def _sites(text: str) -> Sites:
    found = Sites({}, {}, {})
    try:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)  # the tree is ours alone
    except cst.ParserSyntaxError:
        return found
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    code_for = wrapper.module.code_for_node
    for node, pos in positions.items():
        at = (pos.start.line, pos.start.column)
        if isinstance(node, cst.Call):
            code = code_for(node)
            text_ = " ".join(part.strip() for part in code.splitlines())
            parent = parents.get(node)
            name = None
            if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
                target = parent.targets[0].target
                if isinstance(target, cst.Name):
                    name = target.value
            keywords = tuple((a.keyword.value, code_for(a.value)) for a in node.args if a.keyword is not None)
            found.calls.setdefault(at, CallSite(text_, "\n" in code, name, keywords))
        elif isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            target = positions[node.targets[0].target].start
            found.assigned.setdefault((target.line, target.column), code_for(node.value))
        elif isinstance(node, cst.Return) and node.value is not None:
            found.returned.setdefault(at, code_for(node.value))
    return found
