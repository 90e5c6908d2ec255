"""Answer -> verify -> revise, where the revision runs only when the verifier rejects the draft.

What it shows: a branch on an operator's output, written two ways.

- ``SelfCheckedAnswer`` writes the ``if`` on the verifier's verdict in the jitted ``forward``. The
  static strategies (``auto``/``enhanced``/``structural``) compile it into a *branch region*: the
  condition is evaluated when the verdict exists and only the taken side runs, so the reviser model
  is called only for rejected drafts. With ``jit(mode="trace")`` the same ``if`` is a graph break
  (code ``branch-on-output``: one ``GraphBreakWarning``, and that signature runs eagerly).
- ``GatedSelfCheck`` puts the decision inside an operator, ``Reviser``, which returns the draft as is
  when the verdict approves it: a plain three-step chain that every strategy, trace included, compiles.

Run it:

    python examples/verify_revise.py      (or: python -m examples.verify_revise)
    xcs dump examples/verify_revise.py:SelfCheckedAnswer --input '{"question": "How do volcanoes form?"}'
    xcs run  examples/verify_revise.py:SelfCheckedAnswer --input '{"question": "How do volcanoes form?"}'
    xcs dump examples/verify_revise.py:GatedSelfCheck --input '{"question": "How do volcanoes form?"}'
"""

from __future__ import annotations

import warnings

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel
from xcs.cli import report
from xcs import Operator, jit

ANSWER_SYSTEM = "Answer the question in one or two sentences."
VERIFY_SYSTEM = "You review answers for correctness and completeness."
REVISE_SYSTEM = "You revise answers so that they address the reviewer's objection."


def verify_prompt(question: str, draft: str) -> str:
    return (
        "Reply with APPROVE or REJECT: <reason>, judging whether the answer fully addresses the question.\n"
        f"Question: {question}\nAnswer: {draft}"
    )


def revise_prompt(question: str, draft: str, verdict: str) -> str:
    return f"Revise the answer. Reviewer: {verdict}\nQuestion: {question}\nAnswer: {draft}"


def approved(verdict: str) -> bool:
    return verdict.strip().upper().startswith("APPROVE")


class Reviser(Operator):
    """``{"question", "draft", "verdict"}`` -> ``{"answer": str, "revised": bool}``: the draft as is
    when the verdict approves it, else a model's revision."""

    def __init__(self):
        self.llm = ChatModel(name="reviser", system=REVISE_SYSTEM)

    def forward(self, *, inputs):
        if approved(inputs["verdict"]):
            return {"answer": inputs["draft"], "revised": False}
        prompt = revise_prompt(inputs["question"], inputs["draft"], inputs["verdict"])
        return {"answer": self.llm(inputs={"prompt": prompt})["text"], "revised": True}


@jit
class GatedSelfCheck(Operator):
    """The same pipeline with the decision inside ``Reviser``: a chain of three steps."""

    def __init__(self):
        self.answer = ChatModel(name="answerer", system=ANSWER_SYSTEM)
        self.verify = ChatModel(name="verifier", system=VERIFY_SYSTEM)
        self.revise = Reviser()

    def forward(self, *, inputs):
        question = inputs["question"]
        draft = self.answer(inputs={"prompt": f"Question: {question}"})["text"]
        verdict = self.verify(inputs={"prompt": verify_prompt(question, draft)})["text"]
        final = self.revise(inputs={"question": question, "draft": draft, "verdict": verdict})
        return {"answer": final["answer"], "revised": final["revised"], "draft": draft, "verdict": verdict}


@jit
class SelfCheckedAnswer(Operator):
    """``{"question": str}`` -> ``{"answer", "revised", "draft", "verdict"}``: the branch in ``forward``."""

    def __init__(self):
        self.answer = ChatModel(name="answerer", system=ANSWER_SYSTEM)
        self.verify = ChatModel(name="verifier", system=VERIFY_SYSTEM)
        self.reviser = ChatModel(name="reviser", system=REVISE_SYSTEM)

    def forward(self, *, inputs):
        question = inputs["question"]
        draft = self.answer(inputs={"prompt": f"Question: {question}"})["text"]
        verdict = self.verify(inputs={"prompt": verify_prompt(question, draft)})["text"]
        if approved(verdict):
            return {"answer": draft, "revised": False, "draft": draft, "verdict": verdict}
        revised = self.reviser(inputs={"prompt": revise_prompt(question, draft, verdict)})["text"]
        return {"answer": revised, "revised": True, "draft": draft, "verdict": verdict}


QUESTIONS = ("How do volcanoes form?", "Why do we have tides?", "What is photosynthesis?", "Why is Venus hot?")


def main() -> None:
    op = SelfCheckedAnswer()
    for question in QUESTIONS:
        result = op(inputs={"question": question})
        print(f"Q: {question}\n   draft:   {result['draft']}\n   verdict: {result['verdict']}")
        print(f"   answer:  {result['answer']}" + ("   (revised)" if result["revised"] else ""))
    gated = GatedSelfCheck()
    same = all(gated(inputs={"question": q}) == op(inputs={"question": q}) for q in QUESTIONS)
    print(f"\nGatedSelfCheck gives the same answers: {same}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = jit(SelfCheckedAnswer(), mode="trace")  # this instance only: the trace strategy
        traced(inputs={"question": QUESTIONS[0]})
    for warning in caught:
        print(f"with mode='trace': {warning.category.__name__}: {warning.message}")
    print("\nThe revision is a branch region decided at run time. Eager vs compiled:")
    print(report(op, {"question": QUESTIONS[0]}, calls=10)[0], end="")


if __name__ == "__main__":
    main()
