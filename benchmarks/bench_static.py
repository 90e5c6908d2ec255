"""Static-capture benchmarks of ember-xcs (the Figures of the static-capture issue), in one run.

Every figure is the median of several repeats after a warm-up, timed with ``time.perf_counter``. The
script never asserts: it prints a table and a final "targets" section that says, for each target,
whether this run met it. ``XCS_CACHE_DIR`` points at a temporary folder (removed at the end) before
``xcs`` is imported, so no plan is read from or left in a real cache.

1. **Static capture + codegen of a 1,000- and a 10,000-call forward** (targets: under 0.3 s and under
   3 s; growth 10k / 1k near 10 for linear time, taken here as <= 13; a 2,000-call midpoint is measured
   too, so the growth exponent shows even when the 10k case is stopped). Two forms of the same chain of
   trivial operators (``{"v": inputs["v"] + 1}``):

   - ``straight-line``: ``forward`` is generated source text with one distinct statement per call,
     ``x17 = self.ops[17](inputs={"v": x16["v"]})``, written to a module file in a temporary folder
     and imported (so both the bytecode and the source the capture reads exist);
   - ``loop``: ``x = inputs; for op in self.ops: x = op(inputs=x)`` (the capture unrolls the loop over
     the static operator list).

   The figure is ``compiler.capture.capture(op, op.forward, {"v": 0}, mode="structural", run=False)``
   (nothing runs) followed by ``compiler.codegen.generate(graph, Header(...), required)``. Every
   repeat is a cold capture: the capture's memo caches (the ``functools.lru_cache``'d functions of the
   ``compiler`` modules: decoded bytecode, source locations, ...) are cleared before it, as a fresh
   forward would find them. Each size and form runs in a child process of its own (a clean interpreter)
   with a time limit, so a capture that grows faster than linearly cannot hold the whole script up:
   a case stopped at its limit is reported as "> limit".

2. **Warm call overhead: static plan vs traced plan** (target: equal, i.e. within 10% of each other;
   both plans run through the same executor, ``runtime.call.execute``). A chain of 100 trivial
   operators (the ``loop`` form above), one instance compiled by ``jit(op, mode="structural")`` and
   one by ``jit(op, mode="trace")``, both called under ``execution_options(scheduler="sequential")``.
   One sample is a batch of calls; the static, traced and eager (un-jitted, for scale) batches
   alternate, in an order rotated every round, and the per-call medians are compared. The table also
   says whether the two plan texts are identical below their two header lines.

3. **Map region over 1,000 elements of a 20 ms operator with 64 workers** (target: within 1.15x of
   ceil(1000 / 64) x 20 ms = 320 ms). ``forward`` is ``{"ys": [self.work(x=d)["y"] for d in
   inputs["items"]]}`` where ``work`` sleeps ``time.sleep(0.02)``; ``jit(mode="structural")`` compiles
   the comprehension over the runtime list into a map region (``runtime.batching.map_each``), called
   under ``execution_options(scheduler="parallel", max_workers=64)``. Beside it, hand-written
   ``ThreadPoolExecutor(64)`` loops calling the same operator: one creating its pool per call (as
   ``map_each`` does: 64 thread starts per call) and one reusing a pool. The three are timed in
   interleaved rounds, so machine noise hits them alike. One measured ``time.sleep(0.02)`` is printed
   too: the ideal assumes exactly 20 ms, the OS usually overshoots a little on every sleep.

Run: ``python benchmarks/bench_static.py`` from the repository root (about 30-50 s on 2 CPUs).
``--smoke``: captures of 100, 200 and 1,000 calls (one repeat each), a few warm rounds, a map of 128
items (a few seconds; checks the script works, its figures mean little). A figure that fails to be
measured (an exception, or a capture child that printed nothing and was not stopped at its limit) is
reported in the table and makes the script exit 1.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from common import Chain, Inc, private_cache_dir

WORKER_FLAG = "--capture-worker"
CACHE_ROOT = os.environ.get("XCS_BENCH_STATIC_ROOT") or private_cache_dir("static")
os.environ["XCS_CACHE_DIR"] = os.path.join(CACHE_ROOT, "cache")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xcs.compiler.capture import capture  # noqa: E402
from xcs.compiler.codegen import Header, generate  # noqa: E402
from xcs import Operator, execution_options, jit  # noqa: E402
from xcs.plans import compiled  # noqa: E402
from xcs.operator import is_operator  # noqa: E402

SMOKE = "--smoke" in sys.argv[1:]
FORMS = ("straight-line", "loop")
# per case: (repeats, stop starting repeats after this many seconds, hard limit on the child process)
if SMOKE:
    SIZES = (100, 200, 1_000)
    CASE_LIMITS = {100: (1, 1.0, 60.0), 200: (1, 1.0, 60.0), 1_000: (1, 1.0, 60.0)}
else:
    SIZES = (1_000, 2_000, 10_000)  # 2,000: a midpoint, so the growth exponent shows even when 10k is stopped
    CASE_LIMITS = {1_000: (5, 4.0, 15.0), 2_000: (3, 3.0, 12.0), 10_000: (3, 8.0, 18.0)}
CHAIN = 100
ITEMS, WORKERS, SLEEP = (128 if SMOKE else 1_000), 64, 0.02
perf = time.perf_counter


# ---------------------------------------------------------------------- operators
class Work(Operator):
    def forward(self, *, inputs):
        time.sleep(SLEEP)
        return {"y": inputs["x"] * 2}


class MapAll(Operator):
    def __init__(self):
        self.work = Work()

    def forward(self, *, inputs):
        return {"ys": [self.work(x=d)["y"] for d in inputs["items"]]}


# ---------------------------------------------------------------------- helpers
def k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def generated_module_source(n: int) -> str:
    """A module with ``Straight`` (one distinct statement per call) and ``Looped`` (a loop), n calls."""
    lines = [
        f'"""Generated by benchmarks/bench_static.py: a forward with {n:,} operator calls."""',
        "from xcs import Operator",
        "",
        "",
        "class Inc(Operator):",
        "    def forward(self, *, inputs):",
        '        return {"v": inputs["v"] + 1}',
        "",
        "",
        "class Straight(Operator):",
        "    def __init__(self, n):",
        "        self.ops = [Inc() for _ in range(n)]",
        "",
        "    def forward(self, *, inputs):",
        '        x0 = self.ops[0](inputs={"v": inputs["v"]})',
    ]
    lines += [f'        x{i} = self.ops[{i}](inputs={{"v": x{i - 1}["v"]}})' for i in range(1, n)]
    lines += [
        f"        return x{n - 1}",
        "",
        "",
        "class Looped(Operator):",
        "    def __init__(self, n):",
        "        self.ops = [Inc() for _ in range(n)]",
        "",
        "    def forward(self, *, inputs):",
        "        x = inputs",
        "        for op in self.ops:",
        "            x = op(inputs=x)",
        "        return x",
    ]
    return "\n".join(lines) + "\n"


def write_generated_module(n: int) -> Path:
    folder = Path(CACHE_ROOT) / "src"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"static_gen_{n}.py"
    path.write_text(generated_module_source(n))
    return path


def import_path(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # writes __pycache__ beside it: bytecode and source both exist
    return module


def clear_capture_caches() -> int:
    """Clear every ``lru_cache`` of the ``xcs.compiler`` package (decoded bytecode, locations, ...)."""
    cleared = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("xcs.compiler"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()
                cleared += 1
    return cleared


# ---------------------------------------------------------------------- 1. capture + codegen (child)
def capture_worker(path: str, form: str, n: int, repeats: int, budget: float) -> None:
    """Child process: print one JSON line per cold capture + codegen, until ``repeats`` or ``budget``."""
    module = import_path(Path(path))
    op = (module.Straight if form == "straight-line" else module.Looped)(n)
    started = perf()
    for _ in range(repeats):
        clear_capture_caches()
        gc.collect()
        t0 = perf()
        cap = capture(op, op.forward, {"v": 0}, mode="structural", name=type(op).__name__,
                      is_operator=is_operator, run=False)
        t1 = perf()
        steps = None
        if cap.graph is not None:
            source = generate(cap.graph, Header(f"{path}:{type(op).__name__}", cap.strategy, "{v: int}", "bench"),
                              cap.required)
            steps = source.count("\n        Step(")
        t2 = perf()
        print(json.dumps({"capture": t1 - t0, "codegen": t2 - t1, "strategy": cap.strategy, "steps": steps,
                          "breaks": [str(b) for _, b in cap.breaks]}), flush=True)
        if perf() - started > budget:
            break


def run_case(path: Path, form: str, n: int) -> dict:
    """Run one case in a child process; the samples it printed before its limit (if it hit one)."""
    repeats, budget, limit = CASE_LIMITS[n]
    env = dict(os.environ, XCS_BENCH_STATIC_ROOT=CACHE_ROOT)
    command = [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, str(path), form, str(n), str(repeats),
               str(budget)]
    start = perf()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=REPO) as proc:
        try:
            out, err = proc.communicate(timeout=limit)
            stopped = False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            stopped = True
    samples = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {"samples": samples, "stopped": stopped, "limit": limit, "wall": perf() - start,
            "error": "" if samples or stopped else (err.strip().splitlines() or ["no output"])[-1]}


def bench_capture(rows: list, results: dict) -> None:
    paths = {n: write_generated_module(n) for n in SIZES}
    for form in FORMS:
        for n in SIZES:
            case = run_case(paths[n], form, n)
            samples = case["samples"]
            label = f"{form}, {n:,} calls: capture + codegen"
            if not samples:
                results[(form, n)] = math.inf
                what = f"> {case['limit']:.0f} s" if case["stopped"] else "failed"
                rows.append(("1", label, what, case["error"] or "stopped at its time limit, not one repeat finished"))
                if not case["stopped"]:
                    results.setdefault("failures", []).append(f"{label}: {case['error']}")
                continue
            total = statistics.median(s["capture"] + s["codegen"] for s in samples)
            cap = statistics.median(s["capture"] for s in samples)
            gen = statistics.median(s["codegen"] for s in samples)
            results[(form, n)] = total
            first = samples[0]
            note = f"{len(samples)} repeat(s), {total / n * 1e6:.0f} us/call, strategy {first['strategy']}, " \
                   f"{first['steps']} steps"
            if first["breaks"]:
                note += f", breaks: {first['breaks'][0]}"
            rows.append(("1", label, f"{total:.3f} s", note))
            rows.append(("1", "  of which capture (structural, run=False)", f"{cap:.3f} s", ""))
            rows.append(("1", "  of which codegen", f"{gen:.3f} s", ""))
        small, mid, large = (results[(form, n)] for n in SIZES)
        exponent = math.log(mid / small, SIZES[1] / SIZES[0]) if math.isfinite(mid) and small > 0 else math.inf
        rows.append(("1", f"{form}: growth {k(SIZES[1])} / {k(SIZES[0])} (linear ~ 2, quadratic ~ 4)",
                     f"{mid / small:.1f}" if math.isfinite(exponent) else "-",
                     f"time ~ n^{exponent:.2f}" if math.isfinite(exponent) else ""))
        if math.isfinite(large) and small > 0:
            results[("growth", form)] = large / small
            rows.append(("1", f"{form}: growth {k(SIZES[2])} / {k(SIZES[0])} (linear ~ 10)", f"{large / small:.1f}", ""))
        else:
            bound = CASE_LIMITS[SIZES[-1]][2] / small if small > 0 and math.isfinite(small) else math.inf
            results[("growth", form)] = math.inf
            note = f"{k(SIZES[2])} stopped at its limit"
            if math.isfinite(exponent):
                note += f"; ~{small * (SIZES[-1] / SIZES[0]) ** exponent:.0f} s projected at n^{exponent:.2f}"
            rows.append(("1", f"{form}: growth {k(SIZES[2])} / {k(SIZES[0])} (linear ~ 10)", f"> {bound:.0f}", note))


# ---------------------------------------------------------------------- 2. warm call overhead
def bench_warm(rows: list, results: dict) -> None:
    inputs = {"v": 0}
    eager = Chain(CHAIN)
    static = jit(Chain(CHAIN), mode="structural")
    traced = jit(Chain(CHAIN), mode="trace")
    variants = {"static": static, "traced": traced, "eager": eager}
    batch, rounds = (3, 3) if SMOKE else (30, 61)
    order = list(variants)
    with execution_options(scheduler="sequential"):
        same = all(op(inputs=inputs) == {"v": CHAIN} for op in variants.values())  # compiles both plans
        sources = {name: compiled(op, inputs).source for name, op in (("static", static), ("traced", traced))}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(rounds):
            order = order[1:] + order[:1]  # rotate: no variant always runs first (or right after eager)
            for name in order:
                op = variants[name]
                start = perf()
                for _ in range(batch):
                    op(inputs=inputs)
                if round_:  # the first round is the warm-up
                    samples[name].append((perf() - start) / batch)
    strategies = {name: _header_field(src, "strategy") for name, src in sources.items()}
    identical = [s.splitlines()[2:] for s in sources.values()]
    medians = {name: statistics.median(times) for name, times in samples.items()}
    results["warm_ratio"] = medians["static"] / medians["traced"]
    for name, label in (("static", f"jit(mode='structural'), strategy {strategies['static']}"),
                        ("traced", f"jit(mode='trace'), strategy {strategies['traced']}"),
                        ("eager", "eager (not jitted), for scale")):
        t = medians[name]
        note = f"{t / CHAIN * 1e6:.2f} us/step"
        if name != "eager":
            note += f", {(t - medians['eager']) / CHAIN * 1e6:+.2f} us/step vs eager"
        rows.append(("2", f"chain of {CHAIN}, warm call, {label}", f"{t * 1e6:.0f} us", note))
    rows.append(("2", "static / traced warm call", f"{results['warm_ratio']:.2f}x",
                 ("plan text identical below the header" if identical[0] == identical[1] else "plan texts differ")
                 + ("" if same else "; RESULTS DIFFER")))


def _header_field(source: str, name: str) -> str:
    first = source.splitlines()[0] if source else ""
    marker = f"{name}: "
    return first.split(marker, 1)[1].split()[0] if marker in first else "?"


# ---------------------------------------------------------------------- 3. map region
def bench_map(rows: list, results: dict) -> None:
    items = list(range(ITEMS))
    inputs = {"items": items}
    expected = {"ys": [2 * i for i in items]}
    op = jit(MapAll(), mode="structural")
    work = Work()
    shared = ThreadPoolExecutor(WORKERS)

    def jitted():
        with execution_options(scheduler="parallel", max_workers=WORKERS):
            return op(inputs=inputs)

    def per_call_pool():
        with ThreadPoolExecutor(WORKERS) as pool:
            return {"ys": list(pool.map(lambda d: work(x=d)["y"], items))}

    def shared_pool():
        return {"ys": list(shared.map(lambda d: work(x=d)["y"], items))}

    variants = {
        f"jitted map region, parallel, max_workers={WORKERS}": jitted,
        f"hand-written ThreadPoolExecutor({WORKERS}), pool per call": per_call_pool,
        f"hand-written ThreadPoolExecutor({WORKERS}), shared pool": shared_pool,
    }
    same = all(fn() == expected for fn in variants.values())  # also compiles the jitted one (warm-up)
    source = compiled(op, inputs).source
    strategy = _header_field(source, "strategy")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(2 if SMOKE else 6):  # interleaved, so machine noise hits every variant alike
        for name, fn in variants.items():
            start = perf()
            fn()
            samples[name].append(perf() - start)
    shared.shutdown()
    sleeps = []
    for _ in range(2 if SMOKE else 10):
        start = perf()
        time.sleep(SLEEP)
        sleeps.append(perf() - start)
    ideal = math.ceil(ITEMS / WORKERS) * SLEEP
    rows.append(("3", f"ideal: ceil({ITEMS}/{WORKERS}) x {SLEEP * 1e3:.0f} ms", ms(ideal),
                 f"serial would be {ITEMS * SLEEP:.0f} s"))
    rows.append(("3", f"one time.sleep({SLEEP}) as measured", ms(statistics.median(sleeps)), ""))
    for i, (name, times) in enumerate(samples.items()):
        t = statistics.median(times)
        note = f"{t / ideal:.2f}x ideal (min {min(times) / ideal:.2f}x)"
        if i == 0:
            note += f", strategy {strategy}, " + ("map_each region" if "map_each(" in source else "NO map region")
        rows.append(("3", name, ms(t), note))
    results["map_ratio"] = statistics.median(samples[next(iter(variants))]) / ideal
    if not same:
        rows.append(("3", "RESULTS DIFFER between versions", "", ""))


# ---------------------------------------------------------------------- main
def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    results: dict = {}
    started = perf()
    try:
        for bench in (bench_capture, bench_warm, bench_map):
            try:
                bench(rows, results)
            except Exception as exc:  # report and go on: the script never stops at one failing figure
                rows.append(("!", f"{bench.__name__} failed: {type(exc).__name__}: {exc}", "", ""))
                results.setdefault("failures", []).append(f"{bench.__name__}: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(CACHE_ROOT, ignore_errors=True)
    width = max(len(r[1]) for r in rows)
    print(f"{'#':<2} {'measurement':<{width}} {'median':>12}  note")
    for fig, name, value, note in rows:
        print(f"{fig:<2} {name:<{width}} {value:>12}  {note}")
    print(f"\ntotal benchmark time: {perf() - started:.1f} s on {os.cpu_count()} CPUs")

    def value(key, fmt):
        v = results.get(key)
        return "not measured" if v is None else ("stopped at limit" if v == math.inf else fmt.format(v))

    targets = []
    for form in FORMS:
        for n, limit in ((SIZES[0], 0.3), (SIZES[2], 3.0)):
            v = results.get((form, n))
            targets.append(("1", f"{form}: capture + codegen of {n:,} calls < {limit} s",
                            v is not None and v < limit, value((form, n), "{:.3f} s")))
        g = results.get(("growth", form))
        targets.append(("1", f"{form}: growth {k(SIZES[2])}/{k(SIZES[0])} near linear, <= 13", g is not None and g <= 13,
                        value(("growth", form), "{:.1f}")))
    r = results.get("warm_ratio")
    targets.append(("2", "static warm call = traced warm call (within 10%)", r is not None and abs(r - 1) <= 0.10,
                    value("warm_ratio", "{:.2f}x")))
    m = results.get("map_ratio")
    targets.append(("3", f"map of {ITEMS} x {SLEEP * 1e3:.0f} ms, {WORKERS} workers, within 1.15x ideal",
                    m is not None and m <= 1.15, value("map_ratio", "{:.2f}x")))
    print("\ntargets")
    tw = max(len(t[1]) for t in targets)
    for fig, name, ok, shown in targets:
        print(f"  {fig}  {name:<{tw}} {'met' if ok else 'NOT MET':<8} ({shown})")
    if results.get("failures"):
        print("\nnot measured (the script is broken):", *results["failures"], sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER_FLAG:
        _, _, path_arg, form_arg, n_arg, repeats_arg, budget_arg = sys.argv
        capture_worker(path_arg, form_arg, int(n_arg), int(repeats_arg), float(budget_arg))
    else:
        main()
