"""Core benchmarks of ember-xcs: warm-call overhead, capture cost, analysis scaling, parallel ensembles.

Every figure is measured in one run, side by side with its baseline, after a warm-up, as the median of
several repeats timed with ``time.perf_counter``. The script never asserts: it prints a table and a final
"targets" section that says, for each target, whether this run met it.

1. **Warm jitted chain vs eager** (target: jitted <= 1.3x eager). ``Chain`` holds a list of 1,000
   trivial operators (``{"v": inputs["v"] + 1}``) and its ``forward`` threads the value through them
   one by one. ``Chain`` itself is never jitted; ``JitChain`` is the same class with ``@jit``. Both are
   called under ``execution_options(scheduler="sequential")``, so the jitted call runs the plan's
   straight-line ``run``. One sample is a batch of calls (a single call is ~1 ms, too short to time
   alone); the jitted and eager batches alternate, and the per-call medians are compared.

2. **Capture + codegen of the 1,000-node graph** (target: under 0.5 s). A fresh ``JitChain`` (so its
   structure hash is not yet memoised) is called once with the in-memory plan cache cleared, the
   imported plan modules dropped from ``sys.modules`` and ``XCS_CACHE_DIR`` pointed at an empty folder:
   a fully cold compile. The figure is that first call minus the median eager call (the trace really
   runs the 1,000 operators). A breakdown by stage (structure hash, trace, lint, codegen, plan file
   write + import) is printed beside it, measured by repeating what ``xcs.compiler.driver.Driver.capture`` does.

3. **Dependency analysis of 100,000 nodes** (target: under 2 s; growth 100k/10k near 10 for linear
   time, taken here as <= 13). ``compiler.analysis.waves`` (which orders the graph itself) on the
   layered random DAGs of ``benchmarks/bench_analysis.py`` (``layered_dag``), 10k and 100k nodes, after
   a ``gc.collect()``, in two layouts: ``definition`` (nodes listed in dependency order, as a traced
   graph arrives) and ``shuffled`` (random order: every access lands somewhere random in memory, so the
   per-node cost also rises as the working set outgrows the CPU caches, on top of linear work).

4. **Parallel ensemble of 32 sleeping members** (target: within 1.10x of the 50 ms ideal). Each member
   calls ``time.sleep(0.05)``; a judge joins the 32 answers. The jitted ensemble runs under
   ``execution_options(scheduler="parallel", max_workers=32)``. Beside it: the eager (serial) ensemble
   for scale, and two hand-written ``ThreadPoolExecutor`` versions calling the same member operators,
   one creating its pool per call (as ``runtime.executor`` does: 32 thread starts per call) and one
   reusing a pool. The three concurrent variants are timed in interleaved rounds so that machine noise
   (thread start-up is slow on a loaded VM) hits them alike.

Run: ``python benchmarks/bench_core.py`` from the repository root (about 20-40 s). ``--smoke``: a chain
of 100, analysis of 1k and 10k nodes, an ensemble of 8, one or two repeats each (a few seconds; checks
the script works, its figures mean little).
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from common import Chain, Inc, private_cache_dir

CACHE_ROOT = private_cache_dir("core")
os.environ["XCS_CACHE_DIR"] = os.path.join(CACHE_ROOT, "warm")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_analysis import layered_dag  # noqa: E402
from xcs.compiler import ir  # noqa: E402
from xcs.compiler.analysis import waves  # noqa: E402
from xcs.compiler.cache import PLAN_PACKAGE, Key, load_plan, plan_file_name  # noqa: E402
from xcs.compiler.codegen import Header, generate  # noqa: E402
from xcs.compiler.trace import Tracer  # noqa: E402
from xcs import Operator, execution_options, jit  # noqa: E402
from xcs.compiler.driver import PLANS  # noqa: E402
from xcs.compiler.signature import Signature  # noqa: E402
from xcs.operator import is_operator  # noqa: E402

SMOKE = "--smoke" in sys.argv[1:]
CHAIN = 100 if SMOKE else 1_000
MEMBERS = 8 if SMOKE else 32
SLEEP = 0.05
ANALYSIS = ((1_000, 1), (10_000, 1)) if SMOKE else ((10_000, 5), (100_000, 3))  # (nodes, repeats)
perf = time.perf_counter


# ---------------------------------------------------------------------- operators
@jit
class JitChain(Chain):
    pass


class Member(Operator):
    def __init__(self, name):
        self.name = name

    def forward(self, *, inputs):
        time.sleep(SLEEP)
        return {"answer": f"{self.name}:{inputs['query']}"}


class Judge(Operator):
    def forward(self, *, inputs):
        return {"final": " | ".join(inputs["answers"])}


class Ensemble(Operator):
    def __init__(self, n):
        self.members = [Member(f"m{i}") for i in range(n)]
        self.judge = Judge()

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return self.judge(inputs={"query": inputs["query"], "answers": answers})


@jit
class JitEnsemble(Ensemble):
    pass


# ---------------------------------------------------------------------- helpers
def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = perf()
        fn()
        samples.append(perf() - start)
    return statistics.median(samples)


def cold_cache() -> None:
    """Forget every compiled plan: in-memory cache, imported plan modules, and plan files on disk."""
    PLANS.clear()
    for name in [n for n in sys.modules if n.startswith(PLAN_PACKAGE + ".")]:
        del sys.modules[name]
    os.environ["XCS_CACHE_DIR"] = tempfile.mkdtemp(dir=CACHE_ROOT)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


# ---------------------------------------------------------------------- 1. warm chain
def bench_chain(rows: list, results: dict) -> None:
    eager, jitted = Chain(CHAIN), JitChain(CHAIN)
    inputs = {"v": 0}
    batch, repeats = (2, 2) if SMOKE else (20, 15)
    with execution_options(scheduler="sequential"):
        same = jitted(inputs=inputs) == eager(inputs=inputs) == {"v": CHAIN}  # compiles
        for _ in range(1 if SMOKE else 3):  # warm-up
            jitted(inputs=inputs)
            eager(inputs=inputs)
        e_samples, j_samples = [], []
        for _ in range(repeats):
            start = perf()
            for _ in range(batch):
                jitted(inputs=inputs)
            j_samples.append((perf() - start) / batch)
            start = perf()
            for _ in range(batch):
                eager(inputs=inputs)
            e_samples.append((perf() - start) / batch)
    e, j = statistics.median(e_samples), statistics.median(j_samples)
    results["eager_chain"] = e
    results["chain_ratio"] = j / e
    rows.append(("1", f"chain of {CHAIN}, eager call", ms(e), f"{e / CHAIN * 1e6:.2f} us/op"))
    rows.append(("1", f"chain of {CHAIN}, jitted warm call (sequential)", ms(j), f"{j / CHAIN * 1e6:.2f} us/op"))
    rows.append(("1", "jitted / eager", f"{j / e:.2f}x", "" if same else "RESULTS DIFFER"))


# ---------------------------------------------------------------------- 2. capture + codegen
def capture_stages(op, inputs) -> dict[str, float]:
    """What ``Driver.capture`` does, stage by stage (plus the structure hash that keys the cache)."""
    config = type(op).__xcs_jit__
    times = {}
    start = perf()
    structure = config.structure(op)
    times["structure hash"] = perf() - start
    key = Key.of(structure, Signature.of(inputs))
    label = config.label(op)
    start = perf()
    tracer = Tracer(op, label.rsplit(":", 1)[-1], is_operator)
    _, graph = tracer.run(config.forward_of(op), inputs)
    times["trace (runs the ops)"] = perf() - start
    start = perf()
    ir.lint(graph)
    times["lint"] = perf() - start
    start = perf()
    header = Header(label, "trace", key.signature.text, key.structure)
    source = generate(graph, header, tuple(tracer.required))
    times["codegen"] = perf() - start
    start = perf()
    load_plan(source, plan_file_name(config.module_label(op), key.structure, source))
    times["plan file write + import"] = perf() - start
    return times


def bench_capture(rows: list, results: dict) -> None:
    inputs = {"v": 0}
    repeats = 1 if SMOKE else 5
    firsts = []
    for i in range(repeats + 1):
        op = JitChain(CHAIN)
        cold_cache()
        with execution_options(scheduler="sequential"):
            start = perf()
            op(inputs=inputs)
            elapsed = perf() - start
        if i:  # the first round is the warm-up
            firsts.append(elapsed)
    first = statistics.median(firsts)
    capture = first - results["eager_chain"]
    results["capture"] = capture
    rows.append(("2", f"first call of a fresh jitted chain of {CHAIN} (cold)", ms(first), ""))
    rows.append(("2", "capture + codegen (first call - eager call)", ms(capture), f"{capture / CHAIN * 1e6:.0f} us/node"))
    stages: dict[str, list[float]] = {}
    for _ in range(1 if SMOKE else 3):
        op = JitChain(CHAIN)
        cold_cache()
        for name, seconds in capture_stages(op, inputs).items():
            stages.setdefault(name, []).append(seconds)
    for name, samples in stages.items():
        rows.append(("2", f"  stage: {name}", ms(statistics.median(samples)), ""))
    PLANS.clear()


# ---------------------------------------------------------------------- 3. analysis
def dag(n: int, shuffled: bool) -> dict[str, list[str]]:
    """``bench_analysis.layered_dag``; older versions of it take no layout and always shuffle."""
    if "shuffled" in inspect.signature(layered_dag).parameters:
        return layered_dag(n, shuffled=shuffled)
    return layered_dag(n) if shuffled else dict(sorted(layered_dag(n).items(), key=lambda kv: int(kv[0][2:])))


def bench_analysis(rows: list, results: dict) -> None:
    for layout in ("definition", "shuffled"):
        seconds = {}
        for n, repeats in ANALYSIS:
            deps = dag(n, shuffled=layout == "shuffled")
            gc.collect()
            seconds[n] = median_time(lambda: waves(deps), repeats)
            del deps
            rows.append(("3", f"waves, {n:,} nodes, {layout} order", ms(seconds[n]),
                         f"{seconds[n] / n * 1e6:.2f} us/node"))
        (small, _), (large, _) = ANALYSIS
        results[f"analysis_large_{layout}"] = seconds[large]
        results[f"growth_{layout}"] = seconds[large] / seconds[small]
        rows.append(("3", f"growth {large // 1000}k / {small // 1000}k, {layout} order (linear ~ 10)",
                     f"{results[f'growth_{layout}']:.1f}", ""))


# ---------------------------------------------------------------------- 4. parallel ensemble
def bench_ensemble(rows: list, results: dict) -> None:
    inputs = {"query": "hi"}
    eager, jitted = Ensemble(MEMBERS), JitEnsemble(MEMBERS)
    shared = ThreadPoolExecutor(MEMBERS)

    def jit_call():
        with execution_options(scheduler="parallel", max_workers=MEMBERS):
            return jitted(inputs=inputs)

    def per_call_pool():
        with ThreadPoolExecutor(MEMBERS) as pool:
            answers = list(pool.map(lambda m: m(inputs=inputs)["answer"], eager.members))
        return eager.judge(inputs={"query": inputs["query"], "answers": answers})

    def shared_pool():
        answers = list(shared.map(lambda m: m(inputs=inputs)["answer"], eager.members))
        return eager.judge(inputs={"query": inputs["query"], "answers": answers})

    variants = {
        f"jitted, parallel scheduler, max_workers={MEMBERS}": jit_call,
        "hand-written ThreadPoolExecutor, pool per call": per_call_pool,
        "hand-written ThreadPoolExecutor, shared pool": shared_pool,
    }
    expected = eager(inputs=inputs)
    e = median_time(lambda: eager(inputs=inputs), 1, warmup=0)
    same = all(fn() == expected for fn in variants.values())  # also compiles the jitted ensemble
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(4 if SMOKE else 17):  # interleaved, so machine noise hits every variant alike
        for name, fn in variants.items():
            start = perf()
            fn()
            if round_ >= 2:  # two warm-up rounds
                samples[name].append(perf() - start)
    shared.shutdown()
    rows.append(("4", f"ensemble of {MEMBERS} x {SLEEP * 1e3:.0f} ms, eager (serial)", ms(e), f"{e / SLEEP:.2f}x ideal"))
    for name, times in samples.items():
        t = statistics.median(times)
        rows.append(("4", name, ms(t), f"{t / SLEEP:.2f}x ideal (min {min(times) / SLEEP:.2f}x)"))
    results["ensemble_ratio"] = statistics.median(samples[f"jitted, parallel scheduler, max_workers={MEMBERS}"]) / SLEEP
    if not same:
        rows.append(("4", "RESULTS DIFFER between versions", "", ""))


# ---------------------------------------------------------------------- main
def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    results: dict[str, float] = {}
    started = perf()
    try:
        bench_chain(rows, results)
        bench_capture(rows, results)
        bench_analysis(rows, results)
        bench_ensemble(rows, results)
    finally:
        shutil.rmtree(CACHE_ROOT, ignore_errors=True)
    width = max(len(r[1]) for r in rows)
    print(f"{'#':<2} {'measurement':<{width}} {'median':>12}  note")
    for fig, name, value, note in rows:
        print(f"{fig:<2} {name:<{width}} {value:>12}  {note}")
    print(f"\ntotal benchmark time: {perf() - started:.1f} s on {os.cpu_count()} CPUs")

    (small, _), (large, _) = ANALYSIS
    targets = [
        ("1", "warm jitted chain <= 1.3x eager", results["chain_ratio"] <= 1.3, f"{results['chain_ratio']:.2f}x"),
        ("2", f"capture + codegen of {CHAIN:,} nodes < 0.5 s", results["capture"] < 0.5, f"{results['capture']:.3f} s"),
        *[("3", f"analysis of {large // 1000}k nodes < 2 s ({layout})", results[f"analysis_large_{layout}"] < 2.0,
           f"{results[f'analysis_large_{layout}']:.3f} s") for layout in ("definition", "shuffled")],
        *[("3", f"growth {large // 1000}k/{small // 1000}k near linear, <= 13 ({layout})", results[f"growth_{layout}"] <= 13,
           f"{results[f'growth_{layout}']:.1f}") for layout in ("definition", "shuffled")],
        ("4", f"{MEMBERS} x 50 ms ensemble within 1.10x of 50 ms", results["ensemble_ratio"] <= 1.10,
         f"{results['ensemble_ratio']:.2f}x"),
    ]
    print("\ntargets")
    for fig, name, ok, value in targets:
        print(f"  {fig}  {name:<50} {'met' if ok else 'NOT MET':<8} ({value})")


if __name__ == "__main__":
    main()
