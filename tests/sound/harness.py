"""Run a corpus program eagerly or compiled and record everything a user could observe.

``run(program, mode=None)`` builds a fresh instance (``mode=None``: eager, else ``jit(instance,
mode=mode)``), calls it on each input in turn under ``execution_options(scheduler=...)``, applies the
program's mutations between calls, and returns a ``Run``: per call the output (or the exception's
type), the LLM/tool calls (a multiset), the ordered effects, printed lines and log records, the
observable state of the instance after the call, and whether a plan served the call.
``differences(eager, compiled)`` lists what differs, one readable line each.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import logging
import pkgutil
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xcs import GraphBreakWarning, Operator, XCSError, execution_options, jit
from xcs.compiler.cache import Key
from xcs.compiler.driver import PLANS
from xcs.compiler.entries import Eager
from xcs.compiler.signature import Signature

from sound.common import EVENTS, REGISTRY, Program

MODES = ("auto", "trace", "structural", "enhanced")
SCHEDULERS = ("sequential", "topological", "wave", "parallel", "async", "auto")
MODULES = (
    "dspy_style", "langchain_style", "ember_style", "agents", "rag", "voting", "budget", "flags_config",
    "parsing", "eval_harness", "composites", "iterators", "idioms", "shared_state", "regions_style", "match_style", "loop_style", "try_style",
)


def programs() -> list[Program]:
    if not REGISTRY:
        for name in MODULES:
            importlib.import_module(f"sound.{name}")
        names = [p.name for p in REGISTRY]
        dupes = [n for n, c in Counter(names).items() if c > 1]
        assert not dupes, f"duplicate program names: {dupes}"
    return list(REGISTRY)


class LogLines(logging.Handler):
    """The log records a program emits, as ``name:LEVEL:message`` lines in order (thread-safe)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.lines.append(f"{record.name}:{record.levelname}:{record.getMessage()}")


@dataclass
class Outcome:
    value: Any = None
    error: str | None = None  # the (root) exception type's name
    message: str = ""
    calls: Counter = field(default_factory=Counter)
    effects: list = field(default_factory=list)
    prints: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    state: Any = None
    planned: bool | None = None  # a plan (not whole-call eager) serves this signature now


@dataclass
class Run:
    mode: str | None
    scheduler: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    peak: int = 0
    seconds: float = 0.0


def root_error(exc: BaseException) -> BaseException:
    """The user's exception behind the runtime's wrappers (``StepError`` chained to the original)."""
    seen = 0
    while isinstance(exc, XCSError) and exc.__cause__ is not None and seen < 10:
        exc, seen = exc.__cause__, seen + 1
    return exc


def observe(value: Any, depth: int = 0) -> Any:
    """A comparable view of the state an operator holds (sub-operators included)."""
    if depth > 6:
        return "..."
    if isinstance(value, Operator):
        return {k: observe(v, depth + 1) for k, v in sorted(vars(value).items()) if not k.startswith(("_xcs", "__xcs"))}
    if hasattr(value, "snapshot") and callable(value.snapshot):
        return ("snapshot", value.snapshot())
    if isinstance(value, (list, tuple)):
        return [observe(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {repr(k): observe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return (type(value).__name__, {k: observe(getattr(value, k), depth + 1) for k in value.__dataclass_fields__})
    return f"<{type(value).__name__}>"


def plan_in_use(op: Any, inputs: dict) -> bool | None:
    """Whether the cached entry serving ``inputs``' signature is a plan (True) or whole-call eager
    (False); None when nothing is cached. Runs nothing."""
    config = getattr(op, "__xcs_jit__", None)
    if config is None:
        return None
    key = Key.of(config.structure(op), Signature.of(inputs))
    for entry in PLANS.get(key) or ():
        plan = entry.plan
        if type(plan) is Eager:
            return False
        if plan.guard is None or plan.guard(op, inputs):
            return True
    return None


def run(program: Program, mode: str | None = None, scheduler: str | None = None) -> Run:
    """Build a fresh instance and call it on every input in turn (see the module docstring)."""
    op = program.factory()
    if mode is not None:
        op = jit(op, mode=mode)
    result = Run(mode, scheduler)
    handler = LogLines()
    corpus_log = logging.getLogger("corpus")
    corpus_log.addHandler(handler)
    old_level, old_propagate = corpus_log.level, corpus_log.propagate
    corpus_log.setLevel(logging.DEBUG)
    corpus_log.propagate = False
    opts = execution_options(scheduler=scheduler) if scheduler else contextlib.nullcontext()
    peak = 0
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught, opts:
            warnings.simplefilter("always")
            for i, inputs in enumerate(program.inputs):
                EVENTS.reset()
                handler.lines = []
                out = io.StringIO()
                outcome = Outcome()
                try:
                    with contextlib.redirect_stdout(out):
                        value = op(inputs=copy.deepcopy(inputs))
                    outcome.value = copy.deepcopy(dict(value))
                except Exception as exc:  # noqa: BLE001 - the exception type is the outcome
                    root = root_error(exc)
                    outcome.error = type(root).__name__
                    outcome.message = f"{type(exc).__name__}: {exc}"[:300]
                outcome.calls = Counter(EVENTS.calls)
                outcome.effects = list(EVENTS.effects)
                outcome.prints = out.getvalue().splitlines()
                outcome.logs = list(handler.lines)
                peak = max(peak, EVENTS.peak)
                if mode is not None:
                    outcome.planned = plan_in_use(op, inputs)
                program.mutate(op, i)
                outcome.state = observe(op)
                result.outcomes.append(outcome)
        result.warnings = [f"{w.category.__name__}: {w.message}" for w in caught
                           if issubclass(w.category, (GraphBreakWarning,)) or "xcs" in str(w.filename)]
    finally:
        corpus_log.removeHandler(handler)
        corpus_log.setLevel(old_level)
        corpus_log.propagate = old_propagate
    result.seconds = time.perf_counter() - start
    result.peak = peak
    return result


def _short(value: Any, n: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def differences(eager: Run, compiled: Run) -> list[str]:
    """What a user would see differ between the eager and the compiled run, one line each."""
    found = []
    for i, (e, c) in enumerate(zip(eager.outcomes, compiled.outcomes)):
        where = f"call {i}"
        if e.error or c.error:
            if e.error != c.error:
                found.append(f"{where}: eager {'raised ' + e.error if e.error else 'returned'}, compiled "
                             f"{'raised ' + c.message if c.error else 'returned ' + _short(c.value)}")
                continue
        elif e.value != c.value:
            found.append(f"{where}: output {_short(c.value)} != eager {_short(e.value)}")
        if e.calls != c.calls:
            extra = c.calls - e.calls
            missing = e.calls - c.calls
            found.append(f"{where}: LLM/tool calls differ: {sum(c.calls.values())} vs eager {sum(e.calls.values())}"
                         f" (extra {_short(list(extra.elements()), 120)}, missing {_short(list(missing.elements()), 120)})")
        if e.effects != c.effects:
            found.append(f"{where}: effects {_short(c.effects)} != eager {_short(e.effects)}")
        if e.prints != c.prints:
            found.append(f"{where}: printed {_short(c.prints)} != eager {_short(e.prints)}")
        if e.logs != c.logs:
            found.append(f"{where}: logged {_short(c.logs)} != eager {_short(e.logs)}")
        if e.state != c.state:
            found.append(f"{where}: state after the call {_short(c.state)} != eager {_short(e.state)}")
    if len(eager.outcomes) != len(compiled.outcomes):
        found.append("different number of calls completed")
    return found
