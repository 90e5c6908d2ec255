"""Execution options: which scheduler runs a plan and how many threads it may use.

The active ``ExecutionOptions`` live in a ``contextvars.ContextVar``, so ``execution_options(...)``
applies to the current thread or asyncio task only and is restored when its block exits, also on an
exception. Nested blocks override only the options they name. Every option is checked when the block
is entered; a bad name or value raises ``SchedulerError``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from runtime.errors import SchedulerError
from runtime.schedulers import Scheduler, check_max_workers, lookup_scheduler


@dataclass(frozen=True)
class ExecutionOptions:
    """The settings the executor reads for one call.

    ``scheduler`` is a registered name or a ``Scheduler``; ``max_workers``, when set, overrides the
    scheduler's own bound.
    """

    scheduler: str | Scheduler = "auto"
    max_workers: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scheduler, Scheduler):
            lookup_scheduler(self.scheduler)
        check_max_workers(self.max_workers)

    def updated(self, **changes: Any) -> ExecutionOptions:
        """A copy with ``changes`` applied; unknown names or invalid values raise ``SchedulerError``."""
        valid = [f.name for f in dataclasses.fields(self)]
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
