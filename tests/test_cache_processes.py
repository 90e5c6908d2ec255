"""The disk plan cache across real processes: a second process imports the plan instead of capturing,
an edited operator class gets a new plan, four processes compiling at once leave one intact plan, and
a read-only cache directory falls back to memory with one warning."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xcs.compiler.codegen import VERSION

ROOT = Path(__file__).resolve().parents[1]

MODULE = '''
from xcs import Operator, jit


def shout(text):
    return text.upper()


def decorate(a, b):
    return a + "!" + b


class Echo(Operator):
    def forward(self, *, inputs):
        return {"answer": shout(inputs["query"])}


@jit
class Pipeline(Operator):
    def __init__(self):
        self.first = Echo()
        self.second = Echo()

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)["answer"]
        b = self.second(inputs={"query": a + "-2"})["answer"]
        return {"out": decorate(a, b)}
'''

RUNNER = '''
import json, os, sys, time, warnings
warnings.simplefilter("always")
go = os.environ.get("XCS_TEST_GO")
if go:  # start together: wait for the go file
    while not os.path.exists(go):
        time.sleep(0.001)
import opmod
from xcs import cache_info

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    op = opmod.Pipeline()
    out = [op(inputs={"query": q}) for q in sys.argv[1:]]
info = cache_info(op)
print(json.dumps({
    "out": out, "captures": info.captures, "disk_loads": info.disk_loads, "hits": info.hits,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}))
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "opmod.py").write_text(MODULE)
    (tmp_path / "runner.py").write_text(RUNNER)
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "XCS_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "1",  # an edit within the same second must be seen
    }
    for name in ("XCS_CACHE_MAX_BYTES", "XCS_PLAN_DIR", "XCS_EXPLAIN_CACHE_MISSES", "XCS_DISK_CACHE"):
        env.pop(name, None)
    return tmp_path, cache, env


def run(project, *queries, prefix=(), extra_env=None):
    tmp_path, _, env = project
    done = subprocess.run(
        [*prefix, sys.executable, str(tmp_path / "runner.py"), *queries],
        cwd=tmp_path, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def plans(cache):
    directory = cache / VERSION
    return sorted(p.name for p in directory.glob("*.py")) if directory.exists() else []


def test_second_process_imports_the_plan_and_an_edited_class_recompiles(project):
    tmp_path, cache, _ = project
    first = run(project, "hi", "yo")
    assert first["out"] == [{"out": "HI!HI-2"}, {"out": "YO!YO-2"}]
    assert (first["captures"], first["disk_loads"], first["hits"]) == (1, 0, 1)
    assert len(plans(cache)) == 1

    second = run(project, "hi", "yo")
    assert second["out"] == first["out"]
    assert (second["captures"], second["disk_loads"], second["hits"]) == (0, 1, 1)
    assert second["warnings"] == []

    source = (tmp_path / "opmod.py").read_text()
    (tmp_path / "opmod.py").write_text(source.replace('a + "-2"', 'a + "-3"'))  # forward, same size
    edited = run(project, "hi")
    assert edited["out"] == [{"out": "HI!HI-3"}]
    assert (edited["captures"], edited["disk_loads"]) == (1, 0)
    assert len(plans(cache)) == 2

    (tmp_path / "opmod.py").write_text(source.replace('a + "!" + b', 'a + "?" + b'))  # a helper of forward
    helper = run(project, "hi")
    assert helper["out"] == [{"out": "HI?HI-2"}]
    assert helper["captures"] == 1 and len(plans(cache)) == 3

    # a sub-operator's helper: the plan calls the sub-operator, so its plan stays valid (and is reused)
    (tmp_path / "opmod.py").write_text(source.replace("text.upper()", "text.lower()"))
    sub = run(project, "Hi")
    assert sub["out"] == [{"out": "hi!hi-2"}]
    assert (sub["captures"], sub["disk_loads"]) == (0, 1)

    (tmp_path / "opmod.py").write_text(source)  # back to the first version: its plan is still there
    again = run(project, "hi")
    assert (again["captures"], again["disk_loads"]) == (0, 1)


def test_four_processes_compiling_at_once_leave_one_intact_plan(project):
    tmp_path, cache, env = project
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "runner.py"), "q"], cwd=tmp_path,
            env={**env, "XCS_TEST_GO": str(go)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let all four import and wait
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert all(r["out"] == [{"out": "Q!Q-2"}] for r in results)
    assert all(r["captures"] + r["disk_loads"] == 1 and r["warnings"] == [] for r in results)
    files = sorted(p.name for p in (cache / VERSION).iterdir())
    stems = {name.split(".py")[0].split(".json")[0].split(".code")[0] for name in files}
    assert len(plans(cache)) == 1 and len(stems) == 1, files
    assert not [name for name in files if name.startswith(".tmp-")]
    index = json.loads((cache / VERSION / f"{stems.pop()}.json").read_text())
    assert len(index["entries"]) == 1
    import hashlib

    data = (cache / VERSION / index["entries"][0]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == index["entries"][0]["sha256"]  # not torn
    later = run(project, "q")
    assert (later["captures"], later["disk_loads"]) == (0, 1)


def _without_root_privileges():
    """Run as root without the capabilities that bypass file permissions, so a read-only directory
    is read-only (root can write anywhere otherwise)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    probe = subprocess.run(
        [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("setpriv cannot drop capabilities here")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner")


def test_read_only_cache_directory_falls_back_to_memory_with_one_warning(project):
    tmp_path, cache, _ = project
    prefix = _without_root_privileges()
    first = run(project, "hi")
    assert first["captures"] == 1
    for directory in (cache / VERSION, cache):
        os.chmod(directory, stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = sorted(p.name for p in (cache / VERSION).iterdir())
        (tmp_path / "opmod.py").write_text(MODULE.replace('a + "-2"', 'a + "-5"'))  # a new plan to store
        result = run(project, "hi", "yo", prefix=prefix)
        assert result["out"] == [{"out": "HI!HI-5"}, {"out": "YO!YO-5"}]
        messages = [w for w in result["warnings"] if w.startswith("PlanCacheWarning")]
        assert len(messages) == 1 and "not writable" in messages[0] and "memory only" in messages[0]
        assert (result["captures"], result["hits"]) == (1, 1)
        assert sorted(p.name for p in (cache / VERSION).iterdir()) == before
    finally:
        for directory in (cache, cache / VERSION):
            os.chmod(directory, stat.S_IRWXU)


WRITER = '''
import json, os, sys, time
go = os.environ["XCS_TEST_GO"]
while not os.path.exists(go):
    time.sleep(0.001)
from xcs.compiler import disk_cache as dc
cache = dc.disk_cache()
me, n = sys.argv[1], int(sys.argv[2])
stored = 0
for i in range(n):
    key = dc.DiskKey(operator="fake.Op", structure="0123456789abcdef", signature=f"{{p{me}k{i}: int}}", python="3.11")
    source = (
        f"{dc.PLAN_HEADER}fake.Op\\\\n# signature: {{p{me}k{i}: int}}   structure: 0123456789abcdef\\\\n"
        "from xcs.runtime.plan import Plan\\\\nPLAN = Plan(name='fake.Op', steps=(), output=None, run=None)\\\\n"
        + "#" * 400 + "\\\\n"
    )
    path, _ = cache.store(key, source=source)
    stored += path is not None
print(json.dumps({"stored": stored, "disabled": cache.disabled}))
'''


@pytest.mark.parametrize("bound", [None, "12K"])
def test_four_processes_writing_at_once_keep_the_ledger_whole(project, bound):
    tmp_path, cache, env = project
    (tmp_path / "writer.py").write_text(WRITER)
    go = tmp_path / "go"
    env = {**env, "XCS_TEST_GO": str(go), **({"XCS_CACHE_MAX_BYTES": bound} if bound else {})}
    procs = [
        subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(p), "25"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in range(4)
    ]
    time.sleep(0.5)
    go.write_text("go")
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out) == {"stored": 25, "disabled": None}
    from xcs.compiler import disk_cache as dc

    disk = dc.DiskCache(str(cache))
    ledger = dc._Ledger(str(cache))
    ledger.sync(lambda: pytest.fail("the ledger was torn or garbled"))
    scan = disk._scan_sizes()
    assert ledger.live == scan  # every key written is there, with its size; nothing removed is left
    if bound is None:
        assert len(scan) == 100
    else:
        assert 0 < len(scan) < 100 and sum(size for size, _ in scan.values()) <= 12 * 1024
    assert not [p for p in cache.rglob(".tmp-*")]
