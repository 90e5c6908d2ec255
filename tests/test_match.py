"""``match`` statements on runtime values (issue 13): every pattern kind compiles into branch regions
whose checks are glue over ``xcs.runtime.patterns``, and every call equals eager (outputs, the exception
raised with its message, the operator calls made) in every mode and under every scheduler, including a
subject no case matches. The realistic programs of ``tests/sound/match_style.py`` are checked by the
soundness harness; here is one operator per pattern kind, the proof that none of them leaves an opaque
statement, the shape of a converged case, and a snapshot of a dispatch plan."""

from __future__ import annotations

import enum
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass

import pytest

from corpus import CALLS, Echo
from sound import harness
from xcs import Operator, dump, execution_options, explain, jit
from xcs.compiler import glue, matching
from xcs.compiler.values import instructions
from xcs.runtime import patterns

MODES = ("auto", "enhanced", "structural", "trace")
SCHEDULERS = ("sequential", "parallel", "async", "auto")
pytestmark = pytest.mark.usefixtures("fresh_plans")


class Label(Operator):
    """An operator whose output is the value ``inputs["value"]``: the subject is a runtime value."""

    def forward(self, *, inputs):
        CALLS["label"] = CALLS.get("label", 0) + 1
        return {"value": inputs["value"]}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Verdict:
    label: str
    score: float


@dataclass
class Search:
    query: str


class Plain:
    """No ``__match_args__``: a positional sub-pattern raises TypeError."""

    def __init__(self, x):
        self.x = x


class Base(Operator):
    def __init__(self):
        self.label = Label()
        self.a, self.b, self.c = Echo("a"), Echo("b"), Echo("c")

    def subject(self, inputs):
        return self.label(inputs=inputs)["value"]


class Literals(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case "math":
                out = self.a(query="math")["answer"]
            case None:
                out = "none"
            case True:
                out = "true"
            case 1:
                out = self.b(query="one")["answer"]
            case -2.5 | b"raw":
                out = "number or bytes"
            case _:
                out = self.c(query="other")["answer"]
        return {"out": out}


class Captures(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case 0:
                return {"out": "zero"}
            case n if isinstance(n, int) and n > 10:
                return {"out": self.a(query=n)["answer"]}
            case other:
                return {"out": self.b(query=repr(other))["answer"]}


class Values(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case Color.RED:
                out = self.a(query="red")["answer"]
            case Color.BLUE.value:
                out = "blue"
            case _:
                out = "no colour"
        return {"out": out}


class Sequences(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case []:
                out = "empty"
            case [x]:
                out = self.a(query=x)["answer"]
            case [1, y]:
                out = f"one then {y}"
            case (x, y, z):
                out = self.b(query=f"{x}{y}{z}")["answer"]
            case [first, *middle, last]:
                out = {"first": first, "middle": middle, "last": last}
            case _:
                out = "not a sequence"
        return {"out": out}


class Mappings(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case {"tool": "search", "query": q}:
                out = self.a(query=q)["answer"]
            case {"tool": "calc", "args": {"expr": e}, **rest}:
                out = {"calc": self.b(query=e)["answer"], "rest": rest}
            case {"final": answer}:
                out = answer
            case {}:
                out = "some other mapping"
            case _:
                out = "not a mapping"
        return {"out": out}


class Classes(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case Verdict("good", score):
                out = self.a(query=score)["answer"]
            case Verdict(label=label, score=s) if s < 0.5:
                out = f"weak {label}"
            case Search(query=q):
                out = self.b(query=q)["answer"]
            case str(text):
                out = self.c(query=text)["answer"]
            case int() | float():
                out = "number"
            case Plain(x):
                out = x
            case _:
                out = "unknown"
        return {"out": out}


class OrAndAs(Base):
    def forward(self, *, inputs):
        match self.subject(inputs):
            case ("yes" | "y") as word:
                out = self.a(query=word)["answer"]
            case {"v": v} | [v] | (_, v, _):
                out = self.b(query=v)["answer"]
            case ([1, _] as pair) | {"pair": pair}:
                out = pair
            case _:
                out = "none"
        return {"out": out}


class Guards(Base):
    """A guard that calls an operator: the judge runs only when the pattern matched."""

    def forward(self, *, inputs):
        match self.subject(inputs):
            case {"score": s} if s > self.a(query=s)["score"]:
                return {"out": self.b(query="high")["answer"]}
            case {"score": s} if s > 0:
                return {"out": "low"}
            case _:
                return {"out": "no score"}


class Raises(Base):
    """No case matches: the default raises, as eager does."""

    def forward(self, *, inputs):
        action = self.subject(inputs)
        match action:
            case {"tool": "search", "query": q}:
                result = self.a(query=q)["answer"]
            case _:
                raise ValueError(f"unknown action {action!r}")
        return {"out": result}


class NoMatch(Base):
    """No case matches and nothing is bound: what comes after the match still runs."""

    def forward(self, *, inputs):
        out = "default"
        match self.subject(inputs):
            case {"x": x}:
                out = x
            case [_, _]:
                out = "pair"
        return {"out": out, "after": self.c(query=str(out))["answer"]}


class InputSubject(Operator):
    """The subject is an input; the matched class is held by the operator."""

    def __init__(self):
        self.a = Echo("a")
        self.kind = Verdict

    def forward(self, *, inputs):
        match inputs["doc"]:
            case {"title": str(title), "tags": [*tags]}:
                return {"out": self.a(query=f"{title}:{len(tags)}")["answer"]}
            case {"title": title}:
                return {"out": f"untagged {title}"}
        return {"out": None}


class PerElement(Base):
    """A match inside a map region: each element dispatches on its own; elements stay concurrent."""

    def route(self, item):
        match item:
            case {"kind": "a", "text": text}:
                return self.a(query=text)["answer"]
            case {"kind": "b", "text": text}:
                return self.b(query=text)["answer"]
            case _:
                return "skip"

    def forward(self, *, inputs):
        return {"out": [self.route(item) for item in self.subject(inputs)]}


class Nested(Base):
    """A match inside a case's body, a guard on a name the outer pattern bound."""

    def forward(self, *, inputs):
        match self.subject(inputs):
            case {"kind": kind, "body": body}:
                match body:
                    case [x, *_] if kind == "list":
                        out = self.a(query=x)["answer"]
                    case {"q": q}:
                        out = self.b(query=q)["answer"]
                    case _:
                        out = "inner default"
            case _:
                out = "outer default"
        return {"out": out}


class TupleSubject(Base):
    """A tuple display of runtime values as the subject (its length is known: only items are tested)."""

    def forward(self, *, inputs):
        label = self.subject(inputs)
        confident = self.a(query=str(label))["score"] > 0.4
        match (label, confident):
            case ("math", True):
                return {"out": self.b(query="m")["answer"]}
            case (_, False):
                return {"out": "unsure"}
            case (other, _):
                return {"out": other}


class OddKeys(Base):
    """Keys that are not strings, a value pattern as a key, ``**rest`` under a guard, builtins' self-match."""

    def forward(self, *, inputs):
        match self.subject(inputs):
            case {1: x, Color.RED.value: y}:
                return {"out": (x, y)}
            case {"a": _, **rest} if rest:
                return {"out": rest}
            case int(i) | float(i) if i > 1:
                return {"out": i}
            case bool(b):
                return {"out": b}
        return {"out": None}


class ComprehensionGuard(Base):
    """A guard holding a comprehension (inlined on 3.12+, with its own exception handler)."""

    def forward(self, *, inputs):
        match self.subject(inputs):
            case {"items": items} if any([i > 2 for i in items]):
                return {"out": self.a(query="big")["answer"]}
            case {"items": [first, *_]}:
                return {"out": first}
            case _:
                return {"out": None}


VERDICTS = [Verdict("good", 0.9), Verdict("bad", 0.2), Verdict("bad", 0.7)]
CASES = {
    Literals: ["math", None, True, 1, 1.0, False, 0, -2.5, b"raw", "raw", "MATH"],
    Captures: [0, 11, 10, "x", None, False, 0.0],
    Values: [Color.RED, "blue", Color.BLUE, "red"],
    Sequences: [[], ["q"], [1, 2], (3, 4, 5), [1, 2, 3, 4], "ab", "a", b"xy", {"a": 1}, 5, deque([1, 2]), range(3)],
    Mappings: [
        {"tool": "search", "query": "mars"}, {"tool": "search"}, {"tool": "calc", "args": {"expr": "1+1"}, "id": 3},
        {"tool": "calc", "args": "1+1"}, {"final": "42"}, {}, OrderedDict(final="x"), ["final"], "final",
    ],
    Classes: [*VERDICTS, Search("q"), "text", 3, 2.5, True, Plain(1), None],
    OrAndAs: ["yes", "y", {"v": "x"}, ["w"], (1, "mid", 3), [1, 2], {"pair": "p"}, [1, 2, 3], "no"],
    Guards: [{"score": 5}, {"score": 0.1}, {"score": -1}, {}, []],
    Raises: [{"tool": "search", "query": "q"}, {"tool": "other"}, "text"],
    NoMatch: [{"x": 1}, [1, 2], [1], "xy"],
    PerElement: [[{"kind": "a", "text": "t1"}, {"kind": "b", "text": "t2"}, {"kind": "c"}, "s"], []],
    Nested: [{"kind": "list", "body": [1, 2]}, {"kind": "x", "body": [1]}, {"kind": "x", "body": {"q": "w"}}, {"kind": 1}, 3],
    TupleSubject: ["math", "mathematics", "x", None],
    ComprehensionGuard: [{"items": [1, 5]}, {"items": [1]}, {"items": []}, "x"],
    OddKeys: [{1: "one", "red": "r"}, {1: "one"}, {"a": 1, "b": 2}, {"a": 1}, 5, 0.5, True, False, "s"],
}
NAMES = {kind.__name__: kind for kind in CASES}


def outcome(op, inputs):
    """What a call returns or raises (the user's exception, with its message) and its calls."""
    CALLS.clear()
    try:
        value = ("returned", op(inputs=dict(inputs)))
    except Exception as exc:  # noqa: BLE001 - the outcome is the exception and its message
        root = harness.root_error(exc)
        value = ("raised", type(root).__name__, str(root))
    return value, dict(CALLS)


def inputs_of(kind):
    if kind is InputSubject:
        return [{"doc": {"title": "t", "tags": ["a", "b"]}}, {"doc": {"title": 3, "tags": []}}, {"doc": {"title": "u"}},
                {"doc": {"name": "n"}}]
    return [{"value": value} for value in CASES[kind]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [*NAMES, "InputSubject"])
def test_every_pattern_kind_equals_eager(name, mode):
    kind = NAMES.get(name, InputSubject)
    for scheduler in SCHEDULERS:
        eager, jitted = kind(), jit(kind(), mode=mode)
        with warnings.catch_warnings(), execution_options(scheduler=scheduler):
            warnings.simplefilter("ignore")
            for inputs in inputs_of(kind):
                assert outcome(jitted, inputs) == outcome(eager, inputs), (mode, scheduler, inputs)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "Raises"] + ["InputSubject"])
def test_no_match_statement_is_left_opaque(name):
    """Every pattern kind is captured: no statement runs as written, no graph break."""
    kind = NAMES.get(name, InputSubject)
    for mode in ("structural", "enhanced", "auto"):
        text = str(explain(jit(kind(), mode=mode), inputs_of(kind)[0]))
        assert "opaque statements" not in text and "breaks: none" in text, (mode, text)
        assert "branch region" in text or "map region" in text, text


def test_a_raising_default_case_is_the_only_opaque_statement():
    """``raise`` in a case is not a region (a statement run as written, by its stable code)."""
    text = str(explain(jit(Raises(), mode="structural"), {"value": {"tool": "search", "query": "q"}}))
    assert "[raise]" in text and "match statement" not in text


def test_the_plan_evaluates_each_check_once_and_the_subject_once():
    text = dump(jit(Mappings(), mode="structural"), {"value": {"final": "x"}})
    assert "patterns.is_mapping(" in text and "patterns.match_keys(" in text and "patterns.match_rest(" in text
    assert "import xcs.runtime.patterns as patterns" in text


def test_each_case_joins_at_a_flag():
    """A case's failing checks and its success meet at one flag: a match of n cases is n branches deep,
    not one copy of the later cases per check."""
    ops = [i.op for i in instructions(Mappings.forward.__code__)]
    assert ops.count("MATCH_KEYS") == 4 and ops.count("MATCH_REST") == 1 and "DELETE_SUBSCR" not in ops
    flags = [i for i, op in enumerate(ops) if op == "LOAD_CONST" and instructions(Mappings.forward.__code__)[i].arg is False]
    assert len(flags) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_every_refutable_case_joins_at_its_flag(name):
    """On every version, each case with a check gets its flag (none is left as plain branches)."""
    for code in (NAMES[name].forward.__code__, getattr(NAMES[name], "route", Base.subject).__code__):
        ins = instructions(code)
        flags = [i for i, x in enumerate(ins) if x.op == "LOAD_CONST" and x.arg is False and ins[i + 1].op == "JUMP"]
        tested = [c for c in matching._cases(code) if any(_in_case(x, c) for x in ins if x.op == "JUMP_IF")]
        assert len(flags) == len(tested), (name, code.co_name)


def _in_case(x, case) -> bool:
    return x.line is not None and any((s[0], s[1]) <= (x.line, x.col) < (s[2], s[3]) for s in case.spans)


def test_a_known_subject_folds():
    class Known(Operator):
        def __init__(self):
            self.a, self.mode = Echo("a"), "fast"

        def forward(self, *, inputs):
            match self.mode:
                case "fast":
                    return self.a(query=inputs["q"])
                case _:
                    return {"answer": None}

    text = dump(jit(Known(), mode="structural"), {"q": "x"})
    assert "if " not in text and "patterns" not in text


def test_the_pattern_functions_are_the_opcodes():
    """``xcs.runtime.patterns`` agrees with a real ``match`` on the corner cases (flags, not ABCs;
    ``get`` for keys; ``__match_args__``; ``str`` is no sequence)."""
    assert [patterns.is_sequence(v) for v in ("s", b"b", bytearray(), [], (), range(1), deque())] == [False] * 3 + [True] * 4
    assert [patterns.is_mapping(v) for v in ({}, OrderedDict(), [], "x")] == [True, True, False, False]
    assert patterns.match_keys({"a": None}, ("a",)) == (None,) and patterns.match_keys({}, ("a",)) is None
    with pytest.raises(ValueError, match="duplicate key"):
        patterns.match_keys({"a": 1}, ("a", "a"))
    assert patterns.match_class(Verdict("x", 1), Verdict, 2, ()) == ("x", 1)
    assert patterns.match_class(True, int, 1, ()) == (True,)
    with pytest.raises(TypeError, match="accepts 0 positional sub-patterns"):
        patterns.match_class(Plain(1), Plain, 1, ())
    assert patterns.unpack([1, 2, 3, 4], 1, 2) == (1, [2], 3, 4)
    assert patterns.match_rest({"a": 1, "b": 2}, ("a",)) == {"b": 2}
    assert set(glue.MATCH_FUNCTIONS) <= set(glue.RULES)


@pytest.mark.parametrize("name", ["Mappings"])
def test_match_plan_snapshot(name, plan_snapshot):
    assert dump(jit(NAMES[name]()), {"value": {"final": "x"}}) == plan_snapshot


class KeptWhenUnassigned(Base):
    """A statement run as written that may leave a name as it was (found by ``NoMatch`` in trace mode)."""

    def forward(self, *, inputs):
        out = "default"
        if self.subject(inputs) == 3:
            out = "three"
        return {"out": out}


@pytest.mark.parametrize("mode", MODES)
def test_a_statement_run_as_written_keeps_a_name_it_does_not_assign(mode):
    eager, jitted = KeptWhenUnassigned(), jit(KeptWhenUnassigned(), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value in (1, 3, 1):
            assert outcome(jitted, {"value": value}) == outcome(eager, {"value": value}), (mode, value)
