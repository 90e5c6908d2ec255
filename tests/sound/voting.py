"""Self-consistency: sample several answers, vote with Counter / max(key=...) / numpy."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import numpy as np

from xcs import Operator

from sound.common import FakeLLM, program

Q = [{"question": q} for q in ("pick one", "which is best?", "A or B?", "final?")]


def samplers(prefix, n, delay=0.0, style="vote"):
    return [FakeLLM(f"{prefix}{i}", style, delay) for i in range(n)]


# 1
class CounterVote(Operator):
    def __init__(self):
        self.samples = samplers("cv", 5, 0.02)

    def forward(self, *, inputs):
        votes = Counter(s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples)
        return {"answer": votes.most_common(1)[0][0], "votes": dict(votes)}


@program("vote_counter_genexpr", "vote", Q, slow=True)
def counter_vote():
    return CounterVote()


# 2
class MaxKeyVote(Operator):
    def __init__(self):
        self.samples = samplers("mk", 4)

    def forward(self, *, inputs):
        answers = [s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples]
        best = max(set(answers), key=answers.count)
        return {"answer": best, "n": len(answers)}


@program("vote_max_key_count", "vote", Q)
def max_key_vote():
    return MaxKeyVote()


# 3
class ScoredVote(Operator):
    """Scores via numpy mean/argsort over sampled scores."""

    def __init__(self):
        self.candidates = samplers("cand", 3, 0.02, "echo")
        self.scorer = FakeLLM("scorer", "score")

    def forward(self, *, inputs):
        cands = [c(inputs={"prompt": inputs["question"]})["text"] for c in self.candidates]
        scores = np.array([float(self.scorer(inputs={"prompt": c})["text"]) for c in cands])
        order = np.argsort(scores)[::-1]
        return {"best": cands[int(order[0])], "mean": float(np.mean(scores))}


@program("vote_numpy_scores", "vote", Q, slow=True)
def scored_vote():
    return ScoredVote()


# 4
class ThresholdVote(Operator):
    """Return the majority only if it reaches the (mutable) agreement threshold."""

    def __init__(self):
        self.samples = samplers("tv", 5)
        self.policy = {"min_agreement": 0.5}

    def forward(self, *, inputs):
        votes = [s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples]
        top, n = Counter(votes).most_common(1)[0]
        if n / len(votes) >= self.policy["min_agreement"]:
            return {"answer": top, "abstain": False}
        return {"answer": None, "abstain": True}


def _stricter(op, i):
    op.policy["min_agreement"] = [0.3, 0.9, 0.1][i % 3]


@program("vote_threshold_policy", "vote", Q, mutate=_stricter)
def threshold_vote():
    return ThresholdVote()


# 5
class DefaultdictVote(Operator):
    def __init__(self):
        self.samples = samplers("dd", 3)

    def forward(self, *, inputs):
        tally = defaultdict(int)
        for s in self.samples:
            tally[s(inputs={"prompt": inputs["question"]})["text"]] += 1
        ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
        return {"answer": ranked[0][0], "ranked": ranked}


@program("vote_defaultdict", "vote", Q)
def defaultdict_vote():
    return DefaultdictVote()


# 6
class MedianScore(Operator):
    def __init__(self):
        self.raters = samplers("rate", 3, 0.02, "score")

    def forward(self, *, inputs):
        scores = [int(r(inputs={"prompt": inputs["question"]})["text"]) for r in self.raters]
        return {"median": statistics.median(scores), "spread": max(scores) - min(scores)}


@program("vote_statistics_median", "vote", Q, slow=True)
def median_score():
    return MedianScore()


# 7
class AdaptiveSamples(Operator):
    """The number of samples used is a mutable setting (self.config['k'])."""

    def __init__(self):
        self.samples = samplers("ad", 5)
        self.config = {"k": 2}

    def forward(self, *, inputs):
        chosen = self.samples[: self.config["k"]]
        votes = [s(inputs={"prompt": inputs["question"]})["text"] for s in chosen]
        return {"answer": Counter(votes).most_common(1)[0][0], "k": len(votes)}


def _more_samples(op, i):
    op.config["k"] = min(5, op.config["k"] + 1)


@program("vote_adaptive_k", "vote", Q, mutate=_more_samples)
def adaptive_samples():
    return AdaptiveSamples()


# 8
class TieBreakJudge(Operator):
    """On a tie, ask a judge (branch on computed value)."""

    def __init__(self):
        self.samples = samplers("tb", 4)
        self.judge = FakeLLM("tiejudge", "vote")

    def forward(self, *, inputs):
        votes = Counter(s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples)
        (first, n1), *rest = votes.most_common()
        if rest and rest[0][1] == n1:
            return {"answer": self.judge(inputs={"prompt": f"{first} or {rest[0][0]}"})["text"], "tie": True}
        return {"answer": first, "tie": False}


@program("vote_tie_break", "vote", Q)
def tie_break():
    return TieBreakJudge()


# 9
class VoteHistory(Operator):
    """Keeps a running tally across calls (state mutated in forward)."""

    def __init__(self):
        self.samples = samplers("vh", 3)
        self.running = Counter()

    def forward(self, *, inputs):
        votes = [s(inputs={"prompt": inputs["question"]})["text"] for s in self.samples]
        self.running.update(votes)
        return {"now": votes, "overall": self.running.most_common(1)[0][0]}


@program("vote_running_counter", "vote", Q)
def vote_history():
    return VoteHistory()


# 10
class SoftVote(Operator):
    """Probability-weighted vote with numpy over a JSON-ish response."""

    def __init__(self):
        self.samples = samplers("sv", 3, 0.02, "score")
        self.labels = ("low", "mid", "high")

    def forward(self, *, inputs):
        raw = np.array([int(s(inputs={"prompt": inputs["question"]})["text"]) for s in self.samples], dtype=float)
        probs = raw / raw.sum() if raw.sum() else np.full(len(raw), 1 / len(raw))
        idx = int(np.argmax(probs))
        return {"label": self.labels[idx], "probs": [round(float(p), 4) for p in probs]}


@program("vote_numpy_soft", "vote", Q, slow=True)
def soft_vote():
    return SoftVote()
