"""The one thread-pool mechanism: warm pools, and the per-element runner (``run_each``) built on them.

Starting threads costs milliseconds, which a fan-out of 50 ms steps notices, so the threads of one call
are reused by the next: ``checkout(workers, name)`` hands a call a ``WarmPool`` of its own (each keeps
its ``max_workers`` bound), ``shutdown`` gives it back. Threads idle for ``IDLE`` seconds exit.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Executor, Future
from queue import Empty, SimpleQueue
from typing import Any, Callable

from xcs.runtime.options import current_options
from xcs.runtime.schedulers import DEFAULT_MAX_WORKERS, resolve

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
        """Give the pool back (``cancel_futures``: nothing queued starts; ``wait`` is not needed)."""
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


def worker_bound(tasks: int, options: Any = None) -> int:
    """Threads for ``tasks`` concurrent tasks under ``options`` (default: the current ones):
    ``max_workers`` of the options, else of the scheduler, else one per task, at most ``DEFAULT_MAX_WORKERS``."""
    options = current_options() if options is None else options
    return options.max_workers or resolve(options.scheduler).max_workers or max(1, min(tasks, DEFAULT_MAX_WORKERS))


def run_each(task: Callable[[int], None], count: int, workers: int, stop: threading.Event, name: str = "batch") -> None:
    """The per-element runner of map regions, ``vmap``, ``pmap`` and meshes: ``task(0) .. task(count - 1)``
    under the current scheduler, at most ``workers`` at once, each recording its own outcome.

    ``sequential`` / ``topological`` (or one worker) run them in order in this thread; ``wave`` runs
    ``workers`` at a time, a group after another; other modes keep ``workers`` threads (in copies of this
    context) busy. A batch's (``name="batch"``) pool is the scheduler's executor when it has one, else a
    warm pool. Once ``stop`` is set no task starts and this returns, leaving running ones to finish.
    """
    scheduler = resolve(current_options().scheduler)
    mode = scheduler.mode
    if workers <= 1 or count <= 1 or mode in ("sequential", "topological"):
        for i in range(count):
            if stop.is_set():
                return
            task(i)
        return
    workers = min(workers, count)
    factory = scheduler.executor if name == "batch" else None
    pool = factory(workers) if factory is not None else checkout(workers, name)
    finished = False
    try:
        size = workers if mode == "wave" else count
        for lo in range(0, count, size):
            if stop.is_set() or not _run_group(pool, task, range(lo, min(lo + size, count)), workers, stop):
                break
        else:
            finished = True
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=finished, cancel_futures=not finished)


def _run_group(pool: Any, task: Callable[[int], None], indices: range, helpers: int, stop: threading.Event) -> bool:
    """``indices`` on ``helpers`` loops submitted to ``pool``; True when every loop ended."""
    helpers, it, lock, wake = min(helpers, len(indices)), iter(indices), threading.Lock(), threading.Event()
    left, crashed = [helpers], []

    def loop() -> None:
        try:
            while not stop.is_set():
                with lock:
                    i = next(it, None)
                if i is None:
                    break
                task(i)
        except BaseException as exc:  # a bug or an interrupt, not an element's failure: re-raised below
            crashed.append(exc)
            stop.set()
        finally:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last or stop.is_set():
                wake.set()

    for _ in range(helpers):
        pool.submit(contextvars.copy_context().run, loop)
    wake.wait()
    if crashed:
        raise crashed[0]
    return left[0] == 0
