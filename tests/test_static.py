"""Static capture (``structural``, ``enhanced``, ``auto``): nothing runs while capturing, plans are
correct for every input of a signature, loops over runtime sequences are map regions and decisions on
runtime values are branch regions."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

import corpus
from corpus import entries, run_counted
from xcs.compiler.capture import capture
from xcs.compiler.oracle import interpret
from xcs import GraphBreakWarning, JitError, Operator, dump, execution_options, jit
from xcs.compiler.driver import PLANS
from xcs.operator import is_operator

pytestmark = pytest.mark.usefixtures("fresh_plans")
SCHEDULERS = ("sequential", "topological", "wave", "parallel")
# The statements the static capture runs as written (one opaque step each), and the programs it cannot
# compile at all (auto then traces them).
STATIC_OPAQUE: dict[str, str] = {}
STATIC_BREAKS = {"global_try": "unsupported-bytecode"}
STATIC = [p for p in corpus.PROGRAMS if p.name not in STATIC_BREAKS]


@pytest.mark.parametrize("mode", ["structural", "enhanced"])
@pytest.mark.parametrize("program", corpus.PROGRAMS, ids=lambda p: p.name)
def test_static_capture_runs_nothing_and_breaks_with_stable_codes(program, mode):
    op = program.make()
    forward = getattr(op, "fn", None) or op.forward
    corpus.CALLS.clear()
    cap = capture(op, forward, program.inputs[0], mode=mode, name=program.name, is_operator=is_operator, run=False)
    assert sum(corpus.CALLS.values()) == 0
    if program.name in STATIC_BREAKS:
        assert [b.code for _, b in cap.breaks] == [STATIC_BREAKS[program.name]]
        assert cap.breaks[0][1].loc.file == "tests/corpus.py"
    else:
        assert cap.strategy == mode and cap.breaks == []
        assert {b.code for b in cap.opaque} == ({STATIC_OPAQUE[program.name]} if program.name in STATIC_OPAQUE else set())
        assert all(b.loc.file == "tests/corpus.py" and b.hint for b in cap.opaque)
        for inputs in program.inputs:  # the IR oracle agrees with eager on every input
            assert interpret(cap.graph, op, inputs) == program.make().forward(inputs=inputs)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("mode", ["structural", "auto"])
@pytest.mark.parametrize("program", STATIC, ids=lambda p: p.name)
def test_one_plan_serves_every_input_of_a_signature(program, mode, scheduler):
    eager, jitted = program.make(), jit(program.make(), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            for inputs in [*program.inputs, *reversed(program.inputs)]:
                expected, expected_calls = run_counted(eager, inputs)
                got, got_calls = run_counted(jitted, inputs)
                assert got == expected, inputs
                assert got_calls == expected_calls, inputs
    (entry,) = entries(jitted, program.inputs[0])  # no guard on the inputs, no recapture
    guard = entry.source.partition("def guard(ops, inputs):")[2].partition("\n\n")[0]
    assert entry.plan.guard is None or "inputs" not in guard  # a static plan guards held state only
    assert f"strategy: {'enhanced' if mode == 'auto' else mode}" in entry.source


@pytest.mark.parametrize(
    "program", [p for p in corpus.PROGRAMS if p.name in STATIC_BREAKS or p.name in STATIC_OPAQUE], ids=lambda p: p.name
)
def test_a_break_costs_its_statement_or_falls_back_and_strict_raises(program, monkeypatch, tmp_path):
    eager = program.make()
    jitted = jit(program.make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        for inputs in program.inputs:
            assert run_counted(jitted, inputs) == run_counted(eager, inputs)
    code = STATIC_BREAKS.get(program.name) or STATIC_OPAQUE[program.name]
    PLANS.clear()
    monkeypatch.setenv("XCS_CACHE_DIR", str(tmp_path))  # no plan from the disk either: capture again
    with pytest.raises(JitError, match=rf"\(strict=True\): the enhanced capture breaks: .*\[{code}\]"):
        jit(program.make(), strict=True)(inputs=dict(program.inputs[0]))


class InFlight:
    """How many ``Slow`` calls run at once, and the most seen at once since ``reset``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def reset(self):
        with self.lock:
            self.active = self.peak = 0

    def __enter__(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def __exit__(self, *exc):
        with self.lock:
            self.active -= 1


IN_FLIGHT = InFlight()


class Slow(Operator):
    def __init__(self, name, delay=0.05):
        self.name, self.delay = name, delay

    def forward(self, *, inputs):
        with IN_FLIGHT:
            time.sleep(self.delay)
        corpus.count(self.name)
        return {"text": f"{self.name}({inputs['text']})"}


class FanOut(Operator):
    """A map region over a runtime list of documents, then a synthesis."""

    def __init__(self):
        self.answer = Slow("answer")
        self.join = corpus.Upper("join")

    def forward(self, *, inputs):
        answers = [self.answer(text=doc)["text"] for doc in inputs["docs"]]
        return self.join(text=" | ".join(answers))


def test_a_map_region_runs_elements_concurrently_without_recompiling():
    op = jit(FanOut(), mode="structural")
    for n in (3, 8, 1, 0):
        docs = [f"d{i}" for i in range(n)]
        expected = FanOut()(docs=docs)
        IN_FLIGHT.reset()
        with execution_options(scheduler="parallel", max_workers=8):
            assert op(docs=docs) == expected
        if n == 8:  # concurrent, not one after another: a second element started before the first ended
            assert IN_FLIGHT.peak >= 2, IN_FLIGHT.peak
    (entry,) = entries(op, {"docs": []})
    assert "map_each(" in entry.source and entry.plan.guard is None


class Verify(Operator):
    """answer -> verify -> revise only when the verifier rejects; an independent step beside it."""

    def __init__(self):
        self.answer = corpus.Echo("v-answer")
        self.check = corpus.Add("v-check", 0)
        self.revise = corpus.Upper("v-revise")
        self.side = Slow("v-side", 0.2)

    def forward(self, *, inputs):
        a = self.answer(query=inputs["query"])
        side = self.side(text=inputs["query"])
        if a["score"] > 0.3:
            final = self.revise(text=a["answer"])["text"]
        else:
            final = a["answer"]
        return {"final": final, "side": side["text"]}


def test_a_branch_runs_only_the_taken_side_and_holds_back_nothing_else():
    op = jit(Verify(), mode="structural")
    for query in ("long query here", "hi"):
        expected, expected_calls = run_counted(Verify(), {"query": query})
        with execution_options(scheduler="parallel"):
            got, calls = run_counted(op, {"query": query})
        assert got == expected and calls == expected_calls
    assert calls.get("v-revise") is None  # "hi" scores low: the revise side never ran
    source = entries(op, {"query": ""})[0].source
    assert "def branch(ops, inputs, answer):" in source  # the branch waits for its condition only


class Doubler(Operator):
    deterministic = True

    def forward(self, *, inputs):
        corpus.count("doubler")
        return {"v": inputs["v"] * 2}


class Twice(Operator):
    def __init__(self):
        self.double = Doubler()
        self.sample = corpus.Add("sampler", 1)

    def forward(self, *, inputs):
        a = self.double(v=inputs["v"])
        b = self.double(v=inputs["v"])
        c = self.sample(x=inputs["v"])
        d = self.sample(x=inputs["v"])
        unused = inputs["v"] + 100  # noqa: F841 (dead glue)
        return {"sum": a["v"] + b["v"], "samples": [c["y"], d["y"]], "k": 2 * 3}


def test_enhanced_passes_merge_only_deterministic_calls_and_drop_dead_glue():
    op = jit(Twice(), mode="enhanced")
    assert run_counted(op, {"v": 5}) == ({"sum": 20, "samples": [6, 6], "k": 6}, {"doubler": 1, "sampler": 2})
    (entry,) = entries(op, {"v": 0})
    summaries = {a.name: a.summary for a in entry.applied}
    assert summaries["merge_identical_calls"] == "merged 1 call(s) of deterministic operators: b -> a"
    assert summaries["eliminate_dead_glue"].startswith("dropped ")
    assert "100" not in entry.source
    structural = jit(Twice(), mode="structural")
    assert run_counted(structural, {"v": 5})[1] == {"doubler": 2, "sampler": 2}


def test_sample_input_compiles_at_decoration_and_runs_nothing():
    corpus.CALLS.clear()

    @jit(mode="structural", sample_input={"docs": ["a"]})
    class Precompiled(FanOut):
        pass

    op = Precompiled()
    assert corpus.CALLS == {}
    assert "strategy: structural" in dump(op, {"docs": ["x", "y"]})
    assert corpus.CALLS == {}
    assert op(docs=["x"]) == FanOut()(docs=["x"])


def test_racing_first_calls_of_a_static_plan_compile_once():
    op = jit(FanOut(), mode="structural")
    barrier = threading.Barrier(6)
    results = []

    def call(i):
        barrier.wait()
        results.append(op(docs=[f"t{i}"]))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len(entries(op, {"docs": []})) == 1


class Hoisted(Operator):
    """One input-only computation read by two steps and by a map region: computed once."""

    def __init__(self):
        self.first = corpus.Upper("h-first")
        self.second = corpus.Upper("h-second")
        self.each = corpus.Upper("h-each")

    def forward(self, *, inputs):
        prompt = f"Q: {inputs['q'].strip()}"
        x = self.first(text=prompt)
        y = self.second(text=prompt + "!")
        outs = [self.each(text=prompt + d)["text"] for d in inputs["docs"]]
        return {"x": x["text"], "y": y["text"], "outs": outs}


def code_lines(source, text):
    """The generated lines (not comments, not the Step table's source column) that contain ``text``."""
    return [line for line in source.splitlines() if text in line and not line.lstrip().startswith(("#", "Step("))]


def test_hoisting_computes_input_only_glue_once_under_the_users_name():
    op = jit(Hoisted())
    for inputs in ({"q": " hi ", "docs": ["1", "2"]}, {"q": "x", "docs": []}):
        assert op(inputs=inputs) == Hoisted()(inputs=inputs)
    (entry,) = entries(op, {"q": "", "docs": []})
    summaries = {a.name: a.summary for a in entry.applied}
    assert summaries["hoist_input_glue"] == "hoisted 1 input-only computation(s): prompt"
    assert len(code_lines(entry.source, ".strip()")) == 2  # its step function and the straight-line run
    assert "def x(ops, inputs, prompt):" in entry.source
    structural = jit(Hoisted(), mode="structural")
    structural(q="a", docs=["b"])
    assert len(code_lines(entries(structural, {"q": "", "docs": []})[0].source, ".strip()")) > 2  # inline
