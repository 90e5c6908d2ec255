"""The entries of the in-process plan cache: ``Compiled`` (a plan, its text and where it came from) or
an ``Eager`` marker (the signature runs ``forward``), ``serving`` (the one rule for which entry serves
a call: the guard check), and the conversion of an entry read back from the disk cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from xcs.compiler import ir
from xcs.compiler.breaks import HINTS, Break
from xcs.compiler.cache import Key
from xcs.compiler.reads import input_reads
from xcs.runtime.plan import Plan


@dataclass(frozen=True)
class Eager:
    """The cache entry of a signature that runs ``forward`` directly: its capture broke (``brk``), or
    it came past the recompile limit under ``on_recompile_limit="eager"`` (``reason``)."""

    brk: Break | None
    reason: str = ""
    warning: str = field(default="", compare=False)  # repeated when the entry is read from the disk cache

    def __str__(self) -> str:
        return str(self.brk) if self.brk is not None else self.reason


@dataclass
class Compiled:
    """A cache entry: the plan (or ``Eager``), its source text, and where it came from. ``graph`` is
    the captured graph (``None`` for a plan imported from the disk cache)."""

    plan: Plan | Eager
    graph: ir.Graph | None = None
    source: str = ""
    origin: str = "capture"  # "capture", "disk" or "policy"
    sha256: str = ""  # of ``source``
    applied: list = field(default_factory=list)  # the enhanced strategy's passes (``compiler.passes``)
    reads: tuple = ()  # input key paths the plan reads that its signature does not fix (``compiler.reads``)


def serving(entries: Any, op: Any, inputs: Mapping[str, Any]) -> Compiled | None:
    """The first of a key's entries (``PLANS.get(key)``, or None) that serves this call: an eager
    marker, or a plan whose guard holds for ``op`` and ``inputs``."""
    for entry in entries or ():
        plan = entry.plan
        if type(plan) is Eager or plan.guard is None or plan.guard(op, inputs):
            return entry
    return None


def from_disk(item: Any, key: Key, label: str) -> Compiled | None:
    """The cache entry of one verified item of ``key`` read from the disk cache (``disk_cache.Loaded``):
    a plan, or the eager marker of a graph break (None when its break code is unknown here)."""
    if item.kind == "eager":
        brk = item.brk or {}
        if brk.get("code") not in HINTS:
            return None
        loc = ir.Loc(str(brk.get("file", "")), int(brk.get("line", 0) or 0), str(brk.get("text", "")))
        found = Break(brk["code"], str(brk.get("reason", "")), loc)
        return Compiled(Eager(found, warning=break_message(label, key, found)), origin="disk")
    return Compiled(
        item.plan, None, item.source, origin="disk", sha256=item.sha256, reads=input_reads(item.source, key.signature)
    )


def break_message(label: str, key: Key, brk: Break) -> str:
    return f"{label} runs eagerly for inputs {key.signature.text}: {brk}"


def break_dict(brk: Break) -> dict:
    return {"code": brk.code, "reason": brk.reason, "file": brk.loc.file, "line": brk.loc.line, "text": brk.loc.text}
