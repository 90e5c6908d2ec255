"""Held state shared between operators (``compiler.sharing``): who holds what, which leaf calls may
change it, and the structure hash telling shared trees from unshared ones."""

from __future__ import annotations

from xcs import Operator
from xcs.compiler.cache import structure_hash
from xcs.compiler.sharing import Holdings, writes
from xcs.operator import is_operator


class Notes:
    def __init__(self):
        self.items = []

    def add(self, text):
        self.items.append(text)

    def last(self):
        return self.items[-1] if self.items else None


class Client:
    """Stands for a library client (``library=`` says its file is a library's)."""

    def create(self, prompt):
        return prompt.upper()

    def add_texts(self, texts):
        return len(texts)


def record(notes, text):
    notes.items.append(text)


class AddsThroughMethod(Operator):
    def __init__(self, notes):
        self.notes = notes

    def forward(self, *, inputs):
        self.notes.add(inputs["q"])
        return {}


class AddsThroughAlias(Operator):
    def __init__(self, notes):
        self.notes = notes

    def forward(self, *, inputs):
        items = self.notes.items
        items.append(inputs["q"])
        return {}


class SetsItem(Operator):
    def __init__(self, table):
        self.table = table

    def forward(self, *, inputs):
        self.table[inputs["q"]] = 1
        return {}


class HandsToFunction(Operator):
    def __init__(self, notes):
        self.notes = notes

    def forward(self, *, inputs):
        record(self.notes, inputs["q"])
        return {}


class ReadsOnly(Operator):
    def __init__(self, notes):
        self.notes = notes
        self.model = "m"

    def forward(self, *, inputs):
        return {"last": self.notes.last(), "n": len(self.notes.items), "model": str(self.model)}


class CallsClient(Operator):
    def __init__(self, client):
        self.client = client

    def forward(self, *, inputs):
        return {"text": self.client.create(inputs["q"])}


class IndexesWithClient(Operator):
    def __init__(self, client):
        self.client = client

    def forward(self, *, inputs):
        return {"n": self.client.add_texts([inputs["q"]])}


def test_writes_follows_methods_aliases_items_and_functions():
    notes = Notes()
    for op in (AddsThroughMethod(notes), AddsThroughAlias(notes), SetsItem({}), HandsToFunction(notes)):
        assert writes(op, "forward", lambda f: False), type(op).__name__
    assert not writes(ReadsOnly(notes), "forward", lambda f: False)


def test_library_methods_write_when_their_name_says_so():
    client = Client()
    library = lambda filename: filename == __file__  # noqa: E731 - this file plays the library
    assert not writes(CallsClient(client), "forward", library)
    assert writes(IndexesWithClient(client), "forward", library)


class Pair(Operator):
    def __init__(self, shared: bool):
        notes = Notes()
        self.writer = AddsThroughMethod(notes)
        self.reader = ReadsOnly(notes if shared else Notes())

    def forward(self, *, inputs):
        self.writer(inputs=inputs)
        return self.reader(inputs={})


class TwoClients(Operator):
    def __init__(self):
        client = Client()
        self.a = CallsClient(client)
        self.b = CallsClient(client)

    def forward(self, *, inputs):
        return {"a": self.a(inputs=inputs), "b": self.b(inputs=inputs)}


def test_roles_of_leaves():
    shared = Pair(shared=True)
    holdings = Holdings(shared, is_operator)
    assert (holdings.role(shared.writer), holdings.role(shared.reader)) == ("writes", "reads")
    alone = Pair(shared=False)
    holdings = Holdings(alone, is_operator)
    assert (holdings.role(alone.writer), holdings.role(alone.reader)) == ("", "")
    clients = TwoClients()
    holdings = Holdings(clients, is_operator, lambda filename: filename == __file__)
    assert (holdings.role(clients.a), holdings.role(clients.b)) == ("reads", "reads")


def test_structure_hash_tells_shared_from_unshared_trees():
    assert structure_hash(Pair(True), is_operator) != structure_hash(Pair(False), is_operator)
    assert structure_hash(Pair(True), is_operator) == structure_hash(Pair(True), is_operator)
    assert Holdings(Pair(True), is_operator).shared_paths() == [
        "self.writer~self.writer.notes", "self.writer~self.writer.notes.items",
        "self.reader~self.writer.notes", "self.reader~self.writer.notes.items",
    ]


# ---------------------------------------------------------------------- module globals
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from xcs import execution_options, jit  # noqa: E402

HISTORY: list = []
USAGE = {"tokens": 0}
METER = {"calls": 0}
FLIGHT = {"now": 0, "peak": 0}
FLIGHT_LOCK = threading.Lock()


def charge(n):
    USAGE["tokens"] += n


def count_call():
    METER["calls"] += 1


class AppendsHistory(Operator):
    def forward(self, *, inputs):
        time.sleep(0.03)  # a slow call: a reader that does not wait for it reads too early
        HISTORY.append(inputs["q"])
        return {"n": len(HISTORY)}


class Charges(Operator):
    def forward(self, *, inputs):
        time.sleep(0.03)
        charge(len(inputs["q"]))
        return {"ok": True}


class ReadsGlobals(Operator):
    def forward(self, *, inputs):
        return {"seen": list(HISTORY), "tokens": USAGE["tokens"]}


class GlobalPipeline(Operator):
    def __init__(self):
        self.append, self.charge, self.read = AppendsHistory(), Charges(), ReadsGlobals()

    def forward(self, *, inputs):
        a = self.append(inputs={"q": inputs["q"]})
        self.charge(inputs={"q": inputs["q"]})
        seen = self.read(inputs={})
        return {"n": a["n"], "seen": seen["seen"], "tokens": seen["tokens"], "now": USAGE["tokens"]}


class Metered(Operator):
    """Charges a module-level meter nobody reads in the plan: its calls still overlap."""

    def __init__(self, tag):
        self.tag = tag

    def forward(self, *, inputs):
        with FLIGHT_LOCK:
            FLIGHT["now"] += 1
            FLIGHT["peak"] = max(FLIGHT["peak"], FLIGHT["now"])
        time.sleep(0.05)
        with FLIGHT_LOCK:
            FLIGHT["now"] -= 1
        count_call()
        return {"text": f"{self.tag}:{inputs['q']}"}


class MeteredEnsemble(Operator):
    def __init__(self):
        self.members = [Metered("a"), Metered("b"), Metered("c")]

    def forward(self, *, inputs):
        return {"answers": [m(inputs={"q": inputs["q"]})["text"] for m in self.members]}


def reset_globals():
    HISTORY.clear()
    USAGE["tokens"] = 0
    METER["calls"] = 0
    FLIGHT.update(now=0, peak=0)


def run_calls(op, queries):
    reset_globals()
    outs = [op(inputs={"q": q}) for q in queries]
    return outs, list(HISTORY), dict(USAGE), dict(METER)


def test_globals_held_names_the_mutable_globals_methods_reach():
    from xcs.compiler.sharing import globals_held
    from xcs.compiler.trace import library_file

    assert [(path, changed) for path, _, changed in globals_held(Charges, library_file)] == [
        (f"{__name__}.USAGE", True)]  # through the module-level function it calls
    assert [(path, changed) for path, _, changed in globals_held(ReadsGlobals, library_file)] == [
        (f"{__name__}.HISTORY", False), (f"{__name__}.USAGE", False)]


@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "async", "auto"])
@pytest.mark.parametrize("mode", ["auto", "structural", "enhanced", "trace"])
def test_a_global_one_leaf_changes_and_another_reads_is_ordered(fresh_plans, mode, scheduler):
    queries = ["x", "yy", "zzz"]
    eager = run_calls(GlobalPipeline(), queries)
    with execution_options(scheduler=scheduler):
        compiled = run_calls(jit(GlobalPipeline(), mode=mode), queries)
    assert compiled == eager
    assert eager[0][-1] == {"n": 3, "seen": ["x", "yy", "zzz"], "tokens": 6, "now": 6}


@pytest.mark.parametrize("mode", ["auto", "structural"])
def test_leaves_that_only_charge_a_global_meter_still_overlap(fresh_plans, mode):
    queries = ["x", "y"]
    eager = run_calls(MeteredEnsemble(), queries)
    with execution_options(scheduler="parallel"):
        compiled = run_calls(jit(MeteredEnsemble(), mode=mode), queries)
        assert FLIGHT["peak"] > 1
    assert compiled == eager and eager[3] == {"calls": 6}


class SlowAdd(Operator):
    def __init__(self, notes):
        self.notes = notes

    def forward(self, *, inputs):
        time.sleep(0.03)
        self.notes.items.append(inputs["q"])
        return {}


class TwoTrees(Operator):
    """One class, two trees: the writer and the reader share one ``Notes`` or hold one each."""

    def __init__(self, shared):
        notes = Notes()
        self.add, self.read = SlowAdd(notes), ReadsOnly(notes if shared else Notes())

    def forward(self, *, inputs):
        self.add(inputs={"q": inputs["q"]})
        return {"last": self.read(inputs={})["last"]}


def test_a_plan_of_an_unshared_tree_is_not_reused_for_a_shared_one(fresh_plans):
    with execution_options(scheduler="parallel"):
        assert jit(TwoTrees(False))(inputs={"q": "a"}) == {"last": None}
        assert jit(TwoTrees(True))(inputs={"q": "b"}) == {"last": "b"}  # its own plan: the read waits for the add
