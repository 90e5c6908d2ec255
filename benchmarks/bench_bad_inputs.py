"""Bad inputs and hangs: the catalogue of ``tests/test_bad_inputs.py`` and the hang probes, as figures.

1. **Bad inputs handled clearly** (target: all). Every case of the catalogue (``CASES``: not a mapping,
   missing and nested missing keys, wrong nested types, indexes out of range, odd keys, NaN, huge
   ints, raising ``__getitem__``/``__eq__``/``__repr__``/``dtype``, 500-deep and self-referential
   inputs, frozen attributes, call-form mistakes, ...) runs eagerly and jitted under ``auto``,
   ``trace`` and ``structural``; a case is handled clearly when its outcome is the one it states
   (works and equals eager, or raises eager's error, or a named ``XCSError`` before any operator ran)
   in every mode. Each case is printed on its own line with what the jitted call did.

2. **Hangs** (target: 0). Each probe runs in a daemon thread joined with a bound (a hang detector,
   not a timing): an operator that calls itself (``self(...)`` and ``self.me(...)``), one that calls
   itself forever (must be a RecursionError), a plan step that re-enters the operator while its first
   call compiles (``parallel`` scheduler: another thread of the same call), a cyclic operator tree
   (a back-reference: must run) and a self-containing attribute (must raise ``OperatorCycleError``),
   each in every jit mode.

Run: ``python benchmarks/bench_bad_inputs.py`` from the repository root (``--smoke``: ``auto`` only,
for a quick check).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import private_cache_dir  # noqa: E402

private_cache_dir("bad-inputs")

from test_bad_inputs import CASES, run_case  # noqa: E402
from xcs import Operator, OperatorCycleError, execution_options, jit  # noqa: E402
from xcs.compiler.driver import clear_caches  # noqa: E402

HANG_BOUND = 60.0  # seconds a probe may take before it counts as a hang


# ---------------------------------------------------------------------- hang probes
class Refine(Operator):
    def forward(self, *, inputs):
        if inputs["n"] >= 5:
            return {"n": inputs["n"]}
        return self(inputs={"n": inputs["n"] + 1})


class RefineMe(Operator):
    def __init__(self):
        self.me = self

    def forward(self, *, inputs):
        if inputs["n"] >= 5:
            return {"n": inputs["n"]}
        return self.me(inputs={"n": inputs["n"] + 1})


class Forever(Operator):
    def forward(self, *, inputs):
        return self(inputs=inputs)


class Inc(Operator):
    def forward(self, *, inputs):
        return {"n": inputs["n"] + 1}


class ViaGlobal(Operator):
    def __init__(self):
        self.a = Inc()
        self.b = Inc()

    def forward(self, *, inputs):
        x = self.a(inputs=inputs)
        y = self.b(inputs=inputs)
        if x["n"] >= 4:
            return {"n": x["n"] + y["n"]}
        return LOOP[0](inputs={"n": x["n"]})


LOOP: list = []


class Stage(Operator):
    def forward(self, *, inputs):
        return {"n": inputs["n"] + 1}


class Pipeline(Operator):
    def __init__(self):
        self.stage = Stage()
        object.__setattr__(self.stage, "parent", self)

    def forward(self, *, inputs):
        return self.stage(inputs=inputs)


class Configured(Operator):
    def __init__(self):
        self.cfg = {}
        self.cfg["self"] = self.cfg
        self.stage = Stage()

    def forward(self, *, inputs):
        return self.stage(inputs=inputs)


def expect_recursion_error(fn):
    try:
        fn()
    except RecursionError:
        return True
    return False


def expect_cycle_error(fn):
    try:
        fn()
    except OperatorCycleError:
        return True
    return False


def via_global(mode):
    LOOP[:] = [jit(ViaGlobal(), mode=mode)]
    with execution_options(scheduler="parallel"):
        return LOOP[0](n=0) == {"n": 8}


PROBES = [
    ("self(...) refinement loop", lambda mode: jit(Refine(), mode=mode)(n=0) == {"n": 5}),
    ("self.me(...) refinement loop", lambda mode: jit(RefineMe(), mode=mode)(n=0) == {"n": 5}),
    ("endless self-recursion -> RecursionError", lambda mode: expect_recursion_error(lambda: jit(Forever(), mode=mode)(n=0))),
    ("plan step re-enters while compiling (parallel)", via_global),
    ("cyclic operator tree (back-reference) runs", lambda mode: jit(Pipeline(), mode=mode)(n=1) == {"n": 2}),
    ("self-containing attribute -> OperatorCycleError", lambda mode: expect_cycle_error(lambda: jit(Configured(), mode=mode)(n=1))),
]


def bounded(fn) -> tuple[str, object]:
    """("done", value) / ("raised", exception) / ("hang", None) within ``HANG_BOUND`` seconds."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_BOUND)
    if thread.is_alive():
        return "hang", None
    return ("raised", box["error"]) if "error" in box else ("done", box["value"])


def main() -> None:
    smoke = "--smoke" in sys.argv[1:]
    modes = ("auto",) if smoke else ("auto", "trace", "structural")
    hang_modes = ("auto",) if smoke else ("auto", "enhanced", "structural", "trace")
    warnings.simplefilter("ignore")
    print(f"ember-xcs bad-input benchmarks - Python {sys.version.split()[0]} on {sys.platform}"
          f"{' (smoke)' if smoke else ''}; modes {', '.join(modes)}")

    print("\ncatalogue (a case is clear when its stated outcome holds in every mode):")
    clear = 0
    for case in CASES:
        verdicts = []
        for mode in modes:
            clear_caches()
            good, shown = run_case(case, mode)
            verdicts.append((mode, good, shown))
        ok = all(good for _, good, _ in verdicts)
        clear += ok
        shown = verdicts[0][2].replace("\n", " ")
        bad = [mode for mode, good, _ in verdicts if not good]
        print(f"  {'ok ' if ok else 'BAD'} {case.name:<48} {shown[:110]}" + (f"  [not clear under {', '.join(bad)}]" if bad else ""))

    print("\nhang probes:")
    hangs = wrong = 0
    for name, probe in PROBES:
        for mode in hang_modes:
            clear_caches()
            status, value = bounded(lambda: probe(mode))
            hangs += status == "hang"
            good = status == "done" and value is True
            wrong += not good and status != "hang"
            print(f"  {'ok ' if good else 'BAD'} {name:<50} {mode:<10} {status}"
                  + (f" {type(value).__name__}: {str(value)[:80]}" if status == "raised" else ""))

    tried = len(CASES)
    print("\ntargets:")
    print(f"  bad inputs handled clearly {clear} / {tried} (target all): {'met' if clear == tried else 'NOT met'}")
    print(f"  hangs {hangs} of {len(PROBES) * len(hang_modes)} probes (target 0): {'met' if hangs == 0 else 'NOT met'}")
    print(f"  probes with a wrong outcome {wrong} (target 0): {'met' if wrong == 0 else 'NOT met'}")
    sys.stdout.flush()
    os._exit(0)  # a hung probe's daemon thread must not keep the process alive


if __name__ == "__main__":
    main()
