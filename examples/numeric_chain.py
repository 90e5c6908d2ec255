"""A numeric chain between model calls, fused into one numba kernel: scale, add, tanh, normalize.

What it shows: every step's ``forward`` is a function of arrays and scalars, so the plan holds one
``@njit`` kernel that inlines all of them (``docs/numba.md``); the element-wise steps between two
normalizations are one loop. ``benchmarks/bench_numba.py`` times it against plain Python.

Run it:

    python -m examples.numeric_chain
"""

from __future__ import annotations

import numpy as np

from xcs import Operator, jit
from xcs.cli import report


class Scale(Operator):
    def __init__(self, factor: float):
        self.factor = factor

    def forward(self, *, inputs):
        return {"x": inputs["x"] * self.factor}


class Shift(Operator):
    def __init__(self, bias: float):
        self.bias = bias

    def forward(self, *, inputs):
        return {"x": inputs["x"] + self.bias}


class Tanh(Operator):
    def forward(self, *, inputs):
        return {"x": np.tanh(inputs["x"])}


class Normalize(Operator):
    """Zero mean, unit variance (a reduction: two passes over the array)."""

    def forward(self, *, inputs):
        x = inputs["x"]
        return {"x": (x - x.mean()) / (x.std() + 1e-9)}


def stages(n: int, tanh: bool = True) -> list[Operator]:
    """``n`` steps cycling scale, shift, tanh, normalize (without tanh when ``tanh`` is False)."""
    kinds = [lambda i: Scale(1.0 + 0.01 * (i % 7)), lambda i: Shift(0.1), lambda i: Tanh(), lambda i: Normalize()]
    if not tanh:
        del kinds[2]
    return [kinds[i % len(kinds)](i) for i in range(n)]


@jit
class NumericChain(Operator):
    """``{"x": float64[n]}`` -> ``{"y": float64[n]}`` through ``steps`` numeric operators."""

    def __init__(self, steps: int = 20, tanh: bool = True):
        self.stages = stages(steps, tanh)

    def forward(self, *, inputs):
        x = inputs["x"]
        for stage in self.stages:
            x = stage(inputs={"x": x})["x"]
        return {"y": x}


def main() -> None:
    op = NumericChain(20)
    x = np.linspace(-2.0, 2.0, 8)
    print(op(inputs={"x": x})["y"])
    print(report(op, {"x": x}, calls=20)[0], end="")


if __name__ == "__main__":
    main()
