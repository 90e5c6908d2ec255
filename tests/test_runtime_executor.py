"""The executor on hand-built plans: every scheduler, dataflow firing, waves, errors, no leaked threads."""

from __future__ import annotations

import dataclasses
import linecache
import threading
import time
import traceback

import pytest
from threads import quiet

from xcs.runtime.errors import CycleError, OperatorInputError, StepError, XCSError
from xcs.runtime.call import execute
from xcs.runtime.options import ExecutionOptions, current_options, execution_options
from xcs.runtime.plan import Plan, Step
from xcs.runtime.schedulers import create_scheduler

MODES = ("sequential", "topological", "wave", "parallel", "auto")
POOL_MODES = ("wave", "parallel")


def make_plan(name, steps, output_deps, **fields):
    """A plan from ``{step name: (fn, dep names)}`` whose ``run`` calls the steps in order."""
    names = list(steps)
    built = tuple(
        Step(n, fn, tuple(names.index(d) for d in deps), location=f"app.py:{10 + k}", source=f"{n}()")
        for k, (n, (fn, deps)) in enumerate(steps.items())
    )
    output = Step("output", lambda ops, inputs, *results: dict(zip(output_deps, results)),
                  tuple(names.index(d) for d in output_deps))

    def run_in_order(ops, inputs):
        results = []
        for step in built:
            results.append(step.fn(ops, inputs, *[results[d] for d in step.deps]))
        return output.fn(ops, inputs, *[results[d] for d in output.deps])

    return Plan(name, built, output, run_in_order, **fields)


def diamond():
    return make_plan(
        "Diamond",
        {
            "a": (lambda ops, inputs: inputs["x"] + 1, ()),
            "b": (lambda ops, inputs: inputs["x"] * 2, ()),
            "c": (lambda ops, inputs: ops["scale"] * inputs["x"], ()),
            "d": (lambda ops, inputs, a, b: a + b, ("a", "b")),
            "e": (lambda ops, inputs, c, d: [c, d], ("c", "d")),
        },
        ("d", "e"),
        required=("x",),
        width=3,
    )


class Recorder:
    """Records start/end times and peak concurrency of sleeping steps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.start, self.end, self.threads = {}, {}, {}
        self.active = self.peak = 0

    def step(self, name, seconds=0.0, fail=False, gate=None):
        """A step sleeping ``seconds``; with ``gate`` (a ``threading.Event``), waiting for it instead
        (``seconds`` then bounds the wait: a hang detector)."""

        def fn(ops, inputs, *deps):
            with self.lock:
                self.start[name] = time.perf_counter()
                self.threads[name] = threading.current_thread()
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                gate.wait(seconds) if gate is not None else time.sleep(seconds)
                if fail:
                    raise ValueError(f"{name} failed")
                return name
            finally:
                with self.lock:
                    self.active -= 1
                    self.end[name] = time.perf_counter()

        return fn


def settle(baseline, timeout=5.0):
    """Poll until the thread count is back to ``baseline`` (or below: a thread of an earlier test may
    exit meanwhile; none of this one may stay); returns the last count seen."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


@pytest.mark.parametrize("mode", MODES)
def test_every_scheduler_gives_the_same_output(mode):
    expected = {"d": 13, "e": [12, 13]}
    plan = diamond()
    assert execute(plan, {"scale": 3}, {"x": 4}, ExecutionOptions(mode)) == expected
    with execution_options(scheduler=mode):
        assert execute(plan, {"scale": 3}, {"x": 4}) == expected
    one_worker = create_scheduler(mode, max_workers=1)
    assert execute(plan, {"scale": 3}, {"x": 4}, ExecutionOptions(one_worker)) == expected


@pytest.mark.parametrize("mode", MODES)
def test_plan_without_steps(mode):
    output = Step("output", lambda ops, inputs: {"y": inputs["x"]})
    plan = Plan("Empty", (), output, lambda ops, inputs: {"y": inputs["x"]})
    assert execute(plan, None, {"x": 1}, ExecutionOptions(mode)) == {"y": 1}


def test_auto_runs_narrow_plans_sequentially_and_wide_ones_in_parallel():
    calls = []
    plan = diamond()

    def run(ops, inputs):
        calls.append("run")
        return "straight-line"

    narrow = Plan(plan.name, plan.steps, plan.output, run, plan.required, width=1)
    assert execute(narrow, {"scale": 1}, {"x": 1}) == "straight-line"
    wide = Plan(plan.name, plan.steps, plan.output, run, plan.required, width=3)
    assert execute(wide, {"scale": 1}, {"x": 1}) == {"d": 4, "e": [1, 4]}
    assert calls == ["run"]


def test_explicit_options_override_current():
    plan = diamond()
    with execution_options(scheduler="sequential"):
        runs = []
        seq = Plan(plan.name, plan.steps, plan.output, lambda o, i: runs.append(1) or "seq", plan.required)
        assert execute(seq, {"scale": 1}, {"x": 1}) == "seq"
        topological = ExecutionOptions("topological")
        assert execute(seq, {"scale": 1}, {"x": 1}, topological) == {"d": 4, "e": [1, 4]}
        assert runs == [1]


def test_topological_runs_in_the_calling_thread_in_dependency_order():
    rec = Recorder()
    plan = make_plan(
        "Topo",
        {
            "early": (rec.step("early"), ()),
            "mid": (rec.step("mid"), ("early",)),
            "other": (rec.step("other"), ()),
        },
        ("mid", "other"),
    )
    assert execute(plan, None, {}, ExecutionOptions("topological")) == {"mid": "mid", "other": "other"}
    assert all(t is threading.current_thread() for t in rec.threads.values())
    assert rec.start["early"] < rec.start["mid"]
    assert rec.peak == 1


def firing_plan(rec):
    """``slow`` is unrelated to ``fast -> after_fast``; ``join`` needs everything."""
    return make_plan(
        "Firing",
        {
            "slow": (rec.step("slow", 0.6), ()),
            "fast": (rec.step("fast", 0.05), ()),
            "after_fast": (rec.step("after_fast", 0.05), ("fast",)),
            "join": (rec.step("join"), ("slow", "after_fast")),
        },
        ("join",),
        width=2,
    )


def test_parallel_fires_a_step_as_soon_as_its_deps_finish():
    rec = Recorder()
    assert execute(firing_plan(rec), None, {}, ExecutionOptions("parallel")) == {"join": "join"}
    assert rec.end["fast"] <= rec.start["after_fast"]
    assert rec.start["after_fast"] < rec.end["slow"]  # did not wait for its slow sibling
    assert rec.end["slow"] <= rec.start["join"] and rec.end["after_fast"] <= rec.start["join"]


def test_wave_runs_one_wave_at_a_time():
    rec = Recorder()
    assert execute(firing_plan(rec), None, {}, ExecutionOptions("wave")) == {"join": "join"}
    assert max(rec.start["slow"], rec.start["fast"]) < min(rec.end["slow"], rec.end["fast"])  # first wave together
    assert rec.end["slow"] <= rec.start["after_fast"]  # second wave after the whole first one
    assert rec.end["after_fast"] <= rec.start["join"]


@pytest.mark.parametrize("mode", POOL_MODES)
def test_steps_of_a_wave_run_concurrently(mode):
    barrier = threading.Barrier(3, timeout=5)  # breaks (and fails the step) unless all three meet
    plan = make_plan(
        "Meet",
        {name: (lambda ops, inputs: barrier.wait(), ()) for name in ("m0", "m1", "m2")},
        ("m0", "m1", "m2"),
        width=3,
    )
    assert sorted(execute(plan, None, {}, ExecutionOptions(mode)).values()) == [0, 1, 2]


@pytest.mark.parametrize("mode", POOL_MODES)
def test_max_workers_bounds_concurrency(mode):
    rec = Recorder()
    names = [f"s{k}" for k in range(6)]
    plan = make_plan("Bounded", {n: (rec.step(n, 0.1), ()) for n in names}, names, width=6)
    with execution_options(scheduler=mode, max_workers=2):
        execute(plan, None, {})
    assert rec.peak == 2
    rec.peak = 0
    execute(plan, None, {}, ExecutionOptions(create_scheduler(mode, max_workers=3)))
    assert rec.peak == 3
    rec.peak = 0  # the options' bound wins over the scheduler's own
    execute(plan, None, {}, ExecutionOptions(create_scheduler(mode, max_workers=3), max_workers=1))
    assert rec.peak == 1


@pytest.mark.parametrize("mode", POOL_MODES)
def test_steps_see_the_callers_options(mode):
    seen = []
    plan = make_plan(
        "Sees",
        {n: (lambda ops, inputs: seen.append(current_options().max_workers), ()) for n in ("a", "b")},
        ("a", "b"),
    )
    with execution_options(scheduler=mode, max_workers=5):
        execute(plan, None, {})
    assert seen == [5, 5]


@pytest.mark.parametrize("mode", MODES)
def test_missing_input_key_fails_before_any_step(mode):
    rec = Recorder()
    plan = make_plan("Ensemble", {"member": (rec.step("member"), ())}, ("member",), required=("query",))
    with pytest.raises(OperatorInputError) as info:
        execute(plan, None, {"q": "hi"}, ExecutionOptions(mode))
    assert str(info.value) == "Ensemble: missing input key 'query' (inputs have: 'q')"
    assert isinstance(info.value, XCSError) and isinstance(info.value, TypeError)
    with pytest.raises(OperatorInputError, match=r"missing input keys 'a', 'b' \(inputs have: no keys\)"):
        execute(Plan("Two", (), plan.output, plan.run, ("a", "b")), None, {}, ExecutionOptions(mode))
    with pytest.raises(OperatorInputError, match="Ensemble: inputs must be a mapping, got list"):
        execute(plan, None, ["query"], ExecutionOptions(mode))
    assert rec.start == {}


@pytest.mark.parametrize("mode", ("topological", "wave", "parallel"))
def test_failing_step_raises_step_error(mode):
    rec = Recorder()
    plan = make_plan(
        "Fails",
        {
            "ok": (rec.step("ok"), ()),
            "bad": (rec.step("bad", fail=True), ("ok",)),
            "after": (rec.step("after"), ("bad",)),
        },
        ("after",),
    )
    with pytest.raises(StepError) as info:
        execute(plan, None, {}, ExecutionOptions(mode))
    error = info.value
    assert error.step == "bad" and error.location == "app.py:11" and error.source == "bad()"
    assert str(error) == "step 'bad' at app.py:11 failed: ValueError: bad failed\n    bad()"
    assert isinstance(error.__cause__, ValueError) and str(error.__cause__) == "bad failed"
    assert "after" not in rec.start


@pytest.mark.parametrize("mode", MODES)
def test_failing_output_step(mode):
    plan = make_plan("Out", {"a": (lambda ops, inputs: 0, ())}, ("a",))

    def output(ops, inputs, a):
        return 1 / a

    plan = Plan("Out", plan.steps, Step("output", output, (0,), "app.py:99"), plan.run)
    if mode in ("sequential", "auto"):  # the straight-line run has no plan file: original error
        plan = Plan("Out", plan.steps, plan.output, lambda ops, inputs: output(ops, inputs, 0))
        with pytest.raises(ZeroDivisionError):
            execute(plan, None, {}, ExecutionOptions(mode))
    else:
        with pytest.raises(StepError, match="step 'output' at app.py:99 failed: ZeroDivisionError"):
            execute(plan, None, {}, ExecutionOptions(mode))


PLAN_SOURCE = """\
def run(ops, inputs):
    doubled = ops.double(inputs["x"])
    checked = ops.check(
        doubled,
    )
    return {"y": ops.finish(checked)}
"""
PLAN_LINES = ((2, 0), (3, 1), (6, 2))  # (first line in run, step index); index 2 is the output


class Ops:
    def __init__(self, finish_fails=False):
        self.finish_fails = finish_fails

    def double(self, x):
        return 2 * x

    def check(self, value):
        if value > 10:
            raise ValueError(f"too big: {value}")
        return value

    def finish(self, value):
        if self.finish_fails:
            raise RuntimeError("cannot finish")
        return value


def compiled_plan(source=PLAN_SOURCE, lines=PLAN_LINES, filename="<plan-test>"):
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    steps = (
        Step("doubled", lambda ops, inputs: ops.double(inputs["x"]), (), "app.py:5", "doubled = double(x)"),
        Step("checked", lambda ops, inputs, d: ops.check(d), (0,), "app.py:6", "checked = check(doubled)"),
    )
    output = Step("output", lambda ops, inputs, c: {"y": ops.finish(c)}, (1,), "app.py:7", "return ...")
    return Plan(
        "Checker", steps, output, namespace["run"], ("x",),
        lines=lines, source=source, filename=filename,
    )


def test_sequential_failure_names_the_step_from_the_traceback():
    plan = compiled_plan()
    assert execute(plan, Ops(), {"x": 3}, ExecutionOptions("sequential")) == {"y": 6}
    with pytest.raises(StepError) as info:
        execute(plan, Ops(), {"x": 6}, ExecutionOptions("sequential"))
    error = info.value
    assert error.step == "checked" and error.location == "app.py:6"
    assert str(error) == (
        "step 'checked' at app.py:6 failed: ValueError: too big: 12\n    checked = check(doubled)"
    )
    assert isinstance(error.__cause__, ValueError)
    assert "    checked = ops.check(" in "".join(traceback.format_exception(error.__cause__))
    for mode in ("topological", "parallel"):  # the step functions say the same
        with pytest.raises(StepError, match="step 'checked' at app.py:6 failed: ValueError: too big: 12"):
            execute(plan, Ops(), {"x": 6}, ExecutionOptions(mode))


@pytest.mark.parametrize("mode", ("sequential", "topological", "parallel"))
def test_failure_in_the_output_names_the_output(mode):
    with pytest.raises(StepError, match="step 'output' at app.py:7 failed: RuntimeError: cannot finish"):
        execute(compiled_plan(), Ops(finish_fails=True), {"x": 1}, ExecutionOptions(mode))


def test_failure_in_a_plan_file_helper_names_the_line_of_run_that_called_it():
    source = """\
def check(ops, value):
    return ops.check(value)


def run(ops, inputs):
    doubled = ops.double(inputs["x"])
    return {"y": ops.finish(check(ops, doubled))}
"""
    plan = compiled_plan(source, lines=((6, 0), (7, 1)), filename="<plan-helper-test>")
    with pytest.raises(StepError, match="step 'checked' at app.py:6 failed: ValueError: too big: 12"):
        execute(plan, Ops(), {"x": 6}, ExecutionOptions("sequential"))


def test_sequential_failure_outside_the_plan_file_is_reraised_unchanged():
    unknown_file = dataclasses.replace(compiled_plan(), filename="")
    with pytest.raises(ValueError, match="too big") as info:
        execute(unknown_file, Ops(), {"x": 6}, ExecutionOptions("sequential"))
    assert info.value.__cause__ is None


@pytest.mark.parametrize("mode", POOL_MODES)
def test_after_a_failure_no_further_step_starts(mode):
    rec = Recorder()
    names = [f"s{k}" for k in range(5)]
    release = threading.Event()  # "busy" runs until the test releases it (30 s: a hang detector)
    steps = {"boom": (rec.step("boom", 0.05, fail=True), ()), "busy": (rec.step("busy", 30, gate=release), ())}
    steps.update({n: (rec.step(n, 0.05), ()) for n in names})
    steps["after_busy"] = (rec.step("after_busy"), ("busy",))
    plan = make_plan("Stops", steps, ("after_busy", *names), width=7)
    baseline = quiet()
    with pytest.raises(StepError, match="step 'boom'"):
        execute(plan, None, {}, ExecutionOptions(mode, max_workers=2))
    busy_ended = "busy" in rec.end
    release.set()
    assert not busy_ended  # promptly: raised while "busy" was still running, did not wait for it
    assert settle(baseline) <= baseline  # "busy" finished in the background, its thread exited
    assert {"boom"} <= set(rec.start) <= {"boom", "busy"}


@pytest.mark.parametrize("mode", MODES)
def test_no_thread_outlives_a_call(mode):
    plan = diamond()
    baseline = quiet()
    for _ in range(3):
        execute(plan, {"scale": 1}, {"x": 1}, ExecutionOptions(mode))
    assert settle(baseline, timeout=1.0) <= baseline
    bad = make_plan("Bad", {"a": (lambda o, i: 1, ()), "b": (lambda o, i: 1 / 0, ())}, ("a", "b"), width=2)
    with pytest.raises((StepError, ZeroDivisionError)):
        execute(bad, None, {}, ExecutionOptions(mode))
    assert settle(baseline) <= baseline


def test_pool_threads_are_reused_by_the_next_call_then_exit_when_idle():
    plan = diamond()
    baseline = quiet()
    execute(plan, {"scale": 1}, {"x": 1}, ExecutionOptions("parallel"))
    warm = {t.ident for t in threading.enumerate() if t.name.startswith("xcs-")}
    execute(plan, {"scale": 1}, {"x": 1}, ExecutionOptions("parallel"))
    again = {t.ident for t in threading.enumerate() if t.name.startswith("xcs-")}
    assert warm & again  # the second call ran on (some of) the first call's threads
    assert settle(baseline, timeout=1.0) <= baseline  # and they exit once idle


@pytest.mark.parametrize("mode", ("topological", "wave", "parallel"))
def test_cycle_raises_cycle_error(mode):
    plan = make_plan("Loop", {"a": (lambda o, i, b: b, ("b",)), "b": (lambda o, i, a: a, ("a",))}, ("a",))
    with pytest.raises(CycleError) as info:
        execute(plan, None, {}, ExecutionOptions(mode))
    assert info.value.cycle[0] == info.value.cycle[-1] and set(info.value.cycle) == {"a", "b"}
