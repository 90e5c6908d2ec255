"""The bridge between operators and the ``async`` scheduler (imported by ``xcs.operator``).

Two pieces of protocol, both in ``contextvars`` so threads and tasks never see each other's:

- Deferral. The async scheduler probes a generated step (pure glue around operator calls) on the
  event loop with a ``Probe`` in ``DEFER``. Operator calls then do not run: ``Operator.__call__``
  returns, and notes in the probe, an awaitable (an async ``forward``, or a nested jitted operator's
  ``acall``) that the scheduler awaits natively, or a ``Deferred`` (a sync ``forward``) that it runs
  in its thread pool. A step that does more than return one such call (a region with several calls,
  or glue on a call's result) is discarded unrun (its glue is pure and no call ran) and runs in the
  pool from then on.
- The host loop. While an async call runs, ``HOST_LOOP`` is its event loop. Sync code running in a
  worker thread of that call that calls an async operator (``run_sync``) runs the coroutine on the
  host loop and waits for it, so loop-bound clients keep working; outside any call it uses
  ``asyncio.run``. In a thread that is itself running an event loop a sync call cannot wait: it raises
  ``AsyncContextError`` pointing at ``await op.acall(...)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Coroutine

from runtime.errors import AsyncContextError

class Probe:
    """The operator calls a probed step made (none of them has run)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def discard(self) -> None:
        for call in self.calls:
            if asyncio.iscoroutine(call):
                call.close()  # never started: no "never awaited" warning


DEFER: contextvars.ContextVar[Probe | None] = contextvars.ContextVar("xcs_defer", default=None)
HOST_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "xcs_host_loop", default=None
)

# The async scheduler's gate slot held by this worker thread: (loop, semaphore). A worker that blocks
# waiting for the loop (``run_sync``) gives the slot back meanwhile, so the steps it waits for can run.
SLOT: contextvars.ContextVar[tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None] = contextvars.ContextVar(
    "xcs_slot", default=None
)

running_loop = asyncio._get_running_loop  # None outside a running loop; no exception on the hot path


class Deferred:
    """A sync operator call the async scheduler runs in its thread pool: ``call()`` does the call."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], Any]):
        self.call = call


def run_sync(coro: Coroutine[Any, Any, Any], what: str) -> Any:
    """Run ``coro`` to completion from sync code (see the module docstring); ``what`` names it in errors."""
    if running_loop() is not None:
        coro.close()
        raise AsyncContextError(
            f"{what} is async and this thread is running an event loop, so a sync call cannot wait "
            "for it: use `await op.acall(inputs=...)`"
        )
    host = HOST_LOOP.get()
    if host is not None and host.is_running() and not host.is_closed():
        return wait_on_host(coro, host)
    return asyncio.run(coro)


def wait_on_host(coro: Coroutine[Any, Any, Any], host: asyncio.AbstractEventLoop) -> Any:
    """Run ``coro`` on ``host`` (another thread's running loop) and wait for it, giving this worker's
    gate slot back while waiting."""
    slot = SLOT.get()
    if slot is None or slot[0] is not host:
        return asyncio.run_coroutine_threadsafe(coro, host).result()
    semaphore = slot[1]
    host.call_soon_threadsafe(semaphore.release)
    try:
        return asyncio.run_coroutine_threadsafe(coro, host).result()
    finally:
        asyncio.run_coroutine_threadsafe(semaphore.acquire(), host).result()


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` run in a fresh thread that sees this task's context and this loop as the host.

    The thread exits when ``fn`` returns (no shared default executor, so no thread outlives the call
    unless ``fn`` blocks past a cancellation: then it finishes in the background).
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    context.run(HOST_LOOP.set, loop)
    pool = ThreadPoolExecutor(1, thread_name_prefix="xcs-acall")
    try:
        return await loop.run_in_executor(pool, functools.partial(context.run, fn, *args))
    finally:
        pool.shutdown(wait=False)


async def checked(awaitable: Awaitable[Any], check: Callable[[Any], Any]) -> Any:
    """``check(await awaitable)``: an async ``forward``'s result validated like a sync one's."""
    return check(await awaitable)
