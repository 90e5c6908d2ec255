"""Schedulers: named configurations of the one executor (``runtime.executor``), and their registry.

A ``Scheduler`` is a name, a mode (``MODES``), an optional worker bound and an optional executor
factory. The modes and the protocol for custom schedulers (``register_scheduler``) are in
docs/schedulers.md.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from xcs.runtime.errors import SchedulerError

MODES = ("auto", "sequential", "topological", "wave", "parallel", "async")
DEFAULT_MAX_WORKERS = 32  # threads of a call (or a batch) when neither the options nor the scheduler bound them


def check_max_workers(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SchedulerError(f"max_workers must be a positive int or None, got {value!r}")


@dataclass(frozen=True)
class Scheduler:
    """How the executor runs a plan: ``mode`` with at most ``max_workers`` threads (None: one per step,
    at most ``DEFAULT_MAX_WORKERS``); ``executor(max_workers)``, when set, makes each call's pool."""

    name: str
    mode: str
    max_workers: int | None = None
    executor: Callable[[int], concurrent.futures.Executor] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SchedulerError(f"scheduler {self.name!r}: unknown mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        check_max_workers(self.max_workers)
        if self.executor is not None and not callable(self.executor):
            raise SchedulerError(
                f"scheduler {self.name!r}: executor must be a callable taking max_workers, "
                f"got {type(self.executor).__name__}"
            )


def _builtin(mode: str) -> Callable[..., Scheduler]:
    def factory(**options: Any) -> Scheduler:
        unknown = sorted(set(options) - {"max_workers"})
        if unknown:
            raise SchedulerError(f"unknown scheduler option {unknown[0]!r} for {mode!r}; valid options: max_workers")
        return Scheduler(mode, mode, options.get("max_workers"))

    return factory


_LOCK = threading.Lock()
_FACTORIES: dict[str, Callable[..., Scheduler]] = {mode: _builtin(mode) for mode in MODES}
SCHEDULERS: dict[str, Scheduler] = {mode: Scheduler(mode, mode) for mode in MODES}  # name -> default


def register_scheduler(name: str, factory: Callable[..., Scheduler], *, replace: bool = False) -> Scheduler:
    """Register ``factory(**options) -> Scheduler`` as ``name`` (built-in names cannot be replaced,
    another only with ``replace=True``); returns its default configuration."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
        raise SchedulerError(f"scheduler name must be an identifier-like string, got {name!r}")
    if not callable(factory):
        raise SchedulerError(f"register_scheduler({name!r}): factory must be callable, got {type(factory).__name__}")
    if name in MODES:
        raise SchedulerError(f"cannot replace the built-in scheduler {name!r}")
    if name in _FACTORIES and not replace:
        raise SchedulerError(f"scheduler {name!r} is already registered (pass replace=True)")
    default = _make(name, factory, {})
    with _LOCK:
        _FACTORIES[name], SCHEDULERS[name] = factory, default
    return default


def unregister_scheduler(name: str) -> None:
    if name in MODES:
        raise SchedulerError(f"cannot remove the built-in scheduler {name!r}")
    with _LOCK:
        _FACTORIES.pop(name, None)
        SCHEDULERS.pop(name, None)


def _make(name: str, factory: Callable[..., Scheduler], options: dict[str, Any]) -> Scheduler:
    try:
        scheduler = factory(**options)
    except TypeError as exc:
        raise SchedulerError(f"scheduler {name!r}: bad options {sorted(options)}: {exc}") from exc
    if not isinstance(scheduler, Scheduler):
        raise SchedulerError(f"scheduler factory for {name!r} must return a Scheduler, got {type(scheduler).__name__}")
    return scheduler


def resolve(scheduler: str | Scheduler) -> Scheduler:
    """The ``Scheduler`` itself, or the one registered under a name (an unknown name raises)."""
    if isinstance(scheduler, Scheduler):
        return scheduler
    try:
        return SCHEDULERS[scheduler]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(scheduler, SCHEDULERS, n=1) if isinstance(scheduler, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SchedulerError(f"unknown scheduler {scheduler!r}{hint}; valid schedulers: {', '.join(sorted(SCHEDULERS))}")


def create_scheduler(name: str, **options: Any) -> Scheduler:
    """The scheduler registered as ``name``, configured by ``options`` (built-ins: ``max_workers``)."""
    scheduler = resolve(name)
    return _make(name, _FACTORIES[name], options) if options else scheduler
