"""Benchmark of ``compiler.analysis`` on large graphs: is dependency analysis linear?

For layered random DAGs of 1k, 10k and 100k nodes (fixed seed, 100 nodes per layer, each node
depending on 1-3 nodes of the previous layer plus, one time in ten, a node of any earlier layer), it
times ``topological_order(deps)`` followed by ``waves(deps)`` (each validates and orders the graph
itself), best of a few runs, and prints the time per node. The mapping is given in shuffled node
order so the depth-first search really has to pull dependencies forward. The budget is 2 s for the
100k case; the 100k/10k growth ratio should be near 10 for linear time. It also times
``transitive_closure`` (superlinear by nature: its output is quadratic) on the 10k graph.

Run: ``python benchmarks/bench_analysis.py`` from the repository root.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.analysis import topological_order, transitive_closure, waves  # noqa: E402

LAYER = 100
SEED = 1234


def layered_dag(n: int, seed: int = SEED) -> dict[str, list[str]]:
    rng = random.Random(seed)
    names = [f"op{i}" for i in range(n)]
    deps: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        layer = i // LAYER
        if layer == 0:
            deps[name] = []
            continue
        prev = names[(layer - 1) * LAYER : layer * LAYER]
        chosen = set(rng.sample(prev, rng.randint(1, 3)))
        if rng.random() < 0.1:
            chosen.add(names[rng.randrange(layer * LAYER)])
        deps[name] = sorted(chosen)
    keys = list(deps)
    rng.shuffle(keys)
    return {k: deps[k] for k in keys}


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"{'nodes':>8} {'edges':>8} {'waves':>6} {'order+waves ms':>15} {'us/node':>8}")
    seconds = {}
    for n in (1_000, 10_000, 100_000):
        deps = layered_dag(n)
        edges = sum(map(len, deps.values()))
        count = len(waves(deps))
        seconds[n] = best_of(lambda: (topological_order(deps), waves(deps)), 5 if n < 100_000 else 3)
        print(f"{n:>8} {edges:>8} {count:>6} {seconds[n] * 1e3:>15.1f} {seconds[n] / n * 1e6:>8.2f}")
    ok = seconds[100_000] < 2.0
    print(f"100k under 2 s: {'yes' if ok else 'NO'} ({seconds[100_000]:.3f} s)")
    print(f"growth 100k/10k: {seconds[100_000] / seconds[10_000]:.1f} (linear ~ 10)")
    deps = layered_dag(10_000)
    closure_s = best_of(lambda: transitive_closure(deps), 1)
    size = sum(map(len, transitive_closure(deps).values()))
    print(f"transitive_closure 10k: {closure_s * 1e3:.0f} ms ({size:,} ancestor entries)")


if __name__ == "__main__":
    main()
