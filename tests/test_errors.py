"""Bad input and failures: each raises an ``XCSError`` whose message names what went wrong and where."""

from __future__ import annotations

import inspect

import pytest

import corpus
import xcs
from xcs.compiler.analysis import critical_path, waves
from xcs import (
    CycleError,
    JitError,
    Operator,
    OperatorInputError,
    OperatorOutputError,
    StepError,
    XCSError,
    execution_options,
    jit,
)

pytestmark = pytest.mark.usefixtures("fresh_plans")

SCHEDULERS = ("sequential", "topological", "wave", "parallel", "auto")


class Flaky(Operator):
    """Fails on the query 'fail'."""

    def forward(self, *, inputs):
        if inputs["query"] == "fail":
            raise ValueError(f"flaky failed on {inputs['query']!r}")
        return {"answer": inputs["query"]}


class App(Operator):
    """One good step, then a step that may fail."""

    def __init__(self):
        self.first = corpus.Echo("app-first")
        self.flaky = Flaky()

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)
        b = self.flaky(query=inputs["query"])
        return {"a": a["answer"], "b": b["answer"]}


class NoReturn(Operator):
    """Forgets to return."""

    def forward(self, *, inputs):
        inputs["x"]


class ReturnsList(Operator):
    """Returns a list, not a mapping."""

    def forward(self, *, inputs):
        return [inputs["x"]]


class CallsNoReturn(Operator):
    """Calls a sub-operator that returns None."""

    def __init__(self):
        self.child = NoReturn()

    def forward(self, *, inputs):
        return {"y": self.child(x=inputs["x"])}


def line_of(cls, text):
    """``tests/test_errors.py:N`` of the line of ``cls``'s source containing ``text``."""
    lines, start = inspect.getsourcelines(cls)
    for offset, line in enumerate(lines):
        if text in line:
            return f"tests/test_errors.py:{start + offset}"
    raise AssertionError(text)


def both(make):
    """The operator un-jitted and jitted."""
    return [make(), jit(make())]


# ---------------------------------------------------------------------- inputs
def test_missing_input_key_names_the_key_and_the_operator():
    with pytest.raises(KeyError):  # eager: the user's own subscript fails
        corpus.Chain()(txt="x")
    corpus.CALLS.clear()
    with pytest.raises(OperatorInputError) as info:
        jit(corpus.Chain())(txt="x")
    assert str(info.value) == "Chain: missing input key 'text' (inputs have: 'txt')"
    assert isinstance(info.value, XCSError)
    assert corpus.CALLS == {}  # no operator ran


def test_missing_input_key_after_a_plan_exists():
    op = jit(corpus.Chain())
    op(text="ok")
    with pytest.raises(OperatorInputError, match=r"^Chain: missing input key 'text' \(inputs have: no keys\)$"):
        op(inputs={})


@pytest.mark.parametrize("bad", [[1, 2], "text", 3, 2.5, ("text", "x")])
def test_non_mapping_inputs(bad):
    name = type(bad).__name__
    for op in both(corpus.Chain):
        with pytest.raises(OperatorInputError, match=rf"^Chain: inputs must be a mapping, got {name}$"):
            op(inputs=bad)


def test_non_mapping_inputs_to_a_jitted_function():
    fn = jit(corpus.pipeline)
    with pytest.raises(OperatorInputError, match=r"inputs must be a mapping, got tuple"):
        fn(inputs=("text",))


# ---------------------------------------------------------------------- outputs
def test_operator_returning_none():
    message = r"^NoReturn\.forward returned None; it must return a mapping \(did you forget 'return'\?\)$"
    op = jit(NoReturn())
    for target in (NoReturn(), op, op):  # eager, the capture, the plan
        with pytest.raises(OperatorOutputError, match=message):
            target(x=1)


def test_non_mapping_output():
    op = jit(ReturnsList())
    for target in (ReturnsList(), op, op):
        with pytest.raises(OperatorOutputError, match=r"^ReturnsList\.forward must return a mapping, got list$"):
            target(x=1)


def test_sub_operator_returning_none_names_the_step():
    op = jit(CallsNoReturn())
    for _ in range(2):  # the capture, then the plan
        with pytest.raises(StepError) as info:
            op(x=1)
        assert info.value.step == "child"
        assert isinstance(info.value.__cause__, OperatorOutputError)
        assert "NoReturn.forward returned None" in str(info.value)


# ---------------------------------------------------------------------- jit misuse
@pytest.mark.parametrize("target", [42, "Chain", object(), [corpus.Chain()], corpus.Note])
def test_jit_on_something_that_is_not_an_operator(target):
    with pytest.raises(
        JitError,
        match=r"^jit expects an Operator subclass, an Operator instance, or a function taking `\*, inputs`; "
        rf"got {type(target).__name__}$",
    ):
        jit(target)


def test_jit_on_a_function_without_inputs():
    def positional(x):
        return {"x": x}

    with pytest.raises(JitError, match=r"^jit\(.*positional\): a function must take the keyword argument 'inputs'"):
        jit(positional)

    def star_inputs(*inputs):
        return {}

    with pytest.raises(JitError, match="must take the keyword argument 'inputs'"):
        jit(star_inputs)


def test_sample_input_must_be_a_mapping():
    with pytest.raises(JitError, match=r"^sample_input must be a mapping, got list$"):
        jit(corpus.Chain(), sample_input=["text"])


def test_jit_errors_are_xcs_errors():
    assert issubclass(JitError, XCSError) and issubclass(JitError, TypeError)


# ---------------------------------------------------------------------- cycles
def test_cycle_is_a_cycle_error_from_analysis():
    deps = {"retrieve": ["rank"], "rank": ["answer"], "answer": ["retrieve"]}
    for analyse in (waves, lambda deps: critical_path(deps, {})):
        with pytest.raises(CycleError, match=r"^dependency cycle: retrieve -> rank -> answer -> retrieve$") as info:
            analyse(deps)
        assert info.value.cycle == ("retrieve", "rank", "answer", "retrieve")
    assert xcs.CycleError is CycleError and issubclass(CycleError, XCSError)


def test_self_loop_is_a_cycle():
    with pytest.raises(CycleError, match=r"^dependency cycle: a -> a$"):
        waves({"a": ["a"]})


# ---------------------------------------------------------------------- failing operators
def test_exception_in_a_sub_operator_during_capture():
    op = jit(App())
    with pytest.raises(StepError) as info:
        op(query="fail")
    error = info.value
    location = line_of(App, "b = self.flaky(")
    assert error.step == "b"  # steps take the user's variable names
    assert error.location == location
    assert str(error) == (
        f"step 'b' at {location} failed: ValueError: flaky failed on 'fail'\n"
        '    b = self.flaky(query=inputs["query"])'
    )
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "flaky failed on 'fail'"
    with pytest.raises(ValueError, match="flaky failed"):  # eager raises the original
        App()(query="fail")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_exception_in_a_sub_operator_in_a_plan(scheduler):
    op = jit(App())
    assert op(query="ok") == {"a": "app-first:ok", "b": "ok"}  # captured
    with execution_options(scheduler=scheduler):
        with pytest.raises(StepError) as info:
            op(query="fail")
        assert op(query="fine") == {"a": "app-first:fine", "b": "fine"}  # the plan still works
    error = info.value
    assert error.step == "b"
    assert error.location == line_of(App, "b = self.flaky(")
    assert error.source == 'b = self.flaky(query=inputs["query"])'
    assert f"step 'b' at {error.location} failed: ValueError: flaky failed on 'fail'" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert isinstance(error, XCSError) and isinstance(error, RuntimeError)


def test_missing_key_on_the_first_call_fails_before_any_operator_runs(fresh_plans):
    """The capture records the whole graph before running anything, so a key the plan reads is
    checked up front even on the very first call."""
    corpus.CALLS.clear()
    op = jit(corpus.Ensemble())
    with pytest.raises(OperatorInputError, match=r"Ensemble: missing input key 'query' \(inputs have: 'q'\)"):
        op(inputs={"q": "hi"})
    assert sum(corpus.CALLS.values()) == 0


# ---------------------------------------------------------------------- operators that call themselves
class Refine(Operator):
    """A self-refinement loop: calls itself until ``n`` reaches ``stop``."""

    def forward(self, *, inputs):
        if inputs["n"] >= inputs["stop"]:
            return {"n": inputs["n"], "done": True}
        return self(inputs={"n": inputs["n"] + 1, "stop": inputs["stop"]})


class RefineMe(Operator):
    """The same loop through an attribute that is the instance itself."""

    def __init__(self):
        self.me = self

    def forward(self, *, inputs):
        if inputs["n"] >= inputs["stop"]:
            return {"n": inputs["n"], "done": True}
        return self.me(inputs={"n": inputs["n"] + 1, "stop": inputs["stop"]})


class Forever(Operator):
    """Calls itself without end: eagerly a RecursionError."""

    def forward(self, *, inputs):
        return self(inputs=inputs)


class Step(Operator):
    def forward(self, *, inputs):
        return {"n": inputs["n"] + 1}


class ViaGlobal(Operator):
    """Calls the module-level instance of itself: a plan step (in a pool thread under ``parallel``)
    re-enters the operator while its first call is still compiling."""

    def __init__(self):
        self.a = Step()
        self.b = Step()

    def forward(self, *, inputs):
        x = self.a(inputs=inputs)
        y = self.b(inputs=inputs)
        if x["n"] >= 4:
            return {"n": x["n"] + y["n"]}
        return LOOP(inputs={"n": x["n"]})


LOOP = ViaGlobal()
MODES = ("auto", "enhanced", "structural", "trace")


def _bounded(fn, seconds=60):
    """Run ``fn`` in a thread; a hang detector (the call must finish, its time is not asserted)."""
    import threading

    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call hangs"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", [Refine, RefineMe])
def test_an_operator_that_calls_itself_runs_as_eager(cls, mode):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op = jit(cls(), mode=mode)
        assert _bounded(lambda: op(n=0, stop=5)) == cls()(n=0, stop=5) == {"n": 5, "done": True}
        assert _bounded(lambda: op(n=0, stop=50)) == {"n": 50, "done": True}  # cached now


@pytest.mark.parametrize("mode", MODES)
def test_endless_self_recursion_is_a_recursion_error(mode):
    import warnings

    with pytest.raises(RecursionError):
        Forever()(n=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RecursionError):
            _bounded(lambda: jit(Forever(), mode=mode)(n=0))


@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave", "async"])
@pytest.mark.parametrize("mode", MODES)
def test_a_plan_step_that_reenters_the_operator_while_it_compiles(mode, scheduler):
    """The re-entrant call comes from a plan step, in another thread (``parallel``) or task (``async``)
    of the same call: it sees the call's context, which marks the key as being compiled, and runs
    eagerly instead of waiting for the compile lock its own call holds."""
    import warnings

    global LOOP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LOOP = jit(ViaGlobal(), mode=mode)
        with execution_options(scheduler=scheduler):
            assert _bounded(lambda: LOOP(n=0)) == {"n": 8}
            assert _bounded(lambda: LOOP(n=1)) == {"n": 8}


# ------------------------------------------------------------------------------------------ tracebacks
class Judge(Operator):
    def forward(self, *, inputs):
        return {"verdict": "yes" if len(inputs["text"]) > 3 else "no"}


class Refuses(Operator):
    def forward(self, *, inputs):
        raise ValueError(f"refused {inputs['text']!r}")


class Decides(Operator):
    """Decides on an operator's output (the trace runs it), then a sub-operator fails."""

    def __init__(self):
        self.judge, self.refuses = Judge(), Refuses()

    def forward(self, *, inputs):
        verdict = self.judge(inputs=inputs)["verdict"]
        text = inputs["text"] if verdict == "yes" else inputs["text"] * 2
        return self.refuses(inputs={"text": text})


RUNS: list = []


class DecidesGlobal(Decides):
    """The same, in a forward that declares a global: no statement runs alone, so the trace runs the
    call while recording it, and the error passes through the capture's interpreter."""

    def forward(self, *, inputs):
        global RUNS
        verdict = self.judge(inputs=inputs)["verdict"]
        text = inputs["text"] if verdict == "yes" else inputs["text"] * 2
        return self.refuses(inputs={"text": text})


class Parses(Operator):
    """A statement the capture runs as written (a try) raises the user's own error."""

    def __init__(self):
        self.judge = Judge()

    def forward(self, *, inputs):
        verdict = self.judge(inputs=inputs)["verdict"]
        try:
            number = int(verdict)
        except TypeError:
            number = 0
        return {"n": number}


def frames(exc: BaseException) -> list[str]:
    """The files of every frame in ``exc``'s traceback and its causes'."""
    found = []
    while exc is not None:
        tb = exc.__traceback__
        while tb is not None:
            found.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return found


@pytest.mark.parametrize("cls", (Decides, DecidesGlobal))
@pytest.mark.parametrize("mode", ("trace", "auto"))
def test_a_failing_operator_shows_the_users_lines_and_no_capture_frames(cls, mode, fresh_plans):
    with pytest.raises((StepError, ValueError)) as info:
        jit(cls(), mode=mode)(inputs={"text": "ok"})  # the first call captures
    files = frames(info.value)
    assert __file__ in files  # the user's operator that raised
    assert not any(f.endswith(("compiler/trace.py", "compiler/regions.py")) for f in files), files
    root = info.value.__cause__ if isinstance(info.value, StepError) else info.value
    assert isinstance(root, ValueError) and str(root) == "refused 'okok'"


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_statement_run_as_written_raises_its_own_error_at_the_users_line(scheduler, fresh_plans):
    op = jit(Parses())
    with execution_options(scheduler=scheduler), pytest.raises(ValueError, match="invalid literal") as info:
        op(inputs={"text": "long text"})  # int("yes"): a ValueError, not caught by `except TypeError`
    tb = info.value.__traceback__
    lines = []
    while tb is not None:
        lines.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    assert (__file__, int(line_of(Parses, "number = int(verdict)").rsplit(":", 1)[1])) in lines
    with pytest.raises(ValueError, match="invalid literal"):  # eager raises the same
        Parses()(inputs={"text": "long text"})
