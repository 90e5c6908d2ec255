"""The bad-input catalogue: odd values and bad inputs, each under ``auto``, ``trace`` and ``structural``.

Every case states its exact outcome. Either the jitted call works and equals the eager call (``SAME``),
or it raises exactly what eager raises (``EAGER``: same type, and the eager message), or it raises an
``XCSError`` subclass with an exact message naming the key path and the operator, before any operator
ran (``calls == 0``; eager has often run the first sub-operator by then). A named input error is also
the type eager raises (``InputKeyError`` is a ``KeyError``, ``InputIndexError`` an ``IndexError``,
``OperatorInputError`` a ``TypeError``), so ``except`` clauses behave alike with and without ``jit``.

``benchmarks/bench_bad_inputs.py`` runs this same catalogue (``CASES``, ``run_case``) and prints it.
"""

from __future__ import annotations

import collections
import inspect
import math
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from xcs.runtime.errors import (
    FrozenOperatorError, InputIndexError, InputKeyError, OperatorInputError, StepError, XCSError,
)
from xcs import Operator, jit

MODES = ("auto", "trace", "structural")
CALLS: list[str] = []  # every sub-operator call, eager or jitted
_LOCK = threading.Lock()


class Count(Operator):
    """A sub-operator that records its call and echoes ``v``."""

    def forward(self, *, inputs):
        with _LOCK:
            CALLS.append("count")
        return {"v": inputs["v"]}


# ---------------------------------------------------------------------- the operators under test
class Title(Operator):
    """Runs a sub-operator, then reads a nested key: eagerly the sub-operator has run by the error."""

    def __init__(self):
        self.first = Count()
        self.second = Count()

    def forward(self, *, inputs):
        a = self.first(v=inputs["q"])
        b = self.second(v=inputs["doc"]["title"])
        return {"q": a["v"], "title": b["v"]}


class Third(Operator):
    """Reads an element of a nested list."""

    def __init__(self):
        self.first = Count()

    def forward(self, *, inputs):
        a = self.first(v=inputs["q"])
        return {"q": a["v"], "item": inputs["doc"]["items"][2]}


class Last(Operator):
    """Reads ``[-3]`` of a nested list."""

    def __init__(self):
        self.first = Count()

    def forward(self, *, inputs):
        a = self.first(v=inputs["q"])
        return {"q": a["v"], "item": inputs["doc"]["items"][-3]}


class Deep3(Operator):
    """Reads three levels down."""

    def __init__(self):
        self.first = Count()

    def forward(self, *, inputs):
        a = self.first(v=inputs["q"])
        return {"q": a["v"], "c": inputs["a"]["b"]["c"]}


class Echo(Operator):
    """Passes ``x`` through a sub-operator."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs["x"])["v"]}


class Branchy(Operator):
    """Reads ``x`` only when ``flag`` is set."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        if inputs["flag"]:
            return {"x": self.count(v=inputs["x"])["v"]}
        return {"x": self.count(v=0)["v"]}


class IntKey(Operator):
    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs[1])["v"]}


class TupleKey(Operator):
    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs[(1, "a")])["v"]}


class OddKeys(Operator):
    """Keys with unicode, spaces, and the empty string."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs["ключ ✓"] + inputs["a b"] + inputs[""])["v"]}


class Total(Operator):
    """Sums an input sequence."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=sum(inputs["items"]))["v"]}


class Exclaim(Operator):
    """``str`` glue on an input: bytes give eager's TypeError."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs["q"] + "!")["v"]}


class DeepRead(Operator):
    """Reads 35 levels into ``deep``, below the depth the signature follows (32)."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        leaf = (
            inputs["deep"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["k"]["leaf"]
        )
        return {"x": self.count(v=leaf)["v"]}


class SelfRead(Operator):
    """Reads through a self-referential input dict."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=inputs["d"]["self"]["self"]["x"])["v"]}


class Length(Operator):
    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=len(inputs["items"]))["v"]}


class Nothing(Operator):
    """Reads no input."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        return {"x": self.count(v=1)["v"]}


class Assigns(Operator):
    """Assigns an attribute in forward: operators are frozen after __init__."""

    def __init__(self):
        self.count = Count()

    def forward(self, *, inputs):
        self.seen = inputs["x"]
        return self.count(v=inputs["x"])


# ---------------------------------------------------------------------- odd values
class RaisingItem(dict):
    """A dict whose ``__getitem__`` raises (``items()`` still works)."""

    def __getitem__(self, key):
        raise RuntimeError(f"no item {key!r}")


class Frozen(Mapping):
    """A custom read-only ``Mapping``."""

    def __init__(self, data):
        self._data = dict(data)

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


class NoEq:
    """A value whose ``__eq__`` and ``__hash__`` raise."""

    def __eq__(self, other):
        raise RuntimeError("no __eq__")

    def __hash__(self):
        raise RuntimeError("no __hash__")


class NoRepr:
    def __repr__(self):
        raise RuntimeError("no __repr__")


class BadDtype:
    """An array-like whose ``dtype`` property raises."""

    shape = (2,)

    @property
    def dtype(self):
        raise RuntimeError("no dtype")


def line_of(cls: type, text: str) -> str:
    """``tests/test_bad_inputs.py:N``: the line of ``cls``'s source containing ``text``."""
    lines, start = inspect.getsourcelines(cls)
    return f"tests/test_bad_inputs.py:{start + next(i for i, line in enumerate(lines) if text in line)}"


def nested(depth: int, leaf: Any) -> dict:
    """``{"leaf": leaf, "k": {"leaf": leaf, "k": ...}}``, ``depth`` levels deep."""
    root = node = {"leaf": leaf}
    for _ in range(depth):
        node["k"] = {"leaf": leaf}
        node = node["k"]
    return root


def self_dict() -> dict:
    d = {"x": 7}
    d["self"] = d
    return d


def self_list() -> list:
    items = [1, 2]
    items.append(items)
    return items


SINGLETONS = {"noeq": NoEq(), "norepr": NoRepr(), "dtype": BadDtype()}


# ---------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class Case:
    """One bad input. ``call(op)`` makes the call; ``expect`` is ``SAME`` (works, equals eager),
    ``EAGER`` (raises what eager raises), ``CHAINED`` (an error in user code reading or combining a
    value, not the input's shape: eager's error, or — where a plan step computes it — a ``StepError``
    naming the step and its source line, chained to eager's error, and no operator ran), or the exact
    ``(type, message)`` of a named error raised before any operator runs. ``warm``: inputs called
    first (a plan exists for the signature)."""

    name: str
    op: type
    call: Callable[[Any], Any]
    expect: Any
    warm: Mapping | None = None


SAME, EAGER, CHAINED = "same", "eager", "chained"
GOOD_DOC = {"q": "q", "doc": {"title": "t", "items": [1, 2, 3]}}


def kw(**inputs):
    return lambda op: op(inputs=inputs)


CASES = [
    Case("not a mapping (int)", Echo, lambda op: op(inputs=5),
         (OperatorInputError, "Echo: inputs must be a mapping, got int")),
    Case("not a mapping (list of pairs)", Echo, lambda op: op(inputs=[("x", 1)]),
         (OperatorInputError, "Echo: inputs must be a mapping, got list")),
    Case("inputs=None, no keywords", Echo, lambda op: op(inputs=None),
         (InputKeyError, "Echo: missing input key 'x' (inputs have: no keys)")),
    Case("missing key", Title, kw(doc={"title": "t"}),
         (InputKeyError, "Title: missing input key 'q' (inputs have: 'doc')")),
    Case("missing nested key", Title, kw(q="q", doc={"titel": "t"}),
         (InputKeyError, "Title: missing input key inputs['doc']['title'] (inputs['doc'] has: 'titel')")),
    Case("missing nested key, warm plan", Title, kw(q="q", doc={"name": "t"}),
         (InputKeyError, "Title: missing input key inputs['doc']['title'] (inputs['doc'] has: 'name')"),
         warm=GOOD_DOC),
    Case("key read only on a branch not taken, absent", Branchy, kw(flag=False), SAME),
    Case("key read on the branch taken, absent", Branchy, kw(flag=True),
         (InputKeyError, "Branchy: missing input key 'x' (inputs have: 'flag')")),
    Case("missing key three levels down", Deep3, kw(q="q", a={"b": {"d": 1}}),
         (InputKeyError, "Deep3: missing input key inputs['a']['b']['c'] (inputs['a']['b'] has: 'd')")),
    Case("str where a dict is read", Title, kw(q="q", doc="title"),
         (OperatorInputError, "Title: cannot read inputs['doc']['title']: inputs['doc'] is a str, not a mapping")),
    Case("None where a dict is read", Title, kw(q="q", doc=None),
         (OperatorInputError, "Title: cannot read inputs['doc']['title']: inputs['doc'] is a NoneType, not a mapping")),
    Case("list where a dict is read", Title, kw(q="q", doc=["title"]),
         (OperatorInputError, "Title: cannot read inputs['doc']['title']: inputs['doc'] is a list, not a mapping")),
    Case("nested list index out of range", Third, kw(q="q", doc={"items": [1, 2]}),
         (InputIndexError, "Third: input index out of range: inputs['doc']['items'][2] (inputs['doc']['items'] has 2 items)")),
    Case("nested list index out of range, warm plan", Third, kw(q="q", doc={"title": "t", "items": [1]}),
         (InputIndexError, "Third: input index out of range: inputs['doc']['items'][2] (inputs['doc']['items'] has 1 items)"),
         warm=GOOD_DOC),
    Case("negative index out of range, warm plan", Last, kw(q="q", doc={"title": "t", "items": [1, 2]}),
         (InputIndexError, "Last: input index out of range: inputs['doc']['items'][-3] (inputs['doc']['items'] has 2 items)"),
         warm=GOOD_DOC),
    Case("int keys", IntKey, lambda op: op(inputs={1: "one", 2: "two"}), SAME),
    Case("int key missing", IntKey, lambda op: op(inputs={2: "two"}),
         (InputKeyError, "IntKey: missing input key 1 (inputs have: 2)")),
    Case("bool key read as int", IntKey, lambda op: op(inputs={True: "yes"}), SAME),
    Case("tuple keys", TupleKey, lambda op: op(inputs={(1, "a"): "pair"}), SAME),
    Case("unicode, space and empty-string keys", OddKeys, lambda op: op(inputs={"ключ ✓": "a", "a b": "b", "": "c"}), SAME),
    Case("huge int", Echo, kw(x=10**100), SAME),
    Case("NaN", Echo, kw(x=float("nan")), SAME),
    Case("infinity", Echo, kw(x=float("-inf")), SAME),
    Case("mapping subclass whose __getitem__ raises", Echo, lambda op: op(inputs=RaisingItem(x=1)), CHAINED),
    Case("custom Mapping", Echo, lambda op: op(inputs=Frozen({"x": 1})), SAME),
    Case("nested custom Mapping", Title, kw(q="q", doc=Frozen({"title": "t"})), SAME),
    Case("mappingproxy", Echo, lambda op: op(inputs=types.MappingProxyType({"x": 1})), SAME),
    Case("defaultdict lacking the nested key", Title, lambda op: op(inputs={"q": "q", "doc": collections.defaultdict(str)}), SAME),
    Case("generator passed as a list", Total, lambda op: op(inputs={"items": (i for i in range(4))}), SAME),
    Case("bytes where str is expected", Exclaim, kw(q=b"q"), CHAINED),
    Case("bytes value passed through", Echo, kw(x=b"\x00\xff"), SAME),
    Case("value whose __eq__/__hash__ raise", Echo, kw(x=SINGLETONS["noeq"]), SAME),
    Case("value whose __repr__ raises", Echo, kw(x=SINGLETONS["norepr"]), SAME),
    Case("value whose dtype property raises", Echo, kw(x=SINGLETONS["dtype"]), SAME),
    Case("dict nested 500 deep", Echo, lambda op: op(inputs={"x": nested(500, 1)}), SAME),
    Case("read 35 levels into a 500-deep dict", DeepRead, lambda op: op(inputs={"deep": nested(500, 5)}), SAME),
    Case("self-referential dict", SelfRead, lambda op: op(inputs={"d": self_dict()}), SAME),
    Case("self-referential list", Length, lambda op: op(inputs={"items": self_list()}), SAME),
    Case("inputs that contain themselves", Nothing, lambda op: op(inputs=self_dict()), SAME),
    Case("extra unexpected keys", Echo, kw(x=1, y=2, z={"w": 3}), SAME),
    Case("empty inputs, nothing read", Nothing, lambda op: op(inputs={}), SAME),
    Case("frozen operator attribute assignment", Assigns, kw(x=1),
         (FrozenOperatorError, "Assigns.seen: operators are frozen after __init__ (a compiled plan is keyed by "
                               "the operator's structure); build a new operator instead")),
    Case("positional argument", Echo, lambda op: op({"x": 1}), EAGER),
    Case("inputs= and keywords together", Echo, lambda op: op(inputs={"x": 1}, y=2),
         (OperatorInputError, "Echo: pass inputs={...} or keyword inputs, not both (got inputs= and y)")),
]


# ---------------------------------------------------------------------- running a case
def outcome(op: Any, call: Callable[[Any], Any]) -> tuple:
    """``("ok", result)`` or ``("raise", type, message)``, and the sub-operator calls it made."""
    CALLS.clear()
    try:
        result = call(op)
    except Exception as exc:  # noqa: BLE001 - the catalogue compares every outcome
        return ("raise", type(exc), str(exc), exc.__cause__), len(CALLS)
    return ("ok", result), len(CALLS)


def same_value(a: Any, b: Any) -> bool:
    """Equality that takes NaN as equal to NaN, never calls a value's own ``__eq__`` (objects compare
    by identity) and follows nesting of any depth (cycles: by the identity of the pair)."""
    stack, seen = [(a, b)], set()
    while stack:
        a, b = stack.pop()
        if a is b or (id(a), id(b)) in seen:
            continue
        seen.add((id(a), id(b)))
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            if list(a) != list(b):
                return False
            stack.extend((a[k], b[k]) for k in a)
        elif type(a) is list and type(b) is list:
            if len(a) != len(b):
                return False
            stack.extend(zip(a, b))
        elif type(a) is float and type(b) is float and math.isnan(a) and math.isnan(b):
            continue
        elif not (type(a) in (int, float, str, bytes, bool, type(None)) and type(a) is type(b) and a == b):
            return False
    return True


def run_case(case: Case, mode: str) -> tuple[bool, str]:
    """Run ``case`` eagerly and jitted under ``mode``: (whether the outcome is the expected one, what happened)."""
    eager_op, jitted_op = case.op(), jit(case.op(), mode=mode)
    if case.warm is not None:
        eager_op(inputs=case.warm)
        jitted_op(inputs=case.warm)
    eager, _ = outcome(eager_op, case.call)
    got, calls = outcome(jitted_op, case.call)
    shown = f"{got[1].__name__}: {got[2]}" if got[0] == "raise" else f"ok {got[1]!r:.60}" if case.op is not Echo else "ok"
    if case.expect == SAME:
        good = got[0] == eager[0] == "ok" and same_value(got[1], eager[1])
    elif case.expect == EAGER:
        good = got[0] == eager[0] == "raise" and got[1] is eager[1] and got[2] == eager[2]
    elif case.expect == CHAINED:
        cause = got[3] if got[0] == "raise" and got[1] is StepError else None
        good = got[0] == eager[0] == "raise" and calls == 0 and (
            (got[1] is eager[1] and got[2] == eager[2])
            or (type(cause) is eager[1] and str(cause) == eager[2] and f"failed: {eager[1].__name__}: {eager[2]}" in got[2])
        )
    else:
        kind, message = case.expect
        good = (
            got[0] == "raise" and got[1] is kind and got[2] == message and issubclass(kind, XCSError)
            and calls == 0 and (eager[0] == "ok" or issubclass(kind, eager[1]))  # catchable as eager's error
        )
    return good, shown


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, mode: str, fresh_plans: Any) -> None:
    good, shown = run_case(case, mode)
    assert good, f"{case.name} under {mode}: {shown}"


def test_catalogue_size() -> None:
    assert len(CASES) >= 34


def test_named_errors_are_catchable_as_eagers() -> None:
    """``except KeyError`` / ``except IndexError`` / ``except TypeError`` catch the named input errors."""
    assert issubclass(InputKeyError, KeyError) and issubclass(InputKeyError, OperatorInputError)
    assert issubclass(InputIndexError, IndexError) and issubclass(InputIndexError, OperatorInputError)
    assert issubclass(OperatorInputError, TypeError)
    with pytest.raises(KeyError):
        jit(Title(), mode="trace")(inputs={"q": "q", "doc": {}})
    assert str(InputKeyError("Op: missing input key 'k' (inputs have: no keys)")) == (
        "Op: missing input key 'k' (inputs have: no keys)"  # the text, not KeyError's quoted repr
    )
