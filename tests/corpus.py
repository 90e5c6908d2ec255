"""A corpus of small compound-AI programs for the trace tests.

Each program is an ``Operator`` subclass (never decorated with ``@jit``: tests apply ``jit`` to
instances or subclasses) plus the inputs to run it on. ``PROGRAMS`` lists them as ``Program`` records:
how to build a fresh root operator, several input dicts with different values, and the graph-break
code the capture must report (``None``: the capture compiles a plan).

Leaf operators count their calls in ``CALLS`` (keyed by their ``name``), so tests can check that a
jitted program calls every operator exactly as often as the eager program does.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from xcs import Operator, jit

CALLS: Counter = Counter()
_CALLS_LOCK = threading.Lock()


def count(name: str) -> None:
    """Record one call of the leaf operator ``name`` (steps may run on pool threads)."""
    with _CALLS_LOCK:
        CALLS[name] += 1


# ---------------------------------------------------------------------- leaf operators
class Echo(Operator):
    """Answers ``name:query`` and scores the query by its length."""

    def __init__(self, name: str):
        self.name = name

    def forward(self, *, inputs):
        count(self.name)
        query = str(inputs["query"])
        return {"answer": f"{self.name}:{query}", "score": len(query) / 10}


class Upper(Operator):
    """Upper-cases ``text``."""

    def __init__(self, name: str = "upper"):
        self.name = name

    def forward(self, *, inputs):
        count(self.name)
        return {"text": str(inputs["text"]).upper()}


class Wrap(Operator):
    """Wraps ``text`` in the operator's brackets."""

    def __init__(self, name: str, left: str = "<", right: str = ">"):
        self.name = name
        self.left = left
        self.right = right

    def forward(self, *, inputs):
        count(self.name)
        return {"text": f"{self.left}{inputs['text']}{self.right}"}


class Judge(Operator):
    """Joins ``answers`` with `` | ``."""

    def __init__(self, name: str = "judge"):
        self.name = name

    def forward(self, *, inputs):
        count(self.name)
        return {"final": " | ".join(inputs["answers"]), "query": inputs.get("query")}


class Add(Operator):
    """Adds ``x`` and the operator's ``k``."""

    def __init__(self, name: str, k: int):
        self.name = name
        self.k = k

    def forward(self, *, inputs):
        count(self.name)
        return {"y": inputs["x"] + self.k}


# ---------------------------------------------------------------------- module-level helpers
def make_prompt(query, style):
    """A module-level pure helper: forward calls it and the trace inlines it."""
    return f"[{style}] {query.strip()}"


def score_text(text, weight=2):
    """A module-level helper with a default argument."""
    return len(text) * weight + 1


SHOUT = Upper("module-shout")  # a module-level operator instance called from forward


class Note:
    """A user class: instantiating it inside forward is an unknown call."""

    def __init__(self, text):
        self.text = text


# ---------------------------------------------------------------------- programs
class Ensemble(Operator):
    """Members answer the same query (list comprehension over static members); a judge joins them."""

    def __init__(self, n: int = 3):
        self.members = [Echo(f"m{i}") for i in range(n)]
        self.judge = Judge()

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return self.judge(inputs={"query": inputs["query"], "answers": answers})


class Chain(Operator):
    """a -> b -> c: each step feeds the next."""

    def __init__(self):
        self.a = Wrap("a", "(", ")")
        self.b = Upper("b")
        self.c = Wrap("c", "[", "]")

    def forward(self, *, inputs):
        x = self.a(inputs={"text": inputs["text"]})
        y = self.b(inputs={"text": x["text"]})
        return self.c(inputs={"text": y["text"]})


class LoopAppend(Operator):
    """A for-loop over static members appends into a local list."""

    def __init__(self):
        self.members = [Echo("la0"), Echo("la1"), Echo("la2")]

    def forward(self, *, inputs):
        out = []
        for member in self.members:
            result = member(inputs=inputs)
            out.append(result["answer"])
        total = 0
        for member in self.members[:2]:
            total = total + 1
        return {"answers": out, "count": len(out), "total": total}


class ToolDict(Operator):
    """A dict of tools: one picked by a literal key, then all of them via ``.items()``."""

    def __init__(self):
        self.tools = {"search": Echo("search"), "calc": Echo("calc"), "wiki": Echo("wiki")}

    def forward(self, *, inputs):
        first = self.tools["search"](query=inputs["query"])
        results = {}
        for name, tool in self.tools.items():
            results[name] = tool(query=first["answer"])["answer"]
        names = list(self.tools)
        return {"first": first["answer"], "results": results, "names": names}


class ZipEnumerate(Operator):
    """zip, enumerate and range(len(...)) over static lists of operators and weights."""

    def __init__(self):
        self.members = [Echo("z0"), Echo("z1")]
        self.weights = [3, 5]

    def forward(self, *, inputs):
        weighted = []
        for member, weight in zip(self.members, self.weights):
            weighted.append((member(inputs=inputs)["score"] * weight))
        labelled = [f"{i}:{m(inputs=inputs)['answer']}" for i, m in enumerate(self.members, 1)]
        indexed = {}
        for i in range(len(self.members)):
            indexed[i] = self.members[i](query=inputs["query"] + "!")["answer"]
        return {"weighted": weighted, "labelled": labelled, "indexed": indexed}


class FStrings(Operator):
    """f-strings with conversions and format specs over inputs and outputs."""

    def __init__(self):
        self.echo = Echo("fs")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        n = inputs["n"]
        text = f"{r['answer']!r:>20}|{n:05.2f}|{n!s}|{inputs['query']!a}|{r['score']:.1%}"
        width = inputs["width"]
        nested = f"{r['answer']:{width}}|{n:>{width}.1f}"
        plain = f"q={inputs['query']} n={n}"
        return {"text": text, "nested": nested, "plain": plain, "braces": f"{{{n}}}"}


class Arithmetic(Operator):
    """Arithmetic and comparisons in the glue (values, not branches)."""

    def __init__(self):
        self.inc = Add("inc", 3)
        self.dbl = Add("dbl", 10)

    def forward(self, *, inputs):
        x = inputs["x"]
        a = self.inc(x=x * 2 + 1)["y"]
        b = self.dbl(x=(a - x) // 2 % 7)["y"]
        return {
            "sum": a + b, "ratio": a / (b + 1), "pow": (x % 5) ** 2, "neg": -a, "inv": ~b,
            "lt": a < b, "eq": a == b, "ge": x >= 0, "ne": a != x, "in": x in (1, 2, 3),
            "shift": (b << 1) | (a & 7), "chained": 0 <= x < 100, "notx": not x,
        }


class PureBuiltins(Operator):
    """Pure builtins and methods: len, sorted, min, max, str.join, str.upper, dict.get."""

    def __init__(self):
        self.members = [Echo("pb0"), Echo("pb1"), Echo("pb2")]

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        words = inputs["query"].split()
        return {
            "n": len(answers), "sorted": sorted(answers, reverse=True), "lo": min(answers),
            "hi": max(answers), "longest": max([len(a) for a in answers]),
            "joined": ", ".join(answers).upper(), "mode": inputs.get("mode", "default"),
            "words": len(words), "abs": abs(-len(inputs["query"])), "rounded": round(len(answers[0]) / 3, 2),
            "sum": sum([len(a) for a in answers]), "title": answers[0].title().replace(":", "="),
        }


class TupleUnpack(Operator):
    """Tuple unpacking of static pairs and of operator results."""

    def __init__(self):
        self.pair = (Echo("tu0"), Echo("tu1"))

    def forward(self, *, inputs):
        left, right = self.pair
        a, b = left(inputs=inputs), right(inputs=inputs)
        x, y = a["answer"], b["answer"]
        (p, q), r = (x, y), a["score"]
        return {"x": x, "swap": (q, p), "r": r}


class NestedBuild(Operator):
    """Nested dicts and lists built from inputs and outputs."""

    def __init__(self):
        self.first = Echo("nb0")
        self.second = Echo("nb1")

    def forward(self, *, inputs):
        a = self.first(inputs=inputs)
        b = self.second(query=a["answer"])
        report = {
            "meta": {"query": inputs["query"], "steps": [a["answer"], b["answer"]]},
            "scores": [[a["score"]], [b["score"], a["score"] + b["score"]]],
            "pairs": [(k, v) for k, v in [("a", a["answer"]), ("b", b["answer"])]],
        }
        report["meta"]["last"] = b["answer"]
        return report


class KwargsSpread(Operator):
    """``**inputs`` into a call and ``{**inputs, 'k': v}`` merges."""

    def __init__(self):
        self.echo = Echo("ks")
        self.judge = Judge("ks-judge")

    def forward(self, *, inputs):
        a = self.echo(**inputs)
        merged = {**inputs, "answers": [a["answer"], inputs["query"]]}
        return self.judge(inputs=merged)


class ModuleHelper(Operator):
    """A module-level helper function called from forward is inlined into the graph."""

    def __init__(self):
        self.echo = Echo("mh")

    def forward(self, *, inputs):
        prompt = make_prompt(inputs["query"], style="terse")
        r = self.echo(query=prompt)
        return {"answer": r["answer"], "score": score_text(r["answer"]), "s3": score_text(prompt, 3)}


class HelperMethod(Operator):
    """A helper method on the operator builds the prompt; another one post-processes."""

    def __init__(self):
        self.echo = Echo("hm")
        self.style = "polite"

    def prompt(self, query):
        return f"{self.style}: {query}"

    def finish(self, result, *, suffix="."):
        return result["answer"] + suffix

    def forward(self, *, inputs):
        r = self.echo(query=self.prompt(inputs["query"]))
        return {"text": self.finish(r), "bang": self.finish(r, suffix="!")}


class GlobalOperator(Operator):
    """Calls a module-level operator instance from forward."""

    def __init__(self):
        self.echo = Echo("go")

    def forward(self, *, inputs):
        r = self.echo(inputs=inputs)
        return {"text": SHOUT(text=r["answer"])["text"]}


class BranchOnInput(Operator):
    """A branch on an input value: a guard; the other branch re-captures."""

    def __init__(self):
        self.short = Wrap("short", "<", ">")
        self.long = Echo("long")

    def forward(self, *, inputs):
        if inputs["mode"] == "short":
            text = self.short(text=inputs["query"])["text"]
        else:
            text = self.long(query=inputs["query"])["answer"]
        suffix = "!" if inputs["loud"] else "."
        return {"text": text + suffix}


class IterateInput(Operator):
    """Iterates over an input list: guarded on its length."""

    def __init__(self):
        self.echo = Echo("ii")

    def forward(self, *, inputs):
        results = []
        for q in inputs["queries"]:
            results.append(self.echo(query=q)["answer"])
        return {"results": results, "n": len(inputs["queries"])}


class SelectTool(Operator):
    """Selects a tool by an input key: one plan switches between the tools when it runs."""

    def __init__(self):
        self.tools = {"search": Echo("st-search"), "calc": Echo("st-calc")}

    def forward(self, *, inputs):
        tool = self.tools[inputs["tool"]]
        return {"answer": tool(query=inputs["query"])["answer"]}


class BranchOnOutput(Operator):
    """A branch on an operator's output: that statement runs natively ('branch-on-output'), and the
    statement after it too (it iterates over the output)."""

    def __init__(self):
        self.scorer = Echo("bo-scorer")
        self.high = Upper("bo-high")
        self.low = Wrap("bo-low")

    def forward(self, *, inputs):
        r = self.scorer(inputs=inputs)
        if r["score"] > 0.3:  # graph break
            picked = self.high(text=r["answer"])["text"]
        else:
            picked = self.low(text=r["answer"])["text"]
        words = [w.lower() for w in picked.split()]  # iterates over an output: runs natively
        return {"text": picked, "words": words}


class TryExcept(Operator):
    """try/except: natively under the trace ('unsupported-bytecode'), a try region when static."""

    def __init__(self):
        self.echo = Echo("te")

    def forward(self, *, inputs):
        try:  # graph break
            r = self.echo(inputs=inputs)
        except KeyError:
            r = {"answer": "missing"}
        return {"answer": r["answer"]}


SEEN: list = []


class GlobalTry(Operator):
    """A forward that declares a global: its statements cannot run on their own, so a construct the
    capture does not model (try) makes the whole call eager, a graph break ('unsupported-bytecode')."""

    def __init__(self):
        self.echo = Echo("gt")

    def forward(self, *, inputs):
        global SEEN
        r = self.echo(inputs=inputs)
        try:  # graph break
            SEEN = SEEN[-3:] + [r["answer"]]
        except TypeError:
            SEEN = []
        return {"answer": r["answer"]}


class RandomCall(Operator):
    """An impure call (random.random) is a step of its own; the chained comparison on its result is a
    decision on a runtime value: a graph break ('branch-on-output')."""

    def __init__(self):
        self.echo = Echo("rc")

    def forward(self, *, inputs):
        r = self.echo(inputs=inputs)
        jitter = random.random()  # an effect step
        return {"answer": r["answer"], "jitter": 0.0 <= jitter < 1.0}  # graph break


class UserClass(Operator):
    """Instantiating a user class in forward: an opaque call, a step of the plan."""

    def __init__(self):
        self.echo = Echo("uc")

    def forward(self, *, inputs):
        r = self.echo(inputs=inputs)
        note = Note(r["answer"])  # an opaque step
        return {"answer": note.text}


class LambdaKey(Operator):
    """A lambda passed to sorted(): its body is captured as glue on its parameter and the plan writes
    it as a lambda (a lambda that calls an operator would be 'unrenderable-value')."""

    def __init__(self):
        self.members = [Echo("lk0"), Echo("lk-1")]

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        ranked = sorted(answers, key=lambda a: -len(a))
        return {"ranked": ranked, "best": self.members[0](query=ranked[0])["answer"]}


class SetArgument(Operator):
    """A set literal passed to an operator: rebuilt from its items in a stable order (sorted by repr)."""

    def __init__(self):
        self.echo = Echo("sa")

    def forward(self, *, inputs):
        first = self.echo(inputs=inputs)
        second = self.echo(query=first["answer"], tags={"b", "a"})
        return {"answer": second["answer"]}


class Inner(Operator):
    """A two-step sub-operator (``NestedJit`` holds a jitted instance of it)."""

    def __init__(self):
        self.a = Echo("in-a")
        self.b = Upper("in-b")

    def forward(self, *, inputs):
        r = self.a(inputs=inputs)
        return self.b(text=r["answer"])


class NestedJit(Operator):
    """Calls a sub-operator whose own class is jitted."""

    def __init__(self):
        self.inner = jit(Inner())  # jit applied to an instance: it compiles on its own
        self.after = Wrap("nj-after")

    def forward(self, *, inputs):
        r = self.inner(inputs=inputs)
        return self.after(text=r["text"])


class StaticControl(Operator):
    """Branches and while-loops on static attributes fold away."""

    def __init__(self):
        self.members = [Echo("sc0"), Echo("sc1"), Echo("sc2")]
        self.verbose = False

    def forward(self, *, inputs):
        out, i = [], 0
        while i < len(self.members):
            if i % 2 == 0:
                out.append(self.members[i](inputs=inputs)["answer"])
            i += 1
        if self.verbose:
            out.append("verbose")
        return {"out": out, "last": self.members[-1](inputs=inputs)["answer"]}


class StaticSlices(Operator):
    """Slices, negative indexes and reversed() over a static operator list unroll to static paths."""

    def __init__(self):
        self.members = [Echo("ss0"), Echo("ss1"), Echo("ss2")]

    def forward(self, *, inputs):
        tail = [m(inputs=inputs)["answer"] for m in self.members[1:]]
        last = self.members[-1](query=inputs["query"][::-1])["answer"]
        backwards = [m(query=last)["answer"] for m in reversed(self.members[:2])]
        return {"tail": tail, "last": last, "backwards": backwards}


class DictComprehension(Operator):
    """A dict comprehension over static tools and slices of outputs."""

    def __init__(self):
        self.tools = {"x": Echo("dc-x"), "y": Echo("dc-y")}

    def forward(self, *, inputs):
        answers = {name: tool(inputs=inputs)["answer"] for name, tool in self.tools.items()}
        return {"answers": answers, "heads": [answers[k][:4] for k in ("x", "y")], "tail": answers["y"][-3:]}


class MathGlue(Operator):
    """math functions and numeric builtins on inputs and outputs."""

    def __init__(self):
        self.inc = Add("mg", 1)

    def forward(self, *, inputs):
        y = self.inc(x=inputs["x"])["y"]
        return {"sqrt": math.sqrt(abs(y)), "floor": math.floor(y / 3), "div": divmod(y, 4), "pow": pow(y, 2)}


class OptionalInput(Operator):
    """Conditional expressions and ``and``/``or`` on input values: guards."""

    def __init__(self):
        self.echo = Echo("oi")

    def forward(self, *, inputs):
        query = inputs["query"] or "empty"
        r = self.echo(query=query if inputs["n"] > 0 else query * 2)
        return {"answer": r["answer"], "flag": inputs["n"] > 0 and inputs["query"] != ""}


def pipeline(*, inputs):
    """A plain function for ``jit(function)``: calls module-level operators."""
    r = SHOUT(text=inputs["text"])
    return {"text": r["text"], "length": len(r["text"])}


# ---------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Program:
    """One corpus entry: ``make()`` builds a fresh root operator; ``inputs`` vary in value."""

    name: str
    make: Callable[[], Any]
    inputs: tuple = ()
    breaks: str | None = None  # the graph-break code that makes the whole call eager (first input)
    opaque: str | None = None  # the break code of a statement that runs natively as one step
    plans: int = 1  # how many plans (one per guarded path) running every input once captures


Q = ({"query": "hi"}, {"query": "hello there"}, {"query": "  spaced out  "}, {"query": "hi"})

PROGRAMS: tuple[Program, ...] = (
    Program("ensemble", Ensemble, Q),
    Program("chain", Chain, ({"text": "x"}, {"text": "yz"}, {"text": "hello"})),
    Program("loop_append", LoopAppend, Q),
    Program("tool_dict", ToolDict, Q),
    Program("zip_enumerate", ZipEnumerate, Q),
    Program("fstrings", FStrings, (
        {"query": "hi", "n": 3.14159, "width": 12},
        {"query": "héllo", "n": -2.5, "width": 20},
        {"query": "", "n": 100.0, "width": 5},
    )),
    Program("arithmetic", Arithmetic, ({"x": 1}, {"x": 7}, {"x": -4}, {"x": 0}, {"x": 250}), plans=2),
    Program("pure_builtins", PureBuiltins, (
        {"query": "b a", "mode": "fast"}, {"query": "zz top one", "mode": "slow"}, {"query": "q", "mode": "x"},
    )),
    Program("tuple_unpack", TupleUnpack, Q),
    Program("nested_build", NestedBuild, Q),
    Program("kwargs_spread", KwargsSpread, Q),
    Program("module_helper", ModuleHelper, Q),
    Program("helper_method", HelperMethod, Q),
    Program("global_operator", GlobalOperator, Q),
    Program("branch_on_input", BranchOnInput, (
        {"mode": "short", "query": "a", "loud": True},
        {"mode": "long", "query": "b", "loud": True},
        {"mode": "short", "query": "c", "loud": False},
        {"mode": "long", "query": "d", "loud": False},
        {"mode": "short", "query": "e", "loud": True},
    ), plans=4),
    Program("iterate_input", IterateInput, (
        {"queries": ["a", "b"]}, {"queries": ["c", "d"]}, {"queries": ["e", "f", "g"]}, {"queries": []},
        {"queries": ["h", "i"]},
    ), plans=3),
    Program("select_tool", SelectTool, (
        {"tool": "search", "query": "a"}, {"tool": "calc", "query": "b"}, {"tool": "search", "query": "c"},
    )),
    Program("branch_on_output", BranchOnOutput, Q, opaque="branch-on-output"),
    Program("try_except", TryExcept, Q, opaque="unsupported-bytecode"),
    Program("random_call", RandomCall, Q, opaque="branch-on-output"),
    Program("global_try", GlobalTry, Q, breaks="unsupported-bytecode"),
    Program("user_class", UserClass, Q),
    Program("lambda_key", LambdaKey, Q),
    Program("set_argument", SetArgument, Q),
    Program("nested_jit", NestedJit, Q),
    Program("static_control", StaticControl, Q),
    Program("static_slices", StaticSlices, Q),
    Program("dict_comprehension", DictComprehension, Q),
    Program("math_glue", MathGlue, ({"x": 3}, {"x": 8}, {"x": -20}, {"x": 0})),
    Program("optional_input", OptionalInput, (
        {"query": "a", "n": 1}, {"query": "", "n": 1}, {"query": "b", "n": 0}, {"query": "c", "n": 2},
    ), plans=3),
)

BY_NAME = {p.name: p for p in PROGRAMS}


# ---------------------------------------------------------------------- test helpers
def run_counted(op, inputs):
    """``op(inputs=...)`` and the leaf-operator calls it made."""
    CALLS.clear()
    result = op(inputs=dict(inputs))
    return result, dict(CALLS)


def entries(op, inputs):
    """The plan-cache entries (``Compiled``) of the jitted ``op`` for the signature of ``inputs``."""
    from xcs.compiler.cache import Key
    from xcs.compiler.driver import PLANS
    from xcs.compiler.signature import Signature

    return PLANS.get(Key.of(op.__xcs_jit__.structure(op), Signature.of(inputs))) or []
