"""The reference interpreter of the IR: runs a graph node by node, the oracle codegen is tested against.

It gives glue its meaning through ``compiler.glue.RULES`` (as the tracer and constant folding do) and
runs ``vmap`` regions and the user's own statements with the runtime's ``map_batch`` and ``segment``,
sequentially, so it may import the runtime (the IR itself does not). A numeric ``Kernel`` runs as Python.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any, Mapping

from xcs.compiler.glue import RULES
from xcs.compiler.ir import (
    LOOP_END, LOOP_NEXT, Branch, Call, Const, Function, Glue, Global, Graph, Guard, Input, Kernel, LintError, Loop,
    MapRegion, Operand, OperatorCall, Output, Ref, Static, Try, With, resolve_static,
)
from xcs.runtime.batching import map_batch
from xcs.runtime.kernels import numpy_function
from xcs.runtime.options import execution_options
from xcs.runtime.segments import segment


def resolve_global(operand: Global) -> Any:
    """The module-level object a ``Global`` operand names."""
    value: Any = builtins if operand.module == "builtins" else importlib.import_module(operand.module)
    for part in operand.qualname.split("."):
        value = getattr(value, part)
    return value


def interpret(graph: Graph, root: Any, inputs: Mapping[str, Any]) -> Any:
    """The reference interpreter: run the graph node by node. The oracle for codegen in tests.

    Raises ``AssertionError`` naming the guard when a guard does not hold.
    """
    env: dict[str, Any] = {}

    def value(operand: Operand) -> Any:
        if isinstance(operand, Ref):
            return env[operand.name]
        if isinstance(operand, Const):
            return operand.value
        if isinstance(operand, Static):
            return resolve_static(root, operand.path)
        return resolve_global(operand)

    def run(nodes: tuple) -> Any:
        for node in nodes:
            if isinstance(node, Input):
                env[node.name] = inputs
            elif isinstance(node, Call) and node.source is not None:
                src = node.source
                call = segment(src.module, src.line, node.name, src.text)
                env[node.name] = call(*map(value, node.args), **{k: value(v) for k, v in node.kwargs})
            elif isinstance(node, (OperatorCall, Call)):
                call = value(node.target if isinstance(node, OperatorCall) else node.func)
                env[node.name] = call(*map(value, node.args), **{k: value(v) for k, v in node.kwargs})
            elif isinstance(node, Kernel):
                namespace = {m: importlib.import_module(m) for m in node.modules}
                namespace.update((glob, numpy_function(name)) for glob, name in node.numpy_functions)
                exec(node.text, namespace)  # noqa: S102 - text inlined from the operators' own forwards
                env[node.name] = namespace[node.function](*map(value, node.args))
            elif isinstance(node, Glue):
                env[node.name] = RULES[node.op].evaluate(node.detail, node.keys, [value(o) for o in node.operands])
            elif isinstance(node, Guard):
                if value(node.value) != node.expected:
                    raise AssertionError(f"guard {node.name} does not hold")
            elif isinstance(node, MapRegion) and node.batch is not None:
                env[node.name] = _interpret_batch(node, value(node.over), run, value, env)
            elif isinstance(node, MapRegion):
                results = []
                for element in value(node.over):
                    env[node.item] = element
                    run(node.body)
                    if node.keep is None or value(node.keep):
                        results.append(value(node.result) if node.result is not None else None)
                env[node.name] = results
            elif isinstance(node, Function):
                env[node.name] = _function(node, run, value, env)
            elif isinstance(node, With):
                with value(node.manager) as entered:
                    env[node.entered] = entered
                    run(node.body)
                    env[node.name] = tuple(value(o) for o in node.outs)
            elif isinstance(node, Loop):
                env[node.name] = _interpret_loop(node, run, value, env)
            elif isinstance(node, Try):
                env[node.name] = _interpret_try(node, run, value, env)
            elif isinstance(node, Branch):
                taken = bool(value(node.cond))
                run(node.then_body if taken else node.else_body)
                env[node.name] = tuple(value(o) for o in (node.then_out if taken else node.else_out))
            else:
                return value(node.value)
        return None

    result = run(graph.nodes)
    if not isinstance(graph.nodes[-1], Output):
        raise LintError("graph has no Output")
    return result


def _interpret_try(node: Try, run: Any, value: Any, env: dict) -> tuple:
    """A ``Try`` as Python runs it: the handler is the first whose types match, its name bound only
    inside it; an exception a handler raises chains to the one it handles."""
    try:
        try:
            run(node.body)
        except BaseException as exc:
            for h in node.handlers:
                if h.types is None or isinstance(exc, value(h.types)):
                    if h.bound:
                        env[h.bound] = exc
                    try:
                        run(h.body)
                        if h.reraise:
                            raise
                        if h.raises is not None:
                            raised = value(h.raises)
                            if h.cause is not None:
                                raise raised from value(h.cause)
                            raise raised
                        outs = tuple(value(o) for o in h.outs)
                    finally:
                        env.pop(h.bound, None)
                    break
            else:
                raise
        else:
            run(node.else_body)
            outs = tuple(value(o) for o in node.outs)
    finally:
        run(node.final_body)
    return outs + tuple(value(o) for o in node.final_outs)


def _function(node: Function, run: Any, value: Any, env: dict) -> Any:
    def call(*args: Any) -> Any:
        env.update(zip(node.params, args))
        run(node.body)
        return value(node.result)

    return call


def _interpret_loop(node: Loop, run: Any, value: Any, env: dict) -> tuple:
    """A loop region: iterations until one's status is not ``LOOP_NEXT``; the ``else`` block when the
    loop ends without ``break`` or ``return``."""
    state = (LOOP_NEXT, *map(value, node.init), None)

    def iteration(bound: dict) -> tuple:
        env.update(bound)
        run(node.body)
        return tuple(value(node.result))

    if node.over is None:
        while state[0] == LOOP_NEXT:
            state = iteration(dict(zip(node.params, state[1:-1])))
    else:
        for element in value(node.over):
            state = iteration({node.item: element, **dict(zip(node.params, state[1:-1]))})
            if state[0] != LOOP_NEXT:
                break
    if node.else_result is not None and state[0] in (LOOP_NEXT, LOOP_END):
        env.update(zip(node.params, state[1:-1]))
        run(node.else_body)
        state = tuple(value(node.else_result))
    return state


def _interpret_batch(node: MapRegion, over: Any, run: Any, value: Any, env: dict) -> Any:
    """A ``vmap`` region, element after element (the oracle is sequential), with vmap's semantics."""

    def element(item: Any) -> Any:
        env[node.item] = item
        run(node.body)
        return value(node.result)

    b = node.batch
    with execution_options(scheduler="sequential"):
        return map_batch(element, over, b.label, in_axes=b.in_axes, batch_size=b.batch_size, collect=b.collect,
                         out_keys=b.out_keys)
