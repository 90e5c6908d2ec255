"""One top-level call of a plan: the entries ``execute`` / ``aexecute`` and the call's lifetime.

A plain top-level ``sequential`` call runs the plan's straight-line ``run``; every other call is a
``runtime.executor.Walk``, driven sync or (``async``) on an event loop. A nested plan (a jitted operator
called by a step) shares its top-level ``Call``: the options only the top applies, the thread budget (a
step takes one of ``max_workers`` tokens or runs in the walk's own thread: never a deadlock), the pools,
the record and the end (``Call.stop``: once it is set, nothing of the call starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, Callable, Iterator

from xcs.runtime.aio import DEFER, HOST_LOOP, Fence, Host, in_thread, running_loop
from xcs.runtime.errors import AsyncContextError, InputKeyError, OperatorInputError, StepError
from xcs.runtime.errors import TimeoutError as XCSTimeoutError
from xcs.runtime.executor import CALL, Walk, perf, step_error
from xcs.runtime.options import ExecutionOptions, current_options
from xcs.runtime.plan import Plan
from xcs.runtime.pool import checkout, worker_bound
from xcs.runtime.record import LAST_RUN, Progress, RunRecord, StepRecord, describe
from xcs.runtime.schedulers import Scheduler, resolve

HEADROOM = 64  # async pool threads beyond max_workers: workers that gave their slot back (``Host.wait``)


def execute(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None) -> Any:
    """Run ``plan`` on ``ops`` and ``inputs`` under ``options`` (default: the current ones)."""
    _check_inputs(plan, inputs)
    options = current_options() if options is None else options
    scheduler = resolve(options.scheduler)
    mode = scheduler.mode
    if mode == "auto":
        mode = "parallel" if plan.width > 1 else "sequential"
    frame = CALL.get()
    if mode == "async":
        if running_loop() is not None:
            raise AsyncContextError(
                f"{plan.name}: the 'async' scheduler cannot run from a sync call in a thread that is running "
                "an event loop: use `await op.acall(inputs=...)`"
            )
        host = HOST_LOOP.get()  # a worker of a running async call: on that call's loop
        if frame is not None and host is not None and (host.closed or host.loop.is_running()):
            return host.wait(Walk(plan, ops, inputs, frame[0], frame[1] + 1, "async").arun())
        with _relay() as sink:
            return asyncio.run(_top_async(plan, ops, inputs, Call(plan, options, scheduler, mode), sink))
    if frame is not None:
        return Walk(plan, ops, inputs, frame[0], frame[1] + 1, mode).run()
    if options.plain and mode == "sequential":
        return _run_straight(plan, ops, inputs)
    call = Call(plan, options, scheduler, mode)
    with call.top(call.stop.set):
        return Walk(plan, ops, inputs, call, 0, call.mode).run()


async def aexecute(plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None) -> Any:
    """``execute`` for a running event loop: ``auto`` and ``async`` walk the plan on this loop; other
    modes run ``execute`` in a thread of their own so the loop keeps running."""
    _check_inputs(plan, inputs)
    options = current_options() if options is None else options
    scheduler = resolve(options.scheduler)
    frame = CALL.get()
    if scheduler.mode not in ("auto", "async"):
        with _relay() as sink:
            return await in_thread(_execute_into, sink, plan, ops, inputs, options)
    if frame is not None:
        return await Walk(plan, ops, inputs, frame[0], frame[1] + 1, "async").arun()
    return await _top_async(plan, ops, inputs, Call(plan, options, scheduler, "async"), None)


@contextlib.contextmanager
def _relay() -> Iterator[list]:
    """A sink for the run record of a call made in a context of its own (a thread, ``asyncio.run``)."""
    sink: list[RunRecord | None] = []
    try:
        yield sink
    finally:
        if sink and sink[0] is not None:
            LAST_RUN.set(sink[0])


def _execute_into(sink: list, plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions) -> Any:
    LAST_RUN.set(None)
    try:
        return execute(plan, ops, inputs, options)
    finally:
        sink.append(LAST_RUN.get())


async def _top_async(plan: Plan, ops: Any, inputs: Mapping[str, Any], call: Call, sink: list | None) -> Any:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def stop() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to stop
            loop.call_soon_threadsafe(task.cancel)
    with call.top(stop, sink):
        return await Walk(plan, ops, inputs, call, 0, "async").arun()


def _check_inputs(plan: Plan, inputs: Any) -> None:
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{plan.name}: inputs must be a mapping, got {type(inputs).__name__}")
    missing = [key for key in plan.required if key not in inputs]
    if missing:
        noun = "key" if len(missing) == 1 else "keys"
        have = ", ".join(repr(key) for key in inputs) or "no keys"
        names = ", ".join(repr(key) for key in missing)
        raise InputKeyError(f"{plan.name}: missing input {noun} {names} (inputs have: {have})", (missing[0],))


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
        if step is None or step_error(step, exc, plan) is exc:
            raise
        raise StepError(step.name, step.location, step.source, exc)


class Call:
    """A top-level call: the options only it applies, its thread budget (``workers`` tokens; none in
    an async call, whose sync steps hold loop slots instead), its pools, its record and its end."""

    def __init__(self, plan: Plan, options: ExecutionOptions, scheduler: Scheduler, mode: str):
        self.plan, self.scheduler, self.label, self.mode = plan, scheduler, mode, mode
        self.workers = worker_bound(len(plan.steps), options)
        self.timeout, self.step_timeout = options.timeout, options.step_timeout
        self.timed = options.timeout is not None or options.step_timeout is not None
        if mode in ("sequential", "topological"):
            self.workers = 1  # one step at a time: in a worker when the call can time out, else in this thread
            self.mode = "parallel" if self.timed else mode
        self.stop = threading.Event()  # set when the call is over: nothing of it starts any more
        self.origin = perf()
        self.deadline = None if options.timeout is None else self.origin + options.timeout
        self.records: list[StepRecord] | None = [] if options.record is not False else None
        self.record = options.record
        self.collect = options.on_error == "collect"
        self.progress = Progress(plan.name, len(plan.steps)) if options.progress else None
        self.tokens = threading.Semaphore(0 if mode == "async" else self.workers)
        self.pools: dict[Any, Any] = {}  # None: the token budget's pool; a loop: that loop's
        self.gates: dict[asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, Host]] = {}
        self.lock = threading.Lock()
        self.abandoned = False  # some step was left running in the background

    def pool(self, key: Any) -> Any:
        with self.lock:
            if key not in self.pools:
                factory = self.scheduler.executor
                size = self.workers + (0 if key is None else HEADROOM)
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
    def top(self, stop: Callable[[], Any], sink: list | None = None) -> Iterator[None]:
        """The call's lifetime: ``stop``ped when the awaiting call it runs for (a ``Fence``) is cancelled;
        then its pools given back, progress and record."""
        status, error = "ok", None
        fence = DEFER.get()
        fence = fence if type(fence) is Fence else None
        if fence is not None:
            fence.attach(stop)
        try:
            yield
        except BaseException as exc:
            status, error = "failed", exc
            if isinstance(exc, XCSTimeoutError):
                status = "timeout"
            elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                status = "interrupted"
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
                sink.append(record) if sink is not None else LAST_RUN.set(record)
                if callable(self.record):
                    self.record(record)
