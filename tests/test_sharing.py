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
import time  # noqa: E402

import pytest  # noqa: E402

from xcs import execution_options, jit  # noqa: E402

HISTORY: list = []
USAGE = {"tokens": 0}
METER = {"calls": 0}
SPANS: list = []  # (start, end) of each Metered call


def charge(n):
    USAGE["tokens"] += n


def count_call():
    METER["calls"] += 1
    METER["by_name"] = METER.get("by_name", 0) + 1  # a counter's read-modify-write is a blind change


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
        start = time.perf_counter()
        time.sleep(0.05)
        SPANS.append((start, time.perf_counter()))  # a blind change, like the meter's
        count_call()
        return {"text": f"{self.tag}:{inputs['q']}"}


class MeteredEnsemble(Operator):
    def __init__(self):
        self.members = [Metered("a"), Metered("b"), Metered("c")]

    def forward(self, *, inputs):
        return {"answers": [m(inputs={"q": inputs["q"]})["text"] for m in self.members]}


CACHE: dict = {}
LOOKUPS = {"n": 0}


class CachedLookup(Operator):
    """A tool memoised in a module-level cache: eager's second lookup of a query is a hit."""

    def forward(self, *, inputs):
        q = inputs["q"]
        if q not in CACHE:
            time.sleep(0.03)
            LOOKUPS["n"] += 1
            CACHE[q] = q.upper()
        return {"text": CACHE[q]}


class TwoLookups(Operator):
    def __init__(self):
        self.first, self.second = CachedLookup(), CachedLookup()

    def forward(self, *, inputs):
        a = self.first(inputs={"q": inputs["q"]})["text"]
        b = self.second(inputs={"q": inputs["q"]})["text"]
        return {"text": a + b}


@pytest.mark.parametrize("scheduler", ["parallel", "async"])
def test_leaves_sharing_a_module_level_cache_look_up_as_eager_does(fresh_plans, scheduler):
    def run(op):
        CACHE.clear()
        LOOKUPS["n"] = 0
        return [op(inputs={"q": q}) for q in ("a", "b", "a")], LOOKUPS["n"]

    eager = run(TwoLookups())
    with execution_options(scheduler=scheduler):
        assert run(jit(TwoLookups())) == eager
    assert eager[1] == 2


def reset_globals():
    HISTORY.clear()
    USAGE["tokens"] = 0
    METER.clear()
    METER["calls"] = 0
    SPANS.clear()


def run_calls(op, queries):
    reset_globals()
    outs = [op(inputs={"q": q}) for q in queries]
    return outs, list(HISTORY), dict(USAGE), dict(METER)


def test_globals_held_names_the_mutable_globals_methods_reach():
    from xcs.compiler.sharing import globals_held
    from xcs.compiler.trace import library_file

    uses = {cls.__name__: [(path, changes, reads) for path, _, changes, reads in globals_held(cls, library_file)]
            for cls in (Charges, ReadsGlobals, AppendsHistory, Metered, CachedLookup)}
    assert uses == {  # (global, changed, read) through the module-level functions they call, too
        "Charges": [(f"{__name__}.USAGE", True, False)],  # USAGE["tokens"] += n: a blind change
        "ReadsGlobals": [(f"{__name__}.HISTORY", False, True), (f"{__name__}.USAGE", False, True)],
        "AppendsHistory": [(f"{__name__}.HISTORY", True, True)],  # it returns len(HISTORY)
        "Metered": [(f"{__name__}.METER", True, False), (f"{__name__}.SPANS", True, False)],
        "CachedLookup": [(f"{__name__}.CACHE", True, True), (f"{__name__}.LOOKUPS", True, False)],
    }


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
        assert any(a[0] < b[1] and b[0] < a[1] for a in SPANS for b in SPANS if a is not b)  # overlapped
    assert compiled == eager and eager[3] == {"calls": 6, "by_name": 6}


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


class ClassCachedTool(Operator):
    """Memoised in a cache in its class body: every instance fills and reads the same dict."""

    cache: dict = {}
    lookups = [0]

    def forward(self, *, inputs):
        q = inputs["q"]
        if q not in self.cache:
            time.sleep(0.03)
            self.lookups[0] += 1
            self.cache[q] = q.upper()
        return {"text": self.cache[q]}


class ClassLog(Operator):
    entries: list = []

    def forward(self, *, inputs):
        time.sleep(0.03)
        self.entries.append(inputs["q"])
        return {}


class CountsClassLog(Operator):
    def forward(self, *, inputs):
        return {"n": len(ClassLog.entries)}  # read through the class's name


class ClassStatePipeline(Operator):
    def __init__(self):
        self.a, self.b, self.log, self.count = ClassCachedTool(), ClassCachedTool(), ClassLog(), CountsClassLog()

    def forward(self, *, inputs):
        text = self.a(inputs={"q": inputs["q"]})["text"] + self.b(inputs={"q": inputs["q"]})["text"]
        self.log(inputs={"q": inputs["q"]})
        return {"text": text, "n": self.count(inputs={})["n"], "lookups": ClassCachedTool.lookups[0]}


@pytest.mark.parametrize("scheduler", ["parallel", "async"])
@pytest.mark.parametrize("mode", ["auto", "structural", "trace"])
def test_class_attributes_instances_share_are_ordered(fresh_plans, mode, scheduler):
    def run(op):
        ClassCachedTool.cache.clear()
        ClassCachedTool.lookups[0] = 0
        ClassLog.entries.clear()
        return [op(inputs={"q": q}) for q in ("a", "a", "b")]

    eager = run(ClassStatePipeline())
    with execution_options(scheduler=scheduler):
        assert run(jit(ClassStatePipeline(), mode=mode)) == eager
    assert eager[-1] == {"text": "BB", "n": 3, "lookups": 2}
