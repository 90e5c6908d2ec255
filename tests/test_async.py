"""The ``async`` scheduler, ``async def forward`` and ``await op.acall(...)``."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings

import pytest
from threads import quiet

from xcs.runtime.errors import AsyncContextError, StepError, XCSError
from xcs.runtime.call import aexecute, execute
from xcs.runtime.options import ExecutionOptions, current_options, execution_options
from xcs.runtime.plan import Plan, Step
from xcs.runtime.record import last_run
from test_runtime_executor import make_plan, settle
from xcs import GraphBreakWarning, Operator, jit


class AsyncMember(Operator):
    def __init__(self, name, delay=0.05):
        self.name = name
        self.delay = delay

    async def forward(self, *, inputs):
        await asyncio.sleep(self.delay)
        return {"answer": f"{self.name}:{inputs['query']}", "loop": id(asyncio.get_running_loop())}


class SyncMember(Operator):
    def __init__(self, name):
        self.name = name

    def forward(self, *, inputs):
        return {"answer": f"{self.name}:{inputs['query']}", "thread": threading.current_thread().name}


class Judge(Operator):
    def forward(self, *, inputs):
        return {"final": " | ".join(inputs["answers"])}


class Ensemble(Operator):
    def __init__(self, members):
        self.members = members
        self.judge = Judge()

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return self.judge(inputs={"query": inputs["query"], "answers": answers})


def async_ensemble(n=4, delay=0.05):
    return jit(Ensemble([AsyncMember(f"m{i}", delay) for i in range(n)]), mode="trace")


EXPECTED = {"final": "m0:hi | m1:hi | m2:hi | m3:hi"}


# ------------------------------------------------------------------------------------------ operators
def test_async_forward_called_synchronously_outside_a_loop():
    assert AsyncMember("a", 0)(inputs={"query": "hi"})["answer"] == "a:hi"


def test_acall_inside_a_running_loop():
    async def main():
        member = AsyncMember("a", 0)
        sync = SyncMember("s")
        return await member.acall(inputs={"query": "hi"}), await sync.acall(query="yo")

    member, sync = asyncio.run(main())
    assert member["answer"] == "a:hi" and sync["answer"] == "s:yo"
    assert sync["thread"] != threading.current_thread().name  # a sync forward does not block the loop


MEMBER = AsyncMember("m", 0.01)  # module level: a jitted function reaches it as a global


@jit
def pipeline(*, inputs):
    first = MEMBER(inputs={"query": inputs["query"]})
    return {"answer": first["answer"] + "!", "loop": first["loop"]}


def test_acall_of_a_jitted_function_runs_its_plan_on_the_loop():
    async def main():
        return await pipeline.acall(inputs={"query": "hi"}), await pipeline.acall(query="yo"), id(asyncio.get_running_loop())

    first, second, loop = asyncio.run(main())
    assert first["answer"] == "m:hi!" and second["answer"] == "m:yo!"
    assert first["loop"] == second["loop"] == loop  # the async operator ran on the caller's loop
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        assert pipeline(inputs={"query": "x"})["answer"] == "m:x!"


def test_sync_call_of_an_async_operator_inside_a_loop_says_to_await_acall():
    async def main():
        with pytest.raises(AsyncContextError, match=r"AsyncMember.forward is async.*await op.acall"):
            AsyncMember("a")(inputs={"query": "hi"})

    asyncio.run(main())
    assert issubclass(AsyncContextError, XCSError)


def test_acall_validates_inputs_like_a_call():
    async def main():
        from xcs.runtime.errors import OperatorInputError

        with pytest.raises(OperatorInputError, match="inputs must be a mapping, got list"):
            await AsyncMember("a").acall(inputs=["hi"])
        with pytest.raises(OperatorInputError, match="not both"):
            await AsyncMember("a").acall(inputs={}, query="x")

    asyncio.run(main())


def test_jitted_async_forward_runs_eagerly_with_a_warning():
    root = jit(AsyncMember("a", 0))

    async def main():
        return await root.acall(inputs={"query": "hi"})

    with pytest.warns(GraphBreakWarning, match="forward is async def"):
        assert asyncio.run(main())["answer"] == "a:hi"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert root(inputs={"query": "yo"})["answer"] == "a:yo"


# ------------------------------------------------------------------------------------------ jitted plans
@pytest.mark.parametrize("mode", ("async", "parallel", "sequential", "wave", "topological", "auto"))
def test_a_sync_call_of_a_plan_with_async_steps_works_outside_a_loop(mode):
    ensemble = async_ensemble()
    assert ensemble(inputs={"query": "hi"}) == EXPECTED  # capture
    with execution_options(scheduler=mode):
        assert ensemble(inputs={"query": "hi"}) == EXPECTED


def test_async_scheduler_awaits_async_steps_natively_and_concurrently():
    ensemble = async_ensemble(delay=0.2)
    ensemble(inputs={"query": "hi"})
    with execution_options(scheduler="async", record=True):
        assert ensemble(inputs={"query": "hi"}) == EXPECTED
    record = last_run()
    members = [record.step(f"members_{i}") for i in range(4)]
    assert {m.worker for m in members} == {"asyncio"}  # awaited on the loop, no thread
    assert max(m.start for m in members) < min(m.end for m in members)  # all in flight together
    judge = record.step("judge")
    assert judge.worker.startswith("xcs-") and judge.start >= max(m.end for m in members)


def test_await_acall_of_a_jitted_plan_in_a_running_loop():
    ensemble = async_ensemble()
    ensemble(inputs={"query": "hi"})

    async def main():
        loop = id(asyncio.get_running_loop())
        with execution_options(record=True):
            result = await ensemble.acall(inputs={"query": "hi"})
            record = last_run()
        return loop, result, record, asyncio.all_tasks()

    loop, result, record, tasks = asyncio.run(main())
    assert result == EXPECTED
    assert record.scheduler == "auto (async)"  # auto means the async scheduler under acall
    assert len(tasks) == 1  # only main(): no task outlives the call


def test_async_operators_run_on_the_callers_loop():
    class Probe(Operator):
        async def forward(self, *, inputs):
            return {"loop": id(asyncio.get_running_loop())}

    class Through(Operator):
        """A sync (non-jitted) operator calling an async one: it runs in the scheduler's pool, and
        the async call it makes goes back to the caller's loop."""

        def __init__(self):
            self.probe = Probe()

        def forward(self, *, inputs):
            return self.probe(inputs=inputs)

    class Root(Operator):
        def __init__(self):
            self.direct = Probe()
            self.through = Through()

        def forward(self, *, inputs):
            return {"direct": self.direct(inputs=inputs)["loop"], "through": self.through(inputs=inputs)["loop"]}

    root = jit(Root(), mode="trace")
    root(inputs={"x": 1})

    async def main():
        return id(asyncio.get_running_loop()), await root.acall(inputs={"x": 1})

    loop, result = asyncio.run(main())
    assert result == {"direct": loop, "through": loop}


class Ticks:
    """Ticks of the caller's event loop (``count``); ``armed`` while the test's loop is ticking."""

    def __init__(self):
        self.count, self.armed = 0, False

    async def wait_for_next(self, bound=10.0):
        """True once the caller's loop has ticked since this call started (``bound``: a hang detector)."""
        seen, loop = self.count, asyncio.get_running_loop()
        deadline = loop.time() + bound
        while self.count == seen and loop.time() < deadline:
            await asyncio.sleep(0.001)
        return self.count > seen


TICKS = Ticks()


class TickWaiter(Operator):
    """An async member that finishes only after the caller's loop has ticked since it started."""

    def __init__(self, name):
        self.name = name

    async def forward(self, *, inputs):
        saw = await TICKS.wait_for_next() if TICKS.armed else None
        return {"answer": f"{self.name}:{inputs['query']}", "saw_tick": saw}


class TickEnsemble(Ensemble):
    def forward(self, *, inputs):
        outs = [m(inputs=inputs) for m in self.members]
        final = self.judge(inputs={"query": inputs["query"], "answers": [o["answer"] for o in outs]})
        return {"final": final["final"], "saw_tick": [o["saw_tick"] for o in outs]}


def test_acall_with_a_thread_scheduler_keeps_the_loop_running():
    ensemble = jit(TickEnsemble([TickWaiter(f"m{i}") for i in range(4)]), mode="trace")
    ensemble(inputs={"query": "hi"})  # capture (not armed: no loop to wait for)

    async def ticker():
        while True:
            TICKS.count += 1
            await asyncio.sleep(0.005)

    async def main():
        tick = asyncio.ensure_future(ticker())
        TICKS.armed = True
        try:
            with execution_options(scheduler="parallel", record=True):
                result = await ensemble.acall(inputs={"query": "hi"})
                record = last_run()
        finally:
            TICKS.armed = False
            tick.cancel()
        return result, record

    result, record = asyncio.run(main())
    assert result["final"] == EXPECTED["final"] and record.scheduler == "parallel"
    # every member, running in a thread, saw the caller's loop tick after it started: the loop kept running
    assert result["saw_tick"] == [True] * 4


def test_concurrent_acalls_keep_their_own_options_and_records():
    ensemble = async_ensemble()
    ensemble(inputs={"query": "hi"})

    async def one(mode, workers):
        with execution_options(scheduler=mode, max_workers=workers, record=True):
            result = await ensemble.acall(inputs={"query": "hi"})
            await asyncio.sleep(0.01)
            return result, current_options().max_workers, last_run().scheduler

    async def main():
        return await asyncio.gather(one("async", 2), one("wave", 3), one("auto", 5))

    results = asyncio.run(main())
    assert [r[0] for r in results] == [EXPECTED] * 3
    assert [r[1:] for r in results] == [(2, "async"), (3, "wave"), (5, "auto (async)")]


# ------------------------------------------------------------------------------------------ hand-built plans
def test_hand_built_plan_with_async_def_steps():
    async def fetch(ops, inputs):
        await asyncio.sleep(0.01)
        return inputs["x"] * 2

    def add(ops, inputs, a):
        return a + 1

    async def output(ops, inputs, a, b):
        return {"a": a, "b": b}

    steps = (Step("fetch", fetch), Step("add", add, (0,)))
    plan = Plan("Hybrid", steps, Step("output", output, (0, 1)), lambda ops, inputs: None, width=1)
    assert execute(plan, None, {"x": 2}, ExecutionOptions("async")) == {"a": 4, "b": 5}

    async def main():
        return await aexecute(plan, None, {"x": 3}, ExecutionOptions("async"))

    assert asyncio.run(main()) == {"a": 6, "b": 7}


def test_sync_execute_of_the_async_scheduler_inside_a_loop_says_to_await():
    plan = make_plan("P", {"a": (lambda ops, inputs: 1, ())}, ("a",))

    async def main():
        with pytest.raises(AsyncContextError, match="P: the 'async' scheduler cannot run from a sync call"):
            execute(plan, None, {}, ExecutionOptions("async"))

    asyncio.run(main())


def test_many_async_steps_run_together():
    async def sleep(ops, inputs):
        await asyncio.sleep(0.2)
        return 1

    n = 500
    steps = tuple(Step(f"s{i}", sleep) for i in range(n))
    plan = Plan("Wide", steps, Step("output", lambda ops, inputs, *r: sum(r), tuple(range(n))),
                lambda ops, inputs: None, width=n)
    baseline = quiet()
    with execution_options(scheduler="async", record=True):
        assert execute(plan, None, {}) == n
    record = last_run()
    starts = [r.start for r in record.steps[:n]]
    ends = [r.end for r in record.steps[:n]]
    assert max(starts) < min(ends)  # every sleep was in flight at once
    assert threading.active_count() <= baseline  # async steps use no thread


def test_async_steps_see_the_callers_options_and_no_threads_leak():
    seen = []

    async def look(ops, inputs):
        seen.append(current_options().max_workers)
        return 1

    plan = make_plan("Sees", {"a": (look, ()), "b": (lambda ops, inputs: seen.append(current_options().max_workers), ())},
                     ("a", "b"), width=2)
    baseline = quiet()
    with execution_options(scheduler="async", max_workers=7):
        execute(plan, None, {})
    assert sorted(seen) == [7, 7]
    assert settle(baseline) <= baseline


def test_step_errors_under_async_name_the_step():
    async def boom(ops, inputs, ok):
        raise KeyError("missing")

    plan = make_plan("Boom", {"ok": (lambda ops, inputs: 1, ()), "boom": (boom, ("ok",))}, ("boom",))
    with pytest.raises(StepError, match=r"step 'boom' at app.py:11 failed: KeyError: 'missing'") as info:
        execute(plan, None, {}, ExecutionOptions("async"))
    assert isinstance(info.value.__cause__, KeyError)


# ------------------------------------------------------------------------------------------ issue 19
@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("member", ["sync", "async"])
def test_acall_cancelled_by_wait_for_leaves_no_task_and_starts_nothing(member, warm):
    """Issue 19: a cancelled acall left tasks pending and later steps started after it was cancelled
    (the first call of a signature runs in a thread: it must stop too)."""
    started = []

    class Step(Operator):
        def __init__(self, name):
            self.name = name

        def forward(self, *, inputs):
            started.append(self.name)
            time.sleep(0.05)
            return {"v": inputs["v"] + 1}

    class AStep(Step):
        async def forward(self, *, inputs):
            started.append(self.name)
            await asyncio.sleep(0.05)
            return {"v": inputs["v"] + 1}

    @jit
    class Chain(Operator):
        def __init__(self, cls):
            self.a, self.b, self.c, self.d = cls("a"), cls("b"), cls("c"), cls("d")

        def forward(self, *, inputs):
            return self.d(inputs=self.c(inputs=self.b(inputs=self.a(inputs=inputs))))

    op = Chain(AStep if member == "async" else Step)

    async def main():
        if warm:
            await op.acall(inputs={"v": 0})
        started.clear()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(op.acall(inputs={"v": 0}), 0.08)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        count = len(started)
        quiet()
        await asyncio.sleep(0.1)  # the loop keeps running: anything left over would start now
        return count

    baseline = quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        count = asyncio.run(main())
    assert len(started) == count and count < 4, started
    assert quiet() <= baseline
