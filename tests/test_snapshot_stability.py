"""Plan snapshots change only when the plan does: a comment added above an operator, an edit of a leaf
operator's body, a new ember-xcs version leave the default snapshot as it is; the full header is an
option. The structure hash does not depend on the directory a module was imported from, and a graph
break that is only known by running is said to be unknown by ``explain`` without ``run``."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from xcs import Operator, dump, explain, jit
from xcs.compiler.codegen import VERSION
from xcs.pytest_plugin import serialize_plan

pytest_plugins = ["pytester"]

PROGRAM = '''
from xcs import Operator, jit


class Leaf(Operator):
    def forward(self, *, inputs):
        return {"text": inputs["text"].upper()}


@jit
class Pipeline(Operator):
    def __init__(self):
        self.first, self.second = Leaf(), Leaf()

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)
        return self.second(inputs={"text": a["text"] + "!"})
'''


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def plan_of(tmp_path, folder, text, name):
    (tmp_path / folder).mkdir()
    path = tmp_path / folder / "app.py"
    path.write_text(text)
    return dump(load(path, name).Pipeline(), {"text": "hi"})


EDITS = {
    "a comment added above": PROGRAM.replace("@jit", "# a comment\n# and another\n@jit"),
    "a leaf body changed": PROGRAM.replace('inputs["text"].upper()', 'inputs["text"].lower()'),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_default_snapshot_ignores_edits_that_keep_the_plan(fresh_plans, tmp_path, edit):
    before = plan_of(tmp_path, "before", PROGRAM, "stability_before")
    after = plan_of(tmp_path, "after", EDITS[edit], "stability_after")
    assert serialize_plan(after) == serialize_plan(before)
    assert serialize_plan(after, full=True) != serialize_plan(before, full=True)  # the full text did change


def test_the_default_snapshot_ignores_the_version(fresh_plans, tmp_path):
    plan = plan_of(tmp_path, "v", PROGRAM, "stability_version")
    assert f"ember-xcs {VERSION}" in plan
    assert serialize_plan(plan.replace(f"ember-xcs {VERSION}", "ember-xcs 9.9.9")) == serialize_plan(plan)
    text = serialize_plan(plan)
    assert "ember-xcs 0" not in text and "structure:" not in text and not re.search(r"app\.py:\d", text)
    assert "# app.py  a = self.first(inputs=inputs)" in text
    assert serialize_plan(plan, full=True) == plan  # the option keeps the full header


def test_the_full_header_option(pytester):
    pytester.makeini("[pytest]\nxcs_snapshot_header = full\n")
    pytester.makepyfile(test_it="def test_it(plan_snapshot):\n    assert '# ember-xcs plan: x   ember-xcs 1.0' == plan_snapshot\n")
    pytester.runpytest("--snapshot-update").assert_outcomes(passed=1)
    written = next(pytester.path.glob("snapshots/**/*.py.txt")).read_text()
    assert written == "# ember-xcs plan: x   ember-xcs 1.0\n"


def test_the_structure_hash_ignores_the_import_root(fresh_plans, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "app.py").write_text(PROGRAM)
    as_package = load(tmp_path / "pkg" / "app.py", "pkg_root.pkg.app")
    as_module = load(tmp_path / "pkg" / "app.py", "app_root_app")
    one, two = as_package.Pipeline(), as_module.Pipeline()
    assert one.__xcs_jit__.structure(one) == two.__xcs_jit__.structure(two)


class Scorer(Operator):
    def forward(self, *, inputs):
        return {"score": len(inputs["query"])}


@jit(mode="trace")
class DecidesOnOutput(Operator):
    def __init__(self):
        self.scorer = Scorer()

    def forward(self, *, inputs):
        global _SEEN
        if self.scorer(inputs=inputs)["score"] > 3:
            return self.scorer(inputs=inputs)
        return {"answer": "short"}


def test_explain_without_run_says_what_it_cannot_know(fresh_plans):
    text = str(explain(DecidesOnOutput(), {"query": "hello"}))
    assert "strategy: not known without running the call" in text
    assert "xcs explain --run" in text and "trace (runs the call)" not in text
    assert "strategy: eager" in str(explain(DecidesOnOutput(), {"query": "hello"}, run=True))
