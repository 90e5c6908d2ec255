"""What this process knows about each jitted operator structure: its input signatures and their
counters (``OperatorRecord``, in ``RECORDS``), and ``CacheInfo``, what ``xcs.cache_info`` returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from xcs.compiler.cache import Key, KeyStats, PlanCache, structure_components
from xcs.compiler.signature import Signature


class OperatorRecord:
    """One operator structure: its label, its signatures (each with its ``KeyStats``), and the
    components of its structure hash (computed when first asked: only cache-miss reasons need them)."""

    def __init__(self, label: str, module: str, structure: str, root: Any, is_operator: Callable[[Any], bool]):
        self.label = label
        self.module = module
        self.structure = structure
        self.signatures: dict[Signature, KeyStats] = {}
        self._root = root
        self._is_operator = is_operator
        self._components: dict[str, str] | None = None

    def components(self) -> dict[str, str]:
        if self._components is None:
            self._components = structure_components(self._root, self._is_operator)
            self._root = None
        return self._components


RECORDS: dict[str, OperatorRecord] = {}
_LOCK = threading.Lock()


def record(structure: str, new: Callable[[], OperatorRecord]) -> OperatorRecord:
    """The record of ``structure``, made by ``new()`` on its first use (once, whatever the threads)."""
    found = RECORDS.get(structure)
    if found is None:
        with _LOCK:
            found = RECORDS.get(structure)
            if found is None:
                found = RECORDS[structure] = new()
    return found


def forget() -> None:
    with _LOCK:
        RECORDS.clear()


@dataclass(frozen=True)
class SignatureInfo:
    """``cache_info`` for one input signature of an operator."""

    signature: str
    hits: int
    misses: int
    captures: int
    disk_loads: int
    plans: int  # entries in memory now: plans (one per traced path) or an eager marker


@dataclass(frozen=True)
class CacheInfo:
    """``xcs.cache_info(op)``: per signature, the calls served from memory (``hits``), the calls that
    missed it (``misses``), and how the misses were served (``captures``, ``disk_loads``)."""

    operator: str
    structures: tuple[str, ...]
    signatures: tuple[SignatureInfo, ...]
    recompile_limit: int
    memory_keys: int  # keys (all operators) in the in-memory cache now
    memory_bound: int  # the in-memory cache's bound on keys
    disk: str | None  # the disk cache directory, or why there is none

    @classmethod
    def of(cls, label: str, records: list[OperatorRecord], recompile_limit: int, plans: PlanCache, disk: str) -> CacheInfo:
        rows = []
        for found in records:
            for sig, stats in list(found.signatures.items()):
                entries = plans._entries.get(Key.of(found.structure, sig))
                rows.append(SignatureInfo(
                    sig.text, stats.hits, stats.misses, stats.captures, stats.disk_loads, len(entries or ())
                ))
        return cls(
            label, tuple(r.structure for r in records), tuple(rows), recompile_limit, len(plans), plans.max_entries, disk
        )

    @property
    def hits(self) -> int:
        return sum(s.hits for s in self.signatures)

    @property
    def misses(self) -> int:
        return sum(s.misses for s in self.signatures)

    @property
    def captures(self) -> int:
        return sum(s.captures for s in self.signatures)

    @property
    def disk_loads(self) -> int:
        return sum(s.disk_loads for s in self.signatures)

    def __str__(self) -> str:
        lines = [f"{self.operator}: {len(self.signatures)} signature(s), limit {self.recompile_limit}, disk: {self.disk}"]
        for s in self.signatures:
            lines.append(
                f"  {s.signature}: hits={s.hits} misses={s.misses} captures={s.captures} "
                f"disk_loads={s.disk_loads} plans={s.plans}"
            )
        return "\n".join(lines)
