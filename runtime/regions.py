"""Run-time support for map regions: ``map_each`` runs a plan's per-element function over a sequence.

Elements run concurrently under the current execution options (``sequential`` and ``topological`` run
them one at a time, in order); results keep the input order; the first failure raises after the
elements already running finish, and elements not yet started never start. Nor do they once the call
the region runs in has ended (failed, timed out, cancelled): an abandoned region starts nothing more.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import FIRST_EXCEPTION, CancelledError, wait
from typing import Any, Callable, Iterable

from xcs.runtime.executor import call_stopped
from xcs.runtime.options import current_options
from xcs.runtime.pool import checkout
from xcs.runtime.schedulers import resolve

DEFAULT_MAX_WORKERS = 32


def map_each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``[fn(item) for item in items]``, with the items running concurrently."""
    items = list(items)
    options = current_options()
    scheduler = resolve(options.scheduler)
    if len(items) <= 1 or scheduler.mode in ("sequential", "topological"):
        return [_element(fn, item) for item in items]
    workers = options.max_workers or scheduler.max_workers or min(len(items), DEFAULT_MAX_WORKERS)
    pool = checkout(workers, "map")
    try:
        futures = [pool.submit(contextvars.copy_context().run, _element, fn, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _element(fn: Callable[[Any], Any], item: Any) -> Any:
    if call_stopped():
        raise CancelledError("the call this map region runs in has ended: no element starts")
    return fn(item)
