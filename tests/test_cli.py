"""``xcs dump`` prints exactly the plan file's text; ``xcs run`` runs eager and compiled."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

import xcs

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


def test_run_reports_cold_calls_warm_medians_and_the_plan_shape(capsys):
    argv = ["run", ENSEMBLE, "--init", '{"n": 2}', "--input", '{"query": "x"}', "--scheduler", "parallel", "--calls", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "plan:          3 steps, 2 waves, width 2; critical path: members_0 -> judge (2 steps)" in out
    for line in ("eager cold:", "compiled cold:", "speed-up:"):
        assert line in out
    assert "(median of 3 calls)" in out and "(median of 3 calls, scheduler=parallel)" in out
    assert '"final": "m0:x | m1:x"' in out


def test_run_names_the_endpoint_the_job_calls(tmp_path):
    argv = ["run", "examples/rag.py:RetrievalQA", "--input", '{"question": "Why is Mars red?"}', "--calls", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["XCS_CACHE_DIR"] = str(tmp_path)  # a process of its own: the embedded server's threads end with it
    ran = subprocess.run([sys.executable, "-m", "xcs", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"^endpoint:      http://127\.0\.0\.1:\d+/v1$", ran.stdout, re.M)


def one_error_line(capsys, argv, code=2):
    assert main(argv) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dump", "examples/ensemble.py", "--input", "{}"], "target must look like FILE.py:NAME"),
        (["dump", "nope.py:X", "--input", "{}"], "no such file: nope.py"),
        (["dump", "examples/ensemble.py:Nope", "--input", "{}"], "defines no 'Nope'; its targets: Ensemble, Judge, Member"),
        (["dump", ENSEMBLE, "--init", "[3]", "--input", "[1]"], "--input must be a JSON object"),
        (["dump", ENSEMBLE, "--init", "[3]", "--input", "{oops"], "--input is not valid JSON"),
        (["dump", ENSEMBLE, "--init", "[3", "--input", "{}"], "--init is not valid JSON"),
        (["dump", ENSEMBLE, "--input", "{}"], "Ensemble(n) cannot be built with no --init: TypeError"),
        (["dump", ENSEMBLE, "--init", "3", "--input", "{}"], "--init must be a JSON list (positional arguments) or object"),
        (["dump", ENSEMBLE, "--init", '{"m": 1}', "--input", "{}"], "unexpected keyword argument 'm'"),
        (["dump", "examples/ensemble.py:jit", "--input", "{}"], "jit is a function: expected an Operator class"),
        (["dump", "examples/ensemble.py:Member", "--init", '["a", "b"]', "--input", "{}"], "Member(name) cannot be built"),
    ],
)
def test_a_command_line_mistake_exits_2_with_one_line(capsys, argv, message):
    line = one_error_line(capsys, argv)
    assert line.startswith("xcs: ") and message in line


def test_debug_shows_the_traceback_instead(capsys):
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        try:
            main(["dump", ENSEMBLE, "--input", "{}", "--debug"])
        except Exception as exc:
            raise exc.__cause__ from None


def test_an_argument_mistake_is_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cache", "prune", "--max-bytes", "10X"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'10X' is not a size: expected a number of bytes, optionally with K, M or G" in err


def test_an_import_error_of_the_target_file_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    line = one_error_line(capsys, ["dump", f"{tmp_path}/broken.py:X", "--input", "{}"])
    assert "importing" in line and "ModuleNotFoundError: No module named 'no_such_module_here'" in line


def test_an_operator_error_exits_1_with_one_line(tmp_path, capsys):
    (tmp_path / "fails.py").write_text(textwrap.dedent("""
        from xcs import Operator

        class Fails(Operator):
            def forward(self, *, inputs):
                raise ValueError("the operator's own\\nerror")
    """))
    line = one_error_line(capsys, ["run", f"{tmp_path}/fails.py:Fails", "--input", "{}"], code=1)
    assert line == "xcs: ValueError: the operator's own error (--debug shows the traceback)"


def test_a_missing_input_key_is_reported_before_anything_runs(capsys):
    line = one_error_line(capsys, ["dump", ENSEMBLE, "--init", "[2]", "--input", '{"q": "hi"}'], code=1)
    assert "InputKeyError: Ensemble: missing input key 'query' (inputs have: 'q')" in line


def test_prune_takes_sizes_like_the_environment_variable(tmp_path, capsys, monkeypatch):
    assert main(["cache", "prune", "--dir", str(tmp_path), "--max-bytes", "10M"]) == 0
    monkeypatch.setenv("XCS_CACHE_MAX_BYTES", "10M")
    from xcs.compiler.disk_cache import max_bytes, parse_size

    assert max_bytes() == parse_size("10M") == 10 * 2**20 and parse_size("2G") == 2 * 2**30 and parse_size("512k") == 2**19


@pytest.mark.parametrize("stem", ["operator", "json"])
def test_a_user_file_named_like_a_stdlib_module_is_the_target(tmp_path, monkeypatch, capsys, stem):
    (tmp_path / f"{stem}.py").write_text(textwrap.dedent("""
        from xcs import Operator, jit

        @jit
        class Shout(Operator):
            def forward(self, *, inputs):
                return {"text": inputs["text"].upper()}
    """))
    monkeypatch.chdir(tmp_path)
    assert main(["run", f"{stem}.py:Shout", "--input", '{"text": "hi"}', "--calls", "1"]) == 0
    assert '"text": "HI"' in capsys.readouterr().out
    import json
    import operator

    assert callable(operator.itemgetter) and callable(json.dumps)  # the standard library is untouched


def test_dump_reads_the_disk_cache_like_a_call(fresh_plans, capsys):
    argv = ["dump", "--passes", ENSEMBLE, "--init", "[2]", "--input", '{"query": "hi"}']
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("# pass ")
    from xcs.compiler.driver import PLANS

    PLANS.clear()  # a new process: only the disk cache knows the plan
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert second.startswith("# no passes: the plan comes from the disk cache")
    plan = first[first.index("# ember-xcs plan"):]
    assert second.split("\n", 1)[1] == plan
    PLANS.clear()
    assert main(["run", ENSEMBLE, "--init", "[2]", "--input", '{"query": "hi"}', "--calls", "1"]) == 0
    assert "(first call: loaded from the disk cache)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--version"], ["cache", "info", "--json"]])
def test_python_dash_m_xcs_is_the_xcs_command(argv):
    ran = subprocess.run([sys.executable, "-m", "xcs", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    if argv == ["--version"]:
        assert ran.stdout == f"xcs (ember-xcs) {xcs.__version__}\n"
