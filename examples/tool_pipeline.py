"""A tool-using pipeline: independent tool calls overlap; the model composes their results.

What it shows: a travel briefing. A planner model writes a web search query for the trip; the search
tool runs on it; the weather and currency tools need only the inputs, so they start at once and
overlap with the planner and the search. The compiled plan has three waves (planner, weather and
currency | search | briefing): the tools' latencies overlap instead of adding up, which ``main()``
prints as a timeline.

The tools stand in for HTTP APIs: deterministic answers from small in-module tables, each with a
fixed latency (``latency=`` seconds, a static attribute).

Run it:

    python examples/tool_pipeline.py      (or: python -m examples.tool_pipeline)
    xcs dump examples/tool_pipeline.py:TravelBriefing --input '{"city": "Lisbon", "budget": 500.0, "currency": "USD"}'
    xcs run  examples/tool_pipeline.py:TravelBriefing --input '{"city": "Lisbon", "budget": 500.0, "currency": "USD"}'
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping

import os
import sys

if __package__ in (None, ""):  # run as `python examples/X.py`: the repository root holds the `examples` package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.llm import ChatModel
from examples.llm.sim import content_words, digest
from xcs.cli import report
from xcs import Operator, execution_options, jit

PLACES = {
    "lisbon": ("Lisbon", "EUR", ["Belem Tower on the Tagus", "the Alfama district and its fado bars", "tram 28 through the old town"]),
    "kyoto": ("Kyoto", "JPY", ["Fushimi Inari shrine and its red gates", "the Arashiyama bamboo grove", "Kinkaku-ji, the golden pavilion"]),
    "mexico city": ("Mexico City", "MXN", ["the Frida Kahlo museum in Coyoacan", "the pyramids of Teotihuacan", "the Zocalo and the cathedral"]),
    "reykjavik": ("Reykjavik", "ISK", ["the Hallgrimskirkja church tower", "the Blue Lagoon", "whale watching from the old harbour"]),
}
USD_RATES = {"USD": 1.0, "EUR": 0.92, "JPY": 151.0, "MXN": 17.1, "ISK": 138.0, "GBP": 0.79}
SKIES = ("sunny", "partly cloudy", "overcast", "light rain", "windy")

ACTIVITY: list[tuple[str, float, float]] = []  # (tool, start, end) of every tool call: main() prints it
_ACTIVITY_LOCK = threading.Lock()


class Tool(Operator):
    """Base of the simulated tools: ``call`` does the work; every call takes ``latency`` seconds."""

    def __init__(self, latency: float = 0.05):
        self.latency = latency

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        start = time.perf_counter()
        time.sleep(self.latency)
        result = self.call(inputs)
        with _ACTIVITY_LOCK:
            ACTIVITY.append((type(self).__name__, start, time.perf_counter()))
        return result

    def call(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        raise NotImplementedError


def place(city: str) -> tuple[str, str, list[str]]:
    return PLACES.get(city.strip().lower(), (city.strip().title(), "USD", []))


class WeatherTool(Tool):
    """``{"city"}`` -> ``{"forecast": str, "high_c": int}``."""

    def call(self, inputs):
        name, _, _ = place(inputs["city"])
        seed = digest("weather", name.lower())
        high = 8 + seed % 22
        return {"forecast": f"{SKIES[seed % len(SKIES)]}, high of {high} C in {name}", "high_c": high}


class CurrencyTool(Tool):
    """``{"amount", "from", "to"}`` (to may be a city) -> ``{"converted": float, "text": str}``."""

    def call(self, inputs):
        source = inputs["from"].upper()
        target = place(inputs["to"])[1] if inputs["to"].upper() not in USD_RATES else inputs["to"].upper()
        if source not in USD_RATES:
            raise ValueError(f"CurrencyTool: unknown currency {source!r}; known: {', '.join(sorted(USD_RATES))}")
        converted = round(float(inputs["amount"]) / USD_RATES[source] * USD_RATES[target], 2)
        return {"converted": converted, "text": f"{inputs['amount']:.2f} {source} is about {converted:.2f} {target}"}


class SearchTool(Tool):
    """``{"query"}`` -> ``{"results": [str, ...]}``: attractions of the city the query names."""

    def call(self, inputs):
        words = set(content_words(inputs["query"]))
        for key, (name, _, sights) in PLACES.items():
            if set(key.split()) <= words:
                return {"results": [f"{name}: {s}" for s in sights]}
        return {"results": []}


@jit
class TravelBriefing(Operator):
    """``{"city": str, "budget": float, "currency": str}`` -> ``{"briefing": str, "facts": [str, ...]}``."""

    def __init__(self, tool_latency: float = 0.05):
        self.planner = ChatModel(name="planner", system="You plan tool calls for a travel assistant.")
        self.search = SearchTool(tool_latency)
        self.weather = WeatherTool(tool_latency)
        self.currency = CurrencyTool(tool_latency)
        self.writer = ChatModel(name="writer", system="You write short, practical travel briefings from facts.")

    def forward(self, *, inputs):
        city = inputs["city"]
        query = self.planner(inputs={"prompt": f"Write a web search query.\nQuestion: what to see in {city}"})["text"]
        found = self.search(inputs={"query": query})["results"]
        weather = self.weather(inputs={"city": city})["forecast"]
        money = self.currency(inputs={"amount": inputs["budget"], "from": inputs["currency"], "to": city})["text"]
        facts = [weather, money] + found
        listing = "\n- ".join(facts)
        briefing = self.writer(inputs={"prompt": f"Write a travel briefing for {city}.\nFacts:\n- {listing}"})["text"]
        return {"briefing": briefing, "facts": facts}


def main() -> None:
    op = TravelBriefing()
    inputs = {"city": "Lisbon", "budget": 500.0, "currency": "USD"}
    op(inputs=inputs)  # first call: traced (operators run one after another) and compiled
    for scheduler in ("sequential", "parallel"):
        ACTIVITY.clear()
        with execution_options(scheduler=scheduler):
            start = time.perf_counter()
            result = op(inputs=inputs)
            wall = time.perf_counter() - start
        print(f"{scheduler}: {wall * 1e3:.0f} ms")
        for tool, begin, end in sorted(ACTIVITY, key=lambda row: row[1]):
            print(f"  {tool:13} {(begin - start) * 1e3:6.0f} -> {(end - start) * 1e3:4.0f} ms")
    print(result["briefing"])
    print("\nIndependent tools overlap in the compiled plan. Eager vs compiled:")
    print(report(op, inputs, calls=5)[0], end="")


if __name__ == "__main__":
    main()
