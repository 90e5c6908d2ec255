"""Regions of issue 13: generator expressions, filters, functions as values, switch, with blocks,
effects under a runtime condition, merged outputs. Every case runs under every mode and scheduler and
must equal eager: outputs, the exception raised, and the operator calls made. The realistic programs
of ``tests/sound/regions_style.py`` are checked by the soundness harness; here are the edge cases
(empty sequences, short-circuits, a generator used twice, exceptions through a with block) and
snapshots of representative plans."""

from __future__ import annotations

import warnings

import pytest

from corpus import CALLS, Echo
from sound import harness
from xcs import Operator, dump, execution_options, jit
from xcs.runtime.errors import StepError

MODES = ("structural", "enhanced", "trace", "auto")
SCHEDULERS = ("sequential", "topological", "wave", "parallel", "async", "auto")
pytestmark = pytest.mark.usefixtures("fresh_plans")


def outcome(op, inputs):
    """What a call returns or raises (the exception behind the runtime's wrapper) and its calls."""
    CALLS.clear()
    try:
        value = ("returned", op(inputs=dict(inputs)))
    except Exception as exc:  # noqa: BLE001 - the outcome is the exception's type
        value = ("raised", type(harness.root_error(exc)).__name__)
    return value, dict(CALLS)


def check(make, inputs_list, modes=MODES):
    for mode in modes:
        for scheduler in SCHEDULERS:
            eager, jitted = make(), jit(make(), mode=mode)
            with warnings.catch_warnings(), execution_options(scheduler=scheduler):
                warnings.simplefilter("ignore")
                for inputs in inputs_list:
                    assert outcome(jitted, inputs) == outcome(eager, inputs), (mode, scheduler, inputs)


class ShortCircuit(Operator):
    """``any`` stops at the first true element: a later element that would raise is never computed."""

    def __init__(self):
        self.echo = Echo("sc")

    def forward(self, *, inputs):
        hit = any(d["score"] > 1 for d in inputs["docs"])
        every = all(len(d) > 1 for d in inputs["docs"])
        return {"hit": hit, "every": every, "answer": self.echo(query=str(hit))["answer"]}


def test_any_and_all_stop_where_eager_stops():
    check(ShortCircuit, [{"docs": [{"score": 5}, {}]}, {"docs": []}, {"docs": [{"score": 0}, {}]}])


class UsedTwice(Operator):
    """A generator kept in a variable and consumed twice: the second consumer sees it empty."""

    def forward(self, *, inputs):
        words = (w.upper() for w in inputs["text"].split())
        return {"first": list(words), "second": list(words)}


def test_a_generator_consumed_twice_is_empty_the_second_time():
    check(UsedTwice, [{"text": "a b"}, {"text": ""}])


class FilterWithCalls(Operator):
    """A filter whose elements call operators on both sides of the condition (verify-then-keep)."""

    def __init__(self):
        self.draft, self.judge = Echo("fd"), Echo("fj")

    def forward(self, *, inputs):
        kept = []
        for q in inputs["queries"]:
            d = self.draft(query=q)["answer"]
            if len(self.judge(query=d)["answer"]) % 2:
                kept.append(d)
        short = [q for q in inputs["queries"] if len(q) < 3]
        return {"kept": kept, "short": short, "n": sum(1 for q in inputs["queries"] if q)}


def test_filters_keep_order_and_run_calls_only_for_kept_elements():
    check(FilterWithCalls, [{"queries": ["a", "bbbb", "cc", "ddd"]}, {"queries": []}, {"queries": ["x"]}])


class Suppressing:
    """A context manager that records what it saw and suppresses ``ValueError``."""

    def __init__(self):
        self.seen = []

    def __enter__(self):
        self.seen.append("enter")
        return self

    def __exit__(self, kind, value, tb):
        self.seen.append(kind.__name__ if kind else "-")
        return kind is ValueError


class WithRaising(Operator):
    def __init__(self):
        self.echo = Echo("wr")
        self.guard = Suppressing()

    def forward(self, *, inputs):
        answer = "none"
        with self.guard:
            answer = self.echo(query=inputs["query"])["answer"]
            if inputs["query"] == "boom":
                raise ValueError("boom")
            if inputs["query"] == "key":
                raise KeyError("key")
        return {"answer": answer, "seen": list(self.guard.seen)}


def test_a_with_block_passes_the_body_exception_to_exit():
    check(WithRaising, [{"query": "fine"}, {"query": "boom"}, {"query": "key"}, {"query": "fine"}])


class Router(Operator):
    def __init__(self):
        self.tools = {"a": Echo("ra"), "b": Echo("rb")}
        self.models = [Echo("m0"), Echo("m1")]

    def forward(self, *, inputs):
        first = self.tools[inputs["tool"]](query=inputs["query"])["answer"]
        return {"first": first, "second": self.models[inputs["index"]](query=first)["answer"]}


def test_switch_dispatches_and_raises_like_eager_for_a_missing_key():
    check(Router, [{"tool": "a", "query": "q", "index": 0}, {"tool": "b", "query": "q", "index": -1},
                   {"tool": "c", "query": "q", "index": 0}, {"tool": "a", "query": "q", "index": 2}])


class Keyed(Operator):
    def __init__(self):
        self.echo = Echo("kd")

    def forward(self, *, inputs):
        rows = [{"q": q, "a": self.echo(query=q)["answer"]} for q in inputs["queries"]]
        ranked = sorted(rows, key=lambda r: (-len(r["a"]), r["q"]))
        tally = {"x": len(rows), "y": 2}
        merged = {**rows[0], **tally} if rows else {}
        return {"ranked": [r["q"] for r in ranked], "most": max(tally, key=tally.get), "merged": merged,
                "tags": sorted({r["q"] for r in rows} | {"t"})}


def test_functions_as_values_and_merged_outputs():
    check(Keyed, [{"queries": ["bb", "a", "ccc"]}, {"queries": []}])


def test_a_region_over_a_value_that_is_not_iterable_names_its_line():
    class Items(Operator):
        def forward(self, *, inputs):
            return {"items": None if inputs["query"] == "bad" else ["a", "b"]}

    class Mapper(Operator):
        def __init__(self):
            self.items, self.echo = Items(), Echo("mp")

        def forward(self, *, inputs):
            got = self.items(inputs=inputs)["items"]
            return {"out": [self.echo(query=x)["answer"] for x in got]}

    op = jit(Mapper(), mode="structural")
    assert op(query="ok") == {"out": ["mp:a", "mp:b"]}
    with pytest.raises(StepError) as info:
        op(query="bad")
    assert "test_regions.py" in str(info.value) and "for x in got" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


REPRESENTATIVE = (
    "reg_bullet_context", "reg_chunk_summaries", "reg_keep_verified", "reg_judge_panel", "reg_expert_router",
    "reg_rank_by_score", "reg_merged_outputs", "reg_timed_call", "reg_warn_on_long", "reg_critique_revise",
)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_region_plan_snapshot(name, plan_snapshot):
    program = next(p for p in harness.programs() if p.name == name)
    assert dump(jit(program.factory()), program.inputs[0]) == plan_snapshot


class RaisingWithAfterSwitch(Operator):
    """Found by the property generator: a trace of a with block whose body raises on some input must
    leave the block to Python (the switch before it still calls its tool, as in eager)."""

    def __init__(self):
        self.tools = {"a": Echo("ta"), "b": Echo("tb")}
        self.guard = Suppressing()

    def forward(self, *, inputs):
        v1 = self.tools["a" if len(inputs["query"]) % 2 else "b"](query=inputs["query"])["answer"]
        with self.guard:
            v2 = [10, 20, 30][inputs["n"] % 4]
        return {"v1": v1, "v2": v2, "seen": list(self.guard.seen)}


def test_a_with_block_that_raises_after_a_switch():
    # Under a concurrent scheduler the with block (a statement run as written) and the switch before it
    # are independent steps: the block's raise must let the switch's call (before it) run.
    check(RaisingWithAfterSwitch, [{"query": "", "n": 0}, {"query": "", "n": 0}, {"query": "a", "n": -1}])
