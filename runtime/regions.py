"""Run-time support for map regions: ``map_each`` runs a plan's per-element function over a sequence.

Elements run on the per-element runner (``runtime.pool.run_each``) under the current execution options
(``sequential`` and ``topological`` run them one at a time, in order); results keep the input order;
the first failure (by index) raises once every element before it has ended (eager ran them before the
failing one), and elements after it that have not started never start. Nor do they once the call the region runs in has ended: an abandoned region starts nothing more.
An element whose function returns ``SKIP`` (a filter's condition was false) is left out of the result.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from typing import Any, Callable, Iterable

from xcs.runtime.executor import CALL
from xcs.runtime.pool import run_each, worker_bound


class Skip:
    """What a filter's per-element function returns for an element it leaves out."""

    def __repr__(self) -> str:
        return "SKIP"


SKIP = Skip()


def map_each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``[fn(item) for item in items]``, with the items running concurrently."""
    items = list(items)
    out: list[Any] = [None] * len(items)
    errors: dict[int, BaseException] = {}
    ended, first = [False] * len(items), [len(items)]  # first: the failed element with the lowest index
    stop, change = threading.Event(), threading.Condition()
    frame = CALL.get()  # the call this region runs in

    def element(i: int) -> None:
        try:
            if i > first[0]:
                return  # an element before it failed: eager never reached it
            if frame is not None and frame[0].stop.is_set():
                raise CancelledError("the call this map region runs in has ended: no element starts")
            out[i] = fn(items[i])
        except BaseException as exc:
            with change:
                errors[i], first[0] = exc, min(first[0], i)
            stop.set()
        finally:
            with change:
                ended[i] = True
                change.notify_all()

    run_each(element, len(items), worker_bound(len(items)), stop, "map")
    if errors:  # the runner hands indices out in order: every element before the failure has started
        with change:
            change.wait_for(lambda: all(ended[:first[0]]))
            raise errors[first[0]]
    return [v for v in out if v is not SKIP]
