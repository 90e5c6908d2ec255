"""An operator's ``forward`` as a numeric kernel sees it, read with libcst: what it reads
(``inputs["key"]``, literal instance attributes, ``numpy``/``math``), what it binds and returns, or the
first construct that keeps it out of a kernel, with ``file:line`` (``Forward.reason``, which ``xcs
explain`` prints). Used by ``compiler.numeric`` to find numeric steps and by ``compiler.kernels`` to
inline them.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
import types
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from xcs.compiler.trace import relative_file

MODULES = frozenset({"numpy", "math"})
BUILTINS = frozenset({"abs", "min", "max", "range", "len", "float", "int", "bool", "round", "enumerate", "zip"})
REFUSED = {
    cst.Lambda: "a lambda", cst.ListComp: "a list comprehension", cst.SetComp: "a set comprehension",
    cst.DictComp: "a dict comprehension", cst.GeneratorExp: "a generator expression", cst.List: "a list display",
    cst.Set: "a set display", cst.FormattedString: "an f-string", cst.ConcatenatedString: "a string",
    cst.Await: "await", cst.Yield: "yield", cst.With: "a with statement", cst.Try: "a try statement",
    cst.TryStar: "a try statement", cst.FunctionDef: "a nested function", cst.ClassDef: "a class",
    cst.Global: "global", cst.Nonlocal: "nonlocal", cst.Import: "an import", cst.ImportFrom: "an import",
    cst.Del: "del", cst.NamedExpr: "an assignment expression", cst.StarredElement: "a starred argument",
    cst.StarredDictElement: "a ** display", cst.Match: "a match statement", cst.Expr: "an expression statement (an effect)",
    cst.Raise: "raise", cst.Assert: "assert",
}

# the math functions that raise for no float (Python's raise ValueError or OverflowError where numba's
# return nan or inf: math.sqrt(-1.0), math.exp(1000.0)), and constants
MATH = frozenset({"pi", "e", "tau", "inf", "nan", "isnan", "isinf", "isfinite", "copysign", "fabs", "tanh", "atan",
                  "atan2", "erf", "erfc"})
# what writes into an array or draws from a random state: a kernel's values must be eager's, and a kernel
# that raises runs again as Python (``runtime.kernels.njit``), so it must not have changed anything
WRITERS = {
    "random": "numpy.random draws from a random state (numba's own would give other numbers)",
    **dict.fromkeys(("sort", "fill", "put", "partition", "resize", "itemset", "setflags", "byteswap"),
                    "a method that may change an array in place"),
}


@dataclass
class Forward:
    """An operator class's ``forward`` as a kernel sees it; ``reason`` (with ``file:line``) is why it
    cannot be inlined, "" when it can."""

    reason: str = ""
    reads: dict[str, int] = field(default_factory=dict)  # key -> how often forward reads inputs[key]
    looped: frozenset[str] = frozenset()  # the keys it reads inside a loop
    attrs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    simple: bool = False  # the body is one ``return {...}``
    body: Any = None  # the FunctionDef
    locals: tuple[str, ...] = ()
    modules: dict[str, str] = field(default_factory=dict)  # global name -> module name
    label: str = ""  # file:line Class.forward

    def attribute_reason(self, op: Any) -> str:
        for name in self.attrs:
            if name not in vars(op):  # a class attribute or property: not covered by the structure hash
                return f"{self.label}: self.{name} is not an attribute of the instance"
            value = vars(op)[name]
            if type(value) not in (int, float, bool) or (type(value) is float and not math.isfinite(value)):
                return f"{self.label}: self.{name} is a {type(value).__name__}, not a literal number"
        return ""


def forward_of(cls: type, op: Any) -> Forward:
    """The ``Forward`` of ``cls`` with the literal attributes of ``op`` checked."""
    forward = _read(cls)
    if not forward.reason:
        reason = forward.attribute_reason(op)
        if reason:
            return Forward(reason=reason)
    return forward


@lru_cache(maxsize=256)
def _read(cls: type) -> Forward:
    fn = getattr(cls, "forward", None)
    fn = getattr(fn, "__func__", fn)
    if not isinstance(fn, types.FunctionType):
        return Forward(reason=f"{cls.__qualname__}.forward is not a Python function")
    try:
        lines, first = inspect.getsourcelines(fn)
        file = relative_file(inspect.getsourcefile(fn) or "")
    except (OSError, TypeError):
        return Forward(reason=f"{cls.__qualname__}.forward has no source")
    label = f"{file}:{first} {cls.__qualname__}.forward"
    try:
        wrapper = MetadataWrapper(cst.parse_module(textwrap.dedent("".join(lines))))
    except cst.ParserSyntaxError:
        return Forward(reason=f"{label}: its source does not parse on its own")
    defn = wrapper.module.body[0]
    if not isinstance(defn, cst.FunctionDef) or defn.decorators or defn.asynchronous:
        return Forward(reason=f"{label}: not a plain def")
    statements = list(defn.body.body)
    if statements and _docstring(statements[0]):
        statements = statements[1:]
    defn = defn.with_changes(body=defn.body.with_changes(body=tuple(statements)))
    check = _Check(fn.__globals__, wrapper.resolve(PositionProvider), file, first - 1)
    found = _Locals()
    defn.body.visit(found)
    check.locals, check.numbers = found.names, found.numbers
    for statement in statements:
        statement.visit(check)
    if not check.reason:
        check.reason = _tail_returns(defn.body.body, check)
    if check.reason:
        return Forward(reason=f"{check.reason} (in {cls.__qualname__}.forward)")
    if not check.outputs:
        return Forward(reason=f"{label}: returns no dict display")
    simple = len(defn.body.body) == 1 and isinstance(defn.body.body[0], cst.SimpleStatementLine)
    return Forward(
        "", check.reads, frozenset(check.looped), tuple(dict.fromkeys(check.attrs)), check.outputs, simple, defn,
        tuple(sorted(check.locals)), check.modules, label,
    )


def _docstring(statement: Any) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def input_key(node: cst.BaseExpression) -> str | None:
    """The key of ``inputs["key"]``, else None."""
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name) and node.value.value == "inputs":
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            key = node.slice[0].slice.value
            if isinstance(key, cst.SimpleString):
                return ast.literal_eval(key.value)
    return None


class _Check(cst.CSTVisitor):
    """Finds the first construct a kernel cannot hold, and what forward reads, binds and returns."""

    def __init__(self, globals_: dict, positions: Any, file: str, offset: int):
        self.globals = globals_
        self.positions = positions
        self.file = file
        self.offset = offset
        self.reason = ""
        self.reads: dict[str, int] = {}
        self.attrs: list[str] = []
        self.outputs: tuple[str, ...] = ()
        self.locals: set[str] = set()
        self.modules: dict[str, str] = {}
        self.numbers: set[str] = set()  # the local names some assignment sets to a literal number
        self.allowed: set[int] = set()  # ids of nodes checked in their context (keys, dict displays)
        self.loops = 0  # the depth of loops around the node visited
        self.looped: set[str] = set()  # the keys read inside a loop

    def on_leave(self, original: cst.CSTNode) -> None:
        if isinstance(original, (cst.For, cst.While)):
            self.loops -= 1

    def refuse(self, node: cst.CSTNode, what: str) -> bool:
        if not self.reason:
            line = self.positions[node].start.line + self.offset
            self.reason = f"{self.file}:{line}: {what}"
        return False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.reason:
            return False
        what = REFUSED.get(type(node))
        if what:
            return self.refuse(node, f"{what} ({_code(node)})")
        if isinstance(node, (cst.For, cst.While)):
            self.loops += 1
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.For)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            for target in targets:
                names = target.elements if isinstance(target, cst.Tuple) else [target]
                for name in names:
                    name = name.value if isinstance(name, cst.Element) else name
                    if not isinstance(name, cst.Name):
                        return self.refuse(node, f"an assignment to {_code(name)}, not a local name")
        power = isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power)
        if (power or isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.PowerAssign)) and not (
            isinstance(node.right if power else node.value, cst.Integer)
        ):
            return self.refuse(node, f"a power whose exponent is not a whole number as written ({_code(node)}): "
                                     "Python gives a complex number or raises where numba gives nan")
        if isinstance(node, cst.AugAssign) and node.target.value not in self.numbers:
            return self.refuse(node, f"an in-place update of a name not set to a number ({_code(node)}): it may write into an array")
        if isinstance(node, cst.Subscript):
            key = input_key(node)
            if key is not None:
                self.reads[key] = self.reads.get(key, 0) + 1
                if self.loops:
                    self.looped.add(key)
                return False
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
            self.attrs.append(node.attr.value)
            return False
        if isinstance(node, cst.Attribute):
            if node.attr.value in WRITERS:
                return self.refuse(node, f"{_code(node)}: {WRITERS[node.attr.value]}")
            module = self.globals.get(node.value.value) if isinstance(node.value, cst.Name) else None
            if getattr(module, "__name__", None) == "math" and node.attr.value not in MATH:
                return self.refuse(node, f"{_code(node)}: math raises where numba returns nan or inf (numpy's functions do not raise)")
            node.value.visit(self)  # the attribute's name is not a variable
            return False
        if isinstance(node, cst.Arg) and node.keyword is not None:
            if node.keyword.value == "out":
                return self.refuse(node, f"out= ({_code(node)}): it writes into an array")
            node.value.visit(self)
            return False
        if isinstance(node, cst.Return):
            return self.returned(node)
        if isinstance(node, cst.SimpleString) and id(node) not in self.allowed:
            return self.refuse(node, f"a string ({_code(node)})")
        if isinstance(node, cst.Dict) and id(node) not in self.allowed:
            return self.refuse(node, f"a dict display ({_code(node)})")
        if isinstance(node, cst.Name):
            return self.name(node)
        return True

    def name(self, node: cst.Name) -> bool:
        name = node.value
        if name in self.locals or name in ("True", "False", "None"):
            return False
        if name in ("inputs", "self"):
            return self.refuse(node, f"{name} used other than as inputs['key'] or self.attribute")
        value = self.globals.get(name, getattr(builtins, name, None) if name in BUILTINS else None)
        if isinstance(value, types.ModuleType) and value.__name__ in MODULES:
            self.modules[name] = value.__name__
            return False
        if name in BUILTINS and name not in self.globals:
            return False
        return self.refuse(node, f"the global {name!r} (numba calls only numpy, math and @njit functions)")

    def returned(self, node: cst.Return) -> bool:
        value = node.value
        if not isinstance(value, cst.Dict) or not all(
            isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString) for e in value.elements
        ):
            return self.refuse(node, f"a return of something other than a dict display with string keys ({_code(node)})")
        keys = tuple(ast.literal_eval(e.key.value) for e in value.elements)
        if self.outputs and keys != self.outputs:
            return self.refuse(node, "returns with different keys")
        self.outputs = keys
        for element in value.elements:
            element.value.visit(self)
        return False



class _Locals(cst.CSTVisitor):
    """The names forward binds (assignments and loop targets)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.numbers: set[str] = set()  # set to a literal number somewhere: numba types them as scalars

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value.expression if isinstance(node.value, cst.UnaryOperation) else node.value
        if isinstance(value, (cst.Integer, cst.Float)) or (isinstance(value, cst.Name) and value.value in ("True", "False")):
            self.numbers.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.bind(node.target)

    def bind(self, target: Any) -> None:
        for item in target.elements if isinstance(target, cst.Tuple) else [target]:
            item = item.value if isinstance(item, cst.Element) else item
            if isinstance(item, cst.Name):
                self.names.add(item.value)


def _code(node: cst.CSTNode) -> str:
    text = cst.Module([]).code_for_node(node).strip().splitlines()
    return (text[0][:60] + ("..." if len(text) > 1 or len(text[0]) > 60 else "")) if text else ""


def _tail_returns(body: Any, check: _Check) -> str:
    """"" when every ``return`` ends its branch (so returns can become assignments), else why not."""
    for i, stmt in enumerate(body):
        last = i == len(body) - 1
        if isinstance(stmt, cst.If):
            if last and stmt.orelse is not None:
                for branch in _branches(stmt):
                    reason = _tail_returns(branch, check)
                    if reason:
                        return reason
                continue
            if _returns(stmt):
                check.refuse(stmt, "a return inside an if without an else, or before the end of forward")
                return check.reason
        elif isinstance(stmt, (cst.For, cst.While)) and _returns(stmt):
            check.refuse(stmt, "a return inside a loop")
            return check.reason
        elif _returns(stmt) and not last:
            check.refuse(stmt, "a return before the end of forward")
            return check.reason
        elif last and not _returns(stmt):
            check.refuse(stmt, "a branch of forward that does not end in a return")
            return check.reason
    return ""


def _branches(stmt: cst.If) -> list:
    out = [stmt.body.body]
    orelse = stmt.orelse
    if isinstance(orelse, cst.If):
        out += _branches(orelse) if orelse.orelse is not None else [[orelse]]
    else:
        out.append(orelse.body.body)
    return out


def _returns(node: cst.CSTNode) -> bool:
    found = []

    class Find(cst.CSTVisitor):
        def visit_Return(self, n: cst.Return) -> None:
            found.append(n)

    node.visit(Find())
    return bool(found)
