"""Eval harnesses: accumulating scores in a list held by the operator, logging, print, assert,
functools.partial, with-blocks, user helper functions."""

from __future__ import annotations

import functools
import logging
import threading
from contextlib import contextmanager

from xcs import Operator

from sound.common import EVENTS, FakeLLM, program

logger = logging.getLogger("corpus.eval")
CASES = [{"question": f"q{i}", "expected": e} for i, e in enumerate(("A", "B", "C", "A"))]


def exact_match(pred, gold):
    return float(pred.strip().lower() == gold.strip().lower())


def normalise(text, lower=True, strip=True):
    if strip:
        text = text.strip()
    return text.lower() if lower else text


# 1
class ScoreList(Operator):
    def __init__(self):
        self.model = FakeLLM("evalm", "vote")
        self.scores = []

    def forward(self, *, inputs):
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        score = exact_match(pred, inputs["expected"])
        self.scores.append(score)
        return {"pred": pred, "score": score, "running_mean": sum(self.scores) / len(self.scores)}


@program("eval_score_list", "eval", CASES)
def score_list():
    return ScoreList()


# 2
class LoggedEval(Operator):
    def __init__(self):
        self.model = FakeLLM("logeval", "vote")

    def forward(self, *, inputs):
        logger.info("evaluating %s", inputs["question"])
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        logger.info("pred=%s gold=%s", pred, inputs["expected"])
        return {"pred": pred, "correct": pred == inputs["expected"]}


@program("eval_logger_info", "eval", CASES)
def logged_eval():
    return LoggedEval()


# 3
class PrintedEval(Operator):
    def __init__(self):
        self.model = FakeLLM("printeval", "vote")

    def forward(self, *, inputs):
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        print(f"{inputs['question']}: pred={pred} gold={inputs['expected']}")
        return {"pred": pred}


@program("eval_print", "eval", CASES)
def printed_eval():
    return PrintedEval()


# 4
class PartialMetric(Operator):
    def __init__(self):
        self.model = FakeLLM("partial", "vote")
        self.norm = functools.partial(normalise, lower=True)

    def forward(self, *, inputs):
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        return {"match": self.norm(pred) == self.norm(inputs["expected"])}


@program("eval_functools_partial", "eval", CASES)
def partial_metric():
    return PartialMetric()


# 5
class AssertingEval(Operator):
    def __init__(self):
        self.model = FakeLLM("asserting", "score")

    def forward(self, *, inputs):
        raw = self.model(inputs={"prompt": inputs["question"]})["text"]
        score = int(raw)
        assert 0 <= score <= 7, f"score out of range: {score}"
        return {"score": score}


@program("eval_assert_raises", "eval", CASES)
def asserting_eval():
    return AssertingEval()


# 6
@contextmanager
def timer(name):
    EVENTS.effect("timer.start", name)
    yield
    EVENTS.effect("timer.stop", name)


class TimedEval(Operator):
    def __init__(self):
        self.model = FakeLLM("timed", "vote")

    def forward(self, *, inputs):
        with timer(inputs["question"]):
            pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        return {"pred": pred}


@program("eval_with_block", "eval", CASES)
def timed_eval():
    return TimedEval()


# 7
class LockedCounter(Operator):
    """A with-block around a lock protecting a shared counter dict."""

    def __init__(self):
        self.model = FakeLLM("locked", "vote")
        self.lock = threading.Lock()
        self.counts = {"seen": 0}

    def forward(self, *, inputs):
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        with self.lock:
            self.counts["seen"] += 1
            seen = self.counts["seen"]
        return {"pred": pred, "seen": seen}


@program("eval_lock_with_counter", "eval", CASES)
def locked_counter():
    return LockedCounter()


# 8
class JudgeEval(Operator):
    """Model and LLM-judge; per-case results appended to a results table."""

    def __init__(self):
        self.model = FakeLLM("cand_model", "echo")
        self.judge = FakeLLM("grader", "score")
        self.results = []

    def forward(self, *, inputs):
        pred = self.model(inputs={"prompt": inputs["question"]})["text"]
        grade = int(self.judge(inputs={"prompt": f"gold={inputs['expected']} pred={pred}"})["text"])
        self.results.append({"q": inputs["question"], "grade": grade})
        passed = sum(1 for r in self.results if r["grade"] >= 5)
        return {"grade": grade, "pass_rate": passed / len(self.results)}


@program("eval_llm_judge_table", "eval", CASES)
def judge_eval():
    return JudgeEval()


# 9
class PairwiseEval(Operator):
    """Two systems answer independently (slow), then a comparator."""

    def __init__(self):
        self.sys_a = FakeLLM("sys_a", "echo", 0.03)
        self.sys_b = FakeLLM("sys_b", "echo", 0.03)
        self.compare = FakeLLM("compare", "vote")

    def forward(self, *, inputs):
        a = self.sys_a(inputs={"prompt": inputs["question"]})["text"]
        b = self.sys_b(inputs={"prompt": inputs["question"]})["text"]
        winner = self.compare(inputs={"prompt": f"A: {a}\nB: {b}"})["text"]
        return {"winner": "a" if winner == "A" else "b" if winner == "B" else "tie"}


@program("eval_pairwise_parallel", "eval", CASES[:3], slow=True)
def pairwise_eval():
    return PairwiseEval()


# 10
class ThresholdedEval(Operator):
    """Pass threshold is a mutable attribute of a config object."""

    class Config:
        def __init__(self):
            self.threshold = 5

        def snapshot(self):
            return self.threshold

    def __init__(self):
        self.grader = FakeLLM("thresh_grader", "score")
        self.config = ThresholdedEval.Config()

    def forward(self, *, inputs):
        grade = int(self.grader(inputs={"prompt": inputs["question"]})["text"])
        return {"grade": grade, "passed": grade >= self.config.threshold}


def _raise_bar(op, i):
    op.config.threshold += 3


@program("eval_threshold_object", "eval", CASES, mutate=_raise_bar)
def thresholded_eval():
    return ThresholdedEval()
