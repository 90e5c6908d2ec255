"""The one executor: runs a ``Plan`` under a scheduler's mode and the current execution options.

A plain top-level ``sequential`` call runs the plan's straight-line ``run``; every other call is a
``_Walk`` over ``graphlib.TopologicalSorter`` whose sync driver (``run``) hands steps to the call's pool
(in this thread for ``sequential``/``topological``, a wave at a time for ``wave``) and whose async driver
(``arun``) makes each step a task on the running loop; both share how a step starts, finishes and fails.
``on_error="raise"``: the first failure raises ``StepError``; nothing more starts, async steps are
cancelled and awaited, sync steps already running finish in the background. ``"collect"`` returns a
``Collected``. A nested plan shares its top-level ``_Call``: the thread budget (a step takes one of the
``max_workers`` tokens or runs in the walk's own thread: never a deadlock), the record and the end.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from xcs.runtime.aio import DEFER, HOST_LOOP, SLOT, Deferred, Fence, Host, Probe, in_thread, running_loop
from xcs.runtime.errors import AsyncContextError, CycleError, InputKeyError, OperatorInputError, StepError
from xcs.runtime.errors import TimeoutError as XCSTimeoutError
from xcs.runtime.options import ExecutionOptions, current_options
from xcs.runtime.outcome import Collected, Failure
from xcs.runtime.plan import Plan, Step
from xcs.runtime.pool import checkout, worker_bound
from xcs.runtime.record import Progress, RunRecord, StepRecord, describe, last_run, set_last_run
from xcs.runtime.schedulers import Scheduler, resolve

perf = time.perf_counter
_NOT_STARTED = object()  # what a pool task returns when the walk stopped before it started
_SYNC, _ASYNC, _PROBE = 0, 1, 2  # how the async driver runs a step
HEADROOM = 64  # async pool threads beyond max_workers: workers that gave their slot back (``Host.wait``)


def execute(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None) -> Any:
    """Run ``plan`` on ``ops`` and ``inputs`` under ``options`` (default: the current ones)."""
    _check_inputs(plan, inputs)
    if options is None:
        options = current_options()
    scheduler = resolve(options.scheduler)
    mode = scheduler.mode
    if mode == "auto":
        mode = "parallel" if plan.width > 1 else "sequential"
    frame = _CALL.get()
    if mode == "async":
        return _async_from_sync(plan, ops, inputs, options, scheduler, frame)
    if frame is not None:
        return _Walk(plan, ops, inputs, frame[0], frame[1] + 1, mode).run()
    if options.plain and mode == "sequential":
        return _run_straight(plan, ops, inputs)
    workers, label = worker_bound(len(plan.steps), options), mode
    if mode in ("sequential", "topological"):
        workers = 1  # one step at a time: in a worker when the call can time out, else in this thread
        if options.timeout is not None or options.step_timeout is not None:
            mode = "parallel"
    call = _Call(plan, options, scheduler, workers, label)
    fence = DEFER.get()  # a Fence: this call runs for an awaiting call, and stops when that is cancelled
    with call.top(fence if type(fence) is Fence else None, call.stop.set, None):
        return _Walk(plan, ops, inputs, call, 0, mode).run()


async def aexecute(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None) -> Any:
    """``execute`` for a running event loop: ``auto`` and ``async`` walk the plan on this loop; other
    modes run ``execute`` in a thread of their own so the loop keeps running."""
    _check_inputs(plan, inputs)
    options, scheduler = _resolved(options)
    frame = _CALL.get()
    if scheduler.mode in ("auto", "async") and frame is not None:
        return await _Walk(plan, ops, inputs, frame[0], frame[1] + 1, "async").arun()
    sink: list[RunRecord | None] = []
    try:
        if scheduler.mode not in ("auto", "async"):
            return await in_thread(_execute_into, sink, plan, ops, inputs, options)
        return await _top_async(plan, ops, inputs, options, scheduler, sink)
    finally:
        if sink and sink[0] is not None:
            set_last_run(sink[0])


def _resolved(options: ExecutionOptions | None) -> tuple[ExecutionOptions, Scheduler]:
    options = current_options() if options is None else options
    return options, resolve(options.scheduler)


def _execute_into(sink: list, plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions) -> Any:
    set_last_run(None)  # type: ignore[arg-type]
    try:
        return execute(plan, ops, inputs, options)
    finally:
        sink.append(last_run())


def _async_from_sync(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions,
                     scheduler: Scheduler, frame: tuple[_Call, int] | None) -> Any:
    """A sync call under ``async``: on the call's own loop when this thread is a worker of a running
    async call, else on a new loop (``asyncio.run``)."""
    if running_loop() is not None:
        raise AsyncContextError(
            f"{plan.name}: the 'async' scheduler cannot run from a sync call in a thread that is running "
            "an event loop: use `await op.acall(inputs=...)`"
        )
    host = HOST_LOOP.get()
    if frame is not None and host is not None and (host.closed or host.loop.is_running()):
        walk = _Walk(plan, ops, inputs, frame[0], frame[1] + 1, "async")
        return host.wait(walk.arun())  # refused (CancelledError) once the call has ended
    sink: list[RunRecord | None] = []
    try:
        return asyncio.run(_top_async(plan, ops, inputs, options, scheduler, sink))
    finally:
        if sink and sink[0] is not None:
            set_last_run(sink[0])


async def _top_async(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions,
                     scheduler: Scheduler, sink: list) -> Any:
    call = _Call(plan, options, scheduler, worker_bound(len(plan.steps), options), "async")
    fence, stop = DEFER.get(), None  # a Fence: run for an awaiting call in a thread (``in_thread``)
    if type(fence) is Fence:
        task = asyncio.current_task()
        stop = lambda: _call_soon(task.get_loop(), task.cancel)  # noqa: E731
    with call.top(fence if stop else None, stop, sink):
        return await _Walk(plan, ops, inputs, call, 0, "async").arun()


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to stop
        loop.call_soon_threadsafe(fn)


# ---------------------------------------------------------------------------------------- helpers
def _check_inputs(plan: Plan, inputs: Any) -> None:
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{plan.name}: inputs must be a mapping, got {type(inputs).__name__}")
    missing = [key for key in plan.required if key not in inputs]
    if missing:
        noun = "key" if len(missing) == 1 else "keys"
        have = ", ".join(repr(key) for key in inputs) or "no keys"
        names = ", ".join(repr(key) for key in missing)
        raise InputKeyError(f"{plan.name}: missing input {noun} {names} (inputs have: {have})", (missing[0],))


def _step_error(step: Step, error: BaseException, plan: Plan) -> BaseException:
    """What a failed step raises: a ``StepError`` naming it, chained to the error; the error itself
    for a step that runs the user's own statement or call in forward (``Plan.effects``), as eager."""
    if plan.effects and any(plan.steps[i] is step for i in plan.effects):
        return error
    exc = StepError(step.name, step.location, step.source, error)
    exc.__cause__ = error
    return exc


def _run_straight(plan: Plan, ops: Any, inputs: Mapping[str, Any]) -> Any:
    """The plan's straight-line ``run``; a failure is attributed to the step at the line it came from
    (a frame of ``run`` itself preferred: helpers of the plan file count as the line that called them)."""
    try:
        return plan.run(ops, inputs)
    except Exception as exc:
        run_code, in_run, in_file, tb = getattr(plan.run, "__code__", None), None, None, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == plan.filename:
                in_file = tb.tb_lineno
                in_run = tb.tb_lineno if tb.tb_frame.f_code is run_code else in_run
            tb = tb.tb_next
        step = None if (in_run or in_file) is None else plan.step_at_line(in_run or in_file)
        if step is None or _step_error(step, exc, plan) is exc:
            raise
        raise StepError(step.name, step.location, step.source, exc) from exc


def _kinds(plan: Plan) -> list[int]:
    """How the async driver runs each step: awaited (``async def``), probed on the loop (a generated
    step: see ``runtime.aio``), or in the pool (any other sync function; a step with effects)."""
    kinds = plan.__dict__.get("_xcs_kinds")
    if kinds is None:
        def kind(fn: Any) -> int:
            if inspect.iscoroutinefunction(fn):
                return _ASYNC
            code = getattr(fn, "__code__", None)
            return _PROBE if plan.filename and code is not None and code.co_filename == plan.filename else _SYNC

        kinds = [_SYNC if i in plan.effects else kind(step.fn) for i, step in enumerate(plan.steps)]
        kinds.append(kind(plan.output.fn))
        object.__setattr__(plan, "_xcs_kinds", kinds)  # a cache, not a field: plans are frozen
    return kinds


def _call_status(exc: BaseException) -> str:
    if isinstance(exc, XCSTimeoutError):
        return "timeout"
    return "interrupted" if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)) else "failed"


# ---------------------------------------------------------------------------------------- the call
class _Call:
    """A top-level call: the options only it applies, its thread budget (``workers`` tokens; none in
    an async call, whose sync steps hold loop slots instead), its pools, its record and its end."""

    def __init__(self, plan: Plan, options: ExecutionOptions, scheduler: Scheduler, workers: int, label: str):
        self.plan, self.scheduler, self.label, self.workers = plan, scheduler, label, workers
        self.stop = threading.Event()  # set when the call is over: nothing of it starts any more
        self.origin = perf()
        self.records: list[StepRecord] | None = [] if options.record is not False else None
        self.record = options.record
        self.timeout, self.step_timeout = options.timeout, options.step_timeout
        self.deadline = None if options.timeout is None else self.origin + options.timeout
        self.timed = options.timeout is not None or options.step_timeout is not None
        self.collect = options.on_error == "collect"
        self.progress = Progress(plan.name, len(plan.steps)) if options.progress else None
        self.tokens = threading.Semaphore(0 if label == "async" else workers)
        self.pools: dict[Any, Any] = {}  # None: the token budget's pool; a loop: that loop's
        self.gates: dict[asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, Host]] = {}
        self.lock = threading.Lock()
        self.abandoned = False  # some step was left running in the background

    def pool(self, key: Any) -> Any:
        with self.lock:
            if key not in self.pools:
                size = self.workers + (0 if key is None else HEADROOM)
                factory = self.scheduler.executor
                self.pools[key] = factory(self.workers) if factory else checkout(size, self.plan.name)
            return self.pools[key]

    def submit(self, fn: Callable[..., Any], i: int, block: float) -> Future | None:
        """Submit ``fn(i)`` in a copy of this context if a token is free (waiting up to ``block`` s)."""
        if not (self.tokens.acquire(timeout=block) if block > 0 else self.tokens.acquire(blocking=False)):
            return None
        try:
            return self.pool(None).submit(contextvars.copy_context().run, fn, i)
        except BaseException:
            self.tokens.release()
            raise

    def gate(self, loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Semaphore, Host, bool]:
        """The slots and host the async walks of this call on ``loop`` share, and whether this walk made
        them (it closes the host when it ends)."""
        with self.lock:
            made = loop not in self.gates
            if made:
                self.gates[loop] = (asyncio.Semaphore(self.workers), Host(loop))
            return (*self.gates[loop], made)

    @contextlib.contextmanager
    def top(self, fence: Fence | None, stop: Callable[[], Any] | None, sink: list | None) -> Any:
        """The call's lifetime: stopped by ``fence``, then its pools given back, progress and record."""
        status, error = "ok", None
        if fence is not None:
            fence.attach(stop)
        try:
            yield
        except BaseException as exc:
            status, error = _call_status(exc), exc
            raise
        finally:
            if fence is not None:
                fence.detach(stop)
            self.stop.set()
            wait = not self.abandoned and status == "ok"
            for pool in self.pools.values():
                pool.shutdown(wait=wait, cancel_futures=not wait)
            if self.progress is not None:
                self.progress.close(status)
            if self.records is not None:
                name = self.scheduler.name
                record = RunRecord(self.plan.name, name if name == self.label else f"{name} ({self.label})",
                                   status, perf() - self.origin, tuple(self.records), describe(error))
                sink.append(record) if sink is not None else set_last_run(record)
                if callable(self.record):
                    self.record(record)


_CALL: contextvars.ContextVar[tuple[_Call, int] | None] = contextvars.ContextVar("xcs_call", default=None)


def call_stopped() -> bool:
    """Whether the call the current plan runs in has ended: work it left must start nothing more."""
    frame = _CALL.get()
    return frame is not None and frame[0].stop.is_set()


def _stopped(plan: Plan) -> CancelledError:
    return CancelledError(f"{plan.name}: the call this plan runs in has stopped")


# ---------------------------------------------------------------------------------------- the walk
class _Walk:
    """One run of one plan: results, statuses, times, failures; a sync and an async driver."""

    def __init__(self, plan: Plan, ops: Any, inputs: Mapping[str, Any], call: _Call, depth: int, mode: str):
        n = len(plan.steps)
        self.plan, self.steps, self.ops, self.inputs, self.call, self.depth = plan, plan.steps, ops, inputs, call, depth
        self.top = call if depth == 0 else None  # the options only the top-level call applies
        self.collect = depth == 0 and call.collect
        self.step_timeout = call.step_timeout if depth == 0 else None
        timed = depth == 0 and call.timed
        self.waves = mode == "wave"
        self.inline_all = mode in ("sequential", "topological") and not timed
        self.inline_ok = not timed  # a step run in the walk's own thread cannot be timed out
        self.halted = False  # a step failed under "raise" or the walk ended: no further step starts
        self.closing = False  # async: the walk is ending, results that still arrive are dropped
        self.results: list[Any] = [None] * n
        self.status, self.errors = ["skipped"] * (n + 1), [""] * (n + 1)
        self.started: list[float | None] = [None] * (n + 1)
        self.ended: list[float | None] = [None] * (n + 1)
        self.worker = [""] * (n + 1)
        self.failures: list[Failure] = []
        self.bad: set[int] = set()  # failed or skipped steps (collect)
        self.expired: set[int] = set()  # steps that ran out of time
        self.sorter = graphlib.TopologicalSorter({i: step.deps for i, step in enumerate(plan.steps)})
        try:
            self.sorter.prepare()
        except graphlib.CycleError as exc:
            raise CycleError(tuple(plan.steps[i].name for i in exc.args[1])) from None

    # ------------------------------------------------------------ shared: start, finish, fail, output
    def ready(self) -> list[int]:
        """The steps whose inputs exist; under collect, one that needs a failed step is skipped."""
        out: list[int] = []
        while ready := self.sorter.get_ready():
            skipped = [i for i in ready if self.bad and any(d in self.bad for d in self.steps[i].deps)]
            out += [i for i in ready if i not in skipped]
            for i in skipped:
                self.bad.add(i)
                self.settle(i)
            if not skipped:
                break
        return out

    def call_step(self, i: int) -> Any:
        step = self.steps[i] if i < len(self.steps) else self.plan.output
        return step.fn(self.ops, self.inputs, *[self.results[d] for d in step.deps])

    def task(self, i: int, fn: Callable[[], Any], token: bool = False) -> Any:
        """A step in a pool thread (it gives its ``token`` back when it ends, before its future does)."""
        try:
            if self.halted or self.call.stop.is_set():
                return _NOT_STARTED
            self.worker[i], self.started[i] = threading.current_thread().name, perf()
            try:
                return fn()
            except BaseException:
                self.halted = self.halted or not self.collect  # no further step of this walk starts
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

    def failed(self, i: int, error: BaseException) -> None:
        step = self.steps[i] if i < len(self.steps) else self.plan.output
        self.status[i], self.errors[i] = ("timeout" if i in self.expired else "failed"), describe(error)
        if not self.collect:
            self.halted = True
            raise error if i in self.expired else _step_error(step, error, self.plan)
        self.failures.append(Failure(step.name, error, step.location, step.source))
        self.bad.add(i)

    def timeout_error(self, indices: list[int], scope: str) -> XCSTimeoutError:
        call, names = self.call, tuple(self.steps[i].name for i in indices)
        if scope == "step":
            step = self.steps[indices[0]]
            where, text = f" at {step.location}" if step.location else "", f"\n    {step.source}" if step.source else ""
            message = f"step '{step.name}'{where} timed out after {call.step_timeout:g} s (step_timeout){text}"
            return XCSTimeoutError(message, names, call.step_timeout or 0.0, "step")
        message = f"{self.plan.name}: call timed out after {call.timeout:g} s (timeout); still running: "
        return XCSTimeoutError(message + (", ".join(names) or "none"), names, call.timeout or 0.0, "call")

    def time_out(self, running: list[int]) -> None:
        """The call's ``timeout`` ran out: raise, or (collect) every unfinished step failed or skipped."""
        error = self.timeout_error(running, "call")
        for i in running:
            self.expired.add(i)
            self.status[i], self.errors[i] = "timeout", describe(error)
        if not self.collect:
            raise error
        self.failures += [Failure(self.steps[i].name, error, self.steps[i].location, self.steps[i].source) for i in running]
        self.bad.update(i for i, status in enumerate(self.status[:-1]) if status != "done")

    def output(self, compute: Callable[[], Any]) -> Any:
        """Run the output step (in this thread); under ``collect`` wrap everything in ``Collected``."""
        out, value = len(self.steps), None
        if not (self.bad and any(d in self.bad for d in self.plan.output.deps)):
            self.worker[out], self.started[out] = threading.current_thread().name, perf()
            try:
                value, self.status[out] = compute(), "done"
            except Exception as exc:
                self.failed(out, exc)
            finally:
                self.ended[out] = perf()
        if not self.collect:
            return value
        names = [s.name for s in self.steps] + ["output"]
        results = {names[i]: self.results[i] for i, s in enumerate(self.status[:-1]) if s == "done"}
        skipped = tuple(names[i] for i, s in enumerate(self.status) if s == "skipped")
        return Collected(value if self.status[out] == "done" else None, results, tuple(self.failures), skipped)

    def save_records(self) -> None:
        if self.call.records is not None:
            origin, names = self.call.origin, [s.name for s in self.steps] + ["output"]
            self.call.records.extend(StepRecord(
                self.plan.name, name, i, self.status[i], None if self.started[i] is None else self.started[i] - origin,
                None if self.ended[i] is None else self.ended[i] - origin, self.worker[i], self.errors[i], self.depth,
            ) for i, name in enumerate(names))

    # ------------------------------------------------------------ the sync driver
    def run(self) -> Any:
        token = _CALL.set((self.call, self.depth))
        running: dict[Future[Any], int] = {}
        try:
            self.walk(running)
            return self.output(lambda: self.call_step(len(self.steps)))
        except BaseException:
            self.halted = True
            raise
        finally:
            _CALL.reset(token)
            for future in list(running):  # queued steps never start, running ones finish in the background
                self.drop(running, future, failed=False)
            self.save_records()

    def walk(self, running: dict[Future[Any], int]) -> None:
        pending: deque[int] = deque()
        finished: SimpleQueue[Future[Any]] = SimpleQueue()
        here = threading.current_thread().name
        while self.sorter.is_active():
            if not (self.waves and (running or pending)):
                pending.extend(self.ready())
            while pending:
                if self.call.stop.is_set():
                    raise _stopped(self.plan)
                if self.inline_all or (not running and len(pending) == 1 and self.inline_ok):
                    self.run_here(pending.popleft(), here)
                    continue
                # No token free while nothing of ours runs: steps left in the background hold them.
                block = 0.0 if running or self.inline_ok else min(self.wait_time(running) or 0.05, 0.05)
                i = pending[0]
                future = self.call.submit(lambda i: self.task(i, lambda: self.call_step(i), True), i, block)
                if future is None:
                    if self.inline_ok and (self.top is None or not running):
                        self.run_here(pending.popleft(), here)  # the caller runs it: no token is free
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

    def run_here(self, i: int, here: str) -> None:
        self.worker[i], self.started[i] = here, perf()
        try:
            value, error = self.call_step(i), None
        except Exception as exc:
            value, error = None, exc
        self.ended[i] = perf()
        self.settle(i, value, error, done=True)

    def finish(self, i: int, future: Future[Any]) -> None:
        if future.cancelled():
            raise CancelledError(f"{self.plan.name}: step '{self.steps[i].name}' was cancelled")
        error = future.exception()
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit raised inside a step
        value = None if error is not None else future.result()
        if value is _NOT_STARTED:
            if self.call.stop.is_set():
                raise _stopped(self.plan)
            return  # this walk is stopping: the failure that stopped it is on its way
        self.settle(i, value, error, done=True)

    def wait_time(self, running: dict[Future[Any], int]) -> float | None:
        top = self.top
        if top is None or not top.timed:
            return None
        now = perf()
        wait = None if top.deadline is None else top.deadline - now
        if top.step_timeout is not None:
            for i in running.values():
                began = self.started[i]
                left = top.step_timeout if began is None else began + top.step_timeout - now
                wait = left if wait is None else min(wait, left)
        return None if wait is None else max(wait, 0.0005)

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
                self.failed(i, self.timeout_error([i], "step"))  # raises under "raise"
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
        self.kinds, self.tasks = _kinds(self.plan), {}
        self.slots, host, owner = self.call.gate(loop)
        self.done: asyncio.Future[None] = loop.create_future()
        tokens = _CALL.set((self.call, self.depth)), HOST_LOOP.set(host)
        try:
            self.advance()
            deadline = self.top.deadline if self.top is not None else None
            try:
                async with asyncio.timeout(None if deadline is None else max(deadline - perf(), 0.0)) as scope:
                    await self.done
            except TimeoutError:
                if not scope.expired():
                    raise
                self.closing = True  # finishing steps no longer start others
                self.time_out([i for i in self.tasks if self.started[i] is not None])  # raises under "raise"
            out = self.plan.output
            if self.kinds[-1] == _ASYNC and not (self.bad and any(d in self.bad for d in out.deps)):
                try:
                    value, error = await self.call_step(len(self.steps)), None
                except Exception as exc:
                    value, error = None, exc
                return self.output(lambda: value if error is None else _raise(error))
            return self.output(lambda: self.call_step(len(self.steps)))
        finally:
            _CALL.reset(tokens[0])
            HOST_LOOP.reset(tokens[1])
            self.closing = self.halted = True
            tasks = list(self.tasks.values())
            for task in tasks:  # no task outlives the call
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            n = len(self.steps)
            if any(self.started[i] is not None and self.ended[i] is None and self.worker[i] != "asyncio" for i in range(n)):
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
        if not self.sorter.is_active() and not self.done.done():
            self.done.set_result(None)

    async def step(self, i: int) -> Any:
        step, kind = self.steps[i], self.kinds[i]
        if kind == _SYNC:
            return await self.in_pool(i, lambda: self.call_step(i))
        self.worker[i], self.started[i] = "asyncio", perf()
        if kind == _ASYNC:
            awaitable = self.call_step(i)
        else:
            probe = Probe()
            token = DEFER.set(probe)
            try:
                awaitable = self.call_step(i)
            except Exception:
                if not probe.calls:
                    raise  # no operator call: a real error of the step's glue
                awaitable = probe  # it used a call's result: not a plain call step
            finally:
                DEFER.reset(token)
            calls = probe.calls
            if (calls and (len(calls) > 1 or awaitable is not calls[0])) or type(awaitable) is Deferred:
                self.started[i], self.worker[i] = None, ""
                if type(awaitable) is Deferred:
                    return await self.in_pool(i, awaitable.call)
                probe.discard()  # nothing ran; from now on this step runs in the pool
                self.kinds[i] = _SYNC
                return await self.in_pool(i, lambda: self.call_step(i))
            if not inspect.isawaitable(awaitable):
                self.ended[i] = perf()
                return awaitable
        try:
            return await self.limited(i, awaitable)
        except Exception:
            self.halted = self.halted or not self.collect
            raise
        finally:
            self.ended[i] = perf()

    async def limited(self, i: int, awaitable: Any) -> Any:
        try:
            async with asyncio.timeout(self.step_timeout) as scope:
                return await awaitable
        except TimeoutError:
            if not scope.expired():
                raise
            self.expired.add(i)
            raise self.timeout_error([i], "step") from None

    async def in_pool(self, i: int, fn: Callable[[], Any]) -> Any:
        async with self.slots:
            if self.halted or self.closing:
                return _NOT_STARTED
            context = contextvars.copy_context()
            context.run(SLOT.set, (self.loop, self.slots))
            future = self.loop.run_in_executor(self.call.pool(self.loop), context.run, self.task, i, fn)
            try:
                return await self.limited(i, future)
            except Exception:
                self.halted = self.halted or not self.collect  # before the slot is given back
                raise

    def settled(self, i: int, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(i, None)
        if task.cancelled():
            if self.status[i] == "skipped" and self.started[i] is not None:
                self.status[i] = "cancelled" if self.worker[i] == "asyncio" else "abandoned"
            return
        error = task.exception()
        if self.closing:
            if error is None and self.status[i] == "skipped":
                self.status[i] = "abandoned"
            return
        value = None if error is not None else task.result()
        if value is _NOT_STARTED:
            self.started[i] = None
            return
        try:
            if error is not None and not isinstance(error, Exception):
                raise error
            self.settle(i, value, error, done=True)
        except BaseException as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self.advance()


def _raise(error: BaseException) -> Any:
    raise error
