"""The same program compiles to the same plan, or breaks the same way, on Python 3.11, 3.12 and 3.13.

Every program of the three corpora (``tests/corpus.py``, ``tests/corpus_static.py``, ``tests/sound/``)
is captured by ``structural``, ``enhanced`` and ``auto`` without running anything (``run=False``) on
its first input; the outcome is the strategy that produced the graph and a digest of the plan text it
generates, or the codes and lines of the breaks met. One snapshot holds every outcome, and CI runs this
test on 3.11, 3.12 and 3.13 against that one snapshot, so a program whose plan (or break) differs on one
version fails there, naming the program and the mode.
"""

from __future__ import annotations

import hashlib

import pytest

import corpus
import corpus_static
from sound import harness
from xcs.compiler.capture import capture
from xcs.compiler.codegen import Header, generate
from xcs.operator import is_operator

MODES = ("structural", "enhanced", "auto")


def programs() -> list[tuple[str, object, dict]]:
    """(corpus:name, a fresh root, its first input) for every corpus program."""
    found = [(f"corpus:{p.name}", p.make, p.inputs[0]) for p in corpus.PROGRAMS]
    found += [(f"static:{p.name}", p.make, p.inputs[0]) for p in corpus_static.PROGRAMS]
    found += [(f"sound:{p.name}", p.factory, p.inputs[0]) for p in harness.programs()]
    return found


def outcome(make, inputs: dict, mode: str) -> str:
    root = make()
    forward = getattr(root, "__wrapped__", None) or root.forward  # a jitted function, or an operator
    cap = capture(root, forward, inputs, mode=mode, name="program", is_operator=is_operator, run=False)
    breaks = " ".join(f"{strategy}:{b.code}@{b.loc.line}" for strategy, b in cap.breaks)
    if cap.graph is None:
        return f"{cap.strategy} {breaks}".strip()
    text = generate(cap.graph, Header("program", cap.strategy, "-", "-"), cap.required)
    opaque = " ".join(f"opaque:{b.code}@{b.loc.line}" for b in cap.opaque)
    return f"{cap.strategy} {hashlib.sha256(text.encode()).hexdigest()[:16]} {breaks} {opaque}".strip()


def test_every_corpus_program_has_one_outcome_on_every_version(plan_snapshot):
    lines = [f"{name} {mode}: {outcome(make, inputs, mode)}" for name, make, inputs in programs() for mode in MODES]
    assert len(lines) >= 3 * (len(corpus.PROGRAMS) + len(corpus_static.PROGRAMS) + 100)
    assert "\n".join(lines) + "\n" == plan_snapshot
