"""Code generation: a pure function from an IR graph to the source text of a plan module.

The text is byte-identical across runs, processes, hash seeds and Python versions: it depends only on
the graph (whose order and names are deterministic) and the header. Steps are the graph's operator
calls; glue is inlined into the step that consumes it. The module defines one function per step, the
guard, the output function, the straight-line ``run`` and ``PLAN`` (``runtime.plan.Plan``).
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass

from compiler import analysis
from compiler.ir import Const, Global, Glue, Graph, Guard, Input, OperatorCall, Ref, Static

VERSION = "0.1.0"
CODEGEN_VERSION = "1"
RESERVED = frozenset({"ops", "inputs", "run", "guard", "output", "PLAN", "Plan", "Step"}) | frozenset(
    keyword.kwlist
) | frozenset(dir(builtins))

ATOM, NOT, COMPARE = 100, 6, 7
BINARY_PRECEDENCE = {
    "|": 8, "^": 9, "&": 10, "<<": 11, ">>": 11, "+": 12, "-": 12,
    "*": 13, "/": 13, "//": 13, "%": 13, "@": 13, "**": 15,
}
UNARY_PRECEDENCE = 14


@dataclass(frozen=True)
class Header:
    """What the plan's first lines say about it."""

    operator: str  # "examples/ensemble.py:Ensemble"
    strategy: str
    signature: str
    structure: str


class Emitter:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes = {n.name: n for n in graph.nodes}
        self.calls = graph.calls
        self.index = {c.name: i for i, c in enumerate(self.calls)}
        self.modules: set[str] = set()
        self._deps: dict[str, frozenset[str]] = {}

    # -------------------------------------------------------------- dependencies
    def step_deps(self, operands) -> tuple[int, ...]:
        found: set[str] = set()
        for operand in operands:
            found |= self._refs(operand)
        return tuple(sorted(self.index[name] for name in found))

    def _refs(self, operand) -> frozenset[str]:
        if not isinstance(operand, Ref):
            return frozenset()
        name = operand.name
        if name not in self._deps:
            node = self.nodes[name]
            if isinstance(node, OperatorCall):
                result = frozenset({name})
            elif isinstance(node, Glue):
                result = frozenset().union(*(self._refs(o) for o in node.operands))
            else:
                result = frozenset()
            self._deps[name] = result
        return self._deps[name]

    # -------------------------------------------------------------- expressions
    def expr(self, operand, need: int = 0) -> str:
        text, precedence = self.render(operand)
        return f"({text})" if precedence < need else text

    def render(self, operand) -> tuple[str, int]:
        if isinstance(operand, Const):
            return repr(operand.value), ATOM if not isinstance(operand.value, (int, float)) or operand.value >= 0 else UNARY_PRECEDENCE
        if isinstance(operand, Static):
            if not operand.path:
                return "ops", ATOM
            return ("ops" + operand.path) if operand.path.startswith("[") else f"ops.{operand.path}", ATOM
        if isinstance(operand, Global):
            if operand.module == "builtins":
                return operand.qualname, ATOM
            self.modules.add(operand.module)
            return ".".join(p for p in (operand.module, operand.qualname) if p), ATOM
        node = self.nodes[operand.name]
        if isinstance(node, (Input, OperatorCall)):
            return node.name, ATOM
        return self.glue(node)

    def glue(self, node: Glue) -> tuple[str, int]:
        op, ops, e = node.op, node.operands, self.expr
        if op == "getitem":
            return f"{e(ops[0], ATOM)}[{e(ops[1])}]", ATOM
        if op == "getattr":
            return f"{e(ops[0], ATOM)}.{node.detail}", ATOM
        if op == "slice":
            parts = [("" if isinstance(o, Const) and o.value is None else e(o)) for o in ops[1:]]
            return f"{e(ops[0], ATOM)}[{':'.join(parts)}]", ATOM
        if op == "list":
            return "[" + ", ".join(e(o) for o in ops) + "]", ATOM
        if op == "tuple":
            return "(" + ", ".join(e(o) for o in ops) + ("," if len(ops) == 1 else "") + ")", ATOM
        if op == "set":
            return ("{" + ", ".join(e(o) for o in ops) + "}") if ops else "set()", ATOM
        if op == "dict":
            pairs = [f"{e(ops[i])}: {e(ops[i + 1])}" for i in range(0, len(ops), 2)]
            return "{" + ", ".join(pairs) + "}", ATOM
        if op == "binop":
            p = BINARY_PRECEDENCE[node.detail]
            left, right = (p + 1, p) if node.detail == "**" else (p, p + 1)
            return f"{e(ops[0], left)} {node.detail} {e(ops[1], right)}", p
        if op == "unary":
            return f"{node.detail}{e(ops[0], UNARY_PRECEDENCE)}", UNARY_PRECEDENCE
        if op == "not":
            return f"not {e(ops[0], NOT)}", NOT
        if op == "truth":
            return f"bool({e(ops[0])})", ATOM
        if op in ("compare", "contains", "is"):
            return f"{e(ops[0], COMPARE + 1)} {node.detail} {e(ops[1], COMPARE + 1)}", COMPARE
        if op in ("format", "string"):
            return self.fstring(node), ATOM
        npos = len(ops) - len(node.keys)
        args = [e(o) for o in ops[:npos]]
        kwargs = [f"{k}={e(o)}" for k, o in zip(node.keys, ops[npos:])]
        if op == "call":
            return f"{e(args and ops[0], ATOM)}({', '.join(args[1:] + kwargs)})", ATOM
        return f"{e(ops[0], ATOM)}.{node.detail}({', '.join(args[1:] + kwargs)})", ATOM  # method

    def fstring(self, node: Glue) -> str:
        parts = [node] if node.op == "format" else [
            self.nodes[o.name] if isinstance(o, Ref) and isinstance(self.nodes[o.name], Glue) and self.nodes[o.name].op == "format" else o
            for o in node.operands
        ]
        pieces: list[str] = []
        for part in parts:
            if isinstance(part, Const) and isinstance(part.value, str):
                text = part.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                pieces.append(text.replace("\r", "\\r").replace("\t", "\\t").replace("{", "{{").replace("}", "}}"))
                continue
            if not isinstance(part, Glue) or part.op != "format":
                return self.joined(parts)
            inner = self.expr(part.operands[0])
            spec = part.operands[1] if len(part.operands) > 1 else Const("")
            if not isinstance(spec, Const) or any(c in inner + spec.value for c in '"\\{}#\n:!'):
                return self.joined(parts)
            conv = f"!{part.detail}" if part.detail else ""
            pieces.append("{" + inner + conv + (f":{spec.value}" if spec.value else "") + "}")
        return 'f"' + "".join(pieces) + '"'

    def joined(self, parts) -> str:
        rendered = []
        for part in parts:
            if isinstance(part, Glue):  # format
                value = self.expr(part.operands[0])
                if part.detail:
                    value = f"{ {'r': 'repr', 's': 'str', 'a': 'ascii'}[part.detail]}({value})"
                spec = self.expr(part.operands[1]) if len(part.operands) > 1 else "''"
                rendered.append(f"format({value}, {spec})")
            else:
                rendered.append(self.expr(part))
        return rendered[0] if len(rendered) == 1 else "''.join([" + ", ".join(rendered) + "])"

    def call(self, node: OperatorCall) -> str:
        args = [self.expr(a) for a in node.args] + [f"{k}={self.expr(v)}" for k, v in node.kwargs]
        return f"{self.expr(node.target, ATOM)}({', '.join(args)})"

    def guard(self, node: Guard) -> str:
        value = self.nodes.get(node.value.name) if isinstance(node.value, Ref) else None
        boolean = isinstance(value, Glue) and value.op in ("truth", "not", "compare", "contains", "is")
        if boolean and node.expected is True:
            text = self.expr(node.value, NOT + 1)
            return text[5:-1] if text.startswith("bool(") and value.op == "truth" else text
        if boolean and node.expected is False:
            inner = self.expr(value.operands[0], NOT) if value.op == "truth" else self.expr(node.value, NOT)
            return f"not {inner}"
        return f"{self.expr(node.value, COMPARE + 1)} == {node.expected!r}"


def generate(graph: Graph, header: Header, required: tuple[str, ...] = ()) -> str:
    """The plan module's source for ``graph``."""
    em = Emitter(graph)
    calls = em.calls
    deps = {c.name: tuple(calls[i].name for i in em.step_deps(_call_operands(c))) for c in calls}
    waves = analysis.waves(deps) if calls else ()
    width = max((len(w) for w in waves), default=1)
    output = graph.output
    out_deps = em.step_deps((output.value,))

    body: list[str] = []
    for call in calls:
        params = ", ".join(["ops", "inputs", *(calls[i].name for i in em.step_deps(_call_operands(call)))])
        body += ["", "", f"def {call.name}({params}):", f"    # {call.loc}  {call.loc.text}".rstrip(),
                 f"    return {em.call(call)}"]
    guards = [em.guard(g) for g in graph.guards]
    if guards:
        body += ["", "", "def guard(ops, inputs):"]
        body += [f"    return {guards[0]}"] if len(guards) == 1 else (
            ["    return ("] + [f"        {'and ' if i else ''}{g}" for i, g in enumerate(guards)] + ["    )"]
        )
    out_params = ", ".join(["ops", "inputs", *(calls[i].name for i in out_deps)])
    out_text = em.expr(output.value)
    body += ["", "", f"def output({out_params}):", f"    return {out_text}"]

    run = ["", "", "def run(ops, inputs):"]
    run_lines: list[tuple[int, int]] = []  # (offset inside ``run``, step index)
    for index, call in enumerate(calls):
        run_lines.append((len(run), index))
        run.append(f"    {call.name} = {em.call(call)}")
    run_lines.append((len(run), len(calls)))
    run.append(f"    return {out_text}")

    steps = [
        f"        Step({c.name!r}, {c.name}, {em.step_deps(_call_operands(c))!r}, {str(c.loc)!r}, {c.loc.text!r}),"
        for c in calls
    ]
    head = [
        f"# ember-xcs plan: {header.operator}   strategy: {header.strategy}   ember-xcs {VERSION}",
        f"# signature: {header.signature}   structure: {header.structure}   steps: {len(calls)}"
        f"   waves: {len(waves)}   width: {width}",
        "from runtime.plan import Plan, Step",
        *(f"import {m}" for m in sorted(em.modules)),
    ]
    before_run = len(head) + len(body)
    lines_table = tuple((before_run + offset + 1, index) for offset, index in run_lines)
    tail = [
        "",
        "",
        "PLAN = Plan(",
        f"    name={header.operator.rsplit(':', 1)[-1]!r},",
        "    steps=(" if steps else "    steps=(),",
        *steps,
        *(["    ),"] if steps else []),
        f"    output=Step('output', output, {out_deps!r}),",
        "    run=run,",
        f"    required={tuple(required)!r},",
        f"    guard={'guard' if guards else 'None'},",
        f"    width={width},",
        f"    lines={lines_table!r},",
        ")",
    ]
    return "\n".join(head + body + run + tail) + "\n"


def _call_operands(call: OperatorCall):
    return (*call.args, *(v for _, v in call.kwargs))
