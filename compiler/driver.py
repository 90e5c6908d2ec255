"""The jit driver: one call of a jitted operator, from its cache key to its result (``Driver``), the
in-process plan cache (``PLANS``) and the recompile policy.

A call computes its ``Key`` (structure hash, input ``Signature``, Python version), looks up the key's
entries in ``PLANS`` and runs the first that serves it (``compiler.entries.serving``: an eager marker,
or a plan whose guard holds). On a miss, under the key's compile lock: a plan another thread just compiled, else the
disk cache (``compiler.disk_cache``: a plan another process stored for the same key is verified,
imported and run without capturing), else a capture by the operator's strategy (the capture call's
result is the call's result), code generation, a plan file written and imported. A graph break makes
that signature run eagerly, with one ``GraphBreakWarning`` that names the reason, its code and the
source line. The warm path (signature, dict lookup, guard, run) never touches the disk or a lock. Per
operator structure, more than ``recompile_limit`` distinct signatures warns, raises or runs eagerly
(``execution_options(on_recompile_limit=...)``); ``XCS_EXPLAIN_CACHE_MISSES=1`` logs why each miss
missed (``compiler.misses``).

The compiler never imports ``xcs``: what an operator is comes from the public layer, which binds the
operator model (``is_operator``, ``wrapped``, ``is_async``, ``container_cycle``, ``check_output``) in
its subclass ``xcs.plans.JitConfig``, the object ``jit`` attaches to what it compiles.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from xcs.compiler import records
from xcs.compiler.cache import PYTHON, Key, KeyStats, PlanCache, compile_plan, import_plan, plan_module_name, structure_hash
from xcs.compiler.capture import Capture, StrictBreak
from xcs.compiler.capture import capture as capture_graph
from xcs.compiler.codegen import Header, generate
from xcs.compiler.disk_cache import DiskKey, disk_cache, review_file_name, write_review_file
from xcs.compiler.extensions import extras
from xcs.compiler.entries import Compiled, Eager, break_dict, break_message, from_disk, serving
from xcs.compiler.errors import JitError, OperatorCycleError
from xcs.compiler.numeric import fuse
from xcs.compiler.misses import LOG, explaining, miss_reason, recompile_message
from xcs.compiler.reads import check_reads, input_reads
from xcs.compiler.records import CacheInfo, OperatorRecord
from xcs.compiler.signature import Signature
from xcs.compiler.trace import relative_file
from xcs.runtime.aio import in_thread
from xcs.runtime.call import aexecute, execute
from xcs.runtime.kernels import NUMBA
from xcs.runtime.options import current_options
from xcs.runtime.plan import Plan

PLANS = PlanCache()
DEFAULT_RECOMPILE_LIMIT = 8
# The cache keys the current call is compiling: set around a miss, seen by the plan steps and tasks the
# call starts (they run in copies of its context), not by other threads' calls, which wait for the compile.
_COMPILING: contextvars.ContextVar[frozenset] = contextvars.ContextVar("xcs_compiling", default=frozenset())


class GraphBreakWarning(UserWarning):
    """A jitted operator (for one input signature) runs eagerly because of a graph break."""


class RecompileWarning(UserWarning):
    """A jitted operator has been compiled for more distinct input signatures than its recompile_limit."""


class RecompileLimitError(JitError):
    """``on_recompile_limit="raise"``: a new input signature past the operator's recompile_limit."""


# ember-xcs's own folders: xcs/ and the compiler's and runtime's, by the path they were imported from
# (xcs/compiler, a link) and by their real path (compiler/)
_OURS = tuple(sorted({
    os.path.join(d, "")
    for f in (__file__, execute.__code__.co_filename)
    for d in (os.path.dirname(os.path.abspath(f)), os.path.dirname(os.path.realpath(f)))
} | {os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")}))


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller point at the first frame outside
    ember-xcs: the user's line that called the operator, not ``xcs/operator.py``. 1 (the caller
    itself) when no such frame is on this thread's stack."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_OURS):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 1


def clear_caches() -> None:
    """Forget every in-memory plan and per-operator counter of this process (the disk cache stays)."""
    PLANS.clear()
    records.forget()


@dataclass
class Driver:
    """The options given to ``jit`` and the call path of what it compiles. Abstract over the operator
    model: the public layer's subclass binds the five static methods below."""

    mode: str = "auto"
    sample_input: Mapping[str, Any] | None = None
    recompile_limit: int = DEFAULT_RECOMPILE_LIMIT
    plan_dir: str | None = None  # also write each plan here, for review (default: XCS_PLAN_DIR)
    strict: bool = False  # a graph break raises instead of trying the next strategy
    numba: bool = True  # numeric kernels compiled by numba (False: the same plan text runs as Python)

    # ------------------------------------------------------------------ the operator model
    @staticmethod
    def is_operator(value: Any) -> bool:
        """Whether ``value`` is an operator (a sub-operator runs as a step of the plan)."""
        raise NotImplementedError

    @staticmethod
    def wrapped(op: Any) -> Callable[..., Any] | None:
        """The function a jitted function wraps (what is captured and named), None for an operator."""
        raise NotImplementedError

    @staticmethod
    def is_async(op: Any) -> bool:
        raise NotImplementedError

    @staticmethod
    def container_cycle(value: Any) -> tuple[str, ...] | None:
        raise NotImplementedError

    @staticmethod
    def check_output(op: Any, output: Any) -> Mapping[str, Any]:
        raise NotImplementedError

    def forward_of(self, op: Any) -> Callable[..., Any]:
        fn = self.wrapped(op)
        return op.forward if fn is None else fn

    def label(self, op: Any) -> str:
        """``file.py:Qualname`` with a repository-relative file: how plans and errors name an operator."""
        target = self.wrapped(op) or type(op)
        try:
            file = relative_file(inspect.getsourcefile(target) or "")
        except TypeError:  # a builtin
            file = "<unknown>"
        except OSError:  # defined without a source file: a REPL, ``python -c``, a notebook, ``exec``
            file = f"<{target.__module__}>"
        return f"{file}:{target.__qualname__}"

    def module_label(self, op: Any) -> str:
        target = self.wrapped(op) or type(op)
        return re.sub(r"[^\w.]", "_", f"{target.__module__}.{target.__qualname__}")

    # ------------------------------------------------------------------ entry points
    def constructed(self, op: Any) -> None:
        """Ahead-of-time compilation with ``sample_input``, when the operator is constructed: the static
        strategies compile and run nothing; ``mode="trace"`` runs the sample through ``forward``."""
        if self.sample_input is None:
            return
        if self.mode == "trace":
            self.call(op, self.sample_input)
        else:
            self.precompile(op, self.sample_input)

    def call(self, op: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.run(op, inputs)[0]

    async def acall(self, op: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """``await op.acall(...)``: a cached plan runs on the running loop (``aexecute``; ``auto``
        means the ``async`` scheduler); an ``async def forward``, which capture cannot read, is awaited
        eagerly; anything else (a miss, an eager signature) runs ``call`` in a worker thread."""
        if self.is_async(op):
            warnings.warn(
                f"{self.label(op)} runs eagerly: its forward is async def, which capture does not read",
                GraphBreakWarning, stacklevel=user_stacklevel(),
            )
            return self.check_output(op, await self.forward_of(op)(inputs=inputs))
        entries = PLANS.get(Key.of(self.structure(op), Signature.of(inputs)))
        entry = serving(entries, op, inputs)
        if entry is not None and type(entry.plan) is not Eager:
            entries.stats.hits += 1
            if entry.reads:
                check_reads(entry.plan.name, entry.reads, inputs)
            return self.check_output(op, await aexecute(entry.plan, op, inputs))
        return await in_thread(self.call, op, inputs)

    def run(self, op: Any, inputs: Mapping[str, Any]) -> tuple[Mapping[str, Any], Compiled]:
        """The call's result and the cache entry that produced it."""
        key = Key((self.structure(op), Signature.of(inputs), PYTHON))  # ``Key.of``, inlined: every call
        entries = PLANS.get(key)
        entry = serving(entries, op, inputs)
        if entry is None:
            return self.miss(op, inputs, key)
        entries.stats.hits += 1
        if type(entry.plan) is Eager or entry.reads:
            return self.execute(op, inputs, entry), entry
        output = execute(entry.plan, op, inputs)  # the warm path: ``execute`` below, inlined
        return (output if type(output) is dict else self.check_output(op, output)), entry

    def execute(self, op: Any, inputs: Mapping[str, Any], entry: Compiled) -> Mapping[str, Any]:
        """Run a serving entry: ``forward`` for an eager marker, else the plan (its reads checked first)."""
        plan = entry.plan
        if type(plan) is Eager:
            return self.check_output(op, self.forward_of(op)(inputs=inputs))
        if entry.reads:
            check_reads(plan.name, entry.reads, inputs)
        return self.check_output(op, execute(plan, op, inputs))

    def compiled(self, op: Any, inputs: Mapping[str, Any]) -> Compiled:
        """The cache entry for ``op`` on ``inputs``: found; else compiled by a static strategy (nothing
        runs); else captured by the trace, which runs the call."""
        entry = serving(PLANS.get(Key.of(self.structure(op), Signature.of(inputs))), op, inputs)
        return entry or self.precompile(op, inputs) or self.run(op, inputs)[1]

    # ------------------------------------------------------------------ a miss
    def miss(self, op: Any, inputs: Mapping[str, Any], key: Key) -> tuple[Mapping[str, Any], Compiled]:
        """No plan in memory holds for this call: another thread's, the disk's, or a capture.

        A call made while this very call (its context: this thread, or a plan step or task it
        started) is compiling the same key — an operator that calls itself — runs ``forward``
        eagerly, as Python would, instead of waiting on the compile lock it holds."""
        compiling = _COMPILING.get()
        if key in compiling:
            entry = Compiled(Eager(None, "a re-entrant call while its key is being compiled"), origin="policy")
            return self.execute(op, inputs, entry), entry
        token = _COMPILING.set(compiling | {key})
        try:
            with PLANS.compile_lock(key):
                entries = PLANS.get(key)
                entry = serving(entries, op, inputs)  # another thread compiled it while we waited
                if entry is not None:
                    entries.stats.hits += 1
                    return self.execute(op, inputs, entry), entry
                record = self.record(op)
                stats = record.signatures.get(key.signature)
                if stats is None:
                    if len(record.signatures) >= self.recompile_limit and self._past_limit(record, key):
                        stats = record.signatures[key.signature] = KeyStats()  # on_recompile_limit="eager"
                        stats.misses += 1
                        reason = (
                            f"{record.label} runs eagerly for inputs {key.signature.text}: more than "
                            f"recompile_limit={self.recompile_limit} input signatures (on_recompile_limit='eager')"
                        )
                        entry = Compiled(Eager(None, reason), origin="policy")
                        PLANS.add(key, entry, stats)
                        return self.execute(op, inputs, entry), entry
                    stats = record.signatures[key.signature] = KeyStats()
                stats.misses += 1
                disk = disk_cache()
                dkey = self.disk_key(op, key) if disk is not None else None
                explain = explaining() and miss_reason(record, key, self.mode, dkey, disk, entries)
                if disk is not None:
                    entry = self._load(op, inputs, key, stats, entries, disk, dkey)
                    if entry is not None:
                        if explain:
                            LOG.info("%s -> loaded from the disk cache", explain)
                        return self.execute(op, inputs, entry), entry
                if explain:
                    LOG.info("%s -> capturing", explain)
                result, compiled = self.capture(op, inputs, key, dkey, disk)
                PLANS.add(key, compiled, stats)
                stats.captures += 1
                return self.check_output(op, result), compiled
        finally:
            _COMPILING.reset(token)

    def _past_limit(self, record: OperatorRecord, key: Key) -> bool:
        """A new signature past ``recompile_limit``: warn, raise, or (True) run it eagerly."""
        policy = current_options().on_recompile_limit
        message = recompile_message(record, key, self.recompile_limit)
        if policy == "raise":
            raise RecompileLimitError(message)
        if policy == "eager":
            return True
        warnings.warn(message, RecompileWarning, stacklevel=user_stacklevel())
        return False

    # ------------------------------------------------------------------ capture and compile
    def capture(
        self, op: Any, inputs: Mapping[str, Any], key: Key, dkey: DiskKey | None = None, disk: Any = None
    ) -> tuple[Any, Compiled]:
        """Trace one call: its (eager) result and the compiled plan for its signature and path. The
        plan (or the graph break) is stored in ``disk`` (a ``DiskCache``) when one is given."""
        label = self.label(op)
        cap = self.graph_of(op, inputs, label, run=True)
        result, graph = cap.result, cap.graph
        if graph is None:
            brk = cap.breaks[-1][1]
            warnings.warn(break_message(label, key, brk), GraphBreakWarning, stacklevel=user_stacklevel())
            if disk is not None:
                disk.store(dkey or self.disk_key(op, key), brk=break_dict(brk), meta=self._meta(op, key))
            return result, Compiled(Eager(brk))
        entry = self.compile(op, key, label, cap, dkey, disk)
        if not cap.ran:  # nothing ran while capturing: this call runs the plan
            if entry.reads:
                check_reads(entry.plan.name, entry.reads, inputs)
            result = execute(entry.plan, op, inputs)
        return result, entry

    def graph_of(self, op: Any, inputs: Mapping[str, Any], label: str, run: bool) -> Capture:
        """The capture of ``op`` on ``inputs`` by this config's mode (``compiler.capture``'s rule)."""
        try:
            return capture_graph(
                op, self.forward_of(op), inputs, mode=self.mode, name=label.rsplit(":", 1)[-1],
                is_operator=self.is_operator, strict=self.strict, run=run,
            )
        except StrictBreak as exc:
            raise JitError(f"{label} (strict=True): the {exc.strategy} capture breaks: {exc.brk}") from None

    def compile(self, op: Any, key: Key, label: str, cap: Capture, dkey: DiskKey | None = None, disk: Any = None) -> Compiled:
        """Generate, store and import the plan of a captured graph."""
        header = Header(label, cap.strategy, key.signature.text, key.structure)
        graph, _ = fuse(cap.graph, op, key.signature, self.is_operator)
        source = generate(graph, header, cap.required)
        plan = self._install(op, key, source, dkey, disk)
        entry = Compiled(
            plan, cap.graph, source, sha256=hashlib.sha256(source.encode()).hexdigest(), applied=cap.applied,
            reads=input_reads(source, key.signature),
        )
        self._review(op, key, entry)
        return entry

    def precompile(self, op: Any, inputs: Mapping[str, Any]) -> Compiled | None:
        """Compile ahead of time with a static strategy, running nothing; None when only the trace
        (which runs the call) could capture this signature: the first call does it then."""
        key = Key.of(self.structure(op), Signature.of(inputs))
        if key in _COMPILING.get():  # asked while this call compiles the key: the outer compile does it
            return None
        with PLANS.compile_lock(key):
            if PLANS.get(key):
                return None
            disk = disk_cache()
            if disk is not None:  # a plan another process stored: the same as a call would load
                stats = self.record(op).signatures.setdefault(key.signature, KeyStats())
                entry = self._load(op, inputs, key, stats, None, disk, self.disk_key(op, key))
                if entry is not None:
                    return entry
            label = self.label(op)
            cap = self.graph_of(op, inputs, label, run=False)
            if cap.graph is None or cap.strategy == "trace":
                return None
            entry = self.compile(op, key, label, cap, self.disk_key(op, key) if disk is not None else None, disk)
            stats = self.record(op).signatures.setdefault(key.signature, KeyStats())
            stats.captures += 1
            PLANS.add(key, entry, stats)
            return entry

    # ------------------------------------------------------------------ plan files: disk cache, review
    def disk_key(self, op: Any, key: Key) -> DiskKey:
        """The key's disk form: computable before capture (no graph needed)."""
        return DiskKey(self.module_label(op), key.structure, key.signature.canonical, key.python_text, self.mode)

    def _install(self, op: Any, key: Key, source: str, dkey: DiskKey | None, disk: Any) -> Plan:
        """Store the plan text in the disk cache (when there is one) and import it (its kernels compiled
        by numba unless ``numba=False``)."""
        token = NUMBA.set(self.numba)
        try:
            return self._store_and_import(op, key, source, dkey, disk)
        finally:
            NUMBA.reset(token)

    def _store_and_import(self, op: Any, key: Key, source: str, dkey: DiskKey | None, disk: Any) -> Plan:
        if disk is not None:
            dkey = dkey or self.disk_key(op, key)
            path, code = disk.store(
                dkey, source=source, compile_for=lambda file: compile_plan(source, file), meta=self._meta(op, key)
            )
            if path is not None:
                return import_plan(source, path, plan_module_name(os.path.basename(path)[:-3]), code)
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        stem = f"{self.module_label(op)}-{key.structure}-{digest}"
        return import_plan(source, f"<memory>/xcs-plans/{stem}.py", plan_module_name(stem))

    def _load(
        self, op: Any, inputs: Mapping[str, Any], key: Key, stats: KeyStats, entries: Any, disk: Any, dkey: DiskKey
    ) -> Compiled | None:
        """The entry serving this call among the plans (and eager markers) stored on disk for ``key``;
        every one read is added to ``PLANS``. An eager marker repeats its graph-break warning."""
        known = {e.sha256 for e in entries or () if e.sha256}
        if any(type(e.plan) is Eager for e in entries or ()):
            known.add("eager")
        found = []
        token = NUMBA.set(self.numba)  # a plan imported from disk compiles its kernels as this operator asks
        try:
            items = disk.load(dkey, known)
        finally:
            NUMBA.reset(token)
        for item in items:
            entry = self._from_disk(op, key, item)
            if entry is not None:
                PLANS.add(key, entry, stats)
                stats.disk_loads += 1
                found.append(entry)
        entry = serving(found, op, inputs)
        if entry is not None and type(entry.plan) is Eager and entry.plan.warning:
            warnings.warn(entry.plan.warning, GraphBreakWarning, stacklevel=user_stacklevel())
        return entry

    def _from_disk(self, op: Any, key: Key, item: Any) -> Compiled | None:
        entry = from_disk(item, key, self.label(op))
        if entry is not None and entry.source:
            self._review(op, key, entry)
        return entry

    def _meta(self, op: Any, key: Key) -> dict:
        """What the disk index records beside the key: for ``xcs cache ls`` and cache-miss reasons."""
        record = self.record(op)
        return {
            "label": record.label,
            "signature_text": key.signature.text,
            "flat_signature": key.signature.flat,
            "components": record.components(),
        }

    def _review(self, op: Any, key: Key, entry: Compiled) -> None:
        """``plan_dir`` / ``XCS_PLAN_DIR``: also write the plan where a team reviews its plans."""
        plan_dir = self.plan_dir or os.environ.get("XCS_PLAN_DIR")
        if plan_dir and isinstance(entry.plan, Plan) and entry.source:
            name = review_file_name(self.module_label(op), key.signature.flat, entry.source)
            write_review_file(os.fspath(plan_dir), name, entry.source)

    # ------------------------------------------------------------------ structure, records, counters
    def structure(self, op: Any) -> str:
        """The structure hash of ``op`` (computed once: operators are frozen)."""
        known = getattr(op, "_xcs_structure", None)
        if known is None:
            root = self.structure_root(op)
            for item in (root[1] if self.wrapped(op) is not None else (root,)):
                cycle = self.container_cycle(item)
                if cycle is not None:
                    raise OperatorCycleError(type(item).__qualname__, cycle)
            # the mode is part of it: one operator compiled by two strategies gives two plans; so are the
            # registered passes and strategy (left out without any) and numba=False (its kernels run as Python)
            extra = extras(self.mode)
            parts = (root, self.mode, *((extra,) if extra else ()), *(() if self.numba else ("numba=False",)))
            known = structure_hash(parts, self.is_operator)
            object.__setattr__(op, "_xcs_structure", known)
        return known

    def structure_root(self, op: Any) -> Any:
        """What the structure hash of ``op`` covers: the operator, or a jitted function with the
        operators it refers to through its globals."""
        fn = self.wrapped(op)
        if fn is None:
            return op
        used = [fn.__globals__.get(name) for name in fn.__code__.co_names]
        return (fn, [u for u in used if self.is_operator(u)])

    def record(self, op: Any) -> OperatorRecord:
        return records.record(self.structure(op), lambda: OperatorRecord(
            self.label(op), self.module_label(op), self.structure(op), self.structure_root(op), self.is_operator
        ))

    def info(self, op: Any) -> CacheInfo:
        """Cache counters of ``op`` (an instance, a jitted function, or a class: all its structures)."""
        if isinstance(op, type):
            module = re.sub(r"[^\w.]", "_", f"{op.__module__}.{op.__qualname__}")
            found = [r for r in list(records.RECORDS.values()) if r.module == module]
            label = found[0].label if found else module
        else:
            structure = self.structure(op)
            found = [records.RECORDS[structure]] if structure in records.RECORDS else []
            label = self.label(op)
        disk = disk_cache()
        where = "off (XCS_DISK_CACHE=0)" if disk is None else (
            disk.root if disk.disabled is None else f"{disk.root} (memory only: {disk.disabled})"
        )
        return CacheInfo.of(label, found, self.recompile_limit, PLANS, where)
