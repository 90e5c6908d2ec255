"""The embedded server's model: deterministic answers derived from the model name and the prompt.

Not a language model, but it reads the prompts the examples write the way a model would, so every
example produces plausible, checkable output offline:

- ``Reply with APPROVE or REJECT``: a verdict on the ``Answer:`` under review: rejected when it
  shares no content word with the question, and one draft in four anyway (revised text is approved);
- a prompt starting with ``Revise``: the draft plus a corpus sentence it lacks, marked ``Revised:``;
- an arithmetic question (``What is 17 + 25?``): the result, wrong for about one question in four
  (``sim-small``), eight (``sim-medium`` and unknown models) or sixteen (``sim-large``);
- ``Write a web search query``: the question's content words;
- a prompt with ``Facts:`` (tool results): a terse summary of the fact lines;
- a prompt with ``Document:``: the document's sentence sharing most words with the question;
- a prompt with ``Answers:`` (a judge): the answer the others agree with most, as a synthesis;
- anything else: one of the two sentences of the example corpus (``examples/data/corpus.jsonl``, the
  model's "knowledge") that best match the question, chosen per model; or "I am not sure".

Same (model, system, prompt, temperature) -> same text, in every process and on every Python version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re

STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how in is it its of on or that the this to was what "
    "when where which who why will with you your i me my we our should would could into about than "
    "then there their them they these those please answer question reply write give short".split()
)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*|\d+(?:\.\d+)?")
ARITH = re.compile(r"(-?\d+)\s*([-+*x×/])\s*(-?\d+)")
ERROR_EVERY = {"sim-small": 4, "sim-medium": 8, "sim-large": 16}  # about 1 arithmetic answer in N is wrong
FILLERS = ("In short:", "Briefly:", "Overall:", "Put simply:", "To summarise:", "In practice:")


def digest(*parts: str) -> int:
    """A stable 64-bit number from ``parts`` (never Python's seeded ``hash``)."""
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stopwords, first occurrence order, no duplicates."""
    seen: dict[str, None] = {}
    for word in WORD.findall(text.lower()):
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def question_of(prompt: str) -> str:
    """The text after the last ``Question:`` marker (the whole prompt when there is none)."""
    index = prompt.rfind("Question:")
    if index < 0:
        return prompt.strip()
    return prompt[index + len("Question:"):].strip().split("\n", 1)[0].strip()


def section(prompt: str, marker: str) -> str:
    """The text after ``marker`` up to the next ``Question:`` line (or the end)."""
    start = prompt.find(marker)
    if start < 0:
        return ""
    rest = prompt[start + len(marker):]
    end = rest.find("\nQuestion:")
    return (rest if end < 0 else rest[:end]).strip()


def respond(model: str, messages: list[dict], temperature: float = 0.0) -> str:
    """The assistant's reply to ``messages`` (OpenAI chat format) from the simulated ``model``."""
    system = "\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
    user = [m.get("content", "") for m in messages if m.get("role") == "user"]
    prompt = user[-1] if user else ""
    seed = digest(model, system, prompt, repr(round(float(temperature), 3)))
    question = question_of(prompt)

    if "APPROVE or REJECT" in prompt:
        draft = section(prompt, "Answer:")
        missing = [w for w in content_words(question) if w not in content_words(draft)]
        if draft.startswith("Revised:") or (len(missing) < len(content_words(question)) and seed % 4):
            return "APPROVE"
        return "REJECT: the answer does not address " + (", ".join(missing[:3]) or "the question directly")
    if "Write a web search query" in prompt:
        return " ".join(content_words(question)[:6])
    if prompt.startswith("Revise"):
        draft = section(prompt, "Answer:")
        extra = [k for k in recall(question, 3) if k not in draft][:1]
        return " ".join(["Revised:", draft, *extra])
    match = ARITH.search(question)
    if match:
        a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
        value = {"+": a + b, "-": a - b, "*": a * b, "x": a * b, "×": a * b}.get(op)
        if value is None:
            value = a // b if b else 0
        slip = digest("arith", model, question)  # this model's skill on this question, whatever the wording
        if slip % ERROR_EVERY.get(model, 8) == 0:
            value += 1 + slip % 3
        return f"The answer is {value}."
    if "Facts:" in prompt:  # summarise tool results: the fact lines, tersely
        facts = [line.lstrip("-* ").strip() for line in section(prompt, "Facts:").splitlines()]
        facts = [f.rstrip(".") for f in facts if f]
        return ("Summary: " + "; ".join(facts[:4]) + ".") if facts else "Nothing to summarise."
    if "Document:" in prompt:
        document = section(prompt, "Document:")
        found = sentences(document)
        wanted = set(content_words(question))
        if found:
            best = max(found, key=lambda s: (len(wanted & set(content_words(s))), -found.index(s)))
            if wanted & set(content_words(best)):
                return best
        return "The document does not say."
    if "Answers:" in prompt:
        answers = [line.lstrip("-* ").strip() for line in section(prompt, "Answers:").splitlines()]
        answers = [a for a in answers if a]
        answers = [a for a in answers if "does not say" not in a] or answers  # as a judge is told to
        if answers:
            def agreement(a: str) -> int:
                mine = set(content_words(a))
                return sum(len(mine & set(content_words(b))) for b in answers if b is not a)

            best = max(answers, key=lambda a: (agreement(a), -answers.index(a)))
            return f"Synthesis of {len(answers)} answer{'s' if len(answers) != 1 else ''}: {best}"
    known = recall(question)
    if known:  # what this model "knows": one of the best-matching sentences of the example corpus
        return f"{FILLERS[seed % len(FILLERS)]} {known[seed % len(known)]}"
    words = content_words(question) or ["that"]
    return f"I am not sure about {' '.join(words[:4])} ({model})."


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


@functools.lru_cache(maxsize=1)
def knowledge() -> tuple[tuple[str, frozenset], ...]:
    """Every sentence of ``examples/data/corpus.jsonl`` with its content words."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "corpus.jsonl")
    found = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                doc = json.loads(line)
                title = set(content_words(doc["title"]))
                for sentence in sentences(doc["text"]):
                    found.append((sentence, frozenset(title | set(content_words(sentence)))))
    return tuple(found)


def recall(question: str, n: int = 2) -> list[str]:
    """Up to ``n`` corpus sentences sharing the most content words with ``question`` (at least one)."""
    wanted = set(content_words(question))
    scored = [(len(wanted & words), -i, sentence) for i, (sentence, words) in enumerate(knowledge())]
    scored = sorted((s for s in scored if s[0] > 0), reverse=True)
    return [sentence for _, _, sentence in scored[:n]]
