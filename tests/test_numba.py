"""Numeric segments fused into numba kernels (``docs/numba.md``): a corpus of segments compiled with and
without numba gives the Python plan's results; plans with kernels are snapshot-tested; numba's cache is
reused by a second process and removed with the plan.

Tolerance, stated once: integer and element-wise work (arithmetic, and numpy's transcendental ufuncs,
which a kernel calls on arrays) and float64 ``sum``/``mean``/``std`` of 1-D or contiguous arrays (summed
in numpy's pairwise order) must be bit-identical; other reductions (numba sums in order, numpy pairwise)
may differ by ``ULPS`` units in the last place of the result's largest magnitude per element of the
input (summing n numbers in another order moves the result by at most about n ulp).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from examples.numeric_chain import NumericChain
from xcs import Operator, dump, explain, jit

ULPS = 4
ROOT = Path(__file__).resolve().parent.parent


class Affine(Operator):
    def __init__(self, scale, bias):
        self.scale, self.bias = scale, bias

    def forward(self, *, inputs):
        return {"x": inputs["x"] * self.scale + self.bias}


class IntMix(Operator):
    def forward(self, *, inputs):
        x = inputs["x"]
        return {"x": (x * 3 + 1) // 2 % 1000, "total": x.sum()}


class Exp(Operator):
    def forward(self, *, inputs):
        return {"x": np.exp(-np.abs(inputs["x"]))}


class Standardize(Operator):
    def forward(self, *, inputs):
        x = inputs["x"]
        return {"x": (x - x.mean()) / (x.std() + 1e-9), "mean": x.mean()}


class Clip(Operator):
    """A branch on a scalar inside the segment."""

    def forward(self, *, inputs):
        x = inputs["x"]
        limit = inputs["limit"]
        if x.max() > limit:
            y = np.minimum(x, limit)
        else:
            y = x * 1.0
        return {"x": y}


class Describe(Operator):
    """Not numeric: it makes text (the place of a model call)."""

    def forward(self, *, inputs):
        return {"text": f"mean {float(inputs['x'].mean()):.3f}"}


class Median(Operator):
    """Passes the static check, but numba has no ``median(axis=...)``: falls back with a warning."""

    def forward(self, *, inputs):
        return {"x": inputs["x"] - np.median(inputs["x"], axis=0)}


class Centered(Operator):
    def __init__(self):
        self.median = Median()

    def forward(self, *, inputs):
        return self.median(inputs=inputs)


class Elementwise(Operator):
    def __init__(self):
        self.a, self.b, self.c = Affine(2.0, 1.0), Affine(0.5, -3.0), Affine(-1.5, 0.25)

    def forward(self, *, inputs):
        x = self.a(inputs={"x": inputs["x"]})["x"]
        y = self.b(inputs={"x": x})["x"]
        return {"y": self.c(inputs={"x": y * 2.0 - x})["x"]}


class Integers(Operator):
    def __init__(self):
        self.first, self.second = IntMix(), IntMix()

    def forward(self, *, inputs):
        out = self.first(inputs=inputs)
        again = self.second(inputs={"x": out["x"]})
        return {"x": again["x"], "totals": (out["total"], again["total"])}


class Reductions(Operator):
    def __init__(self):
        self.exp, self.std = Exp(), Standardize()

    def forward(self, *, inputs):
        z = self.std(inputs={"x": self.exp(inputs=inputs)["x"]})
        return {"z": z["x"], "mean": z["mean"]}


class Branching(Operator):
    def __init__(self):
        self.affine, self.clip = Affine(3.0, 0.0), Clip()

    def forward(self, *, inputs):
        x = self.affine(inputs={"x": inputs["x"]})["x"]
        return self.clip(inputs={"x": x, "limit": inputs["limit"]})


class Mixed(Operator):
    def __init__(self):
        self.affine, self.describe, self.std = Affine(2.0, 0.5), Describe(), Standardize()

    def forward(self, *, inputs):
        x = self.affine(inputs={"x": inputs["x"]})["x"]
        text = self.describe(inputs={"x": x})["text"]
        return {"text": text, "z": self.std(inputs={"x": x})["x"]}


class Matrix(Operator):
    def __init__(self):
        self.a, self.b = Affine(2.0, 1.0), Exp()

    def forward(self, *, inputs):
        return self.b(inputs={"x": self.a(inputs={"x": inputs["m"]})["x"]})


RNG = np.random.default_rng(7)
CORPUS = {
    "elementwise": (Elementwise, {"x": RNG.normal(size=257)}, True),
    "integers": (Integers, {"x": RNG.integers(-10**6, 10**6, size=300)}, True),
    "reductions": (Reductions, {"x": RNG.normal(size=1000)}, True),
    "reductions_of_a_strided_matrix": (Reductions, {"x": RNG.normal(size=(40, 30))[::2, ::3]}, False),
    "branch_clipped": (Branching, {"x": RNG.normal(size=50), "limit": 0.5}, True),
    "branch_unclipped": (Branching, {"x": RNG.normal(size=50) - 10.0, "limit": 0.5}, True),
    "mixed": (Mixed, {"x": RNG.normal(size=64)}, True),
    "fortran_matrix": (Matrix, {"m": np.asfortranarray(RNG.normal(size=(6, 5)))}, True),
    "chain": (lambda: NumericChain(20), {"x": np.linspace(-2.0, 2.0, 1000)}, True),
}


def close(got, want, exact: bool, n: int = 1) -> None:
    """Equal values: bit-identical when ``exact``, else within ``ULPS`` ulp of the largest magnitude
    per element of an input of ``n`` elements."""
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            close(got[key], want[key], exact, n)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            close(a, b, exact, n)
    elif isinstance(want, str):
        assert got == want
    elif exact:
        assert np.array_equal(got, want)
    else:
        want = np.asarray(want, dtype=np.float64)
        scale = np.max(np.abs(want)) if want.size else 0.0
        assert np.max(np.abs(np.asarray(got) - want), initial=0.0) <= ULPS * n * np.spacing(scale)


def eager(make, inputs):
    return make().forward(inputs=inputs)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_python_kernels_equal_eager(name, fresh_plans, monkeypatch):
    """XCS_DISABLE_NUMBA=1 (tested whether numba is installed or not): the same plan runs as Python,
    and equals eager Python exactly."""
    monkeypatch.setenv("XCS_DISABLE_NUMBA", "1")
    make, inputs, _ = CORPUS[name]
    op = jit(make())
    assert "@njit(" in dump(op, inputs)
    close(op(inputs=inputs), eager(make, inputs), exact=True)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_numba_kernels_equal_python(name, fresh_plans, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("XCS_DISABLE_NUMBA", raising=False)
    make, inputs, exact = CORPUS[name]
    op = jit(make())
    before = {key: np.copy(value) for key, value in inputs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every corpus kernel compiles
        got = op(inputs=inputs)
    close(inputs, before, exact=True)  # a kernel writes only into arrays it made
    n = max(np.size(v) for v in inputs.values())
    close(got, eager(make, inputs), exact, n)
    close(op(inputs=inputs), got, exact=True)  # warm: the same kernel


def _kernels(op, inputs):
    entry = op.__xcs_jit__.compiled(op, inputs)
    module = sys.modules[entry.plan.run.__module__]
    return [getattr(module, name) for name in dir(module) if name.startswith("kernel_")]


def test_kernels_are_numba_dispatchers_unless_disabled(fresh_plans, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("XCS_DISABLE_NUMBA", raising=False)
    inputs = {"x": np.arange(5.0)}
    compiled = jit(Elementwise())
    python = jit(Elementwise(), numba=False)
    (kernel,) = _kernels(compiled, inputs)
    (plain,) = _kernels(python, inputs)
    assert type(kernel.compiled).__module__.startswith("numba")
    assert type(plain).__name__ == "function" and not hasattr(plain, "compiled")
    assert np.array_equal(compiled(inputs=inputs)["y"], python(inputs=inputs)["y"])


def test_dtype_ndim_layout_get_their_own_plans(fresh_plans):
    op = jit(Elementwise())
    m = np.arange(12.0).reshape(3, 4)
    readonly = np.arange(4.0)
    readonly.flags.writeable = False
    arrays = (np.arange(4.0), np.arange(4), m, m.T, m[:, ::2], np.arange(4.0, dtype=np.float32), readonly)
    for x in arrays:
        assert np.array_equal(op(inputs={"x": x})["y"], Elementwise().forward(inputs={"x": x})["y"])
    info = op.__xcs_jit__.info(op)
    assert [s.captures for s in info.signatures] == [1] * len(arrays)
    assert "layout=F" in info.signatures[3].signature and "readonly" in info.signatures[-1].signature


def test_typing_error_falls_back_with_one_warning(fresh_plans, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("XCS_DISABLE_NUMBA", raising=False)
    from xcs.runtime.kernels import KernelWarning

    x = np.arange(7.0).reshape(7, 1)
    op = jit(Centered())
    with pytest.warns(KernelWarning, match="kernel_median runs as Python: numba cannot compile it"):
        got = op(inputs={"x": x})
    assert np.array_equal(got["x"], Median().forward(inputs={"x": x})["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op(inputs={"x": x})


def test_explain_lists_segments_and_why_steps_are_left_out():
    text = str(explain(jit(Mixed()), {"x": np.arange(4.0)}))
    assert "segment_affine: affine, std (2 steps)" in text
    assert "describe tests/test_numba.py:" in text
    assert "an f-string" in text and "tests/test_numba.py:" in text.split("describe", 1)[1]


def test_plan_with_kernel_snapshot(plan_snapshot, fresh_plans):
    assert dump(jit(Reductions()), {"x": np.arange(8.0)}) == plan_snapshot


def test_example_plan_snapshot(plan_snapshot, fresh_plans):
    assert dump(NumericChain(8), {"x": np.arange(8.0)}) == plan_snapshot


SECOND_PROCESS = """
import sys, numpy as np
from examples.numeric_chain import NumericChain
op = NumericChain(8)
y = op(inputs={"x": np.linspace(-1.0, 1.0, 100)})["y"]
entry = op.__xcs_jit__.compiled(op, {"x": np.zeros(100)})
module = sys.modules[entry.plan.run.__module__]
kernel = module.kernel_stages_0.compiled
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()), float(y.sum()))
"""


def test_numba_cache_reused_by_a_second_process_and_removed_with_the_plan(tmp_path, monkeypatch):
    pytest.importorskip("numba")
    env = {**os.environ, "XCS_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("XCS_DISABLE_NUMBA", None)
    runs = [
        subprocess.run([sys.executable, "-c", SECOND_PROCESS], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    first, second = (r.stdout.split() for r in runs)
    assert first[:2] == ["0", "1"]  # compiled, then saved
    assert second[:2] == ["1", "0"]  # loaded from numba's cache: no compilation
    assert first[2] == second[2]
    cached = list(tmp_path.glob("*/__pycache__/*.nbi"))
    assert cached and oct(cached[0].parent.stat().st_mode & 0o777) == "0o700"
    from xcs.compiler.disk_cache import disk_cache

    disk_cache(str(tmp_path)).clear()
    assert not list(tmp_path.glob("*/__pycache__/*.nb*"))


NUMERIC_EXAMPLES = {
    "numeric_chain": (lambda: NumericChain(20), {"x": np.linspace(-3.0, 3.0, 500)}, 500),
    "numeric_rerank": (lambda: __import__("examples.numeric_rerank").numeric_rerank.RerankedAnswer(4),
                       {"question": "Why does Saturn have rings?"}, 1),
}


@pytest.mark.parametrize("name", sorted(NUMERIC_EXAMPLES))
def test_numeric_examples_with_and_without_numba(name, fresh_plans, monkeypatch):
    """Every numeric example: numba's plan, the Python plan (XCS_DISABLE_NUMBA=1) and eager agree."""
    make, inputs, n = NUMERIC_EXAMPLES[name]
    want = make().forward(inputs=inputs)
    monkeypatch.setenv("XCS_DISABLE_NUMBA", "1")
    close(make()(inputs=inputs), want, exact=True)
    if pytest.importorskip("numba"):
        monkeypatch.delenv("XCS_DISABLE_NUMBA")
        from xcs.compiler.driver import clear_caches

        clear_caches()
        monkeypatch.setenv("XCS_CACHE_DIR", str(Path(os.environ["XCS_CACHE_DIR"]) / "numba"))
        close(make()(inputs=inputs), want, exact=False, n=n)


def test_oracle_runs_a_fused_graph(fresh_plans):
    """The reference interpreter gives a graph with a kernel the meaning of the graph before fusion."""
    from xcs.compiler.numeric import fuse
    from xcs.compiler.oracle import interpret
    from xcs.compiler.signature import Signature

    op, inputs = jit(Mixed()), {"x": RNG.normal(size=16)}
    cap = op.__xcs_jit__.graph_of(op, inputs, "Mixed", run=False)
    fused, report = fuse(cap.graph, op, Signature.of(inputs), op.__xcs_jit__.is_operator)
    assert [name for name, _ in report.segments] == ["segment_affine"]
    close(interpret(fused, op, inputs), interpret(cap.graph, op, inputs), exact=True)


def test_cli_dump_shows_the_kernel_for_array_inputs(capsys, fresh_plans):
    from xcs.cli import main

    args = ["examples/numeric_chain.py:NumericChain", "--init", "[4]", "--input", '{"x": [0.5, -1.0, 2.0]}']
    assert main(["dump", *args, "--array", "x"]) == 0
    out = capsys.readouterr().out
    assert "@njit('(float64[::1],)')\ndef kernel_stages_0(x):" in out
    assert main(["explain", *args]) == 0  # a JSON list is not an array: no segment, and why
    assert "inputs['x'] is list in the signature" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["sum", "mean", "std", "tanh", "exp", "tanh_in_place", "exp_in_place"])
def test_numpy_functions_give_numpys_bits(name, monkeypatch):
    """Through ``numpy_function`` a kernel's reductions and transcendental ufuncs are numpy's, bit for bit:
    sizes around the pairwise blocks (8, 128, halves), strided and F-ordered arrays."""
    numba = pytest.importorskip("numba")
    monkeypatch.delenv("XCS_DISABLE_NUMBA", raising=False)
    from xcs.runtime.kernels import numpy_function

    call = numpy_function(name)
    kernel = numba.njit(lambda a: call(a))
    rng = np.random.default_rng(11)
    arrays = [rng.normal(size=n) * 10 ** rng.uniform(-3, 2, size=n) + 1.0 for n in (1, 7, 8, 9, 127, 128, 129, 1000, 4099)]
    arrays += [arrays[-1][::3], np.asfortranarray(rng.normal(size=(37, 11))), rng.normal(size=(5, 6))]
    for a in arrays:
        assert np.array_equal(kernel(a.copy(order="K") if "_in_place" in name else a), getattr(np, name.removesuffix("_in_place"))(a))


class Halve(Operator):
    def forward(self, *, inputs):
        return {"x": inputs["x"] * 0.5}


@jit
class ScalarChain(Operator):
    """Numeric steps of scalars only: no kernel (numba would add its compile time for nothing)."""

    def __init__(self):
        self.first, self.second = Halve(), Halve()

    def forward(self, *, inputs):
        return self.second(inputs=self.first(inputs=inputs))


def test_scalar_only_segments_stay_python(fresh_plans):
    text = dump(ScalarChain(), {"x": 3.0})
    assert "njit" not in text and "ops.first(" in text
    assert ScalarChain()(inputs={"x": 3.0}) == {"x": 0.75}
    assert "no numpy array goes in" in str(explain(ScalarChain(), {"x": 3.0}))


class Ratio(Operator):
    """A scalar division by a value that may be zero: a Python float (eager raises) or a numpy scalar
    (eager gives inf and a RuntimeWarning)."""

    def forward(self, *, inputs):
        x = inputs["x"]
        return {"x": x * (inputs["scale"] / x.sum()), "per": inputs["scale"] / inputs["by"]}


class Pick(Operator):
    """An index read in a loop: out of range, eager raises numpy's IndexError."""

    def forward(self, *, inputs):
        x = inputs["x"]
        total = 0.0
        for i in range(5):
            total += x[i * 2]
        return {"x": x * total}


class Divided(Operator):
    def __init__(self):
        self.affine, self.ratio = Affine(1.0, 0.0), Ratio()

    def forward(self, *, inputs):
        x = self.affine(inputs={"x": inputs["x"]})["x"]
        return self.ratio(inputs={"x": x, "scale": inputs["scale"], "by": inputs["by"]})


class Picked(Operator):
    def __init__(self):
        self.affine, self.pick = Affine(2.0, 0.0), Pick()

    def forward(self, *, inputs):
        return self.pick(inputs={"x": self.affine(inputs={"x": inputs["x"]})["x"]})


def _outcome(call):
    """("returned", value) or ("raised", type, message, context) of the error itself (a plan reports
    it as the cause of a ``StepError`` naming the step), and the warnings."""
    from xcs.runtime.errors import StepError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = call()
        except StepError as exc:
            error = exc.__cause__
            return ("raised", type(error), str(error), error.__context__), []
        except Exception as exc:  # noqa: BLE001 - compared with the plan's
            return ("raised", type(exc), str(exc), exc.__context__), []
    return ("returned", value), [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("disable", ["1", ""])
@pytest.mark.parametrize("case", ["python_float_by_zero", "numpy_scalar_by_zero", "index_out_of_range", "fine"])
def test_a_raising_kernel_gives_eagers_outcome(case, disable, fresh_plans, monkeypatch):
    """numba raises where numpy does not (a numpy scalar divided by zero) and with messages of its own;
    a kernel that raises runs again as Python: eager's value and warning, or eager's exception (not
    chained to numba's)."""
    monkeypatch.setenv("XCS_DISABLE_NUMBA", disable)
    make, inputs = {
        "python_float_by_zero": (Divided, {"x": np.arange(1.0, 5.0), "scale": 2.0, "by": 0.0}),
        "numpy_scalar_by_zero": (Divided, {"x": np.array([1.0, -1.0]), "scale": 2.0, "by": 4.0}),
        "index_out_of_range": (Picked, {"x": np.arange(6.0)}),
        "fine": (Picked, {"x": np.arange(12.0)}),
    }[case]
    op = jit(make())
    assert "@njit(" in dump(op, inputs)
    got, got_warnings = _outcome(lambda: op(inputs=inputs))
    want, want_warnings = _outcome(lambda: make().forward(inputs=inputs))
    assert got[0] == want[0]
    if want[0] == "raised":
        assert got[1:] == want[1:]
    else:
        close(got[1], want[1], exact=True)
    assert got_warnings == want_warnings


class InPlace(Operator):
    def forward(self, *, inputs):
        x = inputs["x"]
        x += 1.0
        return {"x": x}


class Into(Operator):
    def forward(self, *, inputs):
        x = inputs["x"]
        y = np.add(x, 1.0, out=x)
        return {"x": y}


class Drawn(Operator):
    def forward(self, *, inputs):
        return {"x": inputs["x"] + np.random.normal()}


class Writers(Operator):
    def __init__(self):
        self.in_place, self.into, self.drawn = InPlace(), Into(), Drawn()

    def forward(self, *, inputs):
        a = self.in_place(inputs={"x": inputs["x"]})["x"]
        b = self.into(inputs={"x": a})["x"]
        return self.drawn(inputs={"x": b})


def test_steps_that_write_into_arrays_or_draw_random_numbers_stay_python():
    text = str(explain(jit(Writers()), {"x": np.arange(4.0)}))
    assert "an in-place update of a name not set to a number (x += 1.0)" in text
    assert "out= (out=x): it writes into an array" in text
    assert "numpy.random draws from a random state" in text
    assert "numeric segments: none" in text


def test_std_about_a_given_mean_gives_numpys_bits(monkeypatch):
    numba = pytest.importorskip("numba")
    monkeypatch.delenv("XCS_DISABLE_NUMBA", raising=False)
    from xcs.runtime.kernels import numpy_function

    mean, about = numpy_function("mean"), numpy_function("std_about")
    kernel = numba.njit(lambda a: about(a, mean(a)))
    rng = np.random.default_rng(5)
    for a in [rng.normal(size=n) * 10 ** rng.uniform(-3, 2, size=n) for n in (1, 8, 129, 1000, 4099)]:
        assert kernel(a) == np.std(a) == about(a, None) or kernel(a) == np.std(a)


class MathSqrt(Operator):
    def forward(self, *, inputs):
        return {"x": inputs["x"] * math.sqrt(inputs["s"])}


class Power(Operator):
    def forward(self, *, inputs):
        return {"x": inputs["x"] * inputs["s"] ** 0.5, "y": inputs["x"] ** 2}


class AfterAffine(Operator):
    def __init__(self, inner):
        self.affine, self.inner = Affine(2.0, 0.0), inner

    def forward(self, *, inputs):
        return self.inner(inputs={"x": self.affine(inputs={"x": inputs["x"]})["x"], "s": inputs["s"]})


@pytest.mark.parametrize("make, why", [
    (MathSqrt, "math.sqrt: math raises where numba returns nan or inf"),
    (Power, "a power whose exponent is not a whole number as written"),
])
def test_scalar_operations_python_gives_other_results_for_stay_python(make, why, fresh_plans):
    """math.sqrt(-1.0) raises where numba's gives nan; (-4.0) ** 0.5 is complex in Python."""
    inputs = {"x": np.arange(3.0), "s": -4.0}
    assert why in str(explain(jit(AfterAffine(make())), inputs))
    want, got = _outcome(lambda: AfterAffine(make()).forward(inputs=inputs)), _outcome(lambda: jit(AfterAffine(make()))(inputs=inputs))
    assert got[0][0] == want[0][0]
    if want[0][0] == "raised":
        assert got[0][1:3] == want[0][1:3]
    else:
        close(got[0][1], want[0][1], exact=True)
