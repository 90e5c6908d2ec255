"""Programs written the way people write loops on model outputs (issue 13's loop regions): critique ->
revise until the judge approves (``while not judge(...)["ok"]`` and ``for _ in range(n): ... break``),
a ReAct agent (LLM -> parse the action -> call the tool -> append the observation; stop on "finish";
a step budget), retry until the reply is valid JSON, pagination (``while cursor:``), two independent
critics per round, ``continue``/``break`` over a runtime list, a ``return`` from inside a loop, and a
loop in an operator mapped over a list. DSPy, LangChain and agent styles."""

from __future__ import annotations

import json
import re

from xcs import Operator

from sound.common import EVENTS, FakeLLM, Tool, digest, program

QS = [{"question": q} for q in ("What colour is Mars?", "Compute 6 * 7", "Who made Python?", "hello", "tides?")]


class Judge(Operator):
    """An LLM judge that returns parsed JSON: ``{"ok": bool, "feedback": str}``."""

    def __init__(self, name: str = "judge", strict: int = 3, delay: float = 0.0):
        self.name, self.strict, self.delay = name, strict, delay

    def forward(self, *, inputs):
        draft = str(inputs["draft"])
        with EVENTS.call("llm", self.name, draft, self.delay):
            h = digest(f"{self.name}|{draft}")
            return {"ok": h % self.strict != 0, "feedback": f"{self.name}: tighten #{h % 7}"}


# 1 ---------------------------------------------------------------------------------------------
class CritiqueUntilApproved(Operator):
    """DSPy-style refinement: revise while the judge does not approve (no bound but the judge)."""

    def __init__(self):
        self.write = FakeLLM("cua-write", "echo")
        self.judge = Judge("cua-judge")
        self.revise = FakeLLM("cua-revise", "echo")

    def forward(self, *, inputs):
        draft = self.write(inputs={"prompt": inputs["question"]})["text"]
        revisions = 0
        while not self.judge(inputs={"draft": draft})["ok"]:
            draft = self.revise(inputs={"prompt": f"Improve: {draft}"})["text"]
            revisions += 1
        return {"answer": draft, "revisions": revisions}


@program("loop_critique_until_approved", "dspy", QS)
def critique_until_approved():
    return CritiqueUntilApproved()


# 2 ---------------------------------------------------------------------------------------------
class BoundedCritique(Operator):
    """At most ``rounds`` rounds (a runtime bound), stop when approved; ``for/else`` marks a draft the
    judge never approved."""

    def __init__(self):
        self.write = FakeLLM("bc-write", "echo", delay=0.05)
        self.judge = Judge("bc-judge", strict=2, delay=0.05)
        self.revise = FakeLLM("bc-revise", "echo", delay=0.05)

    def forward(self, *, inputs):
        draft = self.write(inputs={"prompt": inputs["question"]})["text"]
        notes = []
        for round_ in range(inputs["rounds"]):
            verdict = self.judge(inputs={"draft": draft})
            if verdict["ok"]:
                status = "approved"
                break
            notes.append(verdict["feedback"])
            draft = self.revise(inputs={"prompt": f"{draft}\nFeedback: {verdict['feedback']}"})["text"]
        else:
            status = "unapproved"
        return {"answer": draft, "status": status, "notes": notes}


@program("loop_bounded_critique", "dspy", [
    {"question": "Why is the sky blue?", "rounds": 3}, {"question": "Mars?", "rounds": 0},
    {"question": "Bees?", "rounds": 1}, {"question": "Tides?", "rounds": 5},
])
def bounded_critique():
    return BoundedCritique()


# 3 ---------------------------------------------------------------------------------------------
ACTION = re.compile(r"Action: (\w+)\[(.*)\]")


def parse_action(text):
    """The agent's parser: ("finish", answer) or (tool, argument)."""
    if "Final Answer:" in text:
        return "finish", text.split("Final Answer:")[1].strip()
    found = ACTION.search(text)
    if found:
        return found.group(1), found.group(2)
    return "finish", text


class ReActAgent(Operator):
    """LangChain's agent executor: think, act, observe, until the model finishes or the step budget
    runs out; the observations are appended to a history list. A tool may raise (bad arithmetic)."""

    def __init__(self):
        self.llm = FakeLLM("react-agent", "react")
        self.tools = {"search": Tool("search"), "calc": Tool("calc"), "lookup": Tool("lookup")}

    def forward(self, *, inputs):
        history = [f"Question: {inputs['question']}"]
        answer = None
        steps = 0
        while answer is None and steps < inputs.get("max_steps", 4):
            reply = self.llm(inputs={"prompt": "\n".join(history)})["text"]
            steps += 1
            action, arg = parse_action(reply)
            if action == "finish":
                answer = arg
                break
            observation = self.tools[action](inputs={"arg": arg})["result"]
            history.append(f"{reply}\nObservation: {observation}")
        return {"answer": answer, "steps": steps, "history": history}


@program("loop_react_agent", "agent", QS + [{"question": "budget", "max_steps": 0}, {"question": "Mars", "max_steps": 1}])
def react_agent():
    return ReActAgent()


# 4 ---------------------------------------------------------------------------------------------
def extract_json(text):
    """The first JSON object in a reply, or None."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    return json.loads(text[start:end + 1])


class RetryJson(Operator):
    """Ask again until the reply holds JSON, at most ``retries`` attempts (a malformed object raises)."""

    def __init__(self, retries=3):
        self.llm = FakeLLM("retry-json", "json")
        self.retries = retries

    def forward(self, *, inputs):
        prompt = f"Answer in JSON: {inputs['question']}"
        parsed = None
        attempt = 0
        while parsed is None and attempt < self.retries:
            parsed = extract_json(self.llm(inputs={"prompt": prompt})["text"])
            attempt += 1
            prompt = f"{prompt}\nReply with JSON only (attempt {attempt})."
        if parsed is None:
            return {"answer": None, "error": f"no valid JSON after {attempt} attempts"}
        return {"answer": parsed["answer"], "attempts": attempt}


@program("loop_retry_json", "langchain", QS + [{"question": "Q9"}, {"question": "Q13"}])
def retry_json():
    return RetryJson()


# 5 ---------------------------------------------------------------------------------------------
class Pages(Operator):
    """A paginated API: ``{"cursor": str}`` -> one page of items and the next cursor ("" at the end)."""

    def forward(self, *, inputs):
        cursor = inputs["cursor"]
        with EVENTS.call("tool", "pages", cursor):
            n = digest(cursor) % 4
            nxt = "" if len(cursor) > 12 or n == 0 else f"{cursor}+{n}"
            return {"items": [f"{cursor}/{i}" for i in range(n)], "next": nxt}


class Paginate(Operator):
    """Fetch every page while the API returns a cursor, collecting the items."""

    def __init__(self):
        self.fetch = Pages()

    def forward(self, *, inputs):
        items = []
        cursor = inputs["cursor"]
        pages = 0
        while cursor:
            page = self.fetch(inputs={"cursor": cursor})
            items.extend(page["items"])
            cursor = page["next"]
            pages += 1
        return {"items": items, "pages": pages}


@program("loop_paginate", "langchain", [{"cursor": c} for c in ("a", "bb", "", "start", "zz9")])
def paginate():
    return Paginate()


# 6 ---------------------------------------------------------------------------------------------
class TwoCritics(Operator):
    """Each round asks two independent critics about the draft (their calls overlap), then merges."""

    def __init__(self):
        self.style = Judge("style-critic", strict=2, delay=0.05)
        self.facts = Judge("fact-critic", strict=2, delay=0.05)
        self.merge = FakeLLM("merge", "echo", delay=0.05)

    def forward(self, *, inputs):
        draft = inputs["question"]
        rounds = 0
        while rounds < inputs["rounds"]:
            style = self.style(inputs={"draft": draft})
            facts = self.facts(inputs={"draft": draft})
            if style["ok"] and facts["ok"]:
                break
            draft = self.merge(inputs={"prompt": f"{draft}\n{style['feedback']}\n{facts['feedback']}"})["text"]
            rounds += 1
        return {"answer": draft, "rounds": rounds}


@program("loop_two_critics", "dspy", [{"question": q, "rounds": n} for q, n in (("Mars?", 3), ("x", 0), ("Nile?", 2))],
         slow=True)
def two_critics():
    return TwoCritics()


# 7 ---------------------------------------------------------------------------------------------
class SummarizeUntilStop(Operator):
    """Summarise documents in order, skipping blank ones (``continue``) and stopping at a marker
    (``break``); a ``return`` from inside the loop when a document asks for escalation."""

    def __init__(self):
        self.summarize = FakeLLM("sus-summarize", "echo")
        self.escalate = FakeLLM("sus-escalate", "echo")

    def forward(self, *, inputs):
        summaries = []
        for doc in inputs["docs"]:
            if not doc.strip():
                continue
            if doc == "STOP":
                break
            if doc.startswith("URGENT"):
                return {"escalated": self.escalate(inputs={"prompt": doc})["text"], "summaries": summaries}
            summaries.append(self.summarize(inputs={"prompt": doc})["text"])
        return {"summaries": summaries, "count": len(summaries)}


@program("loop_summarize_until_stop", "langchain", [
    {"docs": ["Mars is red.", "  ", "Bees dance.", "STOP", "never read"]}, {"docs": []},
    {"docs": ["", "Nile.", "URGENT: fire", "x"]}, {"docs": ["a", "b"]},
])
def summarize_until_stop():
    return SummarizeUntilStop()


# 8 ---------------------------------------------------------------------------------------------
class Refine(Operator):
    """One question refined until the judge approves: the operator mapped below (its loop runs inside
    the map region's elements)."""

    def __init__(self):
        self.answer = FakeLLM("refine-answer", "echo")
        self.judge = Judge("refine-judge")

    def forward(self, *, inputs):
        draft = self.answer(inputs={"prompt": inputs["question"]})["text"]
        rounds = 0
        while not self.judge(inputs={"draft": draft})["ok"]:
            draft = self.answer(inputs={"prompt": f"Again: {draft}"})["text"]
            rounds += 1
        return {"answer": draft, "rounds": rounds}


class RefineEach(Operator):
    """A map over the questions of an operator whose forward loops; and the same loop written inline
    in a loop over the questions (a map region whose elements run a ``while``)."""

    def __init__(self):
        self.refine = Refine()

    def forward(self, *, inputs):
        answers = [self.refine(inputs={"question": q}) for q in inputs["questions"]]
        inline = []
        for q in inputs["questions"]:
            draft = q
            while not self.refine.judge(inputs={"draft": draft})["ok"]:
                draft = self.refine.answer(inputs={"prompt": f"Inline: {draft}"})["text"]
            inline.append(draft)
        return {"answers": [a["answer"] for a in answers], "rounds": sum(a["rounds"] for a in answers),
                "inline": inline}


@program("loop_refine_each", "dspy", [
    {"questions": ["Mars?", "Nile?", "Bees?"]}, {"questions": []}, {"questions": ["tides?"]},
])
def refine_each():
    return RefineEach()
