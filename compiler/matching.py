"""``match`` statements: the shape the capture's interpreter reads them in.

CPython compiles each ``case`` into a test (the pattern's checks, its stores and the guard) whose every
failing check jumps into a ladder of pops that falls into the next case. Read as it is, every check
would be a branch whose failing side holds all the later cases, so a match of n cases of k checks would
unroll into k**n copies. ``converge`` rewrites each case so that its checks meet again right after the
test, where a flag says whether the case matched::

    <test>   (a failing check -> the ladder)         ladder: POP_TOP ...
    LOAD_CONST True                                  LOAD_CONST False
    J: JUMP_IF (pop, false) -> next case             JUMP J
    <the case's body>

so every check is a branch that joins at ``J`` (``regions.branch``: a short test whose sides only set the
flag and the captured names), and ``J`` is one branch between the body and the next case: a match is a
chain of branches as long as its cases. The stack at the flag is the same on both paths (the subject
stays on it for the next case), so nothing else changes; a case whose instructions do not have the shape
the rewrite expects is left as it is (its checks are then plain branches: correct, only larger).

The cases are found with the source (``ast``): an instruction belongs to a case's test when its position
lies in the case's pattern or guard. ``converge`` also folds the instructions that build a mapping
pattern's ``**rest`` (a copy of the subject, then one ``del`` per key) into one ``MATCH_REST``.
"""

from __future__ import annotations

import ast
import linecache
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

from xcs.compiler.bytecode_versions import Ins

Span = tuple[int, int, int, int]  # line, column, end line, end column (columns in UTF-8 bytes, as ``dis``)


@dataclass(frozen=True)
class Case:
    """One ``case`` of a match statement: where its pattern and guard are, and whether it is the last
    case whose test the compiler keeps the subject for (no ``COPY`` before it, no ``POP_TOP`` after)."""

    spans: tuple[Span, ...]
    last: bool


def converge(code: CodeType, ins: list[Ins]) -> list[Ins]:
    """``ins`` (``code``'s normalised instructions) with each case's checks meeting at a flag."""
    ins = _fold_rest(ins)
    if not any(i.op == "COPY" or i.op.startswith("MATCH_") for i in ins):
        return ins  # no case of a match statement keeps the subject for a next one
    cases = _cases(code)
    if not cases:
        return ins
    blocks: dict[int, list[tuple]] = {}  # instruction index -> what is inserted before it
    redirect: dict[int, tuple] = {}  # jump index -> its new target (a label)
    for number, case in enumerate(cases):
        plan = _plan(ins, case, number)
        if plan is None or any(at in blocks for at in plan[0]) or set(plan[1]) & set(redirect):
            continue
        inserted, jumps = plan
        blocks.update(inserted)
        redirect.update(jumps)
    return _assemble(ins, blocks, redirect) if blocks else ins


def _plan(ins: list[Ins], case: Case, number: int) -> tuple[dict, dict] | None:
    """The blocks to insert and the jumps to redirect for one case, or None when its instructions do
    not have the expected shape."""
    test = sorted(i for i, x in enumerate(ins) if x.line and _inside(x, case.spans))
    members = set(test)
    if not test or not any(ins[i].op == "JUMP_IF" for i in test):
        return None  # an irrefutable pattern without a guard: nothing to join
    start = test[0]
    body = next((i for i in range(start, len(ins)) if i not in members), None)
    if body is None:
        return None
    success = body if case.last else body - 1  # a kept subject is popped after the test
    if not case.last and not (ins[start].op == "COPY" and ins[success].op == "POP_TOP"):
        return None
    if any(i not in members for i in range(start, success)):
        return None
    # the pops a failing check jumps into, after the body: they fall into the next case
    after = [i for i in test if i > body and ins[i].op != "UNREACHABLE"]  # not a guard's comprehension's handler
    ladder = range(after[0], after[0]) if after else range(0)
    while after and ladder.stop < len(ins) and ladder.stop in members and ins[ladder.stop].op == "POP_TOP":
        ladder = range(ladder.start, ladder.stop + 1)
    inside = set(range(start, success)) | set(ladder)
    targets = {i: (x.arg if x.op == "JUMP" else x.arg[0]) for i, x in ((i, ins[i]) for i in test) if x.op in ("JUMP", "JUMP_IF")}
    if ladder:
        failure = ladder.stop
    else:  # a guard alone fails straight into the next case
        outside = {t for t in targets.values() if t not in inside and t not in (success, body)}
        if len(outside) != 1:
            return None
        (failure,) = outside
    jumps: dict[int, tuple] = {}
    for i, target in targets.items():
        if i not in inside:
            return None  # a jump of the test outside its checks and ladder
        if target in inside and target != success:
            continue
        if target in (success, body):
            jumps[i] = ("matched", number)
        elif _land(ins, target) == _land(ins, failure):
            jumps[i] = ("failed", number)
        else:
            return None
    at = ins[start]
    flag = ("flag", number)
    matched = [("LOAD_CONST", True, ("matched", number), at), ("JUMP_IF", (("at", failure), True, "false"), flag, at)]
    failed = [("LOAD_CONST", False, ("failed", number), at), ("JUMP", flag, None, at)]
    return {success: matched, failure: failed}, jumps


def _land(ins: list[Ins], pc: int) -> int:
    """Where control lands from ``pc`` after unconditional jumps."""
    seen = set()
    while pc < len(ins) and ins[pc].op == "JUMP" and pc not in seen:
        seen.add(pc)
        pc = ins[pc].arg
    return pc


def _assemble(ins: list[Ins], blocks: dict, redirect: dict) -> list[Ins]:
    out: list[Ins] = []
    at: dict[int, int] = {}
    labels: dict[tuple, int] = {}
    for i, x in enumerate(ins):
        for op, arg, label, where in blocks.get(i, ()):
            if label is not None:
                labels[label] = len(out)
            out.append(Ins(op, arg, where.line, where.col))
        at[i] = len(out)
        out.append(x)
    at[len(ins)] = len(out)

    def target(value: object) -> int:
        if isinstance(value, tuple) and value and value[0] == "at":
            return at[value[1]]
        if isinstance(value, tuple):
            return labels[value]
        return at[value]

    for pc, x in enumerate(out):
        if x.op == "JUMP":
            out[pc] = Ins("JUMP", target(x.arg), x.line, x.col)
        elif x.op in ("JUMP_IF", "FOR_ITER"):
            out[pc] = Ins(x.op, (target(x.arg[0]), *x.arg[1:]), x.line, x.col)
    for i, label in redirect.items():
        x = out[at[i]]
        new = labels[label]
        out[at[i]] = Ins("JUMP", new, x.line, x.col) if x.op == "JUMP" else Ins("JUMP_IF", (new, *x.arg[1:]), x.line, x.col)
    return out


REST = ("BUILD_MAP", "SWAP", "DICT_UPDATE", "UNPACK_SEQUENCE")


def _fold_rest(ins: list[Ins]) -> list[Ins]:
    """``BUILD_MAP 0; SWAP 3; DICT_UPDATE 2; UNPACK_SEQUENCE n; (COPY; SWAP 2; DELETE_SUBSCR) x n``, a
    mapping pattern's ``**rest`` (stack: subject, keys -> rest), becomes one ``MATCH_REST``."""
    if not any(x.op == "DELETE_SUBSCR" or x.op == "DICT_UPDATE" for x in ins):
        return ins
    keep: list[int] = []
    replaced: dict[int, Ins] = {}
    i = 0
    while i < len(ins):
        x = ins[i]
        if [y.op for y in ins[i:i + 4]] == list(REST) and [y.arg for y in ins[i:i + 3]] == [0, 3, 2]:
            n = ins[i + 3].arg
            tail = ins[i + 4:i + 4 + 3 * n]
            if [y.op for y in tail] == ["COPY", "SWAP", "DELETE_SUBSCR"] * n:
                replaced[len(keep)] = Ins("MATCH_REST", None, x.line, x.col)
                keep.append(i)
                i += 4 + 3 * n
                continue
        keep.append(i)
        i += 1
    if not replaced:
        return ins
    index = {}  # old index -> new index (a dropped instruction: the next kept one)
    new = 0
    for old in range(len(ins) + 1):
        while new < len(keep) and keep[new] < old:
            new += 1
        index[old] = new
    out = []
    for new, old in enumerate(keep):
        x = replaced.get(new, ins[old])
        if x.op == "JUMP":
            x = Ins("JUMP", index[x.arg], x.line, x.col)
        elif x.op in ("JUMP_IF", "FOR_ITER"):
            x = Ins(x.op, (index[x.arg[0]], *x.arg[1:]), x.line, x.col)
        out.append(x)
    return out


def _inside(x: Ins, spans: tuple[Span, ...]) -> bool:
    where = (x.line, x.col if x.col is not None else -1)
    return any((s[0], s[1]) <= where < (s[2], s[3]) for s in spans)


def _cases(code: CodeType) -> tuple[Case, ...]:
    """The cases (but a final ``case _``, which has no test) of the match statements of ``code``."""
    tree = _module(code.co_filename, "".join(linecache.getlines(code.co_filename)))
    if tree is None:
        return ()
    lines = [line for _, _, line in code.co_lines() if line is not None]
    if not lines:
        return ()
    first, last = min(lines), max(lines)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Match) or not first <= node.lineno <= last:
            continue
        cases = node.cases
        default = len(cases) > 1 and _wildcard(cases[-1].pattern)
        tested = cases[:-1] if default else cases
        for i, case in enumerate(tested):
            spans = tuple(_span(n) for n in (case.pattern, case.guard) if n is not None)
            found.append(Case(spans, i == len(tested) - 1))
    return tuple(found)


def _wildcard(pattern: ast.pattern) -> bool:
    return isinstance(pattern, ast.MatchAs) and pattern.pattern is None and pattern.name is None


def _span(node: ast.AST) -> Span:
    return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


@lru_cache(maxsize=64)
def _module(filename: str, text: str) -> ast.Module | None:
    if "match" not in text:
        return None
    try:
        return ast.parse(text, filename)
    except (SyntaxError, ValueError):
        return None
