"""Graph breaks: the stable codes, with the reason, the user's location and a hint.

A graph break is how a capture strategy says "this program (or this path of it) cannot be compiled".
Codes are stable strings that documentation, tests and ``xcs explain`` refer to.
"""

from __future__ import annotations

from dataclasses import dataclass

from xcs.compiler.ir import Loc

CODES: dict[str, str] = {
    "branch-on-output": "an if/while/and/or/conditional decides on a value an operator returned; "
    "the path depends on a result that does not exist before the call",
    "iterate-over-output": "a loop or comprehension iterates over a value an operator returned",
    "unpack-output": "a value an operator returned is unpacked with ** or a key-dependent merge",
    "unknown-call": "a call of a function or class the compiler cannot prove pure",
    "mutation": "an attribute assignment, or an in-place change of an input, an operator's output "
    "or a non-local value",
    "unsupported-bytecode": "a construct the capture does not model (try, match, yield, await, "
    "global/nonlocal writes, a generator expression it cannot consume as a list, ...)",
    "unrenderable-value": "a value used by the graph that is neither a literal, an attribute path of "
    "the operator, nor a module-level name",
    "raise": "forward raised an exception on the captured path",
    "effect-in-region": "a call with effects (or one the compiler cannot prove pure) inside a loop over "
    "runtime data (its elements run concurrently)",
    "state-after-step": "a decision on (or a loop over) state the operator holds, made after a call that "
    "may have changed it",
    "recursion": "helper functions nest deeper than the capture follows",
    "runtime-branch": "a decision on a runtime value that a branch region cannot express (one side "
    "returns and the other does not, or a side changes a container built before it)",
    "runtime-loop": "a loop over runtime data that a map region cannot express (a while loop, state "
    "carried between iterations, break/return inside it, or unpacking a sequence of unknown length)",
    "shared-iterator": "an iterator (zip, enumerate, reversed of runtime values) read more than once",
    "strategy-declined": "the operator's custom capture strategy (register_strategy) returned no graph",
    "runtime-value": "the static capture needs a value only the run has: a method of an operator's "
    "output, an index or key computed at run time, or a call whose purity depends on its argument",
    "unsupported-try": "a try statement a try region cannot express (return on some of its paths only, break or continue inside it, "
    "except*, a raise under a condition in a handler, or a variable read where its value depends on where "
    "the body raised)",
}

HINTS: dict[str, str] = {
    "branch-on-output": "move the decision into an operator, or branch on an input or static attribute",
    "iterate-over-output": "return a fixed structure from the operator, or iterate over an input",
    "unpack-output": "index the keys you need instead of unpacking the whole mapping",
    "unknown-call": "call it inside an operator's forward, or make it a module-level pure function",
    "mutation": "build a new value instead of changing one in place; operators are frozen",
    "unsupported-bytecode": "move the construct into a sub-operator's forward",
    "unrenderable-value": "store the value as an attribute of the operator or as a module global",
    "raise": "validate inputs before calling the jitted operator, or raise inside a sub-operator",
    "effect-in-region": "move the effect out of the loop or branch, or into a sub-operator's forward",
    "state-after-step": "read the state once before the first call, into a local",
    "recursion": "flatten the helpers",
    "runtime-branch": "assign the same variables on both sides, or move the decision into an operator",
    "runtime-loop": "write the loop as a comprehension or an append per element, or use vmap",
    "shared-iterator": "materialise it once (pairs = list(zip(a, b))) and read the list",
    "strategy-declined": "see the strategy's own rule, or compile with a built-in mode",
    "runtime-value": "let the trace strategy specialise on it (mode='trace'), or move it into an operator",
    "unsupported-try": "assign a variable before the try (or in every handler) instead of reading it "
    "where the body may have raised; move a return after the statement",
}


@dataclass(frozen=True)
class Break:
    code: str
    reason: str
    loc: Loc = Loc()

    @property
    def hint(self) -> str:
        return HINTS[self.code]

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc.file else ""
        text = f"\n    {self.loc.text}" if self.loc.text else ""
        return f"{where}graph break [{self.code}]: {self.reason}{text}\n    hint: {self.hint}"


class GraphBreak(Exception):
    """Raised inside a capture strategy; carries the ``Break``."""

    def __init__(self, code: str, reason: str, loc: Loc = Loc()):
        assert code in CODES, code
        self.brk = Break(code, reason, loc)
        super().__init__(str(self.brk))
