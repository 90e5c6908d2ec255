"""Numeric segments compiled by numba (issue "numba-compiled plans"), side by side in one run.

The workload is ``examples/numeric_chain.py``: a 20-step chain cycling scale, shift, tanh and
normalize, on float64[1000] and float64[1,000,000]. Each size is timed, as medians of batches taken in
turns (a batch of each in a round, so the machine's load falls on all three alike):

- plain Python: the operator's ``forward`` called eagerly (no jit);
- the Python plan: ``jit(numba=False)``, the same plan text with its kernel run as Python;
- the numba plan: ``jit`` (one ``@njit`` kernel for the 20 steps);
- for reference, the same chain without tanh (scale, shift, normalize: no transcendental function).

The cold figure runs a fresh process twice on one cache directory: the second process finds the
plan and numba's machine code on disk; its first call is compared with a warm call plus the plan's
import: its load from the disk cache (index, integrity check, and the plan module's execution, which
imports numba and loads the kernel's machine code from numba's cache). The
operator's structure hash, which every jitted operator computes once per process, is timed apart.

Usage, from the repository root: ``python benchmarks/bench_numba.py [--smoke]``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import private_cache_dir  # noqa: E402

CACHE = private_cache_dir("numba")
os.environ["XCS_CACHE_DIR"] = CACHE

import numpy as np  # noqa: E402

from examples import numeric_chain  # noqa: E402
from xcs import execution_options, jit  # noqa: E402

SMOKE = "--smoke" in sys.argv
STEPS = 20

COLD = """
import sys, time
t0 = time.perf_counter()
import numpy as np
from examples.numeric_chain import NumericChain
import xcs.compiler.disk_cache as disk_cache
import xcs.compiler.driver as driver
spent = {}
def timed(owner, name):
    original = getattr(owner, name)
    def call(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.setdefault(name, time.perf_counter() - t)  # the first call's
    setattr(owner, name, call)
timed(disk_cache.DiskCache, "load")  # the plan's import
timed(driver, "from_disk")  # the cache entry of the loaded plan
timed(driver, "execute")  # the plan's first run
op = NumericChain(%d, %s)
x = np.linspace(-2.0, 2.0, %d)
t = time.perf_counter()
op.__xcs_jit__.structure(op)  # the structure hash: once per operator, cold for any jitted operator
structure = time.perf_counter() - t
t = time.perf_counter()
op(inputs={"x": x})
first = time.perf_counter() - t
warm = []
for _ in range(200):
    t = time.perf_counter()
    op(inputs={"x": x})
    warm.append(time.perf_counter() - t)
warm.sort()
print(first, spent.get("load", 0.0), warm[len(warm) // 2], structure, spent.get("from_disk", 0.0), spent.get("execute", 0.0))
"""


def per_call(fns, batch: int, repeats: int) -> list[float]:
    """The median time of one call of each of ``fns``, timed in turns (a batch of each, ``repeats``
    times), so a change in the machine's load falls on all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            t = time.perf_counter()
            for _ in range(batch):
                fn()
            spent.append((time.perf_counter() - t) / batch)
    return [statistics.median(spent) for spent in times]


def figures(make, n: int) -> tuple[float, float, float]:
    x = np.linspace(-2.0, 2.0, n)
    inputs = {"x": x}
    plain_op, python_op, numba_op = make(), jit(make(), numba=False), jit(make())
    batch, repeats = (2, 3) if n > 10_000 else ((50, 3) if SMOKE else (100, 45))
    if n > 10_000 and not SMOKE:
        batch, repeats = 2, 15
    python_op(inputs=inputs)
    numba_op(inputs=inputs)
    plain, python, compiled = per_call(
        [lambda: plain_op.forward(inputs=inputs), lambda: python_op(inputs=inputs), lambda: numba_op(inputs=inputs)],
        batch, repeats,
    )
    return plain, python, compiled


def cold(n: int, tanh: bool) -> tuple[float, ...]:
    env = {**os.environ, "XCS_CACHE_DIR": os.path.join(CACHE, f"cold-{tanh}"), "PYTHONPATH": os.getcwd()}
    env.pop("XCS_DISABLE_NUMBA", None)
    out = ""
    for _ in range(2):  # the first process compiles and stores; the second finds both caches warm
        out = subprocess.run(
            [sys.executable, "-c", COLD % (STEPS, tanh, n)], env=env, capture_output=True, text=True, check=True
        ).stdout
    return tuple(map(float, out.split()))


def main() -> None:
    try:
        import numba  # noqa: F401
    except ImportError:
        print("numba is not installed (pip install 'ember-xcs[numba]'): nothing to measure")
        return
    sizes = (1000, 100_000) if SMOKE else (1000, 1_000_000)
    rows = []
    with execution_options(scheduler="sequential"):
        for n in sizes:
            rows.append((f"{STEPS}-step chain, float64[{n}]", n, *figures(lambda: numeric_chain.NumericChain(STEPS), n)))
            rows.append((f"  without tanh, float64[{n}]", n, *figures(lambda: numeric_chain.NumericChain(STEPS, False), n)))
    print("numeric chain: plain Python vs the Python plan vs the numba plan (sequential scheduler; medians)")
    for name, _, plain, python, compiled in rows:
        print(
            f"  {name:<34} plain {plain * 1e6:10.1f} us   Python plan {python * 1e6:10.1f} us ({python / plain:4.2f}x)"
            f"   numba plan {compiled * 1e6:10.1f} us ({compiled / plain:4.2f}x)"
        )
    colds = {tanh: cold(sizes[0], tanh) for tanh in (True, False)}
    for tanh, (first, imported, warm, structure, entry, run) in colds.items():
        print(
            f"cold process, plan and numba cache on disk, {'with' if tanh else 'without'} tanh, float64[{sizes[0]}]: "
            f"first call {first * 1e3:.1f} ms (of which the plan's import {imported * 1e3:.1f} ms: found on disk, "
            f"checked, executed, numba imported, machine code loaded; the rest {(first - imported) * 1e3:.2f} ms: "
            f"the cache entry of the loaded plan {entry * 1e3:.2f} ms, the plan's first run {run * 1e3:.2f} ms), "
            f"warm call {warm * 1e6:.1f} us; before it, the operator's structure hash {structure * 1e3:.1f} ms"
        )
    first, imported, warm, *_ = colds[True]
    small, large = rows[0], rows[2]
    print("targets")
    ratio = small[4] / small[2]
    print(f"  1  {STEPS}-step chain on float64[{small[1]}]: numba plan <= 0.2x plain Python warm   "
          f"{'met' if ratio <= 0.2 else 'NOT MET'} ({ratio:.2f}x)")
    ratio = large[4] / large[2]
    print(f"  2  the same on float64[{large[1]}]: <= 0.5x plain Python   {'met' if ratio <= 0.5 else 'NOT MET'} ({ratio:.2f}x)")
    bound = 1.5 * warm + imported
    first2, imported2, warm2, *_ = colds[False]
    print(f"  3  cold process, numba cache warm: first call <= 1.5x a warm call + the plan's import   "
          f"{'met' if first <= bound else 'NOT MET'} ({first * 1e3:.1f} ms vs {bound * 1e3:.1f} ms; "
          f"without tanh {first2 * 1e3:.1f} ms vs {(1.5 * warm2 + imported2) * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
