"""LangChain-style chains: prompt templates, conversation memory that grows between calls, output
parsers, sequential chains, routers. The memory is saved by the chain itself (an effect whose order
matters) or by the application between calls (``mutate``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from xcs import Operator

from sound.common import ConversationMemory, FakeLLM, Tool, program

logger = logging.getLogger("corpus.langchain")


class PromptTemplate:
    def __init__(self, template: str):
        self.template = template

    def format(self, **kwargs) -> str:
        return self.template.format(**kwargs)

    def snapshot(self):
        return self.template


QUESTIONS = [{"input": q} for q in ("Hi, I am Ann.", "What is my name?", "Tell me a joke.", "Bye!")]


def remember(op, i):
    op.memory.save(f"external{i}", f"note{i}")


# 1 ---------------------------------------------------------------------------------------------
class ConversationChain(Operator):
    def __init__(self):
        self.llm = FakeLLM("chat", "echo")
        self.memory = ConversationMemory()
        self.prompt = PromptTemplate("The following is a conversation.\n{history}\nHuman: {input}\nAI:")

    def forward(self, *, inputs):
        history = self.memory.load_memory_variables()["history"]
        text = self.llm(inputs={"prompt": self.prompt.format(history=history, input=inputs["input"])})["text"]
        self.memory.save(inputs["input"], text)
        return {"response": text}


@program("lc_conversation_chain", "langchain", QUESTIONS)
def conversation_chain():
    return ConversationChain()


# 2 ---------------------------------------------------------------------------------------------
class ExternalMemoryChain(Operator):
    """The application saves turns (mutate); the chain only loads."""

    def __init__(self):
        self.llm = FakeLLM("extmem", "echo")
        self.memory = ConversationMemory()

    def forward(self, *, inputs):
        turns = self.memory.load()
        prompt = f"{len(turns)} previous turns. Last: {turns[-1][1] if turns else 'none'}. Q: {inputs['input']}"
        return {"response": self.llm(inputs={"prompt": prompt})["text"]}


@program("lc_external_memory", "langchain", QUESTIONS[:3], mutate=remember)
def external_memory():
    return ExternalMemoryChain()


# 3 ---------------------------------------------------------------------------------------------
class WindowMemoryChain(Operator):
    def __init__(self):
        self.llm = FakeLLM("window", "echo")
        self.memory = ConversationMemory(window=2)

    def forward(self, *, inputs):
        history = self.memory.load()
        lines = []
        for human, ai in history:
            lines.append(f"Human: {human}")
            lines.append(f"AI: {ai}")
        lines.append(f"Human: {inputs['input']}")
        reply = self.llm(inputs={"prompt": "\n".join(lines)})["text"]
        self.memory.save(inputs["input"], reply)
        return {"response": reply, "turns": len(history)}


@program("lc_window_memory", "langchain", QUESTIONS)
def window_memory():
    return WindowMemoryChain()


# 4 ---------------------------------------------------------------------------------------------
class SimpleSequentialChain(Operator):
    def __init__(self):
        self.synopsis = FakeLLM("synopsis", "echo")
        self.review = FakeLLM("review", "echo")
        self.templates = {"synopsis": "Write a synopsis for {title}.", "review": "Review this: {synopsis}"}

    def forward(self, *, inputs):
        synopsis = self.synopsis(inputs={"prompt": self.templates["synopsis"].format(title=inputs["title"])})["text"]
        review = self.review(inputs={"prompt": self.templates["review"].format(synopsis=synopsis)})["text"]
        return {"synopsis": synopsis, "review": review}


def _edit_template(op, i):
    op.templates["review"] = f"Critique (v{i}): {{synopsis}}"


@program("lc_sequential_templates", "langchain", [{"title": t} for t in ("Dune", "Emma", "Ulysses")],
         mutate=_edit_template)
def sequential_chain():
    return SimpleSequentialChain()


# 5 ---------------------------------------------------------------------------------------------
class TemplateObjectChain(Operator):
    """A prompt template object whose template string is edited between calls."""

    def __init__(self):
        self.llm = FakeLLM("tmpl", "echo")
        self.prompt = PromptTemplate("Translate to French: {text}")

    def forward(self, *, inputs):
        return {"out": self.llm(inputs={"prompt": self.prompt.format(text=inputs["text"])})["text"]}


def _retemplate(op, i):
    op.prompt.template = ["Translate to German: {text}", "Translate to Italian: {text}", "Summarise: {text}"][i % 3]


@program("lc_template_object", "langchain", [{"text": t} for t in ("hello", "cat", "sun")], mutate=_retemplate)
def template_object():
    return TemplateObjectChain()


# 6 ---------------------------------------------------------------------------------------------
class SummaryMemoryChain(Operator):
    """ConversationSummaryMemory: the running summary is an attribute of a memory object."""

    def __init__(self):
        self.llm = FakeLLM("sumchat", "echo")
        self.summarizer = FakeLLM("summarizer", "echo")
        self.memory = ConversationMemory()

    def forward(self, *, inputs):
        if self.memory.messages:
            summary = self.summarizer(inputs={"prompt": f"Summarise: {self.memory.messages}"})["text"]
        else:
            summary = "(empty)"
        reply = self.llm(inputs={"prompt": f"Summary: {summary}\nHuman: {inputs['input']}"})["text"]
        self.memory.save(inputs["input"], reply)
        return {"response": reply}


@program("lc_summary_memory", "langchain", QUESTIONS)
def summary_memory():
    return SummaryMemoryChain()


# 7 ---------------------------------------------------------------------------------------------
class RouterChain(Operator):
    def __init__(self):
        self.router = FakeLLM("router", "route")
        self.destinations = {
            "math": FakeLLM("math_expert", "echo"),
            "search": FakeLLM("search_expert", "echo"),
            "chat": FakeLLM("chat_expert", "echo"),
        }

    def forward(self, *, inputs):
        route = self.router(inputs={"prompt": inputs["input"]})["text"].strip()
        logger.info("routing to %s", route)
        out = self.destinations[route](inputs={"prompt": inputs["input"]})
        return {"route": route, "text": out["text"]}


@program("lc_router_chain", "langchain", [{"input": q} for q in ("2+2?", "capital of France", "hello", "sqrt 9")])
def router_chain():
    return RouterChain()


# 8 ---------------------------------------------------------------------------------------------
@dataclass
class ChainConfig:
    temperature: float = 0.0
    verbose: bool = False
    prefix: str = "Answer:"


class VerboseChain(Operator):
    def __init__(self):
        self.llm = FakeLLM("verbose", "echo")
        self.config = ChainConfig()

    def forward(self, *, inputs):
        prompt = f"{self.config.prefix} {inputs['input']} (t={self.config.temperature})"
        if self.config.verbose:
            print(f"> Entering chain with prompt: {prompt}")
        text = self.llm(inputs={"prompt": prompt})["text"]
        if self.config.verbose:
            print("> Finished chain.")
        return {"text": text}


def _verbose(op, i):
    op.config.verbose = not op.config.verbose
    op.config.temperature = round(op.config.temperature + 0.3, 1)


@program("lc_verbose_config", "langchain", QUESTIONS[:3], mutate=_verbose)
def verbose_chain():
    return VerboseChain()


# 9 ---------------------------------------------------------------------------------------------
class MemoryWithTools(Operator):
    """A chat chain consulting a tool when the memory is long enough."""

    def __init__(self):
        self.llm = FakeLLM("memtool", "echo")
        self.search = Tool("search")
        self.memory = ConversationMemory()

    def forward(self, *, inputs):
        history = self.memory.load()
        facts = self.search(inputs={"arg": f"topic{len(history) % 7}"})["result"]
        reply = self.llm(inputs={"prompt": f"{facts}\n{history}\n{inputs['input']}"})["text"]
        self.memory.save(inputs["input"], reply)
        return {"response": reply, "facts": facts}


@program("lc_memory_tool_key", "langchain", QUESTIONS)
def memory_with_tools():
    return MemoryWithTools()


# 10 --------------------------------------------------------------------------------------------
class ClearingMemoryChain(Operator):
    """Clears the memory when the user says bye; logs each turn."""

    def __init__(self):
        self.llm = FakeLLM("clearing", "echo")
        self.memory = ConversationMemory()

    def forward(self, *, inputs):
        text = inputs["input"]
        logger.info("turn %d: %s", len(self.memory.messages), text)
        reply = self.llm(inputs={"prompt": f"{self.memory.load()} {text}"})["text"]
        if text.lower().startswith("bye"):
            self.memory.clear()
        else:
            self.memory.save(text, reply)
        return {"response": reply}


@program("lc_clearing_memory", "langchain", QUESTIONS + [{"input": "Hello again"}])
def clearing_memory():
    return ClearingMemoryChain()


# 11 --------------------------------------------------------------------------------------------
class StuffDocumentsChain(Operator):
    """Map-reduce over documents held in a list that the application extends between calls."""

    def __init__(self):
        self.map_llm = FakeLLM("map", "echo")
        self.reduce_llm = FakeLLM("reduce", "echo")
        self.documents = ["doc about mars", "doc about rivers"]

    def forward(self, *, inputs):
        partials = [self.map_llm(inputs={"prompt": f"{inputs['question']} | {doc}"})["text"] for doc in self.documents]
        combined = "\n".join(partials)
        return {"answer": self.reduce_llm(inputs={"prompt": combined})["text"], "n": len(partials)}


@program("lc_map_reduce_docs", "langchain", [{"question": q} for q in ("colour?", "length?", "who?")],
         mutate=lambda op, i: op.documents.append(f"new doc {i}"))
def map_reduce_docs():
    return StuffDocumentsChain()
