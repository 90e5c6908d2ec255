"""``xcs.plans``: ``jit``, which compiles an operator class, an operator instance or a ``*, inputs``
function into cached plans, ``JittedFunction`` (what ``jit(function)`` returns), ``dump``, ``mermaid`` and
``cache_info``; ``JitConfig``, the object ``jit`` attaches to what it compiles, is the compiler's jit
driver (``compiler.driver.Driver``) bound to this layer's operators.

Everything a call does (cache key, lookup, miss, disk cache, capture, recompile policy) is the driver's;
this module holds the public entry points and the operator model the driver is given.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Mapping

from xcs.compiler import diagram
from xcs.compiler.extensions import modes
from xcs.compiler.driver import DEFAULT_RECOMPILE_LIMIT, Driver
from xcs.compiler.entries import Compiled, Eager
from xcs.compiler.records import CacheInfo
from xcs.compiler.errors import JitError
from xcs.operator import Operator, check_output, container_cycle, is_async, is_operator


class JitConfig(Driver):
    """The options given to ``jit`` (``Driver``'s fields), attached as ``__xcs_jit__`` to the class,
    instance or function it compiles, with the operator model of ``xcs.operator``."""

    is_operator = staticmethod(is_operator)
    is_async = staticmethod(is_async)
    container_cycle = staticmethod(container_cycle)
    check_output = staticmethod(check_output)

    @staticmethod
    def wrapped(op: Any) -> Callable[..., Any] | None:
        return op.fn if isinstance(op, JittedFunction) else None


def config_of(op: Any, what: str) -> JitConfig:
    """The ``JitConfig`` of a jitted ``op``, or the default one for a plain ``Operator``."""
    config = getattr(op, "__xcs_jit__", None)
    if config is None:
        if not isinstance(op, Operator):
            raise JitError(f"{what} an Operator or a jitted function, got {type(op).__name__}")
        config = JitConfig()
    return config


def compiled(op: Any, inputs: Mapping[str, Any]) -> Compiled:
    """The cache entry for ``op`` on ``inputs``: found; else compiled by a static strategy (nothing
    runs); else captured by the trace, which runs the call."""
    return config_of(op, "expected").compiled(op, inputs)


def dump(op: Any, inputs: Mapping[str, Any]) -> str:
    """The plan text for ``op`` on ``inputs``' signature: what the plan file and snapshots contain.

    Compiling with the trace strategy runs the call once (its operators really run).
    Raises ``JitError`` naming the graph break when the signature runs eagerly.
    """
    return _planned(op, inputs)[1].source


def _planned(op: Any, inputs: Mapping[str, Any]) -> tuple[JitConfig, Compiled]:
    """The config of ``op`` and its cache entry for ``inputs``; ``JitError`` when it runs eagerly."""
    config = config_of(op, "expected")
    entry = config.compiled(op, inputs)
    if isinstance(entry.plan, Eager):
        raise JitError(f"{config.label(op)} has no plan for these inputs: {entry.plan}")
    return config, entry


def mermaid(op: Any, inputs: Mapping[str, Any]) -> str:
    """The plan of ``op`` on ``inputs``' signature as a Mermaid flowchart (GitHub renders it): the
    inputs, one subgraph per wave of steps that run concurrently, the critical path drawn thick."""
    config, entry = _planned(op, inputs)
    return diagram.mermaid(entry.plan, config.label(op))


def cache_info(op: Any) -> CacheInfo:
    """Cache counters of a jitted operator (instance, class, or jitted function), per input signature:
    calls served from memory (hits), calls that missed it (misses), captures and disk loads."""
    return (getattr(op, "__xcs_jit__", None) or JitConfig()).info(op)


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

    async def acall(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        """``await f.acall(inputs=...)``: the plan runs on the running event loop (as ``Operator.acall``)."""
        return await Operator.acall(self, inputs=inputs, **kwargs)

    def __repr__(self) -> str:
        return f"jit({self.__qualname__})"


def jit(
    target: Any = None,
    *,
    mode: str = "auto",
    sample_input: Mapping[str, Any] | None = None,
    recompile_limit: int = DEFAULT_RECOMPILE_LIMIT,
    plan_dir: str | os.PathLike | None = None,
    strict: bool = False,
    numba: bool = True,
) -> Any:
    """Compile an operator class, an operator instance, or a function taking ``*, inputs``.

    ``@jit``, ``@jit(mode="trace", sample_input={...})``, ``jit(instance)`` (marks and returns that
    instance) and ``jit(function)`` all work. With ``sample_input`` a class compiles when each instance
    is constructed, by running the sample through ``forward`` (its operators really run).
    ``recompile_limit``: distinct input signatures per operator before ``on_recompile_limit`` applies.
    ``plan_dir`` (or ``XCS_PLAN_DIR``): also write each plan there as a stable, diffable file named after
    the operator and the signature, with the text ``xcs dump`` prints.
    ``numba=False``: the plan's numeric kernels (``docs/numba.md``) run as Python, as without numba.
    """
    if isinstance(recompile_limit, bool) or not isinstance(recompile_limit, int) or recompile_limit < 1:
        raise JitError(f"recompile_limit must be a positive int, got {recompile_limit!r}")
    if plan_dir is not None and not isinstance(plan_dir, (str, os.PathLike)):
        raise JitError(f"plan_dir must be a path, got {type(plan_dir).__name__}")
    if mode not in modes():
        raise JitError(f"unknown jit mode {mode!r}; valid modes: {', '.join(modes())}")
    if not isinstance(strict, bool):
        raise JitError(f"strict must be True or False, got {strict!r}")
    if not isinstance(numba, bool):
        raise JitError(f"numba must be True or False, got {numba!r}")
    if sample_input is not None and not isinstance(sample_input, Mapping):
        raise JitError(f"sample_input must be a mapping, got {type(sample_input).__name__}")
    config = JitConfig(
        mode, sample_input, recompile_limit=recompile_limit, plan_dir=None if plan_dir is None else os.fspath(plan_dir),
        strict=strict, numba=numba,
    )
    if target is None:
        return lambda t: jit(
            t, mode=mode, sample_input=sample_input, recompile_limit=recompile_limit, plan_dir=plan_dir, strict=strict,
            numba=numba,
        )
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
        config.constructed(jitted)
        return jitted
    raise JitError(
        "jit expects an Operator subclass, an Operator instance, or a function taking `*, inputs`; "
        f"got {type(target).__name__}"
    )
