"""``Collected``: what a plan's call or a batch returns under ``on_error="collect"``, and its ``Failure``.

A failure does not stop the call: what needs a failed step is skipped, everything else still runs.
``Collected`` is a read-only mapping of the output when it could be computed (empty otherwise), so code
written for the plain output keeps working, plus every result, the failures and the skipped steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xcs.runtime.errors import ElementError, StepError, TimeoutError


@dataclass(frozen=True)
class Failure:
    """One failure: ``step`` (a step's name, or a batch element's index), the exception it raised, and
    where: a step's ``file:line`` and source line, or an element's batched ``inputs`` and its batch."""

    step: str | int
    error: BaseException
    location: str = ""
    source: str = ""
    inputs: Mapping[str, Any] | None = None
    batch: str = ""

    def exception(self) -> BaseException:
        """The error ``on_error="raise"`` would have raised for this failure."""
        if isinstance(self.error, TimeoutError):
            return self.error
        if isinstance(self.step, int):
            return ElementError(self.batch or "batch", self.step, self.inputs or {}, self.error)
        return StepError(self.step, self.location, self.source, self.error)

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        name = f"element {self.step}" if isinstance(self.step, int) else self.step
        return f"{name}{where}: {type(self.error).__name__}: {self.error}"


class Collected(Mapping[str, Any]):
    """``output``: the output, or ``None`` when a step it needs failed or was skipped (a batch's
    ``{key: [value per element]}``, ``None`` where an element failed); ``results``: per finished step its
    result (a batch: per element its output or ``None``); ``failures``: steps in the order they failed,
    elements by index; ``skipped``: the steps a failure (or the timeout) kept from running."""

    __slots__ = ("output", "results", "failures", "skipped")

    def __init__(self, output: Any, results: Any, failures: tuple[Failure, ...] = (), skipped: tuple[str, ...] = ()):
        self.output = output
        self.results = dict(results) if isinstance(results, Mapping) else list(results)
        self.failures = tuple(failures)
        self.skipped = tuple(skipped)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed(self) -> tuple[str | int, ...]:
        return tuple(f.step for f in self.failures)

    @property
    def succeeded(self) -> tuple[str | int, ...]:
        if isinstance(self.results, dict):
            return tuple(self.results)
        bad = set(self.failed)
        return tuple(i for i in range(len(self.results)) if i not in bad)

    def raise_first(self) -> None:
        """Raise the first failure as ``on_error="raise"`` would (chained to the original)."""
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
        failed = [str(f) for f in self.failures]
        return f"Collected(output={self.output!r}, failures={failed!r}, skipped={list(self.skipped)!r})"
