"""Composition idioms: non-jit sub-composites with independent slow calls, ``inputs.get("lang")`` and
``is None`` checks, ``super().forward``, helper functions, generator expressions, default arguments,
operators calling shared sub-operators."""

from __future__ import annotations

import logging

from xcs import Operator

from sound.common import ConversationMemory, FakeLLM, Tool, program

logger = logging.getLogger("corpus.composites")
Q = [{"text": t} for t in ("good morning", "how are you", "see you soon")]


def translate_prompt(text, lang):
    return f"Translate to {lang}: {text}"


# 1
class OptionalLang(Operator):
    def __init__(self):
        self.llm = FakeLLM("translator", "echo")

    def forward(self, *, inputs):
        lang = inputs.get("lang")
        if lang is None:
            lang = "French"
        return {"out": self.llm(inputs={"prompt": translate_prompt(inputs["text"], lang)})["text"]}


@program("comp_inputs_get_is_none", "composite", Q)
def optional_lang():
    return OptionalLang()


# 2
class OptionalLangIsNot(Operator):
    def __init__(self):
        self.llm = FakeLLM("translator2", "echo")

    def forward(self, *, inputs):
        lang = inputs.get("lang")
        prompt = translate_prompt(inputs["text"], lang) if lang is not None else inputs["text"]
        return {"out": self.llm(inputs={"prompt": prompt})["text"]}


@program("comp_is_not_none_ternary", "composite", [{"text": "a", "lang": "German"}, {"text": "b", "lang": "Spanish"},
                                                   {"text": "c", "lang": "Dutch"}])
def optional_lang_is_not():
    return OptionalLangIsNot()


# 3
class Summarizer(Operator):
    def __init__(self):
        self.llm = FakeLLM("base_sum", "echo")

    def forward(self, *, inputs):
        return {"summary": self.llm(inputs={"prompt": f"Summarise: {inputs['text']}"})["text"]}


class BulletSummarizer(Summarizer):
    def forward(self, *, inputs):
        base = super().forward(inputs=inputs)
        return {"summary": "- " + base["summary"]}


@program("comp_super_forward", "composite", Q)
def bullet_summarizer():
    return BulletSummarizer()


class Styled(Operator):
    """The base of ``BulletStyled``: a class attribute (changed between calls) and a helper method."""

    STYLE = "plain"

    def __init__(self):
        self.llm = FakeLLM("styled", "echo")

    def framed(self, text):
        return f"[{self.STYLE}] {text}"

    def forward(self, *, inputs):
        return {"out": self.llm(inputs={"prompt": inputs["text"]})["text"]}


class BulletStyled(Styled):
    STYLE = "bullets"

    def forward(self, *, inputs):
        base = super().forward(inputs=inputs)
        return {"out": super().framed(base["out"]), "base_style": super().STYLE, "style": self.STYLE}


def _restyle(op, i):
    Styled.STYLE = f"plain-{i}"


@program("comp_super_attribute", "composite", Q, mutate=_restyle)
def bullet_styled():
    Styled.STYLE = "plain"
    return BulletStyled()


# 4
class TwoCalls(Operator):
    """A non-jit sub-composite with two independent slow calls."""

    def __init__(self, tag):
        self.sentiment = FakeLLM(f"{tag}_sent", "label", 0.03)
        self.topic = FakeLLM(f"{tag}_topic", "echo", 0.03)

    def forward(self, *, inputs):
        s = self.sentiment(inputs={"prompt": inputs["text"]})["text"]
        t = self.topic(inputs={"prompt": inputs["text"]})["text"]
        return {"sentiment": s, "topic": t}


class Analyzer(Operator):
    def __init__(self):
        self.analysis = TwoCalls("an")
        self.report = FakeLLM("reporter", "echo")

    def forward(self, *, inputs):
        a = self.analysis(inputs={"text": inputs["text"]})
        return {"report": self.report(inputs={"prompt": f"{a['sentiment']} / {a['topic']}"})["text"]}


@program("comp_subcomposite_slow", "composite", Q, slow=True)
def analyzer():
    return Analyzer()


# 5
class TwoSubComposites(Operator):
    """Two independent non-jit sub-composites, each with two slow calls: four calls could overlap."""

    def __init__(self):
        self.first = TwoCalls("p")
        self.second = TwoCalls("q")

    def forward(self, *, inputs):
        x = self.first(inputs={"text": inputs["text"]})
        y = self.second(inputs={"text": inputs["text"].upper()})
        return {"agree": x["sentiment"] == y["sentiment"], "topics": [x["topic"], y["topic"]]}


@program("comp_two_subcomposites", "composite", Q, slow=True)
def two_subcomposites():
    return TwoSubComposites()


# 6
class GenexprJoin(Operator):
    def __init__(self):
        self.parts = [FakeLLM(f"gp{i}", "echo") for i in range(3)]

    def forward(self, *, inputs):
        joined = " ".join(p(inputs={"prompt": inputs["text"]})["text"] for p in self.parts)
        return {"joined": joined}


@program("comp_generator_join", "composite", Q)
def genexpr_join():
    return GenexprJoin()


# 7
class AnyAllGenexpr(Operator):
    def __init__(self):
        self.checks = [FakeLLM(f"chk{i}", "yesno") for i in range(3)]

    def forward(self, *, inputs):
        verdicts = [c(inputs={"prompt": inputs["text"]})["text"] for c in self.checks]
        return {"any_yes": any(v == "yes" for v in verdicts), "all_yes": all(v == "yes" for v in verdicts)}


@program("comp_any_all_genexpr", "composite", Q)
def any_all_genexpr():
    return AnyAllGenexpr()


# 8
class SharedMemorySub(Operator):
    """A sub-composite and the parent share one memory object."""

    class Responder(Operator):
        def __init__(self, memory):
            self.memory = memory
            self.llm = FakeLLM("shared_resp", "echo")

        def forward(self, *, inputs):
            turns = len(self.memory.load())
            return {"text": self.llm(inputs={"prompt": f"{turns}: {inputs['text']}"})["text"]}

    def __init__(self):
        self.memory = ConversationMemory()
        self.responder = SharedMemorySub.Responder(self.memory)

    def forward(self, *, inputs):
        reply = self.responder(inputs={"text": inputs["text"]})["text"]
        self.memory.save(inputs["text"], reply)
        return {"reply": reply}


@program("comp_shared_memory_sub", "composite", Q)
def shared_memory_sub():
    return SharedMemorySub()


# 9
class HelperChain(Operator):
    """User helpers building prompts and post-processing, with a default argument."""

    def __init__(self):
        self.llm = FakeLLM("helperchain", "echo")
        self.tool = Tool("upper")

    @staticmethod
    def build(text, prefix="Q"):
        return f"{prefix}: {text.strip()}"

    def post(self, text):
        return text.replace("#", " no. ")

    def forward(self, *, inputs):
        out = self.llm(inputs={"prompt": self.build(inputs["text"])})["text"]
        shout = self.tool(inputs={"arg": self.post(out)})["result"]
        return {"out": shout}


@program("comp_helpers_methods", "composite", Q)
def helper_chain():
    return HelperChain()


# 10
class LangDefault(Operator):
    """``inputs.get("lang", "en")`` and a dict lookup with the runtime key, logging the choice."""

    def __init__(self):
        self.models = {"en": FakeLLM("en_model", "echo"), "fr": FakeLLM("fr_model", "echo")}

    def forward(self, *, inputs):
        lang = inputs.get("lang", "en")
        logger.info("lang=%s", lang)
        model = self.models.get(lang, self.models["en"])
        return {"out": model(inputs={"prompt": inputs["text"]})["text"]}


@program("comp_lang_default_get", "composite", [{"text": "a", "lang": "fr"}, {"text": "b", "lang": "en"},
                                                {"text": "c", "lang": "de"}])
def lang_default():
    return LangDefault()


# 11
class EarlyReturn(Operator):
    def __init__(self):
        self.guard = FakeLLM("earlyguard", "yesno")
        self.main = FakeLLM("earlymain", "echo")

    def forward(self, *, inputs):
        if not inputs["text"].strip():
            return {"out": ""}
        ok = self.guard(inputs={"prompt": inputs["text"]})["text"]
        if ok != "yes":
            return {"out": "refused"}
        return {"out": self.main(inputs={"prompt": inputs["text"]})["text"]}


@program("comp_early_returns", "composite", Q + [{"text": "   "}, {"text": "x"}])
def early_return():
    return EarlyReturn()


# 12
class KwargsCall(Operator):
    """Sub-operators called with keyword inputs and ** of a dict built in forward."""

    def __init__(self):
        self.tool = Tool("upper")
        self.llm = FakeLLM("kwargs", "echo")

    def forward(self, *, inputs):
        shouted = self.tool(arg=inputs["text"])["result"]
        payload = {"prompt": f"{shouted}!"}
        return {"out": self.llm(**payload)["text"]}


@program("comp_kwargs_calls", "composite", Q)
def kwargs_call():
    return KwargsCall()
