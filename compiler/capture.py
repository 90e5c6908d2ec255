"""Strategy selection: which capture builds the graph of one call, by one documented rule.

``auto`` (the default) tries, in order, until one yields a graph:

1. ``enhanced``: the static capture plus the optimisation passes (``compiler.passes``);
2. ``structural``: the static capture alone — abstract interpretation of ``forward``'s bytecode over the
   real operator tree, knowing the input signature but no input value; nothing runs; loops over runtime
   sequences become map regions and decisions on runtime values become branch regions;
3. ``trace``: first dry (operator calls recorded, not run: the graph is complete when the path never
   depends on an operator's output), else running the call while recording it, specialised by guards;
4. eager: the call runs as plain Python; the breaks met on the way are reported.

``mode="structural"`` starts at step 2, ``mode="trace"`` at step 3; the mode of a strategy registered with
``register_strategy`` (``compiler.extensions``) asks that strategy alone. With ``strict=True`` the first break
raises instead of moving on. Static strategies never run user code, so they also compile ahead of time.
"""

from __future__ import annotations

import gc
import os
import types
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any, Callable, Mapping

from xcs.compiler import passes
from xcs.compiler.breaks import Break
from xcs.compiler.extensions import STRATEGIES
from xcs.compiler.signature import MAX_SIGNATURE_DEPTH
from xcs.compiler.ir import Const, Glue, Graph, Ref, is_literal, lint
from xcs.compiler.trace import STATIC, NeedsValue, Tracer, subscript
from xcs.compiler.reads import input_read_error
from xcs.compiler.errors import JitError

_SUBSCRIPT = subscript.__code__

ORDER = {
    "auto": ("enhanced", "structural", "trace"),
    "enhanced": ("enhanced", "structural", "trace"),
    "structural": ("structural", "trace"),
    "trace": ("trace",),
}
NOT_RUN = object()


@dataclass
class Capture:
    """What capturing one call produced."""

    strategy: str  # the strategy whose graph is used, or "eager"
    graph: Graph | None
    required: tuple[str, ...] = ()
    result: Any = NOT_RUN  # the call's result when the capture ran the operators
    breaks: list[tuple[str, Break]] = field(default_factory=list)  # (strategy, break) met on the way
    applied: list[passes.Applied] = field(default_factory=list)
    opaque: list[Break] = field(default_factory=list)  # breaks that cost one statement (run natively)

    @property
    def ran(self) -> bool:
        return self.result is not NOT_RUN


class StrictBreak(Exception):
    """``strict=True`` and a strategy broke; carries the strategy and the break."""

    def __init__(self, strategy: str, brk: Break):
        self.strategy, self.brk = strategy, brk
        super().__init__(f"{strategy}: {brk}")


def capture(root: Any, forward: Callable[..., Any], inputs: Mapping[str, Any], **options: Any) -> Capture:
    """Capture ``forward`` for ``inputs``' signature by ``mode``'s rule (see ``_capture``). The
    collector is paused meanwhile: capture allocates many small objects that all live until it ends.

    A read of the inputs that fails while capturing (``inputs["doc"]["title"]`` without "title", an
    index past the end of an input list, a ``str`` where a mapping is read) raises the error of
    ``compiler.reads.input_read_error``, naming the key path and the operator; the static strategies
    and the dry trace fail there before any operator has run."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _capture(root, forward, inputs, **options)
    except (LookupError, TypeError) as exc:
        path, error = _failed_input_read(exc, options["name"], inputs)
        if error is None:
            raise
        raise error from None
    finally:
        if enabled:
            gc.enable()


def _failed_input_read(exc: BaseException, name: str, inputs: Mapping[str, Any]) -> tuple[tuple | None, Exception | None]:
    """``(path, error)`` when ``exc`` was raised reading a constant key path of the inputs (the
    innermost ``subscript`` of the tracer in its traceback, on ``inputs`` or a chain of constant-key
    reads of it: the tracer's recorded ``getitem`` glue): the path, and the named error of that read on
    the real inputs (None when it succeeds there: a ``defaultdict``). ``(None, None)`` otherwise."""
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is _SUBSCRIPT:
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return None, None
    tracer, container, key = (frame.f_locals.get(n) for n in ("t", "container", "key"))
    if not isinstance(tracer, Tracer) or key is None or key.kind != STATIC or not is_literal(key.raw):
        return None, None
    nodes = {node.name: node for node in tracer.builder.nodes if isinstance(node, Glue) and node.op == "getitem"}
    path = [key.raw]
    expr = container.expr if container is not None else None
    while isinstance(expr, Ref) and expr.name != "inputs":
        node = nodes.get(expr.name)
        if node is None or len(node.operands) != 2 or not isinstance(node.operands[1], Const):
            return None, None
        path.append(node.operands[1].value)
        expr = node.operands[0]
    if not isinstance(expr, Ref):
        return None, None
    path = tuple(reversed(path))
    return path, input_read_error(name, inputs, path)


def static_inputs(inputs: Mapping[str, Any]) -> dict:
    """What a static capture knows of ``inputs``: the mappings the signature describes (at most
    ``MAX_SIGNATURE_DEPTH`` deep, none inside itself), as dicts; below that an opaque value, whose
    reads the plan makes at run time."""
    return _static(inputs, 1, ())


def _static(mapping: Mapping[str, Any], depth: int, above: tuple) -> dict:
    above = (*above, mapping)
    view = {}
    for key, value in mapping.items():
        if type(value) is dict or isinstance(value, Mapping):
            if depth >= MAX_SIGNATURE_DEPTH or any(value is seen for seen in above):
                value = OPAQUE
            else:
                value = _static(value, depth + 1, above)
        view[key] = value
    return view


OPAQUE = object()  # a value below what the signature describes


def _one_shot(inputs: Mapping[str, Any]) -> bool:
    """Whether an input value is an iterator (a generator): reading it consumes it, so only a capture
    that runs the call (reading it once, as eager does) may look at it."""
    return any(isinstance(value, Iterator) for value in inputs.values())


def _capture(
    root: Any,
    forward: Callable[..., Any],
    inputs: Mapping[str, Any],
    *,
    mode: str,
    name: str,
    is_operator: Callable[[Any], bool],
    strict: bool = False,
    run: bool = True,
) -> Capture:
    """Capture ``forward`` for ``inputs``' signature by ``mode``'s rule. With ``run=False`` nothing
    user-visible runs: strategies that would have to run the call stop there (``strategy="none"``)."""
    custom = STRATEGIES.get(mode)
    if custom is not None:
        return _custom(custom, root, forward, inputs, name=name, is_operator=is_operator, strict=strict, run=run)
    met: list[tuple[str, Break]] = []
    static_done = False
    for strategy in ORDER[mode]:
        if strategy in ("enhanced", "structural"):
            if static_done:  # enhanced already ran the static capture: structural would break alike
                continue
            static_done = True
            tracer = Tracer(root, name, is_operator, abstract=True)
            try:
                _, graph = tracer.run(forward, static_inputs(inputs))
            except NeedsValue as exc:
                if not exc.brk.loc.file:  # every break has a location: where the capture stopped
                    exc.brk = Break(exc.brk.code, exc.brk.reason, tracer.loc)
                met.append((strategy, exc.brk))
                if strict:
                    raise StrictBreak(strategy, exc.brk) from None
                continue
            except (LookupError, TypeError) as exc:
                path, _ = _failed_input_read(exc, name, inputs)
                if path is None:
                    raise
                # An input read the static capture cannot make: it may sit on a branch the call does
                # not take, or the real input may read it (``__missing__``). The trace sees the values:
                # it raises the named error if the call really makes the read, before any operator runs.
                continue
            lint(graph)
            if strict and tracer.opaque:
                raise StrictBreak(strategy, tracer.opaque[0])
            applied: list[passes.Applied] = []
            if strategy == "enhanced":
                graph, applied = passes.optimize(
                    graph, is_operator, root, tracer.files, tracer.variables, tracer.origins
                )
                lint(graph)
            return Capture(strategy, graph, tuple(tracer.required), breaks=list(met), applied=applied,
                           opaque=list(tracer.opaque))
        if not _one_shot(inputs):  # a dry trace would consume an iterator the plan then reads again
            tracer = Tracer(root, name, is_operator, dry=True)
            try:
                _, graph = tracer.run(forward, inputs)
                lint(graph)
                if strict and tracer.opaque:
                    raise StrictBreak("trace", tracer.opaque[0])
                return Capture("trace", graph, tuple(tracer.required), breaks=list(met), opaque=list(tracer.opaque))
            except NeedsValue:
                pass  # the path depends on an operator's output: trace while running them
        if not run:
            return Capture("none", None, breaks=list(met))
        tracer = Tracer(root, name, is_operator)
        try:
            result, graph = tracer.run(forward, inputs)
        except Exception as exc:  # raised by the user's code: shown from the user's frames, not ours
            _from_user(exc)
            raise
        if graph is None:
            met.append(("trace", tracer.brk))
            if strict:
                raise StrictBreak("trace", tracer.brk)
            return Capture("eager", None, result=result, breaks=list(met))
        lint(graph)
        if strict and tracer.opaque:
            raise StrictBreak("trace", tracer.opaque[0])
        return Capture("trace", graph, tuple(tracer.required), result=result, breaks=list(met),
                       opaque=list(tracer.opaque))
    return Capture("eager", None, breaks=list(met))


def _custom(
    strategy: Any, root: Any, forward: Callable[..., Any], inputs: Mapping[str, Any], *, name: str,
    is_operator: Callable[[Any], bool], strict: bool, run: bool,
) -> Capture:
    """A registered strategy's capture (``compiler.extensions``): its graph, with the input reads, passes
    and opaque statements of the built-in capture it was given by ``builtin``; or, when it declines,
    eager with the ``strategy-declined`` break (the call runs ``forward`` when ``run``)."""
    met: list[tuple[str, Break]] = []
    made: list[Capture] = []

    def builtin(mode: str) -> Graph | None:
        if mode not in ORDER:
            raise JitError(f"strategy {strategy.name!r}: builtin() takes one of {', '.join(ORDER)}, got {mode!r}")
        cap = _capture(root, forward, inputs, mode=mode, name=name, is_operator=is_operator, run=False)
        met.extend(cap.breaks)
        made.append(cap)
        return cap.graph

    graph = strategy.capture(root, inputs, builtin)
    if graph is None:
        brk = Break("strategy-declined", f"the strategy {strategy.name!r} returned no graph")
        if strict:
            raise StrictBreak(strategy.name, brk)
        met.append((strategy.name, brk))
        return Capture("eager", None, result=forward(inputs=inputs) if run else NOT_RUN, breaks=met)
    if not isinstance(graph, Graph):
        raise JitError(f"strategy {strategy.name!r}: capture returned {type(graph).__name__}, not a Graph or None")
    lint(graph)
    base = made[-1] if made else Capture(strategy.name, graph)
    return Capture(strategy.name, graph, base.required, breaks=met, applied=list(base.applied), opaque=list(base.opaque))


COMPILER_DIR = os.path.dirname(os.path.abspath(__file__))


def _from_user(exc: BaseException) -> None:
    """Drop the capture interpreter's frames from ``exc``'s traceback and its causes' (the user's
    operator, helper and glue frames stay), so an error points at the user's code."""
    seen: list[BaseException] = []  # by identity: an exception chain may loop
    while exc is not None and not any(exc is e for e in seen):
        seen.append(exc)
        frames, tb = [], exc.__traceback__
        while tb is not None:
            if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(COMPILER_DIR + os.sep):
                frames.append(tb)
            tb = tb.tb_next
        trimmed = None
        for tb in reversed(frames):
            trimmed = types.TracebackType(trimmed, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
        exc.__traceback__ = trimmed
        exc = exc.__cause__ or exc.__context__
