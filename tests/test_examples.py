"""The examples: their plans equal the committed snapshots, and compiled runs equal eager runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from examples.ensemble import Ensemble
from xcs import dump, execution_options
from xcs.operator import check_output

SCHEDULERS = ["sequential", "topological", "wave", "parallel"]


def eager(op, inputs):
    return check_output(op, type(op).forward(op, inputs=inputs))


def test_ensemble_plan_snapshot(plan_snapshot):
    assert dump(Ensemble(3), {"query": "hi"}) == plan_snapshot


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_ensemble_equals_eager(scheduler):
    op = Ensemble(4)
    with execution_options(scheduler=scheduler):
        for query in ("hi", "a different query", ""):
            assert op(inputs={"query": query}) == eager(op, {"query": query})


EXAMPLES = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("how", ["script", "module"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_runs_both_ways_and_reports_eager_vs_compiled(name, how, tmp_path):
    root = Path(__file__).resolve().parent.parent
    argv = [str(root / "examples" / f"{name}.py")] if how == "script" else ["-m", f"examples.{name}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHONPATH"))}
    env["XCS_CACHE_DIR"] = str(tmp_path / "cache")
    ran = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path if how == "script" else root, env=env, capture_output=True,
        text=True, timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    for line in ("plan:          ", "eager warm:", "compiled warm:", "(median of "):
        assert line in ran.stdout
    assert not re.search(r"\b1 (answers|steps|waves|calls)\b", ran.stdout)
    if name == "numeric_rerank":
        each_answer_once_best_first(ran.stdout)


def each_answer_once_best_first(out: str) -> None:
    """numeric_rerank lists each distinct answer once (with the samplers that gave it), best first."""
    for block in out.split("Q: ")[1:3]:
        rows = [line for line in block.splitlines() if line.startswith("   ") and "(sampler" in line]
        scores = [float(row.split()[0]) for row in rows]
        texts = [row.split("  ", 2)[-1].rsplit("  (", 1)[0] for row in rows]
        assert rows and scores == sorted(scores, reverse=True) and len(texts) == len(set(texts))
