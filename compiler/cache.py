"""The plan cache: the cache ``Key`` (structure hash, input signature, Python version), the structure
hash, the in-memory LRU, plan files.

A key never contains values or object identities. The structure hash covers the operator classes, their
``forward`` code and source, the sub-operator tree and static attribute values; the signature
(``compiler.signature``) covers the input mapping's keys, nesting and leaf types. Plans are written as
real files (atomically) and imported under a registered module name, so tracebacks and ``linecache``
show the generated code.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import linecache
import os
import re
import sys
import tempfile
import threading
import types
from collections import OrderedDict
from dataclasses import replace
from operator import itemgetter
from typing import Any, Callable, Hashable, Iterator

from xcs.compiler.ir import canonical_repr
from xcs.compiler.sharing import Holdings
from xcs.compiler.signature import LEAF_TYPES, Signature
from xcs.compiler.trace import library_file, relative_file
from xcs.runtime.plan import Plan

PLAN_PACKAGE = "xcs_plans"
PYTHON = sys.version_info[:2]  # plans are cached per Python version; their text is the same on all


class Key(tuple):
    """The in-memory cache key: ``(structure hash, Signature, Python version)``, a plain tuple underneath
    (built and hashed as cheaply as one). Built by ``Key.of(structure, signature)``, for this process's
    Python; ``structure``, ``signature`` and ``python`` name its parts. The ember-xcs and codegen versions are the process's own: the disk form
    (``compiler.disk_cache.DiskKey``) adds them."""

    __slots__ = ()

    @classmethod
    def of(cls, structure: str, signature: Signature) -> Key:
        return cls((structure, signature, PYTHON))

    structure = property(itemgetter(0))
    signature = property(itemgetter(1))
    python = property(itemgetter(2))

    @property
    def python_text(self) -> str:
        return "%d.%d" % self[2]


# ---------------------------------------------------------------------- structure hash
# ``_structure`` yields ``(group, text)`` parts. The digest covers the texts only; the groups name the
# component a part belongs to (``code Judge.forward``, ``helper mod.fn``, ``attribute .members``), so a
# cache miss can say which component changed. Parts added for key completeness (other methods, class
# constants, helpers, the state of plain-data attributes) are only yielded when present, so operators
# without them keep the digests they always had.
def defined_name(obj: Any) -> str:
    """``file.py:Qualname`` for a class or function of a user's module (its repository-relative file:
    the same whatever directory or package root it was imported from, ``__main__`` included);
    ``module.Qualname`` for the standard library, installed packages and modules without a file."""
    module = getattr(obj, "__module__", None) or ""
    file = getattr(sys.modules.get(module), "__file__", None)
    qualname = getattr(obj, "__qualname__", type(obj).__name__)
    if not file or library_file(file):
        return f"{module}.{qualname}"
    # repository-relative (outside any repository: the file's name): never an absolute path, so the hash
    # is the same wherever the project lives; two same-named files differ by their code's fingerprints
    return f"{relative_file(file)}:{qualname}"


def structure_hash(root: Any, is_operator: Callable[[Any], bool]) -> str:
    """A hex digest of everything about ``root`` that a plan depends on, except the inputs."""
    digest = hashlib.sha256()
    for _, part in _structure(root, is_operator, "", [], {}):
        digest.update(part.encode())
        digest.update(b"\0")
    for k, op in enumerate(_operators(root, is_operator)):  # objects two operators hold: ordered calls
        for part in Holdings(op, is_operator, library_file).shared_paths():
            digest.update(f"{k}:{part}".encode())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def _operators(root: Any, is_operator: Callable[[Any], bool]) -> list[Any]:
    """The operators ``root`` is or lists (the driver hashes ``(operator, mode, ...)``, or a jitted
    function with the operators it names)."""
    if is_operator(root):
        return [root]
    if isinstance(root, (tuple, list)):
        return [op for item in root for op in _operators(item, is_operator)]
    return []


def structure_components(root: Any, is_operator: Callable[[Any], bool]) -> dict[str, str]:
    """``{component: short digest}``: what ``structure_hash`` covers, grouped for explanations."""
    digests: dict[str, Any] = {}
    seen: set[tuple[str, str]] = set()
    for group, part in _structure(root, is_operator, "", [], {}):
        if group is None:
            match = _TOP.match(part)
            group = f"attribute {match.group(0)}" if match and match.group(0) else "operator"
        elif (group, part) in seen:  # the same class's code, once per instance: count it once
            continue
        seen.add((group, part))
        digest = digests.get(group)
        if digest is None:
            digest = digests[group] = hashlib.sha256()
        digest.update(part.encode())
        digest.update(b"\0")
    return {group: digest.hexdigest()[:8] for group, digest in digests.items()}


_TOP = re.compile(r"^(\.[^.\[=:]+|\[[^\]]*\])?")
_SKIPPED = frozenset({
    "__init__", "forward", "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
    "__xcs_jit__", "__annotations__", "__firstlineno__", "__static_attributes__", "__orig_bases__",
    "__parameters__", "__slots__", "__classcell__", "__type_params__",
})
Part = tuple  # (group | None, text)


def _structure(
    value: Any, is_operator: Callable[[Any], bool], path: str, active: list, classes: dict
) -> Iterator[Part]:
    if is_operator(value):
        if any(value is seen for seen in active):  # a cycle in the operator tree: never recurse
            yield None, f"{path}=<cycle>"
            return
        traced = not active  # no operator above it: sub-operators run as steps, their helpers never reach the plan
        active.append(value)
        cls = type(value)
        yield None, f"{path}={defined_name(cls)}"
        for klass in cls.__mro__:
            if "forward" in vars(klass):
                yield f"code {klass.__qualname__}.forward", code_fingerprint(vars(klass)["forward"])
                break
        if traced:
            yield from _class_parts(cls)
        for name, attr in tuple(vars(value).items()):  # a snapshot: other threads may add _xcs_ caches
            if name == "__xcs_jit__":  # jit(instance)'s options: named, not expanded
                yield None, f"{path}.{name}:{type(attr).__module__}.{type(attr).__qualname__}"
            elif not name.startswith("_xcs"):
                yield from _structure(attr, is_operator, f"{path}.{name}", active, classes)
        active.pop()
    elif type(value) in (list, tuple) or (isinstance(value, list) and getattr(value, "__xcs_frozen__", False)):
        yield None, f"{path}:{'tuple' if isinstance(value, tuple) else 'list'}[{len(value)}]"
        for index, item in enumerate(value):
            yield from _structure(item, is_operator, f"{path}[{index}]", active, classes)
    elif type(value) is dict or (isinstance(value, dict) and getattr(value, "__xcs_frozen__", False)):
        yield None, f"{path}:dict[{len(value)}]"
        for key, item in value.items():
            yield from _structure(item, is_operator, f"{path}[{canonical_repr(key)}]", active, classes)
    elif type(value) in LEAF_TYPES:
        yield None, f"{path}:{value!r}"
    elif isinstance(value, types.FunctionType):
        yield None, f"{path}:{code_fingerprint(value)}"
        yield from _helpers(value, set(), 0)
    else:
        yield None, f"{path}:{defined_name(type(value))}"
        if not any(value is seen for seen in active):
            active.append(value)
            yield from _state(value, is_operator, path, active, classes)
            active.pop()


def _class_parts(cls: type) -> Iterator[Part]:
    """Methods other than ``forward``/``__init__`` and class constants of ``cls`` and its bases
    (up to ``Operator``), and the helpers every method refers to."""
    seen: set = set()
    forward_done = False
    for klass in cls.__mro__:
        if klass.__module__ in ("xcs.operator", "builtins") or klass.__name__ == "JittedFunction":
            continue
        own = vars(klass)
        if "forward" in own:
            if forward_done:  # an overridden forward reachable through super()
                yield f"code {klass.__qualname__}.forward", "super:" + code_fingerprint(own["forward"])
            forward_done = True
            yield from _helpers(own["forward"], seen, 0)
        for name, member in own.items():
            if name in _SKIPPED:
                continue
            func = _function_of(member)
            if func is not None:
                yield f"code {klass.__qualname__}.{name}", f"@{klass.__qualname__}.{name}:{code_fingerprint(func)}"
                yield from _helpers(func, seen, 0)
            elif not name.startswith("__") and _literal(member):
                yield f"class attribute {klass.__qualname__}.{name}", f"@{klass.__qualname__}.{name}={canonical_repr(member)}"


def _function_of(member: Any) -> Any:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    return member if isinstance(member, types.FunctionType) else None


def _literal(value: Any) -> bool:
    if type(value) in LEAF_TYPES:
        return True
    if type(value) in (tuple, frozenset):
        return all(_literal(v) for v in value)
    return False


_NAMES: dict[types.CodeType, tuple[str, ...]] = {}


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """Every name ``code`` (and the code nested in it: comprehensions, lambdas) loads by name."""
    known = _NAMES.get(code)
    if known is None:
        names = dict.fromkeys(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names.update(dict.fromkeys(_global_names(const)))
        known = _NAMES[code] = tuple(names)
    return known


MAX_HELPER_DEPTH = 8


def _helpers(func: Any, seen: set, depth: int) -> Iterator[Part]:
    """Functions that ``func`` refers to through its globals (``helper(...)``, ``module.helper(...)``)
    or its closure, recursively: their source is part of the plan's key."""
    code = getattr(func, "__code__", None)
    if code is None or depth > MAX_HELPER_DEPTH:
        return
    globals_ = getattr(func, "__globals__", None) or {}
    names = _global_names(code)
    found: list = []
    for name in names:
        value = globals_.get(name)
        if isinstance(value, types.FunctionType):
            found.append(value)
        elif isinstance(value, types.ModuleType):
            for attr in names:
                member = vars(value).get(attr)
                if isinstance(member, types.FunctionType):
                    found.append(member)
    for cell in getattr(func, "__closure__", None) or ():
        try:
            if isinstance(cell.cell_contents, types.FunctionType):
                found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    for helper in found:
        if helper.__code__ in seen:
            continue
        seen.add(helper.__code__)
        name = defined_name(helper)
        yield f"helper {name}", f"->{name}:{code_fingerprint(helper)}"
        yield from _helpers(helper, seen, depth + 1)


MAX_STATE_DEPTH = 3


def _state(value: Any, is_operator: Callable[[Any], bool], path: str, active: list, classes: dict) -> Iterator[Part]:
    """The values a plan may have folded from a non-literal static attribute: classes by name, enum
    members, sets, and the fields of plain-data objects (dataclasses, namespaces, public attributes)."""
    if isinstance(value, type):
        yield None, f"{path}:class {defined_name(value)}"
    elif isinstance(value, enum.Enum):
        yield None, f"{path}:{type(value).__qualname__}.{value.name}"
    elif isinstance(value, (set, frozenset)):
        if all(_literal(v) for v in value):
            yield None, f"{path}:{{{', '.join(sorted(canonical_repr(v) for v in value))}}}"
    elif isinstance(value, functools.partial):
        yield from _structure(value.func, is_operator, f"{path}.func", active, classes)
        yield from _structure(list(value.args), is_operator, f"{path}.args", active, classes)
        yield from _structure(dict(value.keywords), is_operator, f"{path}.keywords", active, classes)
    elif isinstance(value, (types.ModuleType, types.BuiltinFunctionType, types.MethodType)):
        return
    elif dataclasses.is_dataclass(value) or isinstance(value, types.SimpleNamespace):
        names = [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else list(vars(value))
        depth = sum(1 for seen in active if not is_operator(seen))
        if depth <= MAX_STATE_DEPTH:
            for name in names:
                yield from _structure(getattr(value, name, None), is_operator, f"{path}.{name}", active, classes)
    else:  # any other object: its public attributes of literal types only
        attrs = getattr(value, "__dict__", None)
        if isinstance(attrs, dict):
            for name, attr in tuple(attrs.items()):
                if not name.startswith("_") and _literal(attr):
                    yield None, f"{path}.{name}:{canonical_repr(attr)}"


def code_fingerprint(func: Any) -> str:
    """A digest of a function's first line and source text (bytecode, constants and names where there is
    no source), memoised on the function
    (``__xcs_fingerprint__``: the code object it was computed for, and the digest).

    The memo belongs to the function, not to an equal code object: two code objects compiled from
    sources that differ only in a comment or quote style compare equal, but their sources differ."""
    code = getattr(func, "__code__", None)
    if code is None:
        return defined_name(func)
    owner = getattr(func, "__func__", func)  # a bound method's function
    known = getattr(owner, "__xcs_fingerprint__", None)
    if known is not None and known[0] is code:
        return known[1]
    digest = hashlib.sha256()
    # where it starts: a plan names the user's lines (comments, statements run as written), so code moved
    # by an edit above it is a new key, never a plan pointing at old lines (snapshots do not show the hash)
    digest.update(str(code.co_firstlineno).encode())
    try:  # the source is the same on every Python version; bytecode only where there is none
        digest.update(inspect.getsource(func).encode())
    except (OSError, TypeError):
        _code_parts(code, digest)
    fingerprint = digest.hexdigest()[:16]
    try:
        owner.__xcs_fingerprint__ = (code, fingerprint)
    except (AttributeError, TypeError):  # a callable that takes no attributes: not memoised
        pass
    return fingerprint


def _code_parts(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_parts(const, digest)
        else:
            digest.update(repr(const).encode())


# ---------------------------------------------------------------------- memory cache
class KeyStats:
    """Counters of one cache key (one operator structure and input signature) in this process."""

    __slots__ = ("hits", "misses", "captures", "disk_loads")

    def __init__(self) -> None:
        self.hits = self.misses = self.captures = self.disk_loads = 0


class Entries(list):
    """The cache entries of one key, in capture order, and the key's counters (``stats``).

    Lists are replaced, never changed in place, so a reader iterating one is never disturbed."""

    __slots__ = ("stats",)


class PlanCache:
    """A bounded, thread-safe LRU of plans; ``compile_lock(key)`` serialises first compiles of a key.

    ``get`` returns the key's ``Entries`` (a list) or ``None``; ``max_entries`` bounds the number of keys.
    The cache owns the plan modules its entries came from (``import_plan``): when no entry holds a plan
    of a module any more (evicted, or ``clear``), the module leaves ``sys.modules`` and its text leaves
    ``linecache``, so memory stays bounded however many signatures rotate through. A plan still in use
    keeps working (its functions hold their globals); only its traceback lines are gone.
    """

    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Entries] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._modules: dict[str, int] = {}  # plan module name -> entries holding a plan of it

    def get(self, key: Hashable) -> Entries | None:
        entries = self._entries.get(key)
        if entries is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile
                pass
        return entries

    def add(self, key: Hashable, entry: Any, stats: Any = None) -> Entries:
        with self._lock:
            old = self._entries.get(key)
            entries = Entries([*(old or ()), entry])
            entries.stats = stats or getattr(old, "stats", None) or KeyStats()
            self._entries[key] = entries
            self._entries.move_to_end(key)
            held = _plan_module(entry)
            if held is not None:
                self._modules[held[0]] = self._modules.get(held[0], 0) + 1
            while len(self._entries) > self.max_entries:
                evicted, gone = self._entries.popitem(last=False)
                self._key_locks.pop(evicted, None)
                self._release(gone)
            return entries

    def compile_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            for entries in self._entries.values():
                self._release(entries)
            self._entries.clear()
            self._key_locks.clear()

    def _release(self, entries: Entries) -> None:
        """``entries`` left the cache: unload the plan modules no entry holds any more (lock held)."""
        for entry in entries:
            held = _plan_module(entry)
            if held is None:
                continue
            name, filename = held
            count = self._modules.get(name, 0) - 1
            if count > 0:
                self._modules[name] = count
                continue
            self._modules.pop(name, None)
            unload_plan(name, filename)

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
    from xcs.compiler.codegen import VERSION

    directory = os.path.join(directory or cache_dir(), VERSION)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, file_name)
    if not _same_content(path, source):
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".py", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(source)
        os.replace(tmp, path)
    return import_plan(source, path, plan_module_name(file_name[:-3]))


def plan_module_name(file_stem: str) -> str:
    """The registered module name of a plan file: ``xcs_plans.<file stem with _ for . and ->``."""
    return f"{PLAN_PACKAGE}.{re.sub(r'[^0-9A-Za-z_]', '_', file_stem)}"


def compile_plan(source: str, filename: str) -> types.CodeType:
    return compile(source, filename, "exec", dont_inherit=True)


class _SourceLoader:
    """The ``__loader__`` of a plan module: hands ``linecache`` the verified text, never the file."""

    def __init__(self, source: str):
        self.source = source

    def get_source(self, name: str) -> str:
        return self.source


def import_plan(source: str, filename: str, module_name: str, code: types.CodeType | None = None) -> Plan:
    """Run plan text (or ``code``, compiled from exactly that text) as the registered module
    ``module_name`` and return its ``PLAN``. The file is never read again here: what runs is what the
    caller verified. ``linecache`` gets the same text, so tracebacks show the plan's lines."""
    sys.modules.setdefault(PLAN_PACKAGE, types.ModuleType(PLAN_PACKAGE))
    module = sys.modules.get(module_name)
    if (
        module is None
        or getattr(module, "__xcs_source__", None) != source
        or getattr(module, "__file__", None) != filename
    ):
        if code is None:
            code = compile_plan(source, filename)
        module = types.ModuleType(module_name)
        module.__file__ = filename
        module.__loader__ = _SourceLoader(source)
        module.__xcs_source__ = source
        sys.modules[module_name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        linecache.cache.pop(filename, None)
        if not linecache.lazycache(filename, module.__dict__):
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return replace(module.PLAN, source=source, filename=filename)


def unload_plan(module_name: str, filename: str = "") -> None:
    """Remove the plan module ``module_name`` from ``sys.modules`` and its text (and ``filename``'s)
    from ``linecache``; anything else under that name is left alone."""
    module = sys.modules.get(module_name)
    if module is not None and hasattr(module, "__xcs_source__"):
        sys.modules.pop(module_name, None)
        linecache.cache.pop(getattr(module, "__file__", None) or "", None)
    if filename:
        linecache.cache.pop(filename, None)


def _plan_module(entry: Any) -> tuple[str, str] | None:
    """(module name, file name) of the plan module a cache entry (a ``Plan``, or an object whose
    ``plan`` is one) came from; ``None`` for anything else (an eager marker)."""
    plan = getattr(entry, "plan", entry)
    if not isinstance(plan, Plan):
        return None
    module = getattr(plan.run, "__module__", None)
    if not isinstance(module, str) or not module.startswith(PLAN_PACKAGE + "."):
        return None
    return module, plan.filename


def _same_content(path: str, source: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == source
    except OSError:
        return False
