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
