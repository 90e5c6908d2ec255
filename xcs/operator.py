"""``Operator``: the unit users compose. Mapping in, mapping out, frozen after ``__init__``.

``forward`` may be ``async def``: ``await op.acall(inputs=...)`` awaits it on the running loop, a sync
call runs it to completion (on the event loop of the async call it is part of, else ``asyncio.run``),
and the ``async`` scheduler awaits it natively.

``op(inputs={...})`` or ``op(key=value, ...)`` validates the inputs, runs ``forward`` (or the compiled
plan when the operator is jitted) and validates the output. Sub-operators are found in attributes and in
lists, tuples and dicts held by attributes, with stable paths such as ``members[2]`` and
``tools['search']``. Those lists and dicts are frozen with the operator (``FrozenList``,
``FrozenDict``): the operator tree a plan was compiled for cannot change under it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.aio import DEFER, Deferred, in_thread, run_sync
from runtime.errors import FrozenOperatorError, OperatorInputError, OperatorOutputError


class OperatorMeta(type):
    """Freezes every instance once construction returns, then runs ahead-of-time compilation."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        op = super().__call__(*args, **kwargs)
        for name, value in list(vars(op).items()):
            if not name.startswith("_xcs"):
                held = _freeze(value)
                if held is not value:
                    object.__setattr__(op, name, held)
        object.__setattr__(op, "_xcs_frozen", True)
        jit = cls.__xcs_jit__
        if jit is not None:
            jit.constructed(op)
        return op


class Operator(metaclass=OperatorMeta):
    """Base class of operators: define ``forward(self, *, inputs)`` returning a mapping."""

    __xcs_jit__: Any = None  # set by ``xcs.plans`` on a class or an instance

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        raise NotImplementedError(f"{type(self).__qualname__} must define forward(self, *, inputs)")

    def __call__(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        inputs = checked_inputs(self, inputs, kwargs)
        probe = DEFER.get()
        if probe is not None:
            if probe.probing:  # a step probed by the async scheduler: it runs or awaits the call
                call = _deferred(self, inputs)
                probe.calls.append(call)
                return call
            probe.check()  # a Fence: this thread works for an `acall` that may have been cancelled
        jit = self.__xcs_jit__
        if is_async(self):
            return run_sync(_acall(self, inputs), f"{type(self).__qualname__}.forward")
        if jit is not None:
            return jit.call(self, inputs)
        return check_output(self, self.forward(inputs=inputs))

    async def acall(self, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Mapping[str, Any]:
        """``await op.acall(inputs=...)``: the call, inside a running event loop.

        A jitted operator runs its plan on this loop (``auto`` means the ``async`` scheduler here); an
        ``async def forward`` is awaited; a sync ``forward`` runs in a thread of its own, so the loop
        keeps running and any async operator it calls runs back on this loop.
        """
        return await _acall(self, checked_inputs(self, inputs, kwargs))

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_xcs_frozen"):
            raise FrozenOperatorError(
                f"{type(self).__qualname__}.{name}: operators are frozen after __init__ "
                "(a compiled plan is keyed by the operator's structure); build a new operator instead"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_xcs_frozen"):
            raise FrozenOperatorError(f"{type(self).__qualname__}.{name}: operators are frozen after __init__")
        object.__delattr__(self, name)

    def __repr__(self) -> str:
        lines = [type(self).__qualname__]
        for path, child in sub_operators(self):
            depth = path.count(".") + path.count("[")
            lines.append("  " * max(depth, 1) + f"{path}: {type(child).__qualname__}")
        return "\n".join(lines)


_ASYNC_FORWARD: dict[type, bool] = {}


def is_async(op: Any) -> bool:
    """Whether ``op``'s ``forward`` (or a jitted function) is an ``async def``."""
    cls = type(op)
    known = _ASYNC_FORWARD.get(cls)
    if known is None:
        fn = getattr(op, "fn", None) if not isinstance(op, Operator) else cls.forward
        known = inspect.iscoroutinefunction(fn)
        if isinstance(op, Operator):
            _ASYNC_FORWARD[cls] = known  # a jitted function's answer depends on the instance
    return known


def _sync_forward(op: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    jit = op.__xcs_jit__
    if jit is not None:
        return jit.call(op, inputs)
    return check_output(op, op.forward(inputs=inputs))


async def _acall(op: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    jit = op.__xcs_jit__
    if jit is not None and hasattr(jit, "acall"):
        return await jit.acall(op, inputs)
    if is_async(op):
        forward = op.fn if not isinstance(op, Operator) else op.forward
        return check_output(op, await forward(inputs=inputs))
    return await in_thread(_sync_forward, op, inputs)


def _deferred(op: Any, inputs: Mapping[str, Any]) -> Any:
    """What an operator call made by a step of the async scheduler hands back: an awaitable for an
    async or jitted operator (a nested plan runs on the same loop), a ``Deferred`` for a sync one."""
    if is_async(op) or op.__xcs_jit__ is not None:
        return _acall(op, inputs)
    return Deferred(functools.partial(_sync_forward, op, inputs))


def checked_inputs(op: Any, inputs: Any, kwargs: dict[str, Any]) -> Mapping[str, Any]:
    """The call's inputs: ``inputs=`` or the keyword arguments, which must be a mapping."""
    if inputs is None:
        inputs = kwargs
    elif kwargs:
        raise OperatorInputError(
            f"{type(op).__qualname__}: pass inputs={{...}} or keyword inputs, not both "
            f"(got inputs= and {', '.join(kwargs)})"
        )
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{type(op).__qualname__}: inputs must be a mapping, got {type(inputs).__name__}")
    return inputs


def check_output(op: Any, output: Any) -> Mapping[str, Any]:
    if isinstance(output, Mapping):
        return output
    name = getattr(type(op), "__qualname__", str(op))
    if output is None:
        raise OperatorOutputError(f"{name}.forward returned None; it must return a mapping (did you forget 'return'?)")
    raise OperatorOutputError(f"{name}.forward must return a mapping, got {type(output).__name__}")


def is_operator(value: Any) -> bool:
    return isinstance(value, Operator)


def _refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise FrozenOperatorError(
        f"this {type(self).__mro__[1].__name__} holds sub-operators and is frozen with its operator "
        "(a compiled plan is keyed by the operator tree); build a new operator instead"
    )


class FrozenList(list):
    """A list of sub-operators, frozen with the operator that holds it (reads are a list's)."""

    __xcs_frozen__ = True
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenList, (list(self),))


class FrozenDict(dict):
    """A dict of sub-operators, frozen with the operator that holds it (reads are a dict's)."""

    __xcs_frozen__ = True
    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    """``value`` with every list and dict that holds an operator (at any depth) frozen."""
    if type(value) in (list, tuple):
        items = [_freeze(v) for v in value]
        changed = any(a is not b for a, b in zip(items, value))
        if type(value) is tuple:
            return tuple(items) if changed else value
        return FrozenList(items) if changed or any(isinstance(v, Operator) for v in value) else value
    if type(value) is dict:
        items = {k: _freeze(v) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return FrozenDict(items) if changed or any(isinstance(v, Operator) for v in value.values()) else value
    return value


def sub_operators(op: Operator, prefix: str = "") -> Iterator[tuple[str, Operator]]:
    """Every operator below ``op`` with its path, depth first, in attribute order."""
    for name, value in vars(op).items():
        if not name.startswith("_xcs"):
            yield from _walk(value, f"{prefix}.{name}" if prefix else name)


def _walk(value: Any, path: str) -> Iterator[tuple[str, Operator]]:
    if isinstance(value, Operator):
        yield path, value
        yield from sub_operators(value, path)
    elif type(value) in (list, tuple, FrozenList):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif type(value) in (dict, FrozenDict):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]")
