"""The disk plan cache refuses what is not a regular file of the user's, without reading it.

Every kind of impostor (a FIFO, a character device, a directory, a symlink to a valid copy elsewhere)
in place of every kind of cache file (index, plan, compiled code, ledger, lock) and of the cache
directories: the call returns what eager Python returns, nothing hangs (each call runs in a thread
joined with a bounded timeout: a hang is the failure signal, never a speed measurement), nothing
refused is executed, and one ``PlanCacheWarning`` names the path. ``xcs cache ls|info|prune|clear``
neither hang nor follow symlinks out of the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import warnings

import pytest

from xcs.compiler import disk_cache as dc
from xcs.compiler.codegen import VERSION
from xcs import Operator, PlanCacheWarning, cache_info, jit
from xcs.cli import main
from xcs.compiler.driver import clear_caches

HANG = 30.0  # seconds: only a hang ever gets near this


class Echo(Operator):
    def __init__(self, tag):
        self.tag = tag

    def forward(self, *, inputs):
        return {"answer": f"{self.tag}:{inputs['query']}"}


@jit
class Pair(Operator):
    def __init__(self):
        self.a, self.b = Echo("a"), Echo("b")

    def forward(self, *, inputs):
        return {"out": self.a(inputs=inputs)["answer"] + " | " + self.b(inputs=inputs)["answer"]}


def eager(query):
    return {"out": f"a:{query} | b:{query}"}


@pytest.fixture
def root(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("XCS_CACHE_DIR", str(path))
    for name in ("XCS_CACHE_MAX_BYTES", "XCS_PLAN_DIR", "XCS_EXPLAIN_CACHE_MISSES", "XCS_DISK_CACHE"):
        monkeypatch.delenv(name, raising=False)
    clear_caches()
    yield path
    clear_caches()


def bounded(fn, *args, unblock=None):
    """``fn(*args)`` in a thread; fails (after unblocking a FIFO reader) if it does not end in HANG s."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # reported below
            box["error"] = exc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(HANG)
        hung = thread.is_alive()
        if hung and unblock is not None:
            unblock()
            thread.join(HANG)
    assert not hung, f"{fn} hung"
    if "error" in box:
        raise box["error"]
    return box["result"], [str(w.message) for w in caught if issubclass(w.category, PlanCacheWarning)]


def populate(root):
    """One key on disk (index, plan and compiled code), then a 'new process' (nothing in memory)."""
    assert Pair()(inputs={"query": "p"}) == eager("p")
    clear_caches()
    directory = root / VERSION
    plan = next(p for p in directory.iterdir() if p.suffix == ".py")
    return {"index": plan.with_suffix(".json"), "plan": plan, "code": plan.with_suffix(".code"),
            "ledger": root / ".xcs-cache.ledger", "lock": root / ".xcs-cache.lock"}


def make_fifo(path, elsewhere):
    os.mkfifo(path, 0o600)

    def unblock():  # a reader stuck in open() gets a writer (and EOF)
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    return unblock


def make_device(path, elsewhere):
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except (PermissionError, AttributeError):
        os.symlink(os.devnull, path)  # not permitted: a symlink to the device
    return None


def make_directory(path, elsewhere):
    os.mkdir(path, 0o700)
    return None


def make_symlink(path, elsewhere):
    os.symlink(elsewhere, path)  # to a copy of the valid file: the right content is refused too
    return None


KINDS = {"fifo": make_fifo, "device": make_device, "directory": make_directory, "symlink": make_symlink}


def replace(path, kind, tmp_path):
    """Put a ``kind`` impostor in place of ``path`` (a symlink points at a copy of the original)."""
    elsewhere = tmp_path / f"elsewhere-{path.name}"
    if path.exists():
        shutil.copyfile(path, elsewhere)
        path.unlink()
    else:
        elsewhere.write_text("")
    return KINDS[kind](str(path), str(elsewhere)), elsewhere


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("which", ["index", "plan", "code"])
def test_an_impostor_entry_is_refused_without_being_read(root, tmp_path, which, kind):
    files = populate(root)
    unblock, _ = replace(files[which], kind, tmp_path)
    result, messages = bounded(lambda: Pair()(inputs={"query": "x"}), unblock=unblock)
    assert result == eager("x")
    assert len(messages) == 1 and str(files[which]) in messages[0] and "refused" in messages[0], messages
    info = cache_info(Pair())
    assert (info.captures, info.disk_loads) == (1, 0)  # recompiled, nothing refused was imported
    result, messages = bounded(lambda: Pair()(inputs={"query": "y"}))  # one warning per process
    assert result == eager("y") and messages == []


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("which", ["ledger", "lock"])
def test_an_impostor_ledger_or_lock_is_refused_on_the_next_write(root, tmp_path, which, kind):
    files = populate(root)
    unblock, elsewhere = replace(files[which], kind, tmp_path)
    before = elsewhere.read_bytes()
    result, messages = bounded(lambda: Pair()(inputs={"query": 1}), unblock=unblock)  # a new signature: a write
    assert result == eager(1)
    assert len(messages) == 1 and str(files[which]) in messages[0] and "refused" in messages[0], messages
    assert elsewhere.read_bytes() == before  # a symlink's target is neither written nor truncated
    result, messages = bounded(lambda: Pair()(inputs={"query": "p"}))  # the disk cache is off: memory only
    assert result == eager("p") and messages == []


@pytest.mark.parametrize("kind", ["fifo", "symlink", "file"])
@pytest.mark.parametrize("which", ["root", "version"])
def test_an_impostor_cache_directory_is_refused(root, tmp_path, which, kind):
    populate(root)
    path = root if which == "root" else root / VERSION
    copy = tmp_path / "moved"
    shutil.move(str(path), str(copy))
    unblock = None
    if kind == "fifo":
        unblock = make_fifo(str(path), None)
    elif kind == "symlink":
        os.symlink(copy, path)  # the same valid cache, through a symlink
    else:
        path.write_text("")
    result, messages = bounded(lambda: Pair()(inputs={"query": "x"}), unblock=unblock)
    assert result == eager("x")
    assert len(messages) == 1 and str(path) in messages[0] and "refused" in messages[0], messages
    assert cache_info(Pair()).disk_loads == 0


def test_a_file_swapped_between_check_and_open_is_refused(root, monkeypatch):
    files = populate(root)
    real_open = os.open

    def swapping_open(path, flags, *args, **kwargs):  # the race: a FIFO appears after the lstat
        if str(path) == str(files["plan"]) and os.path.isfile(path):
            os.unlink(path)
            os.mkfifo(path, 0o600)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swapping_open)
    with pytest.raises(dc.Unsafe, match="replaced while it was opened|not a regular file"):
        bounded(dc.read_trusted, str(files["plan"]))


def test_cache_commands_neither_hang_nor_follow_symlinks_out(root, tmp_path, capsys):
    populate(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.py"
    precious.write_text("keep me\n")
    (outside / "precious.json").write_text("{}\n")
    directory = root / VERSION
    os.mkfifo(directory / "fifo.Op-0123456789abcdef-0123456789ab.json", 0o600)
    os.mkfifo(directory / "fifo.Op-0123456789abcdef-0123456789ab.py", 0o600)
    os.symlink(precious, directory / "link.Op-0123456789abcdef-0123456789ab.py")
    os.symlink(outside / "precious.json", directory / "link.Op-0123456789abcdef-0123456789ab.json")
    os.symlink(outside, directory / "0.0.9")  # not a version directory: a symlink
    os.symlink(outside, root / "0.0.8")
    os.mkdir(directory / "dir.Op-0123456789abcdef-0123456789ab.code", 0o700)

    for argv in (["cache", "ls"], ["cache", "ls", "--json"], ["cache", "info"]):
        code, _ = bounded(main, argv)
        assert code == 0
    capsys.readouterr()
    code, _ = bounded(main, ["cache", "prune"])
    assert code == 0 and "not regular: 4" in capsys.readouterr().out
    assert sorted(os.listdir(outside)) == ["precious.json", "precious.py"] and precious.read_text() == "keep me\n"
    code, _ = bounded(main, ["cache", "clear"])
    assert code == 0
    assert sorted(os.listdir(outside)) == ["precious.json", "precious.py"]


def test_clear_and_prune_refuse_a_symlinked_root(root, tmp_path, capsys):
    populate(root)
    real = tmp_path / "real"
    shutil.move(str(root), str(real))
    os.symlink(real, root)
    before = sorted(os.listdir(real / VERSION))
    for action in ("clear", "prune"):
        code, _ = bounded(main, ["cache", action])
        captured = capsys.readouterr()
        assert code == 1 and "is a symlink" in captured.err and "refused" in captured.err
    assert sorted(os.listdir(real / VERSION)) == before
    code, _ = bounded(main, ["cache", "info", "--json"])
    assert code == 0 and "symlink" in json.loads(capsys.readouterr().out)["status"]


def test_plan_dir_review_file_that_is_a_fifo_is_not_read(tmp_path):
    plan_dir = tmp_path / "plans"
    plan_dir.mkdir()
    unblock = make_fifo(str(plan_dir / "op.py"), None)
    path, messages = bounded(dc.write_review_file, str(plan_dir), "op.py", "# plan\n", unblock=unblock)
    assert path is None and len(messages) == 1 and "op.py" in messages[0]
