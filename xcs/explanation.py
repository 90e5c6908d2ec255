"""``xcs.explain`` (defined here) and ``xcs explain``: how an operator compiles for an input signature,
and why.

Explaining runs nothing unless asked: it applies the capture rule of the operator's mode
(``compiler.capture``) to the inputs' signature and reports the strategy chosen, every graph break met
on the way (code, location, hint), the passes applied, and a summary of the graph (steps, waves, width,
critical path). With ``run=True`` a program only the trace can capture is traced (its operators run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from xcs.compiler import analysis
from xcs.compiler.breaks import Break
from xcs.compiler.codegen import step_dependencies
from xcs.compiler.diagram import plural
from xcs.compiler.numeric import Report, fuse
from xcs.compiler.signature import Signature
from xcs.plans import config_of


UNKNOWN = "not known without running the call"


@dataclass(frozen=True)
class Explanation:
    operator: str
    signature: str
    mode: str
    strategy: str  # enhanced, structural, trace, eager, or UNKNOWN (only running the call can tell)
    breaks: tuple[tuple[str, Break], ...] = ()
    opaque: tuple[Break, ...] = ()  # statements that run natively, each one step (a break costs one statement)
    passes: tuple[tuple[str, str], ...] = ()
    steps: int = 0
    waves: int = 0
    width: int = 0
    critical_path: tuple[str, ...] = ()
    regions: dict = field(default_factory=dict)
    numeric: Report = Report()  # numeric segments (numba kernels) and why other steps are left out

    def __str__(self) -> str:
        lines = [f"{self.operator}   inputs {self.signature}   mode: {self.mode}", f"strategy: {self.strategy}"]
        if self.strategy == UNKNOWN:
            lines.append(
                "  the static strategies cannot capture this call and the trace would have to run it to see "
                "its path: the first call traces it (a plan for the path it takes, guarded) or, if the "
                "trace breaks too, runs eagerly. xcs explain --run (explain(..., run=True)) runs it to tell."
            )
        if self.breaks:
            lines.append("breaks:")
            for strategy, brk in self.breaks:
                where = f" {brk.loc}" if brk.loc.file else ""
                lines.append(f"  {strategy:<10} [{brk.code}]{where}: {brk.reason}")
                if brk.loc.text:
                    lines.append(f"             {brk.loc.text}")
                lines.append(f"             hint: {brk.hint}")
        else:
            lines.append("breaks: none")
        if self.opaque:
            lines.append("opaque statements (each runs as written, as one step):")
            for brk in self.opaque:
                lines.append(f"  [{brk.code}] {brk.loc}: {brk.reason}")
                if brk.loc.text:
                    lines.append(f"             {brk.loc.text}")
                lines.append(f"             hint: {brk.hint}")
        if self.strategy not in ("eager", UNKNOWN):
            regions = ", ".join(plural(n, k[:-1]) for k, n in sorted(self.regions.items()) if n)
            lines.append(
                f"graph: {plural(self.steps, 'step')}, {plural(self.waves, 'wave')}, width {self.width}"
                + (f"; regions: {regions}" if regions else "")
            )
            if self.critical_path:
                lines.append(f"critical path: {' -> '.join(self.critical_path)} ({plural(len(self.critical_path), 'step')})")
        for name, summary in self.passes:
            lines.append(f"pass {name}: {summary or 'no change'}")
        if self.numeric.segments or self.numeric.left_out:
            lines.append("numeric segments (one numba kernel each):" if self.numeric.segments else "numeric segments: none")
            lines += self.numeric.lines()
        return "\n".join(lines) + "\n"


def explain(op: Any, inputs: Mapping[str, Any], *, run: bool = False) -> Explanation:
    """How ``op`` compiles for ``inputs``' signature (nothing runs unless ``run=True``)."""
    config = config_of(op, "explain expects")
    label = config.label(op)
    cap = config.graph_of(op, inputs, label, run=run)
    strategy = UNKNOWN if cap.strategy == "none" else cap.strategy
    base = dict(
        operator=label, signature=Signature.of(inputs).text, mode=config.mode, strategy=strategy,
        breaks=tuple(cap.breaks), opaque=tuple(cap.opaque), passes=tuple((a.name, a.summary) for a in cap.applied),
    )
    if cap.graph is None:
        return Explanation(**base)
    _, numeric = fuse(cap.graph, op, Signature.of(inputs), config.is_operator)
    deps = step_dependencies(cap.graph)
    waves = analysis.waves(deps) if deps else ()
    path, _ = analysis.critical_path(deps, {name: 1.0 for name in deps}) if deps else ((), 0.0)
    kinds = {"map regions": 0, "branch regions": 0, "loop regions": 0}
    for node in cap.graph.nodes:
        kind = type(node).__name__
        if kind == "MapRegion":
            kinds["map regions"] += 1
        elif kind == "Branch" and node.name in deps:
            kinds["branch regions"] += 1
        elif kind == "Loop":
            kinds["loop regions"] += 1
    return Explanation(
        **base, steps=len(deps), waves=len(waves), width=max((len(w) for w in waves), default=0),
        critical_path=tuple(path), regions=kinds, numeric=numeric,
    )
