"""The batch engine behind ``vmap``, ``pmap``, ``pjit`` and ``mesh_sharded`` (``xcs.transforms``,
``xcs.mesh``): pure Python, importing nothing from ``compiler`` or ``xcs``.

It owns:

- the transform errors (``TransformError`` and its subclasses, ``ElementError``, ``ShardError``);
- resolving a call's batched keys (``resolve_batch`` -> ``Batch``): named by ``in_axes``, else every
  list, tuple or numpy array input; length and type checks;
- running element tasks under a worker bound in a copy of the caller's context (``run_tasks``), with
  fail-fast (``RunState``) or collect semantics;
- running one shard in a worker process (``run_shard_bytes``), with picklable results and errors;
- assembling per-element outcomes into a mapping of lists (arrays stacked) or a ``BatchResult``.

An element's outcome is its output mapping, a ``Failure`` (it raised), or ``NOT_RUN`` (a raise-mode
batch stopped before it started).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from xcs.runtime.errors import OperatorInputError, OperatorOutputError, XCSError
from xcs.runtime.options import current_options, execution_options
from xcs.runtime.schedulers import resolve

DEFAULT_MAX_WORKERS = 32  # the executor's default bound on threads, used when nothing else bounds a batch

# The device (worker slot) a pmap shard or a mesh block runs on: ``xcs.mesh.current_device()``.
DEVICE: contextvars.ContextVar[Any] = contextvars.ContextVar("xcs_device", default=None)


# ---------------------------------------------------------------------------------------- errors
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


class UnpicklableError(TransformError):
    """``backend="process"``: the function, an input or an output cannot be pickled."""


class MeshError(TransformError):
    """An invalid device mesh, partition spec, or a value whose shape does not fit its spec."""


class ElementError(XCSError, RuntimeError):
    """An element of a batch raised (``on_error="raise"``). ``index`` is its position in the batch,
    ``inputs`` its batched input values; chained to the original exception (also ``error``)."""

    def __init__(self, label: str, index: int, inputs: Mapping[str, Any], error: BaseException):
        self.index = index
        self.inputs = dict(inputs)
        self.error = error
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.inputs.items())
        super().__init__(f"{label}: element {index} ({shown}) failed: {type(error).__name__}: {error}")


class ShardError(XCSError, RuntimeError):
    """A mesh device's block raised; names the device and its mesh coordinates; chained."""

    def __init__(self, label: str, device: Any, coords: Mapping[str, int], error: BaseException):
        self.device = device
        self.coords = dict(coords)
        self.error = error
        where = ", ".join(f"{k}={v}" for k, v in self.coords.items())
        super().__init__(f"{label}: device {device!r} ({where}) failed: {type(error).__name__}: {error}")


class RemoteError(XCSError, RuntimeError):
    """An exception raised in a worker process that could not be sent back as itself: its type name,
    message and the remote traceback are in the message."""


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------- outcomes
class _NotRun:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_RUN"

    def __reduce__(self) -> str:
        return "NOT_RUN"  # pickled by name: the same object in every process


NOT_RUN = _NotRun()


class Failure:
    """The outcome of an element that raised ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error

    def __getstate__(self) -> Any:
        return self.error

    def __setstate__(self, state: Any) -> None:
        self.error = state

    def __repr__(self) -> str:
        return f"Failure({type(self.error).__name__}: {self.error})"


@dataclass(frozen=True)
class ElementFailure:
    """One failed element of an ``on_error="collect"`` batch: its index, batched inputs and error."""

    index: int
    inputs: Mapping[str, Any]
    error: BaseException
    label: str = ""

    def exception(self) -> ElementError:
        """The ``ElementError`` that ``on_error="raise"`` would have raised for this element."""
        error = ElementError(self.label or "batch", self.index, self.inputs, self.error)
        error.__cause__ = self.error
        return error

    def __str__(self) -> str:
        return f"element {self.index}: {type(self.error).__name__}: {self.error}"


class BatchResult(Mapping[str, Any]):
    """What a batch under ``on_error="collect"`` returns.

    - as a mapping: ``{key: list}`` with one entry per element in input order, ``None`` where the
      element failed (numpy arrays are stacked only when no element failed);
    - ``results``: per element, its output mapping or ``None``;
    - ``errors``: ``ElementFailure`` per failed element, by index; ``failed`` / ``succeeded``: indices;
    - ``ok``: no element failed; ``raise_first()`` raises the first failure as ``on_error="raise"``
      would (an ``ElementError`` chained to the original).
    """

    __slots__ = ("outputs", "results", "errors")

    def __init__(self, outputs: Mapping[str, Any], results: list, errors: tuple[ElementFailure, ...] = ()):
        self.outputs = dict(outputs)
        self.results = list(results)
        self.errors = tuple(errors)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def failed(self) -> tuple[int, ...]:
        return tuple(e.index for e in self.errors)

    @property
    def succeeded(self) -> tuple[int, ...]:
        bad = set(self.failed)
        return tuple(i for i in range(len(self.results)) if i not in bad)

    def raise_first(self) -> None:
        if self.errors:
            error = self.errors[0].exception()
            raise error from error.__cause__

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def __repr__(self) -> str:
        errors = "; ".join(str(e) for e in self.errors) or "none"
        return f"BatchResult({len(self.results)} elements, outputs={list(self.outputs)}, errors=[{errors}])"


class RunState:
    """Shared by every level of one batched call: ``collect`` or fail-fast, the stop flag, and the
    first failing element (raise mode)."""

    __slots__ = ("collect", "stop", "first", "lock")

    def __init__(self, collect: bool):
        self.collect = collect
        self.stop = threading.Event()
        self.first: int | None = None
        self.lock = threading.Lock()

    def failed(self, index: int) -> None:
        if self.collect:
            return
        with self.lock:
            if self.first is None:
                self.first = index
        self.stop.set()


# ---------------------------------------------------------------------------------------- batches
def _numpy() -> Any:
    return sys.modules.get("numpy")  # loaded only if the user's code loaded it: never imported here


def is_array(value: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(value, np.ndarray)


def batchable(value: Any) -> bool:
    """Batched by default: a list, a tuple, or a numpy array with at least one dimension."""
    kind = type(value)
    if kind is list or kind is tuple:
        return True
    return is_array(value) and value.ndim >= 1


def normalize_axes(in_axes: Any, who: str) -> tuple[str, ...] | None:
    """``in_axes`` as a tuple of batched keys: a key list, a ``{key: 0 | None}`` mapping or one key."""
    if in_axes is None:
        return None
    if isinstance(in_axes, str):
        return (in_axes,)
    if isinstance(in_axes, Mapping):
        keys = []
        for key, axis in in_axes.items():
            if not isinstance(key, str):
                raise TransformError(f"{who}: in_axes keys must be input names (str), got {key!r}")
            if axis is None:
                continue
            if isinstance(axis, bool) or axis != 0:
                raise TransformError(
                    f"{who}: in_axes[{key!r}] is {axis!r}; a batched input maps over its axis 0 "
                    "(give 0), and None broadcasts it"
                )
            keys.append(key)
        return tuple(keys)
    if isinstance(in_axes, (list, tuple)):
        for key in in_axes:
            if not isinstance(key, str):
                raise TransformError(f"{who}: in_axes must name input keys (str), got {key!r}")
        if len(set(in_axes)) != len(in_axes):
            raise TransformError(f"{who}: in_axes names a key twice: {list(in_axes)!r}")
        return tuple(in_axes)
    raise TransformError(
        f"{who}: in_axes must be a list of input keys or a mapping {{key: 0 or None}}, "
        f"got {type(in_axes).__name__}"
    )


class Batch:
    """A resolved batch: the call's inputs, its batched keys, their (sliceable) values and length."""

    __slots__ = ("inputs", "keys", "values", "n")

    def __init__(self, inputs: Mapping[str, Any], keys: tuple[str, ...], values: dict[str, Any], n: int):
        self.inputs = inputs
        self.keys = keys
        self.values = values
        self.n = n

    def element(self, i: int) -> dict[str, Any]:
        """Element ``i``'s inputs: the broadcast inputs with each batched key's ``i``-th value."""
        out = dict(self.inputs)
        for key in self.keys:
            out[key] = self.values[key][i]
        return out

    def batched_values(self, i: int) -> dict[str, Any]:
        return {key: self.values[key][i] for key in self.keys}

    def slice(self, lo: int, hi: int) -> Batch:
        """Elements ``lo`` to ``hi`` as a batch of their own (broadcast inputs shared)."""
        inputs = dict(self.inputs)
        values = {}
        for key in self.keys:
            values[key] = inputs[key] = self.values[key][lo:hi]
        return Batch(inputs, self.keys, values, hi - lo)


def _length(value: Any) -> int:
    return value.shape[0] if is_array(value) else len(value)


def resolve_batch(inputs: Any, axes: tuple[str, ...] | None, label: str) -> Batch:
    """Split the call's inputs into batched keys and broadcast ones, checking the batched values."""
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{label}: inputs must be a mapping, got {type(inputs).__name__}")
    values: dict[str, Any] = {}
    if axes is None:
        for key, value in inputs.items():
            if batchable(value):
                values[key] = value
        if not values:
            have = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in inputs.items()) or "no inputs"
            raise BatchAxisError(
                f"{label}: no batched input: none of the inputs is a list, tuple or array ({have}); "
                "pass the elements as a list, or name the batched keys with in_axes=[...]"
            )
    else:
        for key in axes:
            if key not in inputs:
                have = ", ".join(repr(k) for k in inputs) or "no keys"
                raise BatchAxisError(f"{label}: in_axes names {key!r}, but the inputs have no such key (inputs have: {have})")
            value = inputs[key]
            if not batchable(value):
                if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Sequence):
                    kind = "a 0-d array" if is_array(value) else f"a {type(value).__name__}"
                    raise BatchAxisError(
                        f"{label}: input {key!r} is batched (in_axes) but holds {kind}, not a list, tuple "
                        "or array of elements; wrap a single element in a list, or leave the key out of "
                        "in_axes to broadcast it"
                    )
                value = list(value)  # another sequence (range, ...): sliceable from here on
            values[key] = value
        if not values:
            raise BatchAxisError(f"{label}: in_axes names no batched key; name at least one input to map over")
    lengths = {key: _length(value) for key, value in values.items()}
    n = next(iter(lengths.values()))
    if any(length != n for length in lengths.values()):
        shown = ", ".join(f"{k!r} has {v}" for k, v in lengths.items())
        raise BatchLengthError(
            f"{label}: batched inputs have different lengths: {shown}; every batched input needs one value "
            "per element (leave a shared list out of in_axes to broadcast it)",
            lengths,
        )
    return Batch(inputs, tuple(values), values, n)


# ---------------------------------------------------------------------------------------- scheduling
def scheduling() -> tuple[int | None, str, Any]:
    """The current bound on threads (``max_workers`` of the options, else of the scheduler, else
    ``None``), the scheduler's mode and its executor factory (``None``: a thread pool)."""
    options = current_options()
    scheduler = resolve(options.scheduler)
    return options.max_workers or scheduler.max_workers, scheduler.mode, scheduler.executor


def default_slots() -> int:
    """Worker slots when nothing is given: ``max_workers`` of the options or scheduler, else the CPUs."""
    bound, _, _ = scheduling()
    return bound or os.cpu_count() or 1


def run_tasks(
    task: Callable[[int], None], count: int, workers: int, state: RunState, mode: str = "parallel",
    factory: Any = None,
) -> None:
    """Run ``task(0) .. task(count - 1)``, at most ``workers`` at a time.

    ``sequential`` / ``topological`` modes (or one worker) run them in order in this thread; ``wave``
    runs ``workers`` at a time and waits for all of them before the next group; every other mode keeps
    ``workers`` threads busy, each taking the next index as soon as it is free. Threads run in copies of
    the caller's context (execution options, the enclosing call). A task records its own failures; once
    ``state.stop`` is set (raise mode) no task starts and this returns without waiting for the tasks
    still running (they finish in the background, their results unused).
    """
    if count <= 0:
        return
    if workers <= 1 or count == 1 or mode in ("sequential", "topological"):
        for i in range(count):
            if state.stop.is_set():
                return
            task(i)
        return
    workers = min(workers, count)
    pool = factory(workers) if factory is not None else ThreadPoolExecutor(workers, thread_name_prefix="xcs-batch")
    finished = False
    try:
        if mode == "wave":  # one pool for every wave: its threads are reused
            for lo in range(0, count, workers):
                if state.stop.is_set() or not _pool_run(pool, task, range(lo, min(lo + workers, count)), workers, state):
                    break
            else:
                finished = True
        else:
            finished = _pool_run(pool, task, range(count), workers, state)
    except BaseException:
        state.stop.set()
        raise
    finally:
        pool.shutdown(wait=finished, cancel_futures=not finished)


def _pool_run(pool: Any, task: Callable[[int], None], indices: range, helpers: int, state: RunState) -> bool:
    """Run the tasks of ``indices`` on ``helpers`` loops submitted to ``pool``; True when every loop
    ended (False: the batch stopped and some loops may still be finishing their task)."""
    helpers = min(helpers, len(indices))
    it = iter(indices)
    lock = threading.Lock()
    left = [helpers]
    wake = threading.Event()
    crashed: list[BaseException] = []
    stop = state.stop

    def loop() -> None:
        try:
            while not stop.is_set():
                with lock:
                    i = next(it, None)
                if i is None:
                    break
                task(i)
        except BaseException as exc:  # a bug or an interrupt, not an element failure: re-raised below
            crashed.append(exc)
            stop.set()
        finally:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last or stop.is_set():
                wake.set()

    for _ in range(helpers):
        pool.submit(contextvars.copy_context().run, loop)
    wake.wait()
    if crashed:
        raise crashed[0]
    return left[0] == 0


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


def run_batch(
    run: Callable[[Batch, RunState], list], inputs: Any, label: str, in_axes: tuple[str, ...] | None,
    collect: bool, out_keys: tuple[str, ...] | None,
) -> Mapping[str, Any]:
    """One batched call: resolve the batch, ``run(batch, state)`` for the per-element outcomes, assemble."""
    batch = resolve_batch(inputs, in_axes, label)
    if batch.n == 0:
        return empty_result(out_keys, collect, label)
    state = RunState(collect)
    return assemble(run(batch, state), batch, state, out_keys, label)


def run_elements(fn: Any, batch: Batch, state: RunState, base: int, label: str, batch_size: int | None) -> list:
    """Every element of ``batch`` through ``fn(inputs=...)``, concurrently under the current scheduler
    (at most ``batch_size`` and ``max_workers`` at once); the outcomes in order."""
    bound, mode, factory = scheduling()
    n = batch.n
    out = [NOT_RUN] * n

    def task(i: int) -> None:
        call_element(fn, batch, out, i, state, base, label)

    run_tasks(task, n, min(bound or DEFAULT_MAX_WORKERS, batch_size or n, n), state, mode, factory)
    return out


def map_batch(
    body: Callable[[dict], Any], inputs: Any, label: str, *, in_axes: tuple[str, ...] | None = None,
    batch_size: int | None = None, collect: bool = False, out_keys: tuple[str, ...] | None = None,
) -> Mapping[str, Any]:
    """A ``vmap`` compiled into a plan (a map region with ``Batching``): ``body(element_inputs)`` per
    element, with exactly ``vmap``'s splitting, concurrency, errors and output assembly."""

    def element(*, inputs: dict) -> Any:
        return body(inputs)

    return run_batch(
        lambda batch, state: run_elements(element, batch, state, 0, label, batch_size),
        inputs, label, in_axes, collect, out_keys,
    )


def call_elements(
    fn: Any, batch: Batch, out: list, lo: int, hi: int, state: RunState, base: int, label: str
) -> None:
    """Run elements ``lo`` to ``hi`` of ``batch`` one after another in this thread, into ``out``."""
    stop = state.stop
    for i in range(lo, hi):
        if stop.is_set():
            return
        call_element(fn, batch, out, i, state, base, label)


def call_element(fn: Any, batch: Batch, out: list, i: int, state: RunState, base: int, label: str) -> None:
    """``out[i] = fn(inputs=element i)``, or a ``Failure`` (recorded in ``state``)."""
    try:
        result = fn(inputs=batch.element(i))
        if type(result) is not dict and not isinstance(result, Mapping):
            raise OperatorOutputError(
                f"{label}: the function must return a mapping, got {type(result).__name__}"
                + (" (did you forget 'return'?)" if result is None else "")
            )
        out[i] = result
    except Exception as exc:
        out[i] = Failure(exc)
        state.failed(base + i)


# ---------------------------------------------------------------------------------------- processes
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
        if type(item) is Failure:
            out[i] = Failure(_portable_error(item.error))
    try:
        return pickle.dumps(out)
    except Exception:
        pass
    for i, item in enumerate(out):
        if type(item) is Failure or item is NOT_RUN:
            continue
        try:
            pickle.dumps(item)
        except Exception as exc:
            out[i] = Failure(UnpicklableError(
                f"{label}: element output cannot be pickled back from the worker process: "
                f"{type(exc).__name__}: {exc}"
            ))
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


# ---------------------------------------------------------------------------------------- outputs
def assemble(
    out: list, batch: Batch, state: RunState, out_keys: tuple[str, ...] | None, label: str
) -> Mapping[str, Any]:
    """The batch's result: ``{key: [value per element]}`` (arrays stacked), or a ``BatchResult``."""
    collect = state.collect
    if not collect and state.first is not None:
        failure = out[state.first]
        error = failure.error if type(failure) is Failure else RuntimeError("element did not run")
        raise ElementError(label, state.first, batch.batched_values(state.first), error) from error
    keys = out_keys
    keyset = None if keys is None else frozenset(keys)
    source = -1
    errors: list[ElementFailure] = []
    results: list[Any] = []
    for i, item in enumerate(out):
        if type(item) is Failure or item is NOT_RUN:
            error = item.error if type(item) is Failure else RuntimeError(f"{label}: element {i} did not run")
            errors.append(ElementFailure(i, batch.batched_values(i), error, label))
            results.append(None)
            continue
        if keyset is None:
            keys = tuple(item)
            keyset = frozenset(keys)
            source = i
        elif item.keys() != keyset:
            given = f"element {source} returned" if source >= 0 else "out_keys declares"
            error = OperatorOutputError(
                f"{label}: element {i} returned keys {sorted(map(str, item))}, but {given} "
                f"{sorted(map(str, keyset))}; every element must return the same keys"
            )
            if not collect:
                raise error
            errors.append(ElementFailure(i, batch.batched_values(i), error, label))
            results.append(None)
            continue
        results.append(item)
    outputs = {key: [None if r is None else r[key] for r in results] for key in keys or ()}
    if not errors:
        stack_arrays(outputs)
    if collect:
        return BatchResult(outputs, results, tuple(errors))
    return outputs


def stack_arrays(outputs: dict[str, list]) -> None:
    """Stack each list of numpy arrays of one shape into one array (in place)."""
    np = _numpy()
    if np is None:
        return
    for key, values in outputs.items():
        first = values[0] if values else None
        if isinstance(first, np.ndarray):
            shape = first.shape
            if all(isinstance(v, np.ndarray) and v.shape == shape for v in values):
                outputs[key] = np.stack(values)


def empty_result(out_keys: tuple[str, ...] | None, collect: bool, label: str) -> Mapping[str, Any]:
    """The result of an empty batch: an empty list per output key, when the keys are known."""
    if out_keys is None:
        raise EmptyBatchError(
            f"{label}: empty batch: no element ran, so the output keys are unknown; pass out_keys=[...] "
            "to the transform to get an empty list per output key"
        )
    outputs = {key: [] for key in out_keys}
    return BatchResult(outputs, [], ()) if collect else outputs
