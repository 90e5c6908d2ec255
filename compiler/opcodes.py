"""The opcode table: every CPython 3.11, 3.12 and 3.13 opcode, classified in one place.

Each opcode (every name of ``dis.opmap`` on each version, and the intrinsics ``CALL_INTRINSIC_1/2``
select on 3.12+) is exactly one of:

- ``modelled``: the capture's interpreter (``compiler.trace``) runs it, after ``compiler.bytecode_versions``
  has normalised it into the instructions listed (``becomes``; none: it keeps its name);
- ``dropped``: normalisation removes it; it has no effect on the dataflow;
- ``break``: a construct the capture does not model: the statement holding it runs as written (or the
  capture stops), reported with the graph-break ``code`` and the ``construct`` named here;
- ``absent``: never in the code the capture reads: pseudo-instructions of the compiler, instrumented
  forms (``sys.monitoring``) and the interpreter's own; ``dis`` reads ``co_code``, which holds none of
  them. The specialised forms of each version (``LOAD_ATTR_SLOT``, ...) are absent as well: they are not
  in ``dis.opmap`` and ``dis`` reads the unspecialised code.

The interpreter asks ``breaking(op)`` what a break is; ``tests/test_opcodes.py`` fails when a running
interpreter has an opcode this table does not classify, when a modelled opcode has no handler, or when
``docs/opcodes.md`` (``python -m xcs.compiler.opcodes``) differs from ``markdown()``.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL, V11, V12, V13, V11_12 = (11, 12, 13), (11,), (12, 13), (13,), (11, 12)
PSEUDO = "a pseudo-instruction of the compiler, never in a code object"
INSTRUMENTED = "an instrumented form (sys.monitoring); co_code holds the original instruction"
INTERNAL = "the interpreter's own; never in a function's code"
UNSUPPORTED = "unsupported-bytecode"


@dataclass(frozen=True)
class Op:
    """One opcode: its name, the minor versions of 3.x that have it, and its class."""

    name: str
    versions: tuple[int, ...]
    kind: str  # "modelled", "dropped", "break" or "absent"
    becomes: tuple[str, ...] = ()  # the normalised instructions it becomes (modelled: the interpreter runs them)
    code: str = ""  # break: the graph-break code
    why: str = ""  # break: the construct the user wrote; absent: why the capture never sees it
    where: str = ""  # modelled in some constructs only: which


def _m(name: str, versions: tuple[int, ...], *becomes: str) -> Op:
    return Op(name, versions, "modelled", becomes or (name,))


def _d(name: str, versions: tuple[int, ...]) -> Op:
    return Op(name, versions, "dropped")


def _b(name: str, versions: tuple[int, ...], construct: str, *becomes: str) -> Op:
    return Op(name, versions, "break", becomes, UNSUPPORTED, construct)


def _p(name: str, versions: tuple[int, ...], construct: str, where: str) -> Op:
    """Modelled in some places only (``where``): elsewhere, its handler raises a break naming ``construct``."""
    return Op(name, versions, "modelled", (name,), UNSUPPORTED, construct, where)


def _a(name: str, versions: tuple[int, ...], why: str) -> Op:
    return Op(name, versions, "absent", why=why)


TABLE: dict[str, Op] = {op.name: op for op in (
    _b("ASYNC_GEN_WRAP", V11, "an async generator"),
    _b("BEFORE_ASYNC_WITH", ALL, "async with"),
    _p("BEFORE_WITH", ALL, "a with statement", "the static capture"),  # the static capture only: a trace leaves it to Python
    _m("BINARY_OP", ALL, "BINARY_OP"),
    _m("BINARY_SLICE", V12, "BUILD_SLICE", "BINARY_SUBSCR"),
    _m("BINARY_SUBSCR", ALL, "BINARY_SUBSCR"),
    _m("BUILD_CONST_KEY_MAP", ALL),
    _m("BUILD_LIST", ALL),
    _m("BUILD_MAP", ALL),
    _m("BUILD_SET", ALL),
    _m("BUILD_SLICE", ALL),
    _m("BUILD_STRING", ALL),
    _m("BUILD_TUPLE", ALL),
    _d("CACHE", ALL),
    _m("CALL", ALL),
    _m("CALL_FUNCTION_EX", ALL),
    Op("CALL_INTRINSIC_1", V12, "modelled", why="becomes the instruction its intrinsic is (the INTRINSIC_ rows)"),
    Op("CALL_INTRINSIC_2", V12, "modelled", why="becomes the instruction its intrinsic is (the INTRINSIC_ rows)"),
    _m("CALL_KW", V13, "KW_NAMES", "CALL"),
    _b("CHECK_EG_MATCH", ALL, "except*"),
    _p("CHECK_EXC_MATCH", ALL, "try/except/finally", "the static capture"),  # the static capture reads a handler's types (``compiler.tries``)
    _b("CLEANUP_THROW", V12, "await/yield from"),
    _m("COMPARE_OP", ALL),
    _m("CONTAINS_OP", ALL),
    _m("CONVERT_VALUE", V13, "CONVERT"),
    _m("COPY", ALL),
    _d("COPY_FREE_VARS", ALL),
    _b("DELETE_ATTR", ALL, "an attribute delete"),
    _b("DELETE_DEREF", ALL, "a delete of a closure variable"),
    _m("DELETE_FAST", ALL),
    _b("DELETE_GLOBAL", ALL, "a global delete"),
    _b("DELETE_NAME", ALL, "module or class-body code"),
    # a mapping pattern's ``**rest`` (a copy of the subject, ``del`` of each key): one MATCH_REST
    Op("DELETE_SUBSCR", ALL, "modelled", ("MATCH_REST",), UNSUPPORTED, "an item delete", "a mapping pattern's `**rest`"),
    _m("DICT_MERGE", ALL),
    _m("DICT_UPDATE", ALL),
    _b("END_ASYNC_FOR", ALL, "async for"),
    _m("END_FOR", V12, "POP"),
    _b("END_SEND", V12, "await/yield from"),
    _a("ENTER_EXECUTOR", V13, INTERNAL),
    _a("EXIT_INIT_CHECK", V13, INTERNAL),
    _d("EXTENDED_ARG", ALL),
    _m("FORMAT_SIMPLE", V13, "FORMAT"),
    _m("FORMAT_VALUE", V11_12, "FORMAT"),
    _m("FORMAT_WITH_SPEC", V13, "FORMAT"),
    _m("FOR_ITER", ALL),
    _b("GET_AITER", ALL, "async for"),
    _b("GET_ANEXT", ALL, "async for"),
    _b("GET_AWAITABLE", ALL, "await"),
    _m("GET_ITER", ALL),
    _m("GET_LEN", ALL),  # a match statement: glue over xcs.runtime.patterns (compiler/matching.py)
    _b("GET_YIELD_FROM_ITER", ALL, "yield from"),
    _b("IMPORT_FROM", ALL, "an import inside forward"),
    _b("IMPORT_NAME", ALL, "an import inside forward"),
    _b("IMPORT_STAR", V11, "import *"),
    _a("INSTRUMENTED_CALL", V12, INSTRUMENTED),
    _a("INSTRUMENTED_CALL_FUNCTION_EX", V12, INSTRUMENTED),
    _a("INSTRUMENTED_CALL_KW", V13, INSTRUMENTED),
    _a("INSTRUMENTED_END_FOR", V12, INSTRUMENTED),
    _a("INSTRUMENTED_END_SEND", V12, INSTRUMENTED),
    _a("INSTRUMENTED_FOR_ITER", V12, INSTRUMENTED),
    _a("INSTRUMENTED_INSTRUCTION", V12, INSTRUMENTED),
    _a("INSTRUMENTED_JUMP_BACKWARD", V12, INSTRUMENTED),
    _a("INSTRUMENTED_JUMP_FORWARD", V12, INSTRUMENTED),
    _a("INSTRUMENTED_LINE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_LOAD_SUPER_ATTR", V12, INSTRUMENTED),
    _a("INSTRUMENTED_POP_JUMP_IF_FALSE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_POP_JUMP_IF_NONE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_POP_JUMP_IF_NOT_NONE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_POP_JUMP_IF_TRUE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_RESUME", V12, INSTRUMENTED),
    _a("INSTRUMENTED_RETURN_CONST", V12, INSTRUMENTED),
    _a("INSTRUMENTED_RETURN_VALUE", V12, INSTRUMENTED),
    _a("INSTRUMENTED_YIELD_VALUE", V12, INSTRUMENTED),
    _a("INTERPRETER_EXIT", V12, INTERNAL),
    _b("INTRINSIC_ASYNC_GEN_WRAP", V12, "an async generator"),
    _b("INTRINSIC_IMPORT_STAR", V12, "import *"),
    _m("INTRINSIC_LIST_TO_TUPLE", V12, "LIST_TO_TUPLE"),
    _b("INTRINSIC_PARAMSPEC", V12, "type parameters"),
    _b("INTRINSIC_PREP_RERAISE_STAR", V12, "except*"),
    _b("INTRINSIC_PRINT", V12, "an interactive expression statement"),
    _b("INTRINSIC_SET_FUNCTION_TYPE_PARAMS", V12, "type parameters"),
    _b("INTRINSIC_SET_TYPEPARAM_DEFAULT", V13, "type parameters"),
    _b("INTRINSIC_STOPITERATION_ERROR", V12, "a generator"),
    _b("INTRINSIC_SUBSCRIPT_GENERIC", V12, "type parameters"),
    _b("INTRINSIC_TYPEALIAS", V12, "a type alias"),
    _b("INTRINSIC_TYPEVAR", V12, "type parameters"),
    _b("INTRINSIC_TYPEVARTUPLE", V12, "type parameters"),
    _b("INTRINSIC_TYPEVAR_WITH_BOUND", V12, "type parameters"),
    _b("INTRINSIC_TYPEVAR_WITH_CONSTRAINTS", V12, "type parameters"),
    _m("INTRINSIC_UNARY_POSITIVE", V12, "UNARY_POSITIVE"),
    _m("IS_OP", ALL),
    _a("JUMP", V12, PSEUDO),
    _m("JUMP_BACKWARD", ALL, "JUMP"),
    _m("JUMP_BACKWARD_NO_INTERRUPT", ALL, "JUMP"),
    _m("JUMP_FORWARD", ALL, "JUMP"),
    _m("JUMP_IF_FALSE_OR_POP", V11, "JUMP_IF"),
    _m("JUMP_IF_TRUE_OR_POP", V11, "JUMP_IF"),
    _a("JUMP_NO_INTERRUPT", V12, PSEUDO),
    _m("KW_NAMES", V11_12),
    _m("LIST_APPEND", ALL),
    _m("LIST_EXTEND", ALL),
    _m("LIST_TO_TUPLE", V11),
    _m("LOAD_ASSERTION_ERROR", ALL),
    _m("LOAD_ATTR", ALL, "LOAD_ATTR", "LOAD_METHOD"),
    _b("LOAD_BUILD_CLASS", ALL, "a class definition"),
    _b("LOAD_CLASSDEREF", V11, "a class body"),
    _m("LOAD_CLOSURE", ALL),
    _m("LOAD_CONST", ALL),
    _m("LOAD_DEREF", ALL),
    _m("LOAD_FAST", ALL),
    _m("LOAD_FAST_AND_CLEAR", V12),
    _m("LOAD_FAST_CHECK", V12, "LOAD_FAST"),
    _m("LOAD_FAST_LOAD_FAST", V13, "LOAD_FAST"),
    _b("LOAD_FROM_DICT_OR_DEREF", V12, "a class body"),
    _b("LOAD_FROM_DICT_OR_GLOBALS", V12, "a class body"),
    _m("LOAD_GLOBAL", ALL, "PUSH_NULL", "LOAD_GLOBAL"),
    _b("LOAD_LOCALS", V12, "a class body"),
    _m("LOAD_METHOD", ALL),
    _b("LOAD_NAME", ALL, "module or class-body code"),
    _m("LOAD_SUPER_ATTR", V12),
    _a("LOAD_SUPER_METHOD", V12, PSEUDO),
    _a("LOAD_ZERO_SUPER_ATTR", V12, PSEUDO),
    _a("LOAD_ZERO_SUPER_METHOD", V12, PSEUDO),
    _d("MAKE_CELL", ALL),
    _m("MAKE_FUNCTION", ALL),
    _m("MAP_ADD", ALL),
    _m("MATCH_CLASS", ALL),  # a match statement: glue over xcs.runtime.patterns (compiler/matching.py)
    _m("MATCH_KEYS", ALL),  # a match statement: glue over xcs.runtime.patterns (compiler/matching.py)
    _m("MATCH_MAPPING", ALL),  # a match statement: glue over xcs.runtime.patterns (compiler/matching.py)
    _m("MATCH_SEQUENCE", ALL),  # a match statement: glue over xcs.runtime.patterns (compiler/matching.py)
    _d("NOP", ALL),
    _a("POP_BLOCK", V12, PSEUDO),
    _p("POP_EXCEPT", ALL, "try/except/finally", "the static capture"),  # the end of a handler the static capture runs
    _m("POP_JUMP_BACKWARD_IF_FALSE", V11, "JUMP_IF"),
    _m("POP_JUMP_BACKWARD_IF_NONE", V11, "JUMP_IF"),
    _m("POP_JUMP_BACKWARD_IF_NOT_NONE", V11, "JUMP_IF"),
    _m("POP_JUMP_BACKWARD_IF_TRUE", V11, "JUMP_IF"),
    _m("POP_JUMP_FORWARD_IF_FALSE", V11, "JUMP_IF"),
    _m("POP_JUMP_FORWARD_IF_NONE", V11, "JUMP_IF"),
    _m("POP_JUMP_FORWARD_IF_NOT_NONE", V11, "JUMP_IF"),
    _m("POP_JUMP_FORWARD_IF_TRUE", V11, "JUMP_IF"),
    _m("POP_JUMP_IF_FALSE", V12, "JUMP_IF"),
    _m("POP_JUMP_IF_NONE", V12, "JUMP_IF"),
    _m("POP_JUMP_IF_NOT_NONE", V12, "JUMP_IF"),
    _m("POP_JUMP_IF_TRUE", V12, "JUMP_IF"),
    _m("POP_TOP", ALL),
    _d("PRECALL", V11),
    _b("PREP_RERAISE_STAR", V11, "except*"),
    _b("PRINT_EXPR", V11, "an interactive expression statement"),
    # a handler's entry; ``TRY_BEGIN`` marks where the body of its ``try`` starts (the static capture only)
    Op("PUSH_EXC_INFO", ALL, "modelled", ("TRY_BEGIN", "PUSH_EXC_INFO"), UNSUPPORTED, "try/except/finally"),
    _m("PUSH_NULL", ALL),
    _m("RAISE_VARARGS", ALL),
    _p("RERAISE", ALL, "try/except/finally", "the static capture"),  # re-raising, in a handler's code: the try region runs it
    _a("RESERVED", V12, INTERNAL),
    _d("RESUME", ALL),
    _m("RETURN_CONST", V12, "LOAD_CONST", "RETURN_VALUE"),
    _p("RETURN_GENERATOR", ALL, "a generator", "a generator expression"),  # a generator expression only
    _m("RETURN_VALUE", ALL),
    _b("SEND", ALL, "await/yield from"),
    _b("SETUP_ANNOTATIONS", ALL, "annotations"),
    _a("SETUP_CLEANUP", V12, PSEUDO),
    _a("SETUP_FINALLY", V12, PSEUDO),
    _a("SETUP_WITH", V12, PSEUDO),
    _m("SET_ADD", ALL),
    _m("SET_FUNCTION_ATTRIBUTE", V13),
    _m("SET_UPDATE", ALL),
    _m("STORE_ATTR", ALL),
    _m("STORE_DEREF", ALL),
    _m("STORE_FAST", ALL),
    _m("STORE_FAST_LOAD_FAST", V13, "STORE_FAST", "LOAD_FAST"),
    _a("STORE_FAST_MAYBE_NULL", V12, PSEUDO),
    _m("STORE_FAST_STORE_FAST", V13, "STORE_FAST"),
    _b("STORE_GLOBAL", ALL, "a global write"),
    _b("STORE_NAME", ALL, "module or class-body code"),
    _m("STORE_SLICE", V12, "BUILD_SLICE", "STORE_SUBSCR"),
    _m("STORE_SUBSCR", ALL),
    _m("SWAP", ALL),
    _d("TO_BOOL", V13),
    _m("UNARY_INVERT", ALL),
    _m("UNARY_NEGATIVE", ALL),
    _m("UNARY_NOT", ALL),
    _m("UNARY_POSITIVE", V11),
    _m("UNPACK_EX", ALL),
    _m("UNPACK_SEQUENCE", ALL),
    _b("WITH_EXCEPT_START", ALL, "a with statement"),
    _p("YIELD_VALUE", ALL, "yield", "a generator expression"),  # a generator expression's only

)}

DROPPED = frozenset(name for name, op in TABLE.items() if op.kind == "dropped")
BREAKS = {name: op for op in TABLE.values() if op.kind == "break" for name in (op.name, *op.becomes)} | {
    op.name: op for op in TABLE.values() if op.kind == "modelled" and op.why and op.name not in op.becomes
}  # and an opcode modelled only once normalisation folded it into another (``DELETE_SUBSCR`` of ``**rest``)
PARTLY = {name: op for op in TABLE.values() if op.kind == "modelled" and op.why for name in op.becomes}


def breaking(op: str) -> tuple[str, str]:
    """(graph-break code, what the user wrote) for a normalised instruction the interpreter has no
    handler for: the table's break, or for anything else (an opcode of a later Python) its name."""
    entry = BREAKS.get(op) or TABLE.get(op) or PARTLY.get(op)
    if entry is not None and entry.why:
        return entry.code or UNSUPPORTED, entry.why
    return UNSUPPORTED, f"the {op} instruction"


def markdown() -> str:
    """``docs/opcodes.md``: the table, one row per opcode."""
    lines = [
        "# The opcode table",
        "",
        "Generated from `compiler/opcodes.py` by `python -m xcs.compiler.opcodes > docs/opcodes.md`",
        "(`tests/test_opcodes.py` checks that this file matches the table). Every opcode of CPython 3.11,",
        "3.12 and 3.13 (`dis.opmap`, and the intrinsics of `CALL_INTRINSIC_1/2`) is *modelled* (run by the",
        "capture's interpreter as the instructions shown), *dropped* (no effect on the dataflow), a *break*",
        "(the statement holding it runs as written; the graph-break code and the construct are shown) or",
        "*absent* (never in the code the capture reads). Specialised forms (`LOAD_ATTR_SLOT`, ...) are absent",
        "too: `dis` reads the unspecialised code.",
        "",
        "| opcode | 3.11 | 3.12 | 3.13 | class | runs as / break / why absent |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(TABLE):
        op = TABLE[name]
        marks = " | ".join("yes" if v in op.versions else "" for v in (11, 12, 13))
        if op.kind == "modelled":
            detail = ", ".join(f"`{b}`" for b in op.becomes) + (
                f" in {op.where} only; elsewhere `{op.code}`: {op.why}" if op.why else "")
        elif op.kind == "break":
            detail = f"`{op.code}`: {op.why}" + "".join(f" (as `{b}`)" for b in op.becomes)
        else:
            detail = op.why
        lines.append(f"| `{name}` | {marks} | {op.kind} | {detail} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
