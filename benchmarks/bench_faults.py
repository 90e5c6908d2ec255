"""Fault and leak figures (issue 19): the fault matrix as a chaos prober runs it, and memory over
rotating signatures.

1. **Fault cases.** Every case of ``tests/test_fault_matrix.py`` (a fault at the first, a middle, the
   last step, in a map region, in a nested plan x the six schedulers x raise / acall raise / collect /
   step_timeout / timeout / acall cancelled by ``asyncio.wait_for``, flat and nested), each call run
   in a watchdog thread. A case is *clean* when its result or error is what the semantics say and it
   leaves nothing behind. Counted apart: *hangs* (the call did not return within 10 s), *leaks*
   (ember-xcs threads alive after the warm pools idled out, asyncio tasks pending when the call
   returned, "never awaited" warnings), *orphan steps* (steps that started after the call returned or
   raised: hung steps are released after the call, so their dependents would start then).
2. **Rotating signatures.** ``N`` calls of one jitted operator over ``S`` = 2,000 input signatures in
   round-robin order, beyond the in-memory LRU's 1,024 keys (so nearly every call misses memory and
   loads its plan from the disk cache): plan modules in ``sys.modules`` and plan ``linecache`` entries
   after the calls (target: at most the LRU bound), and the Python heap's growth (tracemalloc) from
   the end of three warm-up rotations (the last one traced, so the cached working set is counted on
   both sides) to the end of the run (target: under 1 MiB, i.e. flat).

Run: ``python benchmarks/bench_faults.py`` (20,000 calls; ``--full``: 100,000; ``--smoke``: a short
run). Prints figures and a "targets" section; never asserts.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import os
import sys
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import private_cache_dir  # noqa: E402

private_cache_dir("faults")

from xcs.runtime import pool as runtime_pool  # noqa: E402
import test_fault_matrix as fm  # noqa: E402  (the matrix's program, faults and cases)
from xcs.runtime.errors import StepError, XCSError  # noqa: E402
from xcs.runtime.errors import TimeoutError as XCSTimeoutError  # noqa: E402
from xcs.runtime.outcome import Collected  # noqa: E402
from threads import quiet  # noqa: E402
from xcs import Operator, jit  # noqa: E402
from xcs.compiler.driver import PLANS  # noqa: E402

WATCHDOG = 10.0
SIGNATURES = 2_000


# ---------------------------------------------------------------------- 1. the fault matrix
def expected_ok(case, result, error) -> bool:
    nesting, position, outcome, _ = case
    target, step = fm.POSITIONS[position]
    outer = step if nesting == "flat" else "p"
    eager = fm.eager_error(target)
    if outcome in ("raise", "acall-raise"):
        return isinstance(error, StepError) and error.step == outer and fm.same_error(error, eager)
    if outcome == "collect":
        return (
            error is None and isinstance(result, Collected) and not result.ok
            and [f.step for f in result.failures] == [outer] and fm.same_error(result.failures[0].error, eager)
        )
    if outcome in ("step_timeout", "timeout"):
        return isinstance(error, XCSTimeoutError) and outer in error.steps
    return isinstance(error, TimeoutError) and not isinstance(error, XCSError)


def run_matrix(cases) -> dict:
    counts = {"tried": 0, "clean": 0, "wrong": 0, "leaks": 0, "hangs": 0, "orphans": 0}
    for case in cases:
        nesting, position, outcome, scheduler = case
        program, _ = fm.PROGRAMS[nesting]
        target, _ = fm.POSITIONS[position]
        fm.eager_error(target)
        quiet()
        baseline = threading.active_count()
        fm.FAULTS.reset(target, "hang" if outcome in fm.HANG else "raise")
        box: list = []
        caught: list = []

        def call() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                box.append(fm.run_case(program, outcome, scheduler))
                gc.collect()
            caught.extend(seen)

        watchdog = threading.Thread(target=call, name="bench-watchdog", daemon=True)
        watchdog.start()
        watchdog.join(WATCHDOG)
        counts["tried"] += 1
        if watchdog.is_alive():
            counts["hangs"] += 1
            fm.FAULTS.release.set()
            continue
        result, error, left, returned = box[0]
        fm.FAULTS.release.set()
        quiet()
        leaked = bool(left) or bool(fm.xcs_threads()) or threading.active_count() != baseline
        leaked = leaked or any("never awaited" in str(w.message) for w in caught)
        orphan = len(fm.FAULTS.starts) > returned
        right = expected_ok(case, result, error)
        counts["leaks"] += leaked
        counts["orphans"] += orphan
        counts["wrong"] += not right
        counts["clean"] += right and not leaked and not orphan
    return counts


# ---------------------------------------------------------------------- 2. rotating signatures
class Leaf(Operator):
    def forward(self, *, inputs):
        return {"v": 1}


@jit(recompile_limit=1_000_000)
class Rotating(Operator):
    def __init__(self):
        self.a = Leaf()
        self.b = Leaf()

    def forward(self, *, inputs):
        a = self.a(inputs=inputs)
        b = self.b(inputs=inputs)
        return {"v": a["v"] + b["v"]}


def plan_counts() -> tuple[int, int]:
    modules = sum(1 for name in list(sys.modules) if name.startswith("xcs_plans.") and "Rotating" in name)
    lines = sum(1 for name in list(linecache.cache) if "Rotating" in name)
    return modules, lines


def run_rotation(calls: int) -> dict:
    op = Rotating()
    inputs = [{f"k{k}": 1} for k in range(SIGNATURES)]
    warm = 2 * SIGNATURES  # two rotations: every signature compiled once and loaded back once
    for k in range(min(warm, calls)):
        op(inputs=inputs[k % SIGNATURES])
    # tracemalloc sees only what is allocated once it runs: one more rotation replaces every cached
    # plan with a traced one, so the growth measured after it is growth, not the working set.
    tracemalloc.start()
    turnover = min(warm + SIGNATURES, calls)
    for k in range(warm, turnover):
        op(inputs=inputs[k % SIGNATURES])
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    began = time.perf_counter()
    for k in range(turnover, calls):
        op(inputs=inputs[k % SIGNATURES])
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    modules, lines = plan_counts()
    return {
        "calls": calls, "measured": max(calls - turnover, 0), "growth": end - start,
        "seconds": time.perf_counter() - began, "modules": modules, "lines": lines, "bound": PLANS.max_entries,
    }


# ---------------------------------------------------------------------- main
def main() -> None:
    smoke, full = "--smoke" in sys.argv, "--full" in sys.argv
    calls = 2_000 if smoke else 100_000 if full else 20_000
    runtime_pool.IDLE = 0.02  # idle warm-pool threads exit sooner (reuse, not a leak): faster counting
    for program, _ in fm.PROGRAMS.values():
        fm.FAULTS.reset(None, None)
        program(inputs=fm.INPUTS)
    cases = fm.CASES if not smoke else [c for c in fm.CASES if c[3] in ("parallel", "async")]
    print(f"ember-xcs fault and leak figures - Python {sys.version.split()[0]} on {sys.platform}")
    began = time.perf_counter()
    m = run_matrix(cases)
    print(f"1  fault cases clean / tried       {m['clean']} / {m['tried']}   ({time.perf_counter() - began:.1f} s)")
    print(f"1  wrong result or error           {m['wrong']}")
    print(f"1  leaks (threads/tasks left)      {m['leaks']}")
    print(f"1  hangs (> {WATCHDOG:g} s)               {m['hangs']}")
    print(f"1  orphan steps (cases)            {m['orphans']}")
    r = run_rotation(calls)
    print(f"2  calls over {SIGNATURES:,} signatures      {r['calls']:,} (LRU bound {r['bound']:,} keys)")
    print(f"2  plan modules in sys.modules     {r['modules']:,}")
    print(f"2  plan linecache entries          {r['lines']:,}")
    print(f"2  heap growth over {r['measured']:,} calls  {r['growth'] / 1024:.1f} KiB "
          f"(tracemalloc; {r['seconds'] / max(r['measured'], 1) * 1e6:.0f} us per call)")
    print("\ntargets:")
    ok = m["clean"] == m["tried"]
    print(f"  fault cases clean {m['clean']} / {m['tried']}: {'met' if ok else 'NOT met'}")
    print(f"  leaks {m['leaks']}, hangs {m['hangs']}, orphan steps {m['orphans']} (all 0): "
          f"{'met' if m['leaks'] == m['hangs'] == m['orphans'] == 0 else 'NOT met'}")
    bounded = r["modules"] <= r["bound"] and r["lines"] <= r["bound"]
    print(f"  plan modules {r['modules']:,} and linecache entries {r['lines']:,} <= LRU bound {r['bound']:,}: "
          f"{'met' if bounded else 'NOT met'}")
    flat = r["growth"] < 2**20
    print(f"  heap growth {r['growth'] / 1024:.1f} KiB over {r['measured']:,} rotating calls (< 1 MiB): "
          f"{'met' if flat else 'NOT met'}")
    sys.stdout.flush()
    os._exit(0)  # hung steps of a failed case (if any) must not keep the process alive


if __name__ == "__main__":
    main()
