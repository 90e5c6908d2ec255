"""The one executor: a ``Walk`` runs a plan's steps in dependency order on ``graphlib.TopologicalSorter``.

Its sync driver (``run``) hands steps to the call's pool (in its own thread for ``sequential`` and
``topological``, a wave at a time for ``wave``); its async driver (``arun``) makes each step a task on the
running loop. Both share how a step is readied, run, settled and failed, the output and the records.
``on_error="raise"``: a failure stops every step after it in program order from starting; the steps before
it still run (eager ran them before the failing statement), then the first failure in program order
raises ``StepError``; async steps still running are cancelled and awaited, sync ones finish in the
background. ``"collect"``: the walk
returns a ``Collected``. The call a walk belongs to (budget, record, end) is ``runtime.call.Call``.
"""

from __future__ import annotations

import asyncio
import contextvars
import graphlib
import inspect
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future
from queue import Empty, SimpleQueue
from typing import Any, Callable

from xcs.runtime.aio import ASYNC, HOST_LOOP, RERUN, SLOT, SYNC, Deferred, probe, step_kinds, within
from xcs.runtime.errors import CycleError, StepError
from xcs.runtime.errors import TimeoutError as XCSTimeoutError
from xcs.runtime.outcome import Collected, Failure
from xcs.runtime.plan import Plan, Step
from xcs.runtime.record import StepRecord, describe

perf = time.perf_counter
_NOT_STARTED = object()  # what a step's task returns when the walk stopped before it started
CALL: contextvars.ContextVar[tuple[Any, int] | None] = contextvars.ContextVar("xcs_call", default=None)  # (Call, depth)


def step_error(step: Step, error: BaseException, plan: Plan) -> BaseException:
    """What a failed step raises: a ``StepError`` naming it, chained to the error; the error itself
    for a step that runs the user's own statement or call in forward (``Plan.effects``), as eager."""
    if plan.effects and any(plan.steps[i] is step for i in plan.effects):
        return error
    return StepError(step.name, step.location, step.source, error)


class Walk:
    """One run of one plan at ``depth`` in its call: per step (the output last) its result, status,
    times and failure; a sync and an async driver."""

    def __init__(self, plan: Plan, ops: Any, inputs: Mapping[str, Any], call: Any, depth: int, mode: str):
        n = len(plan.steps)
        self.plan, self.ops, self.inputs, self.call, self.depth = plan, ops, inputs, call, depth
        self.steps = (*plan.steps, plan.output)
        self.top = call if depth == 0 else None  # the options only the top-level call applies
        self.collect = depth == 0 and call.collect
        self.waves = mode == "wave"
        self.inline_ok = not (depth == 0 and call.timed)  # a step run in the walk's own thread cannot time out
        self.inline_all = mode in ("sequential", "topological") and self.inline_ok
        self.halted = False  # the walk ended (or a time limit ran out): no further step starts
        self.limit = n + 1  # "raise": only steps before the first failure in program order start
        self.first: BaseException | None = None  # what that failure raises, once the steps before it settled
        self.lock = threading.Lock()
        self.closing = False  # async: the walk is ending, results that still arrive are dropped
        self.results: list[Any] = [None] * n
        self.status, self.errors, self.worker = ["skipped"] * (n + 1), [""] * (n + 1), [""] * (n + 1)
        self.started, self.ended = [None] * (n + 1), [None] * (n + 1)  # perf_counter times, None: not yet
        self.failures: list[Failure] = []
        self.bad: set[int] = set()  # failed or skipped steps (collect)
        self.expired: set[int] = set()  # steps that ran out of time
        self.sorter = graphlib.TopologicalSorter({i: step.deps for i, step in enumerate(plan.steps)})
        try:
            self.sorter.prepare()
        except graphlib.CycleError as exc:
            raise CycleError(tuple(plan.steps[i].name for i in exc.args[1])) from None

    # ------------------------------------------------------------ shared: start, run, settle, fail, output
    def ready(self) -> list[int]:
        """The steps whose inputs exist; under collect, one that needs a failed step is skipped."""
        out: list[int] = []
        while ready := self.sorter.get_ready():
            skipped = [i for i in ready if self.needs_bad(i)] if self.bad else ()
            out += [i for i in ready if i not in skipped and i < self.limit]
            for i in skipped:
                self.bad.add(i)
                self.settle(i)
            if not skipped:
                break
        return out

    def needs_bad(self, i: int) -> bool:
        return bool(self.bad) and any(d in self.bad for d in self.steps[i].deps)

    def call_step(self, i: int) -> Any:
        step = self.steps[i]
        return step.fn(self.ops, self.inputs, *[self.results[d] for d in step.deps])

    def task(self, i: int, fn: Callable[[], Any], token: bool = False) -> Any:
        """Step ``i`` as ``fn()`` in this thread; it gives its ``token`` back before its future is done."""
        try:
            if self.halted or i >= self.limit or self.call.stop.is_set():
                return _NOT_STARTED
            self.worker[i], self.started[i] = threading.current_thread().name, perf()
            try:
                return fn()
            except BaseException:
                self.stop_after(i)
                raise
            finally:
                self.ended[i] = perf()
        finally:
            if token:
                self.call.tokens.release()

    def settle(self, i: int, value: Any = None, error: BaseException | None = None, done: bool = False) -> None:
        """Step ``i`` ended (``done``) or was skipped: its result kept, or its failure raised (``raise``)
        or noted (``collect``); either way its dependents may now start."""
        if error is not None:
            self.failed(i, error)
        elif done:
            self.results[i], self.status[i] = value, "done"
        self.sorter.done(i)
        if self.top is not None and self.top.progress is not None:
            self.top.progress.advance()

    def stop_after(self, i: int) -> None:
        """Step ``i`` failed under ``raise``: no step after it in program order starts from now on."""
        if not self.collect:
            with self.lock:
                self.limit = min(self.limit, i)

    def failed(self, i: int, error: BaseException) -> None:
        """Step ``i`` failed: a time limit raises at once; another failure is noted (``collect``) or,
        under ``raise``, kept if it is the first in program order (``drained`` says when it raises)."""
        step = self.steps[i]
        self.status[i], self.errors[i] = ("timeout" if i in self.expired else "failed"), describe(error)
        if self.collect:
            return self.note(i, error)
        if i in self.expired:
            self.halted = True
            raise error
        self.stop_after(i)
        if i <= self.limit:
            self.first = step_error(step, error, self.plan)

    def drained(self, busy: Any) -> bool:
        """A failure is kept and no step before it is ``busy`` (running or ready to run): it may raise."""
        return self.first is not None and not any(j < self.limit for j in busy)

    def note(self, i: int, error: BaseException) -> None:
        step = self.steps[i]
        self.failures.append(Failure(step.name, error, step.location, step.source))
        self.bad.add(i)

    def time_out(self, running: list[int]) -> None:
        """The call's ``timeout`` ran out: raise, or (collect) every unfinished step failed or skipped."""
        error = XCSTimeoutError.of_call(self.plan.name, self.call.timeout, tuple(self.steps[i].name for i in running))
        for i in running:
            self.expired.add(i)
            self.status[i], self.errors[i] = "timeout", describe(error)
        if not self.collect:
            raise error
        for i in running:
            self.note(i, error)
        self.bad.update(i for i, status in enumerate(self.status[:-1]) if status != "done")

    def output(self, compute: Callable[[], Any]) -> Any:
        """Run the output step (in this thread); under ``collect`` wrap everything in ``Collected``."""
        out, value = len(self.results), None
        if not self.needs_bad(out):
            self.worker[out], self.started[out] = threading.current_thread().name, perf()
            try:
                value, self.status[out] = compute(), "done"
            except Exception as exc:
                self.failed(out, exc)
            finally:
                self.ended[out] = perf()
            if self.first is not None:
                raise self.first
        if not self.collect:
            return value
        names = [s.name for s in self.plan.steps] + ["output"]
        results = {names[i]: self.results[i] for i, s in enumerate(self.status[:-1]) if s == "done"}
        skipped = tuple(names[i] for i, s in enumerate(self.status) if s == "skipped")
        return Collected(value if self.status[out] == "done" else None, results, tuple(self.failures), skipped)

    def save_records(self) -> None:
        if self.call.records is not None:
            origin, names = self.call.origin, [s.name for s in self.plan.steps] + ["output"]
            self.call.records.extend(StepRecord(
                self.plan.name, name, i, self.status[i], None if self.started[i] is None else self.started[i] - origin,
                None if self.ended[i] is None else self.ended[i] - origin, self.worker[i], self.errors[i], self.depth,
            ) for i, name in enumerate(names))

    # ------------------------------------------------------------ the sync driver
    def run(self) -> Any:
        token = CALL.set((self.call, self.depth))
        running: dict[Future[Any], int] = {}
        try:
            self.walk(running)
            if self.first is not None:
                raise self.first
            return self.output(lambda: self.call_step(len(self.results)))
        except BaseException:
            self.halted = True
            raise
        finally:
            CALL.reset(token)
            for future in list(running):  # queued steps never start, running ones finish in the background
                self.drop(running, future, failed=False)
            self.save_records()

    def walk(self, running: dict[Future[Any], int]) -> None:
        pending: deque[int] = deque()
        finished: SimpleQueue[Future[Any]] = SimpleQueue()
        self.here = threading.current_thread().name
        while self.sorter.is_active():
            if not (self.waves and (running or pending)):
                pending.extend(self.ready())
            if self.drained([*pending, *running.values()]):
                return
            while pending:
                if self.call.stop.is_set():
                    raise CancelledError(f"{self.plan.name}: the call this plan runs in has stopped")
                if pending[0] >= self.limit:  # after a failure: it would not have run
                    pending.popleft()
                    continue
                if self.inline_all or (not running and len(pending) == 1 and self.inline_ok):
                    self.finish(pending.popleft(), None)
                    continue
                # No token free while nothing of ours runs: steps left in the background hold them.
                block = 0.0 if running or self.inline_ok else min(self.wait_time(running) or 0.05, 0.05)
                i = pending[0]
                future = self.call.submit(lambda i: self.task(i, lambda: self.call_step(i), True), i, block)
                if future is None:
                    if self.inline_ok and (self.top is None or not running):
                        self.finish(pending.popleft(), None)  # the caller runs it: no token is free
                        continue
                    if not running and self.expire(running):
                        return pending.clear()
                    break  # a running step frees a token when it ends
                pending.popleft()
                running[future] = i
                future.add_done_callback(finished.put)
            if running:
                wait = self.wait_time(running)
                try:
                    future = finished.get() if wait is None else finished.get(timeout=wait)
                except Empty:
                    if self.expire(running):
                        for future in list(running):
                            self.drop(running, future)
                        return pending.clear()  # collect: the call timed out; the rest is skipped
                    continue
                if (i := running.pop(future, -1)) >= 0:  # -1: dropped after its timeout, done at last
                    self.finish(i, future)

    def finish(self, i: int, future: Future[Any] | None) -> None:
        """Settle step ``i`` from its ``future``, or (None) run it here first."""
        if future is None:
            self.worker[i], self.started[i] = self.here, perf()
            try:
                value, error = self.call_step(i), None
            except Exception as exc:
                value, error = None, exc
            self.ended[i] = perf()
        elif future.cancelled():
            raise CancelledError(f"{self.plan.name}: step '{self.steps[i].name}' was cancelled")
        else:
            value, error = self.outcome(future)
        if value is _NOT_STARTED:
            if self.call.stop.is_set():
                raise CancelledError(f"{self.plan.name}: the call this plan runs in has stopped")
            return  # this walk is stopping: the failure that stopped it is on its way
        self.settle(i, value, error, done=True)

    @staticmethod
    def outcome(future: Any) -> tuple[Any, Exception | None]:
        """A finished step's ``(value, error)``; what is not an ``Exception`` (an interrupt) raises."""
        error = future.exception()
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit raised inside a step
        return (None if error is not None else future.result()), error

    def wait_time(self, running: dict[Future[Any], int]) -> float | None:  # until the next limit runs out
        top, now = self.top, perf()
        if top is None or not top.timed:
            return None
        waits = [] if top.deadline is None else [top.deadline - now]
        if top.step_timeout is not None:
            waits += [top.step_timeout - (0 if self.started[i] is None else now - self.started[i]) for i in running.values()]
        return max(min(waits), 0.0005) if waits else None

    def expire(self, running: dict[Future[Any], int]) -> bool:
        """Handle the time limits that ran out: raise (``raise``), or note the steps that timed out and
        say whether the whole call is over (``collect``)."""
        top, now = self.top, perf()
        if top is None:
            return False
        if top.deadline is not None and now >= top.deadline:
            self.time_out([i for i in running.values() if self.started[i] is not None])
            return True
        for future, i in list(running.items()) if top.step_timeout is not None else ():
            if self.started[i] is not None and now - self.started[i] >= top.step_timeout:
                self.expired.add(i)
                self.failed(i, XCSTimeoutError.of_step(self.steps[i], self.call.step_timeout))  # raises under "raise"
                self.drop(running, future)
                self.settle(i)
        return False

    def drop(self, running: dict[Future[Any], int], future: Future[Any], failed: bool = True) -> None:
        """Stop waiting for a step: cancelled if queued, else left to finish in the background."""
        i = running.pop(future)
        if future.cancel():
            self.call.tokens.release()
        else:
            self.call.abandoned = True
            if self.status[i] == "skipped" and (failed or self.started[i] is not None):
                self.status[i] = "abandoned"
        self.bad.add(i) if failed else None

    # ------------------------------------------------------------ the async driver
    async def arun(self) -> Any:
        loop = self.loop = asyncio.get_running_loop()
        self.kinds, self.tasks = step_kinds(self.plan), {}
        self.slots, host, owner = self.call.gate(loop)
        self.done: asyncio.Future[None] = loop.create_future()
        tokens = CALL.set((self.call, self.depth)), HOST_LOOP.set(host)
        out = len(self.results)
        try:
            self.advance()
            deadline = self.top.deadline if self.top is not None else None
            if not (await within(None if deadline is None else max(deadline - perf(), 0.0), self.done))[0]:
                self.closing = True  # finishing steps no longer start others
                self.time_out([i for i in self.tasks if self.started[i] is not None])  # raises under "raise"
            if self.kinds[-1] == ASYNC and not self.needs_bad(out):
                outcome = self.loop.create_future()
                try:
                    outcome.set_result(await self.call_step(out))
                except Exception as exc:
                    outcome.set_exception(exc)
                return self.output(outcome.result)
            return self.output(lambda: self.call_step(out))
        finally:
            CALL.reset(tokens[0])
            HOST_LOOP.reset(tokens[1])
            self.closing = self.halted = True
            for task in self.tasks.values():  # no task outlives the call
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            if any(self.started[i] is not None and self.ended[i] is None and self.worker[i] != "asyncio" for i in range(out)):
                self.call.abandoned = True  # sync steps still running in a pool thread
            if owner:  # the call is over on this loop: what its workers started here ends with it
                if self.top is not None:
                    self.call.stop.set()
                await host.aclose()
            self.save_records()

    def advance(self) -> None:
        if not self.halted:
            for i in self.ready():
                self.tasks[i] = task = self.loop.create_task(self.step(i))
                task.add_done_callback(lambda t, i=i: self.settled(i, t))
        if self.done.done():
            return
        if self.drained(self.tasks):
            self.done.set_exception(self.first)
        elif not self.sorter.is_active():
            self.done.set_result(None)

    async def step(self, i: int) -> Any:
        if i >= self.limit:
            return _NOT_STARTED
        kind = self.kinds[i]
        if kind == SYNC:
            return await self.in_pool(i, lambda: self.call_step(i))
        self.worker[i], self.started[i] = "asyncio", perf()
        awaitable = self.call_step(i) if kind == ASYNC else probe(lambda: self.call_step(i))
        if awaitable is RERUN or type(awaitable) is Deferred:
            self.started[i], self.worker[i] = None, ""
            if awaitable is RERUN:
                self.kinds[i] = SYNC  # from now on this step runs in the pool
            return await self.in_pool(i, lambda: self.call_step(i) if awaitable is RERUN else awaitable())
        if not inspect.isawaitable(awaitable):
            self.ended[i] = perf()
            return awaitable
        try:
            return await self.limited(i, awaitable)
        finally:
            self.ended[i] = perf()

    async def limited(self, i: int, awaitable: Any) -> Any:
        """``await awaitable`` within the step timeout; a failure stops the walk under ``raise`` (before
        a pool step gives its slot back)."""
        try:
            done, value = await within(self.top and self.top.step_timeout, awaitable)
        except Exception:
            self.stop_after(i)
            raise
        if done:
            return value
        self.expired.add(i)
        self.halted = self.halted or not self.collect
        raise XCSTimeoutError.of_step(self.steps[i], self.call.step_timeout)

    async def in_pool(self, i: int, fn: Callable[[], Any]) -> Any:
        async with self.slots:
            if self.halted or self.closing or i >= self.limit:
                return _NOT_STARTED
            context = contextvars.copy_context()
            context.run(SLOT.set, (self.loop, self.slots))
            return await self.limited(i, self.loop.run_in_executor(self.call.pool(self.loop), context.run, self.task, i, fn))

    def settled(self, i: int, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(i, None)
        if task.cancelled():
            if self.status[i] == "skipped" and self.started[i] is not None:
                self.status[i] = "cancelled" if self.worker[i] == "asyncio" else "abandoned"
            return
        if self.closing:
            if task.exception() is None and self.status[i] == "skipped":
                self.status[i] = "abandoned"
            return
        try:
            value, error = self.outcome(task)
            if value is _NOT_STARTED:
                self.started[i] = None
            else:
                self.settle(i, value, error, done=True)
        except BaseException as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self.advance()
