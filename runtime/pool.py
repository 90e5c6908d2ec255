"""Warm thread pools: the threads of one call are reused by the next, and exit when left idle.

Starting threads costs milliseconds, which a fan-out of 50 ms steps notices. ``checkout(workers, name)``
hands a call a ``WarmPool`` of its own (calls never share one, so each keeps its ``max_workers`` bound);
``WarmPool.shutdown`` gives it back, cancelling what had not started. A pool's threads wait ``IDLE``
seconds for more work and then exit, so no thread outlives a burst of calls by more than that.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
from queue import Empty, SimpleQueue
from typing import Any, Callable

IDLE = 0.5  # seconds an idle worker waits for more work before it exits
KEEP = 4  # pools kept per (workers, name) for later calls


class WarmPool(Executor):
    """A bounded thread pool whose workers exit after ``IDLE`` seconds without work."""

    def __init__(self, max_workers: int, name: str):
        self.max_workers = max_workers
        self.name = name
        self._queue: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # alive workers
        self._idle = 0  # workers waiting for work
        self._pending = 0  # submitted, not yet taken by a worker

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            self._pending += 1
            self._queue.put((future, fn, args, kwargs))
            start = self._pending > self._idle and self._threads < self.max_workers
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._work, name=f"xcs-{self.name}", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                future, fn, args, kwargs = self._queue.get(timeout=IDLE)
            except Empty:
                with self._lock:
                    self._idle -= 1
                    if self._pending == 0:  # nothing arrived meanwhile: this worker is done
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)
                del exc
            else:
                future.set_result(result)
            del future, fn, args, kwargs

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Give the pool back for the next call; with ``cancel_futures`` nothing queued will start.
        Running work finishes in the background (``wait`` is accepted for the Executor protocol)."""
        if cancel_futures:
            while True:
                with self._lock:
                    try:
                        future, *_ = self._queue.get_nowait()
                    except Empty:
                        break
                    self._pending -= 1
                future.cancel()
        with self._lock:
            busy = self._pending or self._idle < self._threads
        if busy:  # work left running in the background: the next call gets a fresh pool
            return
        with _FREE_LOCK:
            free = _FREE.setdefault((self.max_workers, self.name), [])
            if len(free) < KEEP and self not in free:
                free.append(self)


_FREE: dict[tuple[int, str], list[WarmPool]] = {}
_FREE_LOCK = threading.Lock()


def checkout(workers: int, name: str) -> WarmPool:
    """A pool of at most ``workers`` threads for one call: a warm one when a recent call left one."""
    with _FREE_LOCK:
        free = _FREE.get((workers, name))
        if free:
            return free.pop()
    return WarmPool(workers, name)
