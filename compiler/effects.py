"""Soundness of captured plans: what a plan may fold, and the order of effects and state reads.

A plan is correct for every call of its signature, whatever changed between calls. ``frozen`` says
which values the capture may fold into a plan (they can never change); every other value reached
through an attribute, a closure or a module global is state, read when the plan runs.

``order`` gives a captured graph the ordering edges (``after``) that make a concurrent plan behave
like eager Python:

- every ``Call`` (an effect: a call the capture cannot prove pure) follows the previous one, so
  effects happen once, in program order; a region holding one (an effect under a runtime condition)
  is an effect, and its body runs in program order;
- a step that reads state (through glue it inlines) runs after the effect that precedes the read in
  program order, and before the effect that follows it;
- glue that reads state but is consumed only after a later effect is hoisted into a step of its own,
  so it still reads the state as it was where the program read it;
- the output follows the last effect (a call returns only when its effects are done);
- every step after a barrier (an effect that may raise) follows it: when it raises, the steps eager
  Python would not have reached never start (a tool call after a failed check is never made).

An iterator built by glue (``zip``, ``enumerate``, ``reversed`` of runtime values) is state of its
own: a plan computes glue inline in each step that reads it, so ``shared_iterator`` finds one read by
two nodes, or computed once (hoisted) for readers that are themselves inlined; the capture then stops
(eager's readers share one iterator, the second finding it exhausted).

Operator calls are not effects: by the operator contract a sub-operator's work is its own, so
independent operator calls between two effects still overlap.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import pathlib
import re
import types
from dataclasses import replace
from typing import Any, Callable

from xcs.compiler.breaks import GraphBreak
from xcs.compiler.ir import Branch, Call, Glue, MapRegion, Output, Ref, With, is_literal, operands, walk

CALLABLES = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType,
    types.MethodDescriptorType, types.ClassMethodDescriptorType, types.ModuleType, type,
)
IMMUTABLE_TYPES = (
    str, bytes, int, float, complex, bool, type(None), range, re.Pattern, decimal.Decimal, fractions.Fraction,
    datetime.date, datetime.time, datetime.timedelta, datetime.tzinfo, pathlib.PurePath, enum.Enum,
    type(Ellipsis), type(NotImplemented),
)


def frozen(value: Any, is_operator: Callable[[Any], bool], depth: int = 0) -> bool:
    """Whether a plan may fold ``value``: literals, tuples and frozensets of such, frozen dataclasses
    of such, callables used as callables (functions, classes, modules, methods of frozen objects),
    operators (frozen after ``__init__``) and the containers that hold them (frozen with them)."""
    if depth > 8:
        return False
    if isinstance(value, IMMUTABLE_TYPES) or is_operator(value):
        return True
    if isinstance(value, CALLABLES) or type(value).__name__ == "ufunc":
        return True
    if isinstance(value, (tuple, frozenset)) or getattr(type(value), "__xcs_frozen__", False):
        items = value.values() if isinstance(value, dict) else value
        return all(frozen(v, is_operator, depth + 1) for v in items)
    if isinstance(value, types.MethodType):
        return frozen(value.__self__, is_operator, depth + 1)
    if isinstance(value, functools.partial):
        parts = (value.func, *value.args, *value.keywords.values())
        return all(frozen(v, is_operator, depth + 1) for v in parts)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = getattr(type(value), "__dataclass_params__", None)
        return bool(params and params.frozen) and all(
            frozen(getattr(value, f.name), is_operator, depth + 1) for f in dataclasses.fields(value)
        )
    return is_literal(value)


def is_effect(node: Any) -> bool:
    """A ``Call``, a ``With``, or a region whose body holds one."""
    return any(isinstance(n, (Call, With)) for n in walk((node,)))


def order(nodes: tuple, readers: frozenset[str], is_step: Callable[[Any], bool], shared: frozenset[str] = frozenset(),
          writers: frozenset[str] = frozenset()) -> tuple:
    """``nodes`` (a captured graph's top level, in program order) with ``after`` edges and hoisted
    state reads, as the module docstring describes. ``readers`` names the glue (and the leaf operator
    calls) that read state; ``shared`` the glue (steps) whose object an effect receives and may change:
    a step that reads it after that effect follows the effect; ``writers`` the leaf operator calls that
    may change state other operators hold: effects like ``Call`` steps (``compiler.sharing``)."""
    def effect(node: Any) -> bool:
        return is_effect(node) or node.name in writers

    calls = [n.name for n in nodes if effect(n)]
    if not calls:
        return nodes
    epoch: dict[str, int] = {}
    seen = 0
    for node in nodes:
        epoch[node.name] = seen
        seen += effect(node)
    by_name = {n.name: n for n in nodes}
    hoisted: set[str] = set()

    def steps() -> list:
        return [n for n in nodes if is_step(n) or n.name in hoisted or isinstance(n, Output)]

    def reads(node: Any) -> tuple[set[str], set[str]]:
        """The state readers a step evaluates when it runs (its own, its regions', and the top-level
        glue it inlines: a step's result is read, not recomputed), and among them the ones that read
        state from an earlier epoch than the step's (their own inlined reads go with them)."""
        found: set[str] = {n.name for n in walk((node,)) if n.name in readers}
        late: set[str] = set()
        regions_seen: set[str] = set()
        stack = [o.name for o in operands(node) if isinstance(o, Ref)]
        while stack:
            name = stack.pop()
            if name in shared and epoch[name] < epoch[node.name] and name not in found:
                found.add(name)  # an object an effect since may have changed: read after it
                continue
            glue = by_name.get(name)
            if isinstance(glue, (MapRegion, Branch)) and not is_step(glue) and name not in hoisted:  # inlined too
                if name in regions_seen:
                    continue
                regions_seen.add(name)
                inner = {n.name for n in walk((glue,)) if n.name in readers}
                if inner:  # a region that reads state (a loop over it, a read in its body) reads it where it runs
                    if epoch[name] < epoch[node.name]:
                        if not isinstance(glue, MapRegion):  # a branch is not hoisted: it stays inline
                            raise GraphBreak("state-after-step", "a decision that reads state is used only after "
                                             "a call that may change that state", glue.loc)
                        late.add(name)
                        continue
                    found |= inner
                stack += [o.name for o in operands(glue) if isinstance(o, Ref)]
                continue
            if not isinstance(glue, Glue) or glue.hoisted or name in hoisted or name in found or name in late:
                continue
            if name in readers and epoch[name] < epoch[node.name]:
                late.add(name)
                continue
            if name in readers:
                found.add(name)
            stack += [o.name for o in operands(glue) if isinstance(o, Ref)]
        return found, late

    changed = True
    while changed:  # hoist reads consumed after a later effect (hoisting only shrinks what steps inline)
        changed = False
        for step in steps():
            late = reads(step)[1] - hoisted
            if late:
                hoisted |= late
                changed = True
    after: dict[str, list[str]] = {}

    def add(name: str, before: str) -> None:
        if name != before and before not in after.setdefault(name, []):
            after[name].append(before)

    for k, name in enumerate(calls[1:], 1):
        add(name, calls[k - 1])
    barrier = None
    for node in nodes:  # steps after a call that may raise wait for it
        if barrier is not None and (is_step(node) or node.name in hoisted) and not is_effect(node):
            add(node.name, barrier)
        if is_effect(node) and (not isinstance(node, Call) or node.barrier):
            barrier = node.name
    for step in steps():
        if effect(step):
            continue
        k = epoch[step.name]
        if isinstance(step, Output):
            add(step.name, calls[-1])
        elif reads(step)[0] or step.name in hoisted:
            if k:
                add(step.name, calls[k - 1])
            if k < len(calls):
                add(calls[k], step.name)
    out = []
    for node in nodes:
        if node.name in hoisted:
            node = replace(node, hoisted=True)
        if node.name in after:
            node = replace(node, after=tuple(dict.fromkeys((*node.after, *after[node.name]))))
        out.append(node)
    return tuple(out)


ITERATORS = frozenset({"zip", "enumerate", "reversed", "map", "filter", "iter"})


def is_iterator(node: Any) -> bool:
    """Whether ``node`` is glue that builds an iterator: ``zip(...)``, ``enumerate(...)``, ..."""
    if not isinstance(node, Glue) or node.op != "call" or not node.operands:
        return False
    fn = node.operands[0]
    return getattr(fn, "module", None) == "builtins" and getattr(fn, "qualname", None) in ITERATORS


def shared_iterator(nodes: tuple) -> Glue | None:
    """The first iterator built by glue that more than one node reads, or that is computed once (hoisted)
    for a reader: the plan would hand its readers different iterators, or one iterator to readers that
    each recompute, where eager's readers share one. None when every iterator has one inline reader."""
    built = {n.name: n for n in walk(nodes) if is_iterator(n)}
    if not built:
        return None
    readers: dict[str, int] = {}
    for node in walk(nodes):
        for name in {o.name for o in operands(node) if isinstance(o, Ref) and o.name in built}:
            readers[name] = readers.get(name, 0) + 1
    return next((built[name] for name, count in readers.items() if count > 1 or built[name].hoisted), None)
