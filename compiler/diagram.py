"""The shape of a compiled plan (steps, waves, width, critical path) and its picture as Mermaid text.

Both read only the runtime's ``Plan`` contract (step names and dependencies), so they describe a plan
read back from the disk cache as well as one just captured. ``mermaid`` is deterministic: steps in plan
order, one subgraph per wave, the critical path's edges drawn thick.
"""

from __future__ import annotations

from dataclasses import dataclass

from xcs.compiler import analysis
from xcs.runtime.plan import Plan


@dataclass(frozen=True)
class Shape:
    """How many steps a plan has, how they group into waves, and its longest dependency chain."""

    steps: int
    waves: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]

    @property
    def width(self) -> int:
        return max((len(w) for w in self.waves), default=0)

    def __str__(self) -> str:
        text = f"{plural(self.steps, 'step')}, {plural(len(self.waves), 'wave')}, width {self.width}"
        if self.critical_path:
            text += f"; critical path: {' -> '.join(self.critical_path)} ({plural(len(self.critical_path), 'step')})"
        return text


def plural(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def dependencies(plan: Plan) -> dict[str, tuple[str, ...]]:
    """``{step: the steps it reads}``, in plan order."""
    return {step.name: tuple(plan.steps[d].name for d in step.deps) for step in plan.steps}


def shape(plan: Plan) -> Shape:
    deps = dependencies(plan)
    path, _ = analysis.critical_path(deps, {})
    return Shape(len(deps), analysis.waves(deps), path)


def mermaid(plan: Plan, title: str = "") -> str:
    """A Mermaid ``flowchart`` of the plan: inputs, one subgraph per wave, the output."""
    deps = dependencies(plan)
    path = shape(plan).critical_path
    critical = set(zip(path, path[1:]))
    lines = ["flowchart LR"]
    if title:
        lines.insert(0, f"---\ntitle: {title}\n---")
    lines.append("    inputs([inputs])")
    for k, wave in enumerate(analysis.waves(deps)):
        lines.append(f"    subgraph wave{k}[wave {k}]")
        lines.extend(f"        {name}[{name}]" for name in wave)
        lines.append("    end")
    lines.append("    output([output])")
    links = []
    for name, row in deps.items():
        if not row:
            links.append(f"    inputs --> {name}")
        links.extend(f"    {dep} {'==>' if (dep, name) in critical else '-->'} {name}" for dep in row)
    read = {dep for row in deps.values() for dep in row}
    out = [plan.steps[d].name for d in plan.output.deps] or [n for n in deps if n not in read]
    links.extend(f"    {name} --> output" for name in out)
    if not deps:
        links.append("    inputs --> output")
    return "\n".join(lines + links) + "\n"
