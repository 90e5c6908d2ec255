"""The tracer's values: what a traced program holds (``Val``: a value and its provenance), the
sentinels and iterator state on the interpreter's stack, and the normalised instructions of a code
object: what the interpreter (``compiler.trace``) and its regions (``compiler.regions``) share.

It imports neither of them, so the direction is trace -> regions -> values.
"""

from __future__ import annotations

import re
import types
from functools import lru_cache
from typing import Any

from xcs.compiler.breaks import Break
from xcs.compiler.bytecode_versions import Ins, normalize
from xcs.compiler.matching import converge
from xcs.compiler.ir import Static

# Provenance, ordered: a value made of several has the highest of theirs. STATE is a value reached
# through an attribute, a closure or a module global that is not proven immutable (``effects.frozen``):
# known while capturing, but read again when the plan runs.
STATIC, INPUT, STATE, STEP = 0, 1, 2, 3


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


NULL = _Sentinel("NULL")
UNBOUND = _Sentinel("UNBOUND")
PENDING = _Sentinel("PENDING")  # a dry capture's operator output: recorded, never computed


class NeedsValue(Exception):
    """A dry capture needed a value it does not have (an operator output) or met a graph break."""

    def __init__(self, brk: Break):
        self.brk = brk
        super().__init__(str(brk))


class Val:
    """A value in the traced program: the concrete value, its provenance and, for containers
    built inside forward, the traced items (``box``: list of Val, or dict key -> Val)."""

    __slots__ = ("raw", "expr", "kind", "box", "conv", "receiver", "attr", "scope", "saved", "once", "options")

    def __init__(self, value: Any, expr: Any = None, kind: int = STATIC, box: Any = None):
        self.raw = value  # PENDING for an operator output in a dry capture; containers may hold it
        self.expr = expr
        self.kind = kind
        self.box = box
        self.conv = ""  # pending f-string conversion (3.13 CONVERT_VALUE)
        self.receiver: Val | None = None  # set by LOAD_ATTR/LOAD_METHOD, with the attribute's name
        self.attr = ""
        self.scope = 0  # for containers: how many regions were open when it was built
        self.saved: Any = None  # the checkpoint that saved this container before changing it
        self.once = 0  # an iterator's items (``zip``, ``enumerate``, ``reversed``): 1 fresh, 2 read
        self.options: Any = None  # an operator picked by a runtime key: (container, key) (``regions.switch``)

    @property
    def value(self) -> Any:
        if self.raw is PENDING:
            raise NeedsValue(Break("runtime-value", "the capture needs a runtime value it does not have"))
        return self.raw


def pending(val: Val) -> bool:
    """Whether ``val`` is, or holds, an operator output a dry capture never computed."""
    if val.raw is PENDING:
        return True
    box = val.box
    if box is None:
        return False
    return any(pending(item) for item in (box.values() if isinstance(box, dict) else box))


class IterState:
    """A static iterator on the interpreter's stack: the traced items and the next position."""

    __slots__ = ("items", "index")

    def __init__(self, items: list[Val]):
        self.items = items
        self.index = 0


@lru_cache(maxsize=4096)
def instructions(code: types.CodeType) -> tuple[Ins, ...]:
    """``code``'s instructions, normalised across CPython versions (``bytecode_versions``), each
    ``match`` case's checks joining at a flag (``matching``)."""
    return tuple(converge(code, normalize(code)))


def step_name(expr: Any) -> str:
    """A readable identifier for an operator call from its path: ``members[0]`` -> ``members_0``."""
    text = expr.path if isinstance(expr, Static) else expr.qualname.lower()
    name = re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_")  # ASCII: no name the parser would normalise
    return name if name and not name[0].isdigit() else f"op_{name}"
