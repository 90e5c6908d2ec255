"""Run records (``execution_options(record=True)``, ``last_run()``) and the text progress bar.

A ``RunRecord`` is one top-level call: its plan, scheduler, status, duration and a ``StepRecord`` per
step, nested plans' steps included (times in seconds since the call started; the step statuses are
listed in docs/schedulers.md). ``last_run()`` is per thread or asyncio task (a ``ContextVar``).
"""

from __future__ import annotations

import contextvars
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StepRecord:
    """One step of a call: times in seconds since the call started (``None``: never started/ended)."""

    plan: str
    name: str
    index: int
    status: str
    start: float | None = None
    end: float | None = None
    worker: str = ""  # the thread's name, or "asyncio" for a step awaited on the event loop
    error: str = ""
    depth: int = 0  # 0: the called plan; 1: a plan called by one of its steps; ...

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass(frozen=True)
class RunRecord:
    """One top-level call: ``status`` is ``ok``, ``failed``, ``timeout`` or ``interrupted``."""

    plan: str
    scheduler: str
    status: str
    duration: float
    steps: tuple[StepRecord, ...]
    error: str = ""

    def step(self, name: str, plan: str | None = None) -> StepRecord:
        """The record of the step called ``name`` (of the top-level plan unless ``plan`` is given)."""
        for record in self.steps:
            if record.name == name and (record.plan == plan if plan else record.depth == 0):
                return record
        raise KeyError(name)

    def format(self) -> str:
        """A text table: one line per step, in start order."""
        rows = sorted(self.steps, key=lambda r: (r.start is None, r.start or 0.0, r.depth, r.index))
        lines = [f"{self.plan}  scheduler={self.scheduler}  status={self.status}  {self.duration * 1e3:.2f} ms"]
        lines.append(f"  {'step':<28} {'status':<10} {'start ms':>9} {'end ms':>9} {'dur ms':>8}  worker")
        for r in rows:
            start = "" if r.start is None else f"{r.start * 1e3:.2f}"
            end = "" if r.end is None else f"{r.end * 1e3:.2f}"
            dur = "" if r.duration is None else f"{r.duration * 1e3:.2f}"
            name = ("  " * r.depth + (f"{r.plan}." if r.depth else "") + r.name)[:28]
            lines.append(f"  {name:<28} {r.status:<10} {start:>9} {end:>9} {dur:>8}  {r.worker}")
        return "\n".join(lines)


LAST_RUN: contextvars.ContextVar[RunRecord | None] = contextvars.ContextVar("xcs_last_run", default=None)


def last_run() -> RunRecord | None:
    """The record of the last call made with ``record`` on by this thread or asyncio task."""
    return LAST_RUN.get()


class Progress:
    """A one-line text progress bar on stderr, redrawn at most every 0.1 s:
    ``Plan [#####-----] 12/32 steps 1.2s``."""

    WIDTH = 24

    def __init__(self, name: str, total: int):
        self.name, self.total, self.done, self.drawn = name, total, 0, -1.0
        self.stream, self.started = sys.stderr, time.perf_counter()

    def advance(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self.drawn >= 0.1:
            self.draw(now)

    def draw(self, now: float, end: str = "") -> None:
        self.drawn = now
        filled = min(self.WIDTH, self.WIDTH * self.done // max(self.total, 1))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        try:  # a closed stream never fails the call
            self.stream.write(f"\r{self.name} [{bar}] {self.done}/{self.total} steps {now - self.started:.1f}s{end}")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self, status: str = "") -> None:
        self.draw(time.perf_counter(), f" {status}\n" if status and status != "ok" else "\n")


def describe(error: BaseException | None) -> str:
    return "" if error is None else f"{type(error).__name__}: {error}"
