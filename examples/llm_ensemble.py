"""LLM ensemble: N chat models answer the same question concurrently; a judge model synthesises.

What it shows: the seed's ensemble pattern against a real OpenAI-compatible endpoint. The N member
calls are independent, so the compiled plan runs them in one wave; the judge waits for all of them.
Models come from ``OPENAI_MODELS`` (comma-separated) or the embedded server's three models; the
endpoint from ``OPENAI_BASE_URL`` (unset: an embedded server on loopback, so it runs offline).

Run it:

    python examples/llm_ensemble.py      (or: python -m examples.llm_ensemble)
    xcs dump examples/llm_ensemble.py:LLMEnsemble --init '[3]' --input '{"question": "Why is the sky blue?"}'
    xcs run  examples/llm_ensemble.py:LLMEnsemble --init '[3]' --input '{"question": "Why is the sky blue?"}'

Against a real endpoint: ``OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODELS=llama3.2,qwen2.5
python -m examples.llm_ensemble`` (add ``OPENAI_API_KEY`` where the endpoint needs one).
"""

from __future__ import annotations

import time

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel, default_models
from xcs.cli import report
from xcs import Operator, jit

MEMBER_SYSTEM = "You are a careful expert. Answer in one or two sentences."
JUDGE_SYSTEM = "You are a judge. Combine the answers into the single best answer; keep what they agree on."


@jit
class LLMEnsemble(Operator):
    """``{"question": str}`` -> ``{"answer": str, "candidates": [str, ...]}``."""

    def __init__(self, n: int = 3, models: list[str] | None = None):
        models = models or default_models(n)
        self.members = [
            ChatModel(models[i % len(models)], name=f"member{i}", system=MEMBER_SYSTEM, temperature=0.7)
            for i in range(n)
        ]
        self.judge = ChatModel(name="judge", system=JUDGE_SYSTEM)

    def forward(self, *, inputs):
        question = inputs["question"]
        answers = [m(inputs={"prompt": f"Question: {question}"})["text"] for m in self.members]
        listing = "\n".join(["- " + a for a in answers])
        verdict = self.judge(inputs={"prompt": f"Answers:\n{listing}\nQuestion: {question}"})
        return {"answer": verdict["text"], "candidates": answers}


def main() -> None:
    op = LLMEnsemble(3)
    question = "Why is the sky blue?"
    start = time.perf_counter()
    result = op(inputs={"question": question})  # first call: captured, plan generated
    first = time.perf_counter() - start
    start = time.perf_counter()
    op(inputs={"question": "What makes a rainbow?"})  # same signature: the cached plan runs
    warm = time.perf_counter() - start
    for i, candidate in enumerate(result["candidates"]):
        print(f"member{i}: {candidate}")
    print(f"judge:   {result['answer']}")
    print(f"first call {first * 1e3:.1f} ms (capture), warm call {warm * 1e3:.1f} ms")
    print("\nThe members run in one wave, the judge after them. Eager vs compiled:")
    print(report(op, {"question": question}, calls=10)[0], end="")


if __name__ == "__main__":
    main()
