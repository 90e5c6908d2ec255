"""Plans, structure hashes and disk-cache file names are byte-identical under every PYTHONHASHSEED, in
every capture mode, and a plan made under one seed returns what eager Python returns under another.

One child process per seed compiles every operator below in every mode and prints, as JSON, each plan's
text (``xcs.dump``), whether the jitted result equals the eager one, and the names of the files in its
private ``XCS_CACHE_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from xcs import Operator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = ("0", "1", "2", "12345", "4294967295")
MODES = ("trace", "structural", "enhanced", "auto")


class Echo(Operator):
    def forward(self, *, inputs):
        return {"v": inputs}


class SetLoop(Operator):
    """A set attribute iterated in forward: the output's order is the process's set order."""

    def __init__(self):
        self.tags = {"alpha", "beta", "gamma", "delta", "epsilon"}
        self.echo = Echo()

    def forward(self, *, inputs):
        out = []
        for tag in self.tags:
            out.append(tag + inputs["q"])
        return self.echo(inputs={"out": out, "n": len(self.tags), "has": "beta" in self.tags})


class FrozenUses(Operator):
    """A frozenset attribute and a frozenset class constant, used in order-free and ordered ways."""

    KINDS = frozenset({"x", "y", "z", "w"})

    def __init__(self):
        self.names = frozenset({"p", "q", "r", "s"})
        self.echo = Echo()

    def forward(self, *, inputs):
        return self.echo(inputs={
            "listed": list(self.names), "sorted": sorted(self.KINDS), "joined": ", ".join(self.names),
            "text": f"{inputs['q']}:{self.KINDS}", "q": inputs["q"],
        })


class PerTag(Operator):
    """One sub-operator call per element of a set attribute."""

    def __init__(self):
        self.tags = frozenset({"red", "green", "blue"})
        self.echo = Echo()

    def forward(self, *, inputs):
        return {"all": [self.echo(inputs={"tag": t, "q": inputs["q"]}) for t in self.tags]}


class Chain(Operator):
    def __init__(self):
        self.a, self.b = Echo(), Echo()

    def forward(self, *, inputs):
        first = self.a(inputs={"q": inputs["q"]})
        return self.b(inputs={"first": first, "opts": inputs["opts"]})


def operators():
    from examples.ensemble import Ensemble

    return {
        "set_loop": SetLoop, "frozen_uses": FrozenUses, "per_tag": PerTag, "chain": Chain,
        "ensemble": lambda: Ensemble(3),
    }


INPUTS = {"q": "hi", "query": "hi", "opts": {"k": 1, "tags": ["a"]}}


def child() -> None:
    """Run in a subprocess: compile everything, print the JSON the parent compares."""
    import warnings

    from xcs import dump, jit

    warnings.simplefilter("error")  # a graph break (eager fallback) would hide a plan
    report: dict = {"plans": {}, "equal": {}}
    for mode in MODES:
        for name, make in operators().items():
            op = jit(mode=mode)(make())
            result = op(inputs=dict(INPUTS))
            report["plans"][f"{mode}:{name}"] = dump(op, INPUTS)
            report["equal"][f"{mode}:{name}"] = result == make().forward(inputs=dict(INPUTS))
    cache = os.environ["XCS_CACHE_DIR"]
    report["files"] = sorted(
        os.path.relpath(os.path.join(root, f), cache).replace(os.sep, "/")
        for root, _, files in os.walk(cache) for f in files
    )
    sys.stdout.write(json.dumps(report))


CHILD = "import sys; sys.path[:0] = ['tests', '.']; import test_hashseed; test_hashseed.child()"


def run_seeds(seeds, caches) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "XCS_CACHE_DIR": str(cache)},
        )
        for seed, cache in zip(seeds, caches)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def test_plans_and_cache_files_identical_across_hash_seeds(tmp_path):
    reports = run_seeds(SEEDS, [tmp_path / seed for seed in SEEDS])
    first = reports[0]
    assert len(first["plans"]) == len(MODES) * len(operators())
    for report in reports:
        assert all(report["equal"].values()), report["equal"]  # the plan returns what eager returns
    for key, text in first["plans"].items():
        assert {r["plans"][key] for r in reports} == {text}, f"{key}: plan text differs across seeds"
    assert first["files"] and all(r["files"] == first["files"] for r in reports), "disk cache file names differ"
    assert "# signature: {q: str, query: str, opts: {k: int, tags: list}}" in first["plans"]["auto:ensemble"]
    # a set's order is read when the plan runs, never folded into the text
    assert "list(ops.tags)[0]" in first["plans"]["trace:set_loop"]


def test_plan_from_another_seed_returns_eager_result(tmp_path):
    """A cache shared by processes with different seeds: the second loads the first's plans from
    disk, and they still return what eager Python returns in that process."""
    shared = tmp_path / "shared"
    (first,) = run_seeds(("3",), [shared])
    (second,) = run_seeds(("4",), [shared])
    assert all(first["equal"].values()) and all(second["equal"].values()), second["equal"]
    assert second["files"] == first["files"]  # nothing new was written: every plan came from disk
