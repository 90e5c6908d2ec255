"""Batch evaluation: run a small dataset through a jitted pipeline with ``vmap``; report accuracy.

What it shows: one compiled plan reused for every element of a dataset, elements run concurrently.
``ArithmeticQA`` is the per-item pipeline (a solver model, then a grader that extracts the number
from the reply and compares it with the expected answer). ``BatchEval`` maps it over a whole batch
with ``vmap`` and computes the accuracy in a final step. The ``vmap`` call becomes a map region of
``BatchEval``'s plan: ``ArithmeticQA``'s steps are inlined as the region's body, run once per
element, up to ``batch_size`` elements in flight, with no recompilation when the batch size changes.
``main()`` evaluates each of the
embedded server's models on ``examples/data/arithmetic.jsonl`` (24 questions shipped in the repo).

Run it:

    python -m examples.batch_eval                       # accuracy of each of the embedded server's models
    xcs dump examples/batch_eval.py:ArithmeticQA --input '{"question": "What is 6 * 7?", "answer": "42"}'
    xcs run  examples/batch_eval.py:BatchEval --input '{"question": ["What is 6 * 7?", "What is 2 + 2?"], "answer": ["42", "4"]}'
    xcs dump examples/batch_eval.py:BatchEval --input '{"question": ["What is 6 * 7?"], "answer": ["42"]}'
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Mapping

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel, default_models
from xcs.cli import report
from xcs import Operator, jit, vmap

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
SOLVER_SYSTEM = "Solve the arithmetic problem. Reply exactly: The answer is <number>."


def load_dataset(name: str = "arithmetic.jsonl") -> list[dict]:
    """The items of ``examples/data/<name>``: JSON lines with ``id``, ``question`` and ``answer``."""
    with open(os.path.join(DATA, name), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Grade(Operator):
    """``{"reply": str, "expected": str}`` -> ``{"predicted": str | None, "correct": bool}``: the last
    number in the reply, compared numerically with the expected answer."""

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        numbers = NUMBER.findall(inputs["reply"])
        predicted = numbers[-1] if numbers else None
        correct = predicted is not None and float(predicted) == float(inputs["expected"])
        return {"predicted": predicted, "correct": correct}


@jit
class ArithmeticQA(Operator):
    """One dataset item: ``{"question": str, "answer": str}`` -> ``{"reply", "predicted", "correct"}``."""

    def __init__(self, model: str | None = None):
        self.solve = ChatModel(model, name="solver", system=SOLVER_SYSTEM)
        self.grade = Grade()

    def forward(self, *, inputs):
        reply = self.solve(inputs={"prompt": f"Question: {inputs['question']}"})["text"]
        graded = self.grade(inputs={"reply": reply, "expected": inputs["answer"]})
        return {"reply": reply, "predicted": graded["predicted"], "correct": graded["correct"]}


class Accuracy(Operator):
    """``{"correct": [bool, ...]}`` -> ``{"accuracy": float, "correct": int, "total": int}``."""

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        flags = list(inputs["correct"])
        right = sum(1 for flag in flags if flag)
        return {"accuracy": right / len(flags) if flags else 0.0, "correct": right, "total": len(flags)}


@jit
class BatchEval(Operator):
    """A batch: ``{"question": [str, ...], "answer": [str, ...]}`` ->
    ``{"accuracy", "correct", "total", "predicted": [...], "verdicts": [bool, ...]}``."""

    def __init__(self, model: str | None = None, batch_size: int = 8):
        self.items = vmap(ArithmeticQA(model), batch_size=batch_size, out_keys=("reply", "predicted", "correct"))
        self.score = Accuracy()

    def forward(self, *, inputs):
        results = self.items(inputs={"question": inputs["question"], "answer": inputs["answer"]})
        summary = self.score(inputs={"correct": results["correct"]})
        return {
            "accuracy": summary["accuracy"],
            "correct": summary["correct"],
            "total": summary["total"],
            "predicted": results["predicted"],
            "verdicts": results["correct"],
        }


def as_batch(items: list[dict]) -> dict:
    """Items as one batch: ``{"question": [...], "answer": [...]}``."""
    return {"question": [item["question"] for item in items], "answer": [item["answer"] for item in items]}


def evaluate(model: str | None, items: list[dict]) -> dict:
    """``BatchEval`` of ``model`` over ``items`` (dicts with ``question`` and ``answer``)."""
    return BatchEval(model)(inputs=as_batch(items))


def main() -> None:
    items = load_dataset()
    print(f"{len(items)} items from examples/data/arithmetic.jsonl")
    for model in dict.fromkeys(default_models(3)):
        start = time.perf_counter()
        scores = evaluate(model, items)
        wall = time.perf_counter() - start
        print(f"  {model:12} accuracy {scores['accuracy']:6.1%}  ({scores['correct']}/{scores['total']}, {wall:.2f} s)")
        for item, predicted, right in zip(items, scores["predicted"], scores["verdicts"]):
            if not right:
                print(f"      {item['id']}: {item['question']} expected {item['answer']}, got {predicted}")
    print("\nThe batch plan: the items through vmap (batches of 8, concurrent), then the score. Eager vs compiled:")
    print(report(BatchEval(), as_batch(items), calls=3)[0], end="")


if __name__ == "__main__":
    main()
