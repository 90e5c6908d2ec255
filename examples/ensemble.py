"""Ensemble: N members answer the same query; a judge joins their answers.

The shape of the seed's compound-AI pattern, with deterministic members so it runs anywhere:

    python examples/ensemble.py      (or: python -m examples.ensemble)
    xcs dump examples/ensemble.py:Ensemble --init '[3]' --input '{"query": "hi"}'
"""

from xcs import Operator, jit
from xcs.cli import report


class Member(Operator):
    def __init__(self, name):
        self.name = name

    def forward(self, *, inputs):
        return {"answer": f"{self.name}:{inputs['query']}"}


class Judge(Operator):
    def forward(self, *, inputs):
        return {"final": " | ".join(inputs["answers"])}


@jit
class Ensemble(Operator):
    def __init__(self, n):
        self.members = [Member(f"m{i}") for i in range(n)]
        self.judge = Judge()

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return self.judge(inputs={"query": inputs["query"], "answers": answers})


def main() -> None:
    op = Ensemble(3)
    print(op(inputs={"query": "hi"}))
    print("\nThree members in one wave, then the judge. Eager vs compiled (these members do no I/O, so")
    print("this measures the plan's own overhead; examples/rag.py shows the gain with model calls):")
    print(report(op, {"query": "hi"}, calls=20)[0], end="")


if __name__ == "__main__":
    main()
