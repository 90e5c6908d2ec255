"""The fault matrix: a fault at every step position x every scheduler x every outcome, flat and nested.

Positions: the first step, a middle step (an async operator), the last step, an element of a map
region, a step of a nested plan (a jitted operator reached through one the capture does not inline, so
it runs its own plan). Outcomes: the fault raises (``on_error="raise"``, by a sync call and by ``await op.acall``),
``on_error="collect"``, a hung step under ``step_timeout``, a hung step under the call's ``timeout``,
and ``await op.acall`` cancelled by ``asyncio.wait_for`` while a step hangs. Nesting: the pipeline is
called directly (flat), or as a step of an outer jitted operator (nested).

Each case checks the semantics (the error's root is eager's error; ``collect`` keeps what did not
depend on the failure; timeouts name the step), then, with bounded polls only: no asyncio task of the
call is pending when it returns, no ember-xcs thread is left and the thread count is back to its
baseline, no step started after the call returned or raised (hung steps are released after the call,
so their dependents would start then if anything were left running), and no "never awaited" warning or
asyncio error. After the whole matrix, no concurrent or asyncio future is left pending (a scan of the
heap: too slow to run per case) and garbage collection finds no coroutine that was never awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import threading
import time
import warnings

import pytest
from threads import quiet

from xcs.runtime import pool as runtime_pool
from xcs.runtime.errors import StepError, TimeoutError as XCSTimeoutError, XCSError
from xcs.runtime.options import execution_options
from xcs.runtime.outcome import Collected
from xcs import Operator, jit

SCHEDULERS = ("sequential", "topological", "wave", "parallel", "async", "auto")
POSITIONS = {  # position -> (the leaf that faults, the pipeline step it is in)
    "first": ("first", "f"),
    "middle": ("side", "s"),
    "last": ("last", "last"),
    "map": ("each:2", "items"),
    "nested": ("b", "n"),
}
OUTCOMES = ("raise", "acall-raise", "collect", "step_timeout", "timeout", "cancel")
HANG = {"step_timeout", "timeout", "cancel"}
FAIL_AFTER = 0.02  # a failing step fails this long after it started: its siblings have started by then
STEP_TIMEOUT, CALL_TIMEOUT, CANCEL_AFTER = 0.15, 0.25, 0.15
POLL = 5.0  # bound of every wait (a hang detector, not a timing assertion)


# ------------------------------------------------------------------------------------ the program
class Faults:
    """Which leaf faults and how; the log of every leaf start; the event that releases hung leaves."""

    def __init__(self):
        self.reset(None, None)

    def reset(self, target, kind):
        self.target, self.kind = target, kind
        self.lock = threading.Lock()
        self.starts: list[str] = []
        self.release = threading.Event()

    def started(self, name):
        with self.lock:
            self.starts.append(name)

    def fault(self, name):
        if name != self.target:
            return None
        return self.kind


FAULTS = Faults()


class Leaf(Operator):
    def __init__(self, name):
        self.name = name

    def forward(self, *, inputs):
        name = self.name if "x" not in inputs else f"{self.name}:{inputs['x']}"
        FAULTS.started(name)
        fault = FAULTS.fault(name)
        if fault == "raise":
            time.sleep(FAIL_AFTER)
            raise ValueError(f"{name} failed")
        if fault == "hang":
            FAULTS.release.wait(POLL)
        else:
            time.sleep(0.001)
        return {"v": 1, "xs": [1, 2, 3, 4]}


class AsyncLeaf(Operator):
    def __init__(self, name):
        self.name = name

    async def forward(self, *, inputs):
        FAULTS.started(self.name)
        fault = FAULTS.fault(self.name)
        if fault == "raise":
            await asyncio.sleep(FAIL_AFTER)
            raise ValueError(f"{self.name} failed")
        if fault == "hang":
            deadline = time.monotonic() + POLL
            while not FAULTS.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        else:
            await asyncio.sleep(0.001)
        return {"v": 1}


@jit
class Inner(Operator):
    def __init__(self):
        self.a = Leaf("a")
        self.b = Leaf("b")
        self.c = Leaf("c")

    def forward(self, *, inputs):
        a = self.a(inputs=inputs)
        b = self.b(inputs=inputs)
        return self.c(inputs={"a": a["v"], "b": b["v"]})


class Wrap(Operator):
    """Its forward holds a construct the capture does not inline (a ``try`` that returns on one path
    only), so a call of it is one step, and the jitted operator it calls runs its own plan: a nested plan."""

    def __init__(self, inner):
        self.inner = inner

    def forward(self, *, inputs):
        try:
            out = self.inner(inputs=inputs)
        except KeyError:
            return {"v": 0}
        return out


@jit
class Pipeline(Operator):
    def __init__(self):
        self.first = Leaf("first")
        self.mid = Leaf("mid")
        self.side = AsyncLeaf("side")
        self.each = Leaf("each")
        self.wrap = Wrap(Inner())
        self.last = Leaf("last")

    def forward(self, *, inputs):
        f = self.first(inputs=inputs)
        m = self.mid(inputs=f)
        s = self.side(inputs=f)
        items = [self.each(inputs={"x": x}) for x in f["xs"]]
        n = self.wrap(inputs=f)
        return self.last(inputs={"m": m["v"], "s": s["v"], "items": [i["v"] for i in items], "n": n["v"]})


@jit
class Outer(Operator):
    def __init__(self):
        self.other = Leaf("other")
        self.pipe = Wrap(Pipeline())

    def forward(self, *, inputs):
        o = self.other(inputs=inputs)
        p = self.pipe(inputs=inputs)
        return {"v": o["v"] + p["v"]}


PROGRAMS = {"flat": (Pipeline(), ("f", "m", "s", "items", "n", "last")), "nested": (Outer(), ("o", "p"))}
INPUTS = {"q": "hi"}


# ------------------------------------------------------------------------------------ helpers
BEFORE: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def short_idle():
    """Idle warm-pool threads exit after 20 ms instead of 0.5 s (reuse, not a leak), so the matrix
    can wait for the thread count to come back quickly."""
    saved = runtime_pool.IDLE
    runtime_pool.IDLE = 0.02
    for program, _ in PROGRAMS.values():  # compile once, outside any case
        FAULTS.reset(None, None)
        program(inputs=INPUTS)
    quiet()
    BEFORE["pending"] = len(pending_work())
    yield
    runtime_pool.IDLE = saved


def root(error):
    """The original exception under ember-xcs's wrappers."""
    while isinstance(error, XCSError) and error.__cause__ is not None:
        error = error.__cause__
    return error


@functools.lru_cache(maxsize=None)
def eager_error(target):
    """What eager Python raises for this fault (the oracle of ``raise``)."""
    FAULTS.reset(target, "raise")
    program, _ = PROGRAMS["flat"]
    with pytest.raises(Exception) as info:
        Pipeline.forward(program, inputs=INPUTS)  # forward itself: no plan, eager semantics
    return root(info.value)


def same_error(got, expected):
    got = root(got)
    return type(got) is type(expected) and str(got) == str(expected)


def pending_work():
    """Unfinished concurrent and asyncio futures (tasks included) alive in this process."""
    gc.collect()
    return [
        o for o in gc.get_objects()
        if isinstance(o, (concurrent.futures.Future, asyncio.Future)) and not o.done()
    ]


def xcs_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("xcs-")]


def run_case(program, outcome, scheduler):
    """Make the call; returns (result or None, exception or None, pending tasks right after it, the
    number of leaf starts when it returned)."""
    options = {"scheduler": scheduler}
    if outcome == "collect":
        options["on_error"] = "collect"
    elif outcome == "step_timeout":
        options["step_timeout"] = STEP_TIMEOUT
    elif outcome == "timeout":
        options["timeout"] = CALL_TIMEOUT
    if outcome in ("acall-raise", "cancel"):
        async def main():
            with execution_options(**options):
                try:
                    if outcome == "cancel":
                        result = await asyncio.wait_for(program.acall(inputs=INPUTS), CANCEL_AFTER)
                    else:
                        result = await program.acall(inputs=INPUTS)
                    error = None
                except BaseException as exc:  # noqa: BLE001 - the case's outcome
                    result, error = None, exc
            returned = len(FAULTS.starts)
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            FAULTS.release.set()
            deadline = time.monotonic() + 0.5  # the loop keeps running: an orphan would start now
            while time.monotonic() < deadline and xcs_threads():
                await asyncio.sleep(0.01)
            return result, error, left, returned

        return asyncio.run(main())
    with execution_options(**options):
        try:
            result, error = program(inputs=INPUTS), None
        except BaseException as exc:  # noqa: BLE001
            result, error = None, exc
    return result, error, [], len(FAULTS.starts)


CASES = [
    (nesting, position, outcome, scheduler)
    for nesting in PROGRAMS
    for position in POSITIONS
    for outcome in OUTCOMES
    for scheduler in SCHEDULERS
    if nesting == "flat" or outcome in ("raise", "acall-raise", "step_timeout", "cancel")
]


# ------------------------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("nesting,position,outcome,scheduler", CASES, ids=["-".join(c) for c in CASES])
def test_fault(nesting, position, outcome, scheduler, caplog):
    program, steps = PROGRAMS[nesting]
    target, step = POSITIONS[position]
    outer_step = step if nesting == "flat" else "p"
    expected = eager_error(target)
    baseline = quiet()
    assert not xcs_threads()
    FAULTS.reset(target, "hang" if outcome in HANG else "raise")
    caplog.set_level(logging.ERROR, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, error, left, returned = run_case(program, outcome, scheduler)

        # -- the semantics
        if outcome in ("raise", "acall-raise"):
            assert isinstance(error, StepError), repr(error)
            assert error.step == outer_step
            assert same_error(error, expected), (repr(root(error)), repr(expected))
        elif outcome == "collect":
            assert error is None, repr(error)
            assert isinstance(result, Collected) and not result.ok
            assert [f.step for f in result.failures] == [outer_step]
            assert same_error(result.failures[0].error, expected)
            assert result.output is None
            # every step that does not need the failed one finished
            independent = set() if outer_step == "f" else {s for s in steps if s not in (outer_step, "last", "p")}
            assert independent <= set(result.results), (independent, result.results)
        elif outcome in ("step_timeout", "timeout"):
            assert isinstance(error, XCSTimeoutError), repr(error)
            assert error.scope == ("step" if outcome == "step_timeout" else "call")
            assert outer_step in error.steps
        else:  # cancel
            assert isinstance(error, TimeoutError) and not isinstance(error, XCSError), repr(error)
        assert left == [], f"tasks left pending after the call: {left}"

        # -- nothing left behind (bounded polls)
        FAULTS.release.set()
        quiet(POLL)
        assert not xcs_threads(), xcs_threads()
        assert threading.active_count() == baseline
        late = FAULTS.starts[returned:]
        assert late == [], f"started after the call returned: {late}"
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []
    assert not [r for r in caplog.records if r.name == "asyncio"], [r.getMessage() for r in caplog.records]


def test_nothing_pending_after_the_matrix():
    """Runs after the matrix (file order): no future or task any case made is still pending, and
    collecting garbage finds no coroutine that was never awaited."""
    FAULTS.release.set()
    quiet(POLL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deadline = time.monotonic() + POLL
        while len(pending_work()) > BEFORE["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pending_work()) <= BEFORE["pending"], pending_work()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
