"""Execution options (``execution_options``): the scheduler, its thread bound, time limits, what a
failure does, progress and run records; docs/schedulers.md says what each means.

The active ``ExecutionOptions`` live in a ``contextvars.ContextVar``: a block applies to the current
thread or asyncio task only, overrides only the options it names, and is undone when it exits. Every
option is checked when the block is entered (``SchedulerError``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from xcs.runtime.errors import SchedulerError
from xcs.runtime.schedulers import Scheduler, check_max_workers, resolve


@dataclass(frozen=True)
class ExecutionOptions:
    """The settings the executor reads for one call. A nested plan (a jitted operator called by a step)
    shares its top-level call's record and thread budget; ``timeout``, ``step_timeout``, ``on_error``
    and ``progress`` apply to the top-level call only. ``on_recompile_limit`` is what a jitted operator
    does with a new signature past its ``recompile_limit``."""

    scheduler: str | Scheduler = "auto"
    max_workers: int | None = None  # overrides the scheduler's own bound
    timeout: float | None = None  # seconds for the whole call
    step_timeout: float | None = None  # seconds for each step
    on_error: str = "raise"  # or "collect": the call returns a ``runtime.outcome.Collected``
    progress: bool = False
    record: bool | Callable[[Any], Any] = False  # a ``RunRecord`` per call (``last_run()``); a callable gets it
    on_recompile_limit: str = "warn"  # or "raise", "eager"
    plain: bool = dataclasses.field(default=True, init=False, repr=False, compare=False)  # set below

    def __post_init__(self) -> None:
        resolve(self.scheduler)
        check_max_workers(self.max_workers)
        for name in ("timeout", "step_timeout"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf):
                raise SchedulerError(f"{name} must be a positive number of seconds or None, got {value!r}")
        if self.on_error not in ("raise", "collect"):
            raise SchedulerError(f"on_error must be 'raise' or 'collect', got {self.on_error!r}")
        if not isinstance(self.progress, bool):
            raise SchedulerError(f"progress must be True or False, got {self.progress!r}")
        if not (isinstance(self.record, bool) or callable(self.record)):
            raise SchedulerError(f"record must be True, False or a callable, got {self.record!r}")
        if self.on_recompile_limit not in ("warn", "raise", "eager"):
            raise SchedulerError(f"on_recompile_limit must be one of 'warn', 'raise', 'eager', got {self.on_recompile_limit!r}")
        plain = (
            self.timeout is None and self.step_timeout is None and self.on_error == "raise"
            and not self.progress and self.record is False
        )
        object.__setattr__(self, "plain", plain)  # nothing beyond scheduling: the executor's fast path


_CURRENT: contextvars.ContextVar[ExecutionOptions] = contextvars.ContextVar(
    "xcs_execution_options", default=ExecutionOptions()
)


def current_options() -> ExecutionOptions:
    return _CURRENT.get()


@contextlib.contextmanager
def execution_options(**changes: Any) -> Iterator[ExecutionOptions]:
    """``with execution_options(scheduler="wave", max_workers=4): ...``; yields the new options."""
    valid = [f.name for f in dataclasses.fields(ExecutionOptions) if f.init]
    for name in changes:
        if name not in valid:
            raise SchedulerError(f"unknown execution option {name!r}; valid options: {', '.join(valid)}")
    token = _CURRENT.set(dataclasses.replace(_CURRENT.get(), **changes))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
