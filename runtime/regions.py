"""Run-time support for map regions: ``map_each`` runs a plan's per-element function over a sequence.

Elements run on the per-element runner (``runtime.pool.run_each``) under the current execution options
(``sequential`` and ``topological`` run them one at a time, in order); results keep the input order;
the first failure (by index) raises once no element is starting, and elements not yet started never
start. Nor do they once the call the region runs in has ended: an abandoned region starts nothing more.
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
    stop = threading.Event()
    frame = CALL.get()  # the call this region runs in

    def element(i: int) -> None:
        try:
            if frame is not None and frame[0].stop.is_set():
                raise CancelledError("the call this map region runs in has ended: no element starts")
            out[i] = fn(items[i])
        except BaseException as exc:
            errors[i] = exc
            stop.set()

    run_each(element, len(items), worker_bound(len(items)), stop, "map")
    if errors:
        raise errors[min(errors)]
    return [v for v in out if v is not SKIP]
