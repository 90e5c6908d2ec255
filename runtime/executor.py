"""The one executor: runs a ``Plan`` under a scheduler's mode and the current execution options.

``execute`` (sync) and ``aexecute`` (async) check the plan's required input keys, then:

- ``sequential``: call the plan's straight-line ``run`` in this thread (the fast, debuggable path);
- ``topological``, ``wave``, ``parallel``: walk the step graph with ``graphlib.TopologicalSorter``,
  handing steps to a thread pool made for the call (``_SyncWalk``);
- ``async``: walk the graph on an asyncio event loop (``_AsyncWalk``): async steps are awaited on the
  loop, sync steps run in a thread pool of ``max_workers`` threads.

Failure (``on_error="raise"``): the first failure raises ``StepError`` (the step, the user's line,
chained to the original); no further step starts, queued steps are cancelled, async steps are cancelled
and awaited, sync steps already running finish in the background (their results dropped) and then
their threads exit. ``on_error="collect"`` keeps going and returns a ``runtime.outcome.Collected``.

Nesting: a plan run by a step of another plan (a jitted operator inside a jitted operator) shares the
outer call's thread budget: a nested walk hands a step to the pool only when one of the call's
``max_workers`` tokens is free, and otherwise runs it in its own thread (which is a worker of the outer
call, blocked on the nested call anyway). A bounded pool therefore never deadlocks however deep the
nesting, and ``max_workers`` bounds the whole call. An async walk uses a pool of its own per plan.
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
from types import TracebackType
from typing import Any, Callable

from xcs.runtime.aio import DEFER, HOST_LOOP, SLOT, Deferred, Fence, Host, Probe, in_thread, running_loop
from xcs.runtime.errors import AsyncContextError, CycleError, InputKeyError, OperatorInputError, StepError
from xcs.runtime.errors import TimeoutError as XCSTimeoutError
from xcs.runtime.options import ExecutionOptions, current_options
from xcs.runtime.outcome import Collected, StepFailure
from xcs.runtime.plan import Plan, Step
from xcs.runtime.pool import checkout
from xcs.runtime.record import Progress, RunRecord, StepRecord, describe, last_run, set_last_run
from xcs.runtime.schedulers import Scheduler, resolve

DEFAULT_MAX_WORKERS = 32
perf = time.perf_counter
_NOT_STARTED = object()  # what a pool task returns when the call stopped before it started
_SYNC, _ASYNC, _PROBE = 0, 1, 2  # how the async walk runs a step


# ---------------------------------------------------------------------------------------- entry points
def execute(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None
) -> Any:
    """Run ``plan`` on ``ops`` and ``inputs`` under ``options`` (default: the current ones)."""
    _check_inputs(plan, inputs)
    options, scheduler = _resolved(options)
    mode = scheduler.mode
    if mode == "auto":
        mode = "parallel" if plan.width > 1 else "sequential"
    frame = _CALL.get()
    if frame is None:
        if options.plain:
            if mode == "sequential":
                return _run_straight(plan, ops, inputs)
            if mode == "topological":
                return _run_in_order(plan, ops, inputs)
        if mode == "async":
            return _execute_async_from_sync(plan, ops, inputs, options, scheduler, None)
        return _top_sync(plan, ops, inputs, options, scheduler, mode)
    call, depth = frame
    if mode == "async":
        return _execute_async_from_sync(plan, ops, inputs, options, scheduler, frame)
    if call.records is None:
        if mode == "sequential":
            return _run_steps(plan, ops, inputs, call.stop)
        if mode == "topological":
            return _run_in_order(plan, ops, inputs, call.stop)
    walk = _SyncWalk(plan, ops, inputs, call, depth + 1, mode, _workers(plan, options, scheduler), None)
    return walk.run()


async def aexecute(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None
) -> Any:
    """``execute`` for a running event loop: ``auto`` and ``async`` walk the plan on this loop; other
    modes run ``execute`` in a thread of their own so the loop keeps running."""
    _check_inputs(plan, inputs)
    options, scheduler = _resolved(options)
    if scheduler.mode not in ("auto", "async"):
        sink: list[RunRecord | None] = []
        try:
            return await in_thread(_execute_into, sink, plan, ops, inputs, options)
        finally:
            if sink and sink[0] is not None:
                set_last_run(sink[0])
    frame = _CALL.get()
    if frame is not None:
        call, depth = frame
        walk = _AsyncWalk(plan, ops, inputs, call, depth + 1, _workers(plan, options, scheduler), scheduler, None)
        return await walk.run()
    sink = []
    try:
        return await _top_async(plan, ops, inputs, options, scheduler, sink)
    finally:
        if sink and sink[0] is not None:
            set_last_run(sink[0])


def _resolved(options: ExecutionOptions | None) -> tuple[ExecutionOptions, Scheduler]:
    """The options of a call (default: the current ones) and their scheduler object."""
    if options is None:
        options = current_options()
    scheduler = options.scheduler
    return options, scheduler if isinstance(scheduler, Scheduler) else resolve(scheduler)


def _execute_into(sink: list, plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions) -> Any:
    set_last_run(None)  # type: ignore[arg-type]
    try:
        return execute(plan, ops, inputs, options)
    finally:
        sink.append(last_run())


def _execute_async_from_sync(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions, scheduler: Scheduler,
    frame: tuple[_Call, int] | None,
) -> Any:
    """A sync call of a plan under the ``async`` scheduler: on the call's own loop when this thread is a
    worker of a running async call, else on a new loop (``asyncio.run``)."""
    if running_loop() is not None:
        raise AsyncContextError(
            f"{plan.name}: the 'async' scheduler cannot run from a sync call in a thread that is running "
            "an event loop: use `await op.acall(inputs=...)`"
        )
    host = HOST_LOOP.get()
    if frame is not None and host is not None and (host.closed or host.loop.is_running()):
        call, depth = frame
        walk = _AsyncWalk(plan, ops, inputs, call, depth + 1, _workers(plan, options, scheduler), scheduler, None)
        return host.wait(walk.run())  # refused (CancelledError) once the call has ended
    sink: list[RunRecord | None] = []
    try:
        return asyncio.run(_top_async(plan, ops, inputs, options, scheduler, sink))
    finally:
        if sink and sink[0] is not None:
            set_last_run(sink[0])


# ---------------------------------------------------------------------------------------- helpers
def _check_inputs(plan: Plan, inputs: Any) -> None:
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{plan.name}: inputs must be a mapping, got {type(inputs).__name__}")
    for key in plan.required:
        if key not in inputs:
            raise _missing_keys_error(plan, inputs)


def _workers(plan: Plan, options: ExecutionOptions, scheduler: Scheduler) -> int:
    return options.max_workers or scheduler.max_workers or max(1, min(len(plan.steps), DEFAULT_MAX_WORKERS))


def _missing_keys_error(plan: Plan, inputs: Mapping[str, Any]) -> InputKeyError:
    """The error for ``inputs`` lacking some of ``plan.required``, naming the keys and the plan."""
    missing = [key for key in plan.required if key not in inputs]
    noun = "key" if len(missing) == 1 else "keys"
    have = ", ".join(repr(key) for key in inputs) or "no keys"
    names = ", ".join(repr(key) for key in missing)
    return InputKeyError(f"{plan.name}: missing input {noun} {names} (inputs have: {have})", (missing[0],))


def _failing_step(plan: Plan, tb: TracebackType | None) -> Step | None:
    """The step at the line of the innermost frame of ``tb`` in the plan file.

    A frame running ``plan.run`` itself is preferred, so that helpers the plan file defines and
    ``run`` calls are attributed to the line of ``run`` that called them.
    """
    run_code = getattr(plan.run, "__code__", None)
    in_run = in_file = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == plan.filename:
            in_file = tb.tb_lineno
            if code is run_code:
                in_run = tb.tb_lineno
        tb = tb.tb_next
    lineno = in_run or in_file
    return None if lineno is None else plan.step_at_line(lineno)


def _step_error(step: Step, error: BaseException, plan: Plan | None = None) -> BaseException:
    """What a failed step raises: a ``StepError`` naming it, chained to the error; the error itself
    for a step that runs the user's own statement or call in forward (``Plan.effects``), as eager."""
    if plan is not None and plan.effects and any(plan.steps[i] is step for i in plan.effects):
        return error
    exc = StepError(step.name, step.location, step.source, error)
    exc.__cause__ = error
    return exc


def _run_straight(plan: Plan, ops: Any, inputs: Mapping[str, Any]) -> Any:
    """The sequential path: the plan's straight-line ``run``; a failure names the step by its line."""
    try:
        return plan.run(ops, inputs)
    except Exception as exc:
        step = _failing_step(plan, exc.__traceback__)
        if step is None or _step_error(step, exc, plan) is exc:
            raise
        raise StepError(step.name, step.location, step.source, exc) from exc


def _call_step(step: Step, ops: Any, inputs: Mapping[str, Any], results: list[Any], plan: Plan | None = None) -> Any:
    """Run one step in this thread; an exception becomes a ``StepError`` naming the step."""
    try:
        return step.fn(ops, inputs, *[results[d] for d in step.deps])
    except Exception as exc:
        error = _step_error(step, exc, plan)
        if error is exc:
            raise
        raise error from exc


def _sorter(plan: Plan) -> graphlib.TopologicalSorter[int]:
    """A prepared sorter over the step indices; a cycle raises ``CycleError`` naming the steps."""
    sorter = graphlib.TopologicalSorter({i: step.deps for i, step in enumerate(plan.steps)})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise CycleError(tuple(plan.steps[i].name for i in exc.args[1])) from None
    return sorter


def _run_in_order(plan: Plan, ops: Any, inputs: Mapping[str, Any], stop: threading.Event | None = None) -> Any:
    """Run the steps one at a time in dependency order, in the calling thread; none starts once
    ``stop`` (the enclosing call's) is set."""
    results: list[Any] = [None] * len(plan.steps)
    sorter = _sorter(plan)
    while sorter.is_active():
        for i in sorter.get_ready():
            if stop is not None and stop.is_set():
                raise _stopped(plan)
            results[i] = _call_step(plan.steps[i], ops, inputs, results, plan)
            sorter.done(i)
    return _call_step(plan.output, ops, inputs, results)


def _run_steps(plan: Plan, ops: Any, inputs: Mapping[str, Any], stop: threading.Event) -> Any:
    """The sequential path of a nested plan: its steps in program order in the calling thread, like
    ``run``, but none starts once the enclosing call has ended (it may be running in the background)."""
    results: list[Any] = [None] * len(plan.steps)
    for i, step in enumerate(plan.steps):
        if stop.is_set():
            raise _stopped(plan)
        results[i] = _call_step(step, ops, inputs, results, plan)
    return _call_step(plan.output, ops, inputs, results)


def _stopped(plan: Plan) -> CancelledError:
    return CancelledError(f"{plan.name}: the call this plan runs in has stopped")


# ---------------------------------------------------------------------------------------- call state
class _Threads:
    """The call's thread budget: ``workers`` tokens and the executor steps are handed to.

    A token is taken before a step is submitted and given back by the step itself when it ends (before
    its future completes), so at most ``workers`` submitted steps are ever unfinished and every one of
    them has a thread to run on.
    """

    def __init__(self, workers: int, factory: Callable[[int], Any] | None, name: str):
        self.tokens = threading.Semaphore(workers)
        self.workers = workers
        self.factory = factory
        self.name = name
        self.pool: Any = None
        self.lock = threading.Lock()

    def try_submit(self, fn: Callable[..., Any], *args: Any, block: float = 0.0) -> Future | None:
        """Submit ``fn(*args)`` if a token is free (waiting up to ``block`` seconds), else ``None``."""
        if not (self.tokens.acquire(timeout=block) if block > 0 else self.tokens.acquire(blocking=False)):
            return None
        try:
            pool = self.pool
            if pool is None:
                with self.lock:
                    if self.pool is None:
                        self.pool = (
                            self.factory(self.workers) if self.factory is not None
                            else checkout(self.workers, self.name)
                        )
                    pool = self.pool
            return pool.submit(fn, *args)
        except BaseException:
            self.tokens.release()
            raise

    def shutdown(self, wait: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=not wait)


class _Call:
    """What a top-level call shares with the plans nested in it."""

    def __init__(
        self, name: str, workers: int, factory: Callable[[int], Any] | None, recording: bool, kind: str = "sync"
    ):
        self.name = name
        self.kind = kind
        self.stop = threading.Event()  # set when the call is over: nested walks start nothing more
        self.records: list[StepRecord] | None = [] if recording else None
        self.origin = perf()
        self.workers = workers
        self.factory = factory
        self.threads: _Threads | None = None
        self.lock = threading.Lock()
        self.abandoned = False  # some step was left running in the background
        self.gates: dict[asyncio.AbstractEventLoop, _Gate] = {}

    def sync_threads(self) -> _Threads:
        """The token budget of sync walks. In an async call it has no tokens: a plan called
        synchronously by a worker runs in that worker (which holds one of the call's slots)."""
        with self.lock:
            if self.threads is None:
                workers = self.workers if self.kind == "sync" else 0
                self.threads = _Threads(workers, self.factory, self.name)
            return self.threads

    def gate(self, loop: asyncio.AbstractEventLoop) -> tuple[_Gate, bool]:
        """The slots, pool and host the async walks of this call on ``loop`` share, and whether this
        call made it (the walk that did closes its host when it ends)."""
        with self.lock:
            gate = self.gates.get(loop)
            if gate is None:
                gate = self.gates[loop] = _Gate(self.workers, self.factory, self.name, loop)
                return gate, True
            return gate, False

    def shutdown(self, status: str) -> None:
        wait = not self.abandoned and status == "ok"
        if self.threads is not None:
            self.threads.shutdown(wait)
        for gate in self.gates.values():
            if gate.pool is not None:
                gate.pool.shutdown(wait=wait, cancel_futures=True)


class _Gate:
    """An async call's sync-step budget on one loop: ``workers`` slots and a pool with headroom for
    workers that give their slot back while blocked on the loop (``runtime.aio.Host.wait``), and the
    loop as those workers see it (``host``)."""

    HEADROOM = 64

    def __init__(self, workers: int, factory: Callable[[int], Any] | None, name: str, loop: asyncio.AbstractEventLoop):
        self.host = Host(loop)
        self.slots = asyncio.Semaphore(workers)
        self.workers = workers
        self.factory = factory
        self.name = name
        self.pool: Any = None

    def executor(self) -> Any:
        if self.pool is None:
            self.pool = (
                self.factory(self.workers) if self.factory is not None
                else checkout(self.workers + self.HEADROOM, self.name)
            )
        return self.pool


_CALL: contextvars.ContextVar[tuple[_Call, int] | None] = contextvars.ContextVar("xcs_call", default=None)


def call_stopped() -> bool:
    """Whether the call the current plan runs in has ended (failed, timed out, was cancelled): work
    it left behind must start nothing more (``runtime.regions``)."""
    frame = _CALL.get()
    return frame is not None and frame[0].stop.is_set()


class _Top:
    """The options only the top-level call applies."""

    def __init__(self, options: ExecutionOptions, plan: Plan, origin: float):
        self.timeout = options.timeout
        self.deadline = None if options.timeout is None else origin + options.timeout
        self.step_timeout = options.step_timeout
        self.collect = options.on_error == "collect"
        self.progress = Progress(plan.name, len(plan.steps)) if options.progress else None
        self.timed = options.timeout is not None or options.step_timeout is not None
        self.record = options.record


# ---------------------------------------------------------------------------------------- the walks
class _Walk:
    """What the sync and async walks share: results, statuses, times, failures and the record."""

    def __init__(self, plan: Plan, ops: Any, inputs: Mapping[str, Any], call: _Call, depth: int, top: _Top | None):
        n = len(plan.steps)
        self.plan = plan
        self.steps = plan.steps
        self.ops = ops
        self.inputs = inputs
        self.call = call
        self.depth = depth
        self.top = top
        self.collect = top is not None and top.collect
        self.step_timeout = top.step_timeout if top is not None else None
        self.results: list[Any] = [None] * n
        self.status: list[str] = ["skipped"] * (n + 1)
        self.errors: list[str] = [""] * (n + 1)
        self.started: list[float | None] = [None] * (n + 1)
        self.ended: list[float | None] = [None] * (n + 1)
        self.worker: list[str] = [""] * (n + 1)
        self.failures: list[StepFailure] = []
        self.bad: set[int] = set()  # failed or skipped steps (collect)
        self.expired: set[int] = set()  # steps that ran out of time
        self.sorter = _sorter(plan)

    def blocked(self, i: int) -> bool:
        return bool(self.bad) and any(d in self.bad for d in self.steps[i].deps)

    def progressed(self) -> None:
        if self.top is not None and self.top.progress is not None:
            self.top.progress.advance()

    def timeout_error(self, indices: list[int], scope: str) -> XCSTimeoutError:
        top = self.top
        assert top is not None
        names = [self.steps[i].name for i in indices]
        if scope == "step":
            step = self.steps[indices[0]]
            where = f" at {step.location}" if step.location else ""
            text = f"\n    {step.source}" if step.source else ""
            return XCSTimeoutError(
                f"step '{step.name}'{where} timed out after {top.step_timeout:g} s (step_timeout){text}",
                tuple(names), top.step_timeout or 0.0, "step",
            )
        running = ", ".join(names) or "none"
        return XCSTimeoutError(
            f"{self.plan.name}: call timed out after {top.timeout:g} s (timeout); still running: {running}",
            tuple(names), top.timeout or 0.0, "call",
        )

    def time_out(self, running: list[int]) -> None:
        """The call's ``timeout`` ran out with ``running`` steps started: raise, or note them (collect)."""
        error = self.timeout_error(running, "call")
        for i in running:
            self.expired.add(i)
            self.status[i] = "timeout"
            self.errors[i] = describe(error)
        if not self.collect:
            raise error
        for i in running:
            step = self.steps[i]
            self.failures.append(StepFailure(step.name, step.location, step.source, error))
            self.bad.add(i)

    def failed(self, i: int, error: BaseException) -> None:
        """Record the failure of step ``i``: raise it (``raise``), or note it and go on (``collect``)."""
        step = self.steps[i] if i < len(self.steps) else self.plan.output
        timed_out = i in self.expired
        self.status[i] = "timeout" if timed_out else "failed"
        self.errors[i] = describe(error)
        if not self.collect:
            if timed_out:
                raise error
            raise _step_error(step, error, self.plan)
        self.failures.append(StepFailure(step.name, step.location, step.source, error))
        self.bad.add(i)

    def output_value(self, call_output: Callable[[], Any]) -> Any:
        """Run the output step (in this thread); under ``collect`` wrap everything in ``Collected``."""
        out = len(self.steps)
        deps = self.plan.output.deps
        value = None
        if not (self.bad and any(d in self.bad for d in deps)):
            self.started[out] = perf()
            self.worker[out] = threading.current_thread().name
            try:
                value = call_output()
            except Exception as exc:
                self.ended[out] = perf()
                self.failed(out, exc)
                value = None
            else:
                self.ended[out] = perf()
                self.status[out] = "done"
        if not self.collect:
            return value
        names = [s.name for s in self.steps]
        results = {names[i]: self.results[i] for i, status in enumerate(self.status[:-1]) if status == "done"}
        skipped = tuple(names[i] for i, status in enumerate(self.status[:-1]) if status == "skipped")
        if self.status[out] == "skipped":
            skipped += ("output",)
        return Collected(value if self.status[out] == "done" else None, results, tuple(self.failures), skipped)

    def save_records(self) -> None:
        records = self.call.records
        if records is None:
            return
        origin = self.call.origin
        names = [s.name for s in self.steps] + ["output"]
        for i, name in enumerate(names):
            start, end = self.started[i], self.ended[i]
            status = self.status[i]
            records.append(StepRecord(
                self.plan.name, name, i, status,
                None if start is None else start - origin,
                None if end is None else end - origin,
                self.worker[i], self.errors[i], self.depth,
            ))


class _SyncWalk(_Walk):
    """Walk the graph on the call's thread budget: dataflow firing, or a wave at a time."""

    def __init__(
        self, plan: Plan, ops: Any, inputs: Mapping[str, Any], call: _Call, depth: int, mode: str,
        workers: int, top: _Top | None,
    ):
        super().__init__(plan, ops, inputs, call, depth, top)
        self.waves = mode == "wave"
        timed = top is not None and top.timed
        self.inline_all = mode in ("sequential", "topological") and not timed
        self.inline_ok = not timed  # a step run in this thread cannot be timed out
        self.nested = top is None
        self.stop = threading.Event()  # this walk failed: its queued steps do not start
        self.here = threading.current_thread().name
        self.threads: _Threads | None = None

    # ---------------------------------------------------------------- the walk
    def run(self) -> Any:
        token = _CALL.set((self.call, self.depth))
        running: dict[Future[Any], int] = {}
        try:
            self.walk(running)
            return self.output_value(self.call_output)
        except BaseException:
            self.stop.set()
            raise
        finally:
            _CALL.reset(token)
            if running:
                self.abandon(running)
            self.save_records()

    def call_output(self) -> Any:
        results = self.results
        return self.plan.output.fn(self.ops, self.inputs, *[results[d] for d in self.plan.output.deps])

    def walk(self, running: dict[Future[Any], int]) -> None:
        steps, sorter = self.steps, self.sorter
        pending: deque[int] = deque()
        finished: SimpleQueue[Future[Any]] = SimpleQueue()
        while sorter.is_active():
            if not (self.waves and (running or pending)):
                for i in sorter.get_ready():
                    if self.blocked(i):
                        self.bad.add(i)
                        sorter.done(i)
                        self.progressed()
                    else:
                        pending.append(i)
            while pending:
                if self.call.stop.is_set():
                    raise CancelledError(f"{self.plan.name}: the call this plan runs in has stopped")
                if self.inline_all or (not running and len(pending) == 1 and self.inline_ok):
                    self.run_here(pending.popleft())
                    continue
                if self.threads is None:
                    self.threads = self.call.sync_threads()
                i = pending[0]
                args = [self.results[d] for d in steps[i].deps]
                context = contextvars.copy_context()
                # Nothing of ours running and no free token: steps left running in the background
                # (timed out) hold them. Wait a little, bounded by the time limits.
                block = 0.0 if running or self.inline_ok else min(self.wait_time(running) or 0.05, 0.05)
                future = self.threads.try_submit(context.run, self.task, i, steps[i].fn, args, block=block)
                if future is None:
                    if self.inline_ok and (self.nested or not running):
                        self.run_here(pending.popleft())  # caller runs: no token is free
                        continue
                    if not running and self.expire(running):
                        self.give_up(pending)
                        return
                    break  # a running step frees a token when it ends
                pending.popleft()
                running[future] = i
                future.add_done_callback(finished.put)
            if not running:
                continue
            wait = self.wait_time(running)
            try:
                future = finished.get() if wait is None else finished.get(timeout=wait)
            except Empty:
                if self.expire(running):
                    for future in list(running):
                        self.drop(running, future)
                    self.give_up(pending)
                    return  # collect: the call timed out; the rest is skipped
                continue
            i = running.pop(future, -1)
            if i < 0:
                continue  # a step dropped after its timeout finished at last
            self.settle(i, future)

    def settle(self, i: int, future: Future[Any]) -> None:
        if future.cancelled():
            raise CancelledError(f"{self.plan.name}: step '{self.steps[i].name}' was cancelled")
        error = future.exception()
        if error is None:
            value = future.result()
            if value is _NOT_STARTED:
                if self.call.stop.is_set():
                    raise CancelledError(f"{self.plan.name}: the call this plan runs in has stopped")
                return  # this walk is stopping: the failure that stopped it is on its way
            self.results[i] = value
            self.status[i] = "done"
            self.sorter.done(i)
        else:
            if not isinstance(error, Exception):
                raise error  # KeyboardInterrupt, SystemExit raised inside a step
            self.failed(i, error)
            self.sorter.done(i)
        self.progressed()

    def run_here(self, i: int) -> None:
        step = self.steps[i]
        results = self.results
        self.worker[i] = self.here
        self.started[i] = perf()
        try:
            value = step.fn(self.ops, self.inputs, *[results[d] for d in step.deps])
        except Exception as exc:
            self.ended[i] = perf()
            self.failed(i, exc)
            self.sorter.done(i)
        else:
            self.ended[i] = perf()
            results[i] = value
            self.status[i] = "done"
            self.sorter.done(i)
        self.progressed()

    def task(self, i: int, fn: Callable[..., Any], args: list[Any]) -> Any:
        """A step in a pool thread; gives its token back when it ends, before its future completes."""
        threads = self.threads
        try:
            if self.stop.is_set() or self.call.stop.is_set():
                return _NOT_STARTED
            self.worker[i] = threading.current_thread().name
            self.started[i] = perf()
            try:
                return fn(self.ops, self.inputs, *args)
            except BaseException:
                if not self.collect:
                    self.stop.set()  # no further step of this walk starts
                raise
            finally:
                self.ended[i] = perf()
        finally:
            threads.tokens.release()  # type: ignore[union-attr]

    # ---------------------------------------------------------------- time limits
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
        """Handle the time limits that ran out: raise (``raise``) or note the steps that timed out and
        say whether the whole call is over (``collect``)."""
        top = self.top
        if top is None:
            return False
        now = perf()
        if top.deadline is not None and now >= top.deadline:
            self.time_out([i for i in running.values() if self.started[i] is not None])
            return True
        if top.step_timeout is not None:
            for future, i in list(running.items()):
                began = self.started[i]
                if began is not None and now - began >= top.step_timeout:
                    self.expired.add(i)
                    self.failed(i, self.timeout_error([i], "step"))  # raises under "raise"
                    self.drop(running, future)
                    self.sorter.done(i)
                    self.progressed()
        return False

    def give_up(self, pending: deque[int]) -> None:
        """Collect, out of time: every step that has not finished counts as failed or skipped."""
        pending.clear()
        self.bad.update(i for i, status in enumerate(self.status[:-1]) if status != "done")

    def drop(self, running: dict[Future[Any], int], future: Future[Any]) -> None:
        i = running.pop(future)
        if future.cancel():
            self.threads.tokens.release()  # type: ignore[union-attr]
        elif self.status[i] == "skipped":
            self.status[i] = "abandoned"
        self.call.abandoned = True
        self.bad.add(i)

    def abandon(self, running: dict[Future[Any], int]) -> None:
        """The walk is stopping with steps in flight: queued ones never start, running ones finish in
        the background."""
        for future in list(running):
            i = running.pop(future)
            if future.cancel():
                self.threads.tokens.release()  # type: ignore[union-attr]
            else:
                self.call.abandoned = True
                if self.status[i] == "skipped" and self.started[i] is not None:
                    self.status[i] = "abandoned"


def _top_sync(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions, scheduler: Scheduler, mode: str
) -> Any:
    """A top-level call on threads: the call's state, its time limits, progress and record."""
    workers = _workers(plan, options, scheduler)
    label = mode
    if mode in ("sequential", "topological") and options.timeout is None and options.step_timeout is None:
        workers = 1
    elif mode in ("sequential", "topological"):
        mode, workers = "parallel", 1  # one step at a time, in a worker, so the call can time out
    call = _Call(plan.name, workers, scheduler.executor, options.record is not False)
    top = _Top(options, plan, call.origin)
    walk = _SyncWalk(plan, ops, inputs, call, 0, mode, workers, top)
    fence = DEFER.get()  # a Fence: this call runs for an awaiting call, and stops when that is cancelled
    if type(fence) is not Fence:
        fence = None
    status, error = "ok", None
    try:
        if fence is not None:
            fence.attach(call.stop.set)
        return walk.run()
    except BaseException as exc:
        status, error = _call_status(exc), exc
        raise
    finally:
        if fence is not None:
            fence.detach(call.stop.set)
        call.stop.set()
        call.shutdown(status)
        _finish(call, top, plan, scheduler, label, status, error, None)


def _call_status(exc: BaseException) -> str:
    if isinstance(exc, XCSTimeoutError):
        return "timeout"
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return "interrupted"
    return "failed"


def _finish(
    call: _Call, top: _Top, plan: Plan, scheduler: Scheduler, mode: str, status: str,
    error: BaseException | None, sink: list | None,
) -> None:
    if top.progress is not None:
        top.progress.close(status)
    if call.records is None:
        return
    record = RunRecord(
        plan.name, scheduler.name if scheduler.name == mode else f"{scheduler.name} ({mode})", status,
        perf() - call.origin, tuple(call.records), describe(error),
    )
    if sink is not None:
        sink.append(record)
    else:
        set_last_run(record)
    if callable(top.record):
        top.record(record)


# ---------------------------------------------------------------------------------------- async
def _kinds(plan: Plan) -> list[int]:
    """How the async walk runs each step: awaited (``async def``), probed on the loop (a generated
    step: pure glue around operator calls; see ``runtime.aio``), or in the thread pool (any other sync
    function, and a probed step that turned out not to be a single call)."""
    kinds = plan.__dict__.get("_xcs_kinds")
    if kinds is None:
        def kind(fn: Any) -> int:
            if inspect.iscoroutinefunction(fn):
                return _ASYNC
            code = getattr(fn, "__code__", None)
            if plan.filename and code is not None and code.co_filename == plan.filename:
                return _PROBE
            return _SYNC

        kinds = [_SYNC if i in plan.effects else kind(step.fn) for i, step in enumerate(plan.steps)]
        kinds.append(kind(plan.output.fn))
        object.__setattr__(plan, "_xcs_kinds", kinds)  # a cache, not a field: plans are frozen
    return kinds


class _AsyncWalk(_Walk):
    """Walk the graph on the running event loop: each step a task the moment its inputs exist."""

    def __init__(
        self, plan: Plan, ops: Any, inputs: Mapping[str, Any], call: _Call, depth: int, workers: int,
        scheduler: Scheduler, top: _Top | None,
    ):
        super().__init__(plan, ops, inputs, call, depth, top)
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.closing = False  # the walk is ending: finishing steps start nothing more
        self.halted = False  # a step failed under "raise": no further step starts, even one queued

    async def run(self) -> Any:
        loop = self.loop = asyncio.get_running_loop()
        self.kinds = _kinds(self.plan)
        self.gate, owner = self.call.gate(loop)
        self.done: asyncio.Future[None] = loop.create_future()
        token = _CALL.set((self.call, self.depth))
        host = HOST_LOOP.set(self.gate.host)
        try:
            self.advance()
            deadline = self.top.deadline if self.top is not None else None
            if deadline is None:
                await self.done
            else:
                try:
                    async with asyncio.timeout(max(deadline - perf(), 0.0)) as scope:
                        await self.done
                except TimeoutError:
                    if not scope.expired():
                        raise
                    await self.expire_call()
            return await self.output()
        finally:
            _CALL.reset(token)
            HOST_LOOP.reset(host)
            await self.close()
            if owner:  # the call is over on this loop: what its workers started here ends with it
                if self.top is not None:
                    self.call.stop.set()
                await self.gate.host.aclose()
            self.save_records()

    def advance(self) -> None:
        sorter = self.sorter
        while True:
            ready = sorter.get_ready()
            if not ready:
                break
            skipped = False
            for i in ready:
                if self.blocked(i):
                    self.bad.add(i)
                    sorter.done(i)
                    self.progressed()
                    skipped = True
                else:
                    task = self.loop.create_task(self.step(i))
                    self.tasks[i] = task
                    task.add_done_callback(lambda t, i=i: self.settle(i, t))
            if not skipped:
                break
        if not sorter.is_active() and not self.done.done():
            self.done.set_result(None)

    async def step(self, i: int) -> Any:
        step = self.steps[i]
        results = self.results
        args = [results[d] for d in step.deps]
        kind = self.kinds[i]
        if kind == _SYNC:
            return await self.in_pool(i, step.fn, args)
        self.worker[i] = "asyncio"
        self.started[i] = perf()
        if kind == _ASYNC:
            awaitable = step.fn(self.ops, self.inputs, *args)
        else:
            probe = Probe()
            token = DEFER.set(probe)
            try:
                awaitable = step.fn(self.ops, self.inputs, *args)
            except Exception:
                if not probe.calls:
                    raise  # no operator call: a real error of the step's glue
                awaitable = probe  # it used a call's result: not a plain call step
            finally:
                DEFER.reset(token)
            calls = probe.calls
            if calls and (len(calls) > 1 or awaitable is not calls[0]):
                probe.discard()  # nothing ran; from now on this step runs in the pool
                self.kinds[i] = _SYNC
                self.started[i] = None
                self.worker[i] = ""
                return await self.in_pool(i, step.fn, args)
            if type(awaitable) is Deferred:
                self.started[i] = None
                self.worker[i] = ""
                return await self.in_pool(i, awaitable.call, None)
            if not inspect.isawaitable(awaitable):
                self.ended[i] = perf()
                return awaitable
        try:
            return await (awaitable if self.step_timeout is None else self.limited(i, awaitable))
        except Exception:
            if not self.collect:
                self.halted = True
            raise
        finally:
            self.ended[i] = perf()

    async def limited(self, i: int, awaitable: Any) -> Any:
        limit = self.step_timeout
        try:
            async with asyncio.timeout(limit) as scope:
                return await awaitable
        except TimeoutError:
            if not scope.expired():
                raise
            self.expired.add(i)
            raise self.timeout_error([i], "step") from None

    async def in_pool(self, i: int, fn: Callable[..., Any], args: list[Any] | None) -> Any:
        gate = self.gate
        async with gate.slots:
            if self.halted or self.closing:
                return _NOT_STARTED
            context = contextvars.copy_context()
            context.run(SLOT.set, (self.loop, gate.slots))
            future = self.loop.run_in_executor(gate.executor(), context.run, self.task, i, fn, args)
            try:
                return await (future if self.step_timeout is None else self.limited(i, future))
            except Exception:
                if not self.collect:
                    self.halted = True  # before the slot is given back to a queued step
                raise

    def task(self, i: int, fn: Callable[..., Any], args: list[Any] | None) -> Any:
        if self.halted or self.closing or self.call.stop.is_set():
            return _NOT_STARTED
        self.worker[i] = threading.current_thread().name
        self.started[i] = perf()
        try:
            return fn() if args is None else fn(self.ops, self.inputs, *args)
        finally:
            self.ended[i] = perf()

    def settle(self, i: int, task: asyncio.Task[Any]) -> None:
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
        if error is None:
            value = task.result()
            if value is _NOT_STARTED:
                self.started[i] = None
                return
            self.results[i] = value
            self.status[i] = "done"
        elif not isinstance(error, Exception):
            if not self.done.done():
                self.done.set_exception(error)
            return
        else:
            try:
                self.failed(i, error)
            except BaseException as exc:
                if not self.done.done():
                    self.done.set_exception(exc)
                return
        self.sorter.done(i)
        self.progressed()
        self.advance()

    async def expire_call(self) -> None:
        self.closing = True  # finishing steps no longer start others
        self.time_out([i for i in self.tasks if self.started[i] is not None])  # raises under "raise"
        self.bad.update(i for i, status in enumerate(self.status[:-1]) if status != "done")

    async def output(self) -> Any:
        out = self.plan.output
        if self.kinds[-1] == _ASYNC and not (self.bad and any(d in self.bad for d in out.deps)):
            try:
                value = await out.fn(self.ops, self.inputs, *[self.results[d] for d in out.deps])
            except Exception as exc:
                error = exc

                def fail() -> Any:
                    raise error

                return self.output_value(fail)
            return self.output_value(lambda: value)
        results = self.results
        return self.output_value(lambda: out.fn(self.ops, self.inputs, *[results[d] for d in out.deps]))

    async def close(self) -> None:
        """Cancel and await the steps still in flight; no task outlives the call."""
        self.closing = True
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if any(  # sync steps still running in a pool thread: they finish in the background
            self.started[i] is not None and self.ended[i] is None and self.worker[i] != "asyncio"
            for i in range(len(self.steps))
        ):
            self.call.abandoned = True


async def _top_async(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions, scheduler: Scheduler, sink: list
) -> Any:
    workers = _workers(plan, options, scheduler)
    call = _Call(plan.name, workers, scheduler.executor, options.record is not False, "async")
    top = _Top(options, plan, call.origin)
    walk = _AsyncWalk(plan, ops, inputs, call, 0, workers, scheduler, top)
    fence, stop = DEFER.get(), None  # a Fence: run for an awaiting call in a thread (``in_thread``)
    if type(fence) is Fence:
        stop = _canceller(asyncio.current_task())
    status, error = "ok", None
    try:
        if stop is not None:
            fence.attach(stop)
        return await walk.run()
    except BaseException as exc:
        status, error = _call_status(exc), exc
        raise
    finally:
        if stop is not None:
            fence.detach(stop)
        call.stop.set()
        call.shutdown(status)
        _finish(call, top, plan, scheduler, "async", status, error, sink)


def _canceller(task: asyncio.Task[Any] | None) -> Callable[[], None] | None:
    """A callable that cancels ``task`` from any thread (nothing once its loop is closed)."""
    if task is None:
        return None
    loop = task.get_loop()

    def cancel() -> None:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass

    return cancel
