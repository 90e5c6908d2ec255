"""Budget and cost guards: usage meters, token counters, rate limits whose state changes between calls."""

from __future__ import annotations

import logging
import time

from xcs import Operator

from sound.common import EVENTS, FakeLLM, UsageMeter, program

logger = logging.getLogger("corpus.budget")
Q = [{"query": q} for q in ("first", "second", "third", "fourth")]


def spend(n):
    def mutate(op, i):
        op.meter.charge(n)
    return mutate


# 1
class GuardedCall(Operator):
    def __init__(self):
        self.llm = FakeLLM("guarded", "echo")
        self.meter = UsageMeter(budget=3)

    def forward(self, *, inputs):
        if self.meter.remaining() > 0:
            return {"answer": self.llm(inputs={"prompt": inputs["query"]})["text"], "degraded": False}
        return {"answer": "budget exhausted", "degraded": True}


@program("budget_guard_remaining", "budget", Q, mutate=spend(1))
def guarded_call():
    return GuardedCall()


# 2
class CheapOrExpensive(Operator):
    def __init__(self):
        self.cheap = FakeLLM("cheap_m", "echo")
        self.expensive = FakeLLM("expensive_m", "echo")
        self.meter = UsageMeter(budget=10)

    def forward(self, *, inputs):
        model = self.expensive if self.meter.remaining() >= 5 else self.cheap
        out = model(inputs={"prompt": inputs["query"]})
        return {"answer": out["text"]}


@program("budget_model_choice", "budget", Q, mutate=spend(3))
def cheap_or_expensive():
    return CheapOrExpensive()


# 3
class ChargingChain(Operator):
    """Charges the meter in forward for each call it makes (effects in order)."""

    def __init__(self):
        self.draft = FakeLLM("draft", "echo")
        self.polish = FakeLLM("polish", "echo")
        self.meter = UsageMeter(budget=100)

    def forward(self, *, inputs):
        d = self.draft(inputs={"prompt": inputs["query"]})["text"]
        self.meter.charge(len(d))
        p = self.polish(inputs={"prompt": d})["text"]
        self.meter.charge(len(p))
        return {"answer": p, "used": self.meter.used}


@program("budget_charge_in_forward", "budget", Q)
def charging_chain():
    return ChargingChain()


# 4
class TokenCounter(Operator):
    """A plain dict of counters held by the operator."""

    def __init__(self):
        self.llm = FakeLLM("tok", "echo")
        self.usage = {"prompt_tokens": 0, "calls": 0}

    def forward(self, *, inputs):
        prompt = f"Q: {inputs['query']}"
        self.usage["prompt_tokens"] += len(prompt.split())
        self.usage["calls"] += 1
        return {"answer": self.llm(inputs={"prompt": prompt})["text"], "calls_so_far": self.usage["calls"]}


@program("budget_usage_dict", "budget", Q)
def token_counter():
    return TokenCounter()


# 5
class RateLimited(Operator):
    """A token bucket: refuses when empty; refilled between calls by the application."""

    class Bucket:
        def __init__(self, tokens):
            self.tokens = tokens

        def take(self):
            if self.tokens <= 0:
                return False
            self.tokens -= 1
            EVENTS.effect("bucket.take", self.tokens)
            return True

        def snapshot(self):
            return self.tokens

    def __init__(self):
        self.llm = FakeLLM("limited", "echo")
        self.bucket = RateLimited.Bucket(1)

    def forward(self, *, inputs):
        if not self.bucket.take():
            raise RuntimeError("rate limited")
        return {"answer": self.llm(inputs={"prompt": inputs["query"]})["text"]}


def _refill(op, i):
    if i % 2:
        op.bucket.tokens += 1


@program("budget_rate_limit_raises", "budget", Q, mutate=_refill)
def rate_limited():
    return RateLimited()


# 6
class BudgetAttr(Operator):
    """Reads the meter's attributes directly (not a method)."""

    def __init__(self):
        self.llm = FakeLLM("budattr", "echo")
        self.meter = UsageMeter(budget=2)

    def forward(self, *, inputs):
        left = self.meter.budget - self.meter.used
        note = f"[{left} left]"
        return {"answer": self.llm(inputs={"prompt": f"{inputs['query']} {note}"})["text"], "left": left}


@program("budget_attr_arithmetic", "budget", Q, mutate=spend(1))
def budget_attr():
    return BudgetAttr()


# 7
class WarnOnLowBudget(Operator):
    def __init__(self):
        self.llm = FakeLLM("warnlow", "echo")
        self.meter = UsageMeter(budget=4)

    def forward(self, *, inputs):
        if self.meter.remaining() < 3:
            logger.warning("low budget: %d", self.meter.remaining())
        return {"answer": self.llm(inputs={"prompt": inputs["query"]})["text"]}


@program("budget_warn_log", "budget", Q, mutate=spend(1))
def warn_on_low_budget():
    return WarnOnLowBudget()


# 8
class ParallelUnderBudget(Operator):
    """Two slow independent calls when budget allows; the meter is read once up front."""

    def __init__(self):
        self.a = FakeLLM("pub_a", "echo", 0.03)
        self.b = FakeLLM("pub_b", "echo", 0.03)
        self.meter = UsageMeter(budget=100)

    def forward(self, *, inputs):
        allowed = self.meter.remaining() > 1
        first = self.a(inputs={"prompt": inputs["query"]})["text"]
        second = self.b(inputs={"prompt": inputs["query"]})["text"] if allowed else "skipped"
        return {"answers": [first, second]}


@program("budget_parallel_guarded", "budget", Q, mutate=spend(40), slow=True)
def parallel_under_budget():
    return ParallelUnderBudget()


# 9
class MaxCallsLoop(Operator):
    """A retry loop bounded by a mutable max_calls setting."""

    def __init__(self):
        self.llm = FakeLLM("retry", "yesno")
        self.limits = {"max_calls": 1}

    def forward(self, *, inputs):
        attempts = 0
        answer = "no"
        while answer != "yes" and attempts < self.limits["max_calls"]:
            answer = self.llm(inputs={"prompt": f"{inputs['query']} attempt {attempts}"})["text"]
            attempts += 1
        return {"answer": answer, "attempts": attempts}


def _raise_limit(op, i):
    op.limits["max_calls"] += 2


@program("budget_retry_limit", "budget", Q, mutate=_raise_limit)
def max_calls_loop():
    return MaxCallsLoop()


# 10
class CostReport(Operator):
    """Prints a cost line per call using a price table the operator holds (prices change)."""

    def __init__(self):
        self.llm = FakeLLM("costed", "echo")
        self.prices = {"per_call": 0.5}

    def forward(self, *, inputs):
        out = self.llm(inputs={"prompt": inputs["query"]})["text"]
        print(f"cost: ${self.prices['per_call']:.2f}")
        return {"answer": out}


def _price_change(op, i):
    op.prices["per_call"] *= 2


@program("budget_price_table_print", "budget", Q, mutate=_price_change)
def cost_report():
    return CostReport()
