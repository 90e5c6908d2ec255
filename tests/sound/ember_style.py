"""Ember-style compound systems: ensembles of models, judges, verifiers, synthesizers. Several have
independent slow model calls that a compiled plan should overlap."""

from __future__ import annotations

import logging
from collections import Counter

from xcs import Operator

from sound.common import FakeLLM, UsageMeter, program

logger = logging.getLogger("corpus.ember")
Q = [{"query": q} for q in ("Why is the sky blue?", "Name a prime.", "Best sorting algorithm?")]


# 1 ---------------------------------------------------------------------------------------------
class Ensemble(Operator):
    def __init__(self, n=3, delay=0.03):
        self.members = [FakeLLM(f"m{i}", "echo", delay) for i in range(n)]
        self.judge = FakeLLM("judge", "echo")

    def forward(self, *, inputs):
        answers = [m(inputs={"prompt": inputs["query"]})["text"] for m in self.members]
        verdict = self.judge(inputs={"prompt": "Pick the best:\n" + "\n".join(answers)})
        return {"final": verdict["text"], "answers": answers}


@program("ember_ensemble_judge", "ember", Q, slow=True)
def ensemble_judge():
    return Ensemble()


# 2 ---------------------------------------------------------------------------------------------
class VerifierLoop(Operator):
    """Answer, verify, revise once if the verifier says no."""

    def __init__(self):
        self.answerer = FakeLLM("answerer", "echo")
        self.verifier = FakeLLM("verifier", "yesno")
        self.reviser = FakeLLM("reviser", "echo")

    def forward(self, *, inputs):
        draft = self.answerer(inputs={"prompt": inputs["query"]})["text"]
        ok = self.verifier(inputs={"prompt": f"Is '{draft}' correct for {inputs['query']}?"})["text"]
        if ok == "yes":
            return {"answer": draft, "revised": False}
        better = self.reviser(inputs={"prompt": f"Fix: {draft}"})["text"]
        return {"answer": better, "revised": True}


@program("ember_verify_revise", "ember", Q + [{"query": "2+2"}])
def verify_revise():
    return VerifierLoop()


# 3 ---------------------------------------------------------------------------------------------
class MostCommon(Operator):
    def __init__(self, n=5):
        self.samplers = [FakeLLM(f"s{i}", "vote", 0.02) for i in range(n)]

    def forward(self, *, inputs):
        votes = [s(inputs={"prompt": inputs["query"]})["text"] for s in self.samplers]
        best, count = Counter(votes).most_common(1)[0]
        return {"answer": best, "support": count}


@program("ember_most_common", "ember", Q, slow=True)
def most_common():
    return MostCommon()


# 4 ---------------------------------------------------------------------------------------------
class JudgeSynthesis(Operator):
    """Ensemble -> per-answer critique (independent) -> synthesis."""

    def __init__(self):
        self.members = [FakeLLM(f"js{i}", "echo", 0.02) for i in range(3)]
        self.critic = FakeLLM("critic", "score", 0.02)
        self.synth = FakeLLM("synth", "echo")

    def forward(self, *, inputs):
        answers = [m(inputs={"prompt": inputs["query"]})["text"] for m in self.members]
        scores = [int(self.critic(inputs={"prompt": f"Rate: {a}"})["text"]) for a in answers]
        ranked = sorted(zip(scores, answers), reverse=True)
        return {"final": self.synth(inputs={"prompt": f"Synthesize: {ranked}"})["text"], "best": ranked[0][1]}


@program("ember_judge_synthesis", "ember", Q, slow=True)
def judge_synthesis():
    return JudgeSynthesis()


# 5 ---------------------------------------------------------------------------------------------
class NamedEnsemble(Operator):
    """Members in a dict, iterated with .items()."""

    def __init__(self):
        self.models = {"gpt": FakeLLM("gpt", "echo", 0.02), "claude": FakeLLM("claude", "echo", 0.02),
                       "llama": FakeLLM("llama", "echo", 0.02)}
        self.aggregate = FakeLLM("agg", "echo")

    def forward(self, *, inputs):
        replies = {name: model(inputs={"prompt": inputs["query"]})["text"] for name, model in self.models.items()}
        summary = "; ".join(f"{k}={v}" for k, v in sorted(replies.items()))
        return {"summary": self.aggregate(inputs={"prompt": summary})["text"], "replies": replies}


@program("ember_named_ensemble", "ember", Q, slow=True)
def named_ensemble():
    return NamedEnsemble()


# 6 ---------------------------------------------------------------------------------------------
class MeteredEnsemble(Operator):
    """Stops adding members once the usage meter runs out (meter changes between calls)."""

    def __init__(self):
        self.members = [FakeLLM(f"me{i}", "echo") for i in range(3)]
        self.meter = UsageMeter(budget=5)

    def forward(self, *, inputs):
        answers = []
        for member in self.members:
            if self.meter.remaining() <= 0:
                break
            answers.append(member(inputs={"prompt": inputs["query"]})["text"])
            self.meter.charge()
        return {"answers": answers}


@program("ember_metered_ensemble", "ember", Q + [{"query": "again"}])
def metered_ensemble():
    return MeteredEnsemble()


# 7 ---------------------------------------------------------------------------------------------
class WeightedJudge(Operator):
    """Per-member weights held in a dict that an offline calibration updates between calls."""

    def __init__(self):
        self.members = [FakeLLM(f"w{i}", "vote") for i in range(3)]
        self.weights = {0: 1.0, 1: 1.0, 2: 1.0}

    def forward(self, *, inputs):
        tally = {}
        for i, member in enumerate(self.members):
            vote = member(inputs={"prompt": inputs["query"]})["text"]
            tally[vote] = tally.get(vote, 0.0) + self.weights[i]
        winner = max(tally, key=tally.get)
        return {"winner": winner, "tally": tally}


def _calibrate(op, i):
    op.weights[i % 3] += 2.5


@program("ember_weighted_judge", "ember", Q, mutate=_calibrate)
def weighted_judge():
    return WeightedJudge()


# 8 ---------------------------------------------------------------------------------------------
class CascadeEnsemble(Operator):
    """Cheap model first; escalate to the expensive ensemble when unsure."""

    def __init__(self):
        self.cheap = FakeLLM("cheap", "yesno")
        self.experts = [FakeLLM(f"x{i}", "echo", 0.02) for i in range(2)]

    def forward(self, *, inputs):
        sure = self.cheap(inputs={"prompt": inputs["query"]})["text"]
        if sure == "yes":
            return {"answer": "cheap-ok", "escalated": False}
        answers = [e(inputs={"prompt": inputs["query"]})["text"] for e in self.experts]
        return {"answer": " / ".join(answers), "escalated": True}


@program("ember_cascade", "ember", Q + [{"query": "hard one"}, {"query": "x"}])
def cascade():
    return CascadeEnsemble()


# 9 ---------------------------------------------------------------------------------------------
class LoggedEnsemble(Operator):
    """Independent slow members with a logger.info between them: the log must stay in place."""

    def __init__(self):
        self.a = FakeLLM("la", "echo", 0.03)
        self.b = FakeLLM("lb", "echo", 0.03)
        self.judge = FakeLLM("lj", "echo")

    def forward(self, *, inputs):
        logger.info("ensemble start: %s", inputs["query"])
        first = self.a(inputs={"prompt": inputs["query"]})["text"]
        second = self.b(inputs={"prompt": inputs["query"]})["text"]
        logger.info("members done")
        return {"final": self.judge(inputs={"prompt": f"{first} vs {second}"})["text"]}


@program("ember_logged_ensemble", "ember", Q, slow=True)
def logged_ensemble():
    return LoggedEnsemble()


# 10 --------------------------------------------------------------------------------------------
class SubEnsemble(Operator):
    """A non-jit sub-composite with two independent slow calls."""

    def __init__(self, tag):
        self.left = FakeLLM(f"{tag}_l", "echo", 0.03)
        self.right = FakeLLM(f"{tag}_r", "echo", 0.03)

    def forward(self, *, inputs):
        l = self.left(inputs={"prompt": inputs["prompt"]})["text"]
        r = self.right(inputs={"prompt": inputs["prompt"]})["text"]
        return {"text": f"{l}+{r}"}


class NestedEnsembles(Operator):
    def __init__(self):
        self.groups = [SubEnsemble("g0"), SubEnsemble("g1")]
        self.judge = FakeLLM("nj", "echo")

    def forward(self, *, inputs):
        parts = [g(inputs={"prompt": inputs["query"]})["text"] for g in self.groups]
        return {"final": self.judge(inputs={"prompt": " | ".join(parts)})["text"]}


@program("ember_nested_ensembles", "ember", Q, slow=True)
def nested_ensembles():
    return NestedEnsembles()
