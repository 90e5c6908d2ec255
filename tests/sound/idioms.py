"""Everyday Python idioms around the calls: a helper with a mutable default argument, a module-level
``itertools.count`` ticket, keyword inputs, class attributes as prompts and counters, the walrus
operator and chained comparisons, a local function wrapped in ``functools.partial``, regex matches."""

from __future__ import annotations

import functools
import itertools
import json
import re

from xcs import Operator

from sound.common import EVENTS, FakeLLM, program

Q = [{"q": "abc 12"}, {"q": "a much longer question 7"}, {"q": "none"}]
TICKET = itertools.count()


def remember(item, seen=[]):  # noqa: B006 - the shared default is the point: state across calls
    seen.append(item)
    return len(seen)


# 1
class TicketedPrompt(Operator):
    """A helper whose default list grows across calls and a module-level ticket counter."""

    def __init__(self):
        self.llm = FakeLLM("ticketed", "echo")
        self.side = FakeLLM("ticketed_side", "echo")

    def forward(self, *, inputs):
        n = remember(inputs["q"])
        ticket = next(TICKET)
        main = self.llm(prompt=f"{inputs['q']}#{n}#{ticket}")
        side = self.side(inputs={"prompt": inputs.get("extra", "none")})
        return {"main": main["text"], "side": side["text"], "n": n}


@program("idiom_mutable_default_and_ticket", "idioms", Q)
def ticketed_prompt():
    global TICKET
    TICKET = itertools.count()  # a new counter object: a plan reads the module global when it runs
    remember.__defaults__[0].clear()
    return TicketedPrompt()


# 2
class ClassTemplate(Operator):
    """A class-level template and stop list; the walrus operator and a chained comparison."""

    PROMPT = "Answer: {q}"
    STOP = ["\n", "###"]

    def __init__(self):
        self.llm = FakeLLM("templated", "echo")

    def forward(self, *, inputs):
        prompt = self.PROMPT.format(q=inputs["q"])
        if (n := len(prompt)) > 10 and 0 < n < 30:
            prompt = prompt + "!"
        out = self.llm(inputs={"prompt": prompt + "|".join(self.STOP)})
        assert isinstance(out, dict)
        return {"parts": out["text"].strip().split("#"), "n": n}


def grow_stop(op, i):
    op.STOP.append(f"stop{i}")  # the class attribute list, changed between calls


@program("idiom_class_template", "idioms", Q, mutate=grow_stop)
def class_template():
    ClassTemplate.STOP = ["\n", "###"]
    return ClassTemplate()


# 3
class LocalPartial(Operator):
    """A function defined in forward, wrapped in functools.partial and called with *args."""

    def __init__(self):
        self.a = FakeLLM("partial_a", "echo")
        self.b = FakeLLM("partial_b", "echo")

    def forward(self, *, inputs):
        def pad(text, width=5):
            return text.ljust(width, ".")

        wide = functools.partial(pad, width=12)
        first = self.a(inputs={"prompt": wide(inputs["q"])})
        args = [first["text"][:6]]
        second = self.b(inputs={"prompt": pad(*args)})
        del args
        return {"first": first["text"], "second": second["text"]}


@program("idiom_local_partial", "idioms", Q)
def local_partial():
    return LocalPartial()


# 4
class CountingClass(Operator):
    """A class attribute counts calls (``type(self).calls += 1``)."""

    calls = 0

    def __init__(self):
        self.llm = FakeLLM("counting", "echo")

    def forward(self, *, inputs):
        type(self).calls += 1
        EVENTS.effect("count", type(self).calls)
        out = self.llm(inputs={"prompt": f"{inputs['q']!r:>12}|{type(self).calls}"})
        return {"text": out["text"], "calls": CountingClass.calls}


@program("idiom_class_counter", "idioms", Q)
def counting_class():
    CountingClass.calls = 0
    return CountingClass()


# 5
class RegexRoute(Operator):
    """A regex match decides a number; two independent calls read it."""

    def __init__(self):
        self.a = FakeLLM("regex_a", "echo")
        self.b = FakeLLM("regex_b", "echo")

    def forward(self, *, inputs):
        m = re.search(r"(\d+)", inputs["q"])
        num = int(m.group(1)) if m else 0
        x = self.a(inputs={"prompt": str(num * 2)})
        y = self.b(inputs={"prompt": json.dumps({"n": num}, sort_keys=True)})
        return {"x": x["text"], "y": y["text"], "later": x["text"] > y["text"]}


@program("idiom_regex_number", "idioms", Q)
def regex_route():
    return RegexRoute()


# 6
class LimitOrHistory(Operator):
    """A conditional expression on an input reads held state on one side; the value is used only after
    forward changed that state (``self.history.append``)."""

    def __init__(self):
        self.history = ["seed"]
        self.llm = FakeLLM("limit", "echo")

    def forward(self, *, inputs):
        limit = inputs["n"] if inputs["n"] > 0 else len(self.history)
        self.history.append(inputs["q"])
        out = self.llm(inputs={"prompt": inputs["q"]})
        return {"limit": limit, "text": out["text"]}


@program("idiom_conditional_state_read_then_effect", "idioms",
         [{"q": "a", "n": 0}, {"q": "b", "n": 3}, {"q": "c", "n": -1}])
def limit_or_history():
    return LimitOrHistory()


# 7
class DeadBranchAfterOpaque(Operator):
    """A statement the capture runs as written (a sort keyed by a lambda on an output), then a branch the
    compiler folds away (no instruction of its own)."""

    def __init__(self):
        self.llm = FakeLLM("letters", "echo")

    def forward(self, *, inputs):
        out = self.llm(inputs={"prompt": inputs["q"]})
        letters = sorted(out["text"], key=lambda c: -ord(c))
        if not "folded":
            letters = []
        return {"letters": letters[:5]}


@program("idiom_dead_branch_after_opaque_statement", "idioms", Q)
def dead_branch_after_opaque():
    return DeadBranchAfterOpaque()
