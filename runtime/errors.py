"""The ``XCSError`` hierarchy, shared by every layer (``xcs`` re-exports it as the public path)."""

from __future__ import annotations

import builtins


class XCSError(Exception):
    """Base class of every error ember-xcs raises on purpose."""


class OperatorInputError(XCSError, TypeError):
    """An operator was called with inputs that are not a mapping, or lack a key its plan reads."""


class OperatorOutputError(XCSError, TypeError):
    """An operator's ``forward`` returned something other than a mapping."""


class FrozenOperatorError(XCSError, AttributeError):
    """An attribute of an operator was assigned after ``__init__`` returned."""


class JitError(XCSError, TypeError):
    """``jit`` (or a transform) was applied to something it cannot compile, or with bad options."""


class CycleError(XCSError, ValueError):
    """A dependency graph has a cycle; ``cycle`` is the path, first node repeated at the end."""

    def __init__(self, cycle: tuple[str, ...]):
        self.cycle = tuple(cycle)
        super().__init__("dependency cycle: " + " -> ".join(self.cycle))


class StepError(XCSError, RuntimeError):
    """A plan step raised. Names the step and the user's source line; chained to the original."""

    def __init__(self, step: str, location: str, source: str, cause: BaseException):
        self.step = step
        self.location = location
        self.source = source
        where = f" at {location}" if location else ""
        text = f"\n    {source}" if source else ""
        super().__init__(
            f"step '{step}'{where} failed: {type(cause).__name__}: {cause}{text}"
        )


class SchedulerError(XCSError, ValueError):
    """An unknown scheduler name or an invalid execution option."""


class TimeoutError(XCSError, builtins.TimeoutError):
    """A call (``timeout``) or a step (``step_timeout``) ran out of time.

    ``steps`` names the steps still running when time ran out, ``seconds`` is the limit and ``scope``
    is ``"call"`` or ``"step"``. Also a ``builtins.TimeoutError``, so ``except TimeoutError`` catches it
    without importing ``xcs``. A blocking sync step cannot be pre-empted: it finishes in the background
    and its result is dropped.
    """

    def __init__(self, message: str, steps: tuple[str, ...] = (), seconds: float = 0.0, scope: str = "call"):
        self.steps = tuple(steps)
        self.seconds = seconds
        self.scope = scope
        super().__init__(message)


class AsyncContextError(XCSError, RuntimeError):
    """An async operator or an ``async``-scheduled plan was called synchronously from a thread that is
    running an event loop: ``await op.acall(inputs=...)`` instead."""
