"""More corpus programs, for the static capture (``structural``, ``enhanced``, ``auto``).

Together with ``tests/corpus.py`` these cover every construct the static capture handles (issue 3,
items 1 and 2: call spellings, locals, unpacking, comprehensions, helpers, map regions over runtime
lists, branch regions on runtime values) and every graph break it reports (item 3). Programs reuse the
leaf operators of ``corpus`` (which count their calls in ``corpus.CALLS``); ``Program.breaks`` is the
code the *static* capture reports (``None``: it compiles a plan that serves every input of the
signature). A line marked ``# graph break`` is where the static capture stops.
"""

from __future__ import annotations

import random

from corpus import Add, Echo, Judge, Program, Upper, Wrap, count
from xcs import Operator

TALLY = []  # written by ``GlobalWrite`` through ``global``


# ---------------------------------------------------------------------- extra leaf operators
class Retriever(Operator):
    """Returns ``docs``: one document per word of ``query`` (a runtime list of runtime length)."""

    def __init__(self, name: str = "retriever"):
        self.name = name

    def forward(self, *, inputs):
        count(self.name)
        return {"docs": [f"doc-{w}" for w in str(inputs["query"]).split()], "query": inputs["query"]}


# ---------------------------------------------------------------------- module-level helpers
def clean(text):
    """Normalises whitespace; called by ``build_prompt``."""
    return " ".join(str(text).split())


def build_prompt(query, prefix="Q"):
    """A helper calling another helper."""
    return f"{prefix}: {clean(query)}"


# ---------------------------------------------------------------------- compiled programs
class CallSpellings(Operator):
    """``self.a(**kw)``, ``self.a(key=...)`` and ``getattr(self, "name")`` call sub-operators."""

    def __init__(self):
        self.first = Echo("cs-first")
        self.second = Wrap("cs-second", "{", "}")
        self.third = Upper("cs-third")

    def forward(self, *, inputs):
        kw = {"query": inputs["query"]}
        a = self.first(**kw)
        b = self.second(text=a["answer"])
        third = getattr(self, "third")
        c = third(inputs={"text": b["text"]})
        d = getattr(self, "first")(query=c["text"])
        return {"a": a["answer"], "b": b["text"], "c": c["text"], "d": d["answer"]}


class IndexedMembers(Operator):
    """``self.members[i]`` in a loop over ``range(len(self.members))`` with augmented assignment."""

    def __init__(self):
        self.members = [Add("im0", 1), Add("im1", 10), Add("im2", 100)]

    def forward(self, *, inputs):
        total = 0
        outs = []
        for i in range(len(self.members)):
            y = self.members[i](x=inputs["x"] + i)["y"]
            total += y
            outs.append(y)
        total *= 2
        total -= inputs["x"]
        return {"total": total, "outs": outs}


class UnpackOutputs(Operator):
    """Tuple unpacking of operator outputs with known keys, and of a tuple built from them."""

    def __init__(self):
        self.left = Echo("uo-left")
        self.right = Echo("uo-right")

    def forward(self, *, inputs):
        a, b = self.left(query=inputs["query"]), self.right(query=inputs["query"] + "?")
        answer, score = a["answer"], b["score"]
        (x, y), z = (score, answer), [a["score"], b["answer"]]
        first, *rest = (answer, score, x)
        return {"answer": answer, "score": score, "x": x, "y": y, "z": z, "first": first, "rest": rest}


class Comprehensions(Operator):
    """Set, dict and nested comprehensions over static data and static operators."""

    def __init__(self):
        self.tools = {"a": Echo("cp-a"), "b": Echo("cp-b")}
        self.styles = ["x", "y", "x", "z"]
        self.grid = [[1, 2], [3, 4, 5]]

    def forward(self, *, inputs):
        styles = {s.upper() for s in self.styles}
        answers = {name: tool(query=f"{inputs['query']}/{name}")["answer"] for name, tool in self.tools.items()}
        flat = [v * 2 for row in self.grid for v in row if v != 3]
        pairs = [[f"{k}{v}" for v in row] for k, row in zip("pq", self.grid)]
        lengths = {k: len(v) for k, v in answers.items()}
        heads = {tool(query=inputs["query"])["answer"][:4] for tool in self.tools.values()}
        return {
            "styles": sorted(styles), "answers": answers, "flat": flat, "pairs": pairs, "lengths": lengths,
            "heads": sorted(heads), "has_a": "cp-a" in heads,
        }


class HelperChain(Operator):
    """A module-level helper that calls another helper builds the prompt."""

    def __init__(self):
        self.echo = Echo("hc")

    def forward(self, *, inputs):
        prompt = build_prompt(inputs["query"])
        loud = build_prompt(inputs["query"], prefix="LOUD")
        return {"answer": self.echo(query=prompt)["answer"], "loud": loud}


class MapOverInput(Operator):
    """A comprehension over an input list: a map region, one call per element."""

    def __init__(self):
        self.echo = Echo("mi")
        self.judge = Judge("mi-judge")

    def forward(self, *, inputs):
        answers = [self.echo(query=d)["answer"] for d in inputs["docs"]]
        return self.judge(inputs={"answers": answers, "query": inputs["topic"]})


class MapOverOutput(Operator):
    """A retriever returns a runtime list; a comprehension over it is a map region."""

    def __init__(self):
        self.retriever = Retriever("mo-retriever")
        self.llm = Echo("mo-llm")

    def forward(self, *, inputs):
        r = self.retriever(query=inputs["query"])
        answers = [self.llm(query=d)["answer"] for d in r["docs"]]
        return {"answers": answers, "n": len(answers), "query": r["query"]}


class MapChained(Operator):
    """The body of a map region calls two chained operators and builds glue around them."""

    def __init__(self):
        self.wrap = Wrap("mc-wrap", "(", ")")
        self.upper = Upper("mc-upper")

    def forward(self, *, inputs):
        out = [self.upper(text=self.wrap(text=f"{d}-{inputs['tag']}")["text"])["text"] + "!" for d in inputs["docs"]]
        return {"out": out, "tag": inputs["tag"]}


class NestedMaps(Operator):
    """A map region inside a map region: groups of documents, one call per document."""

    def __init__(self):
        self.echo = Echo("nm")

    def forward(self, *, inputs):
        table = [[self.echo(query=f"{g}:{d}")["answer"] for d in group] for g, group in [("g", inputs["groups"])]]
        nested = [[self.echo(query=d)["score"] for d in group] for group in inputs["groups"]]
        return {"table": table, "nested": nested}


class AppendLoop(Operator):
    """``for d in inputs["docs"]: out.append(self.x(...))``: a map region appending one value per element."""

    def __init__(self):
        self.x = Wrap("al-x", "[", "]")
        self.after = Judge("al-judge")

    def forward(self, *, inputs):
        out = []
        for d in inputs["docs"]:
            wrapped = self.x(text=d)
            out.append(wrapped["text"])
        return self.after(answers=out, query=len(out))


class BranchInputValue(Operator):
    """if/else on an input value: a branch region, only the taken side runs."""

    def __init__(self):
        self.formal = Wrap("bi-formal", "Dear ", ".")
        self.casual = Upper("bi-casual")

    def forward(self, *, inputs):
        if inputs["formal"]:
            text = self.formal(text=inputs["name"])["text"]
        else:
            text = self.casual(text=inputs["name"])["text"]
        return {"text": text, "name": inputs["name"]}


class BranchOutputValue(Operator):
    """if/else on an operator's output, then a step depending on the merged value."""

    def __init__(self):
        self.scorer = Echo("bv-scorer")
        self.high = Upper("bv-high")
        self.low = Wrap("bv-low")
        self.final = Wrap("bv-final", "|", "|")

    def forward(self, *, inputs):
        r = self.scorer(query=inputs["query"])
        if r["score"] > 0.4:
            picked = self.high(text=r["answer"])["text"]
            tag = "high"
        else:
            picked = self.low(text=r["answer"])["text"]
            tag = "low"
        return {"text": self.final(text=picked)["text"], "tag": tag}


class ConditionalOutput(Operator):
    """A conditional expression on an operator's output picks which operator runs."""

    def __init__(self):
        self.scorer = Add("co-scorer", 0)
        self.big = Add("co-big", 1000)
        self.small = Add("co-small", 1)

    def forward(self, *, inputs):
        s = self.scorer(x=inputs["x"])["y"]
        y = self.big(x=s)["y"] if s > 10 else self.small(x=s)["y"]
        return {"y": y, "label": "big" if y > 1000 else "small"}


class ShortCircuit(Operator):
    """``and``/``or`` on runtime values (an input and an operator's output)."""

    def __init__(self):
        self.echo = Echo("sh")

    def forward(self, *, inputs):
        query = inputs["query"] or inputs["fallback"]
        r = self.echo(query=query)
        ok = r["score"] > 0.2 and inputs["strict"]
        label = inputs["label"] or r["answer"]
        return {"answer": r["answer"], "ok": ok, "label": label, "either": r["score"] or inputs["fallback"]}


class IfWithoutElse(Operator):
    """An if without else that reassigns a local (on an input and on an operator's output)."""

    def __init__(self):
        self.echo = Echo("iw")
        self.shout = Upper("iw-shout")

    def forward(self, *, inputs):
        text = inputs["query"]
        if inputs["loud"]:
            text = self.shout(text=text)["text"]
        r = self.echo(query=text)
        answer = r["answer"]
        if r["score"] > 0.5:
            answer = answer + " (long)"
        return {"answer": answer, "text": text}


class BothReturn(Operator):
    """Both sides of a branch on an operator's output return."""

    def __init__(self):
        self.scorer = Add("br-scorer", 0)
        self.up = Add("br-up", 100)
        self.down = Add("br-down", -100)

    def forward(self, *, inputs):
        s = self.scorer(x=inputs["x"])["y"]
        if s % 2 == 0:
            return {"even": True, "y": self.up(x=s)["y"]}
        else:
            return {"even": False, "y": self.down(x=s)["y"]}


class EarlyReturn(Operator):
    """Only one side of a branch on an operator's output returns early: the statements after the if
    belong to the other side, so both sides return and the branch compiles."""

    def __init__(self):
        self.scorer = Echo("er")
        self.fix = Upper("er-fix")

    def forward(self, *, inputs):
        r = self.scorer(query=inputs["query"])
        if r["score"] > 0.4:
            return {"answer": r["answer"], "fixed": False}
        fixed = self.fix(text=r["answer"])
        return {"answer": fixed["text"], "fixed": True}


class BranchInMap(Operator):
    """A branch on each element inside a map region: per element, only the taken side runs."""

    def __init__(self):
        self.short = Wrap("bm-short", "<", ">")
        self.long = Echo("bm-long")

    def forward(self, *, inputs):
        out = []
        for d in inputs["docs"]:
            if len(d) > 3:
                text = self.long(query=d)["answer"]
            else:
                text = self.short(text=d)["text"]
            out.append(text)
        return {"out": out}


# ---------------------------------------------------------------------- rejected programs
class WhileRuntime(Operator):
    """A while loop on runtime data: a loop region."""

    def __init__(self):
        self.inc = Add("wr", 3)

    def forward(self, *, inputs):
        x = inputs["x"]
        while x < 10:
            x = self.inc(x=x)["y"]
        return {"x": x}


class TryFinally(Operator):
    """try/finally: a try region (issue 13)."""

    def __init__(self):
        self.echo = Echo("tf")

    def forward(self, *, inputs):
        try:
            r = self.echo(query=inputs["query"])
        finally:
            pass
        return {"answer": r["answer"]}


class Held:
    """A context manager used by ``WithBlock``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class WithBlock(Operator):
    """A with statement in a loop over runtime data: its elements cannot overlap, so the loop is a loop
    region (one element after the other, as eager)."""
    def __init__(self):
        self.echo, self.held = Echo("wb"), Held()

    def forward(self, *, inputs):
        for word in inputs["query"].split():
            with self.held:
                self.echo(query=word)
        return {"answer": inputs["query"]}


class YieldInside(Operator):
    """A generator expression consumed by ``next``, which may stop early: 'unsupported-bytecode'."""

    def __init__(self):
        self.echo = Echo("yi")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        total = next(len(w) for w in r["answer"].split())  # graph break
        return {"answer": r["answer"], "total": total}


class GlobalWrite(Operator):
    """A global write: 'unsupported-bytecode'."""

    def __init__(self):
        self.echo = Echo("gw")

    def forward(self, *, inputs):
        global TALLY
        r = self.echo(query=inputs["query"])
        TALLY = [r["answer"]]  # graph break
        return {"answer": r["answer"]}


class UnknownCall(Operator):
    """An unknown callable applied to an operator's output: an effect step of the plan."""

    def __init__(self):
        self.echo = Echo("uk")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        picked = random.choice([r["answer"], r["answer"]])  # an effect: a step of its own
        return {"answer": picked}


class LoopCarried(Operator):
    """State carried between iterations of a loop over runtime data: a loop region."""

    def __init__(self):
        self.echo = Echo("lc")

    def forward(self, *, inputs):
        text = ""
        for d in inputs["docs"]:
            text = self.echo(query=text + d)["answer"]
        return {"text": text}


class LastElement(Operator):
    """The loop variable of a loop over runtime data read after it: 'runtime-loop'."""

    def __init__(self):
        self.echo = Echo("le")

    def forward(self, *, inputs):
        last = d = None
        for d in inputs["docs"]:
            last = self.echo(query=d)["answer"]
        return {"last": last, "d": d}  # graph break


class BranchMutation(Operator):
    """A side of a branch on an operator's output appends to a list built before it: 'runtime-branch'."""

    def __init__(self):
        self.scorer = Echo("bmu")

    def forward(self, *, inputs):
        r = self.scorer(query=inputs["query"])
        notes = [r["answer"]]
        if r["score"] > 0.4:
            notes.append("long")  # graph break
        return {"notes": notes}


class UnknownMethod(Operator):
    """A method of unknown name on an operator's output: 'runtime-value'."""

    def __init__(self):
        self.echo = Echo("um")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        table = r["answer"].maketrans("aeiou", "AEIOU")  # graph break
        return {"answer": r["answer"].translate(table)}


# ---------------------------------------------------------------------- opcodes one Python version spells alone
class FanIn32(Operator):
    """32 members, and a judge that receives their 32 answers as one tuple display: more than 30
    non-constant items, which 3.11 builds with ``LIST_TO_TUPLE`` (3.12+: ``CALL_INTRINSIC_1``)."""

    def __init__(self):
        self.members = [Echo(f"fan{i}") for i in range(32)]
        self.judge = Judge("fan-judge")

    def forward(self, *, inputs):
        q = inputs["query"]
        m = self.members
        a0, a1, a2, a3 = m[0](query=q), m[1](query=q), m[2](query=q), m[3](query=q)
        a4, a5, a6, a7 = m[4](query=q), m[5](query=q), m[6](query=q), m[7](query=q)
        a8, a9, a10, a11 = m[8](query=q), m[9](query=q), m[10](query=q), m[11](query=q)
        a12, a13, a14, a15 = m[12](query=q), m[13](query=q), m[14](query=q), m[15](query=q)
        a16, a17, a18, a19 = m[16](query=q), m[17](query=q), m[18](query=q), m[19](query=q)
        a20, a21, a22, a23 = m[20](query=q), m[21](query=q), m[22](query=q), m[23](query=q)
        a24, a25, a26, a27 = m[24](query=q), m[25](query=q), m[26](query=q), m[27](query=q)
        a28, a29, a30, a31 = m[28](query=q), m[29](query=q), m[30](query=q), m[31](query=q)
        answers = (
            a0["answer"], a1["answer"], a2["answer"], a3["answer"], a4["answer"], a5["answer"], a6["answer"],
            a7["answer"], a8["answer"], a9["answer"], a10["answer"], a11["answer"], a12["answer"], a13["answer"],
            a14["answer"], a15["answer"], a16["answer"], a17["answer"], a18["answer"], a19["answer"],
            a20["answer"], a21["answer"], a22["answer"], a23["answer"], a24["answer"], a25["answer"],
            a26["answer"], a27["answer"], a28["answer"], a29["answer"], a30["answer"], a31["answer"],
        )
        return self.judge(inputs={"answers": answers, "query": q})


class SuperBase(Operator):
    """The base ``SuperCalls`` extends: a forward, a template attribute and a helper method."""

    TEMPLATE = "[{}]"

    def __init__(self):
        self.echo = Echo("sb-echo")

    def framed(self, text):
        return self.TEMPLATE.format(text)

    def forward(self, *, inputs):
        return self.echo(query=inputs["query"])


class SuperCalls(SuperBase):
    """``super().forward(...)``, ``super().TEMPLATE`` and ``super().framed(...)`` (3.12+:
    ``LOAD_SUPER_ATTR``; 3.11: a call of ``super``)."""

    TEMPLATE = "<{}>"

    def __init__(self):
        super().__init__()
        self.upper = Upper("sc-upper")

    def forward(self, *, inputs):
        base = super().forward(inputs=inputs)
        shown = super().framed(base["answer"])
        up = self.upper(text=shown)
        return {"base": base["answer"], "up": up["text"], "template": super().TEMPLATE, "mine": self.TEMPLATE}


class SliceStore(Operator):
    """Slices read and assigned (3.12+: ``BINARY_SLICE``, ``STORE_SLICE``; 3.11: ``BUILD_SLICE``)."""

    def __init__(self):
        self.judge = Judge("ss-judge")

    def forward(self, *, inputs):
        words = ["w0", "w1", "w2", "w3"]
        words[1:3] = [inputs["query"], "mid"]
        parts = list(inputs["parts"])
        parts[:1] = ["head"]
        parts[2:] = [p.upper() for p in parts[2:]]
        out = self.judge(inputs={"answers": words[:3] + parts[1:], "query": inputs["query"]})
        return {"final": out["final"], "tail": words[-2:], "parts": parts}


class SetDisplays(Operator):
    """A set display of constants (``BUILD_SET``; ``SET_UPDATE`` of a frozenset constant) and one of
    runtime values; membership of an operator's output."""

    def __init__(self):
        self.echo = Echo("sd-echo")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        stop = {"a", "an", "the", "of"}
        kept = [w for w in inputs["query"].split() if w not in stop]
        return {"answer": r["answer"], "kept": kept, "known": r["answer"] in {"sd-echo:hi", "sd-echo:x"}}


class DeadAfterSegment(Operator):
    """A statement that runs as written (an import inside ``forward``), then one the compiler removes on
    3.13 but not on 3.11 (``if not "lit": ...``): the capture resumes at the statement after it."""

    def __init__(self):
        self.echo = Echo("dead-echo")

    def forward(self, *, inputs):
        r = self.echo(query=inputs["query"])
        import json
        if not "lit":
            return {"answer": ""}
        return {"answer": r["answer"], "dumped": json.dumps(inputs["query"])}


# ---------------------------------------------------------------------- registry
Q = ({"query": "hi"}, {"query": "hello there"}, {"query": "  a much longer query  "}, {"query": "x y z w"})
DOCS = ({"docs": ["a", "bb"]}, {"docs": ["ccc", "dddd", "e"]}, {"docs": []}, {"docs": ["f"]}, {"docs": ["longer", "x"]})

PROGRAMS: tuple[Program, ...] = (
    Program("call_spellings", CallSpellings, Q),
    Program("indexed_members", IndexedMembers, ({"x": 1}, {"x": -5}, {"x": 40})),
    Program("unpack_outputs", UnpackOutputs, Q),
    Program("comprehensions", Comprehensions, Q),
    Program("helper_chain", HelperChain, Q),
    Program("map_over_input", MapOverInput, (
        {"docs": ["a", "b"], "topic": "t"}, {"docs": ["c", "d", "e"], "topic": "u"}, {"docs": [], "topic": "v"},
        {"docs": ["f"], "topic": "w"},
    )),
    Program("map_over_output", MapOverOutput, Q),
    Program("map_chained", MapChained, (
        {"docs": ["a", "b"], "tag": "t"}, {"docs": ["c", "d", "e"], "tag": "u"}, {"docs": [], "tag": "v"},
    )),
    Program("nested_maps", NestedMaps, (
        {"groups": [["a"], ["b", "c"]]}, {"groups": []}, {"groups": [["d", "e", "f"], [], ["g"]]},
    )),
    Program("append_loop", AppendLoop, DOCS),
    Program("branch_input_value", BranchInputValue, (
        {"formal": True, "name": "ada"}, {"formal": False, "name": "bob"}, {"formal": True, "name": "cy"},
    )),
    Program("branch_output_value", BranchOutputValue, Q),
    Program("conditional_output", ConditionalOutput, ({"x": 3}, {"x": 11}, {"x": 50}, {"x": -2})),
    Program("short_circuit", ShortCircuit, (
        {"query": "hi", "fallback": "fb", "strict": True, "label": ""},
        {"query": "", "fallback": "fallback", "strict": False, "label": "L"},
        {"query": "hello", "fallback": "", "strict": True, "label": "M"},
    )),
    Program("if_without_else", IfWithoutElse, (
        {"query": "hi", "loud": True}, {"query": "a longer one", "loud": False}, {"query": "mid", "loud": False},
        {"query": "quite long text", "loud": True},
    )),
    Program("both_return", BothReturn, ({"x": 2}, {"x": 3}, {"x": -7}, {"x": 0})),
    Program("early_return", EarlyReturn, Q),
    Program("branch_in_map", BranchInMap, DOCS),
    Program("while_runtime", WhileRuntime, ({"x": 1}, {"x": 20}, {"x": 5})),
    Program("try_finally", TryFinally, Q),
    Program("with_block", WithBlock, Q),
    Program("yield_inside", YieldInside, Q, breaks="unsupported-bytecode"),
    Program("global_write", GlobalWrite, Q, breaks="unsupported-bytecode"),
    Program("unknown_call", UnknownCall, Q),
    Program("loop_carried", LoopCarried, DOCS),
    Program("last_element", LastElement, DOCS, breaks="runtime-loop"),
    Program("branch_mutation", BranchMutation, Q, breaks="runtime-branch"),
    Program("unknown_method", UnknownMethod, Q, breaks="runtime-value"),
    Program("fan_in_32", FanIn32, Q),
    Program("super_calls", SuperCalls, Q),
    Program("slice_store", SliceStore, (
        {"query": "hi", "parts": ["a", "b", "c"]}, {"query": "yo", "parts": ["x"]}, {"query": "q", "parts": ["p", "q", "r", "s"]},
    )),
    Program("set_displays", SetDisplays, ({"query": "hi"}, {"query": "the end of it"}, {"query": "x"})),
    Program("dead_after_segment", DeadAfterSegment, Q),
)

BY_NAME = {p.name: p for p in PROGRAMS}
