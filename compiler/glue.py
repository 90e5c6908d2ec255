"""The meaning of every glue operation, in one table: op name -> ``Rule`` (evaluate, render, precedence).

``RULES`` is used by everything that gives a ``Glue`` node meaning: the tracer folds static glue with
``evaluate``, the reference interpreter (``compiler.oracle``) and constant folding
(``passes.fold_constants``) run it with ``evaluate``, and codegen writes it with ``render``, wrapping
an operand in parentheses when its ``precedence`` is lower than its place needs. ``ir.GLUE_OPS`` is the
closed set of op names; this table holds a rule for each.

A ``render`` function gets the emitter (``codegen.Emitter``) and the node and returns the expression's
text; it writes operands with ``em.expr(operand, need)`` (parenthesised below precedence ``need``),
arguments with ``em.arguments(operands, keys)`` and f-strings with ``em.fstring(node)``.

A ``match`` statement's opcodes are glue too (``MATCH_FUNCTIONS``: ``match_mapping``, ``match_keys``,
``match_class``, ...): each is a function of ``xcs.runtime.patterns`` that does what its opcode does,
and the plan calls it as ``patterns.<function>(...)``.
"""

from __future__ import annotations

import operator as _operator
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from xcs.compiler.ir import Const, Glue
from xcs.runtime import patterns

# How tightly an expression binds (Python's grammar): an operand of lower precedence than its place
# needs is parenthesised. Atoms (names, calls, subscripts, displays, literals) never are.
ATOM, NOT, COMPARE, UNARY = 100, 6, 7, 14

# symbol -> (function, precedence)
BINARY: dict[str, tuple[Callable[[Any, Any], Any], int]] = {
    "|": (_operator.or_, 8), "^": (_operator.xor, 9), "&": (_operator.and_, 10),
    "<<": (_operator.lshift, 11), ">>": (_operator.rshift, 11), "+": (_operator.add, 12), "-": (_operator.sub, 12),
    "*": (_operator.mul, 13), "/": (_operator.truediv, 13), "//": (_operator.floordiv, 13), "%": (_operator.mod, 13),
    "@": (_operator.matmul, 13), "**": (_operator.pow, 15),
}
COMPARISONS = {
    "==": _operator.eq, "!=": _operator.ne, "<": _operator.lt, "<=": _operator.le,
    ">": _operator.gt, ">=": _operator.ge,
}
UNARIES = {"-": _operator.neg, "+": _operator.pos, "~": _operator.invert}
CONVERSIONS = {"r": repr, "s": str, "a": ascii}  # f-string ``!r``, ``!s``, ``!a``


@dataclass(frozen=True)
class Rule:
    """One glue operation: ``evaluate(detail, keys, values)`` computes it, ``render(em, node)`` writes
    it, ``precedence`` (by detail for ``binop``) is how tightly the written text binds, ``details``
    the details it accepts (None: unchecked here)."""

    evaluate: Callable[[str, tuple[str, ...], list], Any]
    render: Callable[[Any, Glue], str]
    precedence: int | Mapping[str, int] = ATOM
    details: frozenset[str] | None = None

    def binds(self, detail: str) -> int:
        """The precedence of this operation's text for ``detail``."""
        return self.precedence if isinstance(self.precedence, int) else self.precedence[detail]


def _split(keys: tuple[str, ...], values: list) -> tuple[list, dict]:
    """A call's positional values and keyword values (the last ``len(keys)`` values)."""
    npos = len(values) - len(keys)
    return values[:npos], dict(zip(keys, values[npos:]))


def _call(detail: str, keys: tuple[str, ...], values: list) -> Any:
    args, kwargs = _split(keys, values)
    return args[0](*args[1:], **kwargs)


def _method(detail: str, keys: tuple[str, ...], values: list) -> Any:
    args, kwargs = _split(keys, values)
    return getattr(args[0], detail)(*args[1:], **kwargs)


def _format(detail: str, keys: tuple[str, ...], values: list) -> Any:
    value = CONVERSIONS[detail](values[0]) if detail else values[0]
    return format(value, values[1] if len(values) > 1 else "")


def _render_slice(em: Any, node: Glue) -> str:
    ops = node.operands
    parts = [("" if isinstance(o, Const) and o.value is None else em.expr(o)) for o in ops[1:]]
    return f"{em.expr(ops[0], ATOM)}[{':'.join(parts)}]"


def _render_binop(em: Any, node: Glue) -> str:
    p = BINARY[node.detail][1]
    left, right = (p + 1, p) if node.detail == "**" else (p, p + 1)
    return f"{em.expr(node.operands[0], left)} {node.detail} {em.expr(node.operands[1], right)}"


def _render_infix(em: Any, node: Glue) -> str:
    """``a <op> b`` for comparisons, ``in``/``not in`` and ``is``/``is not``."""
    return f"{em.expr(node.operands[0], COMPARE + 1)} {node.detail} {em.expr(node.operands[1], COMPARE + 1)}"


def _render_call(em: Any, node: Glue) -> str:
    """``f(args)``, or ``obj.method(args)``: the callee or receiver is written first, then the arguments
    (the order verbatim glue assigns their names in)."""
    npos = len(node.operands) - len(node.keys)
    callee = em.expr(node.operands[0], ATOM) + (f".{node.detail}" if node.op == "method" else "")
    return f"{callee}({em.arguments(node.operands[1:npos], node.operands[npos:], node.keys)})"


PATTERNS = "xcs.runtime.patterns"  # what a plan runs for a match statement's opcodes (``patterns.match_keys``)


def _render_pattern(em: Any, node: Glue) -> str:
    """A match opcode's function of ``xcs.runtime.patterns``, called on the operands; the plan imports
    the module as ``patterns`` (or the first free name after it)."""
    if PATTERNS not in em.alias:
        alias = "patterns"
        while alias in em.taken:
            alias += "_"
        em.taken.add(alias)
        em.alias[PATTERNS] = alias
    em.modules.add(PATTERNS)
    return f"{em.alias[PATTERNS]}.{MATCH_FUNCTIONS[node.op].__name__}({', '.join(em.expr(o) for o in node.operands)})"


# glue op -> the function of ``xcs.runtime.patterns`` it is (its operands are the arguments)
MATCH_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "match_mapping": patterns.is_mapping, "match_sequence": patterns.is_sequence, "match_keys": patterns.match_keys,
    "match_class": patterns.match_class, "match_rest": patterns.match_rest, "unpack": patterns.unpack,
}


def _pattern_rule(op: str) -> Rule:
    function = MATCH_FUNCTIONS[op]
    return Rule(lambda d, k, v: function(*v), _render_pattern)


def _items(em: Any, node: Glue) -> str:
    return ", ".join(em.expr(o) for o in node.operands)


RULES: dict[str, Rule] = {
    "getitem": Rule(
        lambda d, k, v: v[0][v[1]],
        lambda em, n: f"{em.expr(n.operands[0], ATOM)}[{em.expr(n.operands[1])}]",
    ),
    "getattr": Rule(lambda d, k, v: getattr(v[0], d), lambda em, n: f"{em.expr(n.operands[0], ATOM)}.{n.detail}"),
    "slice": Rule(lambda d, k, v: v[0][slice(*v[1:])], _render_slice),
    "list": Rule(lambda d, k, v: list(v), lambda em, n: f"[{_items(em, n)}]"),
    "tuple": Rule(
        lambda d, k, v: tuple(v), lambda em, n: f"({_items(em, n)}{',' if len(n.operands) == 1 else ''})",
    ),
    "set": Rule(lambda d, k, v: set(v), lambda em, n: f"{{{_items(em, n)}}}" if n.operands else "set()"),
    "dict": Rule(
        lambda d, k, v: {v[i]: v[i + 1] for i in range(0, len(v), 2)},
        lambda em, n: "{" + ", ".join(
            f"{em.expr(n.operands[i])}: {em.expr(n.operands[i + 1])}" for i in range(0, len(n.operands), 2)
        ) + "}",
    ),
    "binop": Rule(
        lambda d, k, v: BINARY[d][0](v[0], v[1]), _render_binop,
        {symbol: p for symbol, (_, p) in BINARY.items()}, frozenset(BINARY),
    ),
    "unary": Rule(
        lambda d, k, v: UNARIES[d](v[0]), lambda em, n: f"{n.detail}{em.expr(n.operands[0], UNARY)}",
        UNARY, frozenset(UNARIES),
    ),
    "not": Rule(lambda d, k, v: not v[0], lambda em, n: f"not {em.expr(n.operands[0], NOT)}", NOT),
    "truth": Rule(lambda d, k, v: bool(v[0]), lambda em, n: f"bool({em.expr(n.operands[0])})"),
    "compare": Rule(lambda d, k, v: COMPARISONS[d](v[0], v[1]), _render_infix, COMPARE, frozenset(COMPARISONS)),
    "contains": Rule(
        lambda d, k, v: (v[0] in v[1]) != (d == "not in"), _render_infix, COMPARE, frozenset({"in", "not in"}),
    ),
    "is": Rule(lambda d, k, v: (v[0] is v[1]) != (d == "is not"), _render_infix, COMPARE, frozenset({"is", "is not"})),
    "format": Rule(_format, lambda em, n: em.fstring(n), details=frozenset({"", *CONVERSIONS})),
    "string": Rule(lambda d, k, v: "".join(v), lambda em, n: em.fstring(n)),
    "call": Rule(_call, _render_call),
    "method": Rule(_method, _render_call),
}
RULES.update({op: _pattern_rule(op) for op in MATCH_FUNCTIONS})
