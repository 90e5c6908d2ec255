"""One import name: installing ember-xcs adds ``xcs`` (with ``xcs.compiler`` and ``xcs.runtime``) and
nothing else; a user's own ``runtime.py`` or ``compiler/`` never collides with ours; ``import
xcs.runtime`` and the pytest plugin load nothing heavy; the public API is pinned."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import xcs

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = sorted(
    """
    AsyncContextError BatchAxisError BatchError BatchLengthError CacheInfo Collected CycleError
    DeviceMesh ElementError EmptyBatchError ExecutionOptions Explanation Failure FrozenOperatorError
    GraphBreakWarning InputIndexError InputKeyError JitError MeshError Operator OperatorCycleError
    OperatorInputError OperatorOutputError PartitionSpec PlanCacheWarning RecompileLimitError RecompileWarning
    RunRecord Scheduler SchedulerError ShardError StepError StepRecord Strategy TransformError
    UnpicklableError XCSError cache_info compose create_scheduler current_device dump execution_options
    explain jit last_run mermaid mesh_sharded pjit pmap register_pass register_scheduler register_strategy
    unregister_scheduler vmap
    """.split()
)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_the_public_api_is_pinned():
    assert sorted(xcs.__all__) == PUBLIC
    assert all(getattr(xcs, name) is not None for name in xcs.__all__)
    assert xcs.explain.__module__ == "xcs.explanation"  # the function, never a module of the same name


def test_the_distribution_adds_one_import_name():
    from importlib.metadata import distribution

    assert distribution("ember-xcs").read_text("top_level.txt").split() == ["xcs"]  # what the install added
    assert "import-names" not in (ROOT / "pyproject.toml").read_text()  # no other top-level package declared
    try:  # venvs of Python 3.12+ come without setuptools: the installed metadata above is the check there
        from setuptools import find_packages
    except ImportError:
        return
    assert sorted(find_packages(str(ROOT), include=["xcs", "xcs.*"])) == ["xcs", "xcs.compiler", "xcs.runtime"]


def test_a_users_runtime_and_compiler_modules_break_nothing(tmp_path):
    (tmp_path / "runtime.py").write_text("raise ImportError('the user runtime module was imported')\n")
    (tmp_path / "compiler").mkdir()
    (tmp_path / "compiler" / "__init__.py").write_text("raise ImportError('the user compiler package')\n")
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        from xcs import Operator, jit

        class Echo(Operator):
            def forward(self, *, inputs):
                return {"answer": inputs["q"] + "!"}

        @jit
        class App(Operator):
            def __init__(self):
                self.echo = Echo()

            def forward(self, *, inputs):
                return self.echo(inputs=inputs)

        print(App()(inputs={"q": "hi"})["answer"])
    """))
    done = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "XCS_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hi!"
    (tmp_path / "test_app.py").write_text("def test_ok():\n    assert True\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr  # the pytest11 plugin loads beside them


def test_the_runtime_and_the_plugin_import_nothing_heavy(tmp_path):
    done = run("""
        import sys
        import xcs.runtime.plan, xcs.runtime.executor
        import xcs.pytest_plugin
        heavy = sorted(m for m in sys.modules if m.startswith("xcs.compiler"))
        print(heavy)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
