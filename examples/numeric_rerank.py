"""A numeric scoring step (numpy) inside an LLM pipeline: sample candidates, score them, judge the best.

What it shows: model calls and a small numeric kernel in one plan. ``n`` candidate answers are
sampled concurrently (different models and temperatures); ``ConsensusScorer`` embeds them with a
hashing bag-of-words vectoriser, scores each by numpy linear algebra (cosine similarity to the
question and to the other candidates: self-consistency) and keeps the two best; a judge model
synthesises those.
The plan: one wave of ``n`` model calls, the scorer, the judge.

Run it:

    python examples/numeric_rerank.py      (or: python -m examples.numeric_rerank)
    xcs dump examples/numeric_rerank.py:RerankedAnswer --init '[4]' --input '{"question": "Why does Saturn have rings?"}'
    xcs run  examples/numeric_rerank.py:RerankedAnswer --init '[4]' --input '{"question": "Why does Saturn have rings?"}'
"""

from __future__ import annotations

import zlib
from typing import Any, Mapping

import numpy as np

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel, default_models
from examples.llm.sim import content_words
from xcs.cli import report
from xcs import Operator, jit

DIM = 256


def embed(texts: list[str], dim: int = DIM) -> np.ndarray:
    """Rows of L2-normalised, log-scaled term counts; words are hashed into ``dim`` buckets with crc32
    (stable across processes, unlike ``hash``)."""
    matrix = np.zeros((len(texts), dim), dtype=np.float64)
    for row, text in enumerate(texts):
        for word in content_words(text):
            matrix[row, zlib.crc32(word.encode()) % dim] += 1.0
    matrix = np.log1p(matrix)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0.0, 1.0, norms)


class ConsensusScorer(Operator):
    """``{"question": str, "candidates": [str, ...]}`` -> ``{"scores", "ranking", "top"}``.

    score = ``relevance`` x cos(question, candidate) + (1 - ``relevance``) x mean cos(candidate, others);
    ``ranking`` lists candidate indices, best first (ties: lower index first); ``top`` holds the ``keep``
    best candidates' texts (the selection happens here: indexing by a score in the jitted forward
    would be a decision on an operator's output)."""

    def __init__(self, relevance: float = 0.4, keep: int = 2):
        self.relevance = relevance
        self.keep = keep

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        candidates = list(inputs["candidates"])
        vectors = embed([inputs["question"], *candidates])
        question, answers = vectors[0], vectors[1:]
        similarity = answers @ answers.T
        n = len(candidates)
        agreement = (similarity.sum(axis=1) - np.diag(similarity)) / max(n - 1, 1)
        scores = self.relevance * (answers @ question) + (1.0 - self.relevance) * agreement
        scores = np.round(scores, 6)
        ranking = sorted(range(n), key=lambda i: (-scores[i], i))
        top = [candidates[i] for i in ranking[: self.keep]]
        return {"scores": [float(s) for s in scores], "ranking": ranking, "top": top}


@jit
class RerankedAnswer(Operator):
    """``{"question": str}`` -> ``{"answer", "ranking", "candidates", "scores"}``."""

    def __init__(self, n: int = 4):
        models = default_models(n)
        self.samplers = [
            ChatModel(models[i], name=f"sampler{i}", temperature=round(0.3 + 0.2 * i, 2)) for i in range(n)
        ]
        self.score = ConsensusScorer(relevance=0.4, keep=2)
        self.judge = ChatModel(name="judge", system="Combine the answers into one; prefer what they agree on.")

    def forward(self, *, inputs):
        question = inputs["question"]
        candidates = [s(inputs={"prompt": f"Question: {question}"})["text"] for s in self.samplers]
        scored = self.score(inputs={"question": question, "candidates": candidates})
        best = "\n- ".join(scored["top"])
        final = self.judge(inputs={"prompt": f"Answers:\n- {best}\nQuestion: {question}"})
        return {"answer": final["text"], "ranking": scored["ranking"], "candidates": candidates, "scores": scored["scores"]}


def main() -> None:
    op = RerankedAnswer(4)
    for question in ("Why does Saturn have rings?", "How long does sunlight take to reach Earth?"):
        result = op(inputs={"question": question})
        print(f"Q: {question}")
        samplers: dict[str, list[int]] = {}  # candidate text -> the samplers that gave it
        for i, candidate in enumerate(result["candidates"]):
            samplers.setdefault(candidate, []).append(i)
        for i in result["ranking"]:  # best first; an answer several samplers gave is shown once
            candidate = result["candidates"][i]
            if samplers[candidate][0] == i:
                given = ", ".join(f"sampler{k}" for k in samplers[candidate])
                print(f"   {result['scores'][i]:7.4f}  {candidate}  ({given})")
        print(f"A: {result['answer']}\n")
    print("The samplers run in one wave, then the numpy scorer, then the judge. Eager vs compiled:")
    print(report(op, {"question": "Why does Saturn have rings?"}, calls=10)[0], end="")


if __name__ == "__main__":
    main()
