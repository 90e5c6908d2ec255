"""The examples: their plans equal the committed snapshots, and compiled runs equal eager runs."""

from __future__ import annotations

import pytest

from examples.ensemble import Ensemble
from xcs import dump, execution_options
from xcs.operator import check_output

SCHEDULERS = ["sequential", "topological", "wave", "parallel"]


def eager(op, inputs):
    return check_output(op, type(op).forward(op, inputs=inputs))


def test_ensemble_plan_snapshot(plan_snapshot):
    assert dump(Ensemble(3), {"query": "hi"}) == plan_snapshot


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_ensemble_equals_eager(scheduler):
    op = Ensemble(4)
    with execution_options(scheduler=scheduler):
        for query in ("hi", "a different query", ""):
            assert op(inputs={"query": query}) == eager(op, {"query": query})
