"""``xcs.plans``: ``jit`` compiles an operator (class or instance) or a ``*, inputs`` function into
cached plans, and owns the in-process plan cache, ``dump`` and ``cache_info``.

A call computes the input signature, looks up the plans of (structure hash, signature) in the
in-memory cache, and runs the first whose guard holds. On a miss the operator's ``forward`` is captured
by the chosen strategy (the capture call's result is the call's result), the graph is linted, code is
generated, written as a plan file and imported. A graph break makes that signature run eagerly, with
one warning that names the reason, its code and the source line.

Before capturing, a miss looks in the disk cache (``compiler.disk_cache``): a plan another process
stored for the same key (operator, structure hash, signature, Python and ember-xcs/codegen versions)
is verified, imported and run, without capturing. The warm path (signature, dict lookup, guard, run)
never touches the disk or a lock. Per operator structure, more than ``recompile_limit`` distinct
signatures warns, raises or runs eagerly (``execution_options(on_recompile_limit=...)``);
``XCS_EXPLAIN_CACHE_MISSES=1`` logs, for every miss, which component of the key changed.
"""

from __future__ import annotations

import ast
import contextvars
import hashlib
import inspect
import logging
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from xcs.compiler import ir
from xcs.compiler.breaks import HINTS, Break
from xcs.compiler.cache import (
    KeyStats, PlanCache, canonical_signature, compile_plan, flat_signature, import_plan, plan_module_name,
    signature, signature_diff, signature_text, structure_components, structure_hash,
)
from xcs.compiler.codegen import CODEGEN_VERSION, VERSION, Header, generate
from xcs.compiler.disk_cache import DiskKey, disk_cache, review_file_name, write_review_file
from xcs.compiler.capture import MODES, Capture, StrictBreak
from xcs.compiler.capture import capture as capture_graph
from xcs.compiler.trace import relative_file
from xcs.runtime.errors import JitError, OperatorCycleError, input_read_error
from xcs.runtime.aio import in_thread
from xcs.runtime.executor import aexecute, execute
from xcs.runtime.options import current_options
from xcs.runtime.plan import Plan
from xcs.operator import Operator, check_output, container_cycle, is_async, is_operator

PLANS = PlanCache()
PYTHON = sys.version_info[:2]  # plans are cached per Python version; their text is the same on all
DEFAULT_RECOMPILE_LIMIT = 8
LOG = logging.getLogger("xcs.cache")


class GraphBreakWarning(UserWarning):
    """A jitted operator (for one input signature) runs eagerly because of a graph break."""


class RecompileWarning(UserWarning):
    """A jitted operator has been compiled for more distinct input signatures than its recompile_limit."""


class RecompileLimitError(JitError):
    """``on_recompile_limit="raise"``: a new input signature past the operator's recompile_limit."""


@dataclass(frozen=True)
class Eager:
    """The cache entry of a signature that runs ``forward`` directly: its capture broke (``brk``), or
    it came past the recompile limit under ``on_recompile_limit="eager"`` (``reason``)."""

    brk: Break | None
    reason: str = ""
    warning: str = field(default="", compare=False)  # repeated when the entry is read from the disk cache

    def __str__(self) -> str:
        return str(self.brk) if self.brk is not None else self.reason


@dataclass
class Compiled:
    """A cache entry: the plan (or ``Eager``), its source text, and where it came from. ``graph`` is
    the captured graph (``None`` for a plan imported from the disk cache)."""

    plan: Plan | Eager
    graph: ir.Graph | None = None
    source: str = ""
    origin: str = "capture"  # "capture", "disk" or "policy"
    sha256: str = ""  # of ``source``
    applied: list = field(default_factory=list)  # the enhanced strategy's passes (``compiler.passes``)
    reads: tuple = ()  # input key paths the plan reads that its signature does not fix (``input_reads``)


@dataclass(frozen=True)
class SignatureInfo:
    """``cache_info`` for one input signature of an operator."""

    signature: str
    hits: int
    misses: int
    captures: int
    disk_loads: int
    plans: int  # entries in memory now: plans (one per traced path) or an eager marker


@dataclass(frozen=True)
class CacheInfo:
    """``xcs.cache_info(op)``: per signature, the calls served from memory (``hits``), the calls that
    missed it (``misses``), and how the misses were served (``captures``, ``disk_loads``)."""

    operator: str
    structures: tuple[str, ...]
    signatures: tuple[SignatureInfo, ...]
    recompile_limit: int
    memory_keys: int  # keys (all operators) in the in-memory cache now
    memory_bound: int  # the in-memory cache's bound on keys
    disk: str | None  # the disk cache directory, or why there is none

    @property
    def hits(self) -> int:
        return sum(s.hits for s in self.signatures)

    @property
    def misses(self) -> int:
        return sum(s.misses for s in self.signatures)

    @property
    def captures(self) -> int:
        return sum(s.captures for s in self.signatures)

    @property
    def disk_loads(self) -> int:
        return sum(s.disk_loads for s in self.signatures)

    def __str__(self) -> str:
        lines = [f"{self.operator}: {len(self.signatures)} signature(s), limit {self.recompile_limit}, disk: {self.disk}"]
        for s in self.signatures:
            lines.append(
                f"  {s.signature}: hits={s.hits} misses={s.misses} captures={s.captures} "
                f"disk_loads={s.disk_loads} plans={s.plans}"
            )
        return "\n".join(lines)


class OperatorRecord:
    """What this process knows about one operator structure: its signatures and their counters."""

    def __init__(self, label: str, module: str, structure: str, root: Any):
        self.label = label
        self.module = module
        self.structure = structure
        self.signatures: dict[tuple, KeyStats] = {}
        self.flat: dict[tuple, dict[str, str]] = {}
        self._root = root
        self._components: dict[str, str] | None = None

    def components(self) -> dict[str, str]:
        if self._components is None:
            self._components = structure_components(self._root, is_operator)
            self._root = None
        return self._components


RECORDS: dict[str, OperatorRecord] = {}
_RECORDS_LOCK = threading.Lock()
# The cache keys the current call is compiling: set around a miss, seen by the plan steps and tasks the
# call starts (they run in copies of its context), not by other threads' calls, which wait for the compile.
_COMPILING: contextvars.ContextVar[frozenset] = contextvars.ContextVar("xcs_compiling", default=frozenset())


@dataclass
class JitConfig:
    """The options given to ``jit``, attached to the class, instance or function it compiles."""

    mode: str = "auto"
    sample_input: Mapping[str, Any] | None = None
    structures: dict = field(default_factory=dict)
    recompile_limit: int = DEFAULT_RECOMPILE_LIMIT
    plan_dir: str | None = None  # also write each plan here, for review (default: XCS_PLAN_DIR)
    strict: bool = False  # a graph break raises instead of trying the next strategy

    # ------------------------------------------------------------------ entry points
    def constructed(self, op: Operator) -> None:
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
        if is_async(op):
            warnings.warn(
                f"{operator_label(op)} runs eagerly: its forward is async def, which capture does not read",
                GraphBreakWarning, stacklevel=3,
            )
            return check_output(op, await forward_of(op)(inputs=inputs))
        key = (self.structure(op), signature(inputs), PYTHON)
        entries = PLANS.get(key)
        for entry in entries or ():
            plan = entry.plan
            if type(plan) is not Eager and (plan.guard is None or plan.guard(op, inputs)):
                entries.stats.hits += 1
                if entry.reads:
                    check_reads(plan.name, entry.reads, inputs)
                return check_output(op, await aexecute(plan, op, inputs))
        return await in_thread(self.call, op, inputs)

    def run(self, op: Any, inputs: Mapping[str, Any]) -> tuple[Mapping[str, Any], Compiled]:
        """The call's result and the cache entry that produced it."""
        key = (self.structure(op), signature(inputs), PYTHON)
        entries = PLANS.get(key)
        if entries is not None:
            for entry in entries:
                plan = entry.plan
                if type(plan) is Eager:
                    entries.stats.hits += 1
                    return check_output(op, forward_of(op)(inputs=inputs)), entry
                if plan.guard is None or plan.guard(op, inputs):
                    entries.stats.hits += 1
                    if entry.reads:
                        check_reads(plan.name, entry.reads, inputs)
                    return check_output(op, execute(plan, op, inputs)), entry
        return self.miss(op, inputs, key)

    def miss(self, op: Any, inputs: Mapping[str, Any], key: tuple) -> tuple[Mapping[str, Any], Compiled]:
        """No plan in memory holds for this call: another thread's, the disk's, or a capture.

        A call made while this very call (its context: this thread, or a plan step or task it
        started) is compiling the same key — an operator that calls itself — runs ``forward``
        eagerly, as Python would, instead of waiting on the compile lock it holds."""
        compiling = _COMPILING.get()
        if key in compiling:
            entry = Compiled(Eager(None, "a re-entrant call while its key is being compiled"), origin="policy")
            return check_output(op, forward_of(op)(inputs=inputs)), entry
        token = _COMPILING.set(compiling | {key})
        try:
            with PLANS.compile_lock(key):
                entries = PLANS.get(key)
                for entry in entries or ():  # another thread compiled it while we waited
                    plan = entry.plan
                    if type(plan) is Eager or plan.guard is None or plan.guard(op, inputs):
                        entries.stats.hits += 1
                        return self._execute(op, inputs, entry), entry
                record = self.record(op)
                stats = record.signatures.get(key[1])
                if stats is None:
                    if len(record.signatures) >= self.recompile_limit:
                        if self._past_limit(op, record, key):  # on_recompile_limit="eager"
                            stats = record.signatures[key[1]] = KeyStats()
                            stats.misses += 1
                            reason = (
                                f"{record.label} runs eagerly for inputs {signature_text(key[1])}: more than "
                                f"recompile_limit={self.recompile_limit} input signatures (on_recompile_limit='eager')"
                            )
                            entry = Compiled(Eager(None, reason), origin="policy")
                            PLANS.add(key, entry, stats)
                            return self._execute(op, inputs, entry), entry
                    stats = record.signatures[key[1]] = KeyStats()
                    record.flat[key[1]] = flat_signature(key[1])
                stats.misses += 1
                disk = disk_cache()
                dkey = self.disk_key(op, key) if disk is not None else None
                explain = _explaining() and self.explain(op, key, dkey, disk, entries)
                if disk is not None:
                    known = {e.sha256 for e in entries or () if e.sha256}
                    if any(type(e.plan) is Eager for e in entries or ()):
                        known.add("eager")
                    found = []
                    for item in disk.load(dkey, known):
                        entry = self._from_disk(op, key, item)
                        if entry is not None:
                            PLANS.add(key, entry, stats)
                            stats.disk_loads += 1
                            found.append(entry)
                    for entry in found:
                        plan = entry.plan
                        if type(plan) is Eager or plan.guard is None or plan.guard(op, inputs):
                            if explain:
                                LOG.info("%s -> loaded from the disk cache", explain)
                            if type(plan) is Eager and plan.warning:
                                warnings.warn(plan.warning, GraphBreakWarning, stacklevel=5)
                            return self._execute(op, inputs, entry), entry
                if explain:
                    LOG.info("%s -> capturing", explain)
                result, compiled = self.capture(op, inputs, key, dkey, disk)
                PLANS.add(key, compiled, stats)
                stats.captures += 1
                return check_output(op, result), compiled
        finally:
            _COMPILING.reset(token)

    @staticmethod
    def _execute(op: Any, inputs: Mapping[str, Any], entry: Compiled) -> Mapping[str, Any]:
        if type(entry.plan) is Eager:
            return check_output(op, forward_of(op)(inputs=inputs))
        if entry.reads:
            check_reads(entry.plan.name, entry.reads, inputs)
        return check_output(op, execute(entry.plan, op, inputs))

    # ------------------------------------------------------------------ capture
    def capture(
        self, op: Any, inputs: Mapping[str, Any], key: tuple, dkey: DiskKey | None = None, disk: Any = None
    ) -> tuple[Any, Compiled]:
        """Trace one call: its (eager) result and the compiled plan for its signature and path. The
        plan (or the graph break) is stored in ``disk`` (a ``DiskCache``) when one is given."""
        label = operator_label(op)
        cap = self.graph_of(op, inputs, label, run=True)
        result, graph = cap.result, cap.graph
        if graph is None:
            brk = cap.breaks[-1][1]
            warnings.warn(_break_message(label, key, brk), GraphBreakWarning, stacklevel=5)
            if disk is not None:
                disk.store(dkey or self.disk_key(op, key), brk=_break_dict(brk), meta=self._meta(op, key))
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
                op, forward_of(op), inputs, mode=self.mode, name=label.rsplit(":", 1)[-1],
                is_operator=is_operator, strict=self.strict, run=run,
            )
        except StrictBreak as exc:
            raise JitError(f"{label} (strict=True): the {exc.strategy} capture breaks: {exc.brk}") from None

    def compile(
        self, op: Any, key: tuple, label: str, cap: Capture, dkey: DiskKey | None = None, disk: Any = None
    ) -> Compiled:
        """Generate, store and import the plan of a captured graph."""
        header = Header(label, cap.strategy, signature_text(key[1]), key[0])
        source = generate(cap.graph, header, cap.required)
        plan = self._install(op, key, source, dkey, disk)
        entry = Compiled(
            plan, cap.graph, source, sha256=hashlib.sha256(source.encode()).hexdigest(), applied=cap.applied,
            reads=input_reads(source, key[1]),
        )
        self._review(op, key, entry)
        return entry

    def precompile(self, op: Any, inputs: Mapping[str, Any]) -> Compiled | None:
        """Compile ahead of time with a static strategy, running nothing; None when only the trace
        (which runs the call) could capture this signature: the first call does it then."""
        key = (self.structure(op), signature(inputs), PYTHON)
        if key in _COMPILING.get():  # asked while this call compiles the key: the outer compile does it
            return None
        with PLANS.compile_lock(key):
            if PLANS.get(key):
                return None
            label = operator_label(op)
            cap = self.graph_of(op, inputs, label, run=False)
            if cap.graph is None or cap.strategy == "trace":
                return None
            disk = disk_cache()
            entry = self.compile(op, key, label, cap, self.disk_key(op, key) if disk is not None else None, disk)
            record = self.record(op)
            stats = record.signatures.setdefault(key[1], KeyStats())
            record.flat.setdefault(key[1], flat_signature(key[1]))
            stats.captures += 1
            PLANS.add(key, entry, stats)
            return entry

    def _install(self, op: Any, key: tuple, source: str, dkey: DiskKey | None, disk: Any) -> Plan:
        """Store the plan text in the disk cache (when there is one) and import it."""
        if disk is not None:
            dkey = dkey or self.disk_key(op, key)
            path, code = disk.store(
                dkey, source=source, compile_for=lambda file: compile_plan(source, file), meta=self._meta(op, key)
            )
            if path is not None:
                return import_plan(source, path, plan_module_name(os.path.basename(path)[:-3]), code)
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        stem = f"{module_label(op)}-{key[0]}-{digest}"
        return import_plan(source, f"<memory>/xcs-plans/{stem}.py", plan_module_name(stem))

    def _from_disk(self, op: Any, key: tuple, item: Any) -> Compiled | None:
        if item.kind == "eager":
            brk = item.brk or {}
            if brk.get("code") not in HINTS:
                return None
            loc = ir.Loc(str(brk.get("file", "")), int(brk.get("line", 0) or 0), str(brk.get("text", "")))
            found = Break(brk["code"], str(brk.get("reason", "")), loc)
            return Compiled(Eager(found, warning=_break_message(operator_label(op), key, found)), origin="disk")
        entry = Compiled(
            item.plan, None, item.source, origin="disk", sha256=item.sha256, reads=input_reads(item.source, key[1])
        )
        self._review(op, key, entry)
        return entry

    def _meta(self, op: Any, key: tuple) -> dict:
        record = self.record(op)
        return {
            "label": record.label,
            "signature_text": signature_text(key[1]),
            "flat_signature": flat_signature(key[1]),
            "components": record.components(),
        }

    def _review(self, op: Any, key: tuple, entry: Compiled) -> None:
        """``plan_dir`` / ``XCS_PLAN_DIR``: also write the plan where a team reviews its plans."""
        plan_dir = self.plan_dir or os.environ.get("XCS_PLAN_DIR")
        if plan_dir and isinstance(entry.plan, Plan) and entry.source:
            name = review_file_name(module_label(op), flat_signature(key[1]), entry.source)
            write_review_file(os.fspath(plan_dir), name, entry.source)

    # ------------------------------------------------------------------ keys, records, policy
    def disk_key(self, op: Any, key: tuple) -> DiskKey:
        """The key's disk form: computable before capture (no graph needed)."""
        return DiskKey(module_label(op), key[0], canonical_signature(key[1]), f"{key[2][0]}.{key[2][1]}", self.mode)

    def record(self, op: Any) -> OperatorRecord:
        structure = self.structure(op)
        record = RECORDS.get(structure)
        if record is None:
            with _RECORDS_LOCK:
                record = RECORDS.get(structure)
                if record is None:
                    record = RECORDS[structure] = OperatorRecord(
                        operator_label(op), module_label(op), structure, structure_root(op)
                    )
        return record

    def _past_limit(self, op: Any, record: OperatorRecord, key: tuple) -> bool:
        """A new signature past ``recompile_limit``: warn, raise, or (True) run it eagerly."""
        policy = current_options().on_recompile_limit
        new = flat_signature(key[1])
        closest, diff = None, None
        for sig, flat in record.flat.items():
            changes = signature_diff(flat, new)
            if diff is None or len(changes) < len(diff):
                closest, diff = sig, changes
        count = len(record.signatures) + 1
        message = (
            f"{record.label} has {count} distinct input signatures, more than recompile_limit="
            f"{self.recompile_limit}; the newest, {signature_text(key[1])}, differs from the closest cached "
            f"one, {signature_text(closest) if closest else '{}'}, in: {', '.join(diff or ['nothing'])}. "
            "Keep input types stable (e.g. always float, not sometimes int), raise the limit with "
            "jit(recompile_limit=N), or choose execution_options(on_recompile_limit='raise'|'eager')"
        )
        if policy == "raise":
            raise RecompileLimitError(message)
        if policy == "eager":
            return True
        warnings.warn(message, RecompileWarning, stacklevel=5)
        return False

    def explain(self, op: Any, key: tuple, dkey: DiskKey | None, disk: Any, entries: Any) -> str:
        """Why this call missed the in-memory cache: which key component differs from the closest
        key known for the same operator (in this process or on disk)."""
        record = self.record(op)
        head = f"xcs cache miss: {record.label} {signature_text(key[1])}"
        if entries:
            return f"{head}: a new control-flow path (the guards of the {len(entries)} cached plan(s) did not hold)"
        mine = {
            "ember_xcs": VERSION, "codegen": CODEGEN_VERSION, "python": f"{key[2][0]}.{key[2][1]}",
            "structure": key[0], "flat": record.flat.get(key[1]) or flat_signature(key[1]),
            "components": None, "mode": self.mode,
        }
        candidates = []
        for other in list(RECORDS.values()):
            if other.module == record.module:
                for sig, flat in list(other.flat.items()):
                    if (other.structure, sig) != (key[0], key[1]):
                        candidates.append({
                            "ember_xcs": VERSION, "codegen": CODEGEN_VERSION, "python": mine["python"],
                            "structure": other.structure, "flat": flat, "components": other, "mode": self.mode,
                        })
        if disk is not None and dkey is not None:
            candidates += _disk_candidates(disk, dkey)
        if not candidates:
            return f"{head}: first compile of this operator (no key cached for it in memory or on disk)"

        def differences(c: dict) -> list[str]:
            found = [n for n in ("ember_xcs", "codegen", "python", "mode", "structure") if c[n] != mine[n]]
            if c["flat"] != mine["flat"]:
                found.append("signature")
            return found

        best = min(candidates, key=lambda c: (len(differences(c)), len(signature_diff(c["flat"], mine["flat"]))))
        changed = differences(best)
        if not changed:
            return f"{head}: first call in this process (the key is cached on disk)"
        parts = []
        for name in changed:
            if name == "signature":
                parts.append("signature changed: " + ", ".join(signature_diff(best["flat"], mine["flat"])))
            elif name == "structure":
                theirs = best["components"]
                theirs = theirs.components() if isinstance(theirs, OperatorRecord) else (theirs or {})
                ours = record.components()
                detail = [f"changed {g}" for g in ours if g in theirs and theirs[g] != ours[g]]
                detail += [f"added {g}" for g in ours if g not in theirs]
                detail += [f"removed {g}" for g in theirs if g not in ours]
                parts.append(
                    f"structure changed {best['structure']} -> {key[0]}" + (f" ({'; '.join(detail)})" if detail else "")
                )
            else:
                parts.append(f"{name} changed {best[name]} -> {mine[name]}")
        return f"{head}: " + "; ".join(parts)

    def structure(self, op: Any) -> str:
        """The structure hash of ``op`` (computed once: operators are frozen)."""
        known = getattr(op, "_xcs_structure", None)
        if known is None:
            root = structure_root(op)
            for item in (root[1] if isinstance(op, JittedFunction) else (root,)):
                cycle = container_cycle(item)
                if cycle is not None:
                    raise OperatorCycleError(type(item).__qualname__, cycle)
            # the mode is part of it: one operator compiled by two strategies gives two plans
            known = structure_hash((structure_root(op), self.mode), is_operator)
            object.__setattr__(op, "_xcs_structure", known)
        return known


def structure_root(op: Any) -> Any:
    """What the structure hash of ``op`` covers: the operator, or a jitted function with the
    operators it refers to through its globals."""
    if isinstance(op, JittedFunction):
        fn = op.fn
        used = [fn.__globals__.get(name) for name in fn.__code__.co_names]
        return (fn, [u for u in used if is_operator(u)])
    return op


def input_reads(source: str, sig: tuple) -> tuple:
    """The constant key paths (``("doc", "title")``, ``("items", 5)``) the plan's ``run`` reads from its
    inputs on every call, before its first branch or loop, that ``sig`` does not guarantee: a read
    below a leaf of the signature (an index into an input list, a key of a value typed ``str``, a
    mapping deeper than the signature follows). ``check_reads`` checks them before any step runs."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    run = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "run"), None)
    if run is None or not run.args.args or run.args.args[-1].arg != "inputs":
        return ()
    found: list[tuple] = []
    for stmt in run.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return)):
            if stmt.value is not None:
                _reads(stmt.value, found)
            if isinstance(stmt, ast.Return):
                break
        else:  # a branch, loop, try or with: what follows it may not run
            for part in (getattr(stmt, "test", None), getattr(stmt, "iter", None)):
                if part is not None:
                    _reads(part, found)
            break
    reads = []
    for path in found:
        if path not in reads and not _fixed(sig, path):
            reads.append(path)
    return tuple(reads)


def _reads(node: ast.AST, found: list) -> None:
    """The input paths ``node`` reads whenever it is evaluated (short-circuited parts left out)."""
    if isinstance(node, ast.Subscript):
        path = _input_path(node)
        if path is not None:
            found.append(path)
            return
    if isinstance(node, ast.BoolOp):
        return _reads(node.values[0], found)
    if isinstance(node, ast.IfExp):
        return _reads(node.test, found)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return _reads(node.generators[0].iter, found)
    if isinstance(node, ast.Lambda):
        return None
    for child in ast.iter_child_nodes(node):
        _reads(child, found)


def _input_path(node: ast.AST) -> tuple | None:
    keys = []
    while isinstance(node, ast.Subscript):
        index = node.slice
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub) and isinstance(index.operand, ast.Constant):
            index = ast.Constant(-index.operand.value)
        if not isinstance(index, ast.Constant) or isinstance(index.value, (slice, type(Ellipsis))):
            return None
        keys.append(index.value)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "inputs"):
        return None
    return tuple(reversed(keys))


def _fixed(sig: tuple, path: tuple) -> bool:
    """Whether every input with signature ``sig`` has ``path`` (its mappings' keys are in the signature)."""
    level = sig
    for depth, key in enumerate(path):
        leaf = next((value for name, value in level if name == key and type(name) is type(key)), None)
        if leaf is None:
            return False
        if depth == len(path) - 1:
            return True
        if not (isinstance(leaf, tuple) and len(leaf) == 2 and isinstance(leaf[1], tuple)):
            return False  # a leaf: what is below it is not in the signature
        level = leaf[1]
    return True


def check_reads(operator: str, reads: tuple, inputs: Mapping[str, Any]) -> None:
    """Raise the error of the first of ``reads`` (``input_reads``) that ``inputs`` cannot satisfy,
    naming its key path and the operator, before any step runs."""
    for path in reads:
        value = inputs
        try:
            for key in path:
                value = value[key]
        except Exception:
            error = input_read_error(operator, inputs, path)
            if error is not None:
                raise error from None


def _break_message(label: str, key: tuple, brk: Break) -> str:
    return f"{label} runs eagerly for inputs {signature_text(key[1])}: {brk}"


def _break_dict(brk: Break) -> dict:
    return {"code": brk.code, "reason": brk.reason, "file": brk.loc.file, "line": brk.loc.line, "text": brk.loc.text}


def _explaining() -> bool:
    if os.environ.get("XCS_EXPLAIN_CACHE_MISSES", "").strip() in ("", "0"):
        return False
    if not LOG.hasHandlers():  # the variable asks for the log: show it even when logging is not set up
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOG.addHandler(handler)
    if LOG.getEffectiveLevel() > logging.INFO:
        LOG.setLevel(logging.INFO)
    return True


def _disk_candidates(disk: Any, dkey: DiskKey) -> list[dict]:
    """Keys on disk for the same operator (any structure, signature, Python or version)."""
    found = []
    for info in disk.keys():
        index = info.index
        if not index or not info.stem.startswith(dkey.operator + "-") or index["key"].get("operator") != dkey.operator:
            continue
        theirs = index["key"]
        found.append({
            "ember_xcs": theirs.get("ember_xcs"), "codegen": theirs.get("codegen"), "python": theirs.get("python"),
            "structure": theirs.get("structure"), "flat": dict(index.get("flat_signature") or {}),
            "components": index.get("components") or {}, "mode": theirs.get("mode"),
        })
    return found


def clear_caches() -> None:
    """Forget every in-memory plan and per-operator counter of this process (the disk cache stays)."""
    PLANS.clear()
    with _RECORDS_LOCK:
        RECORDS.clear()


def cache_info(op: Any) -> CacheInfo:
    """Cache counters of a jitted operator (instance, class, or jitted function), per input signature:
    calls served from memory (hits), calls that missed it (misses), captures and disk loads."""
    config = getattr(op, "__xcs_jit__", None) or JitConfig()
    if isinstance(op, type):
        module = re.sub(r"[^\w.]", "_", f"{op.__module__}.{op.__qualname__}")
        records = [r for r in list(RECORDS.values()) if r.module == module]
        label = records[0].label if records else module
    else:
        structure = config.structure(op)
        records = [RECORDS[structure]] if structure in RECORDS else []
        label = operator_label(op)
    rows = []
    for record in records:
        for sig, stats in list(record.signatures.items()):
            entries = PLANS._entries.get((record.structure, sig, PYTHON))
            rows.append(SignatureInfo(
                signature_text(sig), stats.hits, stats.misses, stats.captures, stats.disk_loads, len(entries or ())
            ))
    disk = disk_cache()
    where = "off (XCS_DISK_CACHE=0)" if disk is None else (
        disk.root if disk.disabled is None else f"{disk.root} (memory only: {disk.disabled})"
    )
    return CacheInfo(
        label, tuple(r.structure for r in records), tuple(rows), config.recompile_limit,
        len(PLANS), PLANS.max_entries, where,
    )


def compiled(op: Any, inputs: Mapping[str, Any]) -> Compiled:
    """The cache entry for ``op`` on ``inputs``: found; else compiled by a static strategy (nothing
    runs); else captured by the trace, which runs the call."""
    config = getattr(op, "__xcs_jit__", None)
    if config is None:
        if not isinstance(op, Operator):
            raise JitError(f"expected an Operator or a jitted function, got {type(op).__name__}")
        config = JitConfig()
    key = (config.structure(op), signature(inputs), PYTHON)
    for entry in PLANS.get(key) or ():
        plan = entry.plan
        if type(plan) is Eager or plan.guard is None or plan.guard(op, inputs):
            return entry
    return config.precompile(op, inputs) or config.run(op, inputs)[1]


def dump(op: Any, inputs: Mapping[str, Any]) -> str:
    """The plan text for ``op`` on ``inputs``' signature: what the plan file and snapshots contain.

    Compiling with the trace strategy runs the call once (its operators really run).
    Raises ``JitError`` naming the graph break when the signature runs eagerly.
    """
    entry = compiled(op, inputs)
    if isinstance(entry.plan, Eager):
        raise JitError(f"{operator_label(op)} has no plan for these inputs: {entry.plan}")
    return entry.source


class JittedFunction:
    """``jit(fn)`` for a plain function taking ``*, inputs``: called as ``f(inputs={...})``."""

    def __init__(self, fn: Callable[..., Any], config: JitConfig):
        self.fn = fn
        self.__xcs_jit__ = config
        self.__name__ = getattr(fn, "__name__", "function")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def forward(self, *, inputs: Mapping[str, Any]) -> Any:
        return self.fn(inputs=inputs)

    def __call__(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return Operator.__call__(self, inputs=inputs, **kwargs)  # same validation as an operator

    async def acall(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        """``await f.acall(inputs=...)``: the plan runs on the running event loop (as ``Operator.acall``)."""
        return await Operator.acall(self, inputs=inputs, **kwargs)

    def __repr__(self) -> str:
        return f"jit({self.__qualname__})"


def forward_of(op: Any) -> Callable[..., Any]:
    return op.fn if isinstance(op, JittedFunction) else op.forward


def operator_label(op: Any) -> str:
    """``file.py:Qualname`` with a repository-relative file: how plans and errors name an operator."""
    target = op.fn if isinstance(op, JittedFunction) else type(op)
    try:
        file = relative_file(inspect.getsourcefile(target) or "")
    except TypeError:  # a builtin
        file = "<unknown>"
    except OSError:  # defined without a source file: a REPL, ``python -c``, a notebook, ``exec``
        file = f"<{target.__module__}>"
    return f"{file}:{target.__qualname__}"


def module_label(op: Any) -> str:
    target = op.fn if isinstance(op, JittedFunction) else type(op)
    return re.sub(r"[^\w.]", "_", f"{target.__module__}.{target.__qualname__}")


def jit(
    target: Any = None,
    *,
    mode: str = "auto",
    sample_input: Mapping[str, Any] | None = None,
    recompile_limit: int = DEFAULT_RECOMPILE_LIMIT,
    plan_dir: str | os.PathLike | None = None,
    strict: bool = False,
) -> Any:
    """Compile an operator class, an operator instance, or a function taking ``*, inputs``.

    ``@jit``, ``@jit(mode="trace", sample_input={...})``, ``jit(instance)`` (marks and returns that
    instance) and ``jit(function)`` all work. With ``sample_input`` a class compiles when each instance
    is constructed, by running the sample through ``forward`` (its operators really run).
    ``recompile_limit``: distinct input signatures per operator before ``on_recompile_limit`` applies.
    ``plan_dir`` (or ``XCS_PLAN_DIR``): also write each plan there as a stable, diffable file named after
    the operator and the signature, with the text ``xcs dump`` prints.
    """
    if isinstance(recompile_limit, bool) or not isinstance(recompile_limit, int) or recompile_limit < 1:
        raise JitError(f"recompile_limit must be a positive int, got {recompile_limit!r}")
    if plan_dir is not None and not isinstance(plan_dir, (str, os.PathLike)):
        raise JitError(f"plan_dir must be a path, got {type(plan_dir).__name__}")
    if mode not in MODES:
        raise JitError(f"unknown jit mode {mode!r}; valid modes: {', '.join(MODES)}")
    if not isinstance(strict, bool):
        raise JitError(f"strict must be True or False, got {strict!r}")
    if sample_input is not None and not isinstance(sample_input, Mapping):
        raise JitError(f"sample_input must be a mapping, got {type(sample_input).__name__}")
    config = JitConfig(
        mode, sample_input, recompile_limit=recompile_limit, plan_dir=None if plan_dir is None else os.fspath(plan_dir),
        strict=strict,
    )
    if target is None:
        return lambda t: jit(
            t, mode=mode, sample_input=sample_input, recompile_limit=recompile_limit, plan_dir=plan_dir, strict=strict
        )
    if isinstance(target, type) and issubclass(target, Operator):
        target.__xcs_jit__ = config
        return target
    if isinstance(target, Operator):
        object.__setattr__(target, "__xcs_jit__", config)
        config.constructed(target)
        return target
    if inspect.isfunction(target) or inspect.ismethod(target):
        params = inspect.signature(target).parameters
        if "inputs" not in params or params["inputs"].kind not in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            raise JitError(
                f"jit({target.__qualname__}): a function must take the keyword argument 'inputs' "
                "(def f(*, inputs): ...)"
            )
        jitted = JittedFunction(target, config)
        config.constructed(jitted)
        return jitted
    raise JitError(
        "jit expects an Operator subclass, an Operator instance, or a function taking `*, inputs`; "
        f"got {type(target).__name__}"
    )
