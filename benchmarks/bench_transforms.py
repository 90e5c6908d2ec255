"""Transform benchmarks: vmap of an I/O-bound operator, vmap overhead per element, pmap on processes.

Every figure is measured in one run, beside its baseline, after a warm-up, as the median of several
repeats timed with ``time.perf_counter``. The script never asserts: it prints a table and a "targets"
section saying whether this run met each target.

1. **vmap over 1,000 elements of a 20 ms I/O operator with 64 workers** (target: within 1.15x of
   ceil(1000/64) x 20 ms = 320 ms). ``Sleepy.forward`` calls ``time.sleep(0.02)``; ``vmap(Sleepy())``
   runs under ``execution_options(max_workers=64)``. Beside it, a hand-written ``ThreadPoolExecutor(64)``
   loop calling the same operator (a pool per call, as vmap makes one), timed in interleaved rounds,
   and the same vmap called inside a jitted forward (``MapInForward``: a map region of its plan).

2. **vmap of a trivial operator: overhead per element** (target: at most 20 us under the default
   scheduler). ``Trivial.forward`` returns ``{"y": inputs["x"]}``; 1,000 elements. The overhead is
   (vmap time - plain loop time) / 1,000, where the loop is ``[op(inputs={"x": x}) for x in xs]`` plus
   gathering the outputs into lists. Also printed: the same under ``sequential`` (no threads) and
   ``wave`` (a barrier per group of max_workers elements), a hand-written ThreadPoolExecutor map, and
   the vmap inside a jitted forward (its map region).

3. **pmap with a process pool on a CPU-bound pure function** (speed-up reported against 1 worker,
   never asserted). ``burn`` sums squares in pure Python (~40 ms per element), 32 elements. Two
   variants: ``backend="process"`` (a fresh spawn pool per call: its start-up is included) and
   ``backend=<a ProcessPoolExecutor kept across calls>`` (compute only), beside a hand-written
   ``pool.map`` on that same pool (contiguous chunks). The speed-up is bounded by the machine's real
   cores, which the hand-written row shows.

Run: ``python benchmarks/bench_transforms.py`` from the repository root (about 30-60 s). ``--smoke``:
128 I/O elements, 100 trivial ones, 4 CPU-bound ones with 1 and 2 worker processes, two rounds each
(a few seconds; checks the script works, its figures mean little).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from common import private_cache_dir

if "XCS_CACHE_DIR" not in os.environ:
    private_cache_dir("transforms")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xcs import Operator, execution_options, jit, pmap, vmap  # noqa: E402

perf = time.perf_counter
SMOKE = "--smoke" in sys.argv[1:]
IO_ELEMENTS, IO_WORKERS, IO_SLEEP = (128 if SMOKE else 1_000), 64, 0.02
TRIVIAL_ELEMENTS = 100 if SMOKE else 1_000
CPU_ELEMENTS, CPU_WORK = (4, 20_000) if SMOKE else (32, 400_000)
ROUNDS = 2 if SMOKE else None  # None: each figure's own default


class Sleepy(Operator):
    def forward(self, *, inputs):
        time.sleep(IO_SLEEP)
        return {"y": inputs["x"]}


class Trivial(Operator):
    def forward(self, *, inputs):
        return {"y": inputs["x"]}


class MapInForward(Operator):
    """A jitted forward calling a vmap-ed operator: captured as a map region of its plan."""

    def __init__(self, mapped):
        self.each = vmap(mapped)

    def forward(self, *, inputs):
        return self.each(inputs={"x": inputs["xs"]})


def burn(*, inputs):
    total = 0
    for i in range(inputs["n"]):
        total += i * i
    return {"total": total}


def burn_n(n):
    return burn(inputs={"n": n})


def median(samples: list[float]) -> float:
    return statistics.median(samples)


# ---------------------------------------------------------------------- 1. I/O-bound vmap
def bench_io(rounds: int = 5) -> dict[str, float]:
    op = Sleepy()
    batched = vmap(op)
    xs = list(range(IO_ELEMENTS))

    def by_hand():
        with ThreadPoolExecutor(IO_WORKERS) as pool:
            outs = list(pool.map(lambda x: op(inputs={"x": x}), xs))
        return {"y": [o["y"] for o in outs]}

    region = jit(MapInForward(op), strict=True)
    times = {"vmap": [], "region": [], "pool": []}
    with execution_options(max_workers=IO_WORKERS):
        batched(inputs={"x": xs[:IO_WORKERS]})  # warm-up
        region(inputs={"xs": xs[:IO_WORKERS]})
        for _ in range(rounds):
            start = perf()
            out = batched(inputs={"x": xs})
            times["vmap"].append(perf() - start)
            start = perf()
            in_plan = region(inputs={"xs": xs})
            times["region"].append(perf() - start)
            start = perf()
            ref = by_hand()
            times["pool"].append(perf() - start)
            assert out == in_plan == ref
    return {k: median(v) for k, v in times.items()}


# ---------------------------------------------------------------------- 2. trivial vmap overhead
def bench_trivial(repeats: int = 30) -> dict[str, float]:
    op = Trivial()
    batched = vmap(op)
    xs = list(range(TRIVIAL_ELEMENTS))

    def plain():
        outs = [op(inputs={"x": x}) for x in xs]
        return {"y": [o["y"] for o in outs]}

    def pool_map():
        with ThreadPoolExecutor(32) as pool:
            outs = list(pool.map(lambda x: op(inputs={"x": x}), xs))
        return {"y": [o["y"] for o in outs]}

    results = {}
    variants = {
        "loop": (plain, "auto"), "vmap auto": (lambda: batched(inputs={"x": xs}), "auto"),
        "vmap sequential": (lambda: batched(inputs={"x": xs}), "sequential"),
        "vmap wave": (lambda: batched(inputs={"x": xs}), "wave"), "pool map": (pool_map, "auto"),
        "map region in jit": (lambda: region(inputs={"xs": xs}), "auto"),
    }
    region = jit(MapInForward(op), strict=True)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for name, (fn, scheduler) in variants.items():
        with execution_options(scheduler=scheduler):
            fn()
    for _ in range(repeats):  # interleaved rounds: noise hits every variant alike
        for name, (fn, scheduler) in variants.items():
            with execution_options(scheduler=scheduler):
                start = perf()
                fn()
                samples[name].append(perf() - start)
    for name, values in samples.items():
        results[name] = median(values)
    return results


# ---------------------------------------------------------------------- 3. pmap on processes
def bench_processes() -> list[tuple[str, int, float]]:
    ns = [CPU_WORK] * CPU_ELEMENTS
    rows = []
    counts = [1, 2] if SMOKE else sorted({1, 2, 4, os.cpu_count() or 1})
    for workers in counts:
        fresh = pmap(burn, num_workers=workers, backend="process")
        start = perf()
        fresh(inputs={"n": ns})
        rows.append(("backend='process' (pool per call)", workers, perf() - start))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            kept = pmap(burn, num_workers=workers, backend=pool)
            kept(inputs={"n": ns[:workers]})  # start the workers
            samples, raw = [], []
            for _ in range(ROUNDS or 3):
                start = perf()
                kept(inputs={"n": ns})
                samples.append(perf() - start)
                start = perf()
                list(pool.map(burn_n, ns, chunksize=max(1, len(ns) // workers)))
                raw.append(perf() - start)
        rows.append(("backend=<kept ProcessPoolExecutor>", workers, median(samples)))
        rows.append(("hand-written pool.map (same kept pool)", workers, median(raw)))
    return rows


def main() -> None:
    started = perf()
    io = bench_io(ROUNDS or 5)
    ideal = math.ceil(IO_ELEMENTS / IO_WORKERS) * IO_SLEEP
    trivial = bench_trivial(ROUNDS or 30)
    procs = bench_processes()

    def per_element(name: str) -> float:
        return (trivial[name] - trivial["loop"]) / TRIVIAL_ELEMENTS * 1e6

    print(f"ember-xcs transform benchmarks on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print(f"1. vmap, {IO_ELEMENTS} x {IO_SLEEP * 1000:.0f} ms I/O elements, {IO_WORKERS} workers "
          f"(ideal ceil({IO_ELEMENTS}/{IO_WORKERS}) x {IO_SLEEP * 1000:.0f} ms = {ideal * 1000:.0f} ms)")
    print(f"   vmap                     {io['vmap'] * 1000:8.1f} ms   {io['vmap'] / ideal:.3f}x ideal")
    print(f"   vmap in a jitted forward {io['region'] * 1000:8.1f} ms   {io['region'] / ideal:.3f}x ideal "
          "(a map region of the plan)")
    print(f"   ThreadPoolExecutor loop  {io['pool'] * 1000:8.1f} ms   {io['pool'] / ideal:.3f}x ideal")
    print(f"\n2. vmap of a trivial operator, {TRIVIAL_ELEMENTS} elements (median; overhead vs the plain loop)")
    for name in trivial:
        extra = "" if name == "loop" else f"   {per_element(name):7.2f} us/element overhead"
        print(f"   {name:<18} {trivial[name] * 1000:8.2f} ms{extra}")
    print(f"\n3. pmap, CPU-bound pure function, {CPU_ELEMENTS} elements (speed-up vs 1 worker of the same variant)")
    base = {variant: t for variant, w, t in procs if w == 1}
    for variant, workers, seconds in procs:
        print(f"   {variant:<38} workers={workers:<3} {seconds:7.2f} s   speed-up {base[variant] / seconds:5.2f}x")
    print(f"\ntotal benchmark time: {perf() - started:.1f} s")
    targets = [
        ("1", f"vmap I/O within 1.15x of {ideal * 1000:.0f} ms", io["vmap"] / ideal <= 1.15, f"{io['vmap'] / ideal:.3f}x"),
        ("1", f"vmap in a jitted forward within 1.15x of {ideal * 1000:.0f} ms", io["region"] / ideal <= 1.15,
         f"{io['region'] / ideal:.3f}x"),
        ("2", "vmap trivial overhead <= 20 us/element (auto)", per_element("vmap auto") <= 20,
         f"{per_element('vmap auto'):.2f} us"),
        ("2", "map region in jit: overhead <= 20 us/element", per_element("map region in jit") <= 20,
         f"{per_element('map region in jit'):.2f} us"),
    ]
    print("\ntargets")
    for fig, name, ok, value in targets:
        print(f"  {fig}  {name:<50} {'met' if ok else 'NOT MET':<8} ({value})")


if __name__ == "__main__":
    main()
