"""Shards of a batch for ``pmap``, ``pjit`` (``xcs.transforms``) and meshes (``xcs.mesh``).

It owns the device a shard runs on (``DEVICE``, read by ``xcs.mesh.current_device()``), how many
worker slots a call gets (``default_slots``) and how a batch splits into contiguous shards
(``shard_bounds``), and running one shard in a worker process (``run_shard_bytes``: a module-level
function, so a process pool pickles it by name), with picklable results and errors
(``UnpicklableError``, ``RemoteError``).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import traceback
from typing import Any

from xcs.runtime.batching import NOT_RUN, Batch, RunState, call_element
from xcs.runtime.errors import TransformError, XCSError
from xcs.runtime.options import current_options, execution_options
from xcs.runtime.schedulers import resolve

# The device (worker slot) a pmap shard or a mesh block runs on: ``xcs.mesh.current_device()``.
DEVICE: contextvars.ContextVar[Any] = contextvars.ContextVar("xcs_device", default=None)


class UnpicklableError(TransformError):
    """``backend="process"``: the function, an input or an output cannot be pickled."""


class RemoteError(XCSError, RuntimeError):
    """An exception raised in a worker process that could not be sent back as itself: its type name,
    message and the remote traceback are in the message."""


def slots_bound() -> int | None:
    """The current bound on threads: ``max_workers`` of the options, else of the scheduler, else None."""
    options = current_options()
    return options.max_workers or resolve(options.scheduler).max_workers


def default_slots() -> int:
    """Worker slots when nothing is given: ``max_workers`` of the options or scheduler, else the CPUs."""
    return slots_bound() or os.cpu_count() or 1


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``(lo, hi)`` ranges covering ``range(n)``, sizes differing by at most one."""
    shards = max(1, min(shards, n))
    size, extra = divmod(n, shards)
    bounds, lo = [], 0
    for s in range(shards):
        hi = lo + size + (1 if s < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def is_batched(fn: Any) -> bool:
    """Whether ``fn`` takes whole batches (a transform's result) rather than single elements."""
    return hasattr(fn, "xcs_run_batch")


def call_elements(fn: Any, batch: Batch, out: list, lo: int, hi: int, state: RunState, base: int, label: str) -> None:
    """Run elements ``lo`` to ``hi`` of ``batch`` one after another in this thread, into ``out``."""
    for i in range(lo, hi):
        if state.stop.is_set():
            return
        call_element(fn, batch, out, i, state, base, label)


def run_shard_bytes(fn_bytes: bytes, payload: bytes) -> bytes:
    """In a worker process: run one shard and return its pickled outcomes (always picklable)."""
    fn = pickle.loads(fn_bytes)
    inputs, keys, n, collect, device, options, label = pickle.loads(payload)
    batch = Batch(inputs, keys, {key: inputs[key] for key in keys}, n)
    state = RunState(collect)
    token = DEVICE.set(device)
    try:
        with execution_options(**options) if options else contextlib.nullcontext():
            if is_batched(fn):
                out = fn.xcs_run_batch(batch, state, 0)
            else:
                out = [NOT_RUN] * n
                call_elements(fn, batch, out, 0, n, state, 0, label)
    finally:
        DEVICE.reset(token)
    return _portable(out, label)


def _portable(out: list, label: str) -> bytes:
    """``pickle.dumps(out)``, with every unpicklable output or error replaced by a picklable failure."""
    for i, item in enumerate(out):
        if isinstance(item, BaseException):
            out[i] = _portable_error(item)
    try:
        return pickle.dumps(out)
    except Exception:
        pass
    for i, item in enumerate(out):
        if isinstance(item, BaseException) or item is NOT_RUN:
            continue
        try:
            pickle.dumps(item)
        except Exception as exc:
            out[i] = UnpicklableError(
                f"{label}: element output cannot be pickled back from the worker process: "
                f"{type(exc).__name__}: {exc}"
            )
    return pickle.dumps(out)


def _portable_error(error: BaseException) -> BaseException:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        error.add_note(f"(in worker process {os.getpid()})\n{text}")
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RemoteError(f"{type(error).__module__}.{type(error).__qualname__}: {error}\n{text}")


def check_picklable(value: Any, what: str, label: str) -> bytes:
    """``pickle.dumps(value)``, or an ``UnpicklableError`` that says what and how to fix it."""
    try:
        return pickle.dumps(value)
    except Exception as exc:
        raise UnpicklableError(
            f"{label}: {what} cannot be pickled ({type(exc).__name__}: {exc}); backend='process' sends "
            "the function and each shard's inputs to worker processes by pickling: define functions, "
            "operator classes and values at module level (not lambdas, closures or local classes), or "
            "use backend='thread'"
        ) from exc
