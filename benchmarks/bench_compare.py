"""Why ember-xcs: one compound-AI job written five ways, side by side (the figures of the README).

The job is the guide's ensemble: ``MEMBERS`` model calls on the same query, then a judge over their
answers. A model call is simulated by a sleep of ``LATENCY`` (what matters for scheduling: the thread
waits on I/O), or by nothing at all (the "no I/O" rows measure each approach's own overhead). Each
approach computes the same answer:

- plain Python: the calls one after another (what eager ``forward`` does);
- LangGraph: a ``StateGraph`` written as LangGraph's docs write a fan-out: an edge from ``START`` to
  each member node (parallel branches of one superstep), each returning ``{"answers": [answer]}``
  into an ``Annotated[list, operator.add]`` state key, then an edge from each member to the judge
  node; compiled once, one ``graph.invoke`` per call (``pip install 'ember-xcs[bench]'``; the row
  says so when langgraph is missing);
- ThreadPoolExecutor: hand-written fan-out and join around the same functions;
- Dask: ``dask.delayed`` calls computed by the threaded scheduler (``pip install 'ember-xcs[bench]'``;
  the row says so when dask is missing);
- ember-xcs: the ``Ensemble`` operator with ``@jit``: the plan runs the members in one wave.

Every figure is the median wall time of ``ROUNDS`` warm calls (one call first, not measured).

Usage: ``python benchmarks/bench_compare.py [--smoke]`` (``--smoke``: shorter latency, fewer rounds).
"""

from __future__ import annotations

import importlib
import operator
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Annotated, TypedDict

from common import private_cache_dir
from xcs import Operator, jit

SMOKE = "--smoke" in sys.argv[1:]
MEMBERS = 4
LATENCY = 0.005 if SMOKE else 0.02
ROUNDS = 5 if SMOKE else 30
private_cache_dir("compare")


def member_call(name: str, query: str, latency: float) -> str:
    if latency:
        time.sleep(latency)
    return f"{name}:{query}"


def judge_call(query: str, answers: list[str], latency: float) -> str:
    if latency:
        time.sleep(latency)
    return " | ".join(answers)


class Member(Operator):
    def __init__(self, name: str, latency: float):
        self.name, self.latency = name, latency

    def forward(self, *, inputs):
        return {"answer": member_call(self.name, inputs["query"], self.latency)}


class Judge(Operator):
    def __init__(self, latency: float):
        self.latency = latency

    def forward(self, *, inputs):
        return {"final": judge_call(inputs["query"], inputs["answers"], self.latency)}


@jit
class Ensemble(Operator):
    def __init__(self, latency: float):
        self.members = [Member(f"m{i}", latency) for i in range(MEMBERS)]
        self.judge = Judge(latency)

    def forward(self, *, inputs):
        answers = [m(inputs=inputs)["answer"] for m in self.members]
        return self.judge(inputs={"query": inputs["query"], "answers": answers})


def plain(query: str, latency: float) -> str:
    answers = [member_call(f"m{i}", query, latency) for i in range(MEMBERS)]
    return judge_call(query, answers, latency)


class GraphState(TypedDict):
    query: str
    answers: Annotated[list[str], operator.add]  # each member's update is appended (LangGraph's reducer)
    final: str


def build_langgraph(latency: float):
    """The ensemble as a LangGraph ``StateGraph`` (LangGraph's documented fan-out and fan-in).

    One node per member, each an edge from ``START``, so the members run as parallel branches of one
    superstep; each returns ``{"answers": [answer]}``, reduced into the state by ``operator.add``
    (LangGraph applies the updates of a step sorted by task path, here m0 to m3, whatever finishes first); then
    an edge from every member to the judge, which runs once in the next superstep. Compiled once;
    each round is one ``graph.invoke``.
    """
    from langgraph.graph import END, START, StateGraph

    def member_node(name: str):
        return lambda state: {"answers": [member_call(name, state["query"], latency)]}

    builder = StateGraph(GraphState)
    for i in range(MEMBERS):
        builder.add_node(f"m{i}", member_node(f"m{i}"))
        builder.add_edge(START, f"m{i}")
        builder.add_edge(f"m{i}", "judge")
    builder.add_node("judge", lambda state: {"final": judge_call(state["query"], state["answers"], latency)})
    builder.add_edge("judge", END)
    graph = builder.compile()
    return lambda q: graph.invoke({"query": q})["final"]


POOL = ThreadPoolExecutor(MEMBERS)


def thread_pool(query: str, latency: float) -> str:
    futures = [POOL.submit(member_call, f"m{i}", query, latency) for i in range(MEMBERS)]
    return judge_call(query, [f.result() for f in futures], latency)


def dask_delayed(query: str, latency: float) -> str:
    import dask

    answers = [dask.delayed(member_call)(f"m{i}", query, latency) for i in range(MEMBERS)]
    return dask.delayed(judge_call)(query, answers, latency).compute(scheduler="threads")


def median_ms(fn, query: str) -> float:
    fn(query)  # warm: first call (capture, pool start) not measured
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn(query)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def main() -> None:
    has_dask, has_langgraph = installed("dask"), installed("langgraph")
    print(f"ensemble of {MEMBERS} members + a judge; median of {ROUNDS} warm calls each")
    found = [name for name, has in (("langgraph", has_langgraph), ("dask", has_dask)) if has]
    versions = [f"{name} {metadata.version(name)}" for name in found]
    if versions:
        print("with " + ", ".join(versions))
    for latency in (LATENCY, 0.0):
        title = f"{latency * 1e3:.0f} ms per model call" if latency else "no I/O: each approach's own overhead"
        op = Ensemble(latency)
        expected = plain("q", latency)
        approaches = [
            ("plain Python (sequential)", lambda q: plain(q, latency)),
            ("LangGraph StateGraph", build_langgraph(latency) if has_langgraph else None),
            ("ThreadPoolExecutor, by hand", lambda q: thread_pool(q, latency)),
            ("Dask delayed (threads)", (lambda q: dask_delayed(q, latency)) if has_dask else None),
            ("ember-xcs @jit", lambda q: op(inputs={"query": q})["final"]),
        ]
        print(f"\n{title}")
        base = None
        for name, fn in approaches:
            if fn is None:
                print(f"  {name:<30} not installed (pip install 'ember-xcs[bench]')")
                continue
            assert fn("q") == expected, name  # every approach computes the same answer
            ms = median_ms(fn, "q")
            base = base or ms
            ratio = f"   {base / ms:5.2f}x the speed of sequential" if latency else ""
            print(f"  {name:<30} {ms:9.3f} ms{ratio}")


if __name__ == "__main__":
    main()
