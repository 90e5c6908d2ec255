"""DSPy-style modules: signatures, Predict / ChainOfThought holding demos lists, composed programs.

A teleprompter-like optimiser adds demos (few-shot examples) to the predictors between calls, and
instructions get rewritten: the prompt a compiled plan builds must follow.
"""

from __future__ import annotations

import logging

from xcs import Operator

from sound.common import FakeLLM, Tool, program

logger = logging.getLogger("corpus.dspy")


class Signature:
    """``"question -> answer"`` with instructions; a plain (mutable) object, as in DSPy."""

    def __init__(self, spec: str, instructions: str = ""):
        left, right = spec.split("->")
        self.inputs = [f.strip() for f in left.split(",")]
        self.outputs = [f.strip() for f in right.split(",")]
        self.instructions = instructions or f"Given {', '.join(self.inputs)}, produce {', '.join(self.outputs)}."

    def snapshot(self):
        return (tuple(self.inputs), tuple(self.outputs), self.instructions)


def format_demos(demos, fields):
    blocks = []
    for demo in demos:
        blocks.append("\n".join(f"{k.title()}: {demo[k]}" for k in fields if k in demo))
    return "\n---\n".join(blocks)


class Predict(Operator):
    def __init__(self, signature: Signature, name: str = "predict", style: str = "echo", delay: float = 0.0):
        self.signature = signature
        self.demos: list[dict] = []
        self.lm = FakeLLM(name, style, delay)

    def build_prompt(self, inputs):
        sig = self.signature
        parts = [sig.instructions]
        if self.demos:
            parts.append(format_demos(self.demos, sig.inputs + sig.outputs))
        parts.append("\n".join(f"{k.title()}: {inputs[k]}" for k in sig.inputs))
        return "\n\n".join(parts)

    def forward(self, *, inputs):
        prompt = self.build_prompt(inputs)
        text = self.lm(inputs={"prompt": prompt})["text"]
        return {self.signature.outputs[0]: text}


class ChainOfThought(Predict):
    def build_prompt(self, inputs):
        return super().build_prompt(inputs) + "\nReasoning: Let's think step by step."

    def forward(self, *, inputs):
        out = super().forward(inputs=inputs)
        out["rationale"] = "step by step"
        return out


def add_demo(pred_path):
    def mutate(op, i):
        target = op
        for part in pred_path.split("."):
            target = getattr(target, part)
        target.demos.append({"question": f"demo q{i}", "answer": f"demo a{i}", "context": "ctx"})
    return mutate


# 1 -------------------------------------------------------------------------------------------
class BasicQA(Operator):
    def __init__(self):
        self.generate = Predict(Signature("question -> answer"), "qa")

    def forward(self, *, inputs):
        return self.generate(inputs={"question": inputs["question"]})


@program("dspy_basic_qa", "dspy", [{"question": q} for q in ("Why is Mars red?", "Who wrote Python?", "What is 2+2?")],
         mutate=add_demo("generate"))
def basic_qa():
    return BasicQA()


# 2 ------------------------------------------------------------------------------------------
class InlinePredictQA(Operator):
    """The predictor's prompt is built in the composite's own forward from the held signature and demos."""

    def __init__(self):
        self.signature = Signature("question -> answer", "Answer concisely.")
        self.demos = []
        self.lm = FakeLLM("inline", "echo")

    def forward(self, *, inputs):
        shots = "\n".join(f"Q: {d['question']}\nA: {d['answer']}" for d in self.demos)
        prompt = f"{self.signature.instructions}\n{shots}\nQ: {inputs['question']}\nA:"
        return {"answer": self.lm(inputs={"prompt": prompt})["text"]}


def _inline_mutate(op, i):
    op.demos.append({"question": f"q{i}", "answer": f"a{i}"})
    op.signature.instructions = f"Answer concisely (v{i + 2})."


@program("dspy_inline_predict", "dspy", [{"question": q} for q in ("a?", "b?", "c?")], mutate=_inline_mutate)
def inline_predict():
    return InlinePredictQA()


# 3 ------------------------------------------------------------------------------------------
class InlineDemosLoop(Operator):
    """Demos rendered with a for loop over the held list (a loop over mutable state)."""

    def __init__(self):
        self.demos = [{"q": "seed", "a": "seed-answer"}]
        self.lm = FakeLLM("loopdemo", "echo")

    def forward(self, *, inputs):
        prompt = ""
        for demo in self.demos:
            prompt += f"Q: {demo['q']}\nA: {demo['a']}\n\n"
        prompt += f"Q: {inputs['question']}\nA:"
        return {"answer": self.lm(inputs={"prompt": prompt})["text"], "shots": len(self.demos)}


@program("dspy_demos_loop", "dspy", [{"question": q} for q in ("x", "y", "z")],
         mutate=lambda op, i: op.demos.append({"q": f"q{i}", "a": f"a{i}"}))
def demos_loop():
    return InlineDemosLoop()


# 4 ------------------------------------------------------------------------------------------
class CoTQA(Operator):
    def __init__(self):
        self.cot = ChainOfThought(Signature("question -> answer"), "cot")

    def forward(self, *, inputs):
        pred = self.cot(inputs={"question": inputs["question"]})
        return {"answer": pred["answer"], "rationale": pred["rationale"]}


@program("dspy_cot", "dspy", [{"question": q} for q in ("why?", "how?", "when?")], mutate=add_demo("cot"))
def cot_qa():
    return CoTQA()


# 5 ------------------------------------------------------------------------------------------
class RootPredict(Operator):
    """The root itself is a Predict subclass using super().forward (zero-argument super)."""

    def __init__(self):
        self.signature = Signature("question -> answer")
        self.demos = []
        self.lm = FakeLLM("root", "echo")

    def forward(self, *, inputs):
        prompt = f"{self.signature.instructions} {len(self.demos)} demos. Q: {inputs['question']}"
        return {"answer": self.lm(inputs={"prompt": prompt})["text"]}


class RootCoT(RootPredict):
    def forward(self, *, inputs):
        out = super().forward(inputs={"question": inputs["question"] + " Think step by step."})
        return {"answer": out["answer"], "cot": True}


@program("dspy_super_forward", "dspy", [{"question": q} for q in ("one", "two", "three")],
         mutate=lambda op, i: op.demos.append({"question": str(i)}))
def super_forward():
    return RootCoT()


# 6 ------------------------------------------------------------------------------------------
class MultiHop(Operator):
    def __init__(self, hops: int = 2):
        self.generate_query = [Predict(Signature("context, question -> query"), f"hop{i}") for i in range(hops)]
        self.retrieve = Tool("search")
        self.generate_answer = ChainOfThought(Signature("context, question -> answer"), "final")

    def forward(self, *, inputs):
        context = []
        for hop in self.generate_query:
            query = hop(inputs={"context": " ".join(context), "question": inputs["question"]})["query"]
            found = self.retrieve(inputs={"arg": f"topic{len(query) % 7}"})["result"]
            context.append(found)
        return self.generate_answer(inputs={"context": " ".join(context), "question": inputs["question"]})


@program("dspy_multihop", "dspy", [{"question": q} for q in ("Mars?", "Nile?", "Bees?")],
         mutate=add_demo("generate_answer"))
def multihop():
    return MultiHop()


# 7 ------------------------------------------------------------------------------------------
class ClassifyThenAnswer(Operator):
    def __init__(self):
        self.classify = Predict(Signature("text -> label"), "clf", "label")
        self.answer = Predict(Signature("text, label -> reply"), "reply")

    def forward(self, *, inputs):
        label = self.classify(inputs={"text": inputs["text"]})["label"]
        logger.info("label=%s", label)
        if label == "negative":
            return {"reply": "Sorry to hear that.", "label": label}
        return {"reply": self.answer(inputs={"text": inputs["text"], "label": label})["reply"], "label": label}


@program("dspy_classify_branch", "dspy", [{"text": t} for t in ("I love it", "meh", "terrible", "great")],
         mutate=add_demo("answer"))
def classify_then_answer():
    return ClassifyThenAnswer()


# 8 ------------------------------------------------------------------------------------------
class Assertions(Operator):
    """dspy.Assert-style: validate the prediction, retry once with feedback."""

    def __init__(self):
        self.predict = Predict(Signature("question -> answer"), "asrt")
        self.max_len = 12

    def forward(self, *, inputs):
        pred = self.predict(inputs={"question": inputs["question"]})
        if len(pred["answer"]) > self.max_len:
            pred = self.predict(inputs={"question": inputs["question"] + " (be brief)"})
        assert pred["answer"], "empty answer"
        return pred


@program("dspy_assert_retry", "dspy", [{"question": q} for q in ("q1", "q22", "q333")], mutate=add_demo("predict"))
def assertions():
    return Assertions()


# 9 ------------------------------------------------------------------------------------------
class ParallelPredictors(Operator):
    """Three independent predictors (slow) and a combiner: overlap expected."""

    def __init__(self):
        self.summarize = Predict(Signature("text -> summary"), "sum", delay=0.03)
        self.keywords = Predict(Signature("text -> keywords"), "kw", delay=0.03)
        self.title = Predict(Signature("text -> title"), "title", delay=0.03)

    def forward(self, *, inputs):
        s = self.summarize(inputs={"text": inputs["text"]})["summary"]
        k = self.keywords(inputs={"text": inputs["text"]})["keywords"]
        t = self.title(inputs={"text": inputs["text"]})["title"]
        return {"card": f"{t}\n{s}\n[{k}]"}


@program("dspy_parallel_predictors", "dspy", [{"text": t} for t in ("doc one", "doc two", "doc three")],
         mutate=add_demo("title"), slow=True)
def parallel_predictors():
    return ParallelPredictors()


# 10 -----------------------------------------------------------------------------------------
class SignatureSwap(Operator):
    """The optimiser rewrites the signature's instructions between calls."""

    def __init__(self):
        self.predict = Predict(Signature("question -> answer"), "swap")

    def forward(self, *, inputs):
        return self.predict(inputs={"question": inputs["question"]})


def _rewrite(op, i):
    op.predict.signature.instructions = f"Rewritten instructions #{i}"


@program("dspy_signature_rewrite", "dspy", [{"question": q} for q in ("a", "b", "c")], mutate=_rewrite)
def signature_swap():
    return SignatureSwap()


# 11 ----------------------------------------------------------------------------------------
class InlineSignatureFields(Operator):
    """The composite formats the prompt from the signature's (mutable) field lists itself."""

    def __init__(self):
        self.signature = Signature("question, context -> answer")
        self.lm = FakeLLM("fields", "echo")

    def forward(self, *, inputs):
        lines = [f"{name}: {inputs.get(name, '')}" for name in self.signature.inputs]
        prompt = self.signature.instructions + "\n" + "\n".join(lines)
        return {"answer": self.lm(inputs={"prompt": prompt})["text"]}


def _add_field(op, i):
    op.signature.inputs.append(f"extra{i}")


@program("dspy_signature_fields", "dspy", [{"question": q, "context": "c"} for q in ("a", "b", "c")], mutate=_add_field)
def signature_fields():
    return InlineSignatureFields()
