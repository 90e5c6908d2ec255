"""Tests for the ``plan_snapshot`` fixture shipped in ``xcs.pytest_plugin``.

Each test drives an inner pytest session through ``pytester``.  The plugin is
active there through the installed ``pytest11`` entry point (``pip install -e
'.[test]'``); if the project is not installed, it is loaded with
``-p xcs.pytest_plugin`` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from xcs.pytest_plugin import normalize_plan_text, serialize_plan

pytest_plugins = ["pytester"]


@pytest.fixture
def run(pytester: pytest.Pytester, request: pytest.FixtureRequest):
    """Run an inner pytest session with the xcs plugin active exactly once."""
    # Loaded through the entry point in the outer session => it will be in the
    # inner one too; passing -p as well would register the module twice.
    extra = [] if request.config.pluginmanager.hasplugin("xcs") else ["-p", "xcs.pytest_plugin"]
    pytester.makeini("[pytest]\n")  # pins rootdir to pytester.path

    def _run(*args: str) -> pytest.RunResult:
        return pytester.runpytest(*extra, "-p", "no:cacheprovider", *args)

    return _run


def _write_test(pytester: pytest.Pytester, body: str, name: str = "tests/test_x.py") -> Path:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


PLAN_TEST = '''
VALUE = {value!r}

def test_x(plan_snapshot):
    assert VALUE == plan_snapshot
'''


def test_missing_update_pass_change(pytester: pytest.Pytester, run) -> None:
    raw = "def plan(x):   \r\n    return x + 1\t\r\n\n\n"
    _write_test(pytester, PLAN_TEST.format(value=raw))
    snap = pytester.path / "snapshots" / "tests" / "test_x" / "test_x.py.txt"

    # 1. no snapshot yet: failure, nothing written
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*does not exist*"])
    assert not snap.exists()

    # 2. --snapshot-update writes the normalised text at the exact path
    result = run("--snapshot-update")
    result.assert_outcomes(passed=1)
    assert snap.read_bytes() == b"def plan(x):\n    return x + 1\n"
    assert sorted(p.relative_to(pytester.path).as_posix()
                  for p in (pytester.path / "snapshots").rglob("*") if p.is_file()) == [
        "snapshots/tests/test_x/test_x.py.txt"
    ]
    assert not (pytester.path / "tests" / "__snapshots__").exists()

    # 3. rerun passes (also with only trailing-whitespace/newline differences)
    run().assert_outcomes(passed=1)
    _write_test(pytester, PLAN_TEST.format(value="def plan(x):\n    return x + 1   "))
    run().assert_outcomes(passed=1)

    # 4. a changed value fails and leaves the snapshot alone
    _write_test(pytester, PLAN_TEST.format(value="def plan(x):\n    return x + 2\n"))
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*return x + 2*"])
    assert snap.read_bytes() == b"def plan(x):\n    return x + 1\n"


def test_object_with_source(pytester: pytest.Pytester, run) -> None:
    _write_test(pytester, '''
class Plan:
    def __init__(self, source):
        self.source = source

def test_plan(plan_snapshot):
    assert Plan("def plan(a, b):\\n    return a * b  \\n") == plan_snapshot

def test_plan_source_str(plan_snapshot):
    assert Plan("x = 1\\n").source == plan_snapshot
''', name="tests/sub/test_plans.py")
    run("--snapshot-update").assert_outcomes(passed=2)
    base = pytester.path / "snapshots" / "tests" / "sub" / "test_plans"
    assert (base / "test_plan.py.txt").read_text() == "def plan(a, b):\n    return a * b\n"
    assert (base / "test_plan_source_str.py.txt").read_text() == "x = 1\n"
    run().assert_outcomes(passed=2)


def test_non_str_raises_type_error(pytester: pytest.Pytester, run) -> None:
    _write_test(pytester, '''
class NoSource:
    pass

def test_int(plan_snapshot):
    assert 42 == plan_snapshot

def test_obj(plan_snapshot):
    assert NoSource() == plan_snapshot

def test_bad_source(plan_snapshot):
    class P:
        source = b"bytes"
    assert P() == plan_snapshot
''')
    for args in ((), ("--snapshot-update",)):
        result = run(*args)
        result.assert_outcomes(failed=3)
        result.stdout.fnmatch_lines([
            "*TypeError: plan_snapshot can only compare a str or an object with a .source*got int*",
        ])
        result.stdout.fnmatch_lines(["*TypeError*got NoSource*"])
        result.stdout.fnmatch_lines(["*TypeError: plan_snapshot: the compared object's .source must be a str*"])
    assert not (pytester.path / "snapshots").exists()


def test_ini_option_and_parametrize(pytester: pytest.Pytester, run) -> None:
    _write_test(pytester, '''
import pytest

@pytest.mark.parametrize("n", [1, 2])
def test_p(plan_snapshot, n):
    assert f"n = {n}" == plan_snapshot

class TestGroup:
    def test_m(self, plan_snapshot):
        assert "m" == plan_snapshot
        assert "second" == plan_snapshot
''')
    pytester.makeini("[pytest]\nxcs_snapshot_dir = custom/plans\n")
    run("--snapshot-update").assert_outcomes(passed=3)
    base = pytester.path / "custom" / "plans" / "tests" / "test_x"
    assert sorted(p.name for p in base.iterdir()) == [
        "TestGroup.test_m.1.py.txt",
        "TestGroup.test_m.py.txt",
        "test_p[1].py.txt",
        "test_p[2].py.txt",
    ]
    assert (base / "test_p[2].py.txt").read_text() == "n = 2\n"
    assert (base / "TestGroup.test_m.1.py.txt").read_text() == "second\n"
    assert not (pytester.path / "snapshots").exists()
    run().assert_outcomes(passed=3)


def test_orphans_are_reported_and_deleted(pytester: pytest.Pytester, run) -> None:
    path = _write_test(pytester, PLAN_TEST.format(value="a"))
    run("--snapshot-update").assert_outcomes(passed=1)
    old = pytester.path / "snapshots" / "tests" / "test_x" / "test_x.py.txt"
    assert old.exists()
    path.write_text(PLAN_TEST.format(value="a").replace("def test_x", "def test_y"))
    result = run("--snapshot-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 unused snapshot deleted*"])
    assert not old.exists()
    assert (old.parent / "test_y.py.txt").read_text() == "a\n"


def test_clear_error_without_syrupy_plugin(pytester: pytest.Pytester, run) -> None:
    _write_test(pytester, PLAN_TEST.format(value="a"))
    result = run("-p", "no:syrupy")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*plan_snapshot fixture (xcs pytest plugin) needs the syrupy*"])


def test_normalize_plan_text() -> None:
    assert normalize_plan_text("a  \r\nb\t\n\n\n") == "a\nb\n"
    assert normalize_plan_text("a\rb") == "a\nb\n"
    assert normalize_plan_text("") == "\n"
    assert normalize_plan_text("\n  x\n") == "\n  x\n"  # leading lines/indent kept


def test_serialize_plan() -> None:
    class Plan:
        source = "y = 2  \n"

    assert serialize_plan(Plan()) == "y = 2\n"
    assert serialize_plan("z") == "z\n"
    with pytest.raises(TypeError, match="got list"):
        serialize_plan([1])


def test_plugin_module_is_import_light() -> None:
    """Module-level imports must stay stdlib + pytest (no syrupy,
    bytecode, numba, nor any other xcs/compiler/runtime module)."""
    import xcs.pytest_plugin as plugin

    tree = ast.parse(Path(plugin.__file__).read_text())
    top_level: set[str] = set()
    for node in tree.body:
        nodes = [node]
        if isinstance(node, ast.Try):
            nodes = [*node.body, *(h for handler in node.handlers for h in handler.body)]
        for n in nodes:
            if isinstance(n, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in n.names)
            elif isinstance(n, ast.ImportFrom):
                assert n.level == 0, "no relative imports (would load xcs/__init__ deps)"
                top_level.add((n.module or "").split(".")[0])
    assert top_level <= {"__future__", "functools", "pathlib", "re", "typing", "pytest"}, top_level
