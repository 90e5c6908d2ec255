"""The plan contract: the only thing the compiler hands the runtime (a generated module's ``PLAN``).

``steps`` are the operator calls in a topological order, each step's ``fn`` building its operator's inputs
from earlier results and calling it; ``output`` builds the final mapping; ``run`` is the straight-line
function for the sequential path. ``guard(ops, inputs)`` says whether the plan is valid for these input
values (trace plans are specialised to one control-flow path); ``required`` are the input keys it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Step:
    """One node the executor runs: ``fn(ops, inputs, *[results[d] for d in deps])``."""

    name: str
    fn: Callable[..., Any]
    deps: tuple[int, ...] = ()
    location: str = ""  # the user's "file:line"
    source: str = ""  # the user's source line, stripped


@dataclass(frozen=True)
class Plan:
    """A compiled execution plan for one operator and one input signature."""

    name: str
    steps: tuple[Step, ...]
    output: Step
    run: Callable[[Any, Mapping[str, Any]], Any]
    required: tuple[str, ...] = ()
    guard: Callable[[Any, Mapping[str, Any]], bool] | None = None
    width: int = 1  # the most steps in one wave; the "auto" scheduler runs a plan of width 1 sequentially
    lines: tuple[tuple[int, int], ...] = ()  # (first line of run's code for a step, its index; len(steps) = output)
    effects: tuple[int, ...] = ()  # steps that run user code with effects: run once, never probed
    source: str = field(default="", compare=False, repr=False)
    filename: str = field(default="", compare=False, repr=False)

    def step_at_line(self, lineno: int) -> Step | None:
        """The step whose generated code contains ``lineno`` of the plan file (for error reports)."""
        best = None
        for start, index in self.lines:
            if start <= lineno:
                best = self.steps[index] if index < len(self.steps) else self.output
        return best
