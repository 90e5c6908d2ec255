"""The persistent plan cache: plan files under ``XCS_CACHE_DIR`` that a later process imports instead
of capturing again.

Layout (readable by a person)::

    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.json    the key's index
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.py      its first plan
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.2.py    another traced path
    <root>/<ember-xcs version>/<module.Operator>-<structure>-<signature>.code    compiled code of .py

``<signature>`` digests the canonical input signature together with the Python and codegen versions
and the jit capture mode.
The index (JSON) names the whole key, the plan files in the order their paths were captured, each with
the SHA-256 of its text, and the graph break of a signature that runs eagerly.

Safety: the cache runs as code. The root and version directories are created ``0o700`` and must be
owned by the user and not writable by group or others; entries are opened without following symlinks
and must be regular files owned by the user, not writable by others. Anything else turns the disk cache
off for the process (memory only) with one ``PlanCacheWarning``, as does a cache that cannot be
written. A plan file is imported only after its content hash matched the index, and from the bytes that
were checked (never re-read); a truncated, edited or foreign file is not executed: it is recompiled,
with one warning. Writes go to a temporary file renamed into place, under a ``filelock`` lock shared by
all processes; the total size is bounded by ``XCS_CACHE_MAX_BYTES`` (least recently used keys go first).
"""

from __future__ import annotations

import errno
import hashlib
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

from compiler.cache import cache_dir, compile_plan, import_plan, plan_module_name
from compiler.codegen import CODEGEN_VERSION, VERSION
from runtime.plan import Plan

INDEX_FORMAT = 1
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
LOCK_NAME = ".xcs-cache.lock"
LOCK_TIMEOUT = 30.0
STALE_TMP_SECONDS = 3600
PLAN_HEADER = "# ember-xcs plan: "
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_ENTRY_FILE = re.compile(r"^(?P<stem>.+?)(?:\.(?P<n>\d+))?\.(?P<ext>py|code)$")
_VERSION_DIR = re.compile(r"^\d+\.\d+[\w.+-]*$")


class PlanCacheWarning(UserWarning):
    """The disk plan cache is off for this process, or one of its files was refused."""


class Unsafe(Exception):
    """A cache entry or directory that must not be trusted (symlink, foreign owner, writable by others)."""


@dataclass(frozen=True)
class DiskKey:
    """Everything a plan depends on, computable before capture; ``stem`` names its files."""

    operator: str  # module.Qualname, made file-name safe
    structure: str
    signature: str  # canonical_signature(...)
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


def max_bytes() -> int:
    """``XCS_CACHE_MAX_BYTES`` (an integer, optionally with a K/M/G suffix), else 256 MiB."""
    text = os.environ.get("XCS_CACHE_MAX_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    match = re.fullmatch(r"(\d+)\s*([kKmMgG]?)i?[bB]?", text)
    if not match:
        _warn_once(("max-bytes", text), f"XCS_CACHE_MAX_BYTES={text!r} is not a size; using {DEFAULT_MAX_BYTES}")
        return DEFAULT_MAX_BYTES
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * scale


_WARNED: set = set()
_WARN_LOCK = threading.Lock()


def _warn_once(token: Any, message: str) -> None:
    with _WARN_LOCK:
        if token in _WARNED:
            return
        _WARNED.add(token)
    warnings.warn(message, PlanCacheWarning, stacklevel=2)


def _check_stat(st: os.stat_result, what: str, path: str, *, directory: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise Unsafe(f"{what} {path} is a symlink")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise Unsafe(f"{what} {path} is not a directory")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise Unsafe(f"{what} {path} is not a regular file")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise Unsafe(f"{what} {path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        raise Unsafe(f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):#o})")


def read_trusted(path: str) -> bytes | None:
    """The bytes of cache file ``path``, or ``None`` when it does not exist; ``Unsafe`` when it is a
    symlink, not a regular file, not the user's, or writable by others."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise Unsafe(f"cache entry {path} is a symlink") from None
        raise
    try:
        _check_stat(os.fstat(fd), "cache entry", path, directory=False)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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


class DiskCache:
    """The plan files of one cache root. Thread-safe; processes coordinate through a file lock."""

    def __init__(self, root: str):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.directory = os.path.join(self.root, VERSION)
        self.disabled: str | None = None
        self._prepared = False
        self._lock = threading.RLock()

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
        data = read_trusted(path)
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
        are skipped: those plans are already in memory). Bad files are reported once and skipped."""
        if not self.usable():
            return []
        try:
            index = self.read_index(key)
            if index is None:
                return []
            loaded = []
            for number, item in enumerate(index["entries"]):
                if item.get("kind") == "eager":
                    if "eager" not in known:
                        loaded.append(Loaded("eager", brk=item.get("break") or {}))
                    continue
                if item["sha256"] in known:
                    continue
                entry = self._load_plan(key, item)
                if entry is not None:
                    loaded.append(entry)
            try:
                os.utime(self._index_path(key))  # least recently *used*: mark the key
            except OSError:
                pass
            return loaded
        except Unsafe as exc:
            self.disable(f"{exc}: refused")
            return []
        except OSError:
            return []

    def _load_plan(self, key: DiskKey, item: dict) -> Loaded | None:
        path = os.path.join(self.directory, item["file"])
        data = read_trusted(path)
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
        data = read_trusted(os.path.join(self.directory, name))
        if data is None or _sha(data) != item.get("code_sha256"):
            return None  # the text was verified: compile it instead
        try:
            code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, types.CodeType) and code.co_filename == path else None

    # ------------------------------------------------------------------ writing
    def _file_lock(self) -> Any:
        import filelock

        return filelock.FileLock(os.path.join(self.root, LOCK_NAME), timeout=LOCK_TIMEOUT, mode=0o600)

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
        if self._prepared and self.disabled is None and not os.path.isdir(self.directory):
            with self._lock:  # removed meanwhile (``xcs cache clear``): prepare it again
                self._prepared = False
        if not self.usable():
            return None, None
        import filelock

        try:
            with self._lock, self._file_lock():
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
            data = read_trusted(os.path.join(self.directory, item["file"]))
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
                item = {"kind": "plan", "file": name, "sha256": digest, "bytes": len(data)}
                code = compile_for(path)
                if code is not None and code.co_filename == path:
                    blob = marshal.dumps(code)
                    item["code"] = name[:-3] + ".code"
                    item["code_sha256"] = _sha(blob)
                    atomic_write(self.directory, item["code"], blob)
                entries.append(item)
        atomic_write(self.directory, key.stem + ".json", json.dumps(index, indent=1, sort_keys=True).encode())
        self._evict_locked(protect=key.stem)
        return path, code

    # ------------------------------------------------------------------ size bound
    def keys(self, all_versions: bool = True) -> list[KeyInfo]:
        """Every key on disk (grouped files), oldest use first."""
        groups: dict[tuple[str, str], KeyInfo] = {}
        for version, directory in self._version_dirs(all_versions):
            try:
                scan = list(os.scandir(directory))
            except OSError:
                continue
            for entry in scan:
                if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                    continue
                if entry.name.endswith(".json"):
                    stem = entry.name[:-5]
                else:
                    match = _ENTRY_FILE.match(entry.name)
                    if not match:
                        continue
                    stem = match.group("stem")
                info = groups.setdefault((version, stem), KeyInfo(version, stem, None))
                st = entry.stat(follow_symlinks=False)
                info.files.append(entry.name)
                info.size += st.st_size
                if entry.name.endswith(".json"):
                    info.last_used = st.st_mtime
                    try:
                        info.index = _parse_index(read_trusted(entry.path) or b"")
                    except (Unsafe, OSError):
                        info.index = None
        return sorted(groups.values(), key=lambda info: (info.last_used, info.stem))

    def _version_dirs(self, all_versions: bool) -> Iterator[tuple[str, str]]:
        if not all_versions:
            yield VERSION, self.directory
            return
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return
        for name in names:
            path = os.path.join(self.root, name)
            if _VERSION_DIR.match(name) and os.path.isdir(path) and not os.path.islink(path):
                yield name, path

    def total_bytes(self) -> int:
        return sum(info.size for info in self.keys())

    def _evict_locked(self, protect: str | None = None, bound: int | None = None) -> list[KeyInfo]:
        bound = max_bytes() if bound is None else bound
        keys = self.keys()
        total = sum(info.size for info in keys)
        evicted = []
        order = [k for k in keys if k.stem != protect] + [k for k in keys if k.stem == protect]
        for info in order:
            if total <= bound:
                break
            if info.stem == protect:
                _warn_once(
                    ("bound", self.root, bound),
                    f"ember-xcs plan cache {self.root}: XCS_CACHE_MAX_BYTES={bound} is smaller than one plan "
                    f"({info.size} bytes); that plan is kept in memory only",
                )
            self._remove(info)
            total -= info.size
            evicted.append(info)
        return evicted

    def _remove(self, info: KeyInfo) -> None:
        directory = os.path.join(self.root, info.version)
        for name in sorted(info.files, key=lambda n: n.endswith(".json")):  # the index last
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ maintenance (xcs cache)
    def clear(self) -> int:
        """Remove every plan, index, code and temporary file of every version; the number removed."""
        removed = 0
        with self._lock, self._file_lock():
            for _, directory in self._version_dirs(True):
                for entry in list(os.scandir(directory)):
                    if entry.is_dir(follow_symlinks=False):
                        continue
                    if entry.name.startswith(".tmp-") or entry.name.endswith(".json") or _ENTRY_FILE.match(entry.name):
                        os.unlink(entry.path)
                        removed += 1
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
        return removed

    def prune(self, bound: int | None = None) -> dict[str, int]:
        """Drop other versions' keys, keys whose index or plan files fail their checks, files no
        index names, stale temporary files; then evict least recently used keys down to the bound."""
        counts = {"other_versions": 0, "broken": 0, "orphans": 0, "temporary": 0, "evicted": 0}
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
                        data = read_trusted(os.path.join(directory, item["file"]))
                    except (Unsafe, OSError):
                        data = None
                    if data is None or _sha(data) != item["sha256"]:
                        intact = False
                    wanted.update(n for n in (item["file"], item.get("code")) if n)
                if not intact:
                    self._remove(info)
                    counts["broken"] += 1
                    continue
                for name in info.files:
                    if name not in wanted:
                        os.unlink(os.path.join(directory, name))
                        counts["orphans"] += 1
            now = time.time()
            for _, directory in self._version_dirs(True):
                for entry in list(os.scandir(directory)):
                    if entry.name.startswith(".tmp-") and now - entry.stat(follow_symlinks=False).st_mtime > 0:
                        os.unlink(entry.path)  # writers hold the lock we hold: every temporary file is stale
                        counts["temporary"] += 1
            counts["evicted"] = len(self._evict_locked(bound=bound))
        return counts

    def info(self) -> dict[str, Any]:
        keys = self.keys() if os.path.isdir(self.root) else []
        return {
            "directory": self.root,
            "version": VERSION,
            "codegen": CODEGEN_VERSION,
            "status": "ok" if self.usable() else f"memory only: {self.disabled}",
            "keys": len(keys),
            "keys_this_version": sum(1 for k in keys if k.version == VERSION),
            "plans": sum(len([i for i in (k.index or {}).get("entries", ()) if i.get("kind") == "plan"]) for k in keys),
            "bytes": sum(k.size for k in keys),
            "max_bytes": max_bytes(),
            "versions": sorted({k.version for k in keys}),
        }


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
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == source:
                return path
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
