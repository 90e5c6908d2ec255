"""Every compiled corpus program's plan, snapshot-tested: one snapshot, the same on Python 3.11–3.13."""

from __future__ import annotations

import pytest

from corpus import PROGRAMS
from xcs import dump, jit

COMPILED = [p for p in PROGRAMS if p.breaks is None]


@pytest.mark.parametrize("program", COMPILED, ids=[p.name for p in COMPILED])
def test_plan_snapshot(program, plan_snapshot, fresh_plans):
    op = program.make()
    if getattr(op, "__xcs_jit__", None) is None:
        op = jit(op)
    assert dump(op, program.inputs[0]) == plan_snapshot
