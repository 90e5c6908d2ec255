"""Schedulers and execution options: every scheduler on the corpus, dataflow firing, custom schedulers,
option validation and isolation, run records, progress, and nesting under a bounded pool."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from threads import quiet

import corpus
from corpus import run_counted
from xcs.runtime.errors import SchedulerError
from xcs.runtime.call import execute
from xcs.runtime.options import ExecutionOptions, current_options, execution_options
from xcs.runtime.record import RunRecord, StepRecord, last_run
from xcs.runtime.schedulers import SCHEDULERS, Scheduler, create_scheduler, register_scheduler, unregister_scheduler
from test_runtime_executor import Recorder, diamond, make_plan, settle
from xcs import Operator, jit

ALL = ("sequential", "topological", "wave", "parallel", "async", "auto")


# ------------------------------------------------------------------------------------------ corpus
@pytest.mark.parametrize("scheduler", ALL)
@pytest.mark.parametrize("program", corpus.PROGRAMS, ids=lambda p: p.name)
def test_every_scheduler_equals_eager_on_the_corpus(program, scheduler):
    eager, jitted = program.make(), jit(program.make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for inputs in (*program.inputs, *reversed(program.inputs)):
            expected, expected_calls = run_counted(eager, inputs)
            with execution_options(scheduler=scheduler):
                got, got_calls = run_counted(jitted, inputs)
            assert got == expected, inputs
            assert got_calls == expected_calls, inputs


@pytest.mark.parametrize("scheduler", ALL)
def test_every_scheduler_on_a_hand_built_plan(scheduler):
    assert execute(diamond(), {"scale": 3}, {"x": 4}, ExecutionOptions(scheduler)) == {"d": 13, "e": [12, 13]}


# ------------------------------------------------------------------------------------------ firing
def firing_plan(rec):
    return make_plan(
        "Firing",
        {
            "slow": (rec.step("slow", 0.5), ()),
            "fast": (rec.step("fast", 0.02), ()),
            "after_fast": (rec.step("after_fast", 0.02), ("fast",)),
            "join": (rec.step("join"), ("slow", "after_fast")),
        },
        ("join",),
        width=2,
    )


@pytest.mark.parametrize("mode", ("parallel", "async"))
def test_dataflow_firing_from_the_run_record(mode):
    with execution_options(scheduler=mode, record=True):
        assert execute(firing_plan(Recorder()), None, {}) == {"join": "join"}
    record = last_run()
    slow, fast, after, join = (record.step(n) for n in ("slow", "fast", "after_fast", "join"))
    assert fast.end <= after.start < slow.end  # did not wait for the unrelated slow sibling
    assert slow.end <= join.start and after.end <= join.start
    assert all(r.status == "done" for r in record.steps)


def test_wave_waits_for_the_whole_wave_in_the_record():
    with execution_options(scheduler="wave", record=True):
        execute(firing_plan(Recorder()), None, {})
    record = last_run()
    assert record.step("slow").end <= record.step("after_fast").start


@pytest.mark.parametrize("mode", ("wave", "parallel", "async"))
def test_max_workers_bounds_sync_steps(mode):
    rec = Recorder()
    names = [f"s{k}" for k in range(6)]
    plan = make_plan("Bounded", {n: (rec.step(n, 0.05), ()) for n in names}, names, width=6)
    with execution_options(scheduler=mode, max_workers=2):
        execute(plan, None, {})
    assert rec.peak == 2


# ------------------------------------------------------------------------------------------ registry
class CountingExecutor:
    """A custom executor (the ``register_scheduler`` protocol): counts submissions, runs on threads."""

    instances: list[CountingExecutor] = []

    def __init__(self, workers):
        self.workers = workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="counting")
        self.submitted = 0
        self.shut = None
        CountingExecutor.instances.append(self)

    def submit(self, fn, *args):
        self.submitted += 1
        return self.pool.submit(fn, *args)

    def shutdown(self, wait=True, cancel_futures=False):
        self.shut = (wait, cancel_futures)
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.fixture
def counting():
    def factory(max_workers=None, mode="parallel"):
        return Scheduler("counting", mode, max_workers, executor=CountingExecutor)

    CountingExecutor.instances.clear()
    default = register_scheduler("counting", factory)
    yield default
    unregister_scheduler("counting")


def test_register_scheduler_protocol(counting):
    assert counting == Scheduler("counting", "parallel") and "counting" in SCHEDULERS
    rec = Recorder()
    plan = make_plan("Custom", {n: (rec.step(n, 0.02), ()) for n in ("a", "b", "c")}, ("a", "b", "c"), width=3)
    with execution_options(scheduler="counting", record=True):
        assert execute(plan, None, {}) == {"a": "a", "b": "b", "c": "c"}
    (pool,) = CountingExecutor.instances
    assert pool.workers == 3 and pool.submitted == 3 and pool.shut == (True, False)
    assert {r.worker.split("_")[0] for r in last_run().steps[:3]} == {"counting"}
    assert last_run().scheduler == "counting (parallel)"
    waves = create_scheduler("counting", mode="wave", max_workers=2)
    assert waves == Scheduler("counting", "wave", 2)
    assert execute(plan, None, {}, ExecutionOptions(waves)) == {"a": "a", "b": "b", "c": "c"}
    assert CountingExecutor.instances[-1].workers == 2
    with execute_async_counting():
        assert execute(plan, None, {}, ExecutionOptions(create_scheduler("counting", mode="async"))) == {
            "a": "a", "b": "b", "c": "c"}


class execute_async_counting:
    def __enter__(self):
        self.before = len(CountingExecutor.instances)

    def __exit__(self, *exc):
        if exc[0] is None:
            assert len(CountingExecutor.instances) == self.before + 1
            assert CountingExecutor.instances[-1].submitted == 3


def test_register_scheduler_errors(counting):
    with pytest.raises(SchedulerError, match="cannot replace the built-in scheduler 'parallel'"):
        register_scheduler("parallel", lambda: Scheduler("parallel", "wave"))
    with pytest.raises(SchedulerError, match="already registered"):
        register_scheduler("counting", lambda: Scheduler("counting", "wave"))
    register_scheduler("counting", lambda **o: Scheduler("counting", "wave", **o), replace=True)
    assert SCHEDULERS["counting"].mode == "wave"
    with pytest.raises(SchedulerError, match="must return a Scheduler, got str"):
        register_scheduler("odd", lambda: "wave")
    with pytest.raises(SchedulerError, match="factory must be callable"):
        register_scheduler("odd", "wave")
    with pytest.raises(SchedulerError, match="identifier-like"):
        register_scheduler("no spaces", lambda: Scheduler("x", "wave"))
    with pytest.raises(SchedulerError, match=r"scheduler 'counting': bad options \['speed'\]"):
        create_scheduler("counting", speed=3)
    with pytest.raises(SchedulerError, match="executor must be a callable"):
        Scheduler("x", "parallel", executor=3)
    with pytest.raises(SchedulerError, match="cannot remove the built-in"):
        unregister_scheduler("wave")
    assert "odd" not in SCHEDULERS


def test_unknown_scheduler_lists_custom_ones(counting):
    with pytest.raises(SchedulerError, match=r"valid schedulers: async, auto, counting, parallel"):
        create_scheduler("countng")


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "option, value, message",
    [
        ("timeout", 0, "timeout must be a positive number of seconds or None, got 0"),
        ("timeout", -1.5, "timeout must be a positive"),
        ("timeout", "3", "timeout must be a positive"),
        ("timeout", True, "timeout must be a positive"),
        ("timeout", float("inf"), "timeout must be a positive"),
        ("step_timeout", float("nan"), "step_timeout must be a positive"),
        ("on_error", "ignore", "on_error must be 'raise' or 'collect', got 'ignore'"),
        ("progress", 1, "progress must be True or False, got 1"),
        ("record", "yes", "record must be True, False or a callable"),
    ],
)
def test_invalid_options(option, value, message):
    with pytest.raises(SchedulerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        with execution_options(**{option: value}):
            pass  # pragma: no cover
    assert current_options() == ExecutionOptions()


def test_new_options_nest_and_restore():
    with execution_options(timeout=5, on_error="collect"):
        with execution_options(step_timeout=1.5, record=True):
            options = current_options()
            assert (options.timeout, options.step_timeout, options.on_error, options.record) == (5, 1.5, "collect", True)
        assert current_options().step_timeout is None and current_options().timeout == 5
    assert current_options() == ExecutionOptions()


def test_options_do_not_bleed_between_threads_and_tasks():
    rec_plan = diamond()
    seen = {}

    def worker(name, mode):
        with execution_options(scheduler=mode, record=True, max_workers=2):
            time.sleep(0.02)
            execute(rec_plan, {"scale": 1}, {"x": 1})
            seen[name] = (current_options().scheduler, last_run().scheduler)
        seen[name + " after"] = last_run().scheduler  # the record outlives the block in this thread

    threads = [threading.Thread(target=worker, args=(f"t{m}", m)) for m in ("wave", "parallel", "topological")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["twave"] == ("wave", "wave") and seen["tparallel"] == ("parallel", "parallel")
    assert seen["ttopological"] == ("topological", "topological")
    assert last_run() is None or last_run().scheduler not in ("wave", "parallel", "topological")

    async def task(mode):
        with execution_options(scheduler=mode, record=True):
            await asyncio.sleep(0.01)
            execute(rec_plan, {"scale": 1}, {"x": 1})
            await asyncio.sleep(0.01)
            return current_options().scheduler, last_run().scheduler

    async def main():
        return await asyncio.gather(task("wave"), task("parallel"), task("topological"))

    assert asyncio.run(main()) == [("wave", "wave"), ("parallel", "parallel"), ("topological", "topological")]


# ------------------------------------------------------------------------------------------ record
def test_run_record_fields():
    rec = Recorder()
    plan = make_plan("Rec", {"a": (rec.step("a", 0.01), ()), "b": (rec.step("b", 0.01), ("a",))}, ("b",))
    calls = []
    with execution_options(scheduler="parallel", record=calls.append):
        execute(plan, None, {})
    (record,) = calls
    assert isinstance(record, RunRecord) and record.plan == "Rec" and record.status == "ok"
    assert [r.name for r in record.steps] == ["a", "b", "output"]
    a, b, out = record.steps
    assert isinstance(a, StepRecord) and a.plan == "Rec" and a.index == 0 and a.depth == 0
    assert 0 <= a.start < a.end <= b.start < b.end <= out.start <= out.end <= record.duration
    assert a.worker == threading.current_thread().name  # a chain runs in the calling thread
    assert a.duration == pytest.approx(a.end - a.start)
    text = record.format()
    assert "Rec  scheduler=parallel  status=ok" in text and "a " in text and "done" in text


def test_record_off_keeps_the_last_record_untouched():
    with execution_options(record=True, scheduler="wave"):
        execute(diamond(), {"scale": 1}, {"x": 1})
    first = last_run()
    execute(diamond(), {"scale": 1}, {"x": 1}, ExecutionOptions("wave"))
    assert last_run() is first


def test_sequential_with_record_runs_step_by_step():
    with execution_options(scheduler="sequential", record=True):
        assert execute(diamond(), {"scale": 3}, {"x": 4}) == {"d": 13, "e": [12, 13]}
    record = last_run()
    assert [r.name for r in record.steps] == ["a", "b", "c", "d", "e", "output"]
    assert {r.worker for r in record.steps} == {threading.current_thread().name}


def test_progress_bar_on_stderr(capsys):
    names = [f"s{k}" for k in range(5)]
    plan = make_plan("Bar", {n: (lambda ops, inputs: 1, ()) for n in names}, names, width=5)
    with execution_options(progress=True, scheduler="parallel"):
        execute(plan, None, {})
    err = capsys.readouterr().err
    assert err.startswith("\rBar [") and "5/5 steps" in err and err.endswith("\n")
    execute(plan, None, {}, ExecutionOptions("parallel"))
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------------------ nesting
LOCK = threading.Lock()
ACTIVE = {"now": 0, "peak": 0}


class Leaf(Operator):
    def forward(self, *, inputs):
        with LOCK:
            ACTIVE["now"] += 1
            ACTIVE["peak"] = max(ACTIVE["peak"], ACTIVE["now"])
        time.sleep(0.005)
        with LOCK:
            ACTIVE["now"] -= 1
        return {"x": inputs["x"] + 1}


class Level(Operator):
    """Two children: jitted ``Level`` operators one level down, or leaves."""

    def __init__(self, depth, jit_children=True):
        self.kids = [
            (jit(Level(depth - 1, jit_children)) if jit_children or depth % 2 else Level(depth - 1, jit_children))
            if depth > 1 else Leaf()
            for _ in range(2)
        ]

    def forward(self, *, inputs):
        a = self.kids[0](inputs=inputs)
        b = self.kids[1](inputs=inputs)
        return {"x": a["x"] + b["x"]}


def call_with_deadline(fn, seconds=30.0):
    """Run ``fn`` in a thread: a deadlock fails the test instead of hanging the run."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "deadlock: the nested call did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("mode", ("parallel", "wave", "async", "topological", "auto"))
@pytest.mark.parametrize("jit_children", (True, False), ids=("all-jitted", "alternating"))
def test_nesting_depth_5_with_two_workers_does_not_deadlock(mode, jit_children):
    root = jit(Level(5, jit_children))
    assert root(inputs={"x": 0}) == {"x": 32}  # capture every level
    baseline = quiet()
    ACTIVE["peak"] = 0

    def call():
        with execution_options(scheduler=mode, max_workers=2, record=True):
            return root(inputs={"x": 0}), last_run()

    result, record = call_with_deadline(call)
    assert result == {"x": 32}
    assert ACTIVE["peak"] <= 2  # the bound holds for the whole call, nested plans included
    assert all(r.status == "done" for r in record.steps)
    # jitted or not, sub-composites are inlined at capture: one flat graph of the 32 leaves
    assert max(r.depth for r in record.steps) == 0 and len(record.steps) >= 32
    assert settle(baseline) <= baseline
