"""Benchmark of ``compiler.analysis`` on large graphs: is dependency analysis linear, and fast?

Graphs are layered random DAGs of 1k, 10k and 100k nodes (fixed seed; 100 nodes per layer; each
node depends on 1-3 nodes of the previous layer and, one time in ten, also on a node of any earlier
layer). For each it times ``waves(deps)`` and ``critical_path(deps, costs)`` (each call validates
and orders the graph itself, on ``graphlib``), best of a few runs after a ``gc.collect()``, and
prints milliseconds and microseconds per node, for two layouts of the same graph:

- ``definition``: the mapping lists nodes in definition order, as a traced operator graph arrives;
- ``shuffled``: the mapping lists nodes in random order, so every access lands somewhere random in
  memory.

The budget is 2 s for 100k nodes on a 2-core machine; the 100k/10k time ratio should be near 10 for
linear time. The algorithms are linear, but the shuffled layout's working set outgrows the CPU caches
between 10k and 100k nodes, so its per-node cost rises there (it levels off again above ~300k nodes).

Run: ``python benchmarks/bench_analysis.py`` from the repository root; add ``--large`` to also time
300k and 1M nodes (about a minute), which shows the per-node cost levelling off. ``--smoke``: 1k and
10k nodes, one run each (a few seconds; checks the script works, its figures mean little).
"""

from __future__ import annotations

import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xcs.compiler.analysis import critical_path, waves  # noqa: E402

LAYER = 100
SEED = 1234
SMOKE = "--smoke" in sys.argv[1:]
SIZES = (1_000, 10_000) if SMOKE else (1_000, 10_000, 100_000)
BUDGET_S = 2.0


def layered_dag(n: int, shuffled: bool, seed: int = SEED) -> dict[str, list[str]]:
    """A layered random DAG of ``n`` nodes, keyed in definition order or in a shuffled order."""
    rng = random.Random(seed)
    names = [f"op{i}" for i in range(n)]
    deps: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        layer = i // LAYER
        if layer == 0:
            deps[name] = []
            continue
        chosen = set(rng.sample(names[(layer - 1) * LAYER : layer * LAYER], rng.randint(1, 3)))
        if rng.random() < 0.1:
            chosen.add(names[rng.randrange(layer * LAYER)])
        deps[name] = sorted(chosen)
    if shuffled:
        keys = list(deps)
        random.Random(seed + 1).shuffle(keys)
        deps = {k: deps[k] for k in keys}
    return deps


def best_of(fn, repeats: int) -> float:
    gc.collect()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"{'layout':>10} {'nodes':>8} {'edges':>8} {'waves':>6} {'waves+path ms':>15} {'us/node':>8}")
    sizes = SIZES + ((300_000, 1_000_000) if "--large" in sys.argv[1:] else ())
    verdicts = []
    for layout in ("definition", "shuffled"):
        seconds = {}
        for n in sizes:
            deps = layered_dag(n, shuffled=layout == "shuffled")
            edges = sum(map(len, deps.values()))
            count = len(waves(deps))
            repeats = 1 if SMOKE else 5 if n <= 100_000 else 1
            costs = {name: 1.0 for name in deps}
            seconds[n] = best_of(lambda: (waves(deps), critical_path(deps, costs)), repeats)
            del deps
            print(
                f"{layout:>10} {n:>8} {edges:>8} {count:>6} {seconds[n] * 1e3:>15.1f}"
                f" {seconds[n] / n * 1e6:>8.2f}"
            )
        small, large = SIZES[-2:]  # 10k and 100k (smoke: 1k and 10k)
        big = seconds[large]
        verdicts.append(
            f"{layout}: {large // 1000}k under {BUDGET_S:g} s: {'yes' if big < BUDGET_S else 'NO'} ({big:.3f} s);"
            f" growth {large // 1000}k/{small // 1000}k = {big / seconds[small]:.1f} (linear ~ 10)"
        )
    print("\n".join(verdicts))

if __name__ == "__main__":
    main()
