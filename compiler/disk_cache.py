"""The persistent plan cache: plan files under ``XCS_CACHE_DIR`` that a later process imports instead
of capturing again, the size bound and its ledger, and the maintenance behind ``xcs cache``.

Layout (readable by a person)::

    <root>/.xcs-cache.lock                                                       filelock, all processes
    <root>/.xcs-cache.ledger                                                     sizes and last uses (eviction)
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.json    the key's index
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.py      its first plan
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.2.py    another traced path
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.code    compiled code of .py
    <root>/<ember-xcs version>/__pycache__/<stem>.<kernel>-<line>.pyXY.nbi/.nbc  numba's machine code of
                                                                                 the plan's kernels

``<signature>`` digests the canonical input signature together with the Python and codegen versions
and the jit capture mode.
The index (JSON) names the whole key, the plan files in the order their paths were captured, each with
the SHA-256 of its text, and the graph break of a signature that runs eagerly.

Safety (``docs/security.md``): the cache runs as code. The root and version directories are created
``0o700`` and must be real directories owned by the user and not writable by group or others; every
file the cache reads (index, plan, compiled code, ledger) and the lock file must be a regular file
owned by the user, not writable by others: it is checked with ``lstat`` before it is opened, opened
with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the descriptor, so a FIFO, device, directory or
symlink is refused without being read (never a hang). Anything else turns the disk cache off for the
process (memory only) with one ``PlanCacheWarning`` naming the path, as does a cache that cannot be
written. A plan file is imported only after its content hash matched the index, and from the bytes that
were checked (never re-read); a truncated, edited or foreign file is not executed: it is recompiled,
with one warning. Writes go to a temporary file renamed into place, under a ``filelock`` lock shared by
all processes.

Size bound: ``XCS_CACHE_MAX_BYTES``, least recently used keys go first (a load touches the index's
mtime). The *ledger* (``_Ledger``) keeps every key's size and a lower bound of its last use as an
append-only journal, appended to under the lock and rewritten from a full scan when it is missing,
invalid, or mostly superseded records; a write reads only what other processes appended since, so it
costs the same with 10 or 20,000 keys on disk. The ledger decides eviction order only: nothing is
loaded because of it, and a key is evicted only after its index's mtime confirmed it is the oldest.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import json
import marshal
import os
import re
import stat
import tempfile
import threading
import time
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from xcs.compiler.cache import cache_dir, compile_plan, import_plan, plan_module_name
from xcs.compiler.codegen import CODEGEN_VERSION, VERSION
from xcs.runtime.plan import Plan

INDEX_FORMAT = 1
LEDGER_FORMAT = 1
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
LOCK_NAME = ".xcs-cache.lock"
LEDGER_NAME = ".xcs-cache.ledger"
LOCK_TIMEOUT = 30.0
STALE_TMP_SECONDS = 3600
NUMBA_DIR = "__pycache__"  # numba's cache of a plan's kernels (cache=True, beside the plan file)
PLAN_HEADER = "# ember-xcs plan: "
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_ENTRY_FILE = re.compile(r"^(?P<stem>.+?)(?:\.(?P<n>\d+))?\.(?P<ext>py|code)$")
_VERSION_DIR = re.compile(r"^\d+\.\d+[\w.+-]*$")
_LEDGER_KEY = re.compile(r"^(?P<version>\d+\.\d+[\w.+-]*)/(?P<stem>[^/\\\0.][^/\\\0]*)$")


class PlanCacheWarning(UserWarning):
    """The disk plan cache is off for this process, or one of its files was refused."""


class Unsafe(Exception):
    """A cache file or directory that must not be trusted (symlink, not a regular file or directory,
    foreign owner, writable by others)."""


@dataclass(frozen=True)
class DiskKey:
    """Everything a plan depends on, computable before capture; ``stem`` names its files."""

    operator: str  # module.Qualname, made file-name safe
    structure: str
    signature: str  # Signature.canonical
    python: str  # "3.11"
    mode: str = "auto"  # the jit capture mode the plan was made with
    ember_xcs: str = VERSION
    codegen: str = CODEGEN_VERSION

    @property
    def signature_digest(self) -> str:
        text = "\0".join((self.signature, self.python, self.codegen, self.mode))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def stem(self) -> str:
        return f"{self.operator[:120]}-{self.structure}-{self.signature_digest}"

    def as_dict(self) -> dict[str, str]:
        return {
            "operator": self.operator, "structure": self.structure, "signature": self.signature,
            "python": self.python, "mode": self.mode, "ember_xcs": self.ember_xcs, "codegen": self.codegen,
        }


@dataclass
class Loaded:
    """One verified entry of a key read from disk: a plan (imported) or an eager marker."""

    kind: str  # "plan" | "eager"
    sha256: str = ""
    plan: Plan | None = None
    source: str = ""
    brk: dict | None = None


@dataclass
class KeyInfo:
    """What ``xcs cache ls`` shows about one key on disk."""

    version: str
    stem: str
    index: dict | None
    files: list[str] = field(default_factory=list)
    size: int = 0
    last_used: float = 0.0

    @property
    def valid(self) -> bool:
        return self.index is not None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_size(text: str) -> int:
    """A size in bytes from ``"1048576"``, ``"512K"``, ``"10M"``, ``"2G"`` (also ``10MB``, ``10MiB``;
    powers of 1024): the one parser of ``XCS_CACHE_MAX_BYTES`` and ``xcs cache prune --max-bytes``.
    ``ValueError`` names what was expected."""
    match = re.fullmatch(r"(\d+)\s*([kKmMgG]?)i?[bB]?", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size: expected a number of bytes, optionally with K, M or G (e.g. 10M)")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * scale


def max_bytes() -> int:
    """``XCS_CACHE_MAX_BYTES`` (``parse_size``), else 256 MiB."""
    text = os.environ.get("XCS_CACHE_MAX_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except ValueError:
        _warn_once(("max-bytes", text), f"XCS_CACHE_MAX_BYTES={text!r} is not a size; using {DEFAULT_MAX_BYTES}")
        return DEFAULT_MAX_BYTES


_WARNED: set = set()
_WARN_LOCK = threading.Lock()


def _warn_once(token: Any, message: str) -> None:
    with _WARN_LOCK:
        if token in _WARNED:
            return
        _WARNED.add(token)
    warnings.warn(message, PlanCacheWarning, stacklevel=2)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _check_stat(st: os.stat_result, what: str, path: str, *, directory: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise Unsafe(f"{what} {path} is a symlink")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise Unsafe(f"{what} {path} is not a directory ({_kind(st.st_mode)})")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise Unsafe(f"{what} {path} is not a regular file ({_kind(st.st_mode)})")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise Unsafe(f"{what} {path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        raise Unsafe(f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):#o})")


def _lstat(path: str, dir_fd: int | None = None) -> os.stat_result | None:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_trusted(
    path: str, flags: int = os.O_RDONLY, what: str = "cache entry", *, dir_fd: int | None = None, shown: str = ""
) -> int | None:
    """A descriptor of cache file ``path`` (relative to ``dir_fd`` when given), or ``None`` when it does
    not exist. The name is checked with ``lstat`` first (a FIFO, device, directory or symlink is refused
    without being opened), opened with ``O_NOFOLLOW | O_NONBLOCK``, and the descriptor checked again
    to be that same regular file (a swap in between is refused too). ``Unsafe`` when refused."""
    shown = shown or path
    before = _lstat(path, dir_fd)
    if before is None:
        return None
    _check_stat(before, what, shown, directory=False)
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR, errno.EMLINK):
            raise Unsafe(f"{what} {shown} was replaced while it was opened") from None
        raise
    try:
        after = os.fstat(fd)
        _check_stat(after, what, shown, directory=False)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise Unsafe(f"{what} {shown} was replaced while it was opened")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, offset: int = 0) -> bytes:
    chunks = []
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def read_trusted(path: str, what: str = "cache entry", *, dir_fd: int | None = None, shown: str = "") -> bytes | None:
    """The bytes of cache file ``path``, or ``None`` when it does not exist; ``Unsafe`` when it is a
    symlink, not a regular file (FIFO, device, directory, socket), not the user's, or writable by
    others. Never blocks on a FIFO: it is refused before being opened (see ``open_trusted``)."""
    fd = open_trusted(path, os.O_RDONLY, what, dir_fd=dir_fd, shown=shown)
    if fd is None:
        return None
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def open_dir(path: str, what: str = "cache directory") -> int:
    """A descriptor of directory ``path``, opened without following a symlink and checked (a real
    directory, the user's, not writable by group or others); ``Unsafe`` otherwise."""
    st = os.lstat(path)
    _check_stat(st, what, path, directory=True)
    try:
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Unsafe(f"{what} {path} was replaced while it was opened") from None
        raise
    try:
        after = os.fstat(fd)
        _check_stat(after, what, path, directory=True)
        if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino):
            raise Unsafe(f"{what} {path} was replaced while it was opened")
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Dir:
    """``with _Dir(path) as fd``: a checked directory descriptor (``open_dir``), closed on exit."""

    def __init__(self, path: str, what: str = "cache directory"):
        self.path, self.what, self.fd = path, what, -1

    def __enter__(self) -> int:
        self.fd = open_dir(self.path, self.what)
        return self.fd

    def __exit__(self, *exc: Any) -> None:
        os.close(self.fd)


def atomic_write(directory: str, name: str, data: bytes) -> str:
    """Write ``data`` to ``directory/name`` through a private temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        path = os.path.join(directory, name)
        os.replace(tmp, path)
        return path
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _group(version: str, dir_fd: int) -> dict[str, KeyInfo]:
    """The regular cache files of one version directory grouped by key (stem): sizes and the index's
    mtime (the key's last use). Dot files, symlinks and anything not a regular file are skipped."""
    groups: dict[str, KeyInfo] = {}
    with os.scandir(dir_fd) as scan:
        for entry in scan:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            if entry.name.endswith(".json"):
                stem = entry.name[:-5]
            else:
                match = _ENTRY_FILE.match(entry.name)
                if not match:
                    continue
                stem = match.group("stem")
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            info = groups.setdefault(stem, KeyInfo(version, stem, None))
            info.files.append(entry.name)
            info.size += st.st_size
            if entry.name.endswith(".json"):
                info.last_used = st.st_mtime
    return groups


class _Ledger:
    """Every key's size and a lower bound of its last use, for eviction without a rescan.

    ``<root>/.xcs-cache.ledger`` is a journal of JSON lines: a header ``{"xcs-cache-ledger": 1}``, then
    ``["<version>/<stem>", bytes, last_used]`` (a key written or its use refreshed) and
    ``["<version>/<stem>", null]`` (a key removed). Every change is appended under the cache's file lock;
    each process remembers how far it has read (and which file: a rewrite has a new inode), so a write
    reads only what others appended since. The file is rewritten from a full scan of the directories
    when it is missing, invalid (a torn or garbled line, a wrong header) or when superseded records
    outnumber the keys: crashes and tampering cost a rescan, never a wrong plan (the ledger is read
    for eviction only). The last use is a lower bound: loads touch the index's mtime without the lock,
    and eviction checks that mtime before removing a key."""

    def __init__(self, root: str):
        self.root = root
        self.path = os.path.join(root, LEDGER_NAME)
        self.rebuilds = 0
        self.reset()

    def reset(self) -> None:
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.records = 0
        self.live: dict[str, tuple[int, float]] = {}
        self.total = 0
        self.heap: list[tuple[float, str]] = []

    # in memory
    def _set(self, key: str, size: int, used: float) -> None:
        old = self.live.get(key)
        if old is not None:
            self.total -= old[0]
        self.live[key] = (size, used)
        self.total += size
        heapq.heappush(self.heap, (used, key))
        if len(self.heap) > 2 * len(self.live) + 64:
            self.heap = [(u, k) for k, (_, u) in self.live.items()]
            heapq.heapify(self.heap)

    def _drop(self, key: str) -> None:
        old = self.live.pop(key, None)
        if old is not None:
            self.total -= old[0]

    def _apply(self, data: bytes, header: bool) -> bool:
        if data and not data.endswith(b"\n"):
            return False  # torn by a crash (every writer holds the lock: nobody is mid-write)
        lines = data.split(b"\n")[:-1]
        if header:
            if not lines or _loads(lines[0]) != {"xcs-cache-ledger": LEDGER_FORMAT}:
                return False
            lines = lines[1:]
        records = _loads(b"[" + b",".join(lines) + b"]") if lines else []  # one parse: C speed
        if not isinstance(records, list) or len(records) != len(lines):
            return False
        live, total = self.live, self.total
        for record in records:
            if not _valid_record(record):
                return False
            old = live.pop(record[0], None)
            if old is not None:
                total -= old[0]
            if record[1] is not None:
                live[record[0]] = (record[1], float(record[2]))
                total += record[1]
                if not header:
                    heapq.heappush(self.heap, (float(record[2]), record[0]))
        self.total, self.records = total, self.records + len(records)
        if header or len(self.heap) > 2 * len(live) + 64:  # a whole file, or mostly stale entries
            self.heap = [(used, key) for key, (_, used) in live.items()]
            heapq.heapify(self.heap)
        return True

    # on disk (callers hold the file lock)
    def sync(self, scan: Callable[[], dict[str, tuple[int, float]]]) -> None:
        """Catch up with what other processes appended; rebuild when missing or invalid."""
        fd = open_trusted(self.path, os.O_RDONLY, "cache ledger")
        if fd is None:
            self.rebuild(scan)
            return
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.ident or st.st_size < self.offset:
                self.reset()
                self.ident = (st.st_dev, st.st_ino)
            data = _read_fd(fd, self.offset) if st.st_size != self.offset else b""
        finally:
            os.close(fd)
        if (data or self.offset == 0) and not self._apply(data, header=self.offset == 0):
            self.rebuild(scan)
            return
        self.offset += len(data)

    def record(self, records: list[list], scan: Callable[[], dict[str, tuple[int, float]]]) -> None:
        """Append ``records`` (after ``sync`` under the same lock) and apply them."""
        if not records:
            return
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
        fd = open_trusted(self.path, os.O_WRONLY | os.O_APPEND, "cache ledger")
        if fd is None:
            self.rebuild(scan)
            return
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.ident or st.st_size != self.offset:
                os.close(fd)
                fd = -1
                self.sync(scan)
                return self.record(records, scan)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            if fd >= 0:
                os.close(fd)
        self.offset += len(data)
        if not self._apply(data, header=False):  # our own records: always valid
            self.rebuild(scan)
        elif self.records > 2 * len(self.live) + 256:
            self.rebuild(scan)  # compact (and reconcile with the disk)

    def rebuild(self, scan: Callable[[], dict[str, tuple[int, float]]]) -> None:
        """Rewrite the ledger from a full scan of the version directories."""
        self.rebuilds += 1
        live = scan()
        lines = [json.dumps({"xcs-cache-ledger": LEDGER_FORMAT})]
        lines += [json.dumps([key, size, used], separators=(",", ":")) for key, (size, used) in sorted(live.items())]
        data = ("\n".join(lines) + "\n").encode()
        atomic_write(self.root, LEDGER_NAME, data)
        st = os.lstat(self.path)
        self.reset()
        self.ident, self.offset, self.records = (st.st_dev, st.st_ino), len(data), len(live)
        self.live = dict(live)
        self.total = sum(size for size, _ in live.values())
        self.heap = [(used, key) for key, (_, used) in live.items()]
        heapq.heapify(self.heap)

    def oldest(self) -> tuple[str, int, float] | None:
        """Pop the key with the oldest recorded use (it stays live until dropped)."""
        while self.heap:
            used, key = heapq.heappop(self.heap)
            current = self.live.get(key)
            if current is not None and current[1] == used:
                return key, current[0], used
        return None

    def push(self, key: str) -> None:
        size, used = self.live[key]
        heapq.heappush(self.heap, (used, key))


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None


def _valid_record(record: Any) -> bool:
    if not isinstance(record, list) or len(record) not in (2, 3) or not isinstance(record[0], str):
        return False
    if not _LEDGER_KEY.match(record[0]):
        return False
    if record[1] is None:
        return len(record) == 2
    return (
        len(record) == 3 and type(record[1]) is int and record[1] >= 0
        and type(record[2]) in (int, float) and record[2] >= 0
    )


class DiskCache:
    """The plan files of one cache root. Thread-safe; processes coordinate through a file lock."""

    def __init__(self, root: str):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.directory = os.path.join(self.root, VERSION)
        self.disabled: str | None = None
        self._prepared = False
        self._lock = threading.RLock()
        self._ledger = _Ledger(self.root)

    # ------------------------------------------------------------------ safety
    def usable(self) -> bool:
        """Prepare the directories once (create private, check ownership and mode, probe a write)."""
        if not self._prepared:
            with self._lock:
                if not self._prepared:
                    self._prepare()
                    self._prepared = True
        return self.disabled is None

    def _prepare(self) -> None:
        try:
            for directory in (self.root, self.directory):
                try:
                    st = os.lstat(directory)
                except FileNotFoundError:
                    try:
                        os.makedirs(directory, mode=0o700)
                    except FileExistsError:
                        pass
                    st = os.lstat(directory)
                _check_stat(st, "cache directory", directory, directory=True)
            fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=self.directory)
            os.close(fd)
            os.unlink(probe)
        except Unsafe as exc:
            self.disable(f"{exc}: refused")
        except OSError as exc:
            self.disable(f"is not writable ({exc.strerror or exc})")

    def _check_dirs(self) -> bool:
        """Check the root and version directories again (they may have been replaced since they were
        prepared): ``Unsafe`` when one is not a real private directory; False when one is missing."""
        for directory in (self.root, self.directory):
            st = _lstat(directory)
            if st is None:
                return False
            _check_stat(st, "cache directory", directory, directory=True)
        numba_dir = os.path.join(self.directory, NUMBA_DIR)
        st = _lstat(numba_dir)
        if st is not None:  # numba loads what it finds there: private like the plans
            _check_stat(st, "cache directory", numba_dir, directory=True)
        return True

    def disable(self, reason: str) -> None:
        """Turn the disk cache off for this process, with one warning."""
        if self.disabled is None:
            self.disabled = reason
            _warn_once(
                ("disabled", self.root),
                f"ember-xcs plan cache {self.root}: {reason}; plans are kept in memory only in this process",
            )

    def _index_path(self, key: DiskKey) -> str:
        return os.path.join(self.directory, key.stem + ".json")

    # ------------------------------------------------------------------ reading
    def read_index(self, key: DiskKey, *, quiet: bool = False) -> dict | None:
        """The key's index, checked to be ours and to name exactly ``key``; ``None`` if absent or bad."""
        path = self._index_path(key)
        data = read_trusted(path, "cache index")
        if data is None:
            return None
        index = _parse_index(data)
        if index is None or index.get("key") != key.as_dict():
            if not quiet:
                _warn_once(
                    ("index", path, _sha(data)),
                    f"ember-xcs plan cache: {path} is corrupt, truncated or not this key's index; "
                    "it is ignored and the plan is recompiled",
                )
            return None
        return index

    def load(self, key: DiskKey, known: set[str] = frozenset()) -> list[Loaded]:
        """The key's entries on disk, verified and imported, in capture order (``known`` content hashes
        are skipped: those plans are already in memory). Bad files are reported once and skipped; a
        file or directory that is not what it must be turns the disk cache off (one warning)."""
        if not self.usable():
            return []
        try:
            if not self._check_dirs():
                return []
            index = self.read_index(key)
            if index is None:
                return []
            loaded = []
            for item in index["entries"]:
                if item.get("kind") == "eager":
                    if "eager" not in known:
                        loaded.append(Loaded("eager", brk=item.get("break") or {}))
                    continue
                if item["sha256"] in known:
                    continue
                entry = self._load_plan(key, item)
                if entry is not None:
                    loaded.append(entry)
            try:  # least recently *used*: mark the key (the ledger learns it when eviction looks); the
                now = time.time_ns()  # precise clock: file times come from a coarse one (ties with writes)
                os.utime(self._index_path(key), ns=(now, now), follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
            return loaded
        except Unsafe as exc:
            self.disable(f"{exc}: refused")
            return []
        except OSError:
            return []

    def _load_plan(self, key: DiskKey, item: dict) -> Loaded | None:
        path = os.path.join(self.directory, item["file"])
        data = read_trusted(path, "cache plan file")
        if data is None:  # evicted meanwhile
            return None
        bad = _sha(data) != item["sha256"]
        source = ""
        if not bad:
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError:
                bad = True
        if not bad:
            head = source.split("\n", 2)[:2]
            bad = len(head) < 2 or not head[0].startswith(PLAN_HEADER) or f"structure: {key.structure}" not in head[1]
        if bad:
            _warn_once(
                ("plan", path, _sha(data)),
                f"ember-xcs plan cache: {path} failed its integrity check (truncated, edited or foreign); "
                "it was not executed and the plan is recompiled",
            )
            return None
        code = self._load_code(path, item)
        try:
            plan = import_plan(source, path, plan_module_name(item["file"][:-3]), code)
        except Exception as exc:  # e.g. a module the plan imports is gone
            _warn_once(("import", path), f"ember-xcs plan cache: {path} could not be imported ({exc!r}); recompiling")
            return None
        return Loaded("plan", item["sha256"], plan, source)

    def _load_code(self, path: str, item: dict) -> types.CodeType | None:
        name = item.get("code")
        if not name:
            return None
        data = read_trusted(os.path.join(self.directory, name), "cache code file")
        if data is None or _sha(data) != item.get("code_sha256"):
            return None  # the text was verified: compile it instead
        try:
            code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, types.CodeType) and code.co_filename == path else None

    # ------------------------------------------------------------------ writing
    def _file_lock(self) -> Any:
        """The cross-process lock, after checking the root directory and the lock file (a regular file
        of the user's, or absent): ``Unsafe`` otherwise. filelock itself opens it ``O_NOFOLLOW``."""
        import filelock

        st = _lstat(self.root)
        if st is not None:
            _check_stat(st, "cache directory", self.root, directory=True)
        path = os.path.join(self.root, LOCK_NAME)
        st = _lstat(path)
        if st is not None:
            _check_stat(st, "cache lock file", path, directory=False)
        return filelock.FileLock(path, timeout=LOCK_TIMEOUT, mode=0o600)

    def store(
        self,
        key: DiskKey,
        *,
        source: str | None = None,
        compile_for: Callable[[str], types.CodeType] = lambda path: None,
        brk: dict | None = None,
        meta: dict | None = None,
    ) -> tuple[str | None, types.CodeType | None]:
        """Add a plan (``source``) or an eager marker (``brk``) to the key. For a new plan file,
        ``compile_for(path)`` compiles the text for the path it gets, and the code is cached beside it.
        Returns (plan file path, that code); (path, None) when another process had already stored the
        same plan; (None, None) when nothing could be written (memory only)."""
        if self._prepared and self.disabled is None and _lstat(self.directory) is None:
            with self._lock:  # removed meanwhile (``xcs cache clear``): prepare it again
                self._prepared = False
        if not self.usable():
            return None, None
        import filelock

        try:
            with self._lock, self._file_lock():
                if not self._check_dirs():
                    return None, None
                return self._store_locked(key, source, compile_for, brk, meta or {})
        except filelock.Timeout:
            return None, None
        except Unsafe as exc:
            self.disable(f"{exc}: refused")
        except OSError as exc:
            self.disable(f"is not writable ({exc.strerror or exc})")
        return None, None

    def _store_locked(
        self, key: DiskKey, source: str | None, compile_for: Callable, brk: dict | None, meta: dict
    ) -> tuple[str | None, types.CodeType | None]:
        index = self.read_index(key) or {"format": INDEX_FORMAT, "key": key.as_dict(), "entries": []}
        entries = []
        for item in index["entries"]:  # keep what is still there and intact
            if item.get("kind") == "eager":
                entries.append(item)
                continue
            data = read_trusted(os.path.join(self.directory, item["file"]), "cache plan file")
            if data is not None and _sha(data) == item["sha256"]:
                entries.append(item)
        index.update(meta)
        index["entries"] = entries
        code = None
        if source is None:
            if any(item.get("kind") == "eager" for item in entries):
                return None, None
            entries.append({"kind": "eager", "break": brk or {}})
            path = None
        else:
            data = source.encode("utf-8")
            digest = _sha(data)
            same = [item for item in entries if item.get("sha256") == digest]
            if same:
                path = os.path.join(self.directory, same[0]["file"])
            else:
                used = {item.get("file") for item in entries}
                number = 0
                while _plan_file(key, number) in used:
                    number += 1
                name = _plan_file(key, number)
                path = atomic_write(self.directory, name, data)
                if "\n@njit(" in source:  # numba caches the kernels' machine code here: private, like the plans
                    os.makedirs(os.path.join(self.directory, NUMBA_DIR), mode=0o700, exist_ok=True)
                item = {"kind": "plan", "file": name, "sha256": digest, "bytes": len(data)}
                code = compile_for(path)
                if code is not None and code.co_filename == path:
                    blob = marshal.dumps(code)
                    item["code"] = name[:-3] + ".code"
                    item["code_sha256"] = _sha(blob)
                    atomic_write(self.directory, item["code"], blob)
                entries.append(item)
        atomic_write(self.directory, key.stem + ".json", json.dumps(index, indent=1, sort_keys=True).encode())
        self._note_written(key.stem, index)
        self._evict_locked(protect=f"{VERSION}/{key.stem}")
        return path, code

    def _note_written(self, stem: str, index: dict) -> None:
        """Record the key's size and last use (its index's mtime) in the ledger."""
        names = [stem + ".json"] + [n for item in index["entries"] for n in (item.get("file"), item.get("code")) if n]
        size, used = 0, 0.0
        for name in names:
            st = _lstat(os.path.join(self.directory, name))
            if st is not None:
                size += st.st_size
                if name == names[0]:
                    used = st.st_mtime
        self._ledger.sync(self._scan_sizes)
        self._ledger.record([[f"{VERSION}/{stem}", size, used]], self._scan_sizes)

    # ------------------------------------------------------------------ size bound
    def keys(self, all_versions: bool = True) -> list[KeyInfo]:
        """Every key on disk (grouped files, indexes parsed), oldest use first. A full scan: for
        ``xcs cache`` and explanations, never on the write path."""
        found: list[KeyInfo] = []
        for version, directory in self._version_dirs(all_versions):
            try:
                with _Dir(directory) as fd:
                    groups = _group(version, fd)
                    for info in groups.values():
                        if info.stem + ".json" in info.files:
                            try:
                                data = read_trusted(info.stem + ".json", "cache index", dir_fd=fd)
                                info.index = _parse_index(data or b"")
                            except (Unsafe, OSError):
                                info.index = None
            except (Unsafe, OSError):
                continue
            found.extend(groups.values())
        return sorted(found, key=lambda info: (info.last_used, info.stem))

    def _scan_sizes(self) -> dict[str, tuple[int, float]]:
        """``{"<version>/<stem>": (bytes, last use)}`` for every key on disk (no index is parsed)."""
        sizes = {}
        for version, directory in self._version_dirs(True):
            try:
                with _Dir(directory) as fd:
                    groups = _group(version, fd)
            except (Unsafe, OSError):
                continue
            for info in groups.values():
                sizes[f"{version}/{info.stem}"] = (info.size, info.last_used)
        return sizes

    def _version_dirs(self, all_versions: bool) -> Iterator[tuple[str, str]]:
        """(version, path) of the version directories under a root that is a real private directory."""
        try:
            _check_stat(os.lstat(self.root), "cache directory", self.root, directory=True)
        except (Unsafe, OSError):
            return
        if not all_versions:
            yield VERSION, self.directory
            return
        try:
            with os.scandir(self.root) as scan:
                names = sorted(e.name for e in scan if _VERSION_DIR.match(e.name) and e.is_dir(follow_symlinks=False))
        except OSError:
            return
        for name in names:
            yield name, os.path.join(self.root, name)

    def total_bytes(self) -> int:
        """The bytes of every key on disk (a full scan)."""
        return sum(size for size, _ in self._scan_sizes().values())

    def _evict_locked(self, protect: str | None = None, bound: int | None = None) -> list[str]:
        """Remove least recently used keys until the ledger's total is within the bound (``protect``,
        the key just written, goes last). Reads the ledger, and the index mtime of each candidate."""
        bound = max_bytes() if bound is None else bound
        ledger = self._ledger
        ledger.sync(self._scan_sizes)
        evicted: list[str] = []
        aside = None
        while ledger.total > bound:
            oldest = ledger.oldest()
            if oldest is None:
                break
            key, size, used = oldest
            if key == protect:
                aside = key
                continue
            version, stem = key.split("/", 1)
            st = _lstat(os.path.join(self.root, version, stem + ".json"))
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_mtime > used:
                ledger.record([[key, size, st.st_mtime]], self._scan_sizes)  # used since: look again later
                continue
            self._remove_key(version, stem)
            ledger.record([[key, None]], self._scan_sizes)
            evicted.append(key)
        if aside is not None and aside in ledger.live:
            if ledger.total > bound:
                _warn_once(
                    ("bound", self.root, bound),
                    f"ember-xcs plan cache {self.root}: XCS_CACHE_MAX_BYTES={bound} is smaller than one plan "
                    f"({ledger.live[aside][0]} bytes); that plan is kept in memory only",
                )
                version, stem = aside.split("/", 1)
                self._remove_key(version, stem)
                ledger.record([[aside, None]], self._scan_sizes)
                evicted.append(aside)
            else:
                ledger.push(aside)
        return evicted

    def _remove_key(self, version: str, stem: str) -> None:
        """Remove a key's files: its index, the plan and code files it names, and ``stem.py/.code``."""
        directory = os.path.join(self.root, version)
        try:
            with _Dir(directory) as fd:
                names = {stem + ".py", stem + ".code"}
                try:
                    index = _parse_index(read_trusted(stem + ".json", "cache index", dir_fd=fd) or b"")
                except Unsafe:
                    index = None
                for item in (index or {}).get("entries", ()):
                    names.update(n for n in (item.get("file"), item.get("code")) if n and n.startswith(stem + "."))
                self._unlink_all(fd, sorted(names) + [stem + ".json"])  # the index last
        except (Unsafe, FileNotFoundError):
            pass
        _remove_kernels(directory, stem)

    @staticmethod
    def _unlink_all(dir_fd: int, names: list[str]) -> int:
        removed = 0
        for name in names:
            try:
                os.unlink(name, dir_fd=dir_fd)  # removes the name: a symlink is not followed
                removed += 1
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                pass
        return removed

    def _remove(self, info: KeyInfo) -> None:
        with _Dir(os.path.join(self.root, info.version)) as fd:
            self._unlink_all(fd, sorted(info.files, key=lambda n: n.endswith(".json")))  # the index last
        _remove_kernels(os.path.join(self.root, info.version), info.stem)

    # ------------------------------------------------------------------ maintenance (xcs cache)
    def clear(self) -> int:
        """Remove every plan, index, code and temporary file of every version and the ledger; the number
        of plan, index and code files removed. ``Unsafe`` when the root or lock file is refused."""
        removed = 0
        with self._lock, self._file_lock():
            for _, directory in self._version_dirs(True):
                try:
                    with _Dir(directory) as fd:
                        with os.scandir(fd) as scan:
                            names = [e.name for e in scan if not e.is_dir(follow_symlinks=False)]
                        for name in names:
                            if name.endswith(".json") or _ENTRY_FILE.match(name):
                                removed += self._unlink_all(fd, [name])
                            elif name.startswith(".tmp-"):
                                self._unlink_all(fd, [name])
                except Unsafe:
                    continue
                _remove_kernels(directory, "")
                for path in (os.path.join(directory, NUMBA_DIR), directory):
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass
            with _Dir(self.root) as fd:
                self._unlink_all(fd, [LEDGER_NAME])
            self._ledger.reset()
        return removed

    def prune(self, bound: int | None = None) -> dict[str, int]:
        """Drop other versions' keys, keys whose index or plan files fail their checks, files no index
        names, anything not a regular file under a cache file's name (FIFO, device, symlink), stale
        temporary files; rebuild the ledger; then evict least recently used keys down to the bound.
        ``Unsafe`` when the root or lock file is refused."""
        counts = {"other_versions": 0, "broken": 0, "orphans": 0, "not_regular": 0, "temporary": 0, "evicted": 0}
        with self._lock, self._file_lock():
            for info in self.keys():
                directory = os.path.join(self.root, info.version)
                if info.version != VERSION:
                    self._remove(info)
                    counts["other_versions"] += 1
                    continue
                if info.index is None:
                    self._remove(info)
                    counts["broken"] += 1
                    continue
                wanted = {info.stem + ".json"}
                intact = True
                for item in info.index["entries"]:
                    if item.get("kind") != "plan":
                        continue
                    try:
                        data = read_trusted(os.path.join(directory, item["file"]), "cache plan file")
                    except (Unsafe, OSError):
                        data = None
                    if data is None or _sha(data) != item["sha256"]:
                        intact = False
                    wanted.update(n for n in (item["file"], item.get("code")) if n)
                if not intact:
                    self._remove(info)
                    counts["broken"] += 1
                    continue
                with _Dir(directory) as fd:
                    counts["orphans"] += self._unlink_all(fd, [n for n in info.files if n not in wanted])
            for _, directory in [("", self.root), *self._version_dirs(True)]:
                try:
                    with _Dir(directory) as fd:
                        with os.scandir(fd) as scan:
                            entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                                       for e in scan]
                        for name, is_dir, is_file in entries:
                            if name.startswith(".tmp-") and not is_dir:
                                # writers hold the lock we hold: every temporary file is stale
                                counts["temporary"] += self._unlink_all(fd, [name])
                            elif not is_dir and not is_file and directory != self.root and (
                                name.endswith(".json") or _ENTRY_FILE.match(name)
                            ):
                                counts["not_regular"] += self._unlink_all(fd, [name])
                except Unsafe:
                    continue
            self._ledger.rebuild(self._scan_sizes)
            counts["evicted"] = len(self._evict_locked(bound=bound))
        return counts

    def info(self) -> dict[str, Any]:
        """What ``xcs cache info`` prints: directory, status (checked now), totals, bound, versions."""
        keys = self.keys() if _lstat(self.root) is not None else []
        status = "ok" if self.usable() else f"memory only: {self.disabled}"
        if self.disabled is None:
            try:
                self._check_dirs()
            except Unsafe as exc:
                status = f"memory only: {exc}: refused"
        return {
            "directory": self.root,
            "version": VERSION,
            "codegen": CODEGEN_VERSION,
            "status": status,
            "keys": len(keys),
            "keys_this_version": sum(1 for k in keys if k.version == VERSION),
            "plans": sum(len([i for i in (k.index or {}).get("entries", ()) if i.get("kind") == "plan"]) for k in keys),
            "bytes": sum(k.size for k in keys),
            "max_bytes": max_bytes(),
            "versions": sorted({k.version for k in keys}),
        }


def _remove_kernels(directory: str, stem: str) -> None:
    """Remove numba's cached machine code of the plans of ``stem`` (every plan's when "") in
    ``directory``: it goes with its plan."""
    try:
        with _Dir(os.path.join(directory, NUMBA_DIR)) as fd:
            with os.scandir(fd) as scan:
                names = [
                    e.name for e in scan
                    if e.name.endswith((".nbi", ".nbc")) and (not stem or e.name.startswith(stem + "."))
                ]
            DiskCache._unlink_all(fd, sorted(names))
    except (Unsafe, OSError):
        pass


def _plan_file(key: DiskKey, number: int) -> str:
    return f"{key.stem}.py" if number == 0 else f"{key.stem}.{number + 1}.py"


def _parse_index(data: bytes) -> dict | None:
    try:
        index = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or not isinstance(index.get("key"), dict):
        return None
    entries = index.get("entries")
    if not isinstance(entries, list) or not all(isinstance(item, dict) for item in entries):
        return None
    for item in entries:
        if item.get("kind") == "plan":
            name = item.get("file")
            if not isinstance(name, str) or os.sep in name or "/" in name or not name.endswith(".py"):
                return None
            if not isinstance(item.get("sha256"), str):
                return None
            code = item.get("code")
            if code is not None and (not isinstance(code, str) or "/" in code or os.sep in code):
                return None
        elif item.get("kind") != "eager":
            return None
    return index


# ---------------------------------------------------------------------- one cache per root
_CACHES: dict[str, DiskCache] = {}
_CACHES_LOCK = threading.Lock()


def disk_enabled() -> bool:
    return os.environ.get("XCS_DISK_CACHE", "1").strip().lower() not in ("0", "off", "false", "no")


def disk_cache(root: str | None = None) -> DiskCache | None:
    """The ``DiskCache`` of ``root`` (default: ``XCS_CACHE_DIR`` or the user cache directory), or
    ``None`` when ``XCS_DISK_CACHE=0``. One object per root per process."""
    if root is None and not disk_enabled():
        return None
    root = os.path.abspath(os.path.expanduser(root or cache_dir()))
    cache = _CACHES.get(root)
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.setdefault(root, DiskCache(root))
    return cache


# ---------------------------------------------------------------------- plan files for review
def review_file_name(operator: str, flat_signature: dict[str, str], source: str) -> str:
    """``<module.Operator>--<key=type,...>[-<guard>].py``: stable across runs, machines and Python
    versions (a digest replaces a long signature; a guarded path adds a digest of its guard)."""
    slug = ",".join(f"{k}={v}" for k, v in flat_signature.items())
    slug = re.sub(r"[^\w.=,\[\]-]", "_", slug)
    if len(slug) > 80 or not slug:
        slug = "sig-" + _sha(json.dumps(list(flat_signature.items())).encode())[:10]
    name = f"{operator}--{slug}"
    guard = re.search(r"^def guard\(.*?(?=^\S|\Z)", source, re.M | re.S)
    if guard:
        name += "-" + _sha(guard.group(0).encode())[:8]
    return name + ".py"


def write_review_file(plan_dir: str, name: str, source: str) -> str | None:
    """Write ``source`` to ``plan_dir/name`` unless it already holds exactly that text."""
    path = os.path.join(plan_dir, name)
    st = _lstat(path) if os.path.isdir(plan_dir) else None
    if st is not None and not stat.S_ISREG(st.st_mode):  # never open (or replace) a FIFO, device, symlink...
        _warn_once(("plan_dir", path), f"ember-xcs: plan file {path} is {_kind(st.st_mode)}: not written")
        return None
    if st is not None:
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
            try:
                if _read_fd(fd) == source.encode("utf-8"):
                    return path
            finally:
                os.close(fd)
        except OSError:
            pass
    try:
        os.makedirs(plan_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=plan_dir)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(source)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return path
    except OSError as exc:
        _warn_once(("plan_dir", plan_dir), f"ember-xcs: cannot write plan files to {plan_dir}: {exc}")
        return None


__all__ = [
    "DiskCache", "DiskKey", "KeyInfo", "Loaded", "PlanCacheWarning", "compile_plan", "disk_cache",
    "max_bytes", "review_file_name", "write_review_file",
]
