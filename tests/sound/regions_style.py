"""Programs written the way people write them, using the constructs issue 13 makes regions of:
generator expressions (``"\\n".join(...)``, ``sum``, ``any``/``all``), filters (a comprehension's
``if``, an ``append`` under a condition, verify-then-fix per item), functions as values
(``key=lambda``, ``max(d, key=d.get)``), routers (``self.experts[route](...)``), ``with`` blocks
(timers, locks), effects under a runtime condition, ``{**a, **b}`` of outputs and set literals; plus
critique/revise ``while`` loops (a static bound: unrolled branches; no bound: a loop region). DSPy,
LangChain and agent styles."""

from __future__ import annotations

import collections
import logging
import threading
from contextlib import contextmanager

from xcs import Operator

from sound.common import EVENTS, Cache, FakeLLM, Tool, program

logger = logging.getLogger("corpus.regions")
DOCS = [
    {"question": "Why is Mars red?", "docs": ["Mars has iron oxide.", "", "Mars is cold.", "  "]},
    {"question": "Who made Python?", "docs": ["Guido van Rossum made Python."]},
    {"question": "Empty?", "docs": []},
]
TEXTS = [
    {"text": "alpha beta\n\ngamma\n\n\n  \ndelta epsilon zeta"},
    {"text": ""},
    {"text": "one\n\ntwo"},
]
QS = [{"question": q} for q in ("What colour is Mars?", "Compute 6 * 7", "Who made Python?", "hello")]


@contextmanager
def timer(name):
    EVENTS.effect("timer.start", name)
    yield
    EVENTS.effect("timer.stop", name)


# 1 ---------------------------------------------------------------------------------------------
class BulletContext(Operator):
    """DSPy-style: the retrieved passages as a bullet list in the prompt (a generator expression)."""

    def __init__(self):
        self.generate = FakeLLM("bullets", "echo")

    def forward(self, *, inputs):
        context = "\n".join(f"- {d}" for d in inputs["docs"])
        return self.generate(inputs={"prompt": f"Context:\n{context}\nQ: {inputs['question']}"})


@program("reg_bullet_context", "dspy", DOCS)
def bullet_context():
    return BulletContext()


# 2 ---------------------------------------------------------------------------------------------
class StuffDocuments(Operator):
    """LangChain's stuff-documents chain: joined page contents and a word budget (``sum`` of a genexpr)."""

    def __init__(self):
        self.llm = FakeLLM("stuff", "echo")

    def forward(self, *, inputs):
        words = sum(len(d.split()) for d in inputs["docs"])
        joined = "\n\n".join(d.strip() for d in inputs["docs"])
        answer = self.llm(inputs={"prompt": joined + "\n" + inputs["question"]})["text"]
        return {"answer": answer, "words": words, "over_budget": words > 6}


@program("reg_stuff_documents", "langchain", DOCS)
def stuff_documents():
    return StuffDocuments()


# 3 ---------------------------------------------------------------------------------------------
class ChunkSummaries(Operator):
    """Map-reduce summarisation over the non-empty chunks (a filter, then a map of LLM calls)."""

    def __init__(self):
        self.summarize = FakeLLM("chunk-sum", "echo", delay=0.02)
        self.combine = FakeLLM("combine", "echo")

    def forward(self, *, inputs):
        chunks = [c.strip() for c in inputs["text"].split("\n\n") if c.strip()]
        partial = [self.summarize(inputs={"prompt": c})["text"] for c in chunks]
        return {"n": len(chunks), "summary": self.combine(inputs={"prompt": " | ".join(partial)})["text"]}


@program("reg_chunk_summaries", "langchain", TEXTS, slow=True)
def chunk_summaries():
    return ChunkSummaries()


# 4 ---------------------------------------------------------------------------------------------
class VerifyThenFix(Operator):
    """Per question: answer, verify, and fix only what the verifier rejects (a branch per element)."""

    def __init__(self):
        self.answer = FakeLLM("vf-answer", "echo")
        self.verify = FakeLLM("vf-verify", "yesno")
        self.fix = FakeLLM("vf-fix", "echo")

    def forward(self, *, inputs):
        fixed = []
        for q in inputs["questions"]:
            a = self.answer(inputs={"prompt": q})["text"]
            if self.verify(inputs={"prompt": a})["text"] == "no":
                a = self.fix(inputs={"prompt": a})["text"]
            fixed.append(a)
        return {"answers": fixed}


@program("reg_verify_then_fix", "agent", [{"questions": ["a", "b", "c", "d"]}, {"questions": []}, {"questions": ["e"]}])
def verify_then_fix():
    return VerifyThenFix()


# 5 ---------------------------------------------------------------------------------------------
class KeepVerified(Operator):
    """Keep only the drafts the judge approves (an append under a condition with calls per element)."""

    def __init__(self):
        self.draft = FakeLLM("kv-draft", "echo")
        self.judge = FakeLLM("kv-judge", "yesno")

    def forward(self, *, inputs):
        kept = []
        for topic in inputs["topics"]:
            d = self.draft(inputs={"prompt": topic})["text"]
            if self.judge(inputs={"prompt": d})["text"] == "yes":
                kept.append(d)
        return {"kept": kept, "n": len(kept)}


@program("reg_keep_verified", "agent", [{"topics": ["x", "y", "z", "w", "v"]}, {"topics": []}, {"topics": ["q"]}])
def keep_verified():
    return KeepVerified()


# 6 ---------------------------------------------------------------------------------------------
class JudgePanel(Operator):
    """Three judges; ``all``/``any`` over their verdicts (generator expressions over outputs)."""

    def __init__(self):
        self.judges = [FakeLLM(f"panel{i}", "yesno", delay=0.02) for i in range(3)]

    def forward(self, *, inputs):
        verdicts = [j(inputs={"prompt": inputs["question"]})["text"] for j in self.judges]
        return {"unanimous": all(v == "yes" for v in verdicts), "any": any(v == "yes" for v in verdicts),
                "yes": sum(1 for v in verdicts if v == "yes")}


@program("reg_judge_panel", "ember", QS, slow=True)
def judge_panel():
    return JudgePanel()


# 7 ---------------------------------------------------------------------------------------------
class ExpertRouter(Operator):
    """LangChain's router chain: a classifier picks the expert by name (``self.experts[route]``)."""

    def __init__(self):
        self.classify = FakeLLM("classify", "route")
        self.experts = {name: FakeLLM(f"expert-{name}", "echo") for name in ("math", "search", "chat")}

    def forward(self, *, inputs):
        route = self.classify(inputs={"prompt": inputs["question"]})["text"]
        out = self.experts[route](inputs={"prompt": inputs["question"]})
        return {"route": route, "answer": out["text"]}


@program("reg_expert_router", "langchain", QS)
def expert_router():
    return ExpertRouter()


# 8 ---------------------------------------------------------------------------------------------
class TierByIndex(Operator):
    """A model picked from a list by the caller's tier (an index, negative ones included)."""

    def __init__(self):
        self.models = [FakeLLM(f"tier{i}", "echo") for i in range(3)]

    def forward(self, *, inputs):
        return {"answer": self.models[inputs["tier"]](inputs={"prompt": inputs["question"]})["text"]}


@program("reg_tier_by_index", "flags", [{"tier": 0, "question": "a"}, {"tier": 2, "question": "b"},
                                        {"tier": -1, "question": "c"}, {"tier": 5, "question": "d"}])
def tier_by_index():
    return TierByIndex()


# 9 ---------------------------------------------------------------------------------------------
class ToolAgentStep(Operator):
    """One agent step: the planner names a tool, the agent calls it from its tool dict."""

    def __init__(self):
        self.planner = FakeLLM("planner", "route")
        self.tools = {"math": Tool("calc"), "search": Tool("search"), "chat": Tool("upper")}

    def forward(self, *, inputs):
        tool = self.planner(inputs={"prompt": inputs["question"]})["text"]
        arg = {"math": "6 * 7", "search": "topic2", "chat": inputs["question"]}[tool]
        observation = self.tools[tool](inputs={"arg": arg})["result"]
        return {"tool": tool, "observation": observation}


@program("reg_tool_agent_step", "agent", QS)
def tool_agent_step():
    return ToolAgentStep()


# 10 --------------------------------------------------------------------------------------------
class RankByScore(Operator):
    """Score each document with the LLM, then rank them (``sorted(..., key=lambda r: ...)``)."""

    def __init__(self):
        self.scorer = FakeLLM("rank-score", "score")

    def forward(self, *, inputs):
        scored = [{"doc": d, "score": int(self.scorer(inputs={"prompt": d})["text"])} for d in inputs["docs"]]
        ranked = sorted(scored, key=lambda r: -r["score"])
        best = max(range(len(scored)), key=lambda i: scored[i]["score"]) if scored else -1
        return {"top": [r["doc"] for r in ranked[:2]], "best": best}


@program("reg_rank_by_score", "rag", DOCS)
def rank_by_score():
    return RankByScore()


# 11 --------------------------------------------------------------------------------------------
class MajorityGet(Operator):
    """Self-consistency: the most frequent vote (``max(tally, key=tally.get)``)."""

    def __init__(self):
        self.samples = [FakeLLM(f"maj{i}", "vote") for i in range(5)]

    def forward(self, *, inputs):
        votes = [s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples]
        tally = collections.Counter(votes)
        return {"answer": max(tally, key=tally.get), "votes": dict(tally)}


@program("reg_majority_get", "voting", QS)
def majority_get():
    return MajorityGet()


# 12 --------------------------------------------------------------------------------------------
class MergedOutputs(Operator):
    """Two operators' outputs merged into one record (``{**a, **b}``) with a set literal of tags."""

    def __init__(self):
        self.meta = FakeLLM("meta", "label")
        self.body = FakeLLM("body", "echo")

    def forward(self, *, inputs):
        meta = {"label": self.meta(inputs={"prompt": inputs["question"]})["text"]}
        body = self.body(inputs={"prompt": inputs["question"]})
        tags = {meta["label"], "reviewed"}
        return {**meta, **body, "question": inputs["question"], "n_tags": len(tags)}


@program("reg_merged_outputs", "ember", QS)
def merged_outputs():
    return MergedOutputs()


# 13 --------------------------------------------------------------------------------------------
class TimedCall(Operator):
    """A timer around the model call (a ``with`` block on a context manager)."""

    def __init__(self):
        self.model = FakeLLM("timed-call", "echo")

    def forward(self, *, inputs):
        with timer(inputs["question"]):
            answer = self.model(inputs={"prompt": inputs["question"]})["text"]
        return {"answer": answer}


@program("reg_timed_call", "eval", QS)
def timed_call():
    return TimedCall()


# 14 --------------------------------------------------------------------------------------------
class TimedToolFailure(Operator):
    """A timer around a tool that raises on some inputs: the exception goes through the block."""

    def __init__(self):
        self.calc = Tool("calc")

    def forward(self, *, inputs):
        with timer("calc"):
            result = self.calc(inputs={"arg": inputs["expr"]})["result"]
        return {"result": result}


@program("reg_timed_tool_failure", "eval", [{"expr": "6 * 7"}, {"expr": "not math"}, {"expr": "2 + 2"}])
def timed_tool_failure():
    return TimedToolFailure()


# 15 --------------------------------------------------------------------------------------------
class LockedStats(Operator):
    """Shared statistics updated under a lock (a ``with`` block with effects on held state)."""

    def __init__(self):
        self.model = FakeLLM("locked-stats", "echo")
        self.lock = threading.Lock()
        self.stats = {"calls": 0, "chars": 0}

    def forward(self, *, inputs):
        answer = self.model(inputs={"prompt": inputs["question"]})["text"]
        with self.lock:
            before = self.stats["calls"]
            self.stats["calls"] += 1
            self.stats["chars"] += len(answer)
        return {"answer": answer, "before": before}


@program("reg_locked_stats", "eval", QS, mutate=lambda op, i: op.stats.update(calls=op.stats["calls"] + 10))
def locked_stats():
    return LockedStats()


# 16 --------------------------------------------------------------------------------------------
class WarnOnLong(Operator):
    """A warning logged only when the answer is long (an effect under a runtime condition)."""

    def __init__(self):
        self.model = FakeLLM("warn-long", "echo")

    def forward(self, *, inputs):
        answer = self.model(inputs={"prompt": inputs["question"] * 3})["text"]
        if int(answer.split("#")[1]) % 2:
            logger.warning("odd answer id for %s", inputs["question"])
            print("odd:", answer)
        return {"answer": answer}


@program("reg_warn_on_long", "budget", QS)
def warn_on_long():
    return WarnOnLong()


# 17 --------------------------------------------------------------------------------------------
class CacheOrCall(Operator):
    """A response cache: call the model and store the answer only on a miss."""

    def __init__(self):
        self.cache = Cache()
        self.model = FakeLLM("cache-or-call", "echo")

    def forward(self, *, inputs):
        hit = self.cache.get(inputs["question"])
        if hit is None:
            hit = self.model(inputs={"prompt": inputs["question"]})["text"]
            self.cache.put(inputs["question"], hit)
        return {"answer": hit}


@program("reg_cache_or_call", "rag", QS[:2] + QS[:2] + QS[2:])
def cache_or_call():
    return CacheOrCall()


# 18 --------------------------------------------------------------------------------------------
class MembersJoined(Operator):
    """An ensemble's answers joined (a generator expression over a static list of operators)."""

    def __init__(self):
        self.members = [FakeLLM(f"join{i}", "echo", delay=0.02) for i in range(3)]

    def forward(self, *, inputs):
        return {"answer": " | ".join(m(inputs={"prompt": inputs["question"]})["text"] for m in self.members)}


@program("reg_members_joined", "ember", QS, slow=True)
def members_joined():
    return MembersJoined()


# 19 --------------------------------------------------------------------------------------------
class TimedFilteredMap(Operator):
    """Nested regions: inside a timer, a map of LLM calls over the non-empty chunks."""

    def __init__(self):
        self.model = FakeLLM("tfm", "echo")

    def forward(self, *, inputs):
        with timer("batch"):
            outs = [self.model(inputs={"prompt": c})["text"] for c in inputs["text"].split("\n") if c.strip()]
        return {"outs": outs, "n": len(outs)}


@program("reg_timed_filtered_map", "eval", TEXTS)
def timed_filtered_map():
    return TimedFilteredMap()


# 20 --------------------------------------------------------------------------------------------
class LabelCounts(Operator):
    """Classify each review, then count the labels of interest (``sum`` with a condition)."""

    def __init__(self):
        self.classify = FakeLLM("label-counts", "label")

    def forward(self, *, inputs):
        labels = [self.classify(inputs={"prompt": r})["text"] for r in inputs["reviews"]]
        positives = sum(1 for label in labels if label == "positive")
        return {"labels": labels, "positive": positives, "mixed": len(set(labels)) > 1}


@program("reg_label_counts", "dspy", [{"reviews": ["good", "bad", "fine", "great"]}, {"reviews": []}, {"reviews": ["ok"]}])
def label_counts():
    return LabelCounts()


# 21 --------------------------------------------------------------------------------------------
class CritiqueRevise(Operator):
    """Critique, then revise until the judge approves, at most three rounds (a while loop on outputs
    with a static bound: unrolled into nested branches)."""

    def __init__(self, rounds=3):
        self.draft = FakeLLM("cr-draft", "echo", delay=0.05)
        self.judge = FakeLLM("cr-judge", "yesno", delay=0.05)
        self.revise = FakeLLM("cr-revise", "echo", delay=0.05)
        self.rounds = rounds

    def forward(self, *, inputs):
        draft = self.draft(inputs={"prompt": inputs["question"]})["text"]
        rounds = 0
        while rounds < self.rounds and self.judge(inputs={"prompt": draft})["text"] != "yes":
            draft = self.revise(inputs={"prompt": draft})["text"]
            rounds += 1
        return {"answer": draft, "rounds": rounds}


@program("reg_critique_revise", "agent", QS)
def critique_revise():
    return CritiqueRevise()


# 22 --------------------------------------------------------------------------------------------
class ReviseUntilApproved(Operator):
    """Revise until the judge approves, with no bound but the judge (a while loop on an output with
    no static bound: a loop region)."""

    def __init__(self):
        self.judge = FakeLLM("rua-judge", "yesno")
        self.revise = FakeLLM("rua-revise", "echo")

    def forward(self, *, inputs):
        draft = inputs["question"]
        while self.judge(inputs={"prompt": draft})["text"] != "yes":
            draft = self.revise(inputs={"prompt": draft})["text"]
        return {"answer": draft}


@program("reg_revise_until_approved", "agent", QS)
def revise_until_approved():
    return ReviseUntilApproved()
