"""Code generation: a pure function from an IR graph to the source text of a plan module.

The text is byte-identical across runs, processes, hash seeds and Python versions: it depends only on
the graph (whose order and names are deterministic) and the header. Steps are the graph's operator
calls; glue is inlined into the step that consumes it, as the user wrote it where the ``verbatim_glue``
pass proved the text equivalent (the local names it reads are assigned first, one value per name and
function). The module defines one function per step, the guard, the output function, the
straight-line ``run`` and ``PLAN`` (``runtime.plan.Plan``).

No data is ever interpolated into code: ``check_graph`` refuses (``RenderError``) a graph holding a
name that is not an identifier, a value that is not a literal or a malformed attribute path; values are
written by ``literal``, keyword names that are not identifiers as ``**{'key': value}``, and free text
(the header, the per-step ``# file:line  source`` comments) through ``comment``, which escapes every
character that could end the comment.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Callable, Iterator

from xcs.compiler import analysis
from xcs.compiler.glue import ATOM, COMPARE, CONVERSIONS, NOT, RULES, UNARY
from xcs.compiler.ir import (
    LOOP_END, LOOP_NEXT, Batching, Branch, Call, Const, Function, Global, Glue, Graph, Guard, Input, Kernel, Loop,
    MapRegion, OperatorCall, Ref, Static, Try, With, is_literal, operands, walk,
)
from xcs.compiler.errors import JitError

VERSION = "0.1.0"
CODEGEN_VERSION = "8"  # bump whenever the generated text changes for the same graph
RESERVED = frozenset({"ops", "inputs", "run", "guard", "output", "PLAN", "Plan", "Step", "njit", "numpy_function"}) | frozenset(
    keyword.kwlist
) | frozenset(dir(builtins))


class RenderError(JitError):
    """A graph holds something codegen cannot write as a literal or a validated identifier (a name
    that is not an identifier, a value that is not a literal, a malformed attribute path)."""


# ---------------------------------------------------------------------- text that reaches a plan
# Codegen never interpolates data into code: values are written with ``literal`` (``repr`` of a proven
# literal), names with ``identifier``, attribute paths and module names after ``check_graph`` validated
# them, and free text (headers, the per-step ``# file:line  source`` comments) through ``comment``.
def comment(text: str) -> str:
    """``text`` for a ``#`` comment: every character that is not printable (control characters, line
    and paragraph separators, format characters) escaped as in a string literal, so the comment cannot
    end before the line does."""
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    """A non-printable character as a string literal spells it: ``\\n``, ``\\x00``, ``\\u2028``."""
    return repr(char)[1:-1]


def literal(value) -> str:
    """``repr(value)`` of a literal (``ir.is_literal``: None, bool, int, finite float, str, bytes, tuples
    of them): text that evaluates back to an equal value and cannot carry code."""
    if not is_literal(value):
        raise RenderError(f"a {type(value).__name__} value is not a literal a plan can contain")
    return repr(value)


def is_identifier(name: str) -> bool:
    """A Python identifier the plan may write: not a keyword, and NFKC-normalised (the parser would
    otherwise read it as another name)."""
    return (
        isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
        and unicodedata.normalize("NFKC", name) == name
    )


def identifier(name: str) -> str:
    """``name`` when ``is_identifier``; else ``RenderError``."""
    if not is_identifier(name):
        raise RenderError(f"{name!r} is not an identifier a plan can use")
    return name


def keyword_argument(key: str, value: str) -> str:
    """``key=value``, or ``**{'key': value}`` for a key that is not an identifier (``f(**inputs)``
    with keys from data), in place, so the callee sees the keywords in the same order."""
    return f"{key}={value}" if is_identifier(key) else f"**{{{literal(key)}: {value}}}"


@lru_cache(maxsize=4096)
def _static_path(path: str) -> None:
    """Check that ``ops.<path>`` is attribute access and subscripts by literals, nothing else."""
    text = "ops" + ("" if path.startswith("[") else ".") + path
    try:
        tree = ast.parse(text, mode="eval").body if text.isprintable() else None
    except SyntaxError:
        tree = None
    while isinstance(tree, (ast.Attribute, ast.Subscript)):
        if isinstance(tree, ast.Attribute):
            identifier(tree.attr)
        else:
            key = tree.slice
            if isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub):
                key = key.operand
            if not isinstance(key, ast.Constant) or not is_literal(key.value):
                tree = None
                break
        tree = tree.value
    if not (isinstance(tree, ast.Name) and tree.id == "ops"):
        raise RenderError(f"{path!r} is not an attribute path a plan can contain")


def check_graph(graph: Graph) -> None:
    """Raise ``RenderError`` unless every name, key, path and value of ``graph`` renders as an
    identifier or a literal (see ``comment``, ``literal``, ``identifier``)."""
    for node in walk(graph.nodes):
        identifier(node.name)
        if isinstance(node, MapRegion):
            identifier(node.item)
            if node.batch is not None:
                for f in fields(node.batch):
                    literal(getattr(node.batch, f.name))
        elif isinstance(node, Function):
            for param in node.params:
                identifier(param)
        elif isinstance(node, With):
            identifier(node.entered)
        elif isinstance(node, Loop):
            for name in (*node.params, *((node.item,) if node.over is not None else ())):
                identifier(name)
        elif isinstance(node, Try):
            for h in node.handlers:
                if h.bound:
                    identifier(h.bound)
        elif isinstance(node, Guard):
            literal(node.expected)
        elif isinstance(node, Glue):
            if node.op in ("getattr", "method"):
                identifier(node.detail)
            elif RULES[node.op].details is not None and node.detail not in RULES[node.op].details:
                raise RenderError(f"{node.name}: {node.detail!r} is not a {node.op} operator")
            for key in node.keys:
                literal(key)
            if node.text and not node.text.isprintable():
                raise RenderError(f"{node.name}: verbatim text must be one printable line")
        elif isinstance(node, Kernel):
            identifier(node.function)
            literal(node.signature)
            for module in node.modules:
                identifier(module)
        elif isinstance(node, (OperatorCall, Call)):
            for key, _ in node.kwargs:
                literal(key)
            if isinstance(node, Call) and node.source is not None:
                for part in node.source.module.split("."):
                    identifier(part)
        for name in getattr(node, "after", ()):
            identifier(name)
        for operand in operands(node):
            if isinstance(operand, Const):
                literal(operand.value)
            elif isinstance(operand, Static) and operand.path:
                _static_path(operand.path)
            elif isinstance(operand, Global):
                for part in (*operand.module.split("."), *(operand.qualname.split(".") if operand.qualname else ())):
                    identifier(part)


@dataclass(frozen=True)
class Header:
    """What the plan's first lines say about it."""

    operator: str  # "examples/ensemble.py:Ensemble"
    strategy: str
    signature: str
    structure: str


def is_step(node) -> bool:
    """Operator calls and regions that contain them are scheduled; a pure region is inline glue."""
    if isinstance(node, (OperatorCall, Call, Kernel, With, Loop, Try)) or (isinstance(node, Glue) and node.hoisted):
        return True
    if isinstance(node, MapRegion):
        return node.batch is not None or node.hoisted or any(is_step(n) for n in node.body)
    return isinstance(node, Branch) and any(is_step(n) for n in node.then_body + node.else_body)


def batch_options(batch: Batching) -> str:
    """``map_batch``'s arguments after the body and inputs: the label, then the options that are set."""
    options = [literal(batch.label)]
    for f in fields(batch)[1:]:
        value = getattr(batch, f.name)
        if value != f.default:
            options.append(f"{f.name}={literal(value)}")
    return ", ".join(options)


@lru_cache(maxsize=1024)
def _precedence(text: str) -> int:
    """How tightly an expression's text binds: atoms (names, calls, subscripts, displays, literals)
    need no parentheses inside another expression; anything else gets them."""
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ATOMS) and not (isinstance(tree, ast.Tuple) and not text.startswith("(")):
        return ATOM
    return 0


FSTRING_TEXT = {"\\": "\\\\", '"': '\\"', "{": "{{", "}": "}}"}  # a literal part of an f"..." string

ATOMS = (
    ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr,
)


class Emitter:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes = {n.name: n for n in walk(graph.nodes)}
        self.items = {n.item for n in self.nodes.values() if isinstance(n, MapRegion)} | {
            p for n in self.nodes.values() if isinstance(n, Function) for p in n.params} | {
            n.entered for n in self.nodes.values() if isinstance(n, With)} | {
            p for n in self.nodes.values() if isinstance(n, Loop) for p in (*n.params, n.item) if p} | {
            h.bound for n in self.nodes.values() if isinstance(n, Try) for h in n.handlers if h.bound}
        self.calls = tuple(n for n in graph.nodes if is_step(n))
        self.index = {c.name: i for i, c in enumerate(self.calls)}
        regions = [n for n in self.nodes.values() if isinstance(n, MapRegion) and is_step(n)]
        mapped = [n for n in regions if n.batch is None and any(is_step(b) for b in n.body)]  # run by map_each
        self.uses_map = bool(mapped)
        self.uses_skip = any(n.keep is not None for n in mapped)
        self.uses_batch = any(n.batch is not None for n in regions)
        self.uses_together = False  # a loop runs independent steps of one iteration at once (``loop``)
        self.uses_proceed = False  # a loop checks that its call goes on before each iteration
        self.locals: dict[str, str] = {}  # ``local``: names the plan makes for its loops
        self.grouped = _grouped(graph.nodes)  # branches whose sides group steps (``together``), as a loop's body
        self.modules: set[str] = set()
        self._deps: dict[str, frozenset[str]] = {}
        # verbatim glue: the names its binds may not take, the current function's assignments
        # (name -> text; None where no statement can precede the expression) and the statement's prelude
        globals_ = {o.module.split(".")[0] for n in self.nodes.values() for o in operands(n) if isinstance(o, Global)}
        self.taken = set(self.nodes) | self.items | RESERVED | globals_ | {"map_each", "map_batch", "SKIP", "together", "proceed"}
        # a module whose name a step took (a step ``random`` of ``random.random()``): imported under an alias
        modules = sorted({o.module for n in self.nodes.values() for o in operands(n) if isinstance(o, Global)})
        self.alias: dict[str, str] = {}
        for module in modules:
            if module.split(".")[0] in self.nodes or module.split(".")[0] in self.items:
                alias = module.replace(".", "_") + "_module"
                while alias in self.taken:
                    alias += "_"
                self.taken.add(alias)
                self.alias[module] = alias
        self.bound: dict[str, str] | None = None
        self.guarding = False  # rendering the guard: it runs before any step, so nothing is a step's result
        self.prelude: list[str] = []

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
            node = self.nodes.get(name)
            if name in self.index:
                result = frozenset({name})
            elif isinstance(node, (Glue, OperatorCall, Call, MapRegion, Branch, Kernel, Function, With, Loop, Try)):  # glue, or a region's inside
                result = frozenset().union(*(self._refs(o) for o in operands(node)))
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
            return literal(operand.value), ATOM if not isinstance(operand.value, (int, float)) or operand.value >= 0 else UNARY
        if isinstance(operand, Static):
            if not operand.path:
                return "ops", ATOM
            return ("ops" + operand.path) if operand.path.startswith("[") else f"ops.{operand.path}", ATOM
        if isinstance(operand, Global):
            if operand.module == "builtins":
                return operand.qualname, ATOM
            self.modules.add(operand.module)
            module = self.alias.get(operand.module, operand.module)
            return ".".join(p for p in (module, operand.qualname) if p), ATOM
        node = self.nodes.get(operand.name)
        if isinstance(node, MapRegion) and not is_step(node):  # pure glue per element: a comprehension
            return self.comprehension(node, node.generator), ATOM
        if isinstance(node, Function):  # a lambda: its body's glue, inline
            with self.scope(None):
                return f"lambda {', '.join(node.params)}: {self.expr(node.result)}", 0
        if node is None or isinstance(node, (Input, OperatorCall, Call, MapRegion, Branch, Kernel, With, Loop, Try)) or (node.hoisted and not self.guarding):
            return operand.name, ATOM  # a map element, an input, a step, a region's result, hoisted glue
        return self.glue_text(node)

    def comprehension(self, node: MapRegion, generator: bool) -> str:
        """A map region whose elements run no step, as a list comprehension or generator expression."""
        with self.scope(None):  # no statement can run per element here
            result, keep = self.kept(node)
            keep = f" if {keep}" if keep else ""
        text = f"{result} for {node.item} in {self.expr(node.over)}{keep}"
        return f"({text})" if generator else f"[{text}]"

    # -------------------------------------------------------------- verbatim glue
    def glue_text(self, node: Glue) -> tuple[str, int]:
        """The user's own text of ``node`` where it carries one and its names can be assigned before
        the statement (``verbatim_glue``); else the rendering from the IR."""
        if node.text and self.bound is not None:
            text = self.verbatim(node)
            if text is not None:
                return text, _precedence(text)
        return self.glue(node)

    def verbatim(self, node: Glue) -> str | None:
        if any(name in self.taken and operand != Ref(name) for name, operand in node.binds):
            return None
        for name, operand in node.binds:
            text = self.expr(operand)
            have = self.bound.get(name)
            if text == name or have == text:
                continue
            if have is not None:  # the name holds something else in this function already
                return None
            self.bound[name] = text
            self.prelude.append(f"{name} = {text}")
        return node.text

    @contextmanager
    def scope(self, bound: dict[str, str] | None) -> Iterator[None]:
        """Render with ``bound`` as the current function's assignments (None: verbatim off)."""
        outer, self.bound = self.bound, bound
        try:
            yield
        finally:
            self.bound = outer

    def inner(self) -> dict[str, str] | None:
        """The assignments a nested block starts with: the enclosing ones (a copy)."""
        return None if self.bound is None else dict(self.bound)

    def line(self, indent: str, make: Callable[[], str]) -> list[str]:
        """One statement (``make()`` renders it), after the assignments its verbatim glue reads."""
        outer, self.prelude = self.prelude, []
        try:
            text = make()
            return [f"{indent}{p}" for p in self.prelude] + [f"{indent}{text}"]
        finally:
            self.prelude = outer

    def glue(self, node: Glue) -> tuple[str, int]:
        """``node`` written from the IR (``glue.RULES``); picking a side's value of a pure branch is a
        conditional expression."""
        first = node.operands[0] if node.op == "getitem" else None
        chosen = self.nodes.get(first.name) if isinstance(first, Ref) else None
        if isinstance(chosen, Branch) and not is_step(chosen):  # a pure branch: inline
            i = node.operands[1].value
            with self.scope(None):  # a side's assignments would run whichever side is taken
                e = self.expr
                text = f"{e(chosen.then_out[i], 1)} if {self.condition(chosen.cond, 1)} else {e(chosen.else_out[i], 0)}"
            return text, 0
        rule = RULES[node.op]
        return rule.render(self, node), rule.binds(node.detail)

    def arguments(self, args, values, keys) -> str:
        """A call's argument list: ``args`` positionally, then ``values`` as keywords named by ``keys``
        (a generator expression alone needs no parentheses of its own: ``sum(x for x in xs)``)."""
        if len(args) == 1 and not values:
            text = self.expr(args[0])
            node = self.nodes.get(args[0].name) if isinstance(args[0], Ref) else None
            return text[1:-1] if isinstance(node, MapRegion) and node.generator and not is_step(node) else text
        return ", ".join([self.expr(a) for a in args] + [keyword_argument(k, self.expr(v)) for k, v in zip(keys, values)])

    def fstring(self, node: Glue) -> str:
        parts = [node] if node.op == "format" else [
            self.nodes[o.name] if isinstance(o, Ref) and isinstance(self.nodes[o.name], Glue)
            and self.nodes[o.name].op == "format" and not self.nodes[o.name].hoisted else o  # a hoisted part: its step
            for o in node.operands
        ]
        pieces: list[str] = []
        for part in parts:
            if isinstance(part, Const) and isinstance(part.value, str):
                pieces.append("".join(FSTRING_TEXT.get(c) or (c if c.isprintable() else _escape(c)) for c in part.value))
                continue
            if not isinstance(part, Glue) or part.op != "format":
                return self.joined(parts)
            with self.scope(None):  # the user's text may use the f-string's own quote
                inner = self.expr(part.operands[0])
            spec = part.operands[1] if len(part.operands) > 1 else Const("")
            if not isinstance(spec, Const) or not (inner + spec.value).isprintable() or any(
                c in inner + spec.value for c in '"\\{}#:!'
            ):
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
                    value = f"{CONVERSIONS[part.detail].__name__}({value})"
                spec = self.expr(part.operands[1]) if len(part.operands) > 1 else "''"
                rendered.append(f"format({value}, {spec})")
            else:
                rendered.append(self.expr(part))
        return rendered[0] if len(rendered) == 1 else "''.join([" + ", ".join(rendered) + "])"

    def statements(self, nodes, indent: str) -> list[str]:
        """The statements that compute the steps among ``nodes`` (glue is inlined where used)."""
        lines: list[str] = []
        for node in nodes:
            if isinstance(node, (OperatorCall, Call, Kernel)):
                lines += self.line(indent, lambda: f"{node.name} = {self.call(node)}")
            elif isinstance(node, Glue) and node.hoisted:
                lines += self.line(indent, lambda: f"{node.name} = {self.glue_text(node)[0]}")
            elif isinstance(node, (MapRegion, Branch, With, Try)) and is_step(node):
                lines += self.region(node, indent, assign=node.name)
            elif isinstance(node, Loop):
                lines += self.loop(node, indent, f"{node.name} =")
        return lines

    def region(self, node, indent: str, assign: str = "", returns: bool = False) -> list[str]:
        """A map region (a per-element function and ``map_each``), a branch (``if``/``else``) or a
        ``with`` statement."""
        target = "return" if returns else f"{assign} ="
        inner = indent + "    "
        if isinstance(node, With):  # the user's with statement around the body's steps
            lines = self.line(indent, lambda: f"with {self.expr(node.manager)} as {node.entered}:")
            with self.scope(self.inner()):
                lines += self.statements(node.body, inner)
                lines += self.line(inner, lambda: f"{target} {self.tuple(node.outs)}")
            return lines
        if isinstance(node, Try):
            return self.try_statement(node, indent, target)
        if isinstance(node, MapRegion) and node.batch is None and not any(is_step(n) for n in node.body):
            return self.line(indent, lambda: f"{target} {self.comprehension(node, False)}")  # hoisted: a list now
        if isinstance(node, MapRegion):
            fn = f"{node.name}_body"
            lines = [f"{indent}def {fn}({node.item}):"]
            with self.scope(self.inner()):
                lines += self.statements(node.body, inner)
                if node.keep is not None:  # a filter: an element whose condition is false is left out
                    lines += self.line(inner, lambda: "return {} if {} else SKIP".format(*self.kept(node)))
                else:
                    lines += self.line(inner, lambda: f"return {self.kept(node)[0]}")
            if node.batch is not None:
                return lines + self.line(
                    indent, lambda: f"{target} map_batch({fn}, {self.expr(node.over)}, {batch_options(node.batch)})"
                )
            return lines + self.line(indent, lambda: f"{target} map_each({fn}, {self.expr(node.over)})")
        lines = self.line(indent, lambda: f"if {self.condition(node.cond)}:")
        with self.scope(self.inner()):
            lines += self.block(node, node.then_body, inner)
            lines += self.line(inner, lambda: f"{target} {self.tuple(node.then_out)}")
        if not returns:
            lines.append(f"{indent}else:")
        side = indent if returns else inner
        with self.scope(self.inner()):
            lines += self.block(node, node.else_body, side)
            lines += self.line(side, lambda: f"{target} {self.tuple(node.else_out)}")
        return lines

    def try_statement(self, node: Try, indent: str, target: str) -> list[str]:
        """The user's ``try`` statement around the body's steps: each path assigns the region's value
        (its outputs) to the region's name; ``finally`` adds its own after."""
        inner = indent + "    "

        def block(head: str, body: tuple, tail: Callable[[], str] | None) -> list[str]:
            lines = [f"{indent}{head}"]
            with self.scope(self.inner()):
                lines += self.statements(body, inner)
                if tail is not None:
                    lines += self.line(inner, tail)
            return lines if len(lines) > 1 else lines + [f"{inner}pass"]

        outs = lambda: f"{node.name} = {self.tuple(node.outs)}"  # noqa: E731 - names only: glue is hoisted
        lines = block("try:", node.body, None if node.else_body else outs)
        for h in node.handlers:
            head = "except" + (f" {self.expr(h.types, ATOM)}" if h.types is not None else "") + (f" as {h.bound}" if h.bound else "") + ":"
            lines += block(head, h.body, lambda h=h: self.handler_end(node, h))
        if node.else_body:
            lines += block("else:", node.else_body, outs)
        if node.final_body or not node.handlers:
            lines += block("finally:", node.final_body, None)
        value = f"{node.name} + {self.tuple(node.final_outs)}" if node.final_outs else node.name
        return lines if target == f"{value} =" else lines + [f"{indent}{target} {value}"]

    def handler_end(self, node: Try, h) -> str:
        """How a handler ends: raising (again) or assigning the region's value."""
        if h.reraise:
            return "raise"
        if h.raises is not None:
            cause = f" from {self.expr(h.cause)}" if h.cause is not None else ""
            return f"raise {self.expr(h.raises)}{cause}"
        return f"{node.name} = {self.tuple(h.outs)}"

    def kept(self, node: MapRegion) -> tuple[str, str]:
        """A map region's per-element value and, for a filter, its condition ("" when it keeps every
        element). A filter's branch whose sides only choose the value is written as the comprehension's
        ``if``: ``[c for c in chunks if c.strip()]``."""
        result = node.result
        if node.keep is None:
            return (self.expr(result) if result is not None else "None"), ""
        flag, value = (self.nodes.get(o.name) if isinstance(o, Ref) else None for o in (node.keep, result))
        if isinstance(flag, Glue) and flag.op == "getitem" and not flag.hoisted:
            chosen = self.nodes.get(flag.operands[0].name) if isinstance(flag.operands[0], Ref) else None
            if isinstance(chosen, Branch) and not is_step(chosen):
                i = flag.operands[1].value
                side = {(Const(True), Const(False)): 0, (Const(False), Const(True)): 1}.get(
                    (chosen.then_out[i], chosen.else_out[i]))
                same = isinstance(value, Glue) and value.op == "getitem" and value.operands[0] == flag.operands[0]
                if side is not None and same and not value.hoisted:
                    j = value.operands[1].value
                    cond = self.condition(chosen.cond, 1) if side == 0 else f"not {self.condition(chosen.cond, NOT)}"
                    return self.expr((chosen.then_out, chosen.else_out)[side][j], 1), cond
        return self.expr(result, 1), self.condition(node.keep, 1)

    def condition(self, operand, need: int = 0) -> str:
        """``operand`` in a boolean context: ``bool(x)`` is written ``x``."""
        node = self.nodes.get(operand.name) if isinstance(operand, Ref) else None
        if isinstance(node, Glue) and node.op == "truth" and (not node.hoisted or self.guarding):
            return self.expr(node.operands[0], max(need, NOT + 1))
        return self.expr(operand, need)

    def tuple(self, outs) -> str:
        return "(" + ", ".join(self.expr(o) for o in outs) + ("," if len(outs) == 1 else "") + ")"

    def step_body(self, node, indent: str) -> list[str]:
        if isinstance(node, (OperatorCall, Call, Kernel)):
            return self.line(indent, lambda: f"return {self.call(node)}")
        if isinstance(node, Glue):
            return self.line(indent, lambda: f"return {self.glue_text(node)[0]}")
        if isinstance(node, Loop):
            return self.loop(node, indent, "return")
        return self.region(node, indent, returns=True)

    # -------------------------------------------------------------- loops
    def loop(self, node: Loop, indent: str, target: str) -> list[str]:
        """A loop region: a function of one iteration (and of the ``else`` block), called by a real
        ``while``/``for`` loop until an iteration's status is not ``LOOP_NEXT``."""
        inner, name = indent + "    ", node.name
        status, value, iteration, otherwise = (self.local(f"{name}_{part}") for part in ("status", "value", "iteration", "else"))
        state = ", ".join((status, *node.params, value))
        carried = ", ".join(node.params)
        element = (node.item,) if node.over is not None else ()
        lines = [f"{indent}def {iteration}({', '.join((*element, *node.params))}):"]
        with self.scope({}):
            lines += self.together(node.body, inner)
            lines += self.line(inner, lambda: f"return {self.expr(node.result)}")
        if node.else_result is not None:
            lines.append(f"{indent}def {otherwise}({carried}):")
            with self.scope({}):
                lines += self.statements(node.else_body, inner)
                lines += self.line(inner, lambda: f"return {self.expr(node.else_result)}")
        with self.scope(None):
            init = ", ".join(self.expr(o) for o in node.init)
        lines.append(f"{indent}{state} = {', '.join((str(LOOP_NEXT), *([init] if init else []), 'None'))}")
        self.uses_proceed = True
        if node.over is None:
            lines.append(f"{indent}while {status} == {LOOP_NEXT}:")
            lines.append(f"{inner}proceed()")
            lines.append(f"{inner}{state} = {iteration}({carried})")
        else:
            lines += self.line(indent, lambda: f"for {node.item} in {self.expr(node.over)}:")
            lines.append(f"{inner}proceed()")
            lines.append(f"{inner}{state} = {iteration}({', '.join((node.item, *node.params))})")
            lines += [f"{inner}if {status} != {LOOP_NEXT}:", f"{inner}    break"]
        if node.else_result is not None:  # the loop ended without break or return
            lines.append(f"{indent}if {status} in ({LOOP_NEXT}, {LOOP_END}):")
            lines.append(f"{inner}{state} = {otherwise}({carried})")
        return lines + [f"{indent}{target} ({state})"]

    def block(self, branch: Branch, body: tuple, indent: str) -> list[str]:
        """A side's statements: grouped (``together``) for a branch of a loop's iteration."""
        return self.together(body, indent) if branch.name in self.grouped else self.statements(body, indent)

    def together(self, body: tuple, indent: str) -> list[str]:
        """The statements of one iteration: steps that depend on no other step of the group run
        together (``runtime.loops.together``); effects and reads of state stay in program order (the
        capture orders them with ``after``)."""
        steps = [n for n in body if is_step(n)]
        names = {n.name for n in steps}
        local = {n.name: n for n in body}
        level: dict[str, int] = {}

        def reads(operand, found: set[str]) -> None:
            if isinstance(operand, Ref) and operand.name in local and operand.name not in found:
                found.add(operand.name)
                if operand.name not in names:
                    for o in operands(local[operand.name]):
                        reads(o, found)

        for step in steps:
            found: set[str] = set()
            for o in operands(step):
                reads(o, found)
            level[step.name] = 1 + max((level[n] for n in found & names if n in level), default=-1)
        waves = [[s for s in steps if level[s.name] == k] for k in range(max(level.values(), default=-1) + 1)]
        if all(len(w) <= 1 for w in waves):
            return self.statements(body, indent)
        self.uses_together = True
        lines: list[str] = []
        for wave in waves:
            if len(wave) == 1:
                lines += self.statements(tuple(wave), indent)
                continue
            made = [self.local(f"{step.name}_step") for step in wave]
            for step, fn in zip(wave, made):
                lines.append(f"{indent}def {fn}():")
                with self.scope(self.inner()):
                    lines += self.step_body(step, indent + "    ")
            lines.append(f"{indent}{', '.join(s.name for s in wave)} = together({', '.join(made)})")
        return lines

    def local(self, base: str) -> str:
        """A name of the plan's own (a loop's functions and state) that no node, element or global
        takes: ``base``, else with ``_`` appended; the same each time ``base`` is asked for."""
        if base not in self.locals:
            name = base
            while name in self.taken:
                name += "_"
            self.taken.add(name)
            self.locals[base] = name
        return self.locals[base]

    def call(self, node: OperatorCall | Call | Kernel) -> str:
        if isinstance(node, Kernel):
            return f"{node.function}({', '.join(self.expr(a) for a in node.args)})"
        args = self.arguments(node.args, [v for _, v in node.kwargs], [k for k, _ in node.kwargs])
        if isinstance(node, Call) and node.source is not None:
            return f"{node.name}_code({args})"
        target = node.target if isinstance(node, OperatorCall) else node.func
        return f"{self.expr(target, ATOM)}({args})"

    def guard(self, node: Guard) -> str:
        value = self.nodes.get(node.value.name) if isinstance(node.value, Ref) else None
        boolean = isinstance(value, Glue) and value.op in ("truth", "not", "compare", "contains", "is")
        if boolean and node.expected is True:
            text = self.expr(node.value, NOT + 1)
            return text[5:-1] if text.startswith("bool(") and value.op == "truth" else text
        if boolean and node.expected is False:
            inner = self.expr(value.operands[0], NOT) if value.op == "truth" else self.expr(node.value, NOT)
            return f"not {inner}"
        return f"{self.expr(node.value, COMPARE + 1)} == {literal(node.expected)}"


def generate(graph: Graph, header: Header, required: tuple[str, ...] = ()) -> str:
    """The plan module's source for ``graph``."""
    check_graph(graph)
    em = Emitter(graph)
    calls = em.calls
    step_deps = [em.step_deps(_step_operands(c)) for c in calls]
    deps = step_dependencies(graph, em)
    waves = analysis.waves(deps) if calls else ()
    width = max((len(w) for w in waves), default=1)
    output = graph.output
    out_deps = em.step_deps(operands(output))

    body: list[str] = []
    segments = [n for n in walk(graph.nodes) if isinstance(n, Call) and n.source is not None]
    for seg in segments:  # the user's statements that run natively, defined with their module's globals
        src = seg.source
        body += ["", "", f"# {comment(f'{seg.loc}  {seg.loc.text}')}".rstrip(), f"{seg.name}_code = segment("]
        body += [f"    {src.module!r}, {src.line}, {seg.name!r},"]
        body += [f"    {line!r}" for line in src.text.splitlines(keepends=True)]
        body += [")"]
    kernels = [n for n in graph.nodes if isinstance(n, Kernel)]
    functions = sorted({pair for kernel in kernels for pair in kernel.numpy_functions})
    if functions:
        body += [""] + [f"{identifier(glob)} = numpy_function({literal(name)})" for glob, name in functions]
    for kernel in kernels:  # numeric segments: numba-compiled (xcs.runtime.kernels.njit) or Python
        em.modules.update(kernel.modules)
        body += ["", "", f"# {comment(f'{kernel.name}: ' + ', '.join(kernel.members))}", f"@njit({literal(kernel.signature)})"]
        body += kernel.text.splitlines()
    for call, dep in zip(calls, step_deps):
        params = ", ".join(["ops", "inputs", *(calls[i].name for i in dep)])
        body += ["", "", f"def {call.name}({params}):", f"    # {comment(f'{call.loc}  {call.loc.text}')}".rstrip()]
        with em.scope({}):
            body += em.step_body(call, "    ")
    em.guarding = True
    guards = [em.guard(g) for g in graph.guards]
    em.guarding = False
    if guards:
        body += ["", "", "def guard(ops, inputs):"]
        body += [f"    return {guards[0]}"] if len(guards) == 1 else (
            ["    return ("] + [f"        {'and ' if i else ''}{g}" for i, g in enumerate(guards)] + ["    )"]
        )
    out_params = ", ".join(["ops", "inputs", *(calls[i].name for i in out_deps)])
    body += ["", "", f"def output({out_params}):"]
    with em.scope({}):
        body += em.line("    ", lambda: f"return {em.expr(output.value)}")

    run = ["", "", "def run(ops, inputs):"]
    run_lines: list[tuple[int, int]] = []  # (offset inside ``run``, step index)
    with em.scope({}):
        for index, call in enumerate(calls):
            run_lines.append((len(run), index))
            run += em.statements((call,), "    ")
        run_lines.append((len(run), len(calls)))
        run += em.line("    ", lambda: f"return {em.expr(output.value)}")

    steps = [
        f"        Step({literal(c.name)}, {c.name}, {literal(d)}, {literal(str(c.loc))}, {literal(c.loc.text)}),"
        for c, d in zip(calls, step_deps)
    ]
    uses = (("SKIP", em.uses_skip), ("map_batch", em.uses_batch), ("map_each", em.uses_map))
    batching = [name for name, used in uses if used]  # xcs.runtime.batching: map regions and batches
    head = [
        comment(f"# ember-xcs plan: {header.operator}   strategy: {header.strategy}   ember-xcs {VERSION}"),
        comment(
            f"# signature: {header.signature}   structure: {header.structure}   steps: {len(calls)}"
            f"   waves: {len(waves)}   width: {width}"
        ),
        "from xcs.runtime.plan import Plan, Step",
        *([f"from xcs.runtime.batching import {', '.join(batching)}"] if batching else []),
        *([f"from xcs.runtime.loops import proceed{', together' if em.uses_together else ''}"] if em.uses_proceed else []),
        *([f"from xcs.runtime.kernels import njit{', numpy_function' if functions else ''}"] if kernels else []),
        *(["from xcs.runtime.segments import segment"] if segments else []),
        *(f"import {m} as {em.alias[m]}" if m in em.alias else f"import {m}" for m in sorted(em.modules)),
    ]
    before_run = len(head) + len(body)
    lines_table = tuple((before_run + offset + 1, index) for offset, index in run_lines)
    tail = [
        "",
        "",
        "PLAN = Plan(",
        f"    name={literal(header.operator.rsplit(':', 1)[-1])},",
        "    steps=(" if steps else "    steps=(),",
        *steps,
        *(["    ),"] if steps else []),
        f"    output=Step('output', output, {out_deps!r}),",
        "    run=run,",
        f"    required={tuple(required)!r},",
        f"    guard={'guard' if guards else 'None'},",
        f"    width={width},",
        f"    lines={lines_table!r},",
        *([f"    effects={tuple(i for i, c in enumerate(calls) if _effectful(c))!r},"] if any(map(_effectful, calls)) else []),
        ")",
    ]
    return "\n".join(head + body + run + tail) + "\n"


def step_dependencies(graph: Graph, em: Emitter | None = None) -> dict[str, tuple[str, ...]]:
    """``{step: the steps it reads}`` for the steps the plan schedules, in plan order."""
    em = em or Emitter(graph)
    return {c.name: tuple(em.calls[i].name for i in em.step_deps(_step_operands(c))) for c in em.calls}


def _grouped(nodes: tuple) -> frozenset[str]:
    """The branches of loop bodies (and of their sides, recursively): their steps are ordered by
    ``after`` edges (``compiler.loops``), so the independent ones may run together."""
    found: set[str] = set()

    def sides(body: tuple) -> None:
        for node in body:
            if isinstance(node, Branch):
                found.add(node.name)
                sides(node.then_body)
                sides(node.else_body)

    for node in walk(nodes):
        if isinstance(node, Loop):
            sides(node.body)
    return frozenset(found)


def _effectful(node) -> bool:
    """Whether a step runs code with effects (a ``Call``, a ``with`` block, or a region holding one)."""
    return any(isinstance(n, (Call, With)) for n in walk((node,)))


def _step_operands(node):
    """What a step reads: a call's arguments, or everything a region reads from outside it."""
    if isinstance(node, Kernel):
        return node.args
    if isinstance(node, (OperatorCall, Call)):
        after = tuple(Ref(name) for name in node.after)
        return (*node.args, *(v for _, v in node.kwargs), *after, *((node.func,) if isinstance(node, Call) else ()))
    return operands(node)
