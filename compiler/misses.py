"""Why a call missed the in-memory plan cache, in words: the reason logged for every miss under
``XCS_EXPLAIN_CACHE_MISSES=1`` (which component of the key changed against the closest key known for
the same operator, in this process or on disk), and the message of a new signature past the
operator's ``recompile_limit`` (how it differs from the closest cached signature)."""

from __future__ import annotations

import logging
import os
from typing import Any

from xcs.compiler.cache import Key
from xcs.compiler.codegen import CODEGEN_VERSION, VERSION
from xcs.compiler.disk_cache import DiskKey
from xcs.compiler.records import RECORDS, OperatorRecord

LOG = logging.getLogger("xcs.cache")


def explaining() -> bool:
    """Whether ``XCS_EXPLAIN_CACHE_MISSES`` asks for miss reasons (then ``LOG`` shows them at INFO)."""
    if os.environ.get("XCS_EXPLAIN_CACHE_MISSES", "").strip() in ("", "0"):
        return False
    if not LOG.hasHandlers():  # the variable asks for the log: show it even when logging is not set up
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOG.addHandler(handler)
    if LOG.getEffectiveLevel() > logging.INFO:
        LOG.setLevel(logging.INFO)
    return True


def miss_reason(record: OperatorRecord, key: Key, mode: str, dkey: DiskKey | None, disk: Any, entries: Any) -> str:
    """Why this call (``key``, of ``record``'s operator compiled by ``mode``) missed the in-memory cache:
    which key component differs from the closest key known for the same operator."""
    head = f"xcs cache miss: {record.label} {key.signature.text}"
    if entries:
        return f"{head}: a new control-flow path (the guards of the {len(entries)} cached plan(s) did not hold)"
    mine = {
        "ember_xcs": VERSION, "codegen": CODEGEN_VERSION, "python": key.python_text,
        "structure": key.structure, "flat": key.signature.flat, "components": None, "mode": mode,
    }
    candidates = []
    for other in list(RECORDS.values()):
        if other.module == record.module:
            for sig in list(other.signatures):
                if (other.structure, sig) != (key.structure, key.signature):
                    candidates.append({
                        "ember_xcs": VERSION, "codegen": CODEGEN_VERSION, "python": mine["python"],
                        "structure": other.structure, "flat": sig.flat, "components": other, "mode": mode,
                    })
    if disk is not None and dkey is not None:
        candidates += _disk_candidates(disk, dkey)
    if not candidates:
        return f"{head}: first compile of this operator (no key cached for it in memory or on disk)"

    def differences(c: dict) -> list[str]:
        found = [n for n in ("ember_xcs", "codegen", "python", "mode", "structure") if c[n] != mine[n]]
        if c["flat"] != mine["flat"]:
            found.append("signature")
        return found

    best = min(candidates, key=lambda c: (len(differences(c)), len(key.signature.diff(c["flat"]))))
    changed = differences(best)
    if not changed:
        return f"{head}: first call in this process (the key is cached on disk)"
    parts = []
    for name in changed:
        if name == "signature":
            parts.append("signature changed: " + ", ".join(key.signature.diff(best["flat"])))
        elif name == "structure":
            theirs = best["components"]
            theirs = theirs.components() if isinstance(theirs, OperatorRecord) else (theirs or {})
            ours = record.components()
            detail = [f"changed {g}" for g in ours if g in theirs and theirs[g] != ours[g]]
            detail += [f"added {g}" for g in ours if g not in theirs]
            detail += [f"removed {g}" for g in theirs if g not in ours]
            parts.append(
                f"structure changed {best['structure']} -> {key.structure}" + (f" ({'; '.join(detail)})" if detail else "")
            )
        else:
            parts.append(f"{name} changed {best[name]} -> {mine[name]}")
    return f"{head}: " + "; ".join(parts)


def _disk_candidates(disk: Any, dkey: DiskKey) -> list[dict]:
    """Keys on disk for the same operator (any structure, signature, Python or version)."""
    found = []
    for info in disk.keys():
        index = info.index
        if not index or not info.stem.startswith(dkey.operator + "-") or index["key"].get("operator") != dkey.operator:
            continue
        theirs = index["key"]
        found.append({
            "ember_xcs": theirs.get("ember_xcs"), "codegen": theirs.get("codegen"), "python": theirs.get("python"),
            "structure": theirs.get("structure"), "flat": dict(index.get("flat_signature") or {}),
            "components": index.get("components") or {}, "mode": theirs.get("mode"),
        })
    return found


def recompile_message(record: OperatorRecord, key: Key, limit: int) -> str:
    """A new signature past ``limit``: how many there are, and how the newest differs from the closest."""
    closest, diff = None, None
    for sig in list(record.signatures):
        changes = key.signature.diff(sig)
        if diff is None or len(changes) < len(diff):
            closest, diff = sig, changes
    count = len(record.signatures) + 1
    return (
        f"{record.label} has {count} distinct input signatures, more than recompile_limit="
        f"{limit}; the newest, {key.signature.text}, differs from the closest cached "
        f"one, {closest.text if closest else '{}'}, in: {', '.join(diff or ['nothing'])}. "
        "Keep input types stable (e.g. always float, not sometimes int), raise the limit with "
        "jit(recompile_limit=N), or choose execution_options(on_recompile_limit='raise'|'eager')"
    )
