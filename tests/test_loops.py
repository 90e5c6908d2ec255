"""Loop regions (issue 13): ``while`` and ``for ... break/continue/return`` over runtime data, run
iteration by iteration with carried state. Every idiom of ``tests/sound/loop_style.py`` and every edge
case here runs under every mode and scheduler and must equal eager: outputs, the exception raised, the
LLM/tool calls made and the effects in order, including zero iterations, the user's bound reached and
an exception raised in the body. The supported idioms compile without an opaque statement, the two
independent calls of one iteration overlap under ``parallel`` (seen in the event log), and one plan is
snapshotted."""

from __future__ import annotations

import warnings

import pytest

from corpus import CALLS, Echo
from sound import harness
from sound.common import EVENTS, TIMING
from xcs import Operator, dump, execution_options, explain, jit
from xcs.runtime.errors import StepError

MODES = ("auto", "enhanced", "structural", "trace")
SCHEDULERS = ("sequential", "parallel", "async", "auto")
PROGRAMS = [p for p in harness.programs() if p.module == "loop_style"]  # every module registered first
# a loop with a static bound (``attempt < self.retries``): unrolled into nested branches, no loop region
UNROLLED = ("loop_retry_json",)
pytestmark = pytest.mark.usefixtures("fresh_plans")


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
@pytest.mark.parametrize("mode", MODES)
def test_idiom_equals_eager(program, mode):
    from xcs.compiler.driver import clear_caches

    eager = harness.run(program)
    for scheduler in SCHEDULERS:
        clear_caches()
        compiled = harness.run(program, mode, scheduler)
        assert harness.differences(eager, compiled) == [], (program.name, mode, scheduler)


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_idiom_compiles_without_an_opaque_statement(program):
    text = str(explain(jit(program.factory()), inputs=program.inputs[0]))
    assert "opaque statements" not in text and "breaks: none" in text, text
    if program.name not in UNROLLED:
        assert "_iteration(" in dump(jit(program.factory()), program.inputs[0])


def test_independent_calls_of_one_iteration_overlap_under_parallel():
    program = next(p for p in PROGRAMS if p.name == "loop_two_critics")
    TIMING.scale = 1.0
    try:
        compiled = harness.run(program, "auto", "parallel")
        assert all(o.error is None for o in compiled.outcomes)
        assert compiled.peak == 2, "the two critics of one round never ran at the same time"
        sequential = harness.run(program, "auto", "sequential")
        assert sequential.peak == 1
    finally:
        TIMING.scale = 0.0


def test_critique_loop_plan_snapshot(plan_snapshot):
    program = next(p for p in PROGRAMS if p.name == "loop_bounded_critique")
    assert dump(jit(program.factory()), program.inputs[0]) == plan_snapshot


# ---------------------------------------------------------------------- edge cases
def outcome(op, inputs):
    """What a call returns or raises (the exception behind the runtime's wrapper: type and message)
    and the calls it made."""
    CALLS.clear()
    EVENTS.reset()
    try:
        value = ("returned", op(inputs=dict(inputs)))
    except Exception as exc:  # noqa: BLE001 - compared with eager's
        root = harness.root_error(exc)
        value = ("raised", type(root).__name__, str(root))
    return value, dict(CALLS), list(EVENTS.effects)


def check(make, inputs_list, modes=MODES, schedulers=SCHEDULERS, opaque=False):
    for mode in modes:
        for scheduler in schedulers:
            eager, jitted = make(), jit(make(), mode=mode)
            with warnings.catch_warnings(), execution_options(scheduler=scheduler):
                warnings.simplefilter("ignore")
                for inputs in inputs_list:
                    assert outcome(jitted, inputs) == outcome(eager, inputs), (mode, scheduler, inputs)
    if not opaque:
        text = str(explain(jit(make()), inputs=inputs_list[0]))
        assert "opaque statements" not in text, text


class Flaky(Operator):
    """A tool that fails on the item "boom"."""

    def forward(self, *, inputs):
        CALLS["flaky"] = CALLS.get("flaky", 0) + 1
        if inputs["item"] == "boom":
            raise ValueError("the tool failed on boom")
        return {"out": inputs["item"].upper()}


class FirstLong(Operator):
    """``for`` with ``continue``, ``break`` and ``else``, an exception in the body, a return inside."""

    def __init__(self):
        self.tool, self.echo = Flaky(), Echo("fl")

    def forward(self, *, inputs):
        seen = []
        found = "none"
        for item in inputs["items"]:
            if not item:
                continue
            out = self.tool(inputs={"item": item})["out"]
            if out == "RETURN":
                return {"early": self.echo(query=item)["answer"], "seen": seen}
            seen.append(out)
            if len(out) > 3:
                found = out
                break
        else:
            found = "exhausted"
        return {"found": found, "seen": seen}


def test_for_with_continue_break_else_return_and_a_raising_body():
    check(FirstLong, [
        {"items": []}, {"items": ["a", "", "bb"]}, {"items": ["a", "long", "never"]},
        {"items": ["x", "boom", "y"]}, {"items": ["", "return", "z"]},
    ])


class Countdown(Operator):
    """``while`` on a carried counter (the user's bound) with ``while/else``; zero iterations."""

    def __init__(self):
        self.echo = Echo("cd")

    def forward(self, *, inputs):
        n = inputs["n"]
        text = inputs["start"]
        while n > 0:
            text = self.echo(query=text)["answer"]
            if text.endswith("!"):
                break
            n -= 1
        else:
            text = text + "."
        return {"text": text, "left": n}


def test_while_with_else_and_zero_iterations():
    check(Countdown, [{"n": 0, "start": "a"}, {"n": 3, "start": "b"}, {"n": 2, "start": "stop!"}])


class LastSeen(Operator):
    """A variable first bound inside the loop and read after it: unbound (UnboundLocalError, as Python
    says it) when the loop ran zero times."""

    def __init__(self):
        self.echo = Echo("ls")

    def forward(self, *, inputs):
        for i in range(inputs["n"]):
            last = self.echo(query=str(i))["answer"]
            if last.endswith("1"):
                break
        return {"last": last}


def test_a_variable_the_loop_may_leave_unbound():
    check(LastSeen, [{"n": 2}, {"n": 0}, {"n": 5}])


class NotIterable(Operator):
    def __init__(self):
        self.echo = Echo("ni")

    def forward(self, *, inputs):
        out = []
        for x in inputs["items"]:
            if x == "stop":
                break
            out = out + [self.echo(query=x)["answer"]]
        return {"out": out}


def test_a_loop_over_a_value_that_is_not_iterable_names_its_line():
    check(NotIterable, [{"items": ["a", "stop", "b"]}, {"items": 5}])
    op = jit(NotIterable(), mode="structural")
    with pytest.raises(StepError) as info:
        op(inputs={"items": 5})
    assert "test_loops.py" in str(info.value) and "for x in inputs" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


class Unbounded(Operator):
    """``while True`` with a runtime exit; a generator consumed natively by the loop."""

    def __init__(self):
        self.echo = Echo("ub")

    def forward(self, *, inputs):
        text = inputs["text"]
        rounds = 0
        while True:
            rounds += 1
            text = self.echo(query=text)["answer"]
            if len(text) > inputs["limit"]:
                break
        return {"text": text, "rounds": rounds}


def test_while_true_with_a_runtime_exit():
    check(Unbounded, [{"text": "", "limit": 0}, {"text": "a", "limit": 12}])


class Aliased(Operator):
    """A list the loop appends to, also held by another name: the loop runs as written (the capture
    cannot rebind every holder), and the result equals eager."""

    def __init__(self):
        self.echo = Echo("al")

    def forward(self, *, inputs):
        notes = []
        log = notes
        for x in inputs["items"]:
            if x == "stop":
                break
            notes.append(self.echo(query=x)["answer"])
        return {"log": log, "notes": notes}


def test_a_container_the_loop_changes_held_by_another_name():
    check(Aliased, [{"items": ["a", "b", "stop", "c"]}, {"items": []}], opaque=True)


class Accumulate(Operator):
    """A loop over a runtime list whose elements carry a variable from one to the next: a loop region,
    never a map region (whose elements would all read the value before the loop)."""

    def __init__(self):
        self.echo = Echo("acc")

    def forward(self, *, inputs):
        text = ""
        out = []
        for d in inputs["docs"]:
            text = self.echo(query=text + d)["answer"]
            out.append(text)
        return {"out": out, "text": text}


def test_a_variable_carried_between_the_elements_of_a_loop_over_a_runtime_list():
    check(Accumulate, [{"docs": ["a", "b", "c"]}, {"docs": []}])


class Nested(Operator):
    """A ``while`` inside each element of a loop over a runtime list (a map region whose elements run a
    loop region), a loop inside a loop, and a comprehension over static members in a loop's body."""

    def __init__(self):
        self.answer, self.members = Echo("na"), [Echo("m0"), Echo("m1")]

    def forward(self, *, inputs):
        out = []
        for q in inputs["questions"]:
            draft = q
            while len(draft) < inputs["limit"]:
                draft = self.answer(query=draft)["answer"]
            out.append(draft)
        total = 0
        i = 0
        while i < inputs["n"]:
            j = 0
            while j < i:
                total += len(self.answer(query=str(j))["answer"])
                j += 1
            i += 1
        best = inputs["questions"][0] if inputs["questions"] else ""
        while len(best) < inputs["limit"]:
            best = max([m(query=best)["answer"] for m in self.members], key=len)
        return {"out": out, "total": total, "best": best}


def test_nested_loops():
    check(Nested, [{"questions": ["a", "bb"], "limit": 8, "n": 3}, {"questions": [], "limit": 0, "n": 0}])
    plan = dump(jit(Nested()), {"questions": ["a"], "limit": 8, "n": 3})
    assert "map_each" in plan and plan.count("_iteration(") >= 4


class FindFirst(Operator):
    """The loop variable read after a loop that breaks (unbound after zero iterations), a ``return``
    in ``for/else``."""

    def __init__(self):
        self.echo = Echo("ff")

    def forward(self, *, inputs):
        for x in inputs["xs"]:
            if self.echo(query=x)["answer"].endswith("!"):
                break
        else:
            if inputs["strict"]:
                return {"none": True}
        return {"found": x}


def test_the_loop_variable_after_the_loop():
    check(FindFirst, [{"xs": [], "strict": True}, {"xs": ["a", "b!", "c"], "strict": True},
                      {"xs": ["a"], "strict": False}, {"xs": [], "strict": False}])
