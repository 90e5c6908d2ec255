"""Schedulers: named configurations of the one executor (``runtime.executor``), not a class tower.

A ``Scheduler`` is a name, a mode and an optional worker bound. The modes are:

- ``sequential``: call the plan's straight-line ``run``; no pool.
- ``topological``: run the steps one at a time in dependency order, in the calling thread.
- ``wave``: run every step of a wave concurrently in a thread pool, then the next wave.
- ``parallel``: dataflow firing; a step is submitted the moment all its dependencies have finished.
- ``auto``: ``parallel`` for a plan with more than one step in some wave, else ``sequential``.

``SCHEDULERS`` is the registry of the built-in names; ``create_scheduler`` looks a name up and applies
options to it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

from runtime.errors import SchedulerError

MODES = ("auto", "sequential", "topological", "wave", "parallel")


def check_max_workers(value: Any) -> None:
    """Raise ``SchedulerError`` unless ``value`` is None or a positive int."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchedulerError(f"max_workers must be a positive int or None, got {value!r}")



@dataclass(frozen=True)
class Scheduler:
    """How the executor runs a plan: ``mode`` (one of ``MODES``) with at most ``max_workers`` threads."""

    name: str
    mode: str
    max_workers: int | None = None  # None: one thread per step, at most 32

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SchedulerError(
                f"scheduler {self.name!r}: unknown mode {self.mode!r}; valid modes: {', '.join(MODES)}"
            )
        check_max_workers(self.max_workers)


SCHEDULERS: dict[str, Scheduler] = {mode: Scheduler(mode, mode) for mode in MODES}


def lookup_scheduler(name: Any) -> Scheduler:
    """The registered scheduler called ``name``; unknown names raise, listing the valid ones."""
    try:
        return SCHEDULERS[name]
    except (KeyError, TypeError):
        pass
    valid = ", ".join(sorted(SCHEDULERS))
    close = difflib.get_close_matches(name, SCHEDULERS, n=1) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SchedulerError(f"unknown scheduler {name!r}{hint}; valid schedulers: {valid}")


def create_scheduler(name: str, **options: Any) -> Scheduler:
    """The scheduler registered as ``name``, configured by ``options`` (only ``max_workers`` so far)."""
    scheduler = lookup_scheduler(name)
    unknown = sorted(set(options) - {"max_workers"})
    if unknown:
        raise SchedulerError(
            f"unknown scheduler option {unknown[0]!r} for {name!r}; valid options: max_workers"
        )
    return replace(scheduler, **options) if options else scheduler
