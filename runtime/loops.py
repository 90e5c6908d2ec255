"""Run-time support for loop regions: ``together`` runs the independent steps of one iteration at once;
``proceed`` stops a loop whose call has ended (a timeout, a failed sibling) before its next iteration.

A plan writes a loop on runtime data as a real ``while``/``for`` loop around a function of one
iteration (``compiler.codegen``); inside it, steps that do not depend on each other (and are neither
effects nor reads of state) form one group, which ``together`` runs on the map-region runner
(``runtime.batching.map_each``): concurrently under the concurrent schedulers, in order under
``sequential``; the first failure (in program order) is raised.
"""

from __future__ import annotations

from concurrent.futures import CancelledError
from typing import Any, Callable

from xcs.runtime.executor import CALL
from xcs.runtime.batching import map_each


def _run(step: Callable[[], Any]) -> Any:
    return step()


def together(*steps: Callable[[], Any]) -> tuple:
    """The results of ``steps`` (functions of no argument), run concurrently, in order."""
    return tuple(map_each(_run, steps))



def proceed() -> None:
    """Before an iteration: raise ``CancelledError`` when the call the loop runs in has ended (no
    iteration starts after it, as no element of a map region does)."""
    frame = CALL.get()
    if frame is not None and frame[0].stop.is_set():
        raise CancelledError("the call this loop runs in has ended: no iteration starts")
