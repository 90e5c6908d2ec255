"""Elements run on the per-element runner (``runtime.pool.run_each``): map regions and batches.

A map region of a plan (``map_each``) runs its per-element function over a sequence: results in order,
``SKIP`` (a filter's left-out element) dropped, the first failure by index raised once every element
before it has ended (eager ran them first; elements after it not yet started never start), and nothing
started once the call it runs in has ended. The batch engine behind ``vmap`` (compiled into a plan: ``map_batch``),
``pmap``, ``pjit`` and ``mesh_sharded``: a call's batched keys (``resolve_batch`` -> ``Batch``: named by
``in_axes``, else every list, tuple or numpy array input), its elements run fail-fast or collecting
(``RunState``), and their outcomes (an output mapping, the exception raised, or ``NOT_RUN``) assembled
into a mapping of lists (arrays stacked) or a ``Collected``. Process shards are ``xcs.shards``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from xcs.runtime.errors import (
    BatchAxisError, BatchLengthError, EmptyBatchError, ElementError, OperatorInputError, OperatorOutputError,
)
from xcs.runtime.executor import CALL
from xcs.runtime.outcome import Collected, Failure
from xcs.runtime.pool import run_each, worker_bound


class Skip:
    """What a filter's per-element function returns for an element it leaves out."""

    def __repr__(self) -> str:
        return "SKIP"


SKIP = Skip()


def map_each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``[fn(item) for item in items]``, with the items running concurrently."""
    items = list(items)
    out: list[Any] = [None] * len(items)
    errors: dict[int, BaseException] = {}
    ended, first = [False] * len(items), [len(items)]  # first: the failed element with the lowest index
    stop, change = threading.Event(), threading.Condition()
    frame = CALL.get()  # the call this region runs in

    def element(i: int) -> None:
        try:
            if i > first[0]:
                return  # an element before it failed: eager never reached it
            if frame is not None and frame[0].stop.is_set():
                raise CancelledError("the call this map region runs in has ended: no element starts")
            out[i] = fn(items[i])
        except BaseException as exc:
            with change:
                errors[i], first[0] = exc, min(first[0], i)
            stop.set()
        finally:
            with change:
                ended[i] = True
                change.notify_all()

    run_each(element, len(items), worker_bound(len(items)), stop, "map")
    if errors:  # the runner hands indices out in order: every element before the failure has started
        with change:
            change.wait_for(lambda: all(ended[:first[0]]))
            raise errors[first[0]]
    return [v for v in out if v is not SKIP]


class _NotRun:
    def __reduce__(self) -> str:
        return "NOT_RUN"  # pickled by name: the same object in every process


NOT_RUN = _NotRun()  # the outcome of an element a raise-mode batch stopped before it started


class RunState:
    """Shared by every level of one batched call: ``collect`` or fail-fast, the stop flag, and the
    first element that failed (raise mode)."""

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


@dataclass(slots=True)
class Batch:
    """A resolved batch: the call's inputs, its batched keys, their (sliceable) values and length."""

    inputs: Mapping[str, Any]
    keys: tuple[str, ...]
    values: dict[str, Any]
    n: int

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
    out = [NOT_RUN] * batch.n
    run_each(lambda i: call_element(fn, batch, out, i, state, base, label), batch.n,
             min(worker_bound(batch.n), batch_size or batch.n), state.stop)
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


def call_element(fn: Any, batch: Batch, out: list, i: int, state: RunState, base: int, label: str) -> None:
    """``out[i] = fn(inputs=element i)``, or the exception it raised (recorded in ``state``)."""
    try:
        result = fn(inputs=batch.element(i))
        if type(result) is not dict and not isinstance(result, Mapping):
            raise OperatorOutputError(
                f"{label}: the function must return a mapping, got {type(result).__name__}"
                + (" (did you forget 'return'?)" if result is None else "")
            )
        out[i] = result
    except Exception as exc:
        out[i] = exc
        state.failed(base + i)


def assemble(
    out: list, batch: Batch, state: RunState, out_keys: tuple[str, ...] | None, label: str
) -> Mapping[str, Any]:
    """The batch's result: ``{key: [value per element]}`` (arrays stacked), or a ``Collected``."""
    collect = state.collect
    if not collect and state.first is not None:
        failure = out[state.first]
        error = failure if isinstance(failure, BaseException) else RuntimeError("element did not run")
        raise ElementError(label, state.first, batch.batched_values(state.first), error) from error
    keys = out_keys
    keyset = None if keys is None else frozenset(keys)
    source = -1
    errors: list[Failure] = []
    results: list[Any] = []
    for i, item in enumerate(out):
        error = item if isinstance(item, BaseException) else None
        if item is NOT_RUN:
            error = RuntimeError(f"{label}: element {i} did not run")
        elif error is None and keyset is None:
            keys, keyset, source = tuple(item), frozenset(item), i
        elif error is None and item.keys() != keyset:
            given = f"element {source} returned" if source >= 0 else "out_keys declares"
            error = OperatorOutputError(
                f"{label}: element {i} returned keys {sorted(map(str, item))}, but {given} "
                f"{sorted(map(str, keyset))}; every element must return the same keys"
            )
            if not collect:
                raise error
        if error is not None:
            errors.append(Failure(i, error, inputs=batch.batched_values(i), batch=label))
        results.append(None if error is not None else item)
    outputs = {key: [None if r is None else r[key] for r in results] for key in keys or ()}
    if not errors:
        stack_arrays(outputs)
    if collect:
        return Collected(outputs, results, tuple(errors))
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
    return Collected(outputs, [], ()) if collect else outputs
