"""Every CPython 3.11/3.12/3.13 bytecode difference, in one place.

``normalize(code)`` turns a code object into a version-independent list of ``Ins`` that the
interpreter in ``compiler.trace`` executes. What is normalised:

- calls: ``PRECALL`` dropped; ``KW_NAMES`` (3.11/3.12) and ``LOAD_CONST names; CALL_KW`` (3.13) both
  become ``KW_NAMES names`` before ``CALL``; the NULL slot may sit below or above the callable (the
  interpreter's CALL takes the non-NULL one of the two slots);
- attributes: ``LOAD_METHOD`` (3.11) and ``LOAD_ATTR (True, name)`` (3.12+) become ``LOAD_METHOD``,
  pushing the bound attribute plus a NULL; ``LOAD_GLOBAL (push_null, name)`` becomes ``LOAD_GLOBAL``
  plus a ``PUSH_NULL`` where the version puts it (below the global on 3.11/3.12, above on 3.13), so a
  ``LOAD_ATTR`` that follows (``math.sqrt``) finds the global on top;
- comparisons and binary operators become their source symbols (``==``, ``+``); 3.13's ``*_CAST``
  bits and in-place variants are dropped;
- f-strings: ``FORMAT_VALUE flags`` (3.11/3.12) becomes ``FORMAT (has_spec, conv)`` (its conversion
  applies to the value *below* the spec); ``CONVERT_VALUE`` (3.13, before the spec is pushed) becomes
  ``CONVERT conv`` and ``FORMAT_SIMPLE``/``FORMAT_WITH_SPEC`` become ``FORMAT (has_spec, "")``;
- 3.13 super-instructions are split; the opcodes ``compiler.opcodes`` classifies as dropped vanish;
- 3.12+ slices (``BINARY_SLICE``, ``STORE_SLICE``) become 3.11's ``BUILD_SLICE 2`` and subscript, and
  ``CALL_INTRINSIC_1/2`` the 3.11 instruction its intrinsic stands for (``LIST_TO_TUPLE``,
  ``UNARY_POSITIVE``) or, for an intrinsic the capture does not model, the intrinsic's name;
- exit tails: 3.12+ copies a short block that ends the function into every arm leading to it; the
  copies are merged back so branches join where 3.11 joins;
- loops: ``FOR_ITER`` carries whether exhaustion pops the iterator (3.11) or jumps to ``END_FOR``
  (3.12+); ``END_FOR`` becomes ``POP n`` with the version's count;
- conditional jumps become ``JUMP_IF (pop, when)``: 3.11's directed and ``*_OR_POP`` forms included.

Jump targets are instruction indexes. The exception table is not interpreted: a ``with`` block is
modelled whole (``BEFORE_WITH``), and at the ``NOP`` of a line that may open a ``try`` statement (the
only instruction of a ``try:`` line) normalisation puts a ``TRY_BEGIN`` marker carrying the table in
instruction indexes (``TryTable``), from which ``compiler.tries`` finds the statement's parts.

The code object is read with the standard library's ``dis`` (instructions with resolved arguments,
absolute jump targets, positions and the exception table). The ``bytecode`` package did the same
through ``Bytecode.from_code``, whose cost grows faster than the code: 1.8 s of a 3 s budget for a
10,000-call ``forward`` (``dis``: 0.66 s), so the static-capture figure is met with ``dis``.
"""

from __future__ import annotations

import dis
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any

from xcs.compiler.opcodes import DROPPED, TABLE

VERSION = sys.version_info[:2]

CONVERSIONS = {0: "", 1: "s", 2: "r", 3: "a"}


@dataclass(frozen=True)
class Ins:
    """One normalised instruction: ``op`` and ``arg``, plus the source line and column span."""

    op: str
    arg: Any = None
    line: int | None = None
    col: int | None = None


def _jump_if(name: str) -> tuple[bool, str] | None:
    """(pops the value, condition) for every conditional jump spelling across versions."""
    if name.endswith("_OR_POP"):  # 3.11: JUMP_IF_FALSE_OR_POP keeps the value when it jumps
        return False, "false" if "FALSE" in name else "true"
    if name.startswith("POP_JUMP"):
        for when in ("NOT_NONE", "NONE", "FALSE", "TRUE"):
            if name.endswith("IF_" + when):
                return True, when.lower()
    return None


JUMPS = frozenset(name for name, op in TABLE.items() if op.becomes == ("JUMP",))


def normalize(code: CodeType) -> list[Ins]:
    """The version-independent instruction list of ``code`` (read with ``dis``); jump targets
    resolved to indexes."""
    out: list[Ins] = []
    at: dict[int, int] = {}  # bytecode offset -> index in ``out`` of the first instruction from there
    pending_jumps: list[int] = []
    tries: dict[int, list[int]] = {}  # offset where a protected range starts -> its handlers' offsets
    entries = dis.Bytecode(code).exception_entries
    for entry in entries:
        tries.setdefault(entry.start, []).append(entry.target)
    handlers: dict[int, int | None] = {}  # handler offset -> the line that opened its try
    last_line: int | None = None
    starts: list[int] = []  # indexes of the TRY_BEGIN markers
    items = list(dis.get_instructions(code))
    raw = {item.offset: item.opname for item in items}
    raw.update({(a.offset, "next"): b.opname for a, b in zip(items, items[1:])})
    for i, item in enumerate(items):
        at[item.offset] = len(out)
        for target in tries.get(item.offset, ()):
            handlers.setdefault(target, last_line)
        if item.opname == "NOP" and item.positions is not None and _opens_try(items, i, entries, raw):
            starts.append(len(out))  # a ``try:`` line (a NOP) before code a user's handler protects
            out.append(Ins("TRY_BEGIN", None, item.positions.lineno, None))
        name, arg = item.opname, item.argval
        pos = item.positions
        line, col = (pos.lineno, pos.col_offset) if pos is not None else (None, None)
        last_line = line or last_line  # the ``try:`` line is only on a NOP, dropped below

        def emit(op: str, value: Any = None) -> None:
            out.append(Ins(op, value, line, col))

        if name in DROPPED:
            continue
        if name == "LOAD_GLOBAL":
            push_null = bool(item.arg & 1)
            if push_null and VERSION < (3, 13):  # the NULL goes below the global on 3.11/3.12
                emit("PUSH_NULL")
            emit("LOAD_GLOBAL", arg)
            if push_null and VERSION >= (3, 13):  # and above it on 3.13
                emit("PUSH_NULL")
        elif name == "LOAD_SUPER_ATTR":  # 3.12+: ``super().name``; bit 0 of the arg: a method load
            emit("LOAD_SUPER_ATTR", (arg, bool(item.arg & 1)))
        elif name == "LOAD_ATTR":
            emit("LOAD_METHOD" if VERSION >= (3, 12) and item.arg & 1 else "LOAD_ATTR", arg)
        elif name == "CALL_KW":  # 3.13: the names tuple was pushed by the previous LOAD_CONST
            names = out.pop()
            if names.op != "LOAD_CONST" or not isinstance(names.arg, tuple):
                raise NotImplementedError("CALL_KW without a constant names tuple")
            emit("KW_NAMES", names.arg)
            emit("CALL", arg)
        elif name == "COMPARE_OP":  # the symbol; 3.13 shows its bool cast as ``bool(<)``
            emit("COMPARE_OP", item.argrepr.removeprefix("bool(").removesuffix(")"))
        elif name == "BINARY_OP":  # ``+`` or, in place, ``+=``
            emit("BINARY_OP", item.argrepr[:-1] if item.arg >= INPLACE else item.argrepr)
        elif name == "FORMAT_VALUE":  # 3.11/3.12
            emit("FORMAT", (bool(item.arg & 4), CONVERSIONS[item.arg & 3]))
        elif name == "CONVERT_VALUE":  # 3.13
            emit("CONVERT", CONVERSIONS[item.arg])
        elif name == "FORMAT_SIMPLE":
            emit("FORMAT", (False, ""))
        elif name == "FORMAT_WITH_SPEC":
            emit("FORMAT", (True, ""))
        elif name in ("LOAD_FAST_LOAD_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST"):
            first, second = name.split("_FAST_")[0], name.split("_FAST_")[1].removesuffix("_FAST")
            emit(f"{first}_FAST", arg[0])
            emit(f"{second}_FAST", arg[1])
        elif name == "LOAD_FAST_CHECK":
            emit("LOAD_FAST", arg)
        elif name == "KW_NAMES":  # 3.11/3.12: ``dis`` does not resolve the constant on 3.11
            emit(name, code.co_consts[item.arg])
        elif name in ("CALL_INTRINSIC_1", "CALL_INTRINSIC_2"):  # 3.12+: the 3.11 instruction it stands for
            intrinsic = TABLE.get(item.argrepr)
            emit(intrinsic.becomes[0] if intrinsic is not None and intrinsic.becomes else item.argrepr)
        elif name in ("BINARY_SLICE", "STORE_SLICE"):  # 3.12+: 3.11 builds the slice, then subscripts
            emit("BUILD_SLICE", 2)
            emit("BINARY_SUBSCR" if name == "BINARY_SLICE" else "STORE_SUBSCR")
        elif name == "FOR_ITER":
            pending_jumps.append(len(out))
            emit("FOR_ITER", (arg, VERSION >= (3, 12)))
        elif name == "END_FOR":
            emit("POP", 2 if VERSION == (3, 12) else 1)
        elif name == "RETURN_CONST":
            emit("LOAD_CONST", arg)
            emit("RETURN_VALUE")
        elif name in JUMPS:
            pending_jumps.append(len(out))
            emit("JUMP", arg)
        elif (cond := _jump_if(name)) is not None:
            pending_jumps.append(len(out))
            emit("JUMP_IF", (arg, *cond))
        else:
            emit(name, arg if item.arg is not None else None)
    for index in pending_jumps:  # offsets -> instruction indexes
        ins = out[index]
        if ins.op == "FOR_ITER":
            arg = (at[ins.arg[0]], ins.arg[1])
        elif ins.op == "JUMP_IF":
            arg = (at[ins.arg[0]], *ins.arg[1:])
        else:
            arg = at[ins.arg]
        out[index] = Ins(ins.op, arg, ins.line, ins.col)
    end = len(out)
    table = tuple((at[e.start], at.get(e.end, end), at[e.target]) for e in entries)
    tables = TryTable(table)
    for index in starts:
        ins = out[index]
        out[index] = Ins(ins.op, tables, ins.line, ins.col)
    return _merge_exit_tails(_prune(out, {at[h]: line for h, line in handlers.items()}))


@dataclass(frozen=True)
class TryTable:
    """The argument of ``TRY_BEGIN``, the marker normalisation puts at the ``NOP`` of a line that may
    open a ``try`` statement (``compiler.tries`` reads the statement from the source): the code's whole
    exception table, ``(start, end, handler)`` instruction indexes (``end`` exclusive)."""

    table: tuple[tuple[int, int, int], ...]

    def handler_of(self, pc: int) -> int | None:
        """The innermost handler of instruction ``pc`` (None: no entry covers it)."""
        return next((h for start, end, h in self.table if start <= pc < end), None)


def _opens_try(items: list, i: int, entries: list, raw: dict[int, str]) -> bool:
    """Whether the ``NOP`` ``items[i]`` comes before code one of the user's handlers protects (through
    any handlers nested inside it): the only instruction of a ``try:`` line."""
    nxt = next((it.offset for it in items[i + 1:] if it.opname != "NOP"), None)
    seen = 0
    while nxt is not None and seen < 64:
        handler = next((e.target for e in entries if e.start <= nxt < e.end), None)
        if handler is None:
            return False
        if _user_handler(raw, handler):
            return True
        nxt, seen = handler, seen + 1
    return False


def _user_handler(raw: dict, target: int) -> bool:
    """Whether the handler at offset ``target`` is a user's ``except``/``finally`` (not a ``with``
    block's exit nor an inlined comprehension's cleanup)."""
    return raw.get(target) == "PUSH_EXC_INFO" and raw.get((target, "next")) != "WITH_EXCEPT_START"


INPLACE = 13  # ``BINARY_OP`` arguments from here on are the in-place forms (``+=``)


ENDS = frozenset({"JUMP", "RETURN_VALUE", "RAISE_VARARGS", "RERAISE"})


def _prune(out: list[Ins], handlers: dict[int, int | None]) -> list[Ins]:
    """Replace code reached only through the exception table by ``UNREACHABLE``.

    Inlined comprehensions (3.12+) carry a handler that restores shadowed names and re-raises: pure
    bookkeeping. So does a ``with`` block (``PUSH_EXC_INFO; WITH_EXCEPT_START``): the capture models
    the block as a whole (``BEFORE_WITH``). A handler that starts with ``PUSH_EXC_INFO`` is the user's
    try/except/finally: its code is kept (``compiler.tries`` interprets it); what only its cleanup
    entries reach is not.
    """
    reachable: set[int] = set()
    todo = [0] + [h for h in handlers if h < len(out) and out[h].op == "PUSH_EXC_INFO"
                  and not (h + 1 < len(out) and out[h + 1].op == "WITH_EXCEPT_START")]
    while todo:
        pc = todo.pop()
        if pc in reachable or pc >= len(out):
            continue
        reachable.add(pc)
        ins = out[pc]
        if ins.op not in ENDS:
            todo.append(pc + 1)
        if ins.op in ("JUMP", "JUMP_IF", "FOR_ITER"):
            todo.append(ins.arg if ins.op == "JUMP" else ins.arg[0])
    return [ins if pc in reachable else Ins("UNREACHABLE", None, ins.line, ins.col) for pc, ins in enumerate(out)]


STRAIGHT_LINE_ENDS = frozenset({"JUMP", "JUMP_IF", "FOR_ITER", "RETURN_VALUE", "RAISE_VARARGS", "RERAISE", "UNREACHABLE", "TRY_BEGIN"})


def _merge_exit_tails(ins: list[Ins]) -> list[Ins]:
    """One copy of each exit tail: CPython 3.12+ copies a small block that ends the function into every
    arm leading to it (``return {"k": a if c else b}`` builds and returns the dict in both arms), 3.11
    does not. Identical tails on the same line are merged back (the earlier copy jumps to the later),
    so branch regions join where 3.11 joins and the IR is the same on every version."""
    out = list(ins)
    targets = {i.arg if i.op == "JUMP" else i.arg[0] for i in ins if i.op in ("JUMP", "JUMP_IF", "FOR_ITER")}
    returns = [pc for pc, i in enumerate(ins) if i.op == "RETURN_VALUE"]
    for a in returns:
        for b in reversed(returns):
            if b <= a:
                break
            n = 0
            while n < b - a and n <= a and _same(out[a - n], out[b - n]) and (n == 0 or out[a - n].op not in STRAIGHT_LINE_ENDS):
                n += 1
                if a - n + 1 in targets:  # the tail may start at a jump target, not extend past one
                    break
            if n:
                start = a - n + 1
                out[start] = Ins("JUMP", b - n + 1, out[start].line, out[start].col)
                out[start + 1:a + 1] = [Ins("UNREACHABLE", None, i.line, i.col) for i in out[start + 1:a + 1]]
                targets.add(b - n + 1)
                break
    return out


def _same(x: Ins, y: Ins) -> bool:
    return x.op == y.op and x.line == y.line and type(x.arg) is type(y.arg) and x.arg == y.arg
