"""Every Python block of README.md and docs/*.md runs as pasted (each pasted into a file and run by a
fresh interpreter from the repository root, with a private plan cache); every fenced block says what it holds (a language after
the fence); the README's Mermaid picture is the one the project draws for the ensemble."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)```(\S*)\n(.*?)^\1```\s*$", re.M | re.S)


def blocks(language: str) -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(2) == language:
                line = text.count("\n", 0, match.start()) + 1
                code = "\n".join(l[len(match.group(1)):] for l in match.group(3).splitlines())
                found.append((f"{doc.relative_to(ROOT)}:{line}", line, code))
    return found


PYTHON = blocks("python")


def test_there_are_python_blocks_in_every_user_doc():
    where = {name.split(":")[0] for name, _, _ in PYTHON}
    assert {"README.md", "docs/guide.md", "docs/schedulers.md", "docs/transforms.md", "docs/extending.md"} <= where


@pytest.mark.parametrize("where, line, code", PYTHON, ids=[name for name, _, _ in PYTHON])
def test_every_python_block_runs_as_pasted(where, line, code, tmp_path):
    script = tmp_path / "pasted.py"  # pasted into a file (capture reads the source, as from any module)
    script.write_text(code, encoding="utf-8")
    env = {"XCS_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    ran = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, f"{where} failed:\n{ran.stderr}"
    assert "Traceback" not in ran.stderr and "Warning" not in ran.stderr, ran.stderr


def test_every_fence_names_its_language():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        opened = False
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip().startswith("```"):
                if not opened:
                    assert line.strip() != "```", f"{doc.name}:{number}: a fence without a language (python, bash, text, ...)"
                opened = not opened


def test_the_readme_draws_the_plan_the_project_draws(tmp_path, monkeypatch):
    monkeypatch.setenv("XCS_CACHE_DIR", str(tmp_path))
    from examples.ensemble import Ensemble
    from xcs import mermaid

    drawn = [code for where, _, code in blocks("mermaid") if where.startswith("README.md")]
    assert drawn == [mermaid(Ensemble(3), {"query": "hi"}).rstrip("\n")]


def test_the_readme_figures_are_the_ones_the_benchmark_prints():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python benchmarks/bench_compare.py" in readme and (ROOT / "benchmarks" / "bench_compare.py").is_file()
