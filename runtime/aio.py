"""The bridge between operators and the ``async`` scheduler (imported by ``xcs.operator``); three
pieces of protocol, in ``contextvars`` so threads and tasks never see each other's:

- Deferral (``probe``): a generated step is run on the loop with a ``Probe`` in ``DEFER``; operator calls
  then return (and note) an awaitable or a ``Deferred`` sync call instead of running. A step that does
  more than return one such call is discarded unrun (its glue is pure) and runs in the pool from then on.
- The host loop (``HOST_LOOP``): an async call's loop as its worker threads see it. Sync code in such a
  worker that calls an async operator (``run_sync``) runs it there and waits; when the call ends the
  ``Host`` is closed: what its workers started is cancelled and awaited, waiting workers wake.
- Fences: work an awaiting call hands to a thread (``in_thread``) runs with a ``Fence`` in ``DEFER``;
  once that call is cancelled, nothing more starts in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
from concurrent.futures import CancelledError, Future
from typing import Any, Awaitable, Callable, Coroutine

from xcs.runtime.errors import AsyncContextError
from xcs.runtime.plan import Plan
from xcs.runtime.pool import checkout

SYNC, ASYNC, PROBE = 0, 1, 2  # how the async driver runs a step: in the pool, awaited, probed on the loop
RERUN = object()  # what ``probe`` returns for a step that is not one plain operator call


class Probe:
    """The operator calls a probed step made (none of them ran)."""

    __slots__ = ("calls",)
    probing = True  # ``Operator.__call__`` defers its call (a ``Fence`` does not)

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def discard(self) -> None:
        for call in self.calls:
            if asyncio.iscoroutine(call):
                call.close()  # never started: no "never awaited" warning


class Fence:
    """The cancellation of an awaiting call, seen by the work it handed to a thread (``in_thread``)."""

    __slots__ = ("cancelled", "stops", "lock")
    probing = False

    def __init__(self) -> None:
        self.cancelled = False
        self.stops: list[Callable[[], Any]] = []
        self.lock = threading.Lock()

    def check(self) -> None:
        """Raise ``CancelledError`` once the awaiting call is cancelled: nothing more starts."""
        if self.cancelled:
            raise CancelledError("the awaiting call was cancelled: nothing more starts")

    def attach(self, stop: Callable[[], Any]) -> None:
        """Call ``stop`` when the awaiting call is cancelled (now, if it already is)."""
        with self.lock:
            if not self.cancelled:
                self.stops.append(stop)
                return
        stop()

    def detach(self, stop: Callable[[], Any]) -> None:
        with self.lock:
            if stop in self.stops:
                self.stops.remove(stop)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            stops, self.stops = self.stops, []
        for stop in stops:
            stop()


DEFER: contextvars.ContextVar[Probe | Fence | None] = contextvars.ContextVar("xcs_defer", default=None)
HOST_LOOP: contextvars.ContextVar[Host | None] = contextvars.ContextVar("xcs_host_loop", default=None)

# The async scheduler's gate slot held by this worker thread: (loop, semaphore). A worker that blocks
# waiting for the loop (``run_sync``) gives the slot back meanwhile, so the steps it waits for can run.
SLOT: contextvars.ContextVar[tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None] = contextvars.ContextVar(
    "xcs_slot", default=None
)

running_loop = asyncio._get_running_loop  # None outside a running loop; no exception on the hot path


class Deferred(functools.partial):
    """A sync operator call the async scheduler runs in its thread pool (calling it does the call)."""


class Host:
    """An event loop as the worker threads of one call see it (``HOST_LOOP``): they run coroutines on
    it and wait (``wait``); it tracks them, so ``aclose`` can end them all and wake every waiter."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = threading.Lock()
        self.closed = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.queued: dict[Future, Coroutine[Any, Any, Any]] = {}

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future:
        """Start ``coro`` on the loop (from another thread); a future of its result."""
        future: Future = Future()
        with self.lock:
            if not self.closed:
                self.queued[future] = coro
                try:
                    self.loop.call_soon_threadsafe(self._start, future)
                    return future
                except RuntimeError:  # the loop is closed
                    del self.queued[future]
        coro.close()  # never started: no "never awaited" warning
        raise CancelledError("the call this work belongs to has ended")

    def _start(self, future: Future) -> None:
        with self.lock:
            coro = self.queued.pop(future, None)
        if coro is None:  # closed meanwhile: the future is cancelled, the coroutine closed
            return
        if not future.set_running_or_notify_cancel():
            coro.close()
            return
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._done, future))

    def _done(self, future: Future, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            future.set_exception(CancelledError("the call this work belongs to has ended"))
        elif task.exception() is not None:
            future.set_exception(task.exception())
        else:
            future.set_result(task.result())

    def wait(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop and wait for it, giving this worker's gate slot (``SLOT``) back
        while waiting."""
        slot = SLOT.get()
        future = self.submit(coro)
        if slot is None or slot[0] is not self.loop:
            return future.result()
        semaphore = slot[1]
        with self.lock, contextlib.suppress(RuntimeError):  # RuntimeError: the loop is closed
            if not self.closed:
                self.loop.call_soon_threadsafe(semaphore.release)
        try:
            return future.result()
        finally:
            self.submit(semaphore.acquire()).result()

    async def aclose(self) -> None:
        """End the host (on its loop): refuse new work, cancel and await what runs, wake the waiters."""
        with self.lock:
            self.closed = True
            queued, self.queued = self.queued, {}
        for future, coro in queued.items():
            future.cancel()
            coro.close()
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def run_sync(coro: Coroutine[Any, Any, Any], what: str) -> Any:
    """Run ``coro`` to completion from sync code (see the module docstring); ``what`` names it in errors."""
    if running_loop() is not None:
        coro.close()
        raise AsyncContextError(
            f"{what} is async and this thread is running an event loop, so a sync call cannot wait "
            "for it: use `await op.acall(inputs=...)`"
        )
    host = HOST_LOOP.get()
    if host is not None:
        return host.wait(coro)  # refused once the call it belongs to has ended
    return asyncio.run(coro)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` run in a warm pool's thread that sees this task's context and this loop as the
    host. Cancelled, it fences the thread's work and ends what it started on this loop; a sync step
    already running finishes in the background, its result dropped."""
    loop = asyncio.get_running_loop()
    host = Host(loop)
    fence = Fence()
    context = contextvars.copy_context()
    context.run(HOST_LOOP.set, host)
    context.run(DEFER.set, fence)
    pool = checkout(1, "acall")
    try:
        return await loop.run_in_executor(pool, functools.partial(context.run, fn, *args))
    except BaseException:
        fence.cancel()
        raise
    finally:
        pool.shutdown(wait=False)
        await host.aclose()


def step_kinds(plan: Plan) -> list[int]:
    """How the async driver runs each step: awaited (``async def``), probed on the loop (a generated
    step), or in the pool (any other sync function; a step with effects). Cached on the plan."""
    kinds = plan.__dict__.get("_xcs_kinds")
    if kinds is None:
        def kind(fn: Any) -> int:
            if inspect.iscoroutinefunction(fn):
                return ASYNC
            code = getattr(fn, "__code__", None)
            return PROBE if plan.filename and code is not None and code.co_filename == plan.filename else SYNC

        kinds = [SYNC if i in plan.effects else kind(step.fn) for i, step in enumerate(plan.steps)]
        kinds.append(kind(plan.output.fn))
        object.__setattr__(plan, "_xcs_kinds", kinds)  # a cache, not a field: plans are frozen
    return kinds


def probe(step: Callable[[], Any]) -> Any:
    """Run a generated step with its operator calls deferred: the one awaitable or ``Deferred`` it
    returns, a plain value (no call), or ``RERUN`` (nothing ran: run the step in the pool)."""
    probe = Probe()
    token = DEFER.set(probe)
    try:
        value = step()
    except Exception:
        if not probe.calls:
            raise  # no operator call: a real error of the step's glue
        value = probe  # it used a call's result: not a plain call step
    finally:
        DEFER.reset(token)
    if type(value) is Deferred or not probe.calls or (len(probe.calls) == 1 and value is probe.calls[0]):
        return value
    probe.discard()
    return RERUN


async def within(seconds: float | None, awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """``(True, await awaitable)``, or ``(False, None)`` once ``seconds`` (None: no limit) ran out."""
    try:
        async with asyncio.timeout(seconds) as scope:
            return True, await awaitable
    except TimeoutError:
        if not scope.expired():
            raise
        return False, None
