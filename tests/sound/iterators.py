"""Iterators and statement shapes: ``zip``/``enumerate``/``reversed`` objects read by several
statements (a second reader finds them exhausted), loops over them feeding independent calls, and
statements that share a line (``res = dict(out); res.update(...)``)."""

from __future__ import annotations

from xcs import Operator

from sound.common import FakeLLM, program

PAIRS = [{"xs": ["a", "b"], "ys": ["c", "d"]}, {"xs": [], "ys": []}, {"xs": ["e"], "ys": ["f", "g"]}]


# 1
class IndexedPromptTwoReaders(Operator):
    """A loop over ``enumerate(zip(...))`` builds one prompt that two independent calls read."""

    def __init__(self):
        self.writer = FakeLLM("writer", "echo")
        self.titler = FakeLLM("titler", "echo")

    def forward(self, *, inputs):
        parts = []
        for i, (x, y) in enumerate(zip(inputs["xs"], inputs["ys"])):
            parts.append(f"{i}:{x}-{y}")
        prompt = "; ".join(parts)
        body = self.writer(inputs={"prompt": prompt})
        title = self.titler(inputs={"prompt": prompt[:10]})
        return {"body": body["text"], "title": title["text"]}


@program("iter_enumerate_zip_two_readers", "iterators", PAIRS)
def indexed_prompt_two_readers():
    return IndexedPromptTwoReaders()


# 2
class ZipReadTwice(Operator):
    """The second ``list(pairs)`` is empty, as in eager Python."""

    def __init__(self):
        self.first = FakeLLM("first", "echo")
        self.second = FakeLLM("second", "echo")

    def forward(self, *, inputs):
        pairs = zip(inputs["xs"], inputs["ys"])
        a = self.first(inputs={"prompt": str(list(pairs))})
        b = self.second(inputs={"prompt": str(list(pairs))})
        return {"a": a["text"], "b": b["text"]}


@program("iter_zip_read_twice", "iterators", PAIRS)
def zip_read_twice():
    return ZipReadTwice()


# 3
class ReversedLoopThenList(Operator):
    """A loop consumes ``reversed(...)``; a later ``list`` of it is empty."""

    def __init__(self):
        self.llm = FakeLLM("rev", "echo")

    def forward(self, *, inputs):
        order = reversed(inputs["xs"])
        seen = []
        for x in order:
            seen.append(x.upper())
        rest = list(order)
        out = self.llm(inputs={"prompt": ",".join(seen)})
        return {"text": out["text"], "rest": rest}


@program("iter_reversed_loop_then_list", "iterators", PAIRS)
def reversed_loop_then_list():
    return ReversedLoopThenList()


# 4
class DictOfZip(Operator):
    """``dict(zip(keys, values))`` read once: compiled as usual."""

    def __init__(self):
        self.a = FakeLLM("dz_a", "echo")
        self.b = FakeLLM("dz_b", "echo")

    def forward(self, *, inputs):
        table = dict(zip(inputs["xs"], inputs["ys"]))
        a = self.a(inputs={"prompt": str(sorted(table))})
        b = self.b(inputs={"prompt": str(len(table))})
        return {"a": a["text"], "b": b["text"], "table": table}


@program("iter_dict_of_zip", "iterators", PAIRS)
def dict_of_zip():
    return DictOfZip()


# 5
class SharedLine(Operator):
    """Two statements on one line: a copy of an output, then an in-place update of the copy."""

    def __init__(self):
        self.llm = FakeLLM("shared_line", "echo")
        self.judge = FakeLLM("shared_judge", "echo")

    def forward(self, *, inputs):
        out = self.llm(inputs={"prompt": "|".join(inputs["xs"])})
        res = dict(out); res.update(n=len(inputs["ys"]))  # noqa: E702
        verdict = self.judge(inputs={"prompt": res["text"]})
        return {**res, "verdict": verdict["text"]}


@program("iter_statements_share_a_line", "iterators", PAIRS)
def shared_line():
    return SharedLine()
