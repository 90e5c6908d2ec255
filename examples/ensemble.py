"""Ensemble: N members answer the same query; a judge joins their answers.

The shape of the seed's compound-AI pattern, with deterministic members so it runs anywhere:

    xcs dump examples/ensemble.py:Ensemble --init '[3]' --input '{"query": "hi"}'
"""

from xcs import Operator, jit


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


if __name__ == "__main__":
    print(Ensemble(3)(inputs={"query": "hi"}))
