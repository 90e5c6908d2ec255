"""The static-capture corpus (``tests/corpus_static.py``) under ``structural``, ``enhanced`` and ``auto``.

For every program: capturing runs nothing; compiled programs give one plan (no guards) whose outputs
and leaf-operator calls equal eager execution on every input under every scheduler, and whose plan
text is snapshot-tested (one snapshot for Python 3.11-3.13); rejected programs report their stable
break code at the line marked ``# graph break``, and still give eager results through the fallback.
"""

from __future__ import annotations

import inspect
import warnings

import pytest

import corpus
from corpus import entries, run_counted
import corpus_static
from xcs.compiler.breaks import CODES
from xcs.compiler.signature import Signature
from xcs.compiler.capture import capture
from xcs.compiler.oracle import interpret
from xcs import GraphBreakWarning, JitError, dump, execution_options, jit
from xcs.operator import is_operator

pytestmark = pytest.mark.usefixtures("fresh_plans")

SCHEDULERS = ("sequential", "topological", "wave", "parallel")
MODES = ("structural", "enhanced", "auto")
COMPILED = [p for p in corpus_static.PROGRAMS if p.breaks is None]
REJECTED = [p for p in corpus_static.PROGRAMS if p.breaks is not None]
# Issue 3, item 3: the breaks the static capture must report, each shown by a program here.
REQUIRED_BREAKS = {
    "yield_inside": "unsupported-bytecode",
    "global_write": "unsupported-bytecode",
    "last_element": "runtime-loop",
    "branch_mutation": "runtime-branch",
    "unknown_method": "runtime-value",
}


def all_inputs(program):
    return [*program.inputs, *reversed(program.inputs)]


def marked_line(program) -> int:
    """The line of the program's forward marked ``# graph break``."""
    lines, start = inspect.getsourcelines(program.make.forward)
    (line,) = [start + i for i, text in enumerate(lines) if "# graph break" in text]
    return line


def test_the_corpora_cover_issue_3():
    programs = [*corpus.PROGRAMS, *corpus_static.PROGRAMS]
    assert len(programs) >= 44
    assert len({p.name for p in programs}) == len(programs)
    assert len(corpus_static.PROGRAMS) >= 15
    for program in corpus_static.PROGRAMS:
        assert program.make.__doc__, program.name
        assert len({repr(sorted(i.items())) for i in program.inputs}) >= 3, program.name
        assert len({Signature.of(i) for i in program.inputs}) == 1, program.name
    assert {p.name: p.breaks for p in REJECTED} == REQUIRED_BREAKS
    assert set(REQUIRED_BREAKS.values()) <= set(CODES)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", corpus_static.PROGRAMS, ids=lambda p: p.name)
def test_static_capture_runs_nothing(program, mode):
    op = program.make()
    corpus.CALLS.clear()
    cap = capture(op, op.forward, program.inputs[0], mode=mode, name=program.name, is_operator=is_operator, run=False)
    assert sum(corpus.CALLS.values()) == 0
    if program.breaks is None:
        assert cap.strategy == ("enhanced" if mode == "auto" else mode) and cap.breaks == []
        for inputs in program.inputs:  # the IR oracle agrees with eager on every input
            assert interpret(cap.graph, op, inputs) == program.make().forward(inputs=inputs), inputs
    else:
        static = "structural" if mode == "structural" else "enhanced"
        # a break costs the statement it is in (an opaque step), or the capture when it cannot
        ((strategy, brk),) = [(s, b) for s, b in cap.breaks if s == static] or [(static, b) for b in cap.opaque]
        assert brk.code == program.breaks, str(brk)
        assert (brk.loc.file, brk.loc.line) == ("tests/corpus_static.py", marked_line(program)), str(brk)
        assert "# graph break" in brk.loc.text and brk.hint


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("program", REJECTED, ids=lambda p: p.name)
def test_a_break_costs_one_statement_and_equals_eager(program, scheduler):
    """A program whose break the capture absorbs as one opaque statement runs that statement as written:
    outputs and operator calls equal eager on every input, under every scheduler."""
    eager, jitted = program.make(), jit(program.make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            for inputs in all_inputs(program):
                expected, expected_calls = run_counted(eager, inputs)
                got, got_calls = run_counted(jitted, inputs)
                assert got == expected, inputs
                assert got_calls == expected_calls, inputs


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
def test_one_static_plan_equals_eager_on_every_input(program, mode, scheduler):
    eager, jitted = program.make(), jit(program.make(), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            for inputs in all_inputs(program):
                expected, expected_calls = run_counted(eager, inputs)
                got, got_calls = run_counted(jitted, inputs)
                assert got == expected, inputs
                assert got_calls == expected_calls, inputs
    (entry,) = entries(jitted, program.inputs[0])  # no guards: one plan for the signature
    assert entry.plan.guard is None
    assert f"strategy: {'enhanced' if mode == 'auto' else mode}" in entry.source


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", REJECTED, ids=lambda p: p.name)
def test_rejected_programs_fall_back_and_equal_eager(program, mode, scheduler):
    eager, jitted = program.make(), jit(program.make(), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            for inputs in all_inputs(program):
                assert run_counted(jitted, inputs) == run_counted(eager, inputs), inputs


@pytest.mark.parametrize("program", REJECTED, ids=lambda p: p.name)
def test_strict_raises_the_static_break(program):
    with pytest.raises(JitError, match=rf"\(strict=True\): the structural capture breaks: .*\[{program.breaks}\]"):
        jit(program.make(), mode="structural", strict=True)(inputs=dict(program.inputs[0]))


@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
def test_plan_snapshot(program, plan_snapshot):
    corpus.CALLS.clear()
    text = dump(jit(program.make(), mode="structural"), program.inputs[0])
    assert corpus.CALLS == {}  # compiled without running anything
    assert text == plan_snapshot
