"""Failure, cancellation, timeouts, interrupts and leaks, under every scheduler."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import gc
import os
import signal
import threading
import time
import warnings

import pytest

from xcs.runtime.errors import StepError, TimeoutError, XCSError
from xcs.runtime.call import aexecute, execute
from xcs.runtime.options import ExecutionOptions, current_options, execution_options
from xcs.runtime.outcome import Collected, Failure
from xcs.runtime.record import last_run
from test_runtime_executor import Recorder, make_plan, settle
from xcs import Operator, jit

THREADED = ("wave", "parallel", "async")
EVERY = ("sequential", "topological", "wave", "parallel", "async")


def quiet(timeout=5.0):
    """Wait for steps left running by earlier tests to finish; the thread count without them."""
    deadline = time.monotonic() + timeout
    while any(t.name.startswith("xcs-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


def pending_futures():
    """Unfinished futures (concurrent and asyncio) alive in this process."""
    gc.collect()
    return [
        o for o in gc.get_objects()
        if isinstance(o, (concurrent.futures.Future, asyncio.Future)) and not o.done()
    ]


class Flags:
    """Async steps that note whether they were cancelled."""

    def __init__(self):
        self.started, self.cancelled, self.finished = set(), set(), set()

    def sleeper(self, name, seconds, fail=False):
        async def fn(ops, inputs, *deps):
            self.started.add(name)
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                self.cancelled.add(name)
                raise
            if fail:
                raise ValueError(f"{name} failed")
            self.finished.add(name)
            return name

        return fn


def failing_plan(rec, busy=0.6, gate=None):
    names = [f"s{k}" for k in range(5)]
    steps = {"boom": (rec.step("boom", 0.05, fail=True), ()), "busy": (rec.step("busy", busy, gate=gate), ())}
    steps.update({n: (rec.step(n, 0.05), ()) for n in names})
    steps["after_busy"] = (rec.step("after_busy"), ("busy",))
    steps["after_boom"] = (rec.step("after_boom"), ("boom",))
    return make_plan("Stops", steps, ("after_busy", "after_boom", *names), width=7)


# ------------------------------------------------------------------------------------------ raise
@pytest.mark.parametrize("mode", THREADED)
def test_first_failure_raises_promptly_and_nothing_else_starts(mode):
    rec = Recorder()
    baseline = quiet()
    before = len(pending_futures())
    release = threading.Event()  # "busy" runs until the test releases it (30 s: a hang detector)
    with pytest.raises(StepError) as info:
        execute(failing_plan(rec, busy=30, gate=release), None, {}, ExecutionOptions(mode, max_workers=2, record=True))
    busy_ended = "busy" in rec.end
    release.set()
    error = info.value
    assert error.step == "boom" and error.location == "app.py:10" and error.source == "boom()"
    assert isinstance(error.__cause__, ValueError)
    assert not busy_ended  # raised while the busy sibling was still running: did not wait for it
    assert {"boom"} <= set(rec.start) <= {"boom", "busy"}  # no step started after the failure
    record = last_run()
    assert record.status == "failed" and "StepError" in record.error
    statuses = {r.name: r.status for r in record.steps}
    assert statuses["boom"] == "failed" and statuses["after_boom"] == "skipped"
    assert statuses["busy"] in ("abandoned", "skipped")  # left to finish in the background
    assert settle(baseline) <= baseline  # then its thread exits
    assert len(pending_futures()) == before


@pytest.mark.parametrize("mode", ("sequential", "topological"))
def test_first_failure_in_the_calling_thread(mode):
    rec = Recorder()
    plan = make_plan("Line", {"a": (rec.step("a"), ()), "b": (rec.step("b", fail=True), ("a",)),
                              "c": (rec.step("c"), ("b",))}, ("c",))
    expected = ValueError if mode == "sequential" else StepError  # a straight line without a plan file
    with pytest.raises(expected, match=r"b failed"):  # re-raises the original (test_runtime_executor)
        execute(plan, None, {}, ExecutionOptions(mode))
    assert "c" not in rec.start


def test_async_steps_are_cancelled_on_failure_and_no_task_survives():
    flags = Flags()
    plan = make_plan(
        "Cancel",
        {  # the slow steps come after "bad" in program order: eager never ran them
            "bad": (flags.sleeper("bad", 0.05, fail=True), ()),
            "slow": (flags.sleeper("slow", 5), ()),
            "slower": (flags.sleeper("slower", 10), ()),
            "later": (flags.sleeper("later", 0), ("bad",)),
        },
        ("slow", "slower", "later"),
        width=3,
    )

    async def main():
        with pytest.raises(StepError, match="step 'bad'"):
            await aexecute(plan, None, {}, ExecutionOptions("async", record=True))
        return set(flags.cancelled), set(flags.finished), asyncio.all_tasks(), last_run()

    cancelled, finished, tasks, record = asyncio.run(main())
    # when the call raised, the 5 s and 10 s steps were already cancelled, not waited for
    assert cancelled == {"slow", "slower"} and finished == set() and "later" not in flags.started
    assert len(tasks) == 1
    assert {r.name: r.status for r in record.steps} == {
        "slow": "cancelled", "slower": "cancelled", "bad": "failed", "later": "skipped", "output": "skipped"}


@pytest.mark.parametrize("mode", EVERY)
def test_steps_before_a_failure_in_program_order_still_run(mode):
    """Eager ran every statement before the failing one: their steps finish (or start, if they had
    not) before the failure raises, and the first failure in program order is the one raised, even
    when a later step fails sooner."""
    rec = Recorder()
    gate = threading.Event()
    steps = {
        "early": (rec.step("early", 30, gate=gate), ()),  # runs until "late" has failed (a 30 s hang detector)
        "early_child": (rec.step("early_child"), ("early",)),
        "late": (rec.step("late", fail=True), ()),
        "after_late": (rec.step("after_late"), ("late",)),
    }
    if mode in ("sequential", "topological"):
        gate.set()  # one step at a time, in program order: "late" is never reached before "early" ends
    else:
        threading.Timer(0.2, gate.set).start()
    raised = ValueError if mode == "sequential" else StepError  # see test_first_failure_in_the_calling_thread
    with pytest.raises(raised, match="late"):
        execute(make_plan("Order", steps, ("early_child", "after_late"), width=2), None, {},
                ExecutionOptions(mode, max_workers=4))
    assert {"early", "early_child"} <= set(rec.end) and "after_late" not in rec.start

    rec = Recorder()
    steps = {
        "first": (rec.step("first", 0.2, fail=True), ()),
        "second": (rec.step("second", fail=True), ()),
    }
    with pytest.raises(raised, match="first"):
        execute(make_plan("Two", steps, ("first", "second"), width=2), None, {}, ExecutionOptions(mode, max_workers=4))


def test_failure_inside_a_nested_plan_names_both_steps():
    class Bad(Operator):
        def forward(self, *, inputs):
            raise RuntimeError("inner boom")

    class Inner(Operator):
        def __init__(self):
            self.bad = Bad()
            self.good = Good()

        def forward(self, *, inputs):
            return {"a": self.good(inputs=inputs)["x"], "b": self.bad(inputs=inputs)}

    class Good(Operator):
        def forward(self, *, inputs):
            return {"x": 1}

    class Outer(Operator):
        def __init__(self):
            self.inner = jit(Inner(), mode="trace")
            self.other = Good()

        def forward(self, *, inputs):
            return {"i": self.inner(inputs=inputs), "o": self.other(inputs=inputs)}

    outer = jit(Outer(), mode="trace")
    with pytest.raises(StepError):
        outer(inputs={"q": 1})  # the capture fails too, naming the inner step
    for mode in EVERY:
        with execution_options(scheduler=mode):
            with pytest.raises(StepError) as info:
                Outer.__call__(outer, inputs={"q": 1})
        chain = []
        error = info.value
        while error is not None:
            chain.append(error)
            error = error.__cause__
        assert "inner boom" in str(chain[0]) or any("inner boom" in str(e) for e in chain)
        assert isinstance(chain[-1], RuntimeError)


# ------------------------------------------------------------------------------------------ collect
def collect_plan(rec):
    return make_plan(
        "Collect",
        {
            "a": (rec.step("a"), ()),
            "bad": (rec.step("bad", fail=True), ("a",)),
            "after_bad": (rec.step("after_bad"), ("bad",)),
            "other": (rec.step("other", 0.02), ()),
            "after_other": (rec.step("after_other"), ("other",)),
        },
        ("after_bad", "after_other"),
        width=2,
    )


@pytest.mark.parametrize("mode", EVERY)
def test_collect_returns_what_could_be_computed(mode):
    rec = Recorder()
    result = execute(collect_plan(rec), None, {}, ExecutionOptions(mode, on_error="collect"))
    assert isinstance(result, Collected) and not result.ok
    assert result.output is None and dict(result) == {} and len(result) == 0
    assert result.results == {"a": "a", "other": "other", "after_other": "after_other"}
    (failure,) = result.failures
    assert isinstance(failure, Failure)
    assert (failure.step, failure.location, failure.source) == ("bad", "app.py:11", "bad()")
    assert isinstance(failure.error, ValueError) and str(failure.error) == "bad failed"
    assert result.skipped == ("after_bad", "output")
    assert "after_bad" not in rec.start
    with pytest.raises(StepError, match="step 'bad' at app.py:11 failed: ValueError: bad failed") as info:
        result.raise_first()
    assert isinstance(info.value.__cause__, ValueError)
    assert "bad at app.py:11: ValueError: bad failed" in repr(result)


@pytest.mark.parametrize("mode", EVERY)
def test_collect_without_failures_is_the_output(mode):
    plan = make_plan("Fine", {"a": (lambda ops, inputs: 1, ()), "b": (lambda ops, inputs: 2, ())}, ("a", "b"))
    result = execute(plan, None, {}, ExecutionOptions(mode, on_error="collect"))
    assert result.ok and result == {"a": 1, "b": 2} and result.output == {"a": 1, "b": 2}
    assert result.results == {"a": 1, "b": 2} and result.failures == () and result.skipped == ()
    result.raise_first()  # nothing to raise


def test_collect_when_the_output_step_fails():
    plan = make_plan("Out", {"a": (lambda ops, inputs: 0, ())}, ("a",))
    from xcs.runtime.plan import Plan, Step

    plan = Plan("Out", plan.steps, Step("output", lambda ops, inputs, a: 1 / a, (0,), "app.py:99"), plan.run)
    result = execute(plan, None, {}, ExecutionOptions("parallel", on_error="collect"))
    assert result.results == {"a": 0} and [f.step for f in result.failures] == ["output"]
    assert isinstance(result.failures[0].error, ZeroDivisionError)


def test_collect_on_a_jitted_operator():
    class Fails(Operator):
        def forward(self, *, inputs):
            raise ValueError("nope")

    class Works(Operator):
        def forward(self, *, inputs):
            return {"y": inputs["x"] + 1}

    class Pair(Operator):
        def __init__(self):
            self.works = Works()
            self.fails = Fails()

        def forward(self, *, inputs):
            return {"w": self.works(inputs=inputs)["y"], "f": self.fails(inputs=inputs)}

    pair = jit(Pair(), mode="trace")
    with execution_options(on_error="collect"):
        results = [pair(inputs={"x": 1}) for _ in range(2)]
    for result in results:
        assert isinstance(result, Collected) and result.results["works"] == {"y": 2}
        assert [f.step for f in result.failures] == ["fails"]
    with pytest.raises(StepError, match="step 'fails'"):
        pair(inputs={"x": 1})


# ------------------------------------------------------------------------------------------ timeouts
def blocking_plan(rec, block=1.5, gate=None):
    return make_plan(
        "Slow",
        {"quick": (rec.step("quick", 0.01), ()), "stuck": (rec.step("stuck", block, gate=gate), ()),
         "after": (rec.step("after"), ("stuck",))},
        ("quick", "after"),
        width=2,
    )


@pytest.mark.parametrize("mode", EVERY)
def test_call_timeout_raises_naming_the_running_steps_and_returns_on_time(mode):
    rec = Recorder()
    baseline = quiet()
    release = threading.Event()  # "stuck" runs until the test releases it (30 s: a hang detector)
    with pytest.raises(TimeoutError) as info:
        execute(blocking_plan(rec, 30, release), None, {}, ExecutionOptions(mode, timeout=0.2, record=True))
    stuck_ended = "stuck" in rec.end
    release.set()
    error = info.value
    assert isinstance(error, XCSError) and isinstance(error, builtins.TimeoutError)
    assert error.steps == ("stuck",) and error.scope == "call" and error.seconds == 0.2
    assert "Slow: call timed out after 0.2 s (timeout); still running: stuck" in str(error)
    assert not stuck_ended  # returned on its timeout, while the blocking step was still running
    assert "after" not in rec.start
    assert last_run().status == "timeout" and last_run().step("stuck").status == "timeout"
    assert settle(baseline) <= baseline  # the blocking step finished in the background


@pytest.mark.parametrize("mode", EVERY)
def test_step_timeout(mode):
    rec = Recorder()
    with pytest.raises(TimeoutError) as info:
        execute(blocking_plan(rec, block=1.0), None, {}, ExecutionOptions(mode, step_timeout=0.15))
    error = info.value
    assert error.steps == ("stuck",) and error.scope == "step"
    assert str(error).startswith("step 'stuck' at app.py:11 timed out after 0.15 s (step_timeout)")
    assert "after" not in rec.start


def test_async_step_timeout_cancels_the_step():
    flags = Flags()
    plan = make_plan("T", {"fast": (flags.sleeper("fast", 0.01), ()), "slow": (flags.sleeper("slow", 5), ())},
                     ("fast", "slow"), width=2)
    for options in (ExecutionOptions("async", step_timeout=0.1), ExecutionOptions("async", timeout=0.1)):
        flags.cancelled.clear()
        with pytest.raises(TimeoutError, match="slow"):
            execute(plan, None, {}, options)
        assert flags.cancelled == {"slow"} and "fast" in flags.finished


@pytest.mark.parametrize("mode", EVERY)
def test_collect_with_timeouts(mode):
    rec = Recorder()
    result = execute(blocking_plan(rec, block=0.8), None, {}, ExecutionOptions(mode, step_timeout=0.15, on_error="collect"))
    assert result.results == {"quick": "quick"}
    (failure,) = result.failures
    assert failure.step == "stuck" and isinstance(failure.error, TimeoutError)
    assert result.skipped == ("after", "output")
    with pytest.raises(TimeoutError):
        result.raise_first()
    result = execute(blocking_plan(rec, block=0.8), None, {}, ExecutionOptions(mode, timeout=0.2, on_error="collect"))
    assert result.results == {"quick": "quick"} and [f.step for f in result.failures] == ["stuck"]
    assert result.failures[0].error.scope == "call"


def test_timeouts_do_not_apply_to_nested_plans_separately():
    class Sleepy(Operator):
        def forward(self, *, inputs):
            time.sleep(0.05)
            return {"x": 1}

    class Inner(Operator):
        def __init__(self):
            self.a, self.b = Sleepy(), Sleepy()

        def forward(self, *, inputs):
            return {"a": self.a(inputs=inputs), "b": self.b(inputs=inputs)}

    class Outer(Operator):
        def __init__(self):
            self.inner = jit(Inner(), mode="trace")
            self.other = Sleepy()

        def forward(self, *, inputs):
            return {"i": self.inner(inputs=inputs), "o": self.other(inputs=inputs)}

    outer = jit(Outer(), mode="trace")
    outer(inputs={})
    with execution_options(step_timeout=2.0, timeout=5.0, scheduler="parallel"):
        assert outer(inputs={})["o"] == {"x": 1}


# ------------------------------------------------------------------------------------------ interrupt
@pytest.fixture
def sigint():
    """Python's default SIGINT handler for the test: a shell runs a background job (``bash .ci/run &``)
    with SIGINT ignored, and then a SIGINT would never become a KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("mode", ("parallel", "wave", "async", "sequential"))
def test_keyboard_interrupt_stops_the_call(mode, sigint):
    def interrupt(ops, inputs):
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        return 1

    release, ended = threading.Event(), []  # "l" runs until the test releases it (30 s: a hang detector)

    def long(ops, inputs):
        release.wait(30)
        ended.append("l")
        return 2

    async def along(ops, inputs):
        await asyncio.sleep(30)
        ended.append("l")
        return 2

    plan = make_plan("Interrupted", {"k": (interrupt, ()), "l": (along if mode == "async" else long, ())},
                     ("k", "l"), width=2)
    baseline = quiet()
    with pytest.raises(KeyboardInterrupt):
        execute(plan, None, {}, ExecutionOptions(mode))
    waited = list(ended)
    release.set()
    assert waited == []  # the interrupt stopped the call while "l" was still running (or before it started)
    assert current_options() == ExecutionOptions()
    assert settle(baseline) <= baseline


def test_keyboard_interrupt_inside_a_step_propagates():
    def stop(ops, inputs):
        raise KeyboardInterrupt

    plan = make_plan("Stop", {"a": (stop, ()), "b": (lambda ops, inputs: time.sleep(0.05), ())}, ("a", "b"), width=2)
    for mode in ("parallel", "wave", "topological"):
        with pytest.raises(KeyboardInterrupt):
            execute(plan, None, {}, ExecutionOptions(mode))


# ------------------------------------------------------------------------------------------ leaks
@pytest.mark.parametrize("mode", EVERY)
def test_no_thread_task_or_future_outlives_a_call(mode):
    rec = Recorder()
    baseline = quiet()
    before = len(pending_futures())
    for options in (
        ExecutionOptions(mode, max_workers=2),
        ExecutionOptions(mode, on_error="collect"),
        ExecutionOptions(mode, step_timeout=0.1),
    ):
        try:
            execute(failing_plan(rec, busy=0.3), None, {}, options)
        except (StepError, TimeoutError, ValueError):  # ValueError: sequential, no plan file
            pass
    assert settle(baseline) <= baseline
    assert len(pending_futures()) == before


# ------------------------------------------------------------------------------------------ issue 19
class _Leaf(Operator):
    def __init__(self, fail=False, delay=0.005):
        self.fail = fail
        self.delay = delay

    def forward(self, *, inputs):
        time.sleep(self.delay)
        if self.fail:
            raise ValueError("leaf failed")
        return {"v": 1}


@jit
class _Inner(Operator):
    def __init__(self, fail=False):
        self.a = _Leaf(delay=0.03)  # still running, with its worker waiting on the loop, when b fails
        self.b = _Leaf(fail)

    def forward(self, *, inputs):
        a = self.a(inputs=inputs)
        b = self.b(inputs=inputs)
        return {"v": a["v"] + b["v"]}


class _Wrap(Operator):  # its try returns on one path only (no try region): a call of it is one step, the inner plan runs nested
    def __init__(self, inner):
        self.inner = inner

    def forward(self, *, inputs):
        try:
            out = self.inner(inputs=inputs)
        except KeyError:
            return {"v": 0}
        return out


@jit
class NestedPlans(Operator):
    def __init__(self):
        self.w1 = _Wrap(_Inner(fail=True))
        self.w2 = _Wrap(_Inner())
        self.other = _Leaf(delay=0.05)

    def forward(self, *, inputs):
        p = self.w1(inputs=inputs)
        q = self.w2(inputs=inputs)
        r = self.other(inputs=inputs)
        return {"v": p["v"] + q["v"] + r["v"]}


def test_failing_nested_plans_under_async_called_synchronously_leave_no_blocked_thread():
    """Issue 19: workers waiting on the call's loop were left blocked forever once asyncio.run closed it
    ("coroutine 'Semaphore.acquire' was never awaited"), more with every failing call."""
    op = NestedPlans()
    baseline = quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with execution_options(scheduler="async"):
            for _ in range(20):
                with pytest.raises(StepError) as info:
                    op(inputs={"v": 1})
                assert str(info.value.__cause__.__cause__) == "leaf failed"
        gc.collect()
    assert quiet() <= baseline
    assert not [t.name for t in threading.enumerate() if t.name.startswith("xcs-")]


@jit(recompile_limit=10_000)
class Rotating(Operator):
    def __init__(self):
        self.a = _Leaf(delay=0)
        self.b = _Leaf(delay=0)

    def forward(self, *, inputs):
        a = self.a(inputs=inputs)
        b = self.b(inputs=inputs)
        return {"v": a["v"] + b["v"]}


def test_evicted_plans_leave_sys_modules_and_linecache(monkeypatch, fresh_plans):
    """Issue 19: the in-memory LRU bounds the plan modules and linecache entries too."""
    import linecache
    import sys

    import xcs.compiler.driver
    from xcs.compiler.cache import PlanCache

    monkeypatch.setattr(xcs.compiler.driver, "PLANS", PlanCache(max_entries=8))
    op = Rotating()

    def held():
        modules = [m for name, m in sys.modules.items() if name.startswith("xcs_plans.") and "Rotating" in name]
        lines = [f for f in linecache.cache if "Rotating" in f]
        return len(modules), len(lines)

    for k in range(40):
        assert op(inputs={f"k{k % 20}": 1}) == {"v": 2}
    assert held() == (8, 8)
    traceback_ok = op(inputs={"k19": 1})  # a plan still cached keeps running and keeps its lines
    assert traceback_ok == {"v": 2} and held() == (8, 8)
    xcs.compiler.driver.PLANS.clear()
    assert held() == (0, 0)


@pytest.mark.parametrize("mode", EVERY)
def test_map_region_failure_waits_for_the_elements_before_it(mode):
    """A map region's element fails: the elements before it (eager ran them first) end before the
    region raises, and an earlier element's failure wins over a later one's that came sooner."""
    from xcs.runtime.batching import map_each

    ended, gate = [], threading.Event()

    def element(x):
        if x == 0:
            gate.wait(30)  # released once element 1 has failed (a hang detector)
            ended.append(x)
            raise KeyError("element 0")
        if x == 1:
            threading.Timer(0.1, gate.set).start()
            raise ValueError("element 1")
        return x

    if mode in ("sequential", "topological"):
        gate.set()  # in order: element 0 ends before element 1 starts
    with execution_options(scheduler=mode, max_workers=4), pytest.raises(KeyError, match="element 0"):
        map_each(element, range(4))
    assert ended == [0]
