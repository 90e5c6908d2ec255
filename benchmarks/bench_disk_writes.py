"""Benchmark of a disk-cache write: does storing a new signature cost the same with 12 or 20,000 keys?

For each size (12, 1,200 and 20,000 keys; ``--smoke``: 12 and 1,200) a private cache root is filled
with fake-but-valid keys written through ``DiskCache.store`` (an importable plan file of ~1 KiB and its
index; no operator is compiled). Then, as a new process would (a fresh ``DiskCache``), it times:

- the **first write** of the process: it reads the size ledger once (``<root>/.xcs-cache.ledger``);
- **new-signature writes below the bound**: lock, index lookup, plan file, index, ledger record;
- **new-signature writes at the bound** (``XCS_CACHE_MAX_BYTES`` set to the cache's size, so each write
  also evicts the least recently used key: the ledger picks it, its index's mtime confirms it).

Writes are timed one by one with ``time.perf_counter``, two at a time alternating between the sizes (so
a slower moment of a shared machine hits every size alike); each figure is the median over all rounds.
The target (issue 19): a write with 1,200 keys on disk costs at most 1.2x a write with 12 (before the
ledger, every write parsed every index under the lock: ~9x). The script never asserts: it prints a
table and a "targets" section.

Run: ``python benchmarks/bench_disk_writes.py [--smoke]`` from the repository root (about a minute;
``--smoke`` a few seconds).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import private_cache_dir  # noqa: E402

ROOT = private_cache_dir("disk-writes")

from xcs.compiler import disk_cache as dc  # noqa: E402

SIZES = (12, 1_200, 20_000)
SMOKE_SIZES = (12, 1_200)
ROUNDS = 60
PER_ROUND = 2
TARGET = 1.2
perf = time.perf_counter


def fake_key(n: int) -> tuple[dc.DiskKey, str]:
    """A key and a valid, importable plan text of about 1 KiB for it."""
    signature = f"{{k{n}: int}}"
    key = dc.DiskKey(operator="bench.Fake", structure="0123456789abcdef", signature=signature, python="3.11")
    source = (
        f"{dc.PLAN_HEADER}bench.Fake   strategy: fake\n# signature: {signature}   structure: 0123456789abcdef\n"
        "from xcs.runtime.plan import Plan\n\n\ndef run(op, inputs):\n    return dict(inputs)\n\n\n"
        "PLAN = Plan(name='bench.Fake', steps=(), output=None, run=run)\n" + "# padding\n" * 90
    )
    return key, source


class Filled:
    """A cache root holding ``size`` keys, and the next new signature to write to it."""

    def __init__(self, size: int):
        self.size = size
        self.root = os.path.join(ROOT, f"keys-{size}")
        os.environ["XCS_CACHE_MAX_BYTES"] = "1G"
        start = perf()
        cache = dc.DiskCache(self.root)
        for n in range(size):
            key, source = fake_key(n)
            cache.store(key, source=source)
        self.fill_s = perf() - start
        self.next = size
        self.cache = dc.DiskCache(self.root)  # a new process: nothing of the ledger in memory
        self.first_ms = self.write() * 1e3
        self.bound = sum(size for size, _ in self.cache._scan_sizes().values())
        self.times: dict[str, list[float]] = {"below": [], "at": []}

    def write(self) -> float:
        key, source = fake_key(self.next)
        self.next += 1
        start = perf()
        path, _ = self.cache.store(key, source=source)
        elapsed = perf() - start
        if path is None:
            raise SystemExit(f"the write failed: {self.cache.disabled}")
        return elapsed

    def batch(self, mode: str) -> None:
        os.environ["XCS_CACHE_MAX_BYTES"] = "1G" if mode == "below" else str(self.bound)
        self.times[mode].extend(self.write() for _ in range(PER_ROUND))

    def median_ms(self, mode: str) -> float:
        return statistics.median(self.times[mode]) * 1e3


def main() -> None:
    sizes = SMOKE_SIZES if "--smoke" in sys.argv[1:] else SIZES
    print(f"ember-xcs disk-cache writes - Python {sys.version.split()[0]} on {sys.platform}")
    filled = []
    for size in sizes:
        print(f"filling a cache with {size:,} keys ...", flush=True)
        filled.append(Filled(size))
    for mode in ("below", "at"):
        for _ in range(ROUNDS):
            for item in filled:
                item.batch(mode)
    print()
    print(f"{'keys on disk':>12}  {'fill (s)':>9}  {'first write (ms)':>17}  {'write (ms)':>11}  {'write + evict (ms)':>19}")
    for item in filled:
        print(f"{item.size:>12,}  {item.fill_s:>9.1f}  {item.first_ms:>17.2f}  {item.median_ms('below'):>11.3f}  "
              f"{item.median_ms('at'):>19.3f}")
    small = filled[0]
    print("\n(first write: a new process reads the ledger once; write: median of "
          f"{ROUNDS * PER_ROUND} new-signature writes below the bound; write + evict: at the bound, each evicts one key)")
    print("\ntargets:")
    for item in filled[1:]:
        for mode, what in (("below", "new-signature write"), ("at", "new-signature write + eviction")):
            ratio = item.median_ms(mode) / small.median_ms(mode)
            verdict = "met" if ratio <= TARGET else "NOT MET"
            print(f"  {what} with {item.size:,} vs {small.size} keys on disk: {ratio:.2f}x (<= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
