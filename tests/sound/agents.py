"""Agent loops: ReAct with a tool dict and a bounded step loop, plan-and-execute, tool routing by a
runtime key (``self.tools[route](...)``), while loops, try/except around tools, scratchpads."""

from __future__ import annotations

import logging
import re

from xcs import Operator

from sound.common import EVENTS, FakeLLM, Tool, UsageMeter, program

logger = logging.getLogger("corpus.agents")
ACTION = re.compile(r"Action:\s*(\w+)\[(.*?)\]")
TASKS = [{"question": q} for q in ("What colour is Mars?", "Compute something", "Who made Python?")]


def tools():
    return {"search": Tool("search"), "calc": Tool("calc"), "lookup": Tool("lookup")}


# 1 ---------------------------------------------------------------------------------------------
class ReAct(Operator):
    def __init__(self, max_steps=4):
        self.llm = FakeLLM("react", "react")
        self.tools = tools()
        self.max_steps = max_steps

    def forward(self, *, inputs):
        scratchpad = f"Question: {inputs['question']}\n"
        for step in range(self.max_steps):
            thought = self.llm(inputs={"prompt": scratchpad})["text"]
            scratchpad += thought + "\n"
            if "Final Answer:" in thought:
                return {"answer": thought.split("Final Answer:")[1].strip(), "steps": step + 1}
            match = ACTION.search(thought)
            tool, arg = match.group(1), match.group(2)
            observation = self.tools[tool](inputs={"arg": arg})["result"]
            scratchpad += f"Observation: {observation}\n"
        return {"answer": None, "steps": self.max_steps}


@program("agent_react", "agent", TASKS)
def react():
    return ReAct()


# 2 ---------------------------------------------------------------------------------------------
class WhileAgent(Operator):
    """A while loop with a step counter and a tool-call log kept by the agent."""

    def __init__(self):
        self.llm = FakeLLM("while", "react")
        self.tools = tools()
        self.history = []

    def forward(self, *, inputs):
        prompt = inputs["question"]
        steps = 0
        done = False
        while not done and steps < 5:
            reply = self.llm(inputs={"prompt": prompt})["text"]
            steps += 1
            if reply.startswith("Thought: done"):
                done = True
                prompt += "\n" + reply
            else:
                name, arg = ACTION.search(reply).groups()
                self.history.append(name)
                prompt += f"\n{reply}\nObservation: {self.tools[name](inputs={'arg': arg})['result']}"
        return {"transcript": prompt, "steps": steps, "tools_used": len(self.history)}


@program("agent_while_loop", "agent", TASKS)
def while_agent():
    return WhileAgent()


# 3 ---------------------------------------------------------------------------------------------
class RoutedTool(Operator):
    """One routing decision then ``self.tools[route](...)`` with the runtime key."""

    def __init__(self):
        self.router = FakeLLM("picker", "route")
        self.tools = {"math": Tool("calc"), "search": Tool("search"), "chat": Tool("upper")}

    def forward(self, *, inputs):
        route = self.router(inputs={"prompt": inputs["question"]})["text"]
        arg = {"math": "6 * 7", "search": "topic1", "chat": inputs["question"]}[route]
        return {"route": route, "result": self.tools[route](inputs={"arg": arg})["result"]}


@program("agent_runtime_key_route", "agent", [{"question": q} for q in ("a", "bb", "ccc", "dddd")])
def routed_tool():
    return RoutedTool()


# 4 ---------------------------------------------------------------------------------------------
class InputRoutedTool(Operator):
    """The tool name comes straight from the inputs."""

    def __init__(self):
        self.tools = tools()

    def forward(self, *, inputs):
        out = self.tools[inputs["tool"]](inputs={"arg": inputs["arg"]})
        return {"result": out["result"]}


@program("agent_input_key_route", "agent", [{"tool": "search", "arg": "topic2"}, {"tool": "calc", "arg": "3 + 4"},
                                            {"tool": "lookup", "arg": "key1"}])
def input_routed_tool():
    return InputRoutedTool()


# 5 ---------------------------------------------------------------------------------------------
class SafeToolAgent(Operator):
    """try/except around a tool call: a bad calculation falls back to search."""

    def __init__(self):
        self.calc = Tool("calc")
        self.search = Tool("search")

    def forward(self, *, inputs):
        try:
            result = self.calc(inputs={"arg": inputs["expr"]})["result"]
            source = "calc"
        except ValueError:
            result = self.search(inputs={"arg": "topic3"})["result"]
            source = "search"
        return {"result": result, "source": source}


@program("agent_try_except_tool", "agent", [{"expr": "2 + 2"}, {"expr": "two plus two"}, {"expr": "9 / 3"}])
def safe_tool_agent():
    return SafeToolAgent()


# 6 ---------------------------------------------------------------------------------------------
class PlanExecute(Operator):
    """Planner writes a list of steps; each step runs a tool; the step limit is an attribute-held dict."""

    def __init__(self):
        self.planner = FakeLLM("planner", "list")
        self.executor = Tool("search")
        self.settings = {"max_steps": 2}

    def forward(self, *, inputs):
        plan = self.planner(inputs={"prompt": inputs["question"]})["text"].splitlines()
        results = []
        for line in plan[: self.settings["max_steps"]]:
            item = line.lstrip("- ").strip()
            results.append(self.executor(inputs={"arg": f"topic{int(item[4:]) % 7}"})["result"])
        return {"results": results}


def _more_steps(op, i):
    op.settings["max_steps"] += 1


@program("agent_plan_execute", "agent", TASKS, mutate=_more_steps)
def plan_execute():
    return PlanExecute()


# 7 ---------------------------------------------------------------------------------------------
class BudgetedAgent(Operator):
    """Each tool call is charged; the agent stops when the meter says so."""

    def __init__(self):
        self.llm = FakeLLM("budget_agent", "react")
        self.tools = tools()
        self.meter = UsageMeter(budget=4)

    def forward(self, *, inputs):
        prompt = inputs["question"]
        used = []
        for _ in range(3):
            if self.meter.remaining() <= 0:
                logger.warning("budget exhausted")
                break
            reply = self.llm(inputs={"prompt": prompt})["text"]
            self.meter.charge()
            match = ACTION.search(reply)
            if match is None:
                break
            used.append(match.group(1))
            prompt += "\nObservation: " + self.tools[match.group(1)](inputs={"arg": match.group(2)})["result"]
        return {"used": used, "remaining": self.meter.remaining()}


@program("agent_budgeted", "agent", TASKS + [{"question": "more"}])
def budgeted_agent():
    return BudgetedAgent()


# 8 ---------------------------------------------------------------------------------------------
class ToolRegistryAgent(Operator):
    """Allowed tools are a mutable set the operator holds; disabled tools are skipped."""

    def __init__(self):
        self.tools = tools()
        self.enabled = {"search", "lookup"}

    def forward(self, *, inputs):
        out = {}
        for name in ("search", "calc", "lookup"):
            if name in self.enabled:
                arg = {"search": "topic0", "calc": "1 + 1", "lookup": "key0"}[name]
                out[name] = self.tools[name](inputs={"arg": arg})["result"]
        return {"out": out, "q": inputs["question"]}


def _toggle_tools(op, i):
    if "calc" in op.enabled:
        op.enabled.discard("calc")
    else:
        op.enabled.add("calc")


@program("agent_enabled_tools_set", "agent", TASKS, mutate=_toggle_tools)
def tool_registry_agent():
    return ToolRegistryAgent()


# 9 ---------------------------------------------------------------------------------------------
def parse_action(text):
    """A user helper the agent calls."""
    m = ACTION.search(text)
    return (m.group(1), m.group(2)) if m else (None, None)


class HelperAgent(Operator):
    def __init__(self):
        self.llm = FakeLLM("helper_agent", "react")
        self.tools = tools()

    def forward(self, *, inputs):
        reply = self.llm(inputs={"prompt": inputs["question"]})["text"]
        tool, arg = parse_action(reply)
        if tool is None:
            return {"answer": reply}
        observation = self.tools[tool](inputs={"arg": arg})["result"]
        return {"answer": self.llm(inputs={"prompt": f"{reply}\nObservation: {observation}"})["text"]}


@program("agent_helper_parse", "agent", TASKS)
def helper_agent():
    return HelperAgent()


# 10 --------------------------------------------------------------------------------------------
class TracingAgent(Operator):
    """Records each step in an episode log (an effect) and prints a trace line."""

    def __init__(self):
        self.llm = FakeLLM("tracing", "echo")
        self.search = Tool("search")
        self.episode = []

    def forward(self, *, inputs):
        print(f"[agent] question={inputs['question']}")
        self.episode.append(("question", inputs["question"]))
        found = self.search(inputs={"arg": "topic4"})["result"]
        self.episode.append(("observation", found))
        EVENTS.effect("episode", len(self.episode))
        answer = self.llm(inputs={"prompt": f"{inputs['question']} {found}"})["text"]
        print(f"[agent] answer={answer}")
        return {"answer": answer, "episode_len": len(self.episode)}


@program("agent_tracing_prints", "agent", TASKS)
def tracing_agent():
    return TracingAgent()
