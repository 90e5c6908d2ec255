"""Try regions (``compiler.tries``): every program of ``tests/sound/try_style.py`` in every mode under
every scheduler observes what eager Python observes (outputs, exceptions, LLM/tool calls, effects,
logs); the supported idioms compile without an opaque statement; exceptions chain as in eager; what a
region cannot express stays a statement run as written."""

from __future__ import annotations

import warnings

import pytest

from sound import harness
from xcs import Operator, dump, execution_options, explain, jit
from xcs.compiler.capture import capture
from xcs.compiler.ir import Try, walk
from xcs.compiler.oracle import interpret
from xcs.operator import is_operator

SCHEDULERS = ("sequential", "parallel", "async", "auto")
PROGRAMS = [p for p in harness.programs() if p.module == "try_style"]  # loads every corpus module first

from sound.try_style import FlakyLLM, RaisesChained, RateLimitError, SafeEach, ServiceError  # noqa: E402
pytestmark = pytest.mark.usefixtures("fresh_plans")


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_every_mode_and_scheduler_observes_what_eager_observes(program):
    eager = harness.run(program)
    for mode in harness.MODES:
        for scheduler in SCHEDULERS:
            compiled = harness.run(program, mode, scheduler)
            assert harness.differences(eager, compiled) == [], (mode, scheduler)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_the_idioms_compile_without_an_opaque_statement(program):
    for mode in ("auto", "enhanced", "structural"):
        report = explain(jit(program.factory(), mode=mode), program.inputs[0])
        assert report.opaque == () and report.breaks == (), (mode, report)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_the_ir_oracle_agrees_with_eager(program):
    op = program.factory()
    cap = capture(op, op.forward, program.inputs[0], mode="structural", name=program.name, is_operator=is_operator,
                  run=False)
    assert any(isinstance(n, Try) for n in walk(cap.graph.nodes))
    for inputs in program.inputs:
        expected = _outcome(lambda: program.factory().forward(inputs=dict(inputs)))
        assert _outcome(lambda: interpret(cap.graph, op, dict(inputs))) == expected, inputs


def _outcome(call):
    try:
        return "returned", call()
    except Exception as exc:  # noqa: BLE001 - the outcome is the exception (behind the runtime's wrapper)
        exc = harness.root_error(exc)
        return "raised", type(exc).__name__, str(exc), type(exc.__context__).__name__, type(exc.__cause__).__name__


def _error(op, inputs):
    try:
        op(inputs=inputs)
    except Exception as exc:  # noqa: BLE001 - the outcome is the exception
        return harness.root_error(exc)
    raise AssertionError("no exception")


@pytest.mark.parametrize("mode", harness.MODES)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_handler_raising_chains_to_the_body_exception(mode, scheduler):
    with execution_options(scheduler=scheduler), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for question, cause in (("busy", RateLimitError), ("gone", type(None))):
            eager, compiled = _error(RaisesChained(), {"question": question}), _error(
                jit(RaisesChained(), mode=mode), {"question": question})
            for exc in (eager, compiled):
                assert type(exc) is ServiceError
                assert type(exc.__cause__) is cause
                assert type(exc.__context__) is (RateLimitError if question == "busy" else KeyError)
            assert str(eager) == str(compiled)


@pytest.mark.parametrize("mode", harness.MODES)
def test_an_unmatched_exception_propagates_with_the_user_line(mode):
    program = next(p for p in PROGRAMS if p.name == "try_unmatched")
    exc = _error(jit(program.factory(), mode=mode), {"question": "busy"})
    assert type(exc) is RateLimitError and str(exc) == "narrow is busy"
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    assert any(name == "forward" and file.endswith("try_style.py") for file, name in frames)


def test_the_plan_holds_a_try_statement_and_the_elements_stay_concurrent():
    op = jit(SafeEach(), mode="enhanced")
    text = dump(op, inputs={"questions": ["a", "b"]})
    assert "    try:\n" in text and "except sound.try_style.RateLimitError:" in text and "map_each(" in text
    graph = op.__xcs_jit__.graph_of(op, {"questions": ["a"]}, "SafeEach", run=False).graph
    assert sum(isinstance(n, Try) for n in walk(graph.nodes)) == 2


def test_plan_snapshot(plan_snapshot):
    program = next(p for p in PROGRAMS if p.name == "try_except_else")
    assert dump(jit(program.factory(), mode="enhanced"), program.inputs[0]) == plan_snapshot


class Unknowable(Operator):
    """The handler reads a variable the body assigns: its value depends on where the body raised."""

    def __init__(self):
        self.first, self.second = FlakyLLM("first"), FlakyLLM("second")

    def forward(self, *, inputs):
        draft = {"text": "none"}
        try:
            draft = self.first(inputs={"prompt": inputs["q"]})
            final = self.second(inputs={"prompt": "busy " + draft["text"]})
        except RateLimitError:
            final = {"text": "fallback after " + draft["text"]}
        return final


@pytest.mark.parametrize("mode", harness.MODES)
def test_what_a_region_cannot_express_runs_as_written(mode):
    for q in ("x", "busy"):
        assert jit(Unknowable(), mode=mode)(inputs={"q": q}) == Unknowable()(inputs={"q": q})
    report = explain(jit(Unknowable(), mode="structural"), {"q": "x"})
    assert [b.code for b in report.opaque] == ["unsupported-try"]


class BareInBranch(Operator):
    """A bare ``except:`` inside a branch on an input."""

    def __init__(self):
        self.llm, self.other = FlakyLLM("bare"), FlakyLLM("other")

    def forward(self, *, inputs):
        if inputs["flag"]:
            try:
                text = self.llm(inputs={"prompt": inputs["q"]})["text"]
            except:  # noqa: E722 - the idiom under test
                text = "bare"
        else:
            text = self.other(inputs={"prompt": inputs["q"]})["text"]
        return {"text": text}


@pytest.mark.parametrize("mode", harness.MODES)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_bare_except_inside_a_branch(mode, scheduler):
    with execution_options(scheduler=scheduler), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op = jit(BareInBranch(), mode=mode)
        for inputs in ({"q": "busy", "flag": True}, {"q": "gone", "flag": True}, {"q": "x", "flag": True},
                       {"q": "x", "flag": False}):
            assert op(inputs=dict(inputs)) == BareInBranch()(inputs=dict(inputs))
    assert explain(jit(BareInBranch(), mode="structural"), {"q": "x", "flag": True}).opaque == ()


class ReturnsInFinally(Operator):
    """``try: return ... finally:`` in a sub-operator's forward (inlined into the caller's plan)."""

    def __init__(self):
        self.llm = FlakyLLM("wrapped")

    def forward(self, *, inputs):
        try:
            return self.llm(inputs={"prompt": inputs["q"]})
        finally:
            harness.EVENTS.effect("released", inputs["q"])


class ReturnsOnOnePath(Operator):
    """A try that returns on one path only: no try region, the call of it stays one operator step."""

    def __init__(self):
        self.llm = FlakyLLM("one-path")

    def forward(self, *, inputs):
        try:
            out = self.llm(inputs={"prompt": inputs["q"]})
        except (RateLimitError, KeyError):  # never raises: the other step's failure alone ends the call
            return {"text": "later"}
        return out


class Caller(Operator):
    def __init__(self):
        self.a, self.b = ReturnsInFinally(), ReturnsOnOnePath()

    def forward(self, *, inputs):
        return {"a": self.a(inputs=inputs)["text"], "b": self.b(inputs=inputs)["text"]}


@pytest.mark.parametrize("mode", harness.MODES)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_returns_inside_a_try_of_a_sub_operator(mode, scheduler):
    with execution_options(scheduler=scheduler), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op = jit(Caller(), mode=mode)
        for q in ("fine", "busy", "gone"):
            harness.EVENTS.reset()
            got = _outcome(lambda: op(inputs={"q": q}))
            effects = list(harness.EVENTS.effects)
            harness.EVENTS.reset()
            want = _outcome(lambda: Caller()(inputs={"q": q}))
            assert (got[:2] if got[0] == "raised" else got) == (want[:2] if want[0] == "raised" else want), q
            assert effects == list(harness.EVENTS.effects)
    graph = jit(Caller(), mode="structural").__xcs_jit__.graph_of(Caller(), {"q": "x"}, "Caller", run=False).graph
    assert [type(n).__name__ for n in graph.nodes if type(n).__name__ in ("Try", "OperatorCall", "Call")] == ["Try", "OperatorCall"]


class TryInTry(Operator):
    """A try whose first statement is a try: the outer handler catches what the inner one does not
    match and what the inner handler raises."""

    def __init__(self):
        self.a, self.b, self.c = FlakyLLM("a"), FlakyLLM("b"), FlakyLLM("c")

    def forward(self, *, inputs):
        try:
            try:
                r = self.a(inputs={"prompt": inputs["q"]})
            except KeyError:
                r = self.b(inputs={"prompt": "busy"})
        except RateLimitError as outer:
            r = self.c(inputs={"prompt": "c " + str(outer)})
        return r


@pytest.mark.parametrize("mode", harness.MODES)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_try_inside_a_try(mode, scheduler):
    with execution_options(scheduler=scheduler), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q in ("x", "busy", "gone"):
            assert _outcome(lambda: jit(TryInTry(), mode=mode)(inputs={"q": q})) == _outcome(
                lambda: TryInTry()(inputs={"q": q})), q
    graph = jit(TryInTry(), mode="structural").__xcs_jit__.graph_of(TryInTry(), {"q": "x"}, "TryInTry", run=False).graph
    assert sum(isinstance(n, Try) for n in walk(graph.nodes)) == 2
