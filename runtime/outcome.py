"""What a call under ``execution_options(on_error="collect")`` returns: ``Collected``.

A step that fails does not stop the call: steps that need its result are skipped, every other step
still runs, and the call returns a ``Collected``. It is a read-only mapping of the call's output when
the output could be computed (empty otherwise), so code written for the plain output keeps working,
plus the detail: every step's result, the failures and the skipped steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xcs.runtime.errors import StepError, TimeoutError


@dataclass(frozen=True)
class StepFailure:
    """One failed step: its name, the user's ``file:line`` and source line, and the exception it raised
    (a ``runtime.errors.TimeoutError`` when it ran out of ``step_timeout`` or the call's ``timeout``)."""

    step: str
    location: str
    source: str
    error: BaseException

    def exception(self) -> BaseException:
        """The error a call under ``on_error="raise"`` would have raised for this failure."""
        if isinstance(self.error, TimeoutError):
            return self.error
        error = StepError(self.step, self.location, self.source, self.error)
        error.__cause__ = self.error
        return error

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.step}{where}: {type(self.error).__name__}: {self.error}"


class Collected(Mapping[str, Any]):
    """The outcome of a call under ``on_error="collect"``.

    - as a mapping: the call's output when it was computed, else empty;
    - ``output``: that output, or ``None`` when a step it needs failed or was skipped;
    - ``results``: ``{step name: result}`` for every step that finished;
    - ``failures``: a tuple of ``StepFailure`` in the order the failures happened;
    - ``skipped``: the steps that never ran because a step they need failed (or time ran out);
    - ``ok``: no failures; ``raise_first()`` raises the first failure as ``on_error="raise"`` would.
    """

    __slots__ = ("output", "results", "failures", "skipped")

    def __init__(
        self,
        output: Any,
        results: Mapping[str, Any],
        failures: tuple[StepFailure, ...] = (),
        skipped: tuple[str, ...] = (),
    ):
        self.output = output
        self.results = dict(results)
        self.failures = tuple(failures)
        self.skipped = tuple(skipped)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_first(self) -> None:
        """Raise the first failure (``StepError`` chained to the original, or ``TimeoutError``)."""
        if self.failures:
            error = self.failures[0].exception()
            raise error from error.__cause__

    def _mapping(self) -> Mapping[str, Any]:
        return self.output if isinstance(self.output, Mapping) else {}

    def __getitem__(self, key: str) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        failed = ", ".join(str(f) for f in self.failures) or "none"
        return f"Collected(output={self.output!r}, failures=[{failed}], skipped={list(self.skipped)!r})"
