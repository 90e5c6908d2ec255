"""The opcode table (``compiler/opcodes.py``) against the running interpreter (CI runs this on 3.11, 3.12
and 3.13): it classifies every opcode the interpreter has, and only those it says; every modelled opcode
has a handler in the capture's interpreter and no break has one; the normaliser leaves nothing the
interpreter would not recognise; ``docs/opcodes.md`` is the table."""

from __future__ import annotations

import dis
import opcode
import sys
import types
import warnings
from pathlib import Path

import pytest

import corpus
import corpus_static
from corpus import run_counted
from sound import harness
from xcs import GraphBreakWarning, dump, jit
from xcs.compiler import opcodes
from xcs.compiler.bytecode_versions import normalize
from xcs.compiler.trace import HANDLERS

MINOR = sys.version_info[1]
ROOT = Path(__file__).resolve().parents[1]


def interpreter_opcodes() -> set[str]:
    """Every opcode name of this interpreter, with the intrinsics of ``CALL_INTRINSIC_1/2`` (3.12+)."""
    names = set(dis.opmap)
    for descs in (getattr(dis, "_intrinsic_1_descs", ()), getattr(dis, "_intrinsic_2_descs", ())):
        names |= {d for d in descs if not d.endswith("_INVALID")}
    return names


def test_the_table_classifies_every_opcode_of_this_interpreter():
    names = interpreter_opcodes()
    missing = sorted(names - set(opcodes.TABLE))
    assert not missing, f"Python 3.{MINOR} has opcodes compiler/opcodes.py does not classify: {missing}"
    claimed = {name for name, op in opcodes.TABLE.items() if MINOR in op.versions}
    assert claimed == names, f"versions wrong in the table: {sorted(claimed ^ names)}"
    for op in opcodes.TABLE.values():
        assert op.kind in ("modelled", "dropped", "break", "absent"), op
        assert op.kind != "break" or (op.code and op.why), op


def test_specialised_forms_are_of_classified_families():
    """Specialised instructions are not in ``dis.opmap``; each belongs to a family the table holds."""
    for family, forms in opcode._specializations.items():
        assert family in opcodes.TABLE, family
        assert not set(forms) & set(dis.opmap), family


def test_the_interpreter_runs_every_modelled_opcode_and_no_break():
    becomes = set()
    for op in opcodes.TABLE.values():
        if op.kind == "modelled":
            assert set(op.becomes) <= set(HANDLERS), op
            becomes |= set(op.becomes)
        elif op.kind == "break":
            assert not {op.name, *op.becomes} & set(HANDLERS), f"{op.name} has a handler: classify it as modelled"
    assert set(HANDLERS) - becomes <= {"UNREACHABLE"}, "a handler of an instruction no opcode becomes"


def forwards() -> list[types.CodeType]:
    """The code of every corpus program's forward (and the functions it defines), on this interpreter."""
    codes = []
    ops = [p.make() for p in (*corpus.PROGRAMS, *corpus_static.PROGRAMS)] + [p.factory() for p in harness.programs()]
    for op in ops:
        forward = getattr(type(op), "forward", None)
        if isinstance(forward, types.FunctionType):
            stack = [forward.__code__]
            while stack:
                code = stack.pop()
                codes.append(code)
                stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return codes


def test_normalised_code_holds_only_handled_or_breaking_instructions():
    seen = set()
    for code in forwards():
        for ins in normalize(code):
            seen.add(ins.op)
            assert ins.op in HANDLERS or ins.op in opcodes.BREAKS, (code.co_qualname, ins)
            assert ins.op not in opcodes.DROPPED
    assert {"CALL", "LOAD_ATTR", "RETURN_VALUE"} <= seen


def test_breaks_name_the_construct():
    assert opcodes.breaking("BEFORE_WITH") == ("unsupported-bytecode", "a with statement")
    assert opcodes.breaking("TRY_BEGIN") == ("unsupported-bytecode", "try/except/finally")
    assert opcodes.breaking("SOME_FUTURE_OPCODE") == ("unsupported-bytecode", "the SOME_FUTURE_OPCODE instruction")


def test_docs_show_the_table():
    text = (ROOT / "docs" / "opcodes.md").read_text()
    assert text == opcodes.markdown(), "docs/opcodes.md is stale: python -m xcs.compiler.opcodes > docs/opcodes.md"


VERSION_SPELLED = ("fan_in_32", "super_calls", "slice_store", "set_displays")  # see corpus_static.py


@pytest.mark.usefixtures("fresh_plans")
@pytest.mark.parametrize("mode", ("trace", "structural", "enhanced", "auto"))
@pytest.mark.parametrize("name", VERSION_SPELLED)
def test_opcodes_one_version_spells_alone_compile_and_equal_eager(name, mode):
    """The 32-tuple fan-in (3.11: ``LIST_TO_TUPLE``), ``super()`` (3.12+: ``LOAD_SUPER_ATTR``) and slice
    stores (3.12+: ``STORE_SLICE``) compile in every mode, with no graph break, and equal eager."""
    (program,) = [p for p in corpus_static.PROGRAMS if p.name == name]
    eager, jitted = program.make(), jit(program.make(), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for inputs in program.inputs:
            expected, expected_calls = run_counted(eager, inputs)
            got, got_calls = run_counted(jitted, inputs)
            assert (got, got_calls) == (expected, expected_calls), inputs
    assert "graph break" not in dump(jitted, program.inputs[0])
