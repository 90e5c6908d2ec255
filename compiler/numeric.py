"""Numeric segments: which steps are functions of arrays and scalars, and their fusion into one kernel.

``fuse(graph, root, signature, is_operator)`` finds the top-level operator calls whose operator's
``forward`` reads only ``inputs["key"]`` values that are numeric (numpy arrays and numbers whose dtype,
ndim and layout the input signature gives, or other such steps' outputs), literal numeric attributes
and ``numpy``/``math``, and that returns a dict display; it groups connected ones into maximal segments
and replaces each by one ``ir.Kernel``. The kernel's text inlines the forwards (``compiler.kernels``,
libcst): ``inputs["x"]`` reads become parameters or the producing expression, returned mappings become
tuples. The ``Report`` lists the segments and, for every step left out, why, with ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from xcs.compiler.ir import (
    REGIONS, Call, Const, Glue, Graph, Input, Kernel, OperatorCall, Ref, Static, operands, resolve_static,
)
from xcs.compiler.forwards import Forward, forward_of
from xcs.compiler.kernels import SCALARS, InputKey, KernelBuilder, numba_type
from xcs.compiler.signature import Signature

ARITHMETIC = frozenset({"binop", "unary", "compare"})


@dataclass(frozen=True)
class Report:
    """``segments``: (kernel step, its member steps); ``left_out``: (step, where, why) per other step."""

    segments: tuple[tuple[str, tuple[str, ...]], ...] = ()
    left_out: tuple[tuple[str, str, str], ...] = ()

    def lines(self) -> list[str]:
        out = []
        for name, members in self.segments:
            out.append(f"  {name}: {', '.join(members)} ({len(members)} step{'s' if len(members) > 1 else ''})")
        if self.left_out:
            out.append("steps left out of numeric segments:")
            out += [f"  {step} {where}: {why}" for step, where, why in self.left_out]
        return out


class _Fusion:
    def __init__(self, graph: Graph, root: Any, signature: Signature, is_operator: Callable[[Any], bool]):
        self.graph = graph
        self.root = root
        self.signature = signature
        self.leaves = dict(signature)
        self.is_operator = is_operator
        self.nodes = {n.name: n for n in graph.nodes}
        self.forwards: dict[str, Forward] = {}  # numeric step -> its forward
        self.reads: dict[str, dict[str, Any]] = {}  # numeric step -> {key: operand}
        self.left_out: list[tuple[str, str, str]] = []

    # -------------------------------------------------------------- which steps are numeric
    def value_reason(self, operand: Any) -> str:
        """Why ``operand`` (glue at the top level) cannot be a kernel value; "" when it can."""
        if isinstance(operand, InputKey):
            return "" if numba_type(self.leaves.get(operand.key)) else self.not_numeric(operand.key)
        if isinstance(operand, Const):
            return "" if type(operand.value) in (*SCALARS, int) else f"the constant {operand.value!r} is not a number"
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if not isinstance(node, Glue):
            what = operand.name if isinstance(node, (OperatorCall, Call)) else type(operand).__name__
            return f"it passes {what} whole, not a numeric value"
        if node.op == "getitem" and isinstance(node.operands[1], Const):
            source, key = node.operands[0], node.operands[1].value
            if source == Ref("inputs"):
                leaf = self.leaves.get(key)
                return "" if numba_type(leaf) is not None else self.not_numeric(key)
            if isinstance(source, Ref) and source.name in self.forwards:
                if key in self.forwards[source.name].outputs:
                    return ""
                return f"{source.name} returns no key {key!r}"
            if isinstance(source, Ref) and isinstance(self.nodes.get(source.name), (OperatorCall, Call)):
                return f"it reads {source.name}[{key!r}], the output of a step that is not numeric"
            return "it reads a value whose type the signature does not give"
        if node.op in ARITHMETIC:
            for inner in node.operands:
                reason = self.value_reason(inner)
                if reason:
                    return reason
            return ""
        return f"it computes its inputs with {node.op} glue"

    def not_numeric(self, key: Any) -> str:
        kind = self.signature.flat.get(key if isinstance(key, str) else repr(key), "absent")
        return f"inputs[{key!r}] is {kind} in the signature (a kernel takes numpy arrays of numbers, floats, bools)"

    def step_reason(self, node: Any) -> str:
        if isinstance(node, Call):
            return "a call with effects (it runs as written, in program order)"
        if isinstance(node, REGIONS):
            return f"a {type(node).__name__} region (dynamic structure runs as Python)"
        if not isinstance(node, OperatorCall):
            return "hoisted glue"
        if not isinstance(node.target, Static) or node.after or node.args or [k for k, _ in node.kwargs] != ["inputs"]:
            return "not a plain call op(inputs=...) of a sub-operator"
        op = resolve_static(self.root, node.target.path)
        if not self.is_operator(op):
            return "its target is not an operator"
        forward = forward_of(type(op), op)
        if forward.reason:
            return forward.reason
        given = self.given(node.kwargs[0][1])
        if given is None:
            return "its inputs are not a dict display with string keys"
        for key in forward.reads:
            if key not in given:
                return f"forward reads inputs[{key!r}], which the call does not pass"
            reason = self.value_reason(given[key])
            if reason:
                return f"inputs[{key!r}]: {reason}"
        self.forwards[node.name] = forward
        self.reads[node.name] = given
        return ""

    def given(self, operand: Any) -> dict[str, Any] | None:
        """``{key: operand}`` of an ``inputs=`` argument (a dict display, or the inputs passed on)."""
        if operand == Ref("inputs"):
            return {key: InputKey(key) for key in self.leaves if isinstance(key, str)}
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if not isinstance(node, Glue) or node.op != "dict":
            return None
        keys = node.operands[0::2]
        if not all(isinstance(k, Const) and isinstance(k.value, str) for k in keys):
            return None
        return {k.value: v for k, v in zip(keys, node.operands[1::2])}

    # -------------------------------------------------------------- segments
    def segments(self) -> list[list[str]]:
        parent: dict[str, str] = {}

        def find(name: str) -> str:
            while parent[name] != name:
                name = parent[name]
            return name

        for node in self.graph.steps:
            reason = self.step_reason(node)
            if reason:
                self.left_out.append((node.name, str(node.loc), reason))
                continue
            parent[node.name] = node.name
            for operand in self.reads[node.name].values():
                for source in self.sources(operand):
                    parent[find(source)] = find(node.name)
        groups: dict[str, list[str]] = {}
        for name in parent:
            groups.setdefault(find(name), []).append(name)
        kept = []
        for group in sorted(groups.values(), key=lambda g: list(parent).index(g[0])):
            if any(self.takes_array(member) for member in group):
                kept.append(group)
            else:
                why = "no numpy array goes in: scalar work stays Python (numba would only add its compile time)"
                self.left_out += [(m, str(self.nodes[m].loc), why) for m in group]
        return kept

    def takes_array(self, step: str) -> bool:
        """Whether a numpy array of the inputs goes into ``step`` (its own reads, not other steps')."""

        def arrays(operand: Any) -> bool:
            if isinstance(operand, InputKey):
                return isinstance(self.leaves.get(operand.key), tuple)
            node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
            if not isinstance(node, Glue):
                return False
            if node.op == "getitem":
                return node.operands[0] == Ref("inputs") and isinstance(self.leaves.get(node.operands[1].value), tuple)
            return any(arrays(inner) for inner in node.operands)

        return any(arrays(self.reads[step][key]) for key in self.forwards[step].reads)

    def sources(self, operand: Any) -> list[str]:
        """The numeric steps a kernel value reads."""
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if not isinstance(node, Glue):
            return []
        if node.op == "getitem":
            source = node.operands[0]
            return [source.name] if isinstance(source, Ref) and source.name in self.forwards else []
        return [s for inner in node.operands for s in self.sources(inner)]

    # -------------------------------------------------------------- rewriting
    def exports(self, members: set[str]) -> tuple[dict[tuple[str, str], str], set[str]]:
        """What the rest of the graph reads of ``members``: {(step, key): getitem glue name}, and the
        steps it reads whole."""
        picked: dict[tuple[str, str], str] = {}
        whole: set[str] = set()
        seen: set[str] = set()

        def visit(operand: Any) -> None:
            if not isinstance(operand, Ref) or (operand.name in seen and operand.name not in members):
                return
            node = self.nodes.get(operand.name)
            if operand.name in members:
                whole.add(operand.name)
                return
            seen.add(operand.name)
            if isinstance(node, Glue):
                first = node.operands[0] if node.operands else None
                if node.op == "getitem" and isinstance(first, Ref) and first.name in members:
                    picked[(first.name, node.operands[1].value)] = node.name
                    return
                for inner in operands(node):
                    visit(inner)

        for node in self.graph.nodes:
            if node.name in members or isinstance(node, (Glue, Input)):
                continue
            for operand in operands(node):
                visit(operand)
        for name in whole:
            for key in self.forwards[name].outputs:
                picked.setdefault((name, key), "")
        return picked, whole

    def fuse(self) -> tuple[Graph, Report]:
        groups = self.segments()
        if not groups:
            return self.graph, Report((), tuple(self.left_out))
        nodes = list(self.graph.nodes)
        taken = {n.name for n in nodes}
        done = []
        for members in groups:
            nodes, name = self.fuse_one(nodes, members, taken)
            done.append((name, tuple(members)))
        return Graph(tuple(_live(nodes))), Report(tuple(done), tuple(self.left_out))

    def fuse_one(self, nodes: list, members: list[str], taken: set[str]) -> tuple[list, str]:
        """``nodes`` with ``members`` replaced by one ``Kernel`` step, and that step's name."""
        name = _fresh(f"segment_{members[0]}", taken)
        picked, whole = self.exports(set(members))
        builder = KernelBuilder(_fresh(f"kernel_{members[0]}", taken), self.leaves, self.nodes)
        for member in members:
            node = self.nodes[member]
            op = resolve_static(self.root, node.target.path)
            builder.add(member, self.forwards[member], self.reads[member], str(node.loc), op)
        exported = [pair for pair in sorted(picked, key=lambda p: (members.index(p[0]), p))]
        kernel = builder.finish(exported)
        params = []
        for key in builder.params:
            glue = _fresh(f"{name}_{_word(key)}", taken)
            params.append(Glue(glue, "getitem", (Ref("inputs"), Const(key)), loc=self.nodes[members[0]].loc))
        first = self.nodes[members[0]]
        node = Kernel(
            name, builder.function, tuple(Ref(p.name) for p in params), kernel.text, kernel.signature,
            tuple(members), kernel.modules, kernel.numpy_functions, first.loc,
        )
        index = {pair: i for i, pair in enumerate(exported)}
        out: list = []
        for old in nodes:
            if old.name == members[0]:
                out += [*params, node]
            if old.name in members:
                if old.name in whole:  # read whole: the dict it returned, from the kernel's tuple
                    parts: list = []
                    for key in self.forwards[old.name].outputs:
                        part = _fresh(f"{old.name}_{_word(key)}", taken)
                        out.append(Glue(part, "getitem", (Ref(name), Const(index[(old.name, key)])), loc=old.loc))
                        parts += [Const(key), Ref(part)]
                    out.append(Glue(old.name, "dict", tuple(parts), loc=old.loc))
                continue
            if isinstance(old, Glue) and old.op == "getitem" and (old.operands[0:1] and old.operands[0] in [Ref(m) for m in members]):
                pair = (old.operands[0].name, old.operands[1].value)
                if pair in index:
                    old = Glue(old.name, "getitem", (Ref(name), Const(index[pair])), loc=old.loc, hoisted=old.hoisted)
            after = getattr(old, "after", ())
            if any(a in members for a in after):
                fixed = tuple(dict.fromkeys(name if a in members else a for a in after))
                old = replace(old, after=fixed)
            out.append(old)
        self.nodes = {n.name: n for n in out}
        return out, name


def _live(nodes: list) -> list:
    """``nodes`` without the glue nothing reads any more (what a fused segment consumed)."""
    used: set[str] = set()
    for node in reversed(nodes):
        if isinstance(node, Glue) and node.name not in used and not node.hoisted:
            continue
        used.update(o.name for o in operands(node) if isinstance(o, Ref))
    keep = []
    for node in nodes:
        if isinstance(node, Glue) and node.name not in used and not node.hoisted:
            continue
        keep.append(node)
    return keep


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _word(key: str) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in str(key))
    return text if text.isidentifier() else f"k_{text}"


def fuse(graph: Graph, root: Any, signature: Signature, is_operator: Callable[[Any], bool]) -> tuple[Graph, Report]:
    """``graph`` with its numeric segments fused into kernels, and the report of what was (not) fused."""
    return _Fusion(graph, root, signature, is_operator).fuse()

