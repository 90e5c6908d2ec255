"""``jit``: compile an operator (class or instance) or a ``*, inputs`` function into cached plans.

A call computes the input signature, looks up the plans of (structure hash, signature) in the
in-memory cache, and runs the first whose guard holds. On a miss the operator's ``forward`` is captured
by the chosen strategy (the capture call's result is the call's result), the graph is linted, code is
generated, written as a plan file and imported. A graph break makes that signature run eagerly, with
one warning that names the reason, its code and the source line.
"""

from __future__ import annotations

import inspect
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from compiler import ir
from compiler.breaks import Break
from compiler.cache import PlanCache, load_plan, plan_file_name, signature, signature_text, structure_hash
from compiler.codegen import Header, generate
from compiler.trace import Tracer, relative_file
from runtime.errors import JitError
from runtime.executor import execute
from runtime.plan import Plan
from xcs.operator import Operator, check_output, is_operator

MODES = ("auto", "trace")
FUTURE_MODES = ("structural", "enhanced")
PLANS = PlanCache()
PYTHON = sys.version_info[:2]  # plans are cached per Python version; their text is the same on all


class GraphBreakWarning(UserWarning):
    """A jitted operator (for one input signature) runs eagerly because of a graph break."""


@dataclass(frozen=True)
class Eager:
    """The cache entry of a signature whose capture broke: run ``forward`` directly."""

    brk: Break


@dataclass
class Compiled:
    """What one capture produced: the plan (or ``Eager``), its source text and its graph."""

    plan: Plan | Eager
    graph: ir.Graph | None = None
    source: str = ""


@dataclass
class JitConfig:
    """The options given to ``jit``, attached to the class, instance or function it compiles."""

    mode: str = "auto"
    sample_input: Mapping[str, Any] | None = None
    structures: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ entry points
    def constructed(self, op: Operator) -> None:
        """Ahead-of-time compilation: with ``sample_input``, capture when the operator is constructed."""
        if self.sample_input is not None:
            self.call(op, self.sample_input)

    def call(self, op: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.run(op, inputs)[0]

    def run(self, op: Any, inputs: Mapping[str, Any]) -> tuple[Mapping[str, Any], Compiled]:
        """The call's result and the cache entry that produced it."""
        key = (self.structure(op), signature(inputs), PYTHON)
        entries = PLANS.get(key)
        if entries is not None:
            for entry in entries:
                plan = entry.plan
                if type(plan) is Eager:
                    return check_output(op, forward_of(op)(inputs=inputs)), entry
                if plan.guard is None or plan.guard(op, inputs):
                    return check_output(op, execute(plan, op, inputs)), entry
        with PLANS.compile_lock(key):
            entries = PLANS.get(key) or []
            for entry in entries:  # another thread compiled it while we waited
                plan = entry.plan
                if type(plan) is not Eager and (plan.guard is None or plan.guard(op, inputs)):
                    return check_output(op, execute(plan, op, inputs)), entry
            result, compiled = self.capture(op, inputs, key)
            PLANS.add(key, compiled)
            return check_output(op, result), compiled

    # ------------------------------------------------------------------ capture
    def capture(self, op: Any, inputs: Mapping[str, Any], key: tuple) -> tuple[Any, Compiled]:
        """Trace one call: its (eager) result and the compiled plan for its signature and path."""
        label = operator_label(op)
        tracer = Tracer(op, label.rsplit(":", 1)[-1], is_operator)
        result, graph = tracer.run(forward_of(op), inputs)
        if graph is None:
            warnings.warn(
                f"{label} runs eagerly for inputs {signature_text(key[1])}: {tracer.brk}",
                GraphBreakWarning,
                stacklevel=4,
            )
            return result, Compiled(Eager(tracer.brk))
        ir.lint(graph)
        header = Header(label, "trace", signature_text(key[1]), key[0])
        source = generate(graph, header, tuple(tracer.required))
        plan = load_plan(source, plan_file_name(module_label(op), key[0], source))
        return result, Compiled(plan, graph, source)

    def structure(self, op: Any) -> str:
        """The structure hash of ``op`` (computed once: operators are frozen)."""
        known = getattr(op, "_xcs_structure", None)
        if known is None:
            if isinstance(op, JittedFunction):
                fn = op.fn
                used = [fn.__globals__.get(name) for name in fn.__code__.co_names]
                known = structure_hash((fn, [u for u in used if is_operator(u)]), is_operator)
            else:
                known = structure_hash(op, is_operator)
            object.__setattr__(op, "_xcs_structure", known)
        return known


def compiled(op: Any, inputs: Mapping[str, Any]) -> Compiled:
    """The cache entry for ``op`` called on ``inputs``: found, or captured now (which runs the call)."""
    config = getattr(op, "__xcs_jit__", None)
    if config is None:
        config = JitConfig()
        if isinstance(op, Operator):
            return config.run(op, inputs)[1]
        raise JitError(f"expected an Operator or a jitted function, got {type(op).__name__}")
    return config.run(op, inputs)[1]


def dump(op: Any, inputs: Mapping[str, Any]) -> str:
    """The plan text for ``op`` on ``inputs``' signature: what the plan file and snapshots contain.

    Compiling with the trace strategy runs the call once (its operators really run).
    Raises ``JitError`` naming the graph break when the signature runs eagerly.
    """
    entry = compiled(op, inputs)
    if isinstance(entry.plan, Eager):
        raise JitError(f"{operator_label(op)} has no plan for these inputs: {entry.plan.brk}")
    return entry.source


class JittedFunction:
    """``jit(fn)`` for a plain function taking ``*, inputs``: called as ``f(inputs={...})``."""

    def __init__(self, fn: Callable[..., Any], config: JitConfig):
        self.fn = fn
        self.__xcs_jit__ = config
        self.__name__ = getattr(fn, "__name__", "function")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def forward(self, *, inputs: Mapping[str, Any]) -> Any:
        return self.fn(inputs=inputs)

    def __call__(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return Operator.__call__(self, inputs=inputs, **kwargs)  # same validation as an operator

    def __repr__(self) -> str:
        return f"jit({self.__qualname__})"


def forward_of(op: Any) -> Callable[..., Any]:
    return op.fn if isinstance(op, JittedFunction) else op.forward


def operator_label(op: Any) -> str:
    """``file.py:Qualname`` with a repository-relative file: how plans and errors name an operator."""
    target = op.fn if isinstance(op, JittedFunction) else type(op)
    try:
        file = relative_file(inspect.getsourcefile(target) or "")
    except TypeError:
        file = "<unknown>"
    return f"{file}:{target.__qualname__}"


def module_label(op: Any) -> str:
    target = op.fn if isinstance(op, JittedFunction) else type(op)
    return re.sub(r"[^\w.]", "_", f"{target.__module__}.{target.__qualname__}")


def jit(target: Any = None, *, mode: str = "auto", sample_input: Mapping[str, Any] | None = None) -> Any:
    """Compile an operator class, an operator instance, or a function taking ``*, inputs``.

    ``@jit``, ``@jit(mode="trace", sample_input={...})``, ``jit(instance)`` (marks and returns that
    instance) and ``jit(function)`` all work. With ``sample_input`` a class compiles when each instance
    is constructed, by running the sample through ``forward`` (its operators really run).
    """
    if mode in FUTURE_MODES:
        raise JitError(f"jit mode {mode!r} is not available yet; use one of {', '.join(MODES)}")
    if mode not in MODES:
        raise JitError(f"unknown jit mode {mode!r}; valid modes: {', '.join(MODES + FUTURE_MODES)}")
    if sample_input is not None and not isinstance(sample_input, Mapping):
        raise JitError(f"sample_input must be a mapping, got {type(sample_input).__name__}")
    config = JitConfig(mode, sample_input)
    if target is None:
        return lambda t: jit(t, mode=mode, sample_input=sample_input)
    if isinstance(target, type) and issubclass(target, Operator):
        target.__xcs_jit__ = config
        return target
    if isinstance(target, Operator):
        object.__setattr__(target, "__xcs_jit__", config)
        config.constructed(target)
        return target
    if inspect.isfunction(target) or inspect.ismethod(target):
        params = inspect.signature(target).parameters
        if "inputs" not in params or params["inputs"].kind not in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            raise JitError(
                f"jit({target.__qualname__}): a function must take the keyword argument 'inputs' "
                "(def f(*, inputs): ...)"
            )
        jitted = JittedFunction(target, config)
        if sample_input is not None:
            config.call(jitted, sample_input)
        return jitted
    raise JitError(
        "jit expects an Operator subclass, an Operator instance, or a function taking `*, inputs`; "
        f"got {type(target).__name__}"
    )
