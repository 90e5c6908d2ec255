"""Shared pieces of the soundness corpus: a deterministic fake LLM and tools, the state objects real
compound-AI programs hold (conversation memory, usage meters, document stores, score sheets), a
thread-safe event log, and the ``Program`` record every corpus module registers.

Nothing here is jitted. Every LLM/tool call is logged in ``EVENTS.calls`` (compared as a multiset:
pure calls may overlap) and every state change made through these objects in ``EVENTS.effects``
(compared in order: eager's order is the program order). ``TIMING.scale`` multiplies every operator's
``delay`` (0 in the differential tests, 1 in the overlap test and the figures script).
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from xcs import Operator


# ---------------------------------------------------------------------- the event log
class EventLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: list[tuple] = []
            self.effects: list[tuple] = []
            self.inflight = 0
            self.peak = 0

    @contextmanager
    def call(self, kind: str, name: str, payload: Any, delay: float = 0.0):
        with self._lock:
            self.calls.append((kind, name, repr(payload)))
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
        try:
            seconds = delay * TIMING.scale
            if seconds:
                time.sleep(seconds)
            yield
        finally:
            with self._lock:
                self.inflight -= 1

    def effect(self, *what: Any) -> None:
        with self._lock:
            self.effects.append(what)


class _Timing:
    scale = 0.0


EVENTS = EventLog()
TIMING = _Timing()


def digest(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


# ---------------------------------------------------------------------- fake model and tools
def respond(style: str, name: str, prompt: str) -> str:
    """A deterministic completion: a function of the model's name, style and the prompt only."""
    h = digest(f"{name}|{prompt}")
    if style == "echo":
        return f"{name}#{h % 100003}"
    if style == "json":
        body = json.dumps({"answer": f"ans{h % 97}", "confidence": round((h % 100) / 100, 2), "tags": [f"t{h % 5}"]})
        if h % 4 == 0:
            return f"Sure! Here is the JSON:\n```json\n{body}\n```"
        if h % 9 == 1:
            return "I cannot answer that in JSON."
        return body
    if style == "vote":
        return ["A", "B", "C", "A", "B"][h % 5]
    if style == "score":
        return str(h % 11)
    if style == "yesno":
        return "yes" if h % 3 else "no"
    if style == "react":
        steps = prompt.count("Observation:")
        if steps >= 2 + h % 2:
            return f"Thought: done\nFinal Answer: fa{h % 89}"
        tool = ["search", "calc", "lookup"][h % 3]
        arg = {"search": f"topic{h % 7}", "calc": f"{h % 13} * {h % 7 + 1}", "lookup": f"key{h % 4}"}[tool]
        return f"Thought: I should use {tool}\nAction: {tool}[{arg}]"
    if style == "route":
        return ["math", "search", "chat"][h % 3]
    if style == "list":
        return "\n".join(f"- item{(h >> i) % 17}" for i in range(1 + h % 4))
    if style == "label":
        return ["positive", "negative", "neutral"][h % 3]
    raise ValueError(f"unknown style {style!r}")


class FakeLLM(Operator):
    """``{"prompt": str}`` -> ``{"text": str}``; deterministic, logged, optionally slow."""

    def __init__(self, name: str = "llm", style: str = "echo", delay: float = 0.0):
        self.name = name
        self.style = style
        self.delay = delay

    def forward(self, *, inputs):
        prompt = str(inputs["prompt"])
        with EVENTS.call("llm", self.name, prompt, self.delay):
            return {"text": respond(self.style, self.name, prompt)}


KB = {
    "topic0": "Mars is red because of iron oxide.",
    "topic1": "The Nile is the longest river.",
    "topic2": "Python was created by Guido van Rossum.",
    "topic3": "Light travels at 299792 km/s.",
    "topic4": "Bees communicate by dancing.",
    "topic5": "The Moon causes tides.",
    "topic6": "Copper conducts electricity.",
    "key0": "alpha", "key1": "beta", "key2": "gamma", "key3": "delta",
}


def run_tool(kind: str, arg: str) -> str:
    if kind == "search":
        return KB.get(arg.strip(), f"no results for {arg.strip()}")
    if kind == "calc":
        m = re.fullmatch(r"\s*(\d+)\s*([-+*/])\s*(\d+)\s*", arg)
        if not m:
            raise ValueError(f"cannot calculate {arg!r}")
        a, op, b = int(m[1]), m[2], int(m[3])
        return str({"+": a + b, "-": a - b, "*": a * b, "/": a // max(b, 1)}[op])
    if kind == "lookup":
        return KB.get(arg.strip(), "unknown")
    if kind == "upper":
        return arg.upper()
    raise ValueError(f"unknown tool {kind!r}")


class Tool(Operator):
    """``{"arg": str}`` -> ``{"result": str}``: a deterministic, logged tool call."""

    def __init__(self, kind: str, delay: float = 0.0):
        self.kind = kind
        self.delay = delay

    def forward(self, *, inputs):
        arg = str(inputs["arg"])
        with EVENTS.call("tool", self.kind, arg, self.delay):
            return {"result": run_tool(self.kind, arg)}


# ---------------------------------------------------------------------- state objects
class ConversationMemory:
    """LangChain-style buffer memory: ``load()`` the history, ``save()`` a turn."""

    def __init__(self, window: int | None = None):
        self.window = window
        self.messages: list[tuple[str, str]] = []

    def load(self) -> list[tuple[str, str]]:
        msgs = self.messages if self.window is None else self.messages[-self.window:]
        return list(msgs)

    def load_memory_variables(self) -> dict:
        return {"history": "\n".join(f"Human: {h}\nAI: {a}" for h, a in self.load())}

    def save(self, human: str, ai: str) -> None:
        self.messages.append((human, ai))
        EVENTS.effect("memory.save", human, ai)

    def clear(self) -> None:
        self.messages.clear()
        EVENTS.effect("memory.clear")

    def snapshot(self):
        return tuple(self.messages)


class UsageMeter:
    """Counts calls (or tokens) against a budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0

    def remaining(self) -> int:
        return self.budget - self.used

    def charge(self, n: int = 1) -> None:
        self.used += n
        EVENTS.effect("meter.charge", n)

    def snapshot(self):
        return (self.budget, self.used)


class DocStore:
    """A mutable document store searched by word overlap (deterministic ranking)."""

    def __init__(self, docs=()):
        self.docs: list[str] = list(docs)

    def add(self, doc: str) -> None:
        self.docs.append(doc)
        EVENTS.effect("store.add", doc)

    def search(self, query: str, k: int = 2) -> list[str]:
        words = set(re.findall(r"\w+", query.lower()))
        ranked = sorted(
            range(len(self.docs)),
            key=lambda i: (-len(words & set(re.findall(r"\w+", self.docs[i].lower()))), i),
        )
        return [self.docs[i] for i in ranked[:k]]

    def __len__(self) -> int:
        return len(self.docs)

    def snapshot(self):
        return tuple(self.docs)


class Cache:
    """A user's response cache (a plain dict inside)."""

    def __init__(self):
        self.data: dict[str, str] = {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
        EVENTS.effect("cache.put", key)

    def snapshot(self):
        return tuple(sorted(self.data.items()))


# ---------------------------------------------------------------------- programs
@dataclass
class Program:
    """One corpus program: ``factory()`` builds a fresh (un-jitted) root operator and resets any
    module-level state it reads; ``inputs`` are called in sequence on that one instance, with
    ``mutate(op, i)`` run after call ``i`` (it changes the state the instance holds). ``slow``: the
    program has independent slow calls that a compiled plan should overlap."""

    name: str
    style: str
    factory: Callable[[], Operator]
    inputs: list[dict]
    mutate: Callable[[Operator, int], None] = lambda op, i: None
    slow: bool = False
    module: str = ""


REGISTRY: list[Program] = []


def program(name: str, style: str, inputs: list[dict], mutate=None, slow: bool = False):
    """Decorator for a factory function: registers the program."""

    def register(factory):
        REGISTRY.append(Program(
            name, style, factory, inputs, mutate or (lambda op, i: None), slow, factory.__module__.rsplit(".", 1)[-1]
        ))
        return factory

    return register
