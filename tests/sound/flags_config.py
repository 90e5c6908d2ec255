"""Feature-flagged pipelines (a module-level FLAGS dict flipped between requests) and config sweeps
(a mutable dataclass config whose fields change between calls)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from xcs import Operator

from sound.common import FakeLLM, Tool, program

logger = logging.getLogger("corpus.flags")
FLAGS = {"use_reranker": False, "safety_filter": True, "model": "small", "verbose": False}
DEFAULT_FLAGS = dict(FLAGS)
SETTINGS = {"style": "concise"}
Q = [{"query": q} for q in ("hello", "world", "again", "once more")]


def reset_flags():
    FLAGS.clear()
    FLAGS.update(DEFAULT_FLAGS)
    SETTINGS["style"] = "concise"


def flip(name):
    def mutate(op, i):
        FLAGS[name] = not FLAGS[name]
    return mutate


# 1
class RerankFlag(Operator):
    def __init__(self):
        self.generate = FakeLLM("ff_gen", "echo")
        self.rerank = FakeLLM("ff_rerank", "echo")

    def forward(self, *, inputs):
        draft = self.generate(inputs={"prompt": inputs["query"]})["text"]
        if FLAGS["use_reranker"]:
            draft = self.rerank(inputs={"prompt": draft})["text"]
        return {"answer": draft}


@program("flags_module_dict_branch", "flags", Q, mutate=flip("use_reranker"))
def rerank_flag():
    reset_flags()
    return RerankFlag()


# 2
class ModelFlag(Operator):
    def __init__(self):
        self.models = {"small": FakeLLM("small", "echo"), "large": FakeLLM("large", "echo")}

    def forward(self, *, inputs):
        return {"answer": self.models[FLAGS["model"]](inputs={"prompt": inputs["query"]})["text"]}


def _swap_model(op, i):
    FLAGS["model"] = "large" if FLAGS["model"] == "small" else "small"


@program("flags_model_key", "flags", Q, mutate=_swap_model)
def model_flag():
    reset_flags()
    return ModelFlag()


# 3
class SafetyFilter(Operator):
    def __init__(self):
        self.llm = FakeLLM("sf_llm", "echo")
        self.moderator = FakeLLM("moderator", "yesno")

    def forward(self, *, inputs):
        text = self.llm(inputs={"prompt": inputs["query"]})["text"]
        if FLAGS.get("safety_filter") and self.moderator(inputs={"prompt": text})["text"] == "no":
            return {"answer": "[filtered]"}
        return {"answer": text}


@program("flags_get_and_output", "flags", Q, mutate=flip("safety_filter"))
def safety_filter():
    reset_flags()
    return SafetyFilter()


# 4
class StyleSetting(Operator):
    def __init__(self):
        self.llm = FakeLLM("styled", "echo")

    def forward(self, *, inputs):
        return {"answer": self.llm(inputs={"prompt": f"[{SETTINGS['style']}] {inputs['query']}"})["text"]}


def _style(op, i):
    SETTINGS["style"] = ["verbose", "pirate", "formal"][i % 3]


@program("flags_global_fstring", "flags", Q, mutate=_style)
def style_setting():
    reset_flags()
    return StyleSetting()


# 5
@dataclass
class GenConfig:
    temperature: float = 0.2
    max_tokens: int = 64
    system: str = "You are helpful."
    stop: list = field(default_factory=lambda: ["\n\n"])


class ConfiguredLLM(Operator):
    def __init__(self):
        self.config = GenConfig()
        self.llm = FakeLLM("cfg", "echo")

    def forward(self, *, inputs):
        prompt = f"{self.config.system}\n(temp={self.config.temperature}, max={self.config.max_tokens})\n{inputs['query']}"
        return {"answer": self.llm(inputs={"prompt": prompt})["text"]}


def _sweep(op, i):
    op.config.temperature = [0.5, 0.9, 1.3][i % 3]
    op.config.max_tokens *= 2


@program("config_dataclass_fstring", "config", Q, mutate=_sweep)
def configured_llm():
    return ConfiguredLLM()


# 6
class SystemPromptSweep(Operator):
    def __init__(self):
        self.config = GenConfig()
        self.a = FakeLLM("sweep_a", "echo", 0.02)
        self.b = FakeLLM("sweep_b", "echo", 0.02)

    def forward(self, *, inputs):
        system = self.config.system
        x = self.a(inputs={"prompt": system + inputs["query"]})["text"]
        y = self.b(inputs={"prompt": system + inputs["query"][::-1]})["text"]
        return {"pair": [x, y]}


def _new_system(op, i):
    op.config.system = f"System prompt variant {i}"


@program("config_system_sweep_parallel", "config", Q, mutate=_new_system, slow=True)
def system_prompt_sweep():
    return SystemPromptSweep()


# 7
class ConfigBranch(Operator):
    def __init__(self):
        self.config = GenConfig()
        self.fast = FakeLLM("fastpath", "echo")
        self.slow = FakeLLM("slowpath", "echo")

    def forward(self, *, inputs):
        if self.config.temperature > 0.5:
            return {"answer": self.slow(inputs={"prompt": inputs["query"]})["text"], "path": "creative"}
        return {"answer": self.fast(inputs={"prompt": inputs["query"]})["text"], "path": "precise"}


@program("config_dataclass_branch", "config", Q, mutate=_sweep)
def config_branch():
    return ConfigBranch()


# 8
class StopSequences(Operator):
    """A list field of the config, truncating the output."""

    def __init__(self):
        self.config = GenConfig()
        self.llm = FakeLLM("stopper", "list")

    def forward(self, *, inputs):
        text = self.llm(inputs={"prompt": inputs["query"]})["text"]
        for stop in self.config.stop:
            text = text.split(stop)[0]
        return {"answer": text}


def _stops(op, i):
    op.config.stop.append("\n")


@program("config_stop_list", "config", Q, mutate=_stops)
def stop_sequences():
    return StopSequences()


# 9
class VerboseFlagLogging(Operator):
    def __init__(self):
        self.llm = FakeLLM("vf", "echo")
        self.search = Tool("search")

    def forward(self, *, inputs):
        found = self.search(inputs={"arg": "topic5"})["result"]
        if FLAGS["verbose"]:
            logger.info("search found: %s", found)
            print("debug:", found)
        return {"answer": self.llm(inputs={"prompt": found + inputs["query"]})["text"]}


@program("flags_verbose_log_print", "flags", Q, mutate=flip("verbose"))
def verbose_flag_logging():
    reset_flags()
    return VerboseFlagLogging()


# 10
class ExperimentArms(Operator):
    """A/B test: the arm comes from a mutable assignment table keyed by user id."""

    def __init__(self):
        self.arms = {"control": FakeLLM("control", "echo"), "treatment": FakeLLM("treatment", "echo")}
        self.assignment = {"u1": "control", "u2": "control"}

    def forward(self, *, inputs):
        arm = self.assignment.get(inputs["user"], "control")
        return {"arm": arm, "answer": self.arms[arm](inputs={"prompt": inputs["query"]})["text"]}


def _reassign(op, i):
    op.assignment["u1"] = "treatment" if op.assignment["u1"] == "control" else "control"


@program("flags_ab_assignment", "flags", [{"user": "u1", "query": q["query"]} for q in Q], mutate=_reassign)
def experiment_arms():
    return ExperimentArms()
