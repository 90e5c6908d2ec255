"""Plan-cache benchmarks: the warm in-memory hit, the cold-process disk hit, memory per cached plan.

Every figure is measured in this run, beside its baseline, as a median of repeats timed with
``time.perf_counter``. The script never asserts: it prints a table and a "targets" section.

1. **Warm in-memory hit** (target: at most 3 us more than eager). ``One`` holds one trivial operator
   (``{"v": inputs["v"] + 1}``) and calls it; ``JitOne`` is the same class with ``@jit``. The per-call
   cost of each is the best of 7 batches of 20,000 calls, alternated; the difference is what the jitted
   path adds (signature, dict lookup, guard, executor).

2. **Cold-process disk hit of a 1,000-step plan** (target: loading costs at most 10% of capturing and
   generating). Fresh processes each build ``JitChain(1000)`` (1,000 trivial operators threaded one by
   one) and time their first call and then a warm call, under ``scheduler="sequential"``. In a
   *capture* process the cache directory is empty: the first call computes the structure hash,
   traces, lints, generates, writes the plan file (and its compiled code) and imports it. In a *load*
   process the directory holds that plan: the first call computes the structure hash, reads the index,
   checks the content hash and imports the compiled code. The cost of each is its first call minus
   its warm call (both first calls also run the 1,000 operators once); medians over 5 processes each.

3. **Memory per cached 100-step plan.** 40 distinct ``JitChain(100)`` structures are compiled in one
   process; the Python heap grows by (tracemalloc) / 40 per plan, and the resident set size by
   (``/proc/self/statm``) / 40. Once for captured plans (which keep their IR graph for ``xcs dump``
   and tests) and once for plans loaded from the disk cache (no graph). The in-memory cache's bound
   (keys) and the disk cache's bound (``XCS_CACHE_MAX_BYTES``) are printed beside them.

Run: ``python benchmarks/bench_cache.py`` from the repository root (about 20 s). ``--smoke``: small sizes
and one or two repeats of each figure (a few seconds; checks the script works, its figures mean little).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from pathlib import Path
from common import Chain, Inc, private_cache_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CACHE_ROOT = private_cache_dir("cache")
os.environ["XCS_CACHE_DIR"] = os.path.join(CACHE_ROOT, "main")

from xcs import Operator, execution_options, jit  # noqa: E402

SMOKE = "--smoke" in sys.argv[1:]
CHAIN = 100 if SMOKE else 1_000
MEMORY_STEPS = 20 if SMOKE else 100
MEMORY_PLANS = 4 if SMOKE else 40
perf = time.perf_counter


# ---------------------------------------------------------------------- operators
class One(Operator):
    def __init__(self):
        self.inc = Inc()

    def forward(self, *, inputs):
        return self.inc(inputs=inputs)


@jit
class JitOne(One):
    pass


@jit
class JitChain(Chain):
    pass


# ---------------------------------------------------------------------- 1. warm hit
def bench_warm(rows: list, results: dict) -> None:
    eager, jitted = One(), JitOne()
    x = {"v": 1}
    assert jitted(inputs=x) == eager(inputs=x)  # compiles
    number, e_best, j_best = (1_000 if SMOKE else 20_000), [], []
    for _ in range(2 if SMOKE else 7):
        e_best.append(timeit.timeit(lambda: eager(inputs=x), number=number) / number)
        j_best.append(timeit.timeit(lambda: jitted(inputs=x), number=number) / number)
    e, j = min(e_best), min(j_best)
    results["warm_extra_us"] = (j - e) * 1e6
    rows.append(("1", "one-step operator, eager call", f"{e * 1e6:.2f} us", ""))
    rows.append(("1", "one-step operator, jitted warm call (memory hit)", f"{j * 1e6:.2f} us", ""))
    rows.append(("1", "jitted - eager", f"{(j - e) * 1e6:.2f} us", "target <= 3 us"))


# ---------------------------------------------------------------------- 2. cold process
def child(cache: str) -> None:
    """One cold process: time the first and a warm call of a fresh JitChain(1000)."""
    from xcs import cache_info

    os.environ["XCS_CACHE_DIR"] = cache
    op = JitChain(CHAIN)
    with execution_options(scheduler="sequential"):
        start = perf()
        first = op(inputs={"v": 0})
        first_s = perf() - start
        warm = []
        for _ in range(5):
            start = perf()
            op(inputs={"v": 0})
            warm.append(perf() - start)
    info = cache_info(op)
    print(json.dumps({
        "first": first_s, "warm": statistics.median(warm), "ok": first == {"v": CHAIN},
        "captures": info.captures, "disk_loads": info.disk_loads,
    }))


def spawn(cache: str) -> dict:
    env = {**os.environ, "XCS_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", cache, *(["--smoke"] if SMOKE else [])], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def bench_cold(rows: list, results: dict) -> None:
    repeats = 1 if SMOKE else 5
    captures, loads = [], []
    for i in range(repeats + 1):
        cache = os.path.join(CACHE_ROOT, f"cold-{i}")
        captured = spawn(cache)  # empty directory: capture + codegen + store
        loaded = spawn(cache)  # the same directory: a disk hit
        assert captured["captures"] == 1 and loaded["disk_loads"] == 1 and loaded["captures"] == 0
        assert captured["ok"] and loaded["ok"]
        if i:  # the first round warms the OS caches
            captures.append(captured["first"] - captured["warm"])
            loads.append(loaded["first"] - loaded["warm"])
    capture, load = statistics.median(captures), statistics.median(loads)
    results["load_ratio"] = load / capture
    size = sum(f.stat().st_size for f in Path(os.path.join(CACHE_ROOT, "cold-1")).rglob("*") if f.is_file())
    rows.append(("2", f"cold process, capture + codegen + store of {CHAIN} steps", f"{capture * 1e3:.1f} ms", ""))
    rows.append(("2", f"cold process, disk hit (verify + import) of {CHAIN} steps", f"{load * 1e3:.1f} ms", ""))
    rows.append(("2", "disk hit / capture", f"{load / capture * 100:.1f} %", "target <= 10 %"))
    rows.append(("2", "files on disk for that key (plan + code + index)", f"{size / 1024:.0f} KiB", ""))


# ---------------------------------------------------------------------- 3. memory
def rss() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def measure(ops: list) -> tuple[float, float]:
    gc.collect()
    tracemalloc.start()
    before_heap, before_rss = tracemalloc.get_traced_memory()[0], rss()
    with execution_options(scheduler="sequential"):
        for op in ops:
            op(inputs={"v": 0})
    gc.collect()
    heap, after_rss = tracemalloc.get_traced_memory()[0] - before_heap, rss() - before_rss
    tracemalloc.stop()
    return heap / len(ops), after_rss / len(ops)


def bench_memory(rows: list, results: dict) -> None:
    from xcs.compiler.disk_cache import max_bytes
    from xcs.compiler.driver import PLANS, clear_caches

    os.environ["XCS_CACHE_DIR"] = os.path.join(CACHE_ROOT, "memory")
    clear_caches()
    ops = [JitChain(MEMORY_STEPS, tag=i) for i in range(MEMORY_PLANS)]
    for op in ops:  # structure hashes are memoised on the operators: not part of a plan's cost
        op.__xcs_jit__.structure(op)
    heap, resident = measure(ops)
    results["plan_heap"] = heap
    clear_caches()
    for name in [n for n in sys.modules if n.startswith("xcs_plans.")]:
        del sys.modules[name]
    gc.collect()
    loaded_heap, loaded_resident = measure(ops)
    rows.append(("3", f"heap per cached {MEMORY_STEPS}-step plan, captured (plan + module + IR graph)",
                 f"{heap / 1024:.0f} KiB", f"RSS {resident / 1024:.0f} KiB"))
    rows.append(("3", f"heap per cached {MEMORY_STEPS}-step plan, loaded from disk (no graph)",
                 f"{loaded_heap / 1024:.0f} KiB", f"RSS {loaded_resident / 1024:.0f} KiB"))
    rows.append(("3", "in-memory cache bound (keys; LRU)", f"{PLANS.max_entries}",
                 f"worst case ~{PLANS.max_entries * heap / 2**20:.0f} MiB of such plans"))
    rows.append(("3", "disk cache bound (XCS_CACHE_MAX_BYTES)", f"{max_bytes() / 2**20:.0f} MiB", ""))


# ---------------------------------------------------------------------- main
def main() -> None:
    rows: list = []
    results: dict = {}
    print(f"ember-xcs plan-cache benchmarks - Python {sys.version.split()[0]} on {sys.platform}")
    for bench in (bench_warm, bench_cold, bench_memory):
        bench(rows, results)
    width = max(len(r[1]) for r in rows)
    for number, name, value, note in rows:
        print(f"{number}  {name:<{width}}  {value:>12}  {note}")
    print("\ntargets:")
    print(f"  warm in-memory hit adds {results['warm_extra_us']:.2f} us (<= 3 us): "
          f"{'met' if results['warm_extra_us'] <= 3 else 'NOT met'}")
    print(f"  disk hit costs {results['load_ratio'] * 100:.1f} % of capture + codegen (<= 10 %): "
          f"{'met' if results['load_ratio'] <= 0.10 else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
