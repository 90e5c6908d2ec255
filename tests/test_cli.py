"""``xcs dump`` prints exactly the plan file's text; ``xcs run`` runs eager and compiled."""

from __future__ import annotations

import os

import pytest

from xcs.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENSEMBLE = "examples/ensemble.py:Ensemble"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_dump_prints_the_plan_file(capsys, plan_snapshot):
    assert main(["dump", ENSEMBLE, "--init", "[3]", "--input", '{"query": "hi"}']) == 0
    printed = capsys.readouterr().out
    assert printed == plan_snapshot
    assert main(["run", ENSEMBLE, "--init", "[3]", "--input", '{"query": "hi"}']) == 0
    report = capsys.readouterr().out
    path = report.split("plan file:", 1)[1].split("\n", 1)[0].strip()
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == printed


def test_run_prints_times_and_result(capsys):
    assert main(["run", ENSEMBLE, "--init", '{"n": 2}', "--input", '{"query": "x"}', "--scheduler", "parallel"]) == 0
    out = capsys.readouterr().out
    assert "eager:" in out and "compiled:" in out and '"final": "m0:x | m1:x"' in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dump", "examples/ensemble.py", "--input", "{}"], "target must look like FILE.py:NAME"),
        (["dump", "nope.py:X", "--input", "{}"], "no such file: nope.py"),
        (["dump", "examples/ensemble.py:Nope", "--input", "{}"], "defines no 'Nope'"),
        (["dump", ENSEMBLE, "--init", "[3]", "--input", "[1]"], "--input must be a JSON object"),
        (["dump", ENSEMBLE, "--init", "[3]", "--input", "{oops"], "--input is not valid JSON"),
    ],
)
def test_bad_arguments(argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert message in str(info.value)


def test_a_missing_input_key_is_reported_before_anything_runs(capsys):
    assert main(["dump", ENSEMBLE, "--init", "[2]", "--input", '{"q": "hi"}']) == 1
    err = capsys.readouterr().err
    assert "InputKeyError: Ensemble: missing input key 'query' (inputs have: 'q')" in err
