"""The ``XCSError`` hierarchy, shared by every layer (``xcs`` re-exports it as the public path)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any


class XCSError(Exception):
    """Base class of every error ember-xcs raises on purpose."""


class OperatorInputError(XCSError, TypeError):
    """An operator was called with inputs that are not a mapping, or lack a key its plan reads."""


class InputKeyError(OperatorInputError, KeyError):
    """The inputs lack a key the plan reads, at the top level or nested (``inputs['doc']['title']``).

    Also a ``KeyError``, as eagerly; ``path`` is the key path read (``("doc", "title")``). Its text is
    the message itself (not ``KeyError``'s quoted repr)."""

    def __init__(self, message: str, path: tuple = ()):
        self.path = tuple(path)
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputIndexError(OperatorInputError, IndexError):
    """A sequence in the inputs is too short for an index the plan reads (``inputs['items'][5]``).

    Also an ``IndexError``, as eagerly; ``path`` is the path read, the index last."""

    def __init__(self, message: str, path: tuple = ()):
        self.path = tuple(path)
        super().__init__(message)


class OperatorOutputError(XCSError, TypeError):
    """An operator's ``forward`` returned something other than a mapping."""


class FrozenOperatorError(XCSError, AttributeError):
    """An attribute of an operator was assigned after ``__init__`` returned."""


class CycleError(XCSError, ValueError):
    """A dependency graph has a cycle; ``cycle`` is the path, first node repeated at the end."""

    def __init__(self, cycle: tuple[str, ...]):
        self.cycle = tuple(cycle)
        super().__init__("dependency cycle: " + " -> ".join(self.cycle))


def _at(location: str, source: str) -> tuple[str, str]:
    """How a step's message shows where it is: `` at file:line`` and its source line."""
    return (f" at {location}" if location else ""), (f"\n    {source}" if source else "")


class StepError(XCSError, RuntimeError):
    """A plan step raised. Names the step and the user's source line; chained to the original."""

    def __init__(self, step: str, location: str, source: str, cause: BaseException):
        self.step = step
        self.location = location
        self.source = source
        self.__cause__ = cause
        where, text = _at(location, source)
        super().__init__(f"step '{step}'{where} failed: {type(cause).__name__}: {cause}{text}")


class SchedulerError(XCSError, ValueError):
    """An unknown scheduler name or an invalid execution option."""


class TimeoutError(XCSError, builtins.TimeoutError):
    """A call (``timeout``) or a step (``step_timeout``) ran out of time; also a ``builtins.TimeoutError``.

    ``steps`` names the steps still running, ``seconds`` is the limit, ``scope`` ``"call"`` or ``"step"``.
    """

    def __init__(self, message: str, steps: tuple[str, ...] = (), seconds: float = 0.0, scope: str = "call"):
        self.steps = tuple(steps)
        self.seconds = seconds
        self.scope = scope
        super().__init__(message)

    @classmethod
    def of_call(cls, plan: str, seconds: float, running: tuple[str, ...]) -> TimeoutError:
        message = f"{plan}: call timed out after {seconds:g} s (timeout); still running: {', '.join(running) or 'none'}"
        return cls(message, running, seconds, "call")

    @classmethod
    def of_step(cls, step: Any, seconds: float) -> TimeoutError:
        where, text = _at(step.location, step.source)
        return cls(f"step '{step.name}'{where} timed out after {seconds:g} s (step_timeout){text}", (step.name,), seconds, "step")


class AsyncContextError(XCSError, RuntimeError):
    """An async operator or an ``async``-scheduled plan was called synchronously from a thread that is
    running an event loop: ``await op.acall(inputs=...)`` instead."""


# transforms (``runtime.batching``, ``xcs.transforms``, ``xcs.mesh``)
class TransformError(XCSError, ValueError):
    """A transform was given something it cannot apply to, or bad options."""


class BatchError(TransformError):
    """The inputs of a batched call cannot be split into elements."""


class BatchAxisError(BatchError):
    """No batched input, a key named by ``in_axes`` missing, or a non-sequence under a named axis."""


class BatchLengthError(BatchError):
    """Batched inputs of different lengths; ``lengths`` maps each batched key to its length."""

    def __init__(self, message: str, lengths: Mapping[str, int]):
        self.lengths = dict(lengths)
        super().__init__(message)


class EmptyBatchError(BatchError):
    """An empty batch, and the output keys are unknown (give the transform ``out_keys=``)."""


class ElementError(XCSError, RuntimeError):
    """An element of a batch raised (``on_error="raise"``). ``index`` is its position in the batch,
    ``inputs`` its batched input values; chained to the original exception (also ``error``)."""

    def __init__(self, label: str, index: int, inputs: Mapping[str, Any], error: BaseException):
        self.index = index
        self.inputs = dict(inputs)
        self.error = self.__cause__ = error
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.inputs.items())
        super().__init__(f"{label}: element {index} ({shown}) failed: {type(error).__name__}: {error}")


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
