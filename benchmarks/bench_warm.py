"""The warm path: what a jitted call costs beyond its plan's own work (issue "Sound capture").

A warm call computes the input signature, looks the plan up in the in-memory cache, checks its guard,
runs it and checks the output. Measured side by side in one run, as medians of batches:

- the plan's own work: its straight-line ``run(ops, inputs)`` called directly;
- the warm jitted call ``op(inputs=...)`` under the ``sequential`` scheduler;
- the difference, per call: the warm-hit overhead (target: at most 3 us).

Three plans: one operator call, a 10-call chain, and an operator whose plan reads held state (a memory
object) and has an effect step (an append to it), the case the soundness rules add work to.

Usage, from the repository root: ``python benchmarks/bench_warm.py [--smoke]``
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import private_cache_dir  # noqa: E402

os.environ["XCS_CACHE_DIR"] = private_cache_dir("warm")

from xcs import Operator, execution_options, jit  # noqa: E402
from xcs.plans import compiled  # noqa: E402

SMOKE = "--smoke" in sys.argv


class Leaf(Operator):
    def forward(self, *, inputs):
        return {"v": inputs["v"] + 1}


@jit
class One(Operator):
    def __init__(self):
        self.leaf = Leaf()

    def forward(self, *, inputs):
        return self.leaf(inputs=inputs)


@jit
class Chain(Operator):
    def __init__(self):
        self.leaves = [Leaf() for _ in range(10)]

    def forward(self, *, inputs):
        out = inputs
        for leaf in self.leaves:
            out = leaf(inputs=out)
        return out


class Memory:
    def __init__(self):
        self.turns = []


@jit
class Remembers(Operator):
    def __init__(self):
        self.leaf = Leaf()
        self.memory = Memory()

    def forward(self, *, inputs):
        out = self.leaf(inputs={"v": inputs["v"] + len(self.memory.turns)})
        self.memory.turns.append(out["v"])
        return out


def per_call(fn, batch: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def main() -> None:
    batch, repeats = (200, 5) if SMOKE else (2000, 15)
    inputs = {"v": 0}
    rows = []
    with execution_options(scheduler="sequential"):
        for name, op in (("one call", One()), ("10-call chain", Chain()), ("held state + effect", Remembers())):
            op(inputs=inputs)  # compiles
            plan = compiled(op, inputs).plan
            if not hasattr(plan, "run"):  # no plan for this signature (it runs eagerly)
                rows.append((name, None, None))
                continue
            for _ in range(50):
                op(inputs=inputs)
                plan.run(op, inputs)
            own = per_call(lambda: plan.run(op, inputs), batch, repeats)
            warm = per_call(lambda: op(inputs=inputs), batch, repeats)
            if isinstance(op, Remembers):
                op.memory.turns.clear()
            rows.append((name, own, warm))
    print("warm path (sequential scheduler; medians of batches of", batch, "calls)")
    for name, own, warm in rows:
        if own is None:
            print(f"  {name:<22} runs eagerly (no plan)")
            continue
        print(f"  {name:<22} plan's own work {own * 1e6:7.2f} us   warm call {warm * 1e6:7.2f} us   "
              f"overhead {(warm - own) * 1e6:6.2f} us")
    worst = max(warm - own for _, own, warm in rows if own is not None)
    print("targets")
    print(f"  1  warm-hit overhead <= 3 us beyond the plan's own work   {'met' if worst <= 3e-6 else 'NOT MET'} "
          f"(worst {worst * 1e6:.2f} us)")


if __name__ == "__main__":
    main()
