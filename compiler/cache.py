"""The plan cache: cache keys (structure hash, input signature), the in-memory LRU, plan files.

A key never contains values or object identities. The structure hash covers the operator classes, their
``forward`` code and source, the sub-operator tree and static attribute values; the signature covers
the input mapping's keys, nesting and leaf types. Plans are written as real files (atomically) and
imported under a registered module name, so tracebacks and ``linecache`` show the generated code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import threading
import types
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable, Hashable, Iterator, Mapping

from runtime.plan import Plan

PLAN_PACKAGE = "xcs_plans"
LEAF_TYPES = (str, int, float, bool, type(None), bytes)


# ---------------------------------------------------------------------- signatures
def signature(inputs: Mapping[str, Any]) -> tuple:
    """The input signature: keys in order, nesting of mappings, and leaf types (arrays: dtype, ndim)."""
    return tuple((key, _leaf(value)) for key, value in inputs.items())


def _leaf(value: Any) -> Hashable:
    kind = type(value)
    if kind is dict or (kind not in LEAF_TYPES and isinstance(value, Mapping)):
        return (kind, signature(value))
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "shape") and kind not in LEAF_TYPES:
        return (kind, str(dtype), len(value.shape))
    return kind


def signature_text(sig: tuple) -> str:
    """``{query: str, options: {k: int}}``: the readable form used in plan headers."""

    def leaf(value: Any) -> str:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple):
            return signature_text(value[1])
        if isinstance(value, tuple):
            return f"{value[0].__name__}[{value[1]}, ndim={value[2]}]"
        return value.__name__

    return "{" + ", ".join(f"{key}: {leaf(value)}" for key, value in sig) + "}"


# ---------------------------------------------------------------------- structure hash
def structure_hash(root: Any, is_operator: Callable[[Any], bool]) -> str:
    """A hex digest of everything about ``root`` that a plan depends on, except the inputs."""
    digest = hashlib.sha256()
    for part in _structure(root, is_operator, "", []):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _structure(value: Any, is_operator: Callable[[Any], bool], path: str, active: list) -> Iterator[str]:
    if is_operator(value):
        if any(value is seen for seen in active):  # a cycle in the operator tree: never recurse
            yield f"{path}=<cycle>"
            return
        active.append(value)
        cls = type(value)
        yield f"{path}={cls.__module__}.{cls.__qualname__}"
        for klass in cls.__mro__:
            if "forward" in vars(klass):
                yield code_fingerprint(vars(klass)["forward"])
                break
        for name, attr in vars(value).items():
            if not name.startswith("_xcs"):
                yield from _structure(attr, is_operator, f"{path}.{name}", active)
        active.pop()
    elif type(value) in (list, tuple):
        yield f"{path}:{type(value).__name__}[{len(value)}]"
        for index, item in enumerate(value):
            yield from _structure(item, is_operator, f"{path}[{index}]", active)
    elif type(value) is dict:
        yield f"{path}:dict[{len(value)}]"
        for key, item in value.items():
            yield from _structure(item, is_operator, f"{path}[{key!r}]", active)
    elif type(value) in LEAF_TYPES:
        yield f"{path}:{value!r}"
    elif isinstance(value, types.FunctionType):
        yield f"{path}:{code_fingerprint(value)}"
    else:
        yield f"{path}:{type(value).__module__}.{type(value).__qualname__}"


_FINGERPRINTS: dict[Any, str] = {}


def code_fingerprint(func: Any) -> str:
    """A digest of a function's bytecode, constants, names and source text (memoised by code object)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', type(func).__name__)}"
    known = _FINGERPRINTS.get(code)
    if known is None:
        digest = hashlib.sha256()
        try:  # the source is the same on every Python version; bytecode only where there is none
            digest.update(inspect.getsource(func).encode())
        except (OSError, TypeError):
            _code_parts(code, digest)
        known = _FINGERPRINTS[code] = digest.hexdigest()[:16]
    return known


def _code_parts(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_parts(const, digest)
        else:
            digest.update(repr(const).encode())


# ---------------------------------------------------------------------- memory cache
class PlanCache:
    """A bounded, thread-safe LRU of plans; ``compile_lock(key)`` serialises first compiles of a key."""

    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, list] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> list | None:
        entries = self._entries.get(key)
        if entries is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile
                pass
        return entries

    def add(self, key: Hashable, entry: Any) -> None:
        with self._lock:
            entries = self._entries.get(key)
            self._entries[key] = [*(entries or ()), entry]
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                old, _ = self._entries.popitem(last=False)
                self._key_locks.pop(old, None)

    def compile_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._key_locks.clear()

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------- plan files
def cache_dir() -> str:
    """``XCS_CACHE_DIR``, else the user's cache directory for ember-xcs."""
    configured = os.environ.get("XCS_CACHE_DIR")
    if configured:
        return configured
    import platformdirs

    return platformdirs.user_cache_dir("ember-xcs")


def plan_file_name(operator: str, structure: str, source: str) -> str:
    """``<module.Operator>-<structure>-<content>.py``: readable, stable, unique per plan text."""
    content = hashlib.sha256(source.encode()).hexdigest()[:12]
    return f"{operator}-{structure[:12]}-{content}.py"


def load_plan(source: str, file_name: str, directory: str | None = None) -> Plan:
    """Write ``source`` to ``directory/file_name`` atomically and import it as a registered module."""
    from compiler.codegen import VERSION

    directory = os.path.join(directory or cache_dir(), VERSION)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, file_name)
    if not _same_content(path, source):
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".py", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(source)
        os.replace(tmp, path)
    module_name = f"{PLAN_PACKAGE}.{file_name[:-3].replace('.', '_').replace('-', '_')}"
    sys.modules.setdefault(PLAN_PACKAGE, types.ModuleType(PLAN_PACKAGE))
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__xcs_source__", None) != source:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        module.__xcs_source__ = source
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return replace(module.PLAN, source=source, filename=path)


def _same_content(path: str, source: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == source
    except OSError:
        return False
