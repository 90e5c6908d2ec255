"""Execution options: which scheduler runs a plan, how many threads it may use, time limits, what a
failure does, and whether the call shows progress or keeps a run record.

The active ``ExecutionOptions`` live in a ``contextvars.ContextVar``, so ``execution_options(...)``
applies to the current thread or asyncio task only and is restored when its block exits, also on an
exception. Nested blocks override only the options they name. Every option is checked when the block
is entered; a bad name or value raises ``SchedulerError``.
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
    """The settings the executor reads for one call.

    - ``scheduler``: a registered name or a ``Scheduler``.
    - ``max_workers``: when set, overrides the scheduler's own bound on threads.
    - ``timeout``: seconds for the whole call; ``step_timeout``: seconds for each step. Running out
      raises ``runtime.errors.TimeoutError`` naming the steps still running. Async steps are cancelled;
      a blocking sync step cannot be pre-empted: the call returns on time and the step finishes in the
      background, its result dropped.
    - ``on_error``: ``"raise"`` (the first failure raises ``StepError``) or ``"collect"`` (the call
      returns a ``runtime.outcome.Collected``: the output when it could be computed, every step result
      and a list of ``Failure``).
    - ``progress``: draw a progress bar (steps done/total) on stderr.
    - ``record``: keep a ``RunRecord`` of each call (per step: start, end, worker, status), read back
      with ``runtime.record.last_run()``; a callable is also called with each record.
    - ``on_recompile_limit``: what a jitted operator does with a new input signature once it has more
      than its ``recompile_limit`` (``jit`` option): ``"warn"`` (compile, with a warning showing how the
      signature differs from the closest cached one), ``"raise"`` (``RecompileLimitError``) or
      ``"eager"`` (run that signature eagerly, without capturing).

    Nested plans (a jitted operator called by a step) share the outer call's record and thread budget;
    ``timeout``, ``step_timeout``, ``on_error`` and ``progress`` apply to the outermost call only.
    """

    scheduler: str | Scheduler = "auto"
    max_workers: int | None = None
    timeout: float | None = None
    step_timeout: float | None = None
    on_error: str = "raise"
    progress: bool = False
    record: bool | Callable[[Any], Any] = False
    on_recompile_limit: str = "warn"  # a jitted operator past its recompile_limit: "warn", "raise" or "eager"

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

    plain: bool = dataclasses.field(default=True, init=False, repr=False, compare=False)

    def updated(self, **changes: Any) -> ExecutionOptions:
        """A copy with ``changes`` applied; unknown names or invalid values raise ``SchedulerError``."""
        valid = [f.name for f in dataclasses.fields(self) if f.init]
        for name in changes:
            if name not in valid:
                raise SchedulerError(
                    f"unknown execution option {name!r}; valid options: {', '.join(valid)}"
                )
        return dataclasses.replace(self, **changes)


_CURRENT: contextvars.ContextVar[ExecutionOptions] = contextvars.ContextVar(
    "xcs_execution_options", default=ExecutionOptions()
)


def current_options() -> ExecutionOptions:
    """The options in effect in this thread or task."""
    return _CURRENT.get()


@contextlib.contextmanager
def execution_options(**changes: Any) -> Iterator[ExecutionOptions]:
    """Run the block under the current options updated with ``changes``; yields the new options.

    ``with execution_options(scheduler="wave", max_workers=4): ...``
    """
    token = _CURRENT.set(_CURRENT.get().updated(**changes))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
