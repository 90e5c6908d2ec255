"""Kernel text: the source of one function that inlines the forwards of a numeric segment
(``compiler.numeric``), and the numba types of its parameters.

Inlining (libcst, source to source): ``inputs["x"]`` becomes the kernel parameter or the expression that
produced the value; ``self.attr`` (a literal number, covered by the structure hash) its value; the
forward's local names are prefixed with the step's name; ``return {"k": e}`` becomes an assignment, and
the kernel returns the tuple of the values the rest of the plan reads. An output used once is
substituted into its use when its forward is a single ``return`` (or ends in a top-level ``return`` and
the next step reads it), so element-wise chains are one array expression, which numba compiles to one
loop without a temporary per step. numpy functions are called through ``runtime.kernels.numpy_function``
(numpy's own bits); a transcendental ufunc of an arithmetic result is computed in place, and a
statement needing both ``mean`` and ``std`` of a name computes the mean once (``_ShareMean``). The text
is deterministic: it depends only on the forwards' source, the attribute values and the segment.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

import libcst as cst

from xcs.compiler.forwards import MODULES, Forward, input_key
from xcs.compiler.ir import Const, Glue, Ref

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


# numpy functions whose numba versions give other bits: called through ``runtime.kernels.numpy_function``
# (ufuncs computed by numpy's own loop on arrays, reductions summed in numpy's order), so a kernel's values
# are the Python plan's; ``numpy.f(x)`` and, for the reductions, ``x.f()`` are rewritten
TRANSCENDENTAL = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
    "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "cbrt",
})
REDUCTIONS = frozenset({"sum", "mean", "std"})
# arithmetic on an array makes a new array, nothing else holds: ``numpy.tanh`` of it may be computed over
# it (``numpy_tanh_in_place``; as Python, and for anything but a float array, ``numpy.tanh``)
FRESH = (cst.BinaryOperation, cst.UnaryOperation)


@dataclass(frozen=True)
class Built:
    text: str
    signature: str
    modules: tuple[str, ...]
    numpy_functions: tuple[tuple[str, str], ...]


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
    def __init__(
        self, rename: dict[str, str], modules: dict[str, str], inputs: dict[str, str], op: Any, outs: dict,
        functions: dict,
    ):
        self.rename, self.modules, self.inputs, self.op, self.outs = rename, modules, inputs, op, outs
        self.functions = functions  # numpy function name -> the plan global that calls it
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
        key = input_key(original)
        return self.insert(self.inputs[key]) if key is not None else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if isinstance(original.value, cst.Name) and original.value.value == "self":
            return self.insert(repr(vars(self.op)[original.attr.value]))
        return updated.with_changes(attr=original.attr)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func, args = updated.func, updated.args
        if not isinstance(func, cst.Attribute) or any(a.keyword is not None or a.star for a in args):
            return updated
        name = func.attr.value
        if isinstance(func.value, cst.Name) and func.value.value == "numpy":  # numpy.tanh(x), numpy.mean(x)
            if name in TRANSCENDENTAL and len(args) == 1 and isinstance(args[0].value, FRESH):
                return updated.with_changes(func=cst.Name(self.functions[name + "_in_place"]))
            if name in TRANSCENDENTAL | REDUCTIONS and len(args) == 1:
                return updated.with_changes(func=cst.Name(self.functions[name]))
        elif name in REDUCTIONS and not args:  # x.mean()
            return updated.with_changes(func=cst.Name(self.functions[name]), args=[cst.Arg(self.bare(func.value))])
        return updated

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


class _ShareMean(cst.CSTTransformer):
    """``v = (x - numpy_mean(x)) / numpy_std(x)`` -> ``x_mean = numpy_mean(x)`` and
    ``v = (x - x_mean) / numpy_std_about(x, x_mean)``: numpy's ``std`` computes the mean as ``mean``
    does (the same bits), so a statement that needs both passes over ``x`` once less. Only where the
    mean is the statement's first call and nothing in it is conditional (``a if c else b``, ``and``,
    chained comparisons), so the calls run in the order they did: as Python, ``numpy_std_about(x, m)``
    is ``numpy.std(x)``."""

    def __init__(self, builder: KernelBuilder):
        self.builder = builder
        self.mean, self.std = builder.functions.get("mean"), builder.functions.get("std")

    def leave_SimpleStatementLine(self, original: Any, updated: cst.SimpleStatementLine) -> Any:
        assign = updated.body[0] if len(updated.body) == 1 else None
        if not isinstance(assign, cst.Assign) or self.mean is None or self.std is None:
            return updated
        calls: list[cst.Call] = []
        conditional: list[cst.CSTNode] = []

        class Calls(cst.CSTVisitor):
            def leave_Call(self, node: cst.Call) -> None:  # the order in which they run
                calls.append(node)

            def visit_IfExp(self, node: cst.IfExp) -> None:
                conditional.append(node)

            def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
                conditional.append(node)

            def visit_Comparison(self, node: cst.Comparison) -> None:
                if len(node.comparisons) > 1:
                    conditional.append(node)

        assign.value.visit(Calls())
        first = calls[0] if calls and not conditional else None
        array = self.argument(first, self.mean)
        stds = [c for c in calls if self.argument(c, self.std) == array] if array else []
        if not stds:
            return updated
        mean = self.builder.fresh(f"{array}_mean")
        about = self.builder.functions["std_about"]
        swap = {id(first): cst.Name(mean)}
        swap.update((id(c), cst.parse_expression(f"{about}({array}, {mean})")) for c in stds)

        class Swap(cst.CSTTransformer):
            def leave_Call(self, original: cst.Call, new: cst.Call) -> cst.BaseExpression:
                return swap.get(id(original), new)

        hoisted = cst.parse_statement(f"{mean} = {self.mean}({array})").with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel([hoisted, updated.with_changes(body=[assign.visit(Swap())], leading_lines=[])])

    @staticmethod
    def argument(call: Any, function: str) -> str | None:
        """``x`` when ``call`` is ``function(x)`` of a plain name."""
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value == function:
            if len(call.args) == 1 and isinstance(call.args[0].value, cst.Name) and not call.args[0].keyword:
                return call.args[0].value.value
        return None


class _NumpyFunctions(dict):
    """numpy function name -> the plan global that calls it (``numpy_tanh``), named on first use."""

    def __init__(self, taken: set[str]):
        super().__init__()
        self.taken = taken
        self.used: dict[str, str] = {}  # global name -> numpy function name

    def __missing__(self, name: str) -> str:
        glob = f"numpy_{name}"
        while glob in self.taken:
            glob += "_"
        self[name] = glob
        self.used[glob] = name
        return glob


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
        self.functions = _NumpyFunctions(set(nodes))

    def add(self, name: str, forward: Forward, reads: dict[str, Any], where: str, op: Any) -> None:
        self.members.append(_Member(name, forward, reads, where, op))

    def fresh(self, name: str) -> str:
        """An unused local name of the kernel (``numpy_*`` names the plan's ``numpy_function`` globals)."""
        if name.startswith("numpy_"):
            name = "v_" + name
        while name in self.taken or not name.isidentifier():
            name = name + "_" if name.isidentifier() else "v_" + "".join(c if c.isalnum() else "_" for c in name)
        self.taken.add(name)
        return name

    # ------------------------------------------------------------------ values between steps
    def sources(self, operand: Any, counts: dict, readers: dict, reader: str) -> None:
        """Count the uses of step outputs in a value that ``reader`` reads."""
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if isinstance(node, Glue):
            if node.op == "getitem" and node.operands[0] != Ref("inputs"):
                pair = (node.operands[0].name, node.operands[1].value)
                counts[pair] = counts.get(pair, 0) + 1
                readers[pair] = reader
            else:
                for inner in node.operands:
                    self.sources(inner, counts, readers, reader)

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
        readers: dict[tuple[str, str], str] = {}  # a step output -> the (last) step that reads it
        for m in self.members:
            for key in m.forward.reads:
                self.sources(m.reads[key], counts, readers, m.name)
        outs: dict[tuple[str, str], str] = {}
        body: list[str] = []
        modules: set[str] = set()
        for i, m in enumerate(self.members):
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
            inline = _Inline(rename, f.modules, inputs, m.op, targets, self.functions)
            statements, after = f.body.body.body, self.members[i + 1].name if i + 1 < len(self.members) else None
            tail = statements[-1]
            if isinstance(tail, cst.SimpleStatementLine) and len(tail.body) == 1 and isinstance(tail.body[0], cst.Return):
                if len(statements) > 1:
                    body += cst.Module(body=[s.visit(inline) for s in statements[:-1]]).code.rstrip("\n").splitlines()
                for element in tail.body[0].value.elements:
                    key = ast.literal_eval(element.key.value)
                    text = cst.Module([]).code_for_node(element.value.visit(inline))
                    single = counts.get((m.name, key), 0) == 1 and (m.name, key) not in exported
                    if single and (f.simple or readers.get((m.name, key)) == after):
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
        text = "\n".join([head, *("    " + line if line else "" for line in body)])
        text = cst.parse_module(text).visit(_ShareMean(self)).code
        used = {glob: name for glob, name in self.functions.used.items() if re.search(rf"\b{re.escape(glob)}\(", text)}
        return Built(text, signature, tuple(sorted(modules)), tuple(sorted(used.items())))
