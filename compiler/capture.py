"""Strategy selection: which capture builds the graph of one call, by one documented rule.

``auto`` (the default) tries, in order, until one yields a graph:

1. ``enhanced``: the static capture plus the optimisation passes (``compiler.passes``);
2. ``structural``: the static capture alone — abstract interpretation of ``forward``'s bytecode over the
   real operator tree, knowing the input signature but no input value; nothing runs; loops over runtime
   sequences become map regions and decisions on runtime values become branch regions;
3. ``trace``: first dry (operator calls recorded, not run: the graph is complete when the path never
   depends on an operator's output), else running the call while recording it, specialised by guards;
4. eager: the call runs as plain Python; the breaks met on the way are reported.

``mode="structural"`` starts at step 2, ``mode="trace"`` at step 3. With ``strict=True`` the first break
raises instead of moving on. Static strategies never run user code, so they also compile ahead of time.
"""

from __future__ import annotations

import gc
import os
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from compiler import passes
from compiler.breaks import Break
from compiler.ir import Graph, lint
from compiler.trace import NeedsValue, Tracer

MODES = ("auto", "enhanced", "structural", "trace")
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
    collector is paused meanwhile: capture allocates many small objects that all live until it ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _capture(root, forward, inputs, **options)
    finally:
        if enabled:
            gc.enable()


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
    met: list[tuple[str, Break]] = []
    static_done = False
    for strategy in ORDER[mode]:
        if strategy in ("enhanced", "structural"):
            if static_done:  # enhanced already ran the static capture: structural would break alike
                continue
            static_done = True
            tracer = Tracer(root, name, is_operator, abstract=True)
            try:
                _, graph = tracer.run(forward, inputs)
            except NeedsValue as exc:
                if not exc.brk.loc.file:  # every break has a location: where the capture stopped
                    exc.brk = Break(exc.brk.code, exc.brk.reason, tracer.loc)
                met.append((strategy, exc.brk))
                if strict:
                    raise StrictBreak(strategy, exc.brk) from None
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


COMPILER_DIR = os.path.dirname(os.path.abspath(__file__))


def _from_user(exc: BaseException) -> None:
    """Drop the capture interpreter's frames from ``exc``'s traceback and its causes' (the user's
    operator, helper and glue frames stay), so an error points at the user's code."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
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
