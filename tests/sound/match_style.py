"""Programs that dispatch with ``match`` (issue 13), written the way agent, DSPy and LangChain code
writes it: a ReAct step on ``json.loads`` of the model's action (mapping patterns), a router on a
classifier's label (literals, or-patterns), class patterns on a judge's dataclass verdict, sequence
patterns on a retriever's hit list, a guard that asks a checker model, per-document dispatch inside a
comprehension (a match in a map region), and a default case that raises ``ValueError``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from xcs import Operator

from sound.common import EVENTS, FakeLLM, Tool, digest, program

QUESTIONS = [{"question": q} for q in ("What colour is Mars?", "Compute 6 * 7", "Who made Python?", "hello", "tides?")]


def action_for(prompt: str) -> str:
    """A deterministic ReAct action as the model's JSON text (sometimes not an action at all)."""
    h = digest(prompt)
    return [
        json.dumps({"tool": "search", "query": f"topic{h % 7}"}),
        json.dumps({"tool": "calc", "args": {"expr": f"{h % 13} * {h % 5 + 1}"}}),
        json.dumps({"final": f"answer{h % 31}", "confidence": (h % 10) / 10}),
        json.dumps(["search", f"topic{h % 3}"]),
        json.dumps({"tool": "browse", "url": "x"}),
    ][h % 5]


class ActionLLM(Operator):
    """``{"prompt": str}`` -> ``{"text": <a JSON action>}``; logged like every fake model."""

    def __init__(self, name: str = "agent"):
        self.name = name

    def forward(self, *, inputs):
        prompt = str(inputs["prompt"])
        with EVENTS.call("llm", self.name, prompt):
            return {"text": action_for(f"{self.name}|{prompt}")}


@dataclass(frozen=True)
class Verdict:
    label: str
    score: float
    reason: str = ""


class Judge(Operator):
    """A judge model whose output holds a ``Verdict`` (a typed, DSPy-style prediction)."""

    def forward(self, *, inputs):
        answer = str(inputs["answer"])
        with EVENTS.call("llm", "judge", answer):
            h = digest(answer)
            label = ["pass", "fail", "unsure"][h % 3]
            return {"verdict": Verdict(label, (h % 100) / 100, f"because {h % 7}")}


class Retriever(Operator):
    """A retriever returning a list of hits (0 to 3 passages)."""

    def forward(self, *, inputs):
        query = str(inputs["query"])
        with EVENTS.call("tool", "retriever", query):
            h = digest(query)
            return {"hits": [f"passage{(h >> i) % 9}" for i in range(h % 4)]}


# 1 ---------------------------------------------------------------------------------------------
class ReActStep(Operator):
    """Agent style: one ReAct step; the action is parsed JSON, dispatched with mapping patterns."""

    def __init__(self):
        self.agent = ActionLLM()
        self.search, self.calc = Tool("search"), Tool("calc")

    def forward(self, *, inputs):
        action = json.loads(self.agent(inputs={"prompt": inputs["question"]})["text"])
        match action:
            case {"tool": "search", "query": query}:
                observation = self.search(inputs={"arg": query})["result"]
            case {"tool": "calc", "args": {"expr": expr}}:
                observation = self.calc(inputs={"arg": expr})["result"]
            case {"final": answer, **extra}:
                return {"answer": answer, "extra": extra, "steps": 1}
            case [tool, argument]:
                observation = f"positional call {tool}({argument})"
            case _:
                observation = "unknown action"
        return {"answer": None, "observation": observation, "steps": 2}


@program("match_react_step", "agent", QUESTIONS)
def react_step():
    return ReActStep()


# 2 ---------------------------------------------------------------------------------------------
class LabelRouter(Operator):
    """LangChain's router chain: a classifier's label picks the destination chain."""

    def __init__(self):
        self.classify = FakeLLM("classifier", "route")
        self.math, self.search, self.chat = FakeLLM("math"), Tool("search"), FakeLLM("chat")

    def forward(self, *, inputs):
        label = self.classify(inputs={"prompt": inputs["question"]})["text"]
        match label.strip().lower():
            case "math":
                text = self.math(inputs={"prompt": f"Solve: {inputs['question']}"})["text"]
            case "search":
                text = self.search(inputs={"arg": "topic" + str(len(inputs["question"]) % 7)})["result"]
            case "chat" | "smalltalk":
                text = self.chat(inputs={"prompt": inputs["question"]})["text"]
            case other:
                text = f"no route for {other}"
        return {"route": label, "text": text}


@program("match_label_router", "langchain", QUESTIONS)
def label_router():
    return LabelRouter()


# 3 ---------------------------------------------------------------------------------------------
class JudgeThenRevise(Operator):
    """DSPy style: a judge's typed verdict, dispatched with class patterns (positional and keyword)."""

    def __init__(self):
        self.draft, self.judge, self.revise = FakeLLM("draft"), Judge(), FakeLLM("revise")

    def forward(self, *, inputs):
        draft = self.draft(inputs={"prompt": inputs["question"]})["text"]
        match self.judge(inputs={"answer": draft})["verdict"]:
            case Verdict("pass", score) if score >= 0.3:
                return {"answer": draft, "score": score}
            case Verdict(label="fail", reason=why) | Verdict(label="pass", reason=why):
                better = self.revise(inputs={"prompt": f"{draft}\nCritique: {why}"})["text"]
                return {"answer": better, "score": None}
            case Verdict(label=label):
                return {"answer": draft, "score": label}


@program("match_judge_revise", "dspy", QUESTIONS)
def judge_then_revise():
    return JudgeThenRevise()


# 4 ---------------------------------------------------------------------------------------------
class HitsAnswer(Operator):
    """RAG: what the prompt holds depends on how many passages the retriever found (sequence patterns)."""

    def __init__(self):
        self.retrieve, self.answer = Retriever(), FakeLLM("reader")

    def forward(self, *, inputs):
        match self.retrieve(inputs={"query": inputs["question"]})["hits"]:
            case []:
                return {"answer": "I don't know.", "sources": 0}
            case [only]:
                prompt = f"Context: {only}\nQ: {inputs['question']}"
            case [best, *others]:
                prompt = f"Context: {best} (+{len(others)} more)\nQ: {inputs['question']}"
        return {"answer": self.answer(inputs={"prompt": prompt})["text"], "sources": prompt.count("passage")}


@program("match_hits_answer", "langchain", QUESTIONS)
def hits_answer():
    return HitsAnswer()


# 5 ---------------------------------------------------------------------------------------------
class CheckedFinal(Operator):
    """Agent style: a final answer is accepted only if a checker model agrees (a guard on an output)."""

    def __init__(self):
        self.agent, self.checker, self.search = ActionLLM("planner"), FakeLLM("checker", "yesno"), Tool("search")

    def forward(self, *, inputs):
        action = json.loads(self.agent(inputs={"prompt": inputs["question"]})["text"])
        match action:
            case {"final": answer} if self.checker(inputs={"prompt": f"Is {answer} right?"})["text"] == "yes":
                return {"answer": answer, "checked": True}
            case {"final": answer}:
                return {"answer": answer, "checked": False}
            case {"tool": "search", "query": str(query)}:
                return {"answer": self.search(inputs={"arg": query})["result"], "checked": None}
            case _:
                return {"answer": None, "checked": None}


@program("match_checked_final", "agent", QUESTIONS)
def checked_final():
    return CheckedFinal()


# 6 ---------------------------------------------------------------------------------------------
class SentimentReply(Operator):
    """A sentiment label routed with or-patterns and an as-pattern."""

    def __init__(self):
        self.sentiment, self.thank, self.apologise = FakeLLM("sentiment", "label"), FakeLLM("thank"), FakeLLM("sorry")

    def forward(self, *, inputs):
        match self.sentiment(inputs={"prompt": inputs["question"]})["text"]:
            case ("positive" | "neutral") as mood:
                reply = self.thank(inputs={"prompt": f"{mood}: {inputs['question']}"})["text"]
            case "negative":
                reply = self.apologise(inputs={"prompt": inputs["question"]})["text"]
            case _:
                reply = ""
        return {"reply": reply}


@program("match_sentiment_reply", "agent", QUESTIONS)
def sentiment_reply():
    return SentimentReply()


# 7 ---------------------------------------------------------------------------------------------
DOCS = [
    {"docs": [{"type": "pdf", "text": "Mars is red."}, {"type": "web", "url": "topic2"}, {"type": "note"}]},
    {"docs": []},
    {"docs": [{"type": "web", "url": "topic5"}, "loose text"]},
]


class DocumentLoader(Operator):
    """LangChain loaders: each document is dispatched on its type, every document concurrently."""

    def __init__(self):
        self.summarise, self.fetch = FakeLLM("summarise", delay=0.05), Tool("search", delay=0.05)

    def load(self, doc):
        match doc:
            case {"type": "pdf", "text": text}:
                return self.summarise(inputs={"prompt": text})["text"]
            case {"type": "web", "url": url}:
                return self.fetch(inputs={"arg": url})["result"]
            case {"type": kind}:
                return f"skipped a {kind}"
            case str(text):
                return text
            case _:
                return ""

    def forward(self, *, inputs):
        return {"pages": [self.load(doc) for doc in inputs["docs"]]}


@program("match_document_loader", "langchain", DOCS, slow=True)
def document_loader():
    return DocumentLoader()


# 8 ---------------------------------------------------------------------------------------------
class StrictTools(Operator):
    """A tool executor that refuses an unknown action: the default case raises ``ValueError``."""

    def __init__(self):
        self.agent, self.search, self.calc = ActionLLM("strict"), Tool("search"), Tool("calc")

    def forward(self, *, inputs):
        action = json.loads(self.agent(inputs={"prompt": inputs["question"]})["text"])
        match action:
            case {"tool": "search", "query": query}:
                result = self.search(inputs={"arg": query})["result"]
            case {"tool": "calc", "args": {"expr": expr}}:
                result = self.calc(inputs={"arg": expr})["result"]
            case {"final": answer}:
                result = answer
            case _:
                raise ValueError(f"unknown action: {action!r}")
        return {"result": result}


@program("match_strict_tools", "agent", QUESTIONS)
def strict_tools():
    return StrictTools()
