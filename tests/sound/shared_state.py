"""State that sub-operators share: a memory one leaf saves to and another loads from, a document
store one leaf indexes into and another searches, a usage meter every leaf charges and ``forward``
reads. Eager Python runs them in program order; a plan orders the calls that change what another
operator holds and still overlaps the ones that only read it. Writers sleep ``WRITE_DELAY`` (whatever
``TIMING`` says) so that a plan that let a reader overtake a writer fails here every time."""

from __future__ import annotations

import time

from xcs import Operator

from sound.common import EVENTS, ConversationMemory, DocStore, UsageMeter, program

WRITE_DELAY = 0.02
Q = [{"query": q} for q in ("mars color", "nile length", "bees dance")]


class Saver(Operator):
    def __init__(self, memory):
        self.memory = memory

    def forward(self, *, inputs):
        time.sleep(WRITE_DELAY)
        self.memory.save(inputs["query"], f"noted {inputs['query']}")
        return {"saved": True}


class Recaller(Operator):
    def __init__(self, memory):
        self.memory = memory

    def forward(self, *, inputs):
        return {"history": [h for h, _ in self.memory.load()]}


# 1
class RememberThenRecall(Operator):
    """A leaf saves the turn; another leaf, called next, loads the history it must include."""

    def __init__(self):
        self.memory = ConversationMemory()
        self.saver = Saver(self.memory)
        self.recaller = Recaller(self.memory)

    def forward(self, *, inputs):
        self.saver(inputs=inputs)
        recalled = self.recaller(inputs={})
        return {"history": recalled["history"], "turns": len(self.memory.load())}


@program("shared_memory_save_then_load", "shared", Q)
def remember_then_recall():
    return RememberThenRecall()


class Indexer(Operator):
    def __init__(self, store):
        self.store = store

    def forward(self, *, inputs):
        time.sleep(WRITE_DELAY)
        self.store.add(inputs["doc"])
        return {"count": len(self.store.docs)}


class Searcher(Operator):
    def __init__(self, store, delay=0.0):
        self.store = store
        self.delay = delay

    def forward(self, *, inputs):
        with EVENTS.call("tool", "search", inputs["query"], self.delay):
            return {"docs": self.store.search(inputs["query"], k=1)}


# 2
class IndexThenSearch(Operator):
    """The document indexed first is found by the search that follows."""

    def __init__(self):
        self.store = DocStore(["The Moon causes tides."])
        self.indexer = Indexer(self.store)
        self.searcher = Searcher(self.store)

    def forward(self, *, inputs):
        self.indexer(inputs={"doc": f"Notes about {inputs['query']}."})
        found = self.searcher(inputs=inputs)
        return {"docs": found["docs"]}


@program("shared_store_index_then_search", "shared", Q)
def index_then_search():
    return IndexThenSearch()


class Charged(Operator):
    def __init__(self, meter, cost):
        self.meter = meter
        self.cost = cost

    def forward(self, *, inputs):
        time.sleep(WRITE_DELAY)
        self.meter.charge(self.cost)
        return {"text": f"{inputs['query']}*{self.cost}"}


# 3
class MeteredPair(Operator):
    """Each leaf charges the shared meter; forward reports what is left after both."""

    def __init__(self):
        self.meter = UsageMeter(budget=100)
        self.small = Charged(self.meter, 1)
        self.large = Charged(self.meter, 5)

    def forward(self, *, inputs):
        a = self.small(inputs=inputs)
        b = self.large(inputs=inputs)
        return {"a": a["text"], "b": b["text"], "left": self.meter.remaining()}


@program("shared_meter_charged_by_leaves", "shared", Q)
def metered_pair():
    return MeteredPair()


# 4
class TwoSearchersOneStore(Operator):
    """Two searches of one store only read it: they still overlap."""

    def __init__(self):
        self.store = DocStore(["Mars is red because of iron oxide.", "The Nile is the longest river."])
        self.by_query = Searcher(self.store, delay=0.05)
        self.by_topic = Searcher(self.store, delay=0.05)

    def forward(self, *, inputs):
        a = self.by_query(inputs=inputs)
        b = self.by_topic(inputs={"query": inputs["query"].split()[0]})
        return {"a": a["docs"], "b": b["docs"]}


@program("shared_store_two_readers", "shared", Q, slow=True)
def two_searchers_one_store():
    return TwoSearchersOneStore()
