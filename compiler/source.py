"""Source analysis for the ``enhanced`` strategy (libcst): the user's names and exact call spans.

The bytecode gives every operator call a (line, column); libcst's positions of the file's ``Call``
nodes give the same coordinates. Joining them yields the call's verbatim source (even over several
lines) and, when the call is the whole right-hand side of ``name = ...``, the user's variable name.
Files are parsed whole (no dedent tricks needed), once per content.
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


def call_site(filename: str, line: int, col: int) -> CallSite | None:
    """The call expression starting at ``line``/``col`` of ``filename`` (1-based line, 0-based col)."""
    lines = linecache.getlines(filename)
    if not lines:
        return None
    return _sites("".join(lines)).get((line, col))


@lru_cache(maxsize=64)
def _sites(text: str) -> dict[tuple[int, int], CallSite]:
    try:
        wrapper = MetadataWrapper(cst.parse_module(text))
    except cst.ParserSyntaxError:
        return {}
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    module = wrapper.module
    found: dict[tuple[int, int], CallSite] = {}
    for node, pos in positions.items():
        if not isinstance(node, cst.Call):
            continue
        code = module.code_for_node(node)
        text_ = " ".join(part.strip() for part in code.splitlines())
        parent = parents.get(node)
        name = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if isinstance(target, cst.Name):
                name = target.value
        found.setdefault((pos.start.line, pos.start.column), CallSite(text_, "\n" in code, name))
    return found
