"""Trace capture over the corpus: jitted outputs and side effects equal eager execution.

Every program in ``tests/corpus.py`` is run un-jitted and jitted on several inputs with different
values under every scheduler; outputs and sub-operator call counts must match. The IR reference
interpreter is checked against the generated plans, and ``lint`` against malformed graphs.
"""

from __future__ import annotations

import inspect
import re
import warnings

import pytest

import corpus
from corpus import entries, run_counted
from xcs.compiler import ir
from xcs.compiler.signature import Signature
from xcs.compiler.ir import Call, Const, Glue, Graph, Guard, Input, LintError, OperatorCall, Output, Ref, Static, walk
from xcs.compiler.oracle import interpret
from xcs.compiler.trace import Tracer
from xcs.runtime.call import execute
from xcs.runtime.plan import Plan
from xcs import GraphBreakWarning, execution_options, jit
from xcs.compiler.entries import Eager
from xcs.plans import JittedFunction

pytestmark = pytest.mark.usefixtures("fresh_plans")

SCHEDULERS = ("sequential", "topological", "wave", "parallel")
COMPILED = [p for p in corpus.PROGRAMS if p.breaks is None]
BROKEN = [p for p in corpus.PROGRAMS if p.breaks is not None]


# ---------------------------------------------------------------------- helpers
def compiled_for(op, inputs):
    """The entry that serves ``inputs``: the first ``Eager`` or plan whose guard holds."""
    for entry in entries(op, inputs):
        plan = entry.plan
        if isinstance(plan, Eager) or plan.guard is None or plan.guard(op, inputs):
            return entry
    raise LookupError(f"no plan of {type(op).__name__} serves {inputs!r}")


def break_line(program):
    """The line (number, stripped text) marked ``# graph break`` in a broken program's forward."""
    lines, start = inspect.getsourcelines(program.make.forward)
    (found,) = [(start + offset, text.strip()) for offset, text in enumerate(lines) if "# graph break" in text]
    return found


def all_inputs(program):
    """Every input, then every input again in reverse: later calls see values unlike the captured ones."""
    return [*program.inputs, *reversed(program.inputs)]


# ---------------------------------------------------------------------- the corpus
def test_corpus_is_broad():
    assert len(corpus.PROGRAMS) >= 25
    assert len({p.name for p in corpus.PROGRAMS}) == len(corpus.PROGRAMS)
    for program in corpus.PROGRAMS:
        assert program.make.__doc__, program.name
        assert len({repr(sorted(i.items())) for i in program.inputs}) >= 3, program.name
        assert len({Signature.of(i) for i in program.inputs}) == 1, program.name


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("program", corpus.PROGRAMS, ids=lambda p: p.name)
def test_jitted_equals_eager(program, scheduler):
    eager, jitted = program.make(), jit(program.make(), mode="trace")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with execution_options(scheduler=scheduler):
            for inputs in all_inputs(program):
                expected, expected_calls = run_counted(eager, inputs)
                got, got_calls = run_counted(jitted, inputs)
                assert got == expected, inputs
                assert got_calls == expected_calls, inputs
    breaks = [w for w in caught if issubclass(w.category, GraphBreakWarning)]
    found = entries(jitted, program.inputs[0])
    assert len(found) == program.plans
    if program.breaks is None:
        assert breaks == []
        assert all(isinstance(e.plan, Plan) and e.graph is not None for e in found)
        opaque = [n for e in found for n in e.graph.nodes if isinstance(n, Call) and n.source is not None]
        assert bool(opaque) == (program.opaque is not None)  # the statement that runs as written
    else:
        assert len(breaks) == 1  # one warning per signature, not one per call
        assert f"[{program.breaks}]" in str(breaks[0].message)
        assert [type(e.plan) for e in found] == [Eager]


@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
def test_jit_on_a_subclass(program):
    """``jit`` applied to a subclass compiles its instances, with the same results."""
    cls = jit(type(f"Jitted{program.make.__name__}", (program.make,), {"__module__": corpus.__name__}), mode="trace")
    eager, jitted = program.make(), cls()
    for inputs in all_inputs(program):
        assert run_counted(jitted, inputs) == run_counted(eager, inputs)
    assert isinstance(entries(jitted, program.inputs[0])[0].plan, Plan)


@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
def test_interpret_equals_plan(program):
    """The IR reference interpreter agrees with the generated plan (and eager) on every input."""
    op = jit(program.make(), mode="trace")
    for inputs in program.inputs:
        op(inputs=dict(inputs))
    eager = program.make()
    for inputs in all_inputs(program):
        entry = compiled_for(op, inputs)
        ir.lint(entry.graph)
        expected = eager(inputs=dict(inputs))
        assert interpret(entry.graph, op, dict(inputs)) == expected
        for scheduler in SCHEDULERS:
            with execution_options(scheduler=scheduler):
                assert execute(entry.plan, op, dict(inputs)) == expected


@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
def test_guards_hold_only_on_their_path(program):
    """``interpret`` refuses inputs whose path differs from the captured one (a guard fails)."""
    op = jit(program.make(), mode="trace")
    for inputs in program.inputs:
        op(inputs=dict(inputs))
    for entry in entries(op, program.inputs[0]):
        for inputs in program.inputs:
            if entry.plan.guard is None or entry.plan.guard(op, inputs):
                interpret(entry.graph, op, dict(inputs))
            else:
                with pytest.raises(AssertionError, match="guard"):
                    interpret(entry.graph, op, dict(inputs))


# ---------------------------------------------------------------------- glue is recomputed
def test_glue_is_recomputed_not_replayed(monkeypatch):
    captures = []
    original = Tracer.run
    monkeypatch.setattr(Tracer, "run", lambda self, *a: captures.append(1) or original(self, *a))
    op = jit(corpus.Chain(), mode="trace")
    assert op(text="first-value") == {"text": "[(FIRST-VALUE)]"}
    assert op(text="second") == {"text": "[(SECOND)]"}
    assert len(captures) == 1  # the second call ran the plan
    (entry,) = entries(op, {"text": "x"})
    assert "first-value" not in entry.source.lower()
    for scheduler in SCHEDULERS:
        with execution_options(scheduler=scheduler):
            assert op(text=f"third {scheduler}") == {"text": f"[(THIRD {scheduler.upper()})]"}
    assert len(captures) == 1


def test_glue_over_outputs_is_recomputed():
    """Arithmetic, f-strings and builtins over operator outputs and inputs follow the new values."""
    op = jit(corpus.FStrings(), mode="trace")
    first = op(query="aa", n=1.5, width=6)
    second = op(query="bbbbbbb", n=-7.25, width=9)
    assert second == corpus.FStrings()(query="bbbbbbb", n=-7.25, width=9)
    assert second != first
    assert len(entries(op, {"query": "", "n": 0.0, "width": 0})) == 1


def test_helpers_are_inlined_and_globals_referenced():
    op = jit(corpus.ModuleHelper(), mode="trace")
    op(query=" hi ")
    source = entries(op, {"query": ""})[0].source
    assert "make_prompt" not in source and "score_text" not in source
    assert ".strip()" in source
    op = jit(corpus.GlobalOperator(), mode="trace")
    op(query="hi")
    (entry,) = entries(op, {"query": ""})
    assert "corpus.SHOUT(" in entry.source
    assert [c.target for c in entry.graph.calls] == [Static("echo"), ir.Global("corpus", "SHOUT")]


def test_loops_over_static_lists_unroll():
    op = jit(corpus.StaticSlices(), mode="trace")
    op(query="abc")
    (entry,) = entries(op, {"query": ""})
    paths = [c.target.path for c in entry.graph.calls]
    assert paths == ["members[1]", "members[2]", "members[2]", "members[1]", "members[0]"]


# ---------------------------------------------------------------------- guards
def test_branch_on_input_recaptures_the_other_path():
    op, eager = jit(corpus.BranchOnInput(), mode="trace"), corpus.BranchOnInput()
    short = {"mode": "short", "query": "a", "loud": True}
    long = {"mode": "long", "query": "b", "loud": True}
    assert op(inputs=short) == eager(inputs=short) == {"text": "<a>!"}
    assert len(entries(op, short)) == 1
    assert run_counted(op, long) == run_counted(eager, long) == ({"text": "long:b!"}, {"long": 1})
    assert len(entries(op, short)) == 2
    for inputs in (dict(short, query="c"), dict(long, query="d")):
        assert run_counted(op, inputs) == run_counted(eager, inputs)
    assert len(entries(op, short)) == 2
    graph = compiled_for(op, short).graph
    assert [g.expected for g in graph.guards] == [True, True]


def test_iterating_an_input_list_guards_its_length():
    op, eager = jit(corpus.IterateInput(), mode="trace"), corpus.IterateInput()
    assert op(queries=["a", "b"]) == {"results": ["ii:a", "ii:b"], "n": 2}
    assert op(queries=["x", "y"]) == {"results": ["ii:x", "ii:y"], "n": 2}
    assert len(entries(op, {"queries": []})) == 1
    assert run_counted(op, {"queries": ["p", "q", "r"]}) == run_counted(eager, {"queries": ["p", "q", "r"]})
    assert len(entries(op, {"queries": []})) == 2
    assert compiled_for(op, {"queries": [1, 2, 3]}).plan.guard(op, {"queries": [1, 2]}) is False


def test_selecting_a_tool_by_an_input_key_switches_between_the_tools():
    op, eager = jit(corpus.SelectTool(), mode="trace"), corpus.SelectTool()
    for tool in ("search", "calc", "search", "calc"):
        inputs = {"tool": tool, "query": tool[::-1]}
        assert run_counted(op, inputs) == run_counted(eager, inputs)
    assert len(entries(op, {"tool": "", "query": ""})) == 1  # one plan: the key is read when it runs
    graph = compiled_for(op, {"tool": "calc", "query": ""}).graph
    targets = [n.target for n in walk(graph.nodes) if isinstance(n, OperatorCall)]
    assert targets == [Static("tools['search']"), Static("tools['calc']")]
    with pytest.raises(Exception) as got:  # a key no tool has: the lookup raises, as in eager Python
        op(tool="nope", query="q")
    root = got.value
    while root.__cause__ is not None:
        root = root.__cause__
    assert type(root) is KeyError and root.args == ("nope",)
    with pytest.raises(KeyError):
        eager(tool="nope", query="q")


# ---------------------------------------------------------------------- graph breaks
@pytest.mark.parametrize("program", BROKEN, ids=lambda p: p.name)
def test_graph_break_warns_once_with_code_and_line(program):
    op, eager = jit(program.make(), mode="trace"), program.make()
    line, text = break_line(program)
    inputs = program.inputs[0]
    with pytest.warns(GraphBreakWarning) as caught:
        got = run_counted(op, inputs)
    assert got == run_counted(eager, inputs)  # operators before the break ran exactly once
    message = str(caught[0].message)
    assert len(caught) == 1
    assert f"graph break [{program.breaks}]" in message
    assert f"tests/corpus.py:{line}" in message
    assert text in message
    assert f"tests/corpus.py:{program.make.__qualname__} runs eagerly" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # later calls run eagerly without warning again
        for inputs in program.inputs[1:]:
            assert run_counted(op, inputs) == run_counted(eager, inputs)


def test_branch_on_output_runs_each_operator_once_on_the_first_call():
    op = jit(corpus.BranchOnOutput(), mode="trace")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)  # the branch costs its statement, not the call
        result, calls = run_counted(op, {"query": "a long query"})
    assert result == {"text": "BO-SCORER:A LONG QUERY", "words": ["bo-scorer:a", "long", "query"]}
    assert calls == {"bo-scorer": 1, "bo-high": 1}
    result, calls = run_counted(op, {"query": "ab"})
    assert result == {"text": "<bo-scorer:ab>", "words": ["<bo-scorer:ab>"]}
    assert calls == {"bo-scorer": 1, "bo-low": 1}


def test_jit_function():
    fn = jit(corpus.pipeline, mode="trace")
    assert isinstance(fn, JittedFunction)
    for scheduler in SCHEDULERS:
        with execution_options(scheduler=scheduler):
            for text in ("a", "bcd", "hello world"):
                expected = corpus.pipeline(inputs={"text": text})
                assert run_counted(fn, {"text": text}) == (expected, {"module-shout": 1})
    (entry,) = entries(fn, {"text": ""})
    assert isinstance(entry.plan, Plan)
    assert fn(inputs={"text": "z"}) == fn(text="z") == {"text": "Z", "length": 1}


def test_a_nested_jitted_operator_is_inlined_into_one_flat_graph():
    op = jit(corpus.NestedJit(), mode="trace")
    assert op(query="q") == {"text": "<IN-A:Q>"}
    assert op(query="r") == {"text": "<IN-A:R>"}
    assert entries(op.inner, {"query": ""}) == []  # never called on its own: no plan of its own
    targets = [c.target.path for c in entries(op, {"query": ""})[0].graph.calls]
    assert targets[0].startswith("inner.") and targets[-1] == "after"


# ---------------------------------------------------------------------- lint
def _graph(*middle, output=Ref("inputs")):
    return Graph((Input(), *middle, Output("output", output)))


def test_lint_accepts_a_wellformed_graph():
    ir.lint(_graph(
        OperatorCall("a", Static("a"), (), (("inputs", Ref("inputs")),)),
        Glue("answer", "getitem", (Ref("a"), Const("answer"))),
        Guard("guard", Ref("answer"), "x"),
        output=Ref("answer"),
    ))


@pytest.mark.parametrize(
    "graph, message",
    [
        (Graph(()), "the first node must be the Input"),
        (Graph((Output("output", Const(1)),)), "the first node must be the Input"),
        (Graph((Input(),)), "the last node must be the Output"),
        (Graph((Input(), Glue("x", "list"))), "the last node must be the Output"),
        (_graph(Glue("bad name", "list")), "node name 'bad name' is not an identifier"),
        (_graph(Glue("x", "list"), Glue("x", "tuple")), "duplicate node name 'x'"),
        (_graph(Glue("inputs", "list")), "duplicate node name 'inputs'"),
        (_graph(Input("inputs_1")), "more than one Input"),
        (_graph(Output("early", Const(1))), "more than one Output"),
        (_graph(Glue("x", "launch_missiles")), "x: unknown glue op 'launch_missiles'"),
        (_graph(Glue("x", "getitem", (Ref("y"), Const(0))), Glue("y", "list")), "x uses 'y' before it is defined"),
        (_graph(OperatorCall("a", Static("a"), (Ref("a"),))), "a uses 'a' before it is defined"),
        (_graph(Guard("g", Ref("nope"), 1)), "g uses 'nope' before it is defined"),
        (_graph(output=Ref("missing")), "output uses 'missing' before it is defined"),
    ],
)
def test_lint_rejects_malformed_graphs(graph, message):
    with pytest.raises(LintError, match=re.escape(message)):
        ir.lint(graph)


def test_every_captured_graph_lints():
    for program in COMPILED:
        op = jit(program.make(), mode="trace")
        for inputs in program.inputs:
            op(inputs=dict(inputs))
        for entry in entries(op, program.inputs[0]):
            ir.lint(entry.graph)
            names = [n.name for n in entry.graph.nodes]
            assert len(set(names)) == len(names)
            assert all(n.loc.file == "tests/corpus.py" for n in entry.graph.calls), program.name


def test_every_glue_op_has_one_rule():
    """``ir.GLUE_OPS`` (what lint accepts) and ``glue.RULES`` (what gives glue its meaning) name the same ops."""
    from xcs.compiler.glue import RULES

    assert set(RULES) == ir.GLUE_OPS
