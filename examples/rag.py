"""Retrieval-augmented answering: retrieve, read every retrieved document concurrently, synthesise.

What it shows: dynamic fan-out over a runtime list. A retriever (plain Python: TF-IDF-style word
overlap over the in-repo corpus ``examples/data/corpus.jsonl``) returns up to ``top_k`` documents that
share a word with the question (how many is known only at run time); a reader model answers the
question from each document on its own; a synthesiser model combines the per-document answers.

The comprehension over the retriever's output becomes a *map region* of the plan (``map_each``): one
reader call per document at run time, all concurrent, results in order, and no recompilation when
the number of documents changes. (With ``jit(mode="trace")`` the same loop is a graph break,
``iterate-over-output``, and the call runs eagerly.)

Run it:

    python examples/rag.py      (or: python -m examples.rag)
    xcs dump examples/rag.py:RetrievalQA --input '{"question": "Why is Mars red?"}'
    xcs run  examples/rag.py:RetrievalQA --input '{"question": "Why is Mars red?"}'
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, Mapping

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel
from examples.llm.sim import content_words
from xcs.cli import report
from xcs import Operator, jit

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
READER_SYSTEM = "Answer the question using only the document. If it does not say, reply: The document does not say."
SYNTH_SYSTEM = "Combine the per-document answers into one answer. Ignore answers that say the document does not say."


@functools.lru_cache(maxsize=None)
def load_corpus(name: str) -> tuple[dict, ...]:
    """The documents of ``examples/data/<name>`` (JSON lines with ``id``, ``title`` and ``text``)."""
    with open(os.path.join(DATA, name), encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


class Retriever(Operator):
    """``{"query": str}`` -> ``{"documents": [{"id", "title", "text", "score"}, ...]}``, best first.

    Scores are summed inverse document frequencies of the query words a document contains; ties keep
    corpus order. Returns at most ``top_k`` documents, only those sharing a word with the query."""

    def __init__(self, corpus: str = "corpus.jsonl", top_k: int = 3):
        self.corpus = corpus  # a name under examples/data: the corpus text is not part of the operator
        self.top_k = top_k

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        docs = load_corpus(self.corpus)
        words = [set(content_words(d["title"] + " " + d["text"])) for d in docs]
        query = set(content_words(inputs["query"]))
        idf = {w: math.log((1 + len(docs)) / (1 + sum(w in ws for ws in words))) + 1.0 for w in query}
        scored = sorted(
            ((round(sum(idf[w] for w in query & ws), 6), -i) for i, ws in enumerate(words)), reverse=True
        )
        picked = [dict(docs[-i], score=score) for score, i in scored[: self.top_k] if score > 0]
        return {"documents": picked}


@jit
class RetrievalQA(Operator):
    """``{"question": str}`` -> ``{"answer": str, "sources": [title, ...], "notes": [str, ...]}``."""

    def __init__(self, top_k: int = 3):
        self.retrieve = Retriever("corpus.jsonl", top_k=top_k)
        self.reader = ChatModel(name="reader", system=READER_SYSTEM)
        self.synthesize = ChatModel(name="synthesizer", system=SYNTH_SYSTEM)

    def forward(self, *, inputs):
        question = inputs["question"]
        docs = self.retrieve(inputs={"query": question})["documents"]
        notes = [self.reader(inputs={"prompt": f"Document: {d['text']}\nQuestion: {question}"})["text"] for d in docs]
        sources = [d["title"] for d in docs]
        listing = "\n".join(["- " + note for note in notes])
        final = self.synthesize(inputs={"prompt": f"Answers:\n{listing}\nQuestion: {question}"})
        return {"answer": final["text"], "sources": sources, "notes": notes}


def main() -> None:
    op = RetrievalQA(top_k=3)
    for question in ("Why is Mars red?", "Which planet has the most moons?", "What causes tides?", "Who won?"):
        result = op(inputs={"question": question})
        print(f"Q: {question}")
        for source, note in zip(result["sources"], result["notes"]):
            print(f"   [{source}] {note}")
        print(f"A: {result['answer']}\n")
    print("The readers form a map region: one call per retrieved document, concurrent. Eager vs compiled:")
    print(report(op, {"question": "Why is Mars red?"}, calls=10)[0], end="")


if __name__ == "__main__":
    main()
