"""Kernel text: an operator's ``forward`` read with libcst (``Forward``: what it reads and returns, or the
construct that keeps it out of a kernel, with ``file:line``), and ``KernelBuilder``, which inlines the
forwards of a numeric segment (``compiler.numeric``) into the source of one function.

Inlining: ``inputs["x"]`` becomes the kernel parameter or the expression that produced the value;
``self.attr`` (a literal number, covered by the structure hash) its value; the forward's local names
are prefixed with the step's name; ``return {"k": e}`` becomes an assignment, and the kernel returns the
tuple of the values the rest of the plan reads. An output used once by a forward that is a single
``return`` is substituted into its use, so element-wise chains are one array expression, which numba
compiles to one loop without a temporary per step. The text is deterministic: it depends only on the
forwards' source, the attribute values and the segment.
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

from xcs.compiler.ir import Const, Glue, Ref
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
SCALARS = {float: "float64", bool: "boolean"}  # not int: Python's ints are unbounded, a kernel's would wrap
DTYPES = {
    "float64": "float64", "float32": "float32", "int64": "int64", "int32": "int32", "int16": "int16",
    "int8": "int8", "uint64": "uint64", "uint32": "uint32", "uint16": "uint16", "uint8": "uint8",
    "bool": "boolean", "complex128": "complex128", "complex64": "complex64",
}


def numba_type(leaf: Any) -> str | None:
    """numba's spelling of a signature leaf (``compiler.signature``), or None when a kernel cannot
    take it: floats, bools, and numpy arrays of a numeric dtype (layout C, F or A; read-only or not).
    A Python ``int`` is not one: it is unbounded, where a kernel's int64 would wrap silently."""
    if leaf in SCALARS:
        return SCALARS[leaf]
    if not (isinstance(leaf, tuple) and len(leaf) == 4) or getattr(leaf[0], "__module__", "") != "numpy":
        return None
    kind, dtype, ndim, layout = leaf
    if kind.__name__ != "ndarray" or dtype not in DTYPES or not 1 <= ndim <= 8:
        return None
    order, _, readonly = layout.partition(" ")
    if readonly:
        return f"Array({DTYPES[dtype]}, {ndim}, {order!r}, readonly=True)"
    dims = [":"] * ndim
    if order == "C":
        dims[-1] = "::1"
    elif order == "F":
        dims[0] = "::1"
    return f"{DTYPES[dtype]}[{', '.join(dims)}]"


@dataclass(frozen=True)
class InputKey:
    """``inputs[key]`` of a call that passes its inputs on whole (``op(inputs=inputs)``)."""

    key: str


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
    check.locals = found.names
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


def _key(node: cst.BaseExpression) -> str | None:
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
        if isinstance(node, cst.Subscript):
            key = _key(node)
            if key is not None:
                self.reads[key] = self.reads.get(key, 0) + 1
                if self.loops:
                    self.looped.add(key)
                return False
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
            self.attrs.append(node.attr.value)
            return False
        if isinstance(node, cst.Attribute):
            node.value.visit(self)  # the attribute's name is not a variable
            return False
        if isinstance(node, cst.Arg) and node.keyword is not None:
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


# ---------------------------------------------------------------------- building a kernel
@dataclass(frozen=True)
class Built:
    text: str
    signature: str
    modules: tuple[str, ...]


def _atomic(text: str) -> bool:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(tree, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)) or (
        isinstance(tree, ast.Constant) and not (isinstance(tree.value, (int, float)) and tree.value < 0)
    )


def _wrap(text: str) -> str:
    return text if _atomic(text) else f"({text})"


class _Inline(cst.CSTTransformer):
    def __init__(self, rename: dict[str, str], modules: dict[str, str], inputs: dict[str, str], op: Any, outs: dict):
        self.rename, self.modules, self.inputs, self.op, self.outs = rename, modules, inputs, op, outs
        self.inserted: set[int] = set()  # expressions put in parentheses here, unwrapped where none are needed

    def insert(self, text: str) -> cst.BaseExpression:
        node = cst.parse_expression(_wrap(text))
        self.inserted.add(id(node))
        return node

    def bare(self, node: Any) -> Any:
        """``node`` without the parentheses ``insert`` gave it, in a place that needs none."""
        if id(node) in self.inserted and node.lpar:
            return node.with_changes(lpar=[], rpar=[])
        return node

    def leave_Subscript(self, original: cst.Subscript, updated: cst.BaseExpression) -> cst.BaseExpression:
        key = _key(original)
        return self.insert(self.inputs[key]) if key is not None else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if isinstance(original.value, cst.Name) and original.value.value == "self":
            return self.insert(repr(vars(self.op)[original.attr.value]))
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword, value=self.bare(updated.value))

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        return updated.with_changes(value=self.bare(updated.value))

    def leave_DictElement(self, original: cst.DictElement, updated: cst.DictElement) -> cst.DictElement:
        return updated.with_changes(value=self.bare(updated.value))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original.value in self.rename:
            return updated.with_changes(value=self.rename[original.value])
        if original.value in self.modules:
            return cst.parse_expression(self.modules[original.value])
        return updated

    def leave_SimpleStatementLine(self, original: Any, updated: cst.SimpleStatementLine) -> Any:
        ret = updated.body[0] if len(updated.body) == 1 and isinstance(updated.body[0], cst.Return) else None
        if ret is None:
            return updated
        lines = []
        for element in ret.value.elements:
            target = self.outs[ast.literal_eval(element.key.value)]
            lines.append(cst.parse_statement(f"{target} = {cst.Module([]).code_for_node(element.value)}"))
        return cst.FlattenSentinel(lines)


@dataclass
class _Member:
    name: str
    forward: Forward
    reads: dict[str, Any]
    where: str
    op: Any


class KernelBuilder:
    """Collects a segment's steps (``add``, in plan order), then writes the kernel (``finish``)."""

    def __init__(self, function: str, leaves: dict, nodes: dict):
        self.function = function
        self.leaves = leaves
        self.nodes = nodes
        self.members: list[_Member] = []
        self.params: dict[str, str] = {}  # input key -> parameter name
        self.taken: set[str] = set(MODULES) | {function}

    def add(self, name: str, forward: Forward, reads: dict[str, Any], where: str, op: Any) -> None:
        self.members.append(_Member(name, forward, reads, where, op))

    def fresh(self, name: str) -> str:
        while name in self.taken or not name.isidentifier():
            name = name + "_" if name.isidentifier() else "v_" + "".join(c if c.isalnum() else "_" for c in name)
        self.taken.add(name)
        return name

    # ------------------------------------------------------------------ values between steps
    def sources(self, operand: Any, counts: dict) -> None:
        """Count the uses of step outputs in a value."""
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if isinstance(node, Glue):
            if node.op == "getitem" and node.operands[0] != Ref("inputs"):
                pair = (node.operands[0].name, node.operands[1].value)
                counts[pair] = counts.get(pair, 0) + 1
            else:
                for inner in node.operands:
                    self.sources(inner, counts)

    def text(self, operand: Any, outs: dict) -> str:
        if isinstance(operand, InputKey):
            return self.param(operand.key)
        if isinstance(operand, Const):
            return repr(operand.value)
        node = self.nodes[operand.name]
        if node.op == "getitem":
            if node.operands[0] == Ref("inputs"):
                return self.param(node.operands[1].value)
            return outs[(node.operands[0].name, node.operands[1].value)]
        parts = [_wrap(self.text(o, outs)) for o in node.operands]
        return f"{node.detail}{parts[0]}" if node.op == "unary" else f"{parts[0]} {node.detail} {parts[1]}"

    def param(self, key: str) -> str:
        if key not in self.params:
            self.params[key] = self.fresh(str(key))
        return self.params[key]

    # ------------------------------------------------------------------ the text
    def finish(self, exported: list[tuple[str, str]]) -> Built:
        counts: dict[tuple[str, str], int] = {pair: 1 for pair in exported}
        for m in self.members:
            for key in m.forward.reads:
                self.sources(m.reads[key], counts)
        outs: dict[tuple[str, str], str] = {}
        body: list[str] = []
        modules: set[str] = set()
        for m in self.members:
            f = m.forward
            modules.update(f.modules.values())
            body.append(f"# {m.name}: {f.label}   called at {m.where}")
            rename = {local: self.fresh(f"{m.name}_{local}") for local in f.locals}
            inputs = {}
            for key, reads in f.reads.items():
                value = self.text(m.reads[key], outs)
                if reads == 1 and key not in f.looped or value.isidentifier():
                    inputs[key] = value
                else:
                    var = self.fresh(f"{m.name}_inputs_{key}")
                    body.append(f"{var} = {value}")
                    inputs[key] = var
            targets = {}
            for key in f.outputs:
                targets[key] = self.fresh(f"{m.name}_out_{key}")
            inline = _Inline(rename, f.modules, inputs, m.op, targets)
            if f.simple:
                ret = f.body.body.body[0].body[0]
                for element in ret.value.elements:
                    key = ast.literal_eval(element.key.value)
                    text = cst.Module([]).code_for_node(element.value.visit(inline))
                    if counts.get((m.name, key), 0) == 1 and (m.name, key) not in exported:
                        outs[(m.name, key)] = text
                        self.taken.discard(targets[key])
                    elif counts.get((m.name, key), 0):
                        body.append(f"{targets[key]} = {text}")
                        outs[(m.name, key)] = targets[key]
            else:
                code = cst.Module(body=f.body.body.visit(inline).body).code
                body += code.rstrip("\n").splitlines()
                outs.update({(m.name, key): targets[key] for key in f.outputs})
        results = [outs[pair] for pair in exported]
        body.append(f"return ({', '.join(results)}{',' if len(results) == 1 else ''})")
        params = list(self.params.values())
        head = f"def {self.function}({', '.join(params)}):"
        signature = "(" + ", ".join(numba_type(self.leaves[k]) for k in self.params) + ("," if len(params) == 1 else "") + ")"
        return Built("\n".join([head, *("    " + line if line else "" for line in body)]), signature, tuple(sorted(modules)))
