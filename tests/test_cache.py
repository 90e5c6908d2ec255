"""The plan cache in one process: keys, disk round trips, integrity, directory safety, the size bound,
the recompilation policy, miss explanations, plan files for review, ``cache_info`` and ``xcs cache``.

"Another process" is simulated here by forgetting the in-memory cache (``clear_caches``); the tests in
``test_cache_processes.py`` use real subprocesses.
"""

from __future__ import annotations

import json
import linecache
import logging
import os
import stat
import sys
import textwrap
import warnings

import pytest

from xcs.compiler import disk_cache as dc
from xcs.compiler.cache import Key, structure_hash
from xcs.compiler.codegen import VERSION
from xcs import (
    Operator,
    PlanCacheWarning,
    RecompileLimitError,
    RecompileWarning,
    cache_info,
    dump,
    execution_options,
    jit,
)
from xcs.cli import main
from xcs.compiler.driver import PLANS, clear_caches
from xcs.compiler.signature import Signature
from xcs.operator import is_operator


# ---------------------------------------------------------------------- operators
def shout(text):
    return text.upper()


class Echo(Operator):
    def __init__(self, tag="e"):
        self.tag = tag

    def forward(self, *, inputs):
        return {"answer": f"{self.tag}:{inputs['query']}"}


@jit
class Pipeline(Operator):
    def __init__(self, n=2):
        self.members = [Echo(f"m{i}") for i in range(n)]

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return {"out": " | ".join(answers), "n": len(answers)}


@jit(mode="trace")
class Branchy(Operator):
    """Branches on an input value: one key (signature), two guarded plans."""

    def __init__(self):
        self.low, self.high = Echo("low"), Echo("high")

    def forward(self, *, inputs):
        if inputs["level"] > 3:
            return self.high(inputs=inputs)
        return self.low(inputs=inputs)


class Scorer(Operator):
    def forward(self, *, inputs):
        return {"score": len(inputs["query"])}


LAST_SCORE = [0]


@jit(mode="trace")
class BranchOnOutput(Operator):
    """Decides on an operator's output in a forward that declares a global (so none of its statements
    can run on its own): a graph break, so the signature runs eagerly."""

    def __init__(self):
        self.scorer, self.echo = Scorer(), Echo("b")

    def forward(self, *, inputs):
        global LAST_SCORE
        if self.scorer(inputs=inputs)["score"] > 3:
            return self.echo(inputs=inputs)
        return {"answer": "short"}


@jit
class Typed(Operator):
    def __init__(self):
        self.echo = Echo("t")

    def forward(self, *, inputs):
        return self.echo(inputs=inputs)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A fresh, empty cache directory and empty in-memory caches."""
    path = tmp_path / "cache"
    monkeypatch.setenv("XCS_CACHE_DIR", str(path))
    for name in ("XCS_CACHE_MAX_BYTES", "XCS_PLAN_DIR", "XCS_EXPLAIN_CACHE_MISSES", "XCS_DISK_CACHE"):
        monkeypatch.delenv(name, raising=False)
    clear_caches()
    yield path
    clear_caches()


def forget():
    """What a new process starts with: nothing in memory (the disk cache stays)."""
    clear_caches()


def plan_files(path):
    directory = path / VERSION
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".py") if directory.exists() else []


def cache_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, PlanCacheWarning)]


def call_recorded(op, inputs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = op(inputs=inputs)
    return result, caught


# ---------------------------------------------------------------------- keys
def test_signature_has_one_canonical_treatment_of_scalars():
    kinds = {name: Signature.of({"x": value}) for name, value in
             (("bool", True), ("int", 1), ("float", 1.0), ("str", "1"), ("none", None), ("bytes", b"1"))}
    assert len(set(kinds.values())) == len(kinds)  # True is not an int, 1 is not a float
    assert kinds["none"].canonical == '[["x","None"]]'
    assert Signature.of({"x": 1}) == Signature.of({"x": 2})  # values never matter
    nested = Signature.of({"q": "a", "opts": {"k": 1, "deep": {"z": 0.5}}})
    assert nested.flat == {"q": "str", "opts": "dict", "opts.k": "int", "opts.deep": "dict", "opts.deep.z": "float"}
    assert Signature.of({"a": 1, "b": 2}) != Signature.of({"b": 2, "a": 1})  # key order is part of it


def test_signature_diff_and_key_parts():
    old = Signature.of({"a": 1, "b": 1, "d": 1})
    new = Signature.of({"a": 2, "b": 1.0, "c": "x"})
    assert new.diff(old) == ["b: int -> float", "+c: str", "-d: int"]
    assert new.diff(old.flat) == new.diff(old)  # a flat form read back from the disk index compares alike
    key = Key.of("0123abcd", new)
    assert key == ("0123abcd", new, sys.version_info[:2]) and hash(key) == hash(tuple(key))
    assert (key.structure, key.signature.text, key.python_text) == (
        "0123abcd", "{a: int, b: float, c: str}", f"{sys.version_info[0]}.{sys.version_info[1]}"
    )


def test_structure_covers_code_helpers_static_values_and_sub_operators(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # each edit is imported afresh, from source

    def make(source):  # the same module name every time: only the edit differs
        (tmp_path / "made_op.py").write_text("from xcs import Operator\n" + textwrap.dedent(source))
        sys.modules.pop("made_op", None)
        linecache.clearcache()  # a same-size edit within the file system's timestamp granularity
        return __import__("made_op").Op

    base = """
def helper(x):
    return x + 1

class Sub(Operator):
    def forward(self, *, inputs):
        return {"v": inputs["v"]}

class Op(Operator):
    LIMIT = 3
    def __init__(self, t=0.5):
        self.t = t
        self.sub = Sub()
    def forward(self, *, inputs):
        return {"v": helper(self.sub(inputs=inputs)["v"])}
"""

    def digest(source, **kw):
        return structure_hash(make(source)(**kw), is_operator)

    reference = digest(base)
    assert digest(base) == reference  # stable
    assert digest(base, t=0.7) != reference  # a static attribute value
    assert digest(base.replace("x + 1", "x + 2")) != reference  # a helper referenced from forward
    assert digest(base.replace("LIMIT = 3", "LIMIT = 4")) != reference  # a class constant
    assert digest(base.replace('{"v": inputs["v"]}', '{"v": inputs["v"] * 1}')) != reference  # sub-operator code
    assert digest(base.replace("return {\"v\": helper", "return {'v': helper")) != reference  # forward source
    assert digest(base.replace("    def forward(self, *, inputs):\n        return {\"v\": helper",
                               "    def forward(self, *, inputs):  # edited\n        return {\"v\": helper")) != reference
    assert digest(base.replace("class Op(Operator):", "class Op(Operator):\n    def extra(self):\n        return 1\n")) != reference


def test_structure_covers_plain_data_attributes():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        temperature: float
        model: str

    class Holder(Operator):
        def __init__(self, config):
            self.config = config

        def forward(self, *, inputs):
            return {"t": self.config.temperature}

    one = structure_hash(Holder(Config(0.2, "m")), is_operator)
    assert one == structure_hash(Holder(Config(0.2, "m")), is_operator)
    assert one != structure_hash(Holder(Config(0.3, "m")), is_operator)


# ---------------------------------------------------------------------- disk round trip
def test_second_process_loads_the_plan_without_capturing(root):
    op = Pipeline(2)
    assert op(inputs={"query": "hi"}) == {"out": "m0:hi | m1:hi", "n": 2}
    info = cache_info(op)
    assert (info.captures, info.disk_loads, info.misses, info.hits) == (1, 0, 1, 0)
    assert plan_files(root) == [f"test_cache.Pipeline-{op._xcs_structure}-{plan_files(root)[0].rsplit('-', 1)[1]}"]
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / VERSION).st_mode) == 0o700
    text = dump(op, {"query": "x"})

    forget()
    op = Pipeline(2)
    assert op(inputs={"query": "yo"}) == {"out": "m0:yo | m1:yo", "n": 2}
    assert op(inputs={"query": "again"}) == {"out": "m0:again | m1:again", "n": 2}
    info = cache_info(op)
    assert (info.captures, info.disk_loads, info.misses, info.hits) == (0, 1, 1, 1)
    assert dump(op, {"query": "x"}) == text  # the same text as the capture produced
    entry = PLANS.get(next(iter(k for k in PLANS.keys() if k[0] == op._xcs_structure)))[0]
    assert entry.origin == "disk" and entry.plan.filename == str(root / VERSION / plan_files(root)[0])


def test_guarded_paths_share_a_key_and_all_come_back(root):
    op = Branchy()
    assert op(inputs={"level": 1, "query": "q"}) == {"answer": "low:q"}
    assert op(inputs={"level": 9, "query": "q"}) == {"answer": "high:q"}
    assert len(plan_files(root)) == 2
    stem = next((root / VERSION).glob("*.json")).stem
    index = json.loads((root / VERSION / f"{stem}.json").read_text())
    assert [e["file"] for e in index["entries"]] == [f"{stem}.py", f"{stem}.2.py"]

    forget()
    op = Branchy()
    assert op(inputs={"level": 9, "query": "r"}) == {"answer": "high:r"}
    assert op(inputs={"level": 0, "query": "r"}) == {"answer": "low:r"}
    info = cache_info(op)
    assert (info.captures, info.disk_loads) == (0, 2)


def test_a_graph_break_is_remembered_and_warned_again(root):
    from xcs import GraphBreakWarning

    with pytest.warns(GraphBreakWarning, match="branch-on-output") as first:
        assert BranchOnOutput()(inputs={"query": "long one"}) == {"answer": "b:long one"}
    assert {w.filename for w in first} == {__file__}  # the user's line, not xcs/operator.py
    forget()
    op = BranchOnOutput()
    with pytest.warns(GraphBreakWarning, match="branch-on-output") as caught:
        assert op(inputs={"query": "ab"}) == {"answer": "short"}
    assert [w.filename for w in caught if issubclass(w.category, GraphBreakWarning)] == [__file__]
    assert (cache_info(op).captures, cache_info(op).disk_loads) == (0, 1)


# ---------------------------------------------------------------------- integrity
def _populate(root):
    op = Pipeline(2)
    op(inputs={"query": "hi"})
    forget()
    path = root / VERSION / next(n for n in plan_files(root) if n.startswith("test_cache.Pipeline-"))
    return path, path.read_bytes()


def _recompiled_once(root, path):
    op = Pipeline(2)
    result, caught = call_recorded(op, {"query": "ok"})
    assert result == {"out": "m0:ok | m1:ok", "n": 2}
    messages = cache_warnings(caught)
    assert len(messages) == 1 and "integrity" in messages[0] and str(path) in messages[0]
    info = cache_info(op)
    assert (info.captures, info.disk_loads) == (1, 0)
    # the file was repaired: a later process loads it again, silently
    forget()
    result, caught = call_recorded(Pipeline(2), {"query": "ok"})
    assert result["out"] == "m0:ok | m1:ok" and cache_warnings(caught) == []
    assert cache_info(Pipeline(2)).disk_loads == 1


def test_corrupt_plan_file_is_recompiled_with_one_warning(root):
    path, _ = _populate(root)
    path.write_bytes(b"\x00\xff garbage \x13" * 10)
    _recompiled_once(root, path)


def test_truncated_plan_file_is_recompiled_with_one_warning(root):
    path, data = _populate(root)
    path.write_bytes(data[: len(data) // 2])
    _recompiled_once(root, path)


def test_tampered_plan_file_is_never_executed(root, tmp_path):
    path, data = _populate(root)
    marker = tmp_path / "tampered-code-ran"
    header = b"".join(data.splitlines(True)[:2])  # keep the header: only the hash can tell
    path.write_bytes(header + f"open({str(marker)!r}, 'w').write('ran')\n".encode() + data[len(header):])
    (root / VERSION / (path.stem + ".code")).unlink()  # no compiled copy to fall back on
    _recompiled_once(root, path)
    assert not marker.exists()


def test_foreign_plan_file_is_never_executed(root):
    other = Branchy()
    other(inputs={"level": 1, "query": "q"})
    forget()
    path, _ = _populate(root)
    foreign = next(p for p in (root / VERSION).iterdir() if p.name.startswith("test_cache.Branchy") and p.suffix == ".py")
    path.write_bytes(foreign.read_bytes())
    _recompiled_once(root, path)


def test_foreign_index_is_ignored(root):
    path, _ = _populate(root)
    Branchy()(inputs={"level": 1, "query": "q"})
    forget()
    mine = path.with_suffix(".json")
    theirs = next(p for p in (root / VERSION).iterdir() if p.name.startswith("test_cache.Branchy") and p.suffix == ".json")
    mine.write_bytes(theirs.read_bytes())
    result, caught = call_recorded(Pipeline(2), {"query": "z"})
    assert result["out"] == "m0:z | m1:z"
    assert len(cache_warnings(caught)) == 1 and "index" in cache_warnings(caught)[0]
    assert cache_info(Pipeline(2)).captures == 1


def test_tampered_compiled_code_falls_back_to_the_verified_text(root):
    path, _ = _populate(root)
    code = path.with_suffix(".code")
    code.write_bytes(b"not marshal data")
    result, caught = call_recorded(Pipeline(2), {"query": "c"})
    assert result["out"] == "m0:c | m1:c" and cache_warnings(caught) == []
    assert cache_info(Pipeline(2)).disk_loads == 1


# ---------------------------------------------------------------------- directory safety
def _memory_only(root, match):
    op = Pipeline(2)
    result, caught = call_recorded(op, {"query": "m"})
    assert result == {"out": "m0:m | m1:m", "n": 2}
    messages = cache_warnings(caught)
    assert len(messages) == 1 and match in messages[0] and "memory only" in messages[0]
    result, caught = call_recorded(Pipeline(3), {"query": "m"})  # one warning per process, not per plan
    assert result["n"] == 3 and cache_warnings(caught) == []
    assert cache_info(op).captures == 1


def test_world_writable_directory_is_refused(root):
    root.mkdir(mode=0o700)
    os.chmod(root, 0o777)
    _memory_only(root, "writable by group or others")
    assert not (root / VERSION).exists()


def test_group_writable_plan_file_is_refused(root):
    path, _ = _populate(root)
    os.chmod(path, 0o660)
    _memory_only(root, "writable by group or others")


def test_symlinked_cache_directory_is_refused(root, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    root.symlink_to(real)
    _memory_only(root, "is a symlink")
    assert list(real.iterdir()) == []


def test_symlinked_plan_file_is_refused_and_not_executed(root, tmp_path):
    path, data = _populate(root)
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_bytes(data)  # even the right content is refused through a symlink
    path.unlink()
    path.symlink_to(elsewhere)
    _memory_only(root, "is a symlink")


def test_unusable_cache_path_falls_back_to_memory(root, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XCS_CACHE_DIR", str(blocker / "cache"))
    _memory_only(root, "not writable")


def test_tiny_size_bound_keeps_plans_in_memory(root, monkeypatch):
    monkeypatch.setenv("XCS_CACHE_MAX_BYTES", "100")
    op = Pipeline(2)
    result, caught = call_recorded(op, {"query": "t"})
    assert result["out"] == "m0:t | m1:t"
    assert len(cache_warnings(caught)) == 1 and "XCS_CACHE_MAX_BYTES=100" in cache_warnings(caught)[0]
    assert dc.disk_cache().total_bytes() <= 100
    assert op(inputs={"query": "u"})["out"] == "m0:u | m1:u"  # from memory
    assert cache_info(op).hits == 1


def test_size_bound_evicts_least_recently_used_keys(root, monkeypatch):
    op = Pipeline(2)
    op(inputs={"query": "a"})
    one = dc.disk_cache().total_bytes()
    monkeypatch.setenv("XCS_CACHE_MAX_BYTES", str(int(one * 2.5)))
    op(inputs={"query": 1})
    first, second = (k.stem for k in dc.disk_cache().keys())
    forget()  # a new process uses the first key again (a disk load): the second is now the least recently used
    assert Pipeline(2)(inputs={"query": "b"})["out"] == "m0:b | m1:b" and cache_info(Pipeline(2)).disk_loads == 1
    op(inputs={"query": 1.5})
    left = [k.stem for k in dc.disk_cache().keys()]
    assert second not in left and first in left and len(left) == 2
    assert dc.disk_cache().total_bytes() <= int(one * 2.5)


# ---------------------------------------------------------------------- recompilation policy
def _signatures():
    return [{"query": "q", **{f"k{i}": i}} for i in range(9)]


def test_recompile_limit_warns_with_the_closest_signature(root):
    op = jit(recompile_limit=2)(type("Limited", (Typed,), {"__module__": __name__}))()
    op(inputs={"query": "a", "n": 1})
    op(inputs={"query": 1, "n": "x"})
    with pytest.warns(RecompileWarning) as caught:
        op(inputs={"query": "a", "n": 1.5})
    message = str(caught[0].message)
    assert "3 distinct input signatures, more than recompile_limit=2" in message
    assert "n: int -> float" in message and "closest cached one, {query: str, n: int}" in message


def test_recompile_limit_can_raise_or_run_eagerly(root):
    op = jit(recompile_limit=1)(type("Strict", (Typed,), {"__module__": __name__}))()
    op(inputs={"query": "a"})
    with execution_options(on_recompile_limit="raise"):
        with pytest.raises(RecompileLimitError, match="query: str -> int"):
            op(inputs={"query": 1})
    with execution_options(on_recompile_limit="eager"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert op(inputs={"query": 2}) == {"answer": "t:2"}
            assert op(inputs={"query": 3}) == {"answer": "t:3"}
    info = {s.signature: s for s in cache_info(op).signatures}
    assert info["{query: int}"].captures == 0 and info["{query: int}"].hits == 1
    with pytest.raises(Exception, match="on_recompile_limit"):
        with execution_options(on_recompile_limit="sometimes"):
            pass


def test_jit_validates_its_cache_options():
    from xcs import JitError

    with pytest.raises(JitError, match="recompile_limit"):
        jit(recompile_limit=0)
    with pytest.raises(JitError, match="plan_dir"):
        jit(plan_dir=3)


def test_explain_cache_misses_names_the_changed_component(root, monkeypatch, caplog):
    monkeypatch.setenv("XCS_EXPLAIN_CACHE_MISSES", "1")
    caplog.set_level(logging.INFO, logger="xcs.cache")
    Pipeline(2)(inputs={"query": "a"})
    Pipeline(2)(inputs={"query": 1.5})
    Pipeline(3)(inputs={"query": "a"})
    Branchy()(inputs={"level": 1, "query": "a"})
    Branchy()(inputs={"level": 7, "query": "a"})
    forget()
    Pipeline(2)(inputs={"query": "a"})
    lines = [r.getMessage() for r in caplog.records if r.name == "xcs.cache"]
    assert "first compile of this operator" in lines[0]
    assert "signature changed: query: str -> float" in lines[1]
    assert "structure changed" in lines[2] and "attribute .members" in lines[2]
    assert "new control-flow path" in lines[4]
    assert "first call in this process (the key is cached on disk)" in lines[5] and "loaded from the disk" in lines[5]


# ---------------------------------------------------------------------- plan files for review
def test_plan_dir_gets_stable_files_with_the_dump_text(root, tmp_path, monkeypatch):
    review = tmp_path / "plans"
    op = jit(plan_dir=review)(type("Reviewed", (Pipeline,), {"__module__": __name__}))(2)
    op(inputs={"query": "a"})
    files = sorted(review.iterdir())
    assert [f.name for f in files] == ["test_cache.Reviewed--query=str.py"]
    assert files[0].read_text() == dump(op, {"query": "b"})
    mtime = files[0].stat().st_mtime_ns
    forget()
    op(inputs={"query": "c"})  # loaded from disk: the same file, not rewritten
    assert files[0].stat().st_mtime_ns == mtime

    monkeypatch.setenv("XCS_PLAN_DIR", str(tmp_path / "env-plans"))
    Branchy()(inputs={"level": 1, "query": "a"})
    Branchy()(inputs={"level": 5, "query": "a"})
    names = sorted(p.name for p in (tmp_path / "env-plans").iterdir())
    assert len(names) == 2 and all(n.startswith("test_cache.Branchy--level=int,query=str-") for n in names)


# ---------------------------------------------------------------------- cache_info, warm path, CLI
def test_cache_info_counts_per_signature(root):
    op = Pipeline(2)
    for value in ("a", "b", "c", 1, 2):
        op(inputs={"query": value})
    rows = {s.signature: s for s in cache_info(op).signatures}
    assert (rows["{query: str}"].hits, rows["{query: str}"].captures) == (2, 1)
    assert (rows["{query: int}"].hits, rows["{query: int}"].captures) == (1, 1)
    info = cache_info(Pipeline)  # the class: every structure of it
    assert info.hits == 3 and info.memory_bound == PLANS.max_entries and info.disk == str(root)
    assert "{query: int}: hits=1" in str(info)


def test_warm_calls_never_touch_the_disk(root, monkeypatch):
    op = Pipeline(2)
    op(inputs={"query": "a"})

    def boom(*args, **kwargs):
        raise AssertionError("the warm path touched the disk cache")

    monkeypatch.setattr(sys.modules["xcs.compiler.driver"], "disk_cache", boom)
    monkeypatch.setattr(dc.DiskCache, "load", boom)
    for _ in range(3):
        assert op(inputs={"query": "b"})["out"] == "m0:b | m1:b"


def test_disk_cache_can_be_turned_off(root, monkeypatch):
    monkeypatch.setenv("XCS_DISK_CACHE", "0")
    Pipeline(2)(inputs={"query": "a"})
    assert not root.exists()
    assert cache_info(Pipeline(2)).disk.startswith("off")


def test_cli_cache_ls_info_prune_clear(root, capsys):
    Pipeline(2)(inputs={"query": "a"})
    Branchy()(inputs={"level": 1, "query": "a"})
    stale = root / "0.0.1"
    stale.mkdir(mode=0o700)
    (stale / "old.Op-0123456789abcdef-0123456789ab.py").write_text("# old\n")
    (root / VERSION / "test_cache.Orphan-0123456789abcdef-0123456789ab.py").write_text("# orphan\n")
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "test_cache.py:Pipeline  {query: str}" in out and "[1 plan(s)]" in out
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["directory"] == str(root) and info["status"] == "ok" and info["versions"] == ["0.0.1", VERSION]
    assert main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert "other versions: 1" in out and "broken: 1" in out
    assert [k.version for k in dc.disk_cache().keys()] == [VERSION, VERSION]
    assert main(["cache", "prune", "--max-bytes", "0"]) == 0
    assert "evicted: 2" in capsys.readouterr().out
    Pipeline(2)(inputs={"query": 1})
    assert main(["cache", "clear"]) == 0
    assert "removed 3 file(s)" in capsys.readouterr().out
    assert main(["cache", "ls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_cleared_cache_directory_is_recreated(root, capsys):
    Pipeline(2)(inputs={"query": "a"})
    assert main(["cache", "clear"]) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pipeline(2)(inputs={"query": 1})  # a new key, stored in the recreated directory
    assert len(plan_files(root)) == 1
    assert stat.S_IMODE(os.stat(root / VERSION).st_mode) == 0o700


# ---------------------------------------------------------------------- the size ledger
def _fake_key(i):
    return dc.DiskKey(operator="fake.Op", structure="0123456789abcdef", signature=f"{{k{i}: int}}", python="3.11")


def _fake_store(cache, i, size=300):
    key = _fake_key(i)
    source = (
        f"{dc.PLAN_HEADER}fake.Op\n# signature: {{k{i}: int}}   structure: 0123456789abcdef\n"
        "from xcs.runtime.plan import Plan\n\n\ndef run(op, inputs):\n    return dict(inputs)\n\n\n"
        "PLAN = Plan(name='fake.Op', steps=(), output=None, run=run)\n" + "#" * size + "\n"
    )
    path, _ = cache.store(key, source=source)
    assert path is not None
    return key


def _ledger_of(root):
    """The ledger file as a fresh process reads it: (state, whether it had to be rebuilt)."""
    ledger = dc._Ledger(str(root))
    ledger.sync(lambda: pytest.fail("the ledger is invalid: a rebuild was needed"))
    return ledger


def test_the_ledger_follows_writes_and_evicts_least_recently_used_first(root, monkeypatch):
    cache = dc.disk_cache()
    keys = [_fake_store(cache, i) for i in range(10)]
    scan = cache._scan_sizes()
    assert _ledger_of(root).live == scan and len(scan) == 10
    order = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6]  # uses (disk loads), oldest first
    for i in order:
        assert [e.kind for e in cache.load(keys[i])] == ["plan"]
    one = max(size for size, _ in scan.values())
    monkeypatch.setenv("XCS_CACHE_MAX_BYTES", str(one * 6 + 50))  # room for six keys (sizes differ by a few bytes)
    new = _fake_store(cache, 10)
    left = {k.stem for k in cache.keys()}
    assert left == {keys[i].stem for i in order[5:]} | {new.stem}  # the five least recently used went
    assert _ledger_of(root).live == cache._scan_sizes()
    assert cache.total_bytes() <= one * 6 + 50


def test_the_ledger_is_rebuilt_when_missing_or_invalid(root, tmp_path):
    cache = dc.disk_cache()
    keys = [_fake_store(cache, i) for i in range(4)]
    ledger = root / dc.LEDGER_NAME
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    good = ledger.read_bytes()
    for bad in (
        None,  # deleted
        b"",
        good[:-7],  # torn by a crash
        good + b"not json\n",
        b'{"xcs-cache-ledger": 99}\n' + good.split(b"\n", 1)[1],
        good + b'["0.1.0/../../outside", 1, 0]\n',  # a path out of the cache
        good + b'["0.1.0/' + keys[0].stem.encode() + b'", -5, 0]\n',
        good + b'["0.1.0/' + keys[0].stem.encode() + b'", 10000000000, 0]\n' + b"\x00\xff",
    ):
        if bad is None:
            ledger.unlink()
        else:
            ledger.write_bytes(bad)
        dc.DiskCache(str(root))._evict_locked()  # what the next write does (a new process: no memory)
        assert _ledger_of(root).live == cache._scan_sizes() and len(cache._scan_sizes()) == 4, bad
        assert outside.read_text() == "{}"


def test_a_tampered_ledger_decides_eviction_order_and_nothing_else(root, monkeypatch):
    cache = dc.disk_cache()
    keys = [_fake_store(cache, i) for i in range(3)]
    ledger = root / dc.LEDGER_NAME
    lines = ledger.read_bytes().splitlines(True)
    forged = [f'["{VERSION}/{keys[0].stem}",99999999,0]\n'.encode()]  # claims the first key is huge
    ledger.write_bytes(b"".join(lines + forged))
    monkeypatch.setenv("XCS_CACHE_MAX_BYTES", "1M")
    fresh = dc.DiskCache(str(root))
    _fake_store(fresh, 3)
    assert keys[0].stem not in {k.stem for k in fresh.keys()}  # at worst a key is evicted (and recompiled)
    assert _ledger_of(root).live == fresh._scan_sizes()
    assert [e.kind for e in fresh.load(keys[1])] == ["plan"]  # loads still check every hash


def test_the_ledger_is_compacted(root):
    cache = dc.disk_cache()
    key = _fake_store(cache, 0)
    name = f"{VERSION}/{key.stem}"
    for _ in range(300):  # many records about one key
        cache._ledger.record([[name, *cache._scan_sizes()[name]]], cache._scan_sizes)
    assert len((root / dc.LEDGER_NAME).read_bytes().splitlines()) < 300
    assert _ledger_of(root).live == cache._scan_sizes()
