"""Programs written the way people write ``try`` statements around model calls: a fallback model on a
rate limit, a JSON retry through a fixer model, cleanup in ``finally``, ``try/except/else``, a handler
that raises a new error (chained), an exception no handler matches, a per-element ``try`` inside a
map, and a ``try`` around a map whose elements each hold one. DSPy, LangChain and agent styles."""

from __future__ import annotations

import json
import logging

from xcs import Operator

from sound.common import EVENTS, FakeLLM, program, respond

logger = logging.getLogger("corpus.try")


class RateLimitError(Exception):
    """What a hosted model raises when it is busy."""


class ServiceError(RuntimeError):
    """The application's own error for a model that failed."""


class FlakyLLM(Operator):
    """``{"prompt": str}`` -> ``{"text": str}``; raises ``RateLimitError`` on a prompt holding "busy"
    (and ``KeyError`` on one holding "gone"); every call is logged, failed or not."""

    def __init__(self, name: str, style: str = "echo"):
        self.name, self.style = name, style

    def forward(self, *, inputs):
        prompt = str(inputs["prompt"])
        with EVENTS.call("llm", self.name, prompt):
            if "busy" in prompt:
                raise RateLimitError(f"{self.name} is busy")
            if "gone" in prompt:
                raise KeyError(prompt)
            return {"text": respond(self.style, self.name, prompt)}


class JsonLLM(Operator):
    """A model asked for JSON: it answers JSON, unless the prompt holds "ramble"."""

    def __init__(self, name: str):
        self.name = name

    def forward(self, *, inputs):
        prompt = str(inputs["prompt"])
        with EVENTS.call("llm", self.name, prompt):
            if "ramble" in prompt:
                return {"text": f"Sure! Here is the answer to {prompt!r}: yes"}
            return {"text": json.dumps({"answer": prompt[::-1], "ok": True})}


QS = [{"question": q} for q in ("Why is Mars red?", "busy: what is 6*7?", "gone fishing?", "")]


# 1 ---------------------------------------------------------------------------------------------
class FallbackModel(Operator):
    """Agent style: the main model, or the backup when the main one is rate limited."""

    def __init__(self):
        self.main = FlakyLLM("main")
        self.backup = FakeLLM("backup", "echo")

    def forward(self, *, inputs):
        prompt = f"Q: {inputs['question']}"
        try:
            out = self.main(inputs={"prompt": prompt})
        except RateLimitError:
            out = self.backup(inputs={"prompt": prompt.replace("busy", "calm")})
        return {"answer": out["text"]}


@program("try_fallback_model", "agent", QS)
def fallback_model():
    return FallbackModel()


# 2 ---------------------------------------------------------------------------------------------
class JsonRetry(Operator):
    """DSPy style: parse the model's JSON; on a decode error a fixer model repairs it, told the error."""

    def __init__(self):
        self.generate = JsonLLM("json")
        self.fixer = JsonLLM("fixer")

    def forward(self, *, inputs):
        out = self.generate(inputs={"prompt": inputs["question"]})
        try:
            data = json.loads(out["text"])
        except json.JSONDecodeError as e:
            data = json.loads(self.fixer(inputs={"prompt": f"fix {out['text']!r}: {e}"})["text"])
        return {"answer": data["answer"], "ok": data["ok"]}


@program("try_json_retry", "dspy", [{"question": "ramble on"}, {"question": "be brief"}, {"question": ""}])
def json_retry():
    return JsonRetry()


# 3 ---------------------------------------------------------------------------------------------
class CleanupInFinally(Operator):
    """LangChain style: a callback's end event always fires, whether the model call failed or not."""

    def __init__(self):
        self.llm = FlakyLLM("chain")

    def forward(self, *, inputs):
        logger.info("chain start %s", inputs["question"])
        try:
            out = self.llm(inputs={"prompt": inputs["question"]})
            answer = out["text"].strip()
        finally:
            logger.info("chain end %s", inputs["question"])
        return {"answer": answer}


@program("try_cleanup_in_finally", "langchain", QS)
def cleanup_in_finally():
    return CleanupInFinally()


# 4 ---------------------------------------------------------------------------------------------
class ExceptElse(Operator):
    """Draft, then polish only when the draft succeeded (``else``); a placeholder when it did not."""

    def __init__(self):
        self.draft = FlakyLLM("draft")
        self.polish = FakeLLM("polish", "echo")

    def forward(self, *, inputs):
        try:
            draft = self.draft(inputs={"prompt": inputs["question"]})
        except (RateLimitError, KeyError) as err:
            text, status = f"unavailable ({type(err).__name__})", "failed"
        else:
            text = self.polish(inputs={"prompt": "Polish: " + draft["text"]})["text"]
            status = "ok"
        return {"text": text, "status": status}


@program("try_except_else", "dspy", QS)
def except_else():
    return ExceptElse()


# 5 ---------------------------------------------------------------------------------------------
class RaisesChained(Operator):
    """A handler that logs and raises the application's own error, chained to the model's."""

    def __init__(self):
        self.llm = FlakyLLM("strict")
        self.judge = FakeLLM("judge", "echo")

    def forward(self, *, inputs):
        try:
            out = self.llm(inputs={"prompt": inputs["question"]})
        except RateLimitError as e:
            logger.warning("model failed: %s", e)
            raise ServiceError(f"strict model failed: {e}") from e
        except KeyError:
            raise ServiceError("strict model lost the question")
        return self.judge(inputs={"prompt": "Judge: " + out["text"]})


@program("try_raises_chained", "agent", QS)
def raises_chained():
    return RaisesChained()


# 6 ---------------------------------------------------------------------------------------------
class Unmatched(Operator):
    """Only a KeyError is handled: a rate limit propagates (with its own traceback) to the caller."""

    def __init__(self):
        self.llm = FlakyLLM("narrow")
        self.backup = FakeLLM("narrow-backup", "echo")

    def forward(self, *, inputs):
        try:
            out = self.llm(inputs={"prompt": inputs["question"]})
        except KeyError:
            out = self.backup(inputs={"prompt": "recover"})
            raise
        return {"answer": out["text"]}


@program("try_unmatched", "agent", QS)
def unmatched():
    return Unmatched()


# 7 ---------------------------------------------------------------------------------------------
BATCHES = [
    {"questions": ["Why is Mars red?", "busy now", "Who made Python?", "busy again"]},
    {"questions": []},
    {"questions": ["fine", "gone?"]},
]


class SafeEach(Operator):
    """Per-element fallback: each question asks the main model, or the backup on a rate limit (the
    elements still run concurrently); a for-append loop with a try per element checks each."""

    def __init__(self):
        self.main = FlakyLLM("each")
        self.backup = FakeLLM("each-backup", "echo")

    def _safe(self, question):
        try:
            out = self.main(inputs={"prompt": question})
        except RateLimitError:
            out = self.backup(inputs={"prompt": "retry " + question})
        return out["text"]

    def forward(self, *, inputs):
        answers = [self._safe(q) for q in inputs["questions"]]
        checked = []
        for q in inputs["questions"]:
            try:
                verdict = self.main(inputs={"prompt": "check " + q})["text"]
            except RateLimitError:
                verdict = "skipped"
            checked.append(verdict)
        return {"answers": answers, "checked": checked}


@program("try_safe_each", "agent", BATCHES[:2] + [{"questions": ["fine", "busy too"]}])
def safe_each():
    return SafeEach()


# 8 ---------------------------------------------------------------------------------------------
class NestedTry(Operator):
    """A try around a map whose elements each hold a try: per-element fallbacks, and a summary that
    falls back to a plain list when the summariser is rate limited or an element lost its question."""

    def __init__(self):
        self.main = FlakyLLM("nest")
        self.backup = FakeLLM("nest-backup", "echo")
        self.summarize = FlakyLLM("summary")

    def _answer(self, question):
        try:
            return self.main(inputs={"prompt": question})["text"]
        except RateLimitError:
            return self.backup(inputs={"prompt": question})["text"]

    def forward(self, *, inputs):
        try:
            answers = [self._answer(q) for q in inputs["questions"]]
            summary = self.summarize(inputs={"prompt": " | ".join(answers)})["text"]
        except (RateLimitError, KeyError) as e:
            summary = f"no summary: {type(e).__name__}"
        return {"summary": summary}


@program("try_nested", "agent", BATCHES + [{"questions": ["busy", "busy"]}])
def nested_try():
    return NestedTry()


# 9 ---------------------------------------------------------------------------------------------
class ValidateOnce(Operator):
    """Validate that the model answered JSON (the parsed value itself unused); ask again once if not."""

    def __init__(self):
        self.generate = JsonLLM("validate")
        self.again = JsonLLM("validate-again")

    def forward(self, *, inputs):
        out = self.generate(inputs={"prompt": inputs["question"]})
        try:
            json.loads(out["text"])
            valid = True
        except ValueError:
            out = self.again(inputs={"prompt": "JSON only: " + inputs["question"].replace("ramble", "")})
            valid = False
        return {"text": out["text"], "first_try": valid}


@program("try_validate_once", "dspy", [{"question": "ramble on"}, {"question": "short"}, {"question": ""}])
def validate_once():
    return ValidateOnce()
