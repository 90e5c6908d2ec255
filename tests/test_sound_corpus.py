"""The soundness corpus (issue 11, Tests): every program of ``tests/sound/`` runs eagerly and compiled
in every mode and under every scheduler, on at least three inputs in sequence on one instance, with the
state it holds changed between calls. A compiled run must be indistinguishable from the eager one:
equal outputs (or the same exception type), the same LLM/tool calls (as a multiset: pure calls may
overlap), the same effects, printed lines and log records in the same order, and the same state after
each call.

One test per (program, mode); inside it, every scheduler runs the whole sequence from an empty plan
cache (in memory; the disk cache is off), so a first-call capture and the later plan runs are both
checked. Known failures are ``xfail(strict=True)`` with their cause (``tests/sound/expected.py``): a
fix turns them into XPASS failures, which forces removing the mark.

``test_overlap`` checks, for the programs with independent slow calls, that a compiled run under
``auto`` and the ``parallel`` scheduler has more than one call in flight at some point (from the event
log, never from wall time).
"""

from __future__ import annotations

import pytest

from sound import harness
from sound.common import TIMING
from sound.expected import NO_OVERLAP, XFAIL

PROGRAMS = harness.programs()


@pytest.fixture(autouse=True)
def _isolated_plans(monkeypatch):
    from xcs.compiler.driver import clear_caches

    monkeypatch.setenv("XCS_DISK_CACHE", "0")
    monkeypatch.delenv("XCS_PLAN_DIR", raising=False)
    TIMING.scale = 0.0
    clear_caches()
    yield
    TIMING.scale = 0.0
    clear_caches()


def _params():
    for program in PROGRAMS:
        for mode in harness.MODES:
            reason = XFAIL.get((program.name, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(program, mode, id=f"{program.name}-{mode}", marks=marks)


def test_corpus_size():
    assert len(PROGRAMS) >= 100
    assert len({p.module for p in PROGRAMS}) >= 10
    for program in PROGRAMS:
        assert len(program.inputs) >= 3, program.name


@pytest.mark.parametrize("program, mode", list(_params()))
def test_compiled_equals_eager(program, mode):
    from xcs.compiler.driver import clear_caches

    eager = harness.run(program)
    again = harness.run(program)
    assert harness.differences(eager, again) == [], "the eager program itself is not deterministic"
    failures = {}
    for scheduler in harness.SCHEDULERS:
        clear_caches()
        compiled = harness.run(program, mode, scheduler)
        found = harness.differences(eager, compiled)
        if found:
            failures[scheduler] = found
    if failures:
        lines = [f"{program.name} under jit(mode={mode!r}) differs from eager:"]
        by_text = {}
        for scheduler, found in failures.items():
            by_text.setdefault("\n".join(found[:3]), []).append(scheduler)
        for text, schedulers in by_text.items():
            lines.append(f"  schedulers {', '.join(schedulers)}:")
            lines.extend("    " + line for line in text.splitlines())
        pytest.fail("\n".join(lines), pytrace=False)


SLOW = [p for p in PROGRAMS if p.slow]


@pytest.mark.parametrize(
    "program",
    [pytest.param(p, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=NO_OVERLAP[p.name])]
                  if p.name in NO_OVERLAP else []) for p in SLOW],
)
def test_overlap(program):
    """Independent slow calls overlap in a compiled run (auto mode, parallel scheduler)."""
    TIMING.scale = 1.0
    compiled = harness.run(program, "auto", "parallel")
    assert all(o.error is None for o in compiled.outcomes), [o.message for o in compiled.outcomes]
    assert compiled.peak > 1, f"{program.name}: at most one LLM/tool call in flight at any time"


def test_slow_programs_overlap_eagerly_never():
    """Sanity check of the event log: an eager run of a slow program has one call in flight at a time."""
    TIMING.scale = 0.2
    eager = harness.run(SLOW[0])
    assert eager.peak == 1
