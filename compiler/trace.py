"""Trace capture: run ``forward``'s bytecode under an interpreter that records the dataflow.

The first call runs the operator's ``forward`` instruction by instruction (``compiler.bytecode_versions``
normalises the three CPython versions). Every value carries its provenance (``Val.kind`` and
``Val.expr``): static values (the operator tree, literals, module globals) fold away; values derived
from the inputs or from operator outputs become IR nodes. Sub-operator calls become ``OperatorCall``
steps and really run, so the traced call's result is the eager result. A decision on an input value
becomes a ``Guard``; a decision on an operator's output (or any other construct the trace does not
model) is a graph break: the interpreter records it and finishes the call natively, with real values,
so nothing runs twice.

Nothing recorded depends on PYTHONHASHSEED: a set whose iteration order follows string hashing
(``hash_ordered``) is never folded in that order. Iterating it, or glue whose result depends on its
order (``", ".join(self.tags)``), reads the live set when the plan runs (``list(ops.tags)[i]``), so
the plan text is the same in every process and the values are the ones eager Python sees.

The interpreter's values live in ``compiler.values`` and its map and branch regions in
``compiler.regions``; neither imports this module (trace -> regions -> values).
"""

from __future__ import annotations

import builtins
import json
import linecache
import logging
import operator as _operator
import os
import re
import sysconfig
import types
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Mapping

from xcs.compiler import constructs, effects, loops, regions, segments, tries
from xcs.compiler.opcodes import breaking
from xcs.compiler.sharing import Holdings
from xcs.compiler.breaks import Break, GraphBreak
from xcs.compiler.codegen import RESERVED, is_step as _is_step
from xcs.compiler.glue import RULES
from xcs.compiler.ir import (
    canonical_repr, is_literal,
    Call, Const, Global, Glue, Graph, Guard, Input, Loc, OperatorCall, Output, Ref, Source, Static, operands, walk,
)
from xcs.runtime.segments import defined, unbound
from xcs.compiler.values import (
    INPUT, NULL, PENDING, STATE, STATIC, STEP, UNBOUND, IterState, NeedsValue, Val, instructions, pending, step_name,
)
from xcs.runtime.errors import OperatorInputError, StepError
from xcs.runtime.segments import segment as define_segment

MAX_DEPTH = 16
IN_ORDER = frozenset({"side", "with", "loop", *tries.KINDS})  # scopes whose body runs in program order


class Opaque(Exception):
    """A helper the capture was following hit a break before it made any step: the whole helper call
    becomes one opaque step instead (raised to the innermost ``Tracer.call_helper``)."""

    def __init__(self, brk: Break):
        self.brk = brk
        super().__init__(str(brk))


class Resume(Exception):
    """A break inside one of ``forward``'s statements: that statement becomes one opaque step and the
    capture resumes after it (raised to ``forward``'s own frame, see ``Tracer.segment``)."""

    def __init__(self, brk: Break):
        self.brk = brk
        super().__init__(str(brk))


@dataclass
class Checkpoint:
    """The capture's state where a statement of ``forward`` starts, and an undo log of what the
    statement changed since (locals, closure cells, containers built in forward)."""

    stmt: Any
    nodes: int
    effects: int
    required: int
    stepped: bool
    loc: Any
    locals: dict
    cells: dict
    undo: list = field(default_factory=list)  # (name, the Val it held or None)
    boxes: list = field(default_factory=list)  # (val, box, raw, kind, expr) before its first change
    usable: bool = True


class Cell:
    __slots__ = ("val",)

    def __init__(self, val: Val | None = None):
        self.val = val


@dataclass
class Interpreted:
    """A function made by MAKE_FUNCTION inside forward (comprehension bodies on 3.11, lambdas)."""

    code: types.CodeType
    globals: dict
    closure: tuple = ()
    defaults: tuple = ()
    kwdefaults: dict = field(default_factory=dict)


@dataclass
class Origin:
    """Where user code produced a node, for the verbatim-glue pass of ``enhanced``: ``kind`` is
    ``call`` (an operator call: its keyword arguments), ``store`` (a value stored in a local) or
    ``return`` (forward's result); ``names`` what the frame's local names held there (``Seen``) and
    ``globals`` the frame's globals."""

    kind: str
    loc: Loc
    names: Seen
    globals: dict


IMMUTABLE = (str, bytes, int, float, bool, tuple, frozenset, type(None), complex)
PURE_METHODS = {
    dict: {"get", "keys", "values", "items", "copy"},
    list: {"index", "count", "copy"},
    set: {"union", "intersection", "difference", "symmetric_difference", "issubset", "issuperset", "copy"},
}
BOX_MUTATORS = {"append", "extend", "update"}
PURE_METHOD_NAMES = frozenset(
    "capitalize casefold center count decode encode endswith expandtabs find format format_map index isalnum "
    "isalpha isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join "
    "ljust lower lstrip partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip "
    "split splitlines startswith strip swapcase title translate upper zfill get keys values items copy "
    "bit_length conjugate is_integer hex".split()
)
PURE_BUILTINS = frozenset(
    getattr(builtins, n)
    for n in (
        "len str int float bool repr ascii abs round min max sum sorted any all list tuple dict set "
        "frozenset isinstance range divmod pow ord chr format hex oct bin zip enumerate reversed"
    ).split()
)
PURE_BOUND = frozenset({"get", "count", "index", "keys", "values", "items", "__getitem__", "__contains__"})
PURE_FUNCTIONS = frozenset({json.dumps, json.loads, re.sub, re.findall, re.split, re.escape, re.fullmatch, defined})


PROJECT_MARKERS = ("pyproject.toml", ".git", "setup.py")  # what makes a directory a repository's root


@lru_cache(maxsize=None)
def relative_file(filename: str) -> str:
    """A deterministic, repository-relative spelling of a source file."""
    path = os.path.abspath(filename)
    if not os.path.exists(path):
        return os.path.basename(filename)
    directory = os.path.dirname(path)
    while True:
        if any(os.path.exists(os.path.join(directory, m)) for m in PROJECT_MARKERS):
            return os.path.relpath(path, directory).replace(os.sep, "/")
        parent = os.path.dirname(directory)
        if parent == directory:
            return os.path.basename(path)
        directory = parent


LIBRARY_DIRS = tuple(
    os.path.join(os.path.realpath(p), "")
    for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")} if p
)


@lru_cache(maxsize=4096)
def library_file(filename: str) -> bool:
    """Whether ``filename`` belongs to the standard library or an installed package: a graph break met
    while interpreting it is reported at the user's line that called into it."""
    return os.path.realpath(filename).startswith(LIBRARY_DIRS)


@lru_cache(maxsize=4096)
def _loc(filename: str, line: int | None, col: int | None = None) -> Loc:
    if not line:
        return Loc(relative_file(filename), 0, "")
    text = linecache.getline(filename, line).strip()
    return Loc(relative_file(filename), line, text, -1 if col is None else col)


class Builder:
    """Accumulates IR nodes with unique, stable names."""

    def __init__(self) -> None:
        self.nodes: list = [Input()]
        self.names = set(RESERVED)  # never shadow a builtin, a keyword or a name every plan defines
        self.counters: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        """``base``, else ``base_1``, ``base_2``...: the first name not taken (a counter per base keeps
        this constant-time; names are never released, so the result is the same as a scan)."""
        if base not in self.names:
            self.names.add(base)
            return base
        n = self.counters.get(base, 0)
        while True:
            n += 1
            name = f"{base}_{n}"
            if name not in self.names:
                break
        self.counters[base] = n
        self.names.add(name)
        return name


class Seen:
    """What a frame's local names held when last loaded or stored (static capture only), in segments:
    a ``remember`` closes the current segment (it becomes that origin's view) and starts a new one
    chained to it, so recording an origin costs O(1) however many locals the frame has."""

    __slots__ = ("values", "parent")

    def __init__(self, parent: Seen | None = None):
        self.values: dict[str, tuple | None] = {}  # name -> (raw, operand, kind), None: not a plain value
        self.parent = parent

    def note(self, name: str, val: Val) -> None:
        plain = val.box is None and isinstance(val.expr, (Ref, Const, Static, Global))
        self.values[name] = (val.raw, val.expr, val.kind) if plain else None

    def get(self, name: str) -> tuple | None:
        seen: Seen | None = self
        while seen is not None:
            if name in seen.values:
                return seen.values[name]
            seen = seen.parent
        return None


class Frame:
    __slots__ = ("code", "ins", "locals", "cells", "stack", "globals", "pc", "kwnames", "user", "seen", "gen")

    def __init__(self, code: types.CodeType, globals_: dict):
        self.code = code
        self.ins = instructions(code)
        self.locals: dict[str, Val] = {}
        self.cells: dict[str, Cell] = {}
        self.stack: list = []
        self.globals = globals_
        self.pc = 0
        self.kwnames: tuple = ()
        self.user = not library_file(code.co_filename)  # locations point at user code, not libraries
        self.seen = Seen()
        self.gen: Val | None = None  # a generator expression's frame: the list its yields append to


class Tracer:
    """Interprets one call of ``forward`` and records its graph (see the module docstring)."""

    def __init__(
        self, root: Any, operator_name: str, is_operator: Callable[[Any], bool], dry: bool = False,
        abstract: bool = False,
    ):
        # dry: record operator calls without running them; stop (NeedsValue) at any break.
        # abstract: also know no input value (static capture): runtime loops and branches become regions.
        self.dry = dry or abstract
        self.abstract = abstract
        self.scopes: list = []
        self.files: dict[str, str] = {}  # repository-relative file -> the file, for source analysis
        self.variables: dict[str, str] = {}  # node name -> the first local variable the user stored it in
        self.root = root
        self.operator_name = operator_name
        self.is_operator = is_operator
        self.builder = Builder()
        self.recording = True
        self.brk: Break | None = None
        self.required: list[str] = []
        self.depth = 0
        self.loc = Loc()
        self.frame: Frame | None = None  # the frame of the call being interpreted (set by CALL)
        self.origins: dict[str, Origin] = {}  # node name (or "" for the result) -> where it was made
        self.effects: list[str] = []  # the Call steps, in program order
        self.readers: set[str] = set()  # glue that reads state
        self.shared: set[str] = set()  # glue computed once because an effect receives its (mutable) value
        self.writers: set[str] = set()  # leaf operator calls that may change state other operators hold
        self.holdings: Holdings | None = None  # who holds what (``compiler.sharing``), walked when first needed
        self.stepped = False  # whether a step (operator call or effect) was recorded yet
        self.helpers: list[int] = []  # where each helper being followed started (len of the nodes)
        self.root_frame: Frame | None = None  # forward's own frame, whose statements can be segments
        self.statements: Any = None  # forward's top-level statements (``segments.statements``)
        self.unmodelled_lines: dict[int, tuple[int, str]] = {}  # ``_unmodelled_lines`` of forward's code
        self.cp: Checkpoint | None = None  # where the current statement of forward started
        self.opaque: list[Break] = []  # the breaks each statement segment absorbed
        self.in_root = False  # forward's own frame is running (its statements may become segments)
        self.frozen_containers: dict[int, tuple[Any, bool]] = {}  # see ``frozen``

    # ------------------------------------------------------------------ entry point
    def run(self, forward: Callable, inputs: Mapping[str, Any]) -> tuple[Any, Graph | None]:
        """Run ``forward(self=root, inputs=inputs)``; the eager result and the graph (None on a break)."""
        func = forward.__func__ if isinstance(forward, types.MethodType) else forward
        args = [Val(self.root, Static(""))] if isinstance(forward, types.MethodType) else []
        in_val = Val(_shape(inputs) if self.abstract else inputs, Ref("inputs"), INPUT)
        self.statements = segments.statements(func.__code__)
        self.unmodelled_lines = _unmodelled_lines(func.__code__, self.abstract)
        try:
            if self.statements is None or not all(
                s.ok and all(p.ok for p in (self.statements.tail(s) if s.returns else ()))
                for s in self.statements.items if self.unmodelled_in(s.first, s.last)
            ):  # else a construct the capture does not model costs the statement it is in
                self.prescan(func.__code__)
        except GraphBreak as exc:
            if self.dry:
                raise NeedsValue(exc.brk) from None
            self.brk = exc.brk
            return forward(inputs=inputs), None
        try:
            result = self.call_function(func, args, {"inputs": in_val})
        except GraphBreak as exc:  # raised by region building, only in dry captures
            raise NeedsValue(exc.brk) from None
        if not self.recording:
            return result.value, None
        try:
            out = self.operand(result)
        except GraphBreak as exc:
            if self.dry:
                raise NeedsValue(exc.brk) from None
            self.brk = exc.brk
            return result.value, None
        self.builder.nodes.append(Output(self.builder.fresh("output"), out, self.loc))
        try:
            nodes = effects.order(tuple(self.builder.nodes), frozenset(self.readers), _is_step,
                                  frozenset(self.shared), frozenset(self.writers))
            iterator = effects.shared_iterator(nodes)
            if iterator is not None:
                raise GraphBreak("shared-iterator", "an iterator is read more than once: a plan cannot share "
                                 "one iterator between its steps", iterator.loc)
        except GraphBreak as exc:  # no plan orders this graph like eager Python: the call runs eagerly
            if self.dry:
                raise NeedsValue(exc.brk) from None
            self.brk = exc.brk
            return result.value, None
        return (None if self.dry else result.value), Graph(nodes)

    def frozen(self, value: Any) -> bool:
        """``effects.frozen``, once per frozen container of the operator tree (``self.ops[i]`` of a
        10,000-element list would check every element 10,000 times). Such a container cannot change,
        and the memo holds it, so its ``id`` names it for the whole capture."""
        if not getattr(type(value), "__xcs_frozen__", False):
            return effects.frozen(value, self.is_operator)
        known = self.frozen_containers.get(id(value))
        if known is None:
            known = self.frozen_containers[id(value)] = (value, effects.frozen(value, self.is_operator))
        return known[1]

    def state(self, value: Any, expr: Any) -> Val:
        """A value of the operator tree, a closure or a module: folded when immutable, else state."""
        return Val(value, expr, STATIC if self.frozen(value) else STATE)

    def prescan(self, code: types.CodeType) -> None:
        for ins in instructions(code):
            if ins.op not in HANDLED or (ins.op in STATIC_ONLY and not self.abstract):
                code_, what = breaking(ins.op)
                raise GraphBreak(code_, f"{what} is not modelled by the capture", _loc(code.co_filename, ins.line))

    def remember(self, key: str, kind: str, frame: Frame | None) -> None:
        """Record the ``Origin`` of node ``key`` (static capture of user code only; the first wins)."""
        if not self.abstract or frame is None or not frame.user or key in self.origins:
            return
        self.origins[key] = Origin(kind, self.loc, frame.seen, frame.globals)
        frame.seen = Seen(frame.seen)

    # ------------------------------------------------------------------ breaks
    def breaks(self, code: str, reason: str) -> None:
        """Record a graph break and continue natively (the rest of the call runs eagerly); inside a
        helper that has made no step yet, the helper call becomes one opaque step instead, and else
        the statement of forward it happens in (``segment``)."""
        if self.recording and self.helpers and not self.stepped_since(self.helpers[-1]):
            raise Opaque(Break(code, reason, self.loc))
        if self.recording and self.can_segment():
            raise Resume(Break(code, reason, self.loc))
        if self.dry:
            raise NeedsValue(Break(code, reason, self.loc))
        if self.recording:
            self.brk = Break(code, reason, self.loc)
            self.recording = False

    def stepped_since(self, mark: int) -> bool:
        return any(_is_step(n) or isinstance(n, Call) for n in self.builder.nodes[mark:])

    def can_segment(self) -> bool:
        """Whether the current statement of forward can become one opaque step: it can run alone,
        and nothing it did so far ran for real (a dry capture runs nothing; a trace ran no step)."""
        cp = self.cp
        return cp is not None and cp.usable and (self.dry or not self.stepped_since(cp.nodes))

    # ------------------------------------------------------------------ statement segments
    def statement_start(self, frame: Frame, line: int) -> None:
        """At each new top-level statement of forward: a checkpoint to roll back to."""
        stmt = self.statements.by_line.get(line) if self.statements is not None else None
        if stmt is None or (self.cp is not None and self.cp.stmt is stmt):
            return
        if frame.stack or self.scopes:
            self.cp = None
            what = self.unmodelled_in(stmt.first, stmt.last)
            if what:
                raise GraphBreak("unsupported-bytecode", f"{what} is not modelled by the capture", self.loc)
            return
        parts = self.statements.tail(stmt) if stmt.returns else (stmt,)
        self.cp = Checkpoint(
            stmt, len(self.builder.nodes), len(self.effects), len(self.required), self.stepped, self.loc,
            frame.locals, {name: cell.val for name, cell in frame.cells.items()},
            usable=all(p.ok for p in parts),
        )
        what = self.unmodelled_in(stmt.first, stmt.last)
        if what:  # the statement holds a construct the capture does not model: it runs as it is
            where = _loc(frame.code.co_filename, stmt.first)
            raise Resume(Break("unsupported-bytecode", f"{what} is not modelled by the capture", where))

    def unmodelled_in(self, first: int, last: int) -> str:
        """The construct the capture does not model on lines ``first``..``last`` of forward ("" if none)."""
        lines = self.unmodelled_lines  # a dict per code: the lines of one statement are looked up, not scanned
        return min((lines[line] for line in range(first, last + 1) if line in lines), default=(0, ""))[1]

    def unmodelled(self, frame: Frame, line: int) -> None:
        """A statement of forward reached inside a region holds a construct the capture does not model:
        the statement around the region runs as written, or the capture stops."""
        stmt = self.statements.by_line.get(line) if self.statements is not None else None
        what = self.unmodelled_in(stmt.first, stmt.last) if stmt is not None else ""
        if what:
            raise GraphBreak("unsupported-bytecode", f"{what} is not modelled by the capture",
                             _loc(frame.code.co_filename, stmt.first))

    def touch(self, val: Val) -> None:
        """Save a container built in forward before the current statement changes it."""
        cp = self.cp
        if cp is not None and val.saved is not cp:
            val.saved = cp
            box = dict(val.box) if isinstance(val.box, dict) else list(val.box) if val.box is not None else None
            raw = dict(val.raw) if isinstance(val.raw, dict) else list(val.raw) if isinstance(val.raw, list) else None
            cp.boxes.append((val, box, raw, val.kind, val.expr))

    def changed(self, frame: Frame, name: str) -> None:
        if frame is self.root_frame and self.cp is not None:
            self.cp.undo.append((name, frame.locals.get(name)))

    def loop_or_segment(self, frame: Frame, brk: Break) -> Val | None:
        """A statement holding a loop on runtime data becomes a ``Loop`` region, or keeps its own
        structure with its inner loops as ``Loop`` regions (``compiler.loops``), when it can; any
        other statement, or one it cannot capture, one opaque step (``segment``). Returns forward's
        result when the statement returns it."""
        cp = self.cp
        if not self.abstract or not self.recording or cp is None or not loops.has_loop(frame.code, cp.stmt):
            return self.segment(frame, brk)
        for way in loops.WAYS:
            self.rollback(frame)
            saved = dict(frame.locals)
            self.cp = cp  # containers the capture changes are saved, and restored by the next rollback
            try:
                returns, result = loops.capture_way(self, frame, cp.stmt, self.statements, way)
            except (Exception, Resume, Opaque):  # noqa: BLE001 - the next way, or the statement as written
                frame.locals.clear()
                frame.locals.update(saved)
                continue
            self.cp = None
            if returns:
                return result
            items = self.statements.items
            if cp.stmt.index == len(items) - 1:  # the statement ends forward: it returns None
                return Val(None, Const(None))
            frame.pc = _statement_entry(frame.code, items[cp.stmt.index + 1].first)
            return None
        return self.segment(frame, brk)

    def truncate(self, nodes: int, effects: int, required: int) -> None:
        """Forget the nodes, effects and input reads recorded after the first ``nodes``, ``effects``
        and ``required`` of them."""
        removed = tuple(self.builder.nodes[nodes:])
        del self.builder.nodes[nodes:], self.effects[effects:], self.required[required:]
        for name in {n.name for n in walk(removed)}:
            self.readers.discard(name)
            self.origins.pop(name, None)
            self.variables.pop(name, None)

    def rollback(self, frame: Frame) -> None:
        """Undo what the current statement of forward did so far (nodes, effects, locals, cells and
        containers), back to its checkpoint."""
        cp = self.cp
        self.truncate(cp.nodes, cp.effects, cp.required)
        self.stepped, self.loc, self.frame, self.depth = cp.stepped, cp.loc, frame, 1
        self.scopes.clear()
        self.helpers.clear()
        frame.locals = cp.locals
        for name, old in reversed(cp.undo):
            if old is None:
                frame.locals.pop(name, None)
            else:
                frame.locals[name] = old
        if self.abstract:  # what the names hold again, for the verbatim-glue pass
            frame.seen = segments_seen = Seen(frame.seen)
            for name, _ in cp.undo:
                if name in frame.locals:
                    segments_seen.note(name, frame.locals[name])
        for name, old in cp.cells.items():
            frame.cells[name].val = old
        for val, box, raw, kind, expr in reversed(cp.boxes):
            if isinstance(val.raw, list) and raw is not None:
                val.raw[:] = raw
            elif isinstance(val.raw, dict) and raw is not None:
                val.raw.clear()
                val.raw.update(raw)
            val.box, val.kind, val.expr = box, kind, expr
        frame.stack.clear()
        frame.kwnames = ()
        self.cp = None

    def segment(self, frame: Frame, brk: Break) -> Val | None:
        """Roll back the current statement and record it as one ``Call`` of the user's own text (with
        the rest of forward when it returns); then resume after it. Returns forward's result when the
        segment returns it."""
        cp, code = self.cp, frame.code
        stmt = cp.stmt
        tail = stmt.returns or stmt.index == len(self.statements.items) - 1
        parts = self.statements.tail(stmt) if tail else (stmt,)
        self.rollback(frame)
        local = set(code.co_varnames) | set(code.co_cellvars)
        # what it reads, and what it may assign or leave as it was (``if c: out = x``: out's value before)
        reads = dict.fromkeys([n for p in parts for n in p.reads] + [n for p in parts for n in p.writes])
        later = {n for p in self.statements.items[stmt.index + 1:] for n in p.reads}
        bound = lambda n: n in frame.locals or (n in frame.cells and frame.cells[n].val is not None)  # noqa: E731
        held = lambda n: frame.locals[n] if n in frame.locals else frame.cells[n].val  # noqa: E731
        params = tuple(n for n in reads if bound(n))
        vals = [held(n) for n in params]
        # what it binds and later statements read, and the containers built in forward it may change
        changed = [n for n, v in zip(params, vals) if v.box is not None and not isinstance(v.raw, tuple)]
        writes = () if tail else tuple(dict.fromkeys([n for p in parts for n in p.writes if n in local and n in later] + changed))
        name = self.builder.fresh("segment")
        text = segments.function_text(code.co_filename, name, params, parts, None if tail else writes)
        module = frame.globals.get("__name__", "__main__")
        try:
            args = tuple(self.operand(v) for v in vals)
        except GraphBreak as exc:  # a value the plan cannot pass (a function defined in forward)
            if self.dry:
                raise NeedsValue(exc.brk) from None
            # The statement was rolled back and ran nothing: the run goes on natively from its start.
            self.brk, self.recording = exc.brk, False
            frame.pc = _statement_entry(code, stmt.first)
            return None
        loc = _loc(code.co_filename, stmt.first)
        node = Call(name, Const(None), args, (), loc, (self.effects[-1],) if self.effects else (),
                    Source(module, stmt.first - 1, text))
        self.builder.nodes.append(node)
        self.effects.append(name)
        self.stepped = True
        self.opaque.append(brk)
        if self.dry:
            value = PENDING
        else:
            value = define_segment(module, stmt.first - 1, name, text)(*map(_native, vals))
        result = Val(value, Ref(name), STEP)
        if tail:
            return result
        before = {n: held(n) for n in changed}
        rebound = {n for p in parts for n in p.writes}
        compound = loops.may_leave_unbound(code, stmt)
        for i, written in enumerate(writes):
            item = self.glue("getitem", [result, Val(i, Const(i))])
            if compound and not bound(written):  # a loop that ran zero times, an if without else
                item = self.glue("call", [Val(defined, loops.DEFINED), item, Val(written, Const(written))])
            aliases = [n for n, v in frame.locals.items()
                       if written in before and v is before[written] and n not in rebound]
            for name in {written, *aliases}:  # a container changed in place: every name that holds it
                loops.assign(self, frame, name, item)
        nxt = self.statements.items[stmt.index + 1]
        frame.pc = _statement_entry(code, nxt.first)
        return None

    def kind(self, *vals: Val) -> int:
        if not self.recording:
            return STATIC
        return max((v.kind for v in vals), default=STATIC)

    # ------------------------------------------------------------------ IR helpers
    def operand(self, val: Val) -> Any:
        """The IR operand that recomputes ``val`` in a plan."""
        if val.once:
            self.consume(val)
        if isinstance(val.raw, slice) and isinstance(val.box, list):  # ``BUILD_SLICE``'s parts
            parts = (Global("builtins", "slice"), *(self.operand(p) for p in val.box))
            return self.node(Glue(self.builder.fresh("slice"), "call", parts, loc=self.loc))
        if isinstance(val.raw, constructs.GenState):
            raise GraphBreak("unsupported-bytecode", "a generator expression kept as a value", self.loc)
        if isinstance(val.raw, Interpreted) and val.raw.code.co_name == "<lambda>":
            return constructs.function(self, val.raw)
        if val.expr is None and val.receiver is not None and val.receiver.box is not None and val.attr in PURE_BOUND:
            # a pure method of a container built in forward, as a value: ``max(votes, key=votes.count)``
            return self.node(Glue(self.builder.fresh(val.attr), "getattr", (self.operand(val.receiver),), val.attr, loc=self.loc))
        if val.box is not None:
            if isinstance(val.box, dict):
                flat = []
                for key, item in val.box.items():
                    if not is_literal(key):
                        raise GraphBreak("unrenderable-value", f"dict key {key!r} is not a literal", self.loc)
                    flat += [Const(key), self.operand(item)]
                return self.node(Glue(self.builder.fresh("dict"), "dict", tuple(flat), loc=self.loc))
            op = "tuple" if isinstance(val.raw, tuple) else "list"
            items = tuple(self.operand(v) for v in val.box)
            if op == "tuple" and all(isinstance(i, Const) for i in items):
                return Const(tuple(i.value for i in items))
            return self.node(Glue(self.builder.fresh(op), op, items, loc=self.loc))
        if isinstance(val.expr, regions.LoopCarried):
            raise GraphBreak(val.expr.code, val.expr.reason(), self.loc)
        if val.expr is not None:
            return val.expr
        if val.kind == STATE:
            raise GraphBreak(
                "unrenderable-value", f"a {type(val.value).__name__} held in a closure or a default is read", self.loc
            )
        if is_literal(val.value):
            return Const(val.value)
        if val.kind == STATIC and _literal_container(val.value):
            return self.render(val.value)
        raise GraphBreak(
            "unrenderable-value",
            f"a {type(val.value).__name__} value built during the call is used by the graph",
            self.loc,
        )

    def render(self, value: Any) -> Any:
        """The operand of a static value: a literal, or glue rebuilding a container of literals
        (a set's items in a stable order, so plans do not depend on string hashing)."""
        if is_literal(value):
            return Const(value)
        if isinstance(value, dict):
            flat = tuple(x for k, v in value.items() for x in (Const(k), self.render(v)))
            return self.node(Glue(self.builder.fresh("dict"), "dict", flat, loc=self.loc))
        items = sorted(value, key=canonical_repr) if isinstance(value, (set, frozenset)) else value
        op = {list: "list", tuple: "tuple", set: "set"}.get(type(value), "set")
        ref = self.node(Glue(self.builder.fresh(op), op, tuple(self.render(v) for v in items), loc=self.loc))
        if type(value) is frozenset:
            return self.node(Glue(self.builder.fresh("frozenset"), "call", (Global("builtins", "frozenset"), ref), loc=self.loc))
        return ref

    def node(self, node: Any) -> Ref:
        self.builder.nodes.append(node)
        return Ref(node.name)

    def glue(self, op: str, vals: list[Val], detail: str = "", keys: tuple[str, ...] = ()) -> Val:
        """Apply a pure operation: folded when every operand is static, recorded otherwise."""
        kind = self.kind(*vals)
        if self.dry and any(pending(v) for v in vals):
            value = PENDING  # unknown here: an operator's output (state read after an effect may be stale:
            # a plan never specialises on it, see ``concretize``)
        else:
            try:
                value = RULES[op].evaluate(detail, keys, [_native(v) for v in vals])
            except Exception:
                if not self.dry or kind == STATIC:
                    raise
                value = PENDING  # the run decides (state read here may differ when the plan runs)
        if kind == STATIC and self.recording and _order_sensitive(op, vals, detail):
            vals = self.live_sets(vals)
            if vals is None:
                return Val(value)
            kind = INPUT
        if kind == STATIC:
            expr = self.static_expr(op, vals, detail, value)
            if op in ("getattr", "getitem") and not self.frozen(value):
                return Val(value, expr if isinstance(expr, (Static, Global)) else None, STATE)
            return Val(value, expr)
        try:
            operands = tuple(self.operand(v) for v in vals)
        except GraphBreak as exc:  # e.g. a lambda passed to sorted(): the rest of the call runs natively
            self.breaks(exc.brk.code, exc.brk.reason)
            return Val(value)
        ref = self.node(Glue(self.builder.fresh(op), op, operands, detail, keys, self.loc))
        if self.recording and any(v.kind == STATE and not self.frozen(v.raw) for v in vals):
            self.readers.add(ref.name)  # it reads a mutable object (a value computed from one is not a read)
        return Val(value, ref, kind)

    def static_expr(self, op: str, vals: list[Val], detail: str, value: Any) -> Any:
        base = vals[0].expr if vals else None
        if op == "getattr":
            if isinstance(vals[0].value, types.ModuleType):
                return Global(vals[0].value.__name__, detail)
            if isinstance(base, Static):
                return Static(f"{base.path}.{detail}" if base.path else detail)
            if isinstance(base, Global):
                return Global(base.module, f"{base.qualname}.{detail}")
        if op == "getitem" and isinstance(base, Static) and is_literal(vals[1].value):
            key = vals[1].value
            if type(key) is int and key < 0 and isinstance(vals[0].value, (list, tuple)):
                key += len(vals[0].value)  # one spelling per element: ``members[-1]`` is ``members[2]``
            return Static(f"{base.path}[{key!r}]")
        return Const(value) if is_literal(value) else None

    def guard(self, val: Val, expected: Any) -> None:
        """Record that ``val`` must equal ``expected`` for the traced path to be valid."""
        self.builder.nodes.append(Guard(self.builder.fresh("guard"), self.operand(val), expected, self.loc))

    def concretize(self, val: Val) -> Any:
        """A concrete value the trace may specialise on: guarded if it came from the inputs, or from
        state read before any step could change it."""
        kind = self.kind(val)
        if kind == STATE and val.box is None:
            if self.stepped:
                self.breaks("state-after-step", "the program decides on state after a call that may change it")
            elif not is_literal(val.value):
                self.breaks("unrenderable-value", f"the program specialises on a {type(val.value).__name__} it holds")
            else:
                self.guard(val, val.value)
            return val.value
        if self.abstract and kind != STATIC and val.box is None:
            self.breaks("runtime-value", "the program specialises on a runtime value (an index, a key or a choice)")
        if kind == INPUT and val.box is None:
            if not is_literal(val.value):
                self.breaks("unrenderable-value", f"the trace specialises on a {type(val.value).__name__} input")
            else:
                self.guard(val, val.value)
        elif kind == STEP and val.box is None:
            self.breaks("branch-on-output", "the program specialises on a value an operator returned")
        return val.value

    def live_sets(self, vals: list[Val]) -> list[Val] | None:
        """``vals`` with each hash-ordered set made a runtime value read from where it lives (an
        attribute path or a module global), so what depends on its order is computed when the plan
        runs; None (after a graph break) when such a set was built during the call."""
        live = []
        for val in vals:
            if val.box is None and hash_ordered(val.raw):
                if not isinstance(val.expr, (Static, Global)):
                    self.breaks(
                        "unrenderable-value",
                        "the order of a set built during the call is used; it depends on PYTHONHASHSEED",
                    )
                    return None
                val = Val(val.raw, val.expr, INPUT)
            live.append(val)
        return live

    # ------------------------------------------------------------------ iteration
    def consume(self, val: Val) -> None:
        """An iterator's items are read once: eager's second reader finds it exhausted, which a plan,
        whose steps each rebuild what they read, cannot reproduce."""
        if val.once == 2:
            val.raw = iter(())  # what the rest of a run that goes on natively reads: eager's, exhausted
            self.breaks("shared-iterator", "an iterator is read more than once: a plan cannot share one "
                        "iterator between its steps")
        val.once = 2

    def iterate(self, val: Val) -> list[Val]:
        """The traced items of an iterable (guarded on its length or keys when it came from inputs)."""
        if val.once:
            self.consume(val)
        if isinstance(val.raw, IterState):
            items = val.raw.items[val.raw.index:]
            val.raw.index = len(val.raw.items)
            return items
        if not self.recording:
            return [Val(v) for v in val.value]
        if val.box is not None:
            return list(val.box) if not isinstance(val.box, dict) else [Val(k, Const(k)) for k in val.box]
        kind = self.kind(val)
        if self.abstract and kind not in (STATIC, STATE) and not isinstance(val.raw, Mapping):
            self.breaks("runtime-loop", "unpacking or zipping a runtime sequence of unknown length")
        value = val.value
        if kind == STEP:
            self.breaks("iterate-over-output", "the loop's length depends on an operator's output")
            return [Val(v) for v in value]
        if kind == STATE and self.stepped:
            self.breaks("state-after-step", "the program iterates over state after a call that may change it")
            return [Val(v) for v in value]
        if isinstance(value, Mapping):
            keys = tuple(value)
            if (kind == INPUT and not self.abstract) or kind == STATE:  # the signature fixes abstract inputs' keys
                if not is_literal(keys):
                    self.breaks("unrenderable-value", "the trace specialises on keys that are not literals")
                    return [Val(k) for k in keys]
                self.guard(self.glue("call", [Val(tuple, Global("builtins", "tuple")), val]), keys)
            return [Val(k, Const(k) if is_literal(k) else None) for k in keys]
        if kind == STATIC and hash_ordered(value):
            # the order is the running process's (PYTHONHASHSEED): the plan reads the items of the live
            # set at run time, in the order eager Python sees, as ``list(ops.tags)[i]``
            live = self.live_sets([val])
            if live is None:
                return [Val(v) for v in value]
            items = self.glue("call", [Val(list, Global("builtins", "list")), live[0]])
            return [self.glue("getitem", [items, Val(i, Const(i))]) for i in range(len(value))]
        if kind == STATIC:
            items = list(value)
            if isinstance(val.expr, Static) and isinstance(value, (list, tuple)):
                return [self.glue("getitem", [val, Val(i, Const(i))]) for i in range(len(items))]
            return [Val(v, Const(v) if is_literal(v) else None) for v in items]
        if isinstance(value, (set, frozenset)):  # in the order the running process iterates it
            self.guard(self.glue("call", [Val(len, Global("builtins", "len")), val]), len(value))
            items = self.glue("call", [Val(list, Global("builtins", "list")), val])
            return [self.glue("getitem", [items, Val(i, Const(i))]) for i in range(len(value))]
        if not hasattr(value, "__getitem__") or not hasattr(value, "__len__"):
            self.breaks("unknown-call", f"iterating a {type(value).__name__} input")
            return [Val(v) for v in value]
        self.guard(self.glue("call", [Val(len, Global("builtins", "len")), val]), len(value))
        return [self.glue("getitem", [val, Val(i, Const(i))]) for i in range(len(value))]

    def make_box(self, items: list[Val], kind: type) -> Val:
        if kind is dict:
            raise AssertionError
        box = Val(kind(v.raw for v in items), None, self.kind(*items), list(items))
        box.scope = len(self.scopes)
        return box

    def make_dict(self, pairs: list[tuple[Val, Val]]) -> Val:
        if self.recording and any(self.kind(k) != STATIC and k.box is None for k, _ in pairs):
            # a key only the run knows (an input, state, an output): a dict built when the plan runs
            return self.glue("dict", [v for pair in pairs for v in pair])
        box: dict = {}
        for key, item in pairs:
            box[self.concretize(key)] = item
        made = Val({k: v.raw for k, v in box.items()}, None, self.kind(*box.values()), box)
        made.scope = len(self.scopes)
        return made

    # ------------------------------------------------------------------ calls
    def call(self, fn: Val, args: list[Val], kwargs: dict[str, Val]) -> Val:
        if fn.raw is PENDING and fn.receiver is not None and pending(fn.receiver):
            # A method of a value the capture does not have (its type is unknown): only names that
            # no builtin type mutates with are taken as pure glue.
            if fn.attr not in PURE_METHOD_NAMES:
                return self.effect(fn, args, kwargs)
            return self.glue("method", [fn.receiver, *args, *kwargs.values()], detail=fn.attr, keys=tuple(kwargs))
        if fn.options is not None and self.recording:
            return constructs.switch(self, fn, args, kwargs)
        if isinstance(fn.raw, loops.Markers) and self.frame is not None:  # a loop on runtime data of rewritten code
            return fn.raw.call(self, self.frame, args[0].value)
        if isinstance(fn.raw, constructs.WithExit):
            return constructs.close_with(self, self.frame, fn.raw, args)
        if self.recording and any(isinstance(a.raw, constructs.GenState) for a in (*args, *kwargs.values())):
            args = constructs.consume(self, fn, args, kwargs)
        target = fn.value
        if isinstance(target, Interpreted):
            if self.recording and target.code.co_name == "<genexpr>":  # made now, consumed by its caller
                return Val(constructs.GenState(target, args[0], lambda: _native_function(target)(_native(args[0]))))
            return self.call_interpreted(target, args, kwargs)
        if target is super and not args and not kwargs and self.frame is not None:
            return _super(self, fn, self.frame)  # 3.11's zero-argument super()
        if not self.recording:
            return Val(target(*map(_native, args), **{k: _native(v) for k, v in kwargs.items()}))
        if self.is_operator(target):
            vmapped = getattr(target, "__xcs_vmap__", None) if self.abstract and not args else None
            if vmapped is not None and isinstance(fn.expr, Static) and fn.expr.path:
                return regions.batch_region(self, fn, vmapped, self.call_inputs(kwargs))
            if not args and (getattr(target, "__xcs_jit__", None) is not None or self.composite(target)):
                inlined = self.inline_jitted(fn, kwargs)
                if inlined is not None:
                    return inlined
            return self.call_operator(fn, args, kwargs)
        special = SPECIAL_CALLS.get(target) if _hashable(target) else None
        if special is not None and not kwargs and all(self.traceable(a, target) for a in args):
            return special(self, args)
        receiver = fn.receiver
        if (
            receiver is not None
            and not isinstance(receiver.raw, types.ModuleType)
            and isinstance(target, (types.BuiltinMethodType, types.MethodWrapperType))
        ):
            return self.call_method(receiver, fn, args, kwargs)
        if target in PURE_FUNCTIONS or (_hashable(target) and target in PURE_BUILTINS) or getattr(target, "__module__", None) in ("math", "_operator", "operator"):
            return self.glue("call", [fn, *args, *kwargs.values()], keys=tuple(kwargs))
        func = target.__func__ if isinstance(target, types.MethodType) else target
        if isinstance(func, types.FunctionType) and library_file(func.__code__.co_filename):
            return self.effect(fn, args, kwargs)  # library code: not interpreted, one opaque step
        if isinstance(target, types.MethodType) and isinstance(target.__func__, types.FunctionType):
            owner = fn.receiver
            while owner is not None and owner.raw is not target.__self__:  # super().m: the instance
                owner = owner.receiver
            owner = owner or self.state(target.__self__, None)
            return self.call_helper(fn, target.__func__, [owner, *args], args, kwargs)
        if isinstance(target, types.FunctionType):
            return self.call_helper(fn, target, args, args, kwargs)
        return self.effect(fn, args, kwargs)

    def call_helper(self, fn: Val, func: types.FunctionType, bound: list[Val], args: list[Val], kwargs: dict[str, Val]) -> Val:
        """Follow a user helper into its code; if it breaks before making any step, roll back what it
        recorded and make the call one opaque step (nothing ran twice: it made no step)."""
        mark = (len(self.builder.nodes), len(self.effects), set(self.readers), self.stepped, len(self.scopes),
                self.loc, self.frame, self.depth)
        self.helpers.append(mark[0])
        try:
            return self.call_function(func, bound, kwargs)
        except (Opaque, GraphBreak, NeedsValue) as exc:
            if not isinstance(exc, Opaque) and any(
                _is_step(n) or isinstance(n, Call) for n in self.builder.nodes[mark[0]:]
            ):
                raise
            del self.builder.nodes[mark[0]:], self.effects[mark[1]:], self.scopes[mark[4]:]
            self.readers, self.stepped, self.loc, self.frame, self.depth = mark[2], mark[3], mark[5], mark[6], mark[7]
        finally:
            self.helpers.pop()
        return self.effect(fn, args, kwargs)

    def effect(self, fn: Val, args: list[Val], kwargs: dict[str, Val]) -> Val:
        """A call the capture cannot prove pure: one ``Call`` step, after the previous effect."""
        name = _call_name(fn)
        if any(scope.kind not in IN_ORDER for scope in self.scopes):  # a map's elements overlap
            self.breaks("effect-in-region", f"a call of {name} inside a loop over runtime data")
            return self.call(fn, args, kwargs)
        try:
            for val in (*args, *kwargs.values(), *((fn.receiver,) if fn.receiver is not None else ())):
                self.share(val)
            node = Call(
                self.builder.fresh(name), self.operand(fn), tuple(self.operand(a) for a in args),
                tuple((k, self.operand(v)) for k, v in kwargs.items()), self.loc,
                (self.effects[-1],) if self.effects and not self.scopes else (), barrier=fn.raw is PENDING and loops.inside(self) or not _cannot_fail(fn.value),
            )
        except GraphBreak as exc:  # an argument the plan could not rebuild: this call runs natively
            self.breaks(exc.brk.code, exc.brk.reason)
            return self.call(fn, args, kwargs)
        self.builder.nodes.append(node)
        if not self.scopes:  # under a branch, the branch is the effect (``regions.branch``)
            self.effects.append(node.name)
        self.stepped = True
        if self.dry:
            return Val(PENDING, Ref(node.name), STEP)
        value = fn.value(*map(_native, args), **{k: _native(v) for k, v in kwargs.items()})
        return Val(value, Ref(node.name), STEP)

    def share(self, val: Val) -> None:
        """An object an effect receives may be changed by it: it is computed once, as a step of its own
        (a container built in forward too), so the effect and every later reader see the same object;
        ``effects.order`` makes the later readers wait for the effect."""
        if val.box is not None and not isinstance(val.raw, tuple):
            self.touch(val)
            val.expr, val.box = self.operand(val), None
        if not isinstance(val.expr, Ref) or self.frozen(val.raw):
            return
        for i in range(len(self.builder.nodes) - 1, 0, -1):
            node = self.builder.nodes[i]
            if node.name == val.expr.name:
                if isinstance(node, Glue) and not node.hoisted:
                    self.builder.nodes[i] = replace(node, hoisted=True)
                    self.shared.add(node.name)
                return

    def composite(self, op: Any) -> bool:
        """Whether ``op`` holds sub-operators (its forward composes them: inlined, so that its
        independent calls overlap like top-level ones); a leaf operator is one step."""
        def holds(value: Any, depth: int) -> bool:
            if self.is_operator(value):
                return True
            if depth < 3 and isinstance(value, (list, tuple, dict)):
                return any(holds(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
            return False
        if getattr(type(op), "__xcs_step__", False):  # a transform: one step by its own contract
            return False
        return any(holds(v, 0) for k, v in vars(op).items() if not k.startswith("_xcs"))

    def inline_jitted(self, fn: Val, kwargs: dict[str, Val]) -> Val | None:
        """A jitted (or composite) sub-operator's ``forward`` captured into this graph (one flat graph,
        more parallelism); None when it cannot be (not reachable by a path, async, or unsupported
        code), and the call stays one opaque step that runs the sub-operator as it is."""
        forward = getattr(type(fn.value), "forward", None)
        if not isinstance(fn.expr, Static) or not fn.expr.path or not isinstance(forward, types.FunctionType):
            return None
        if forward.__code__.co_flags & 0x80:  # async def
            return None
        try:
            self.prescan(forward.__code__)
        except GraphBreak:
            return None
        call = lambda f: self.call_function(f, [Val(fn.value, fn.expr)], {"inputs": self.call_inputs(kwargs)})  # noqa: E731
        mark = (len(self.builder.nodes), len(self.effects), len(self.required), self.stepped, len(self.scopes),
                self.loc, self.frame, self.depth)
        try:
            return loops.inline(self, fn, forward, call) if self.abstract else call(forward)
        except (GraphBreak, NeedsValue) as exc:  # a try its region cannot express: the call stays one step
            if not self.dry or exc.brk.code != tries.CODE:
                raise
            removed = self.builder.nodes[mark[0]:]
            del self.builder.nodes[mark[0]:], self.effects[mark[1]:], self.required[mark[2]:], self.scopes[mark[4]:]
            for name in {n.name for n in walk(tuple(removed))}:
                self.readers.discard(name)
                self.origins.pop(name, None)
                self.variables.pop(name, None)
            self.stepped, self.loc, self.frame, self.depth = mark[3], mark[5], mark[6], mark[7]
            return None

    def call_inputs(self, kwargs: dict[str, Val]) -> Val:
        """The inputs mapping an operator call passes: ``op(inputs=x)`` is ``x``, ``op(a=1)`` ``{"a": 1}``."""
        if list(kwargs) == ["inputs"]:
            return kwargs["inputs"]
        return self.make_dict([(Val(k, Const(k)), v) for k, v in kwargs.items()])

    def traceable(self, arg: Val, target: Any) -> bool:
        """Whether a special call may look at ``arg``'s items (guarding input lengths if it must)."""
        if arg.box is not None or arg.kind == STATIC or isinstance(arg.raw, IterState):
            return True
        if arg.kind == STATE and not self.stepped:  # state read before any step: its length guarded
            return target in (zip, enumerate, reversed)
        return arg.kind == INPUT and target in (zip, enumerate, reversed) and not self.abstract

    def call_method(self, receiver: Val, fn: Val, args: list[Val], kwargs: dict[str, Val]) -> Val:
        name = fn.value.__name__
        recv_type = next(c for c in type(receiver.value).__mro__ if c in PURE_METHODS or c is object)
        if receiver.box is not None and name in BOX_MUTATORS:
            if regions.record_mutation(self, receiver, name, args[0] if args else None):
                return Val(None, Const(None))
            self.touch(receiver)
            if isinstance(receiver.box, dict):
                for src in args:
                    for key, item in self.mapping_items(src):
                        receiver.box[key] = item
                        receiver.raw[key] = item.raw
            else:
                items = [args[0]] if name == "append" else self.iterate(args[0])
                receiver.box.extend(items)
                receiver.raw.extend(i.raw for i in items)
                if receiver.box:
                    receiver.kind = max(receiver.kind, self.kind(*items))
            return Val(None, Const(None))
        if receiver.box is not None and name in ("keys", "values", "items") and isinstance(receiver.box, dict):
            keys = [Val(k, Const(k)) for k in receiver.box]
            pick = {"keys": keys, "values": list(receiver.box.values()),
                    "items": [self.make_box([k, v], tuple) for k, v in zip(keys, receiver.box.values())]}[name]
            return self.make_box(pick, list)
        if isinstance(receiver.value, IMMUTABLE) or name in PURE_METHODS.get(recv_type, ()):
            if receiver.kind == STATIC and receiver.box is None and name == "items" and isinstance(receiver.expr, Static):
                return self.make_box([self.make_box([Val(k, Const(k)), self.glue("getitem", [receiver, Val(k, Const(k))])], tuple) for k in receiver.value], list)
            if receiver.kind == STATIC and receiver.box is None and name == "values" and isinstance(receiver.expr, Static):
                return self.make_box([self.glue("getitem", [receiver, Val(k, Const(k))]) for k in receiver.value], list)
            return self.glue("method", [receiver, *args, *kwargs.values()], detail=name, keys=tuple(kwargs))
        if receiver.box is not None:
            self.breaks("mutation", f"call of {recv_type.__name__}.{name} on a container built in forward")
            return self.call(fn, args, kwargs)
        return self.effect(fn, args, kwargs)

    def mapping_items(self, src: Val) -> list[tuple[Any, Val]]:
        if src.box is not None and isinstance(src.box, dict):
            return list(src.box.items())
        keys = [k.value for k in self.iterate(src)]
        return [(k, self.glue("getitem", [src, Val(k, Const(k))])) for k in keys]

    def call_operator(self, fn: Val, args: list[Val], kwargs: dict[str, Val]) -> Val:
        target = fn.expr
        if not isinstance(target, (Static, Global)) or (isinstance(target, Static) and not target.path):
            self.breaks("unrenderable-value", "an operator that is not reachable from the jitted operator")
            return self.call(fn, args, kwargs)
        if self.holdings is None:
            self.holdings = Holdings(self.root, self.is_operator, library_file)
        role = self.holdings.role(fn.value)  # held state shared with other operators: ordered
        if role == "writes" and self.scopes:
            self.breaks("effect-in-region", f"a call of {target} (it changes state other operators hold) "
                        "inside a loop or branch on runtime data")
            return self.call(fn, args, kwargs)
        name = self.builder.fresh(step_name(target))
        try:
            node = OperatorCall(
                name, target, tuple(self.operand(a) for a in args),
                tuple((k, self.operand(v)) for k, v in kwargs.items()), self.loc,
            )
        except GraphBreak as exc:  # an argument the plan could not rebuild: this call runs natively
            self.breaks(exc.brk.code, exc.brk.reason)
            return self.call(fn, args, kwargs)
        self.builder.nodes.append(node)
        if role == "writes":
            self.writers.add(name)
            self.effects.append(name)
        elif role == "reads":
            self.readers.add(name)
        self.stepped = True
        self.remember(name, "call", self.frame)
        if self.dry:
            return Val(PENDING, Ref(name), STEP)
        try:
            value = fn.value(*[a.value for a in args], **{k: v.value for k, v in kwargs.items()})
        except Exception as exc:
            raise StepError(name, str(self.loc), self.loc.text, exc) from exc
        return Val(value, Ref(name), STEP)

    def call_function(self, func: types.FunctionType, args: list[Val], kwargs: dict[str, Val]) -> Val:
        if not self.recording:
            return Val(func(*map(_native, args), **{k: _native(v) for k, v in kwargs.items()}))
        closure = tuple(Cell(self.state(c.cell_contents, None)) if _cell_full(c) else Cell() for c in (func.__closure__ or ()))
        defaults = tuple(self.held(d) for d in (func.__defaults__ or ()))
        kwdefaults = {k: self.held(d) for k, d in (func.__kwdefaults__ or {}).items()}
        return self.call_interpreted(Interpreted(func.__code__, func.__globals__, closure, defaults, kwdefaults), args, kwargs)

    def held(self, value: Any) -> Val:
        """A default argument's value: a literal, or state (a mutable default is shared between calls)."""
        return Val(value, Const(value)) if is_literal(value) else self.state(value, None)

    def call_interpreted(self, fn: Interpreted, args: list[Val], kwargs: dict[str, Val], gen: Val | None = None) -> Val:
        if not self.recording:
            return Val(_native_function(fn)(*map(_native, args), **{k: _native(v) for k, v in kwargs.items()}))
        if self.depth >= MAX_DEPTH:
            self.breaks("recursion", f"helpers nest deeper than {MAX_DEPTH} calls")
            return self.call_interpreted(fn, args, kwargs)
        try:
            if self.root_frame is not None or self.statements is None:
                self.prescan(fn.code)
        except GraphBreak as exc:
            self.breaks(exc.brk.code, exc.brk.reason)
            return self.call_interpreted(fn, args, kwargs)
        frame = Frame(fn.code, fn.globals)
        frame.gen = gen
        if self.root_frame is None:
            self.root_frame = frame
        self.files[relative_file(fn.code.co_filename)] = fn.code.co_filename
        self.bind(frame, fn, args, kwargs)
        self.depth += 1
        try:
            return self.execute(frame)
        finally:
            self.depth -= 1

    def bind(self, frame: Frame, fn: Interpreted, args: list[Val], kwargs: dict[str, Val]) -> None:
        code = fn.code
        names = code.co_varnames
        npos, nkw = code.co_argcount, code.co_kwonlyargcount
        bound: dict[str, Val] = {}
        for name, val in zip(names[:npos], args):
            bound[name] = val
        index = npos + nkw
        if code.co_flags & 0x04:  # *args
            bound[names[index]] = self.make_box(args[npos:], tuple)
            index += 1
        elif len(args) > npos:
            raise TypeError(f"{code.co_name}() takes {npos} positional arguments but {len(args)} were given")
        extra = {}
        for key, val in kwargs.items():
            if key in names[: npos + nkw]:
                bound[key] = val
            else:
                extra[key] = val
        if code.co_flags & 0x08:  # **kwargs
            bound[names[index]] = self.make_dict([(Val(k, Const(k)), v) for k, v in extra.items()])
        elif extra:
            raise TypeError(f"{code.co_name}() got an unexpected keyword argument {next(iter(extra))!r}")
        for name, val in zip(names[npos - len(fn.defaults):npos], fn.defaults):
            bound.setdefault(name, val)
        for name, val in fn.kwdefaults.items():
            bound.setdefault(name, val)
        for name in names[: npos + nkw]:
            if name not in bound:
                raise TypeError(f"{code.co_name}() missing required argument: {name!r}")
        for name in code.co_cellvars:
            frame.cells[name] = Cell(bound.pop(name, None))
        for name, cell in zip(code.co_freevars, fn.closure):
            frame.cells[name] = cell
        frame.locals.update(bound)
        if self.abstract:
            for name, val in bound.items():
                frame.seen.note(name, val)

    # ------------------------------------------------------------------ the loop
    def execute(self, frame: Frame, stop: int = -1) -> Val | None:
        """Run ``frame`` until it returns (the value) or reaches instruction ``stop`` (None). In
        forward's own frame, a break inside a statement makes that statement an opaque step."""
        root = frame is self.root_frame and not self.in_root  # forward's frame, outermost (not a branch side)
        if not root:
            return self.run_frame(frame, stop, False)
        self.in_root = True
        try:
            return self.run_frame(frame, stop, True)
        finally:
            self.in_root = False

    def run_frame(self, frame: Frame, stop: int, root: bool) -> Val | None:
        ins = frame.ins
        line = 0
        while frame.pc != stop:
            instr = ins[frame.pc]
            if instr.line and frame.user:
                self.loc = _loc(frame.code.co_filename, instr.line, instr.col)
            try:
                if root and instr.line and instr.line != line:
                    line = instr.line
                    self.statement_start(frame, line)
                elif frame is self.root_frame and instr.line and instr.line != line:  # a branch side of forward
                    line = instr.line
                    self.unmodelled(frame, line)
                frame.pc += 1
                result = HANDLERS.get(instr.op, _unmodelled)(self, frame, instr.arg)
            except Resume as exc:
                if not root:
                    raise
                result = self.loop_or_segment(frame, exc.brk)
                line = 0
            except (GraphBreak, NeedsValue) as exc:  # NeedsValue: a dry capture needed an output's value
                if not (root and self.recording and self.can_segment()):
                    raise
                brk = exc.brk if exc.brk.loc.file else Break(exc.brk.code, exc.brk.reason, self.loc)
                result = self.loop_or_segment(frame, brk)
                line = 0
            if result is not None:
                return result
        return None


@lru_cache(maxsize=4096)
def _statement_entry(code: types.CodeType, first: int) -> int:
    """The index of the first instruction of the statement that starts on line ``first`` of ``code``; a
    statement the compiler left no instruction of (``if not "x": ...``) starts where the next one does."""
    ins = instructions(code)
    return next((i for i, each in enumerate(ins) if each.line and each.line >= first), len(ins))


def _native(val: Val) -> Any:
    """The value native code sees: a traced iterator (a 3.11 comprehension's argument) becomes a real
    one, a function made inside forward (a lambda) a real function."""
    value = val.value
    if isinstance(value, IterState):
        items = value.items[value.index:]
        value.index = len(value.items)
        return iter([item.value for item in items])
    if isinstance(value, Interpreted):
        return _native_function(value)
    if isinstance(value, constructs.GenState):
        return value.native()
    return value


def _native_function(fn: Interpreted) -> types.FunctionType:
    native = types.FunctionType(
        fn.code, fn.globals, None, tuple(d.value for d in fn.defaults) or None,
        tuple(types.CellType(c.val.value if c.val else None) for c in fn.closure) or None,
    )
    if fn.kwdefaults:
        native.__kwdefaults__ = {k: v.value for k, v in fn.kwdefaults.items()}
    return native


def _shape(inputs: Mapping[str, Any]) -> dict:
    """The inputs as a static capture sees them: keys and nesting of the signature, no values."""
    return {k: _shape(v) if isinstance(v, Mapping) else PENDING for k, v in inputs.items()}


def _literal_container(value: Any) -> bool:
    """Whether ``value`` is a list, tuple, set or dict built only of literals (at any depth)."""
    if is_literal(value):
        return True
    if type(value) is dict:
        return all(is_literal(k) and _literal_container(v) for k, v in value.items())
    if type(value) in (list, tuple, set, frozenset):
        return all(_literal_container(v) for v in value)
    return False


SAFE_METHODS = {list: {"append", "extend", "insert"}, dict: {"update", "setdefault"}, set: {"add", "update"}}
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def _cannot_fail(target: Any) -> bool:
    """Calls whose effects later steps need not wait for: printing, logging, growing a container
    (an attribute assignment may raise: a frozen operator, a read-only property)."""
    if target is print:
        return True
    owner = getattr(target, "__self__", None)
    if getattr(owner, "__xcs_frozen__", False):  # a frozen container refuses changes
        return False
    name = getattr(target, "__name__", "")
    if isinstance(owner, (logging.Logger, logging.LoggerAdapter)):
        return name in LOG_METHODS
    return any(isinstance(owner, kind) and name in names for kind, names in SAFE_METHODS.items())


def _call_name(fn: Val) -> str:
    """A step name for an opaque call: the function's or method's name."""
    name = fn.attr or getattr(fn.value, "__name__", "") or type(fn.value).__name__
    name = re.sub(r"\W", "_", name).strip("_").lower() or "call"
    return name if name.isidentifier() and not name[0].isdigit() else f"call_{name}"


SEED_FREE = (int, bool, float, complex, type(None))  # hashes that do not depend on PYTHONHASHSEED or id()


def hash_ordered(value: Any) -> bool:
    """Whether iterating ``value`` gives an order that may differ between processes: a set or
    frozenset of two or more items whose hashes depend on PYTHONHASHSEED (str, bytes) or on id()."""
    return type(value) in (set, frozenset) and len(value) > 1 and not all(_seed_free(v) for v in value)


def _seed_free(value: Any) -> bool:
    return type(value) in SEED_FREE or (type(value) is tuple and all(_seed_free(v) for v in value))


# Operations whose result does not depend on the iteration order of a set operand.
ORDER_FREE_OPS = frozenset({"contains", "compare", "is", "truth", "not", "binop", "getattr"})
ORDER_FREE_CALLS = frozenset(
    getattr(builtins, n) for n in "len sorted set frozenset min max any all isinstance bool".split()
)


def _order_sensitive(op: str, vals: list[Val], detail: str) -> bool:
    """Whether static glue ``op`` over ``vals`` depends on the iteration order of a hash-ordered set
    (``", ".join(self.tags)``, ``str(self.tags)``, ``f"{self.tags}"``): such glue is not folded."""
    if not any(v.box is None and hash_ordered(v.raw) for v in vals):
        return False
    if op in ORDER_FREE_OPS:
        return False
    if op == "call":
        return not (_hashable(vals[0].raw) and vals[0].raw in ORDER_FREE_CALLS)
    if op == "method":  # a set's own methods return sets; anything else (``", ".join(tags)``) is ordered
        return not (type(vals[0].raw) in (set, frozenset) and detail in PURE_METHODS[set])
    return True


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _cell_full(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- special calls
def _len(t: Tracer, args: list[Val]) -> Val:
    (val,) = args
    if val.box is not None:
        return Val(len(val.box), Const(len(val.box)))
    return Val(len(val.value), Const(len(val.value)))


def _sequence(kind: type) -> Callable[[Tracer, list[Val]], Val]:
    def build(t: Tracer, args: list[Val]) -> Val:
        return t.make_box(t.iterate(args[0]) if args else [], kind)
    return build


def _iterator(box: Val) -> Val:
    box.once = 1  # the items of an iterator: read once (``Tracer.consume``)
    return box


def _zip(t: Tracer, args: list[Val]) -> Val:
    columns = [t.iterate(a) for a in args]
    return _iterator(t.make_box([t.make_box(list(row), tuple) for row in zip(*columns)], list))


def _enumerate(t: Tracer, args: list[Val]) -> Val:
    start = args[1].value if len(args) > 1 else 0
    items = enumerate(t.iterate(args[0]), start)
    return _iterator(t.make_box([t.make_box([Val(i, Const(i)), v], tuple) for i, v in items], list))


def _reversed(t: Tracer, args: list[Val]) -> Val:
    return _iterator(t.make_box(list(reversed(t.iterate(args[0]))), list))


def _getattr(t: Tracer, args: list[Val]) -> Val:
    """``getattr(obj, "name"[, default])`` with a constant name is ``obj.name``: on the operator tree,
    a static attribute path (so ``getattr(self, "judge")(...)`` calls ``ops.judge``)."""
    static_name = len(args) in (2, 3) and t.kind(args[1]) == STATIC and isinstance(args[1].value, str)
    if static_name and len(args) == 3 and t.kind(args[0]) == STATIC and args[0].box is None:
        if not hasattr(args[0].value, args[1].value):
            return args[2]
    elif not static_name or len(args) == 3:
        t.breaks("runtime-value", "getattr with a name, or a default, that depends on a runtime value")
        return Val(getattr(*map(_native, args)))
    return attribute(t, args[0], args[1].value)


SPECIAL_CALLS: dict[Any, Callable[[Tracer, list[Val]], Val]] = {
    len: _len, list: _sequence(list), tuple: _sequence(tuple), zip: _zip, enumerate: _enumerate,
    reversed: _reversed, getattr: _getattr,
}


# ---------------------------------------------------------------------- instruction handlers
HANDLERS: dict[str, Callable[[Tracer, Frame, Any], Val | None]] = {}


def handles(*names: str):
    def register(fn):
        for name in names:
            HANDLERS[name] = fn
        return fn
    return register


@handles("LOAD_CONST")
def _load_const(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.append(Val(arg, Const(arg) if is_literal(arg) else None))


@handles("LOAD_FAST")
def _load_fast(t: Tracer, f: Frame, name: str) -> None:
    if name in f.cells and name not in f.locals:  # 3.13: LOAD_FAST of a cell builds a closure
        f.stack.append(Val(f.cells[name]))
        return
    val = f.locals.get(name)
    if val is None:
        unbound(name)  # the interpreter's own error and message
    if t.abstract:
        f.seen.note(name, val)
        if t.scopes:
            regions.note_read(t, name, val)
    f.stack.append(val)


@handles("LOAD_FAST_AND_CLEAR")
def _load_fast_and_clear(t: Tracer, f: Frame, name: str) -> None:
    t.changed(f, name)
    f.stack.append(f.locals.pop(name, None) or Val(UNBOUND))


@handles("STORE_FAST")
def _store_fast(t: Tracer, f: Frame, name: str) -> None:
    val = f.stack.pop()
    if isinstance(val.raw, constructs.GenState) and t.recording:  # consumed later, maybe more than once
        t.breaks("unsupported-bytecode", "a generator expression kept in a variable")
    t.changed(f, name)
    if val.raw is UNBOUND:
        f.locals.pop(name, None)
    else:
        if isinstance(val.expr, Ref) and val.box is None:
            t.remember(val.expr.name, "store", f)
        if t.abstract:
            f.seen.note(name, val)
        f.locals[name] = val
        if isinstance(val.expr, Ref):
            t.variables.setdefault(val.expr.name, name)


@handles("DELETE_FAST")
def _delete_fast(t: Tracer, f: Frame, name: str) -> None:
    t.changed(f, name)
    f.locals.pop(name, None)


@handles("LOAD_DEREF")
def _load_deref(t: Tracer, f: Frame, name: str) -> None:
    cell = f.cells[name]
    if cell.val is None:
        raise NameError(f"free variable {name!r} referenced before assignment")
    if t.abstract:
        f.seen.note(name, cell.val)
    f.stack.append(cell.val)


@handles("STORE_DEREF")
def _store_deref(t: Tracer, f: Frame, name: str) -> None:
    val = f.stack.pop()
    if isinstance(val.expr, Ref) and val.box is None:
        t.remember(val.expr.name, "store", f)
    if t.abstract:
        f.seen.note(name, val)
    f.cells[name].val = val
    if isinstance(val.expr, Ref):  # a variable a closure reads (3.11 comprehensions): same naming
        t.variables.setdefault(val.expr.name, name)


@handles("LOAD_CLOSURE")
def _load_closure(t: Tracer, f: Frame, name: str) -> None:
    f.stack.append(Val(f.cells[name]))


@handles("LOAD_GLOBAL")
def _load_global(t: Tracer, f: Frame, name: str) -> None:
    if name in f.globals:
        value = f.globals[name]
        module = f.globals.get("__name__", "__main__")
        expr = Global(value.__name__, "") if isinstance(value, types.ModuleType) else Global(module, name)
        f.stack.append(t.state(value, expr))
    elif hasattr(builtins, name):
        f.stack.append(Val(getattr(builtins, name), Global("builtins", name)))
    else:
        raise NameError(f"name {name!r} is not defined")


@handles("PUSH_NULL")
def _push_null(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.append(NULL)


@handles("LOAD_ATTR")
def _load_attr(t: Tracer, f: Frame, name: str) -> None:
    f.stack.append(attribute(t, f.stack.pop(), name))


def attribute(t: Tracer, obj: Val, name: str) -> Val:
    """``obj.name``: a static attribute path of the operator tree, or glue on a runtime value."""
    owner = _super_owner(obj.raw, name) if isinstance(obj.raw, super) else None
    if owner is not None:  # ``super().NAME``, a class attribute: read from its class when the plan runs
        obj = Val(owner, Global(owner.__module__, owner.__qualname__))
    if t.recording and obj.box is not None:
        val = Val(getattr(obj.raw, name))
    else:
        val = t.glue("getattr", [obj], detail=name)
    val.receiver = obj
    val.attr = name
    return val


def _super_owner(made: super, name: str) -> type | None:
    """The class ``super().name`` reads a plain class attribute (not a method or descriptor) from, when
    a plan can name that class (a module-level class)."""
    mro = made.__self_class__.__mro__ if made.__self_class__ is not None else ()
    for klass in mro[mro.index(made.__thisclass__) + 1:] if made.__thisclass__ in mro else ():
        if name in vars(klass):
            plain = not hasattr(type(vars(klass)[name]), "__get__")
            return klass if plain and "<" not in klass.__qualname__ else None
    return None


def _super(t: Tracer, fn: Val, f: Frame) -> Val:
    """``super()`` without arguments: the frame's ``__class__`` cell and its first argument."""
    cell = f.cells.get("__class__")
    if cell is None or cell.val is None or not f.code.co_argcount:
        raise RuntimeError("super(): __class__ cell not found")
    instance = f.locals.get(f.code.co_varnames[0]) or f.cells[f.code.co_varnames[0]].val
    made = Val(super(cell.val.value, instance.value), None, instance.kind)
    made.receiver = instance
    return made


@handles("LOAD_SUPER_ATTR")
def _load_super_attr(t: Tracer, f: Frame, arg: tuple[str, bool]) -> None:
    name, method = arg
    instance, cls, _ = f.stack.pop(), f.stack.pop(), f.stack.pop()
    made = Val(super(cls.value, instance.value), None, instance.kind)
    made.receiver = instance
    f.stack.append(attribute(t, made, name))
    if method:
        f.stack.append(NULL)


@handles("LOAD_METHOD")
def _load_method(t: Tracer, f: Frame, name: str) -> None:
    _load_attr(t, f, name)
    f.stack.append(NULL)  # every version has two call slots: here one of them is NULL


@handles("KW_NAMES")
def _kw_names(t: Tracer, f: Frame, names: tuple) -> None:
    f.kwnames = names


@handles("CALL")
def _call(t: Tracer, f: Frame, argc: int) -> None:
    args = f.stack[len(f.stack) - argc:]
    del f.stack[len(f.stack) - argc:]
    second, first = f.stack.pop(), f.stack.pop()
    if first is NULL:
        fn = second
    elif second is NULL:
        fn = first
    else:  # (method, self) or (function, iterator) on 3.11
        fn, args = first, [second, *args]
    names, f.kwnames = f.kwnames, ()
    npos = len(args) - len(names)
    t.frame = f
    f.stack.append(t.call(fn, args[:npos], dict(zip(names, args[npos:]))))


@handles("CALL_FUNCTION_EX")
def _call_function_ex(t: Tracer, f: Frame, flags: int) -> None:
    kwargs = f.stack.pop() if flags & 1 else None
    posargs = f.stack.pop()
    second, first = f.stack.pop(), f.stack.pop()
    fn = second if first is NULL else first
    args = t.iterate(posargs)
    kw: dict[str, Val] = {}
    if kwargs is not None:
        if kwargs.box is None and t.kind(kwargs) == STEP:
            t.breaks("unpack-output", "**kwargs from an operator's output")
        for key, item in (kwargs.box.items() if kwargs.box is not None else t.mapping_items(kwargs)):
            kw[key] = item
    t.frame = f
    f.stack.append(t.call(fn, args, kw))


@handles("MAKE_FUNCTION")
def _make_function(t: Tracer, f: Frame, flags: Any) -> None:
    code = f.stack.pop().value
    fn = Interpreted(code, f.globals)
    flags = flags if isinstance(flags, int) else 0
    for bit in (0x08, 0x04, 0x02, 0x01):
        if flags & bit:
            _set_attribute(fn, bit, f.stack.pop())
    # a lambda is never folded by a static capture: it may read what it closes over when called
    f.stack.append(Val(fn, None, INPUT if t.dry and code.co_name == "<lambda>" else STATIC))


def _set_attribute(fn: Interpreted, bit: int, val: Val) -> None:
    if bit == 0x08:
        fn.closure = tuple(c.value for c in val.box) if val.box is not None else tuple(val.value)
    elif bit == 0x01:
        fn.defaults = tuple(val.box) if val.box is not None else tuple(Val(v, Const(v)) for v in val.value)
    elif bit == 0x02:
        fn.kwdefaults = dict(val.box) if val.box is not None else {k: Val(v, Const(v)) for k, v in val.value.items()}


@handles("SET_FUNCTION_ATTRIBUTE")
def _set_function_attribute(t: Tracer, f: Frame, flag: Any) -> None:
    fn = f.stack.pop()
    _set_attribute(fn.value, int(flag), f.stack.pop())
    f.stack.append(fn)


@handles("RETURN_VALUE")
def _return_value(t: Tracer, f: Frame, arg: Any) -> Val:
    if any(scope.kind == "map" and scope.depth == t.depth for scope in t.scopes):  # this frame's loops only
        raise GraphBreak("runtime-loop", "return inside a loop over runtime data", t.loc)
    if t.depth == 1 and not t.scopes:
        t.remember("", "return", f)
    if f.gen is not None:  # a generator expression ends: its value is the list of what it yielded
        f.stack.pop()
        return f.gen
    return f.stack.pop()


@handles("BEFORE_WITH")
def _before_with(t: Tracer, f: Frame, arg: Any) -> None:
    if not t.abstract:  # rejected before anything ran (``STATIC_ONLY``)
        raise GraphBreak("unsupported-bytecode", "a with statement is not modelled by the capture", t.loc)
    constructs.open_with(t, f)


@handles("RETURN_GENERATOR")
def _return_generator(t: Tracer, f: Frame, arg: Any) -> None:
    if f.gen is None:
        raise GraphBreak("unsupported-bytecode", "a generator is not modelled by the capture", t.loc)
    f.stack.append(Val(None, Const(None)))  # popped at once


@handles("YIELD_VALUE")
def _yield_value(t: Tracer, f: Frame, arg: Any) -> None:
    """A generator expression's ``yield``: appends to its list, as a comprehension's LIST_APPEND."""
    if f.gen is None:
        raise GraphBreak("unsupported-bytecode", "yield is not modelled by the capture", t.loc)
    item = f.stack.pop()
    f.stack += [f.gen, item]
    _list_append(t, f, 1)
    f.stack[-1] = Val(None, Const(None))  # the value sent in


@handles("POP_TOP")
def _pop_top(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.pop()


@handles("POP")
def _pop(t: Tracer, f: Frame, count: int) -> None:
    del f.stack[len(f.stack) - count:]


@handles("COPY")
def _copy(t: Tracer, f: Frame, n: int) -> None:
    f.stack.append(f.stack[-n])


@handles("SWAP")
def _swap(t: Tracer, f: Frame, n: int) -> None:
    f.stack[-1], f.stack[-n] = f.stack[-n], f.stack[-1]


@handles("JUMP")
def _jump(t: Tracer, f: Frame, target: int) -> None:
    f.pc = target


@handles("JUMP_IF")
def _jump_if(t: Tracer, f: Frame, arg: tuple) -> Val | None:
    target, pops, when = arg
    cond = f.stack.pop() if pops else f.stack[-1]
    if t.abstract and t.kind(cond) != STATIC and cond.box is None:
        return regions.branch(t, f, cond, target, pops, when)
    if when in ("none", "not_none"):
        is_none = t.glue("is", [cond, Val(None, Const(None))], "is")
        taken = t.concretize(is_none) if is_none.kind else is_none.value
        jump = taken if when == "none" else not taken
    else:
        truth = Val(bool(cond.box), Const(bool(cond.box))) if cond.box is not None and t.recording else t.glue("truth", [cond])
        value = t.concretize(truth) if truth.kind else truth.value
        jump = value if when == "true" else not value
    if jump:
        f.pc = target
    elif not pops:  # 3.11's JUMP_IF_*_OR_POP keeps the value only when it jumps
        f.stack.pop()


@handles("GET_ITER")
def _get_iter(t: Tracer, f: Frame, arg: Any) -> None:
    val = f.stack.pop()
    if isinstance(val.raw, constructs.GenState):
        t.breaks("unsupported-bytecode", "a loop over a generator expression")
        val = Val(list(val.raw.native()))
    if isinstance(val.raw, (IterState, regions.MapIter)):
        f.stack.append(val)
    elif t.abstract and t.kind(val) != STATIC and val.box is None and not isinstance(val.raw, Mapping):
        f.stack.append(Val(regions.MapIter(val)))  # a loop over a runtime sequence: a map region
    else:
        f.stack.append(Val(IterState(t.iterate(val))))


@handles("FOR_ITER")
def _for_iter(t: Tracer, f: Frame, arg: tuple) -> None:
    target, to_end_for = arg
    state = f.stack[-1].raw
    if isinstance(state, regions.MapIter):
        if not state.opened:
            state.opened = True
            f.stack.append(regions.open_map(t, f, state))
            return
        regions.close_map(t, f, state)
    elif state.index < len(state.items):
        f.stack.append(state.items[state.index])
        state.index += 1
        return
    if to_end_for:
        f.stack.append(NULL)  # popped with the iterator by the normalised END_FOR
    else:
        f.stack.pop()
    f.pc = target


@handles("UNPACK_SEQUENCE")
def _unpack_sequence(t: Tracer, f: Frame, n: int) -> None:
    val = f.stack.pop()
    if t.abstract and pending(val) and val.box is None:  # a runtime sequence: the count is in the code
        f.stack.extend(reversed([t.glue("getitem", [val, Val(i, Const(i))]) for i in range(n)]))
        return
    items = t.iterate(val)
    if len(items) != n:
        raise ValueError(f"expected {n} values to unpack, got {len(items)}")
    f.stack.extend(reversed(items))


@handles("UNPACK_EX")
def _unpack_ex(t: Tracer, f: Frame, arg: int) -> None:
    before, after = arg & 0xFF, arg >> 8
    if t.abstract and pending(f.stack[-1]) and f.stack[-1].box is None:
        _unpack_runtime(t, f, before, after)
        return
    items = t.iterate(f.stack.pop())
    if len(items) < before + after:
        raise ValueError(f"not enough values to unpack (expected at least {before + after}, got {len(items)})")
    middle = t.make_box(items[before:len(items) - after], list)
    f.stack.extend(reversed([*items[:before], middle, *items[len(items) - after:]]))


@handles("BUILD_LIST", "BUILD_TUPLE", "BUILD_SET")
def _build_sequence(t: Tracer, f: Frame, n: int) -> None:
    items = f.stack[len(f.stack) - n:] if n else []
    del f.stack[len(f.stack) - n:]
    kind = HANDLER_KIND.get(f.ins[f.pc - 1].op, list)
    if kind is set:
        made = t.glue("set", items)
        made.scope = len(t.scopes)
        f.stack.append(made)
    else:
        f.stack.append(t.make_box(items, kind))


HANDLER_KIND = {"BUILD_LIST": list, "BUILD_TUPLE": tuple, "BUILD_SET": set}


@handles("BUILD_MAP")
def _build_map(t: Tracer, f: Frame, n: int) -> None:
    flat = f.stack[len(f.stack) - 2 * n:] if n else []
    del f.stack[len(f.stack) - 2 * n:]
    f.stack.append(t.make_dict([(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]))


@handles("BUILD_CONST_KEY_MAP")
def _build_const_key_map(t: Tracer, f: Frame, n: int) -> None:
    keys = f.stack.pop().value
    values = f.stack[len(f.stack) - n:]
    del f.stack[len(f.stack) - n:]
    f.stack.append(t.make_dict([(Val(k, Const(k)), v) for k, v in zip(keys, values)]))


@handles("LIST_APPEND", "SET_ADD")
def _list_append(t: Tracer, f: Frame, i: int) -> None:
    item = f.stack.pop()
    target = f.stack[-i]
    if target.box is None and t.recording and f.ins[f.pc - 1].op == "SET_ADD":  # a set comprehension
        if t.kind(target, item) == STATIC and target.expr is None:
            target.raw.add(item.value)
            return
        regions.record_mutation(t, target, "add")
        grown = t.glue("binop", [target, t.glue("set", [item])], "|")
        target.raw, target.expr, target.kind = grown.raw, grown.expr, grown.kind
        return
    if target.box is None:
        target.value.add(item.value) if isinstance(target.value, set) else target.value.append(item.value)
        if t.recording:
            t.breaks("unsupported-bytecode", "a set comprehension over runtime values")
        return
    if regions.record_mutation(t, target, "append", item):
        return
    target.box.append(item)
    target.raw.append(item.raw)
    target.kind = max(target.kind, t.kind(item))


@handles("SET_UPDATE")
def _set_update(t: Tracer, f: Frame, i: int) -> None:
    """``{*a, *b}`` and the constant tail of a set display (``{"x", "y", "z"}``): the union."""
    src = f.stack.pop()
    target = f.stack[-i]
    regions.record_mutation(t, target, "update")
    if not isinstance(src.raw, (set, frozenset)):
        src = t.call(Val(set, Global("builtins", "set")), [src], {})
    grown = t.glue("binop", [target, src], "|")
    target.raw, target.expr, target.kind = grown.raw, grown.expr, grown.kind


@handles("LIST_EXTEND")
def _list_extend(t: Tracer, f: Frame, i: int) -> None:
    src = f.stack.pop()
    target = f.stack[-i]
    regions.record_mutation(t, target, "extend")
    items = t.iterate(src)
    target.box.extend(items)
    target.raw.extend(v.raw for v in items)
    target.kind = max(target.kind, t.kind(*items)) if items else target.kind


@handles("MAP_ADD")
def _map_add(t: Tracer, f: Frame, i: int) -> None:
    item = f.stack.pop()
    key = t.concretize(f.stack.pop())
    target = f.stack[-i]
    regions.record_mutation(t, target, "setitem")
    target.box[key] = item
    target.raw[key] = item.raw
    target.kind = max(target.kind, t.kind(item))


@handles("DICT_UPDATE", "DICT_MERGE")
def _dict_update(t: Tracer, f: Frame, i: int) -> None:
    src = f.stack.pop()
    target = f.stack[-i]
    runtime = src.box is None and t.kind(src) != STATIC
    if t.dry and f.ins[f.pc - 1].op == "DICT_UPDATE" and (runtime or target.box is None):
        # ``{**a, **b}`` of a runtime mapping: the merged dict, built when the plan runs (``a | dict(b)``)
        regions.record_mutation(t, target, "update")
        merged = t.glue("binop", [target, t.glue("call", [Val(dict, Global("builtins", "dict")), src]) if runtime else src], "|")
        target.box, target.expr, target.raw, target.kind = None, merged.expr, merged.raw, merged.kind
        return
    if t.kind(src) == STEP and src.box is None:
        t.breaks("unpack-output", "** of a mapping an operator returned")
    regions.record_mutation(t, target, "update")
    for key, item in t.mapping_items(src):
        target.box[key] = item
        target.raw[key] = item.raw
        target.kind = max(target.kind, t.kind(item))


@handles("LIST_TO_TUPLE")
def _list_to_tuple(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.append(t.make_box(t.iterate(f.stack.pop()), tuple))


@handles("BINARY_SUBSCR")
def _binary_subscr(t: Tracer, f: Frame, arg: Any) -> None:
    key = f.stack.pop()
    container = f.stack.pop()
    f.stack.append(subscript(t, container, key))


def subscript(t: Tracer, container: Val, key: Val) -> Val:
    if isinstance(key.raw, slice) and key.box is not None:
        if t.recording and container.box is not None and all(k.kind == STATIC for k in key.box):
            items = container.box[slice(*(k.value for k in key.box))]
            return t.make_box(items, type(container.raw))
        if (
            t.recording and isinstance(container.expr, Static) and isinstance(container.value, (list, tuple))
            and t.kind(container) == STATIC and all(k.kind == STATIC for k in key.box)
        ):  # a static slice of the operator tree (``self.members[1:]``): a sequence of static paths
            indexes = range(len(container.value))[key.value]
            return t.make_box([t.glue("getitem", [container, Val(i, Const(i))]) for i in indexes], tuple if isinstance(container.value, tuple) else list)
        return t.glue("slice", [container, *key.box])
    if t.dry and t.kind(key) != STATIC and key.box is None and (container.box is not None or t.kind(container) == STATIC):
        picked = constructs.pick(t, container, key)  # an operator chosen by a runtime key, or an item of a literal
        if picked is not None:
            return picked
    if t.recording and container.box is not None:
        index = t.concretize(key)
        if not t.recording:
            return Val(container.value[index])
        return container.box[index]
    if t.recording and t.kind(container) == STATIC and t.kind(key) == INPUT and not isinstance(container.value, (str, bytes)):
        t.concretize(key)  # selecting a static element (an operator) by an input: guarded
        return t.glue("getitem", [container, Val(key.value, Const(key.value) if is_literal(key.value) else None)])
    if t.recording and isinstance(container.expr, Ref) and container.expr.name == "inputs" and isinstance(key.expr, Const):
        if key.value not in container.value:
            raise OperatorInputError(
                f"{t.operator_name}: missing input key {key.value!r} (inputs have: "
                f"{', '.join(repr(k) for k in container.value) or 'no keys'})"
            )
        if key.value not in t.required:
            t.required.append(key.value)
    return t.glue("getitem", [container, key])


@handles("BUILD_SLICE")
def _build_slice(t: Tracer, f: Frame, n: int) -> None:
    parts = f.stack[len(f.stack) - n:]
    del f.stack[len(f.stack) - n:]
    f.stack.append(Val(slice(*(p.value for p in parts)), None, STATIC, list(parts)))


@handles("STORE_SUBSCR")
def _store_subscr(t: Tracer, f: Frame, arg: Any) -> None:
    key, container, value = f.stack.pop(), f.stack.pop(), f.stack.pop()
    if t.recording and container.box is not None:
        index = slice(*map(t.concretize, key.box)) if isinstance(key.raw, slice) and key.box is not None else t.concretize(key)
        regions.record_mutation(t, container, "setitem")
        items = t.iterate(value) if isinstance(index, slice) else None  # ``xs[1:3] = ...``
        if t.recording:
            container.box[index] = value if items is None else items
            container.kind = max(container.kind, t.kind(value, *(items or ())))
        container.raw[index] = value.raw if items is None else [v.raw for v in items]
        return
    if not t.recording:
        container.value[key.value] = value.value
        return
    t.effect(Val(_operator.setitem, Global("operator", "setitem")), [container, key, value], {})


@handles("STORE_ATTR")
def _store_attr(t: Tracer, f: Frame, name: str) -> None:
    obj, value = f.stack.pop(), f.stack.pop()
    if not t.recording or obj.box is not None:
        t.breaks("mutation", f"assignment to attribute {name!r}")
        setattr(obj.value, name, value.value)
        return
    t.effect(Val(setattr, Global("builtins", "setattr")), [obj, Val(name, Const(name)), value], {})


@handles("BINARY_OP")
def _binary_op(t: Tracer, f: Frame, symbol: str) -> None:
    right, left = f.stack.pop(), f.stack.pop()
    if t.recording and left.box is not None and right.box is not None and symbol == "+" and not isinstance(left.box, dict):
        f.stack.append(t.make_box(left.box + right.box, type(left.raw)))
        return
    f.stack.append(t.glue("binop", [left, right], symbol))


@handles("COMPARE_OP")
def _compare_op(t: Tracer, f: Frame, symbol: str) -> None:
    right, left = f.stack.pop(), f.stack.pop()
    f.stack.append(t.glue("compare", [left, right], symbol))


@handles("IS_OP")
def _is_op(t: Tracer, f: Frame, invert: int) -> None:
    right, left = f.stack.pop(), f.stack.pop()
    f.stack.append(t.glue("is", [left, right], "is not" if invert else "is"))


@handles("CONTAINS_OP")
def _contains_op(t: Tracer, f: Frame, invert: int) -> None:
    right, left = f.stack.pop(), f.stack.pop()
    f.stack.append(t.glue("contains", [left, right], "not in" if invert else "in"))


@handles("UNARY_NOT")
def _unary_not(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.append(t.glue("not", [f.stack.pop()]))


@handles("UNARY_NEGATIVE", "UNARY_INVERT", "UNARY_POSITIVE")
def _unary(t: Tracer, f: Frame, arg: Any) -> None:
    op = f.ins[f.pc - 1].op
    f.stack.append(t.glue("unary", [f.stack.pop()], {"UNARY_NEGATIVE": "-", "UNARY_INVERT": "~"}.get(op, "+")))


@handles("CONVERT")
def _convert(t: Tracer, f: Frame, conv: str) -> None:
    val = f.stack.pop()
    marked = Val(val.raw, val.expr, val.kind, val.box)
    marked.conv = conv
    f.stack.append(marked)


@handles("FORMAT")
def _format(t: Tracer, f: Frame, arg: tuple[bool, str]) -> None:
    has_spec, conv = arg
    spec = f.stack.pop() if has_spec else None
    val = f.stack.pop()
    operands = [val] if spec is None else [val, spec]
    f.stack.append(t.glue("format", operands, conv or val.conv))


@handles("BUILD_STRING")
def _build_string(t: Tracer, f: Frame, n: int) -> None:
    parts = f.stack[len(f.stack) - n:]
    del f.stack[len(f.stack) - n:]
    f.stack.append(t.glue("string", parts))


@handles("LOAD_ASSERTION_ERROR")
def _load_assertion_error(t: Tracer, f: Frame, arg: Any) -> None:
    f.stack.append(Val(AssertionError))


@handles("RAISE_VARARGS")
def _raise_varargs(t: Tracer, f: Frame, n: int) -> None:
    tries.raise_in_handler(t, f, n)  # ends an except clause the static capture interprets
    t.breaks("raise", "forward raised on the captured path")
    if n == 0:
        raise RuntimeError("No active exception to reraise")
    exc = f.stack.pop().value if n == 1 else f.stack[-2].value
    raise exc


# ---------------------------------------------------------------------- match statements
# A match statement's checks are glue over ``xcs.runtime.patterns`` (``glue.MATCH_FUNCTIONS``) and its
# conditional jumps branches (``matching`` joins each case's checks at a flag). What a case's checks and
# captured names read more than once (the values of a mapping's keys, a class's attributes) is computed
# once, as a statement of its own, as the interpreter computes it once.
def _pattern(t: Tracer, op: str, vals: list[Val], once: bool = False) -> Val:
    _subject_once(t, vals[0])
    val = t.glue(op, vals)
    if t.abstract and val.kind != STATIC:
        val.raw = PENDING  # computed from an input's shape, not its value: only the run knows it
    node = t.builder.nodes[-1]
    if once and isinstance(val.expr, Ref) and t.recording and isinstance(node, Glue) and node.name == val.expr.name:
        t.builder.nodes[-1] = replace(node, hoisted=True)
    return val


def _subject_once(t: Tracer, subject: Val) -> None:
    """A subject computed by a call (``json.loads(text)``) is computed once, where the program does,
    not again in each case that reads it."""
    if not (t.recording and isinstance(subject.expr, Ref)):
        return
    nodes = t.builder.nodes
    for i in range(len(nodes) - 1, 0, -1):
        node = nodes[i]
        if node.name == subject.expr.name:
            if isinstance(node, Glue) and node.op in ("call", "method") and not node.hoisted:
                name = node.name
                user = t.variables.get(name)
                if user and user not in t.builder.names and not any(  # named after the user's variable
                    Ref(name) in operands(n) for n in walk(tuple(nodes[i + 1:]))
                ):
                    t.builder.names.add(user)
                    t.variables[user] = t.variables.pop(name)
                    if name in t.origins:
                        t.origins[user] = t.origins.pop(name)
                    subject.expr, name = Ref(user), user
                nodes[i] = replace(node, hoisted=True, name=name)
            return


@handles("MATCH_MAPPING", "MATCH_SEQUENCE")
def _match_kind(t: Tracer, f: Frame, arg: Any) -> None:
    op = "match_mapping" if f.ins[f.pc - 1].op == "MATCH_MAPPING" else "match_sequence"
    subject = f.stack[-1]
    if t.recording and subject.box is not None:  # a container built in forward: its type is known
        known = RULES[op].evaluate("", (), [subject.raw])
        f.stack.append(Val(known, Const(known)))
        return
    f.stack.append(_pattern(t, op, [subject]))


@handles("GET_LEN")
def _get_len(t: Tracer, f: Frame, arg: Any) -> None:
    subject = f.stack[-1]
    if t.recording and subject.box is not None:
        f.stack.append(_len(t, [subject]))
        return
    _subject_once(t, subject)
    length = t.glue("call", [Val(len, Global("builtins", "len")), subject])
    if t.abstract and length.kind != STATIC:
        length.raw = PENDING
    f.stack.append(length)


@handles("MATCH_KEYS")
def _match_keys(t: Tracer, f: Frame, arg: Any) -> None:
    keys, subject = f.stack[-1], f.stack[-2]
    if t.recording and isinstance(subject.box, dict) and t.kind(keys) == STATIC and keys.box is None:
        found = [subject.box.get(k) for k in keys.value] if all(_hashable(k) for k in keys.value) else None
        if found is not None and len(set(keys.value)) == len(keys.value):  # a dict display's keys: known
            f.stack.append(t.make_box(found, tuple) if all(v is not None for v in found) else Val(None, Const(None)))
            return
    f.stack.append(_pattern(t, "match_keys", [subject, keys], once=True))


@handles("MATCH_REST")
def _match_rest(t: Tracer, f: Frame, arg: Any) -> None:
    keys, subject = f.stack.pop(), f.stack.pop()
    f.stack.append(_pattern(t, "match_rest", [subject, keys], once=True))


@handles("MATCH_CLASS")
def _match_class(t: Tracer, f: Frame, count: int) -> None:
    names, cls, subject = f.stack.pop(), f.stack.pop(), f.stack.pop()
    f.stack.append(_pattern(t, "match_class", [subject, cls, Val(count, Const(count)), names], once=True))


def _unpack_runtime(t: Tracer, f: Frame, before: int, after: int) -> None:
    """``a, *b, c = value`` of a runtime value (a sequence pattern with a star): unpacked once when the
    plan runs (``patterns.unpack``), then each part."""
    val = f.stack.pop()
    parts = _pattern(t, "unpack", [val, Val(before, Const(before)), Val(after, Const(after))], once=True)
    f.stack.extend(reversed([t.glue("getitem", [parts, Val(i, Const(i))]) for i in range(before + 1 + after)]))


@handles("TRY_BEGIN")
def _try_begin(t: Tracer, f: Frame, start: Any) -> Val | None:
    return tries.enter(t, f, start)  # the whole try statement (static capture only: ``STATIC_ONLY``)


@handles("POP_EXCEPT")
def _pop_except(t: Tracer, f: Frame, arg: Any) -> None:
    tries.pop_except(t, f)


@handles("PUSH_EXC_INFO", "CHECK_EXC_MATCH", "RERAISE")
def _exception_flow(t: Tracer, f: Frame, arg: Any) -> None:
    """A handler's own code, reached other than through the try region that interprets it."""
    raise GraphBreak("unsupported-try", "try/except/finally reached other than at its start", t.loc)


HANDLERS["UNREACHABLE"] = lambda t, f, arg: None
HANDLED = frozenset(HANDLERS)
# modelled only by the static capture (a trace leaves them to Python)
STATIC_ONLY = frozenset({"BEFORE_WITH", "TRY_BEGIN", "PUSH_EXC_INFO", "CHECK_EXC_MATCH", "POP_EXCEPT", "RERAISE"})


@lru_cache(maxsize=4096)
def _unmodelled_lines(code: types.CodeType, static: bool) -> dict[int, tuple[int, str]]:
    """line -> the construct of its first instruction the interpreter (``static``: the static capture)
    has no handler for, with the instruction's index (``Tracer.unmodelled_in`` reports the first one of
    a statement)."""
    lines: dict[int, tuple[int, str]] = {}
    for index, ins in enumerate(instructions(code)):
        if (ins.op not in HANDLED or (ins.op in STATIC_ONLY and not static)) and ins.line:
            lines.setdefault(ins.line, (index, breaking(ins.op)[1]))
    return lines



def _unmodelled(t: Tracer, f: Frame, arg: Any) -> None:
    code, what = breaking(f.ins[f.pc - 1].op)
    raise GraphBreak(code, f"{what} is not modelled by the capture", t.loc)
