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

import dataclasses
import functools
import inspect
import types
from collections.abc import Iterator, Mapping
from typing import Any

from xcs.runtime.aio import DEFER, Deferred, in_thread, run_sync
from xcs.runtime.errors import FrozenOperatorError, OperatorInputError, OperatorOutputError


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
        if kwargs or type(inputs) is not dict:
            inputs = checked_inputs(self, inputs, kwargs)
        probe = DEFER.get()
        if probe is not None:
            if probe.probing:  # a step probed by the async scheduler: it runs or awaits the call
                call = _deferred(self, inputs)
                probe.calls.append(call)
                return call
            probe.check()  # a Fence: this thread works for an `acall` that may have been cancelled
        jit = self.__xcs_jit__
        if _ASYNC_FORWARD.get(type(self)) is not False and is_async(self):
            return run_sync(_acall(self, inputs), f"{type(self).__qualname__}.forward")
        if jit is not None:
            return jit.call(self, inputs)
        output = self.forward(inputs=inputs)
        return output if type(output) is dict else check_output(self, output)

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
        """The class and its operator tree, one sub-operator a line; a back-reference to an operator
        already on the path (``stage.parent``) is shown as ``<cycle> -> <its path>``, not followed."""
        root = type(self).__qualname__
        lines = [root]
        for path, child, back in operator_tree(self):
            depth = path.count(".") + path.count("[")
            shown = type(child).__qualname__ if back is None else f"<cycle> -> {back or root}"
            lines.append("  " * max(depth, 1) + f"{path}: {shown}")
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
    return Deferred(_sync_forward, op, inputs)


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
    if type(output) is dict or isinstance(output, Mapping):
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


def _freeze(value: Any, active: tuple = ()) -> Any:
    """``value`` with every list and dict that holds an operator (at any depth) frozen; a container
    that holds itself is left as it is (``active``: the containers being frozen)."""
    if type(value) not in (list, tuple, dict) or any(value is seen for seen in active):
        return value
    active = (*active, value)
    if type(value) is dict:
        items = {k: _freeze(v, active) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return FrozenDict(items) if changed or any(isinstance(v, Operator) for v in value.values()) else value
    frozen = [_freeze(v, active) for v in value]
    changed = any(a is not b for a, b in zip(frozen, value))
    if type(value) is tuple:
        return tuple(frozen) if changed else value
    return FrozenList(frozen) if changed or any(isinstance(v, Operator) for v in value) else value


def sub_operators(op: Operator, prefix: str = "") -> Iterator[tuple[str, Operator]]:
    """Every operator below ``op`` with its path, depth first, in attribute order. A back-reference
    to an operator on the path from ``op`` (a cycle) is not followed, nor is a container in itself."""
    for path, child, back in operator_tree(op, prefix):
        if back is None:
            yield path, child


def operator_tree(op: Operator, prefix: str = "") -> Iterator[tuple[str, Operator, str | None]]:
    """``sub_operators`` with the back-references: ``(path, operator, None)`` for a sub-operator,
    ``(path, operator, ancestor_path)`` for a reference to an operator already on the path (``""``:
    ``op`` itself)."""
    yield from _children(op, prefix, [(op, prefix)], [])


def _children(op: Operator, prefix: str, active: list, containers: list) -> Iterator[tuple[str, Operator, str | None]]:
    for name, value in tuple(vars(op).items()):
        if not name.startswith("_xcs"):
            yield from _walk(value, f"{prefix}.{name}" if prefix else name, active, containers)


def _walk(value: Any, path: str, active: list, containers: list) -> Iterator[tuple[str, Operator, str | None]]:
    if isinstance(value, Operator):
        for seen, where in active:
            if seen is value:
                yield path, value, where
                return
        yield path, value, None
        active.append((value, path))
        yield from _children(value, path, active, containers)
        active.pop()
    elif type(value) in (list, tuple, dict, FrozenList, FrozenDict):
        if any(value is seen for seen in containers):
            return
        containers.append(value)
        if isinstance(value, dict):
            for key, item in tuple(value.items()):
                yield from _walk(item, f"{path}[{key!r}]", active, containers)
        else:
            for index, item in enumerate(value):
                yield from _walk(item, f"{path}[{index}]", active, containers)
        containers.pop()


def container_cycle(op: Any) -> tuple[str, ...] | None:
    """The attribute path of a list, tuple or dict that contains itself, reachable from ``op``'s
    attributes the way the structure hash follows them (operators, lists, tuples, dicts, dataclass
    and namespace fields, ``functools.partial``): ``("Pipeline.cfg['self']", "Pipeline.cfg")``, or None.

    Back-references to operators are not cycles here: the structure hash records them as references."""
    return _container_cycle(op, type(op).__qualname__, [], [])


def _container_cycle(value: Any, path: str, objects: list, containers: list) -> tuple[str, ...] | None:
    kind = type(value)
    if kind in (list, tuple, dict):
        for seen, where in containers:
            if seen is value:
                return (path, where)
        containers.append((value, path))
        items = (
            [(f"{path}[{key!r}]", item) for key, item in tuple(value.items())] if kind is dict
            else [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        )
    else:
        if any(value is seen for seen in objects):  # an operator or object on the path: a reference
            return None
        if isinstance(value, Operator):
            items = [(f"{path}.{name}", attr) for name, attr in tuple(vars(value).items()) if not name.startswith("_xcs")]
        elif isinstance(value, functools.partial):
            items = [(f"{path}.func", value.func), (f"{path}.args", value.args), (f"{path}.keywords", value.keywords)]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            items = [(f"{path}.{f.name}", getattr(value, f.name, None)) for f in dataclasses.fields(value)]
        elif isinstance(value, types.SimpleNamespace):
            items = [(f"{path}.{name}", attr) for name, attr in tuple(vars(value).items())]
        else:
            return None
        objects.append(value)
    for where, item in items:
        found = _container_cycle(item, where, objects, containers)
        if found is not None:
            return found
    (containers if kind in (list, tuple, dict) else objects).pop()
    return None
