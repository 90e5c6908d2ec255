"""Function transforms: ``vmap``, ``pmap``, ``pjit`` and ``compose`` (the mesh API is ``xcs.mesh``).

This module owns the public transform objects; the batch engine (splitting, running elements under a
worker bound, assembling outputs, errors) is ``runtime.batching``, process shards ``xcs.shards``.

A transform applied to a function returns an ``Operator`` (``Vectorized`` for ``vmap``,
``Parallelized`` for ``pmap``/``pjit``): a thin shell whose ``forward`` calls one sub-operator,
``region`` (a ``VmapRegion`` / ``PmapRegion``) that runs the batch. So a transformed operator can be
jitted (``jit(vmap(op))``: a plan of one ``region`` step), held as an attribute of another operator and
called inside its jitted ``forward`` (a plain ``vmap`` is captured statically as a map region:
``__xcs_vmap__``; other transforms as one opaque step that runs the whole batch), nested
in other transforms, and repr'ed, hashed and frozen like any operator.

A transform called without a function returns a configured ``Transform`` to apply later:
``vmap(batch_size=32)(fn)``; ``compose(f, g)(fn) == f(g(fn))``.
"""

from __future__ import annotations

import importlib
import inspect
import multiprocessing
import pickle
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from typing import Any, Callable, Mapping

from xcs.compiler.ir import Batching, Output, output_keys
from xcs.runtime.batching import NOT_RUN, Batch, RunState, run_batch, run_elements
from xcs.runtime.errors import EmptyBatchError, TransformError, XCSError
from xcs.runtime.pool import run_each
from xcs.runtime.options import ExecutionOptions, current_options
from xcs.operator import Operator
from xcs.plans import JittedFunction, config_of
from xcs.shards import DEVICE, call_elements, check_picklable, default_slots, is_batched, run_shard_bytes, shard_bounds

ON_ERROR = ("raise", "collect")
BACKENDS = ("thread", "process")


# ---------------------------------------------------------------------------------------- configured transforms
class Transform:
    """A transform with its options and no function yet: ``vmap(batch_size=32)``. Call it on a
    function (``t(fn)``) to apply it; compose it with others (``compose``)."""

    def __init__(self, name: str, apply: Callable[..., Any], options: Mapping[str, Any]):
        self.name = name
        self.apply = apply
        self.options = dict(options)

    def __call__(self, fn: Any) -> Any:
        if fn is None:
            raise TransformError(f"{self!r} must be applied to a function or an operator, got None")
        return self.apply(fn, **self.options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.name}({shown})"


class Composed(Transform):
    """``compose(f, g, ...)``: applies the transforms right to left, ``f(g(fn))``."""

    def __init__(self, transforms: tuple[Callable[[Any], Any], ...]):
        super().__init__("compose", self._apply, {})
        self.transforms = transforms

    def _apply(self, fn: Any) -> Any:
        for transform in reversed(self.transforms):
            fn = transform(fn)
        return fn

    def __repr__(self) -> str:
        return "compose(" + ", ".join(_name(t) for t in self.transforms) + ")"


def compose(*transforms: Callable[[Any], Any]) -> Composed:
    """Compose transforms right to left: ``compose(f, g)(fn) == f(g(fn))``.

    Each argument is a configured transform (``vmap(batch_size=32)``, ``pmap(num_workers=4)``) or any
    callable taking a function and returning one (``jit``). ``compose()`` is the identity.
    """
    for transform in transforms:
        if isinstance(transform, Operator) or not callable(transform):
            kind = "an operator" if isinstance(transform, Operator) else type(transform).__name__
            raise TransformError(
                f"compose expects transforms (e.g. vmap(batch_size=32), pmap(num_workers=4), jit), got {kind}: "
                f"{_name(transform)}; give a transform its options alone and compose(...) applies it"
            )
    return Composed(tuple(transforms))


# ---------------------------------------------------------------------------------------- the operators
class Transformed(Operator):
    """The operator a transform returns: ``forward`` calls ``region``, the operator that runs the batch
    (a map region or one opaque step of a plan when it is jitted or called inside a jitted forward)."""

    __xcs_step__ = True  # one step of a plan (a capture never inlines its forward)

    def __init__(self, region: Operator):
        self.region = region

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.region(inputs=inputs)

    @property
    def fn(self) -> Any:
        """The function or operator the transform was applied to."""
        return self.region.fn

    @property
    def __xcs_vmap__(self) -> tuple[str, Batching] | None:
        """Read by the static capture: see ``VmapRegion.__xcs_vmap__``."""
        return getattr(self.region, "__xcs_vmap__", None)  # its ``fn`` is the region's

    def __repr__(self) -> str:
        return repr(self.region)


class BatchedTransform(Transformed):
    """A transform over the elements of one batch axis: nested in another such transform, it is handed
    whole chunks or shards of the batch (``xcs_run_batch``), not single elements."""

    def xcs_run_batch(self, batch: Batch, state: RunState, base: int) -> list:
        return self.region.xcs_run_batch(batch, state, base)


class Vectorized(BatchedTransform):
    """``vmap(fn)``: ``fn`` mapped over a batch, elements concurrently."""


class Parallelized(BatchedTransform):
    """``pmap(fn)`` / ``pjit(fn)``: the batch split into contiguous shards run in parallel."""


class BatchRegion(Operator):
    """What ``vmap`` and ``pmap`` share: the function, the batched keys, out_keys and on_error, and the
    settings inherited from a nested transform (``_xcs_*``: derived, so not part of the structure)."""

    __xcs_step__ = True  # one step of a plan (a capture never inlines its forward)

    kind = "map"

    def __init__(self, fn: Any, *, in_axes: Any, out_keys: Any, on_error: str, label_options: str):
        who = self.kind
        _check_fn(fn, who)
        if on_error not in ON_ERROR:
            raise TransformError(f"{who}: on_error must be 'raise' or 'collect', got {on_error!r}")
        self.fn = fn
        self.in_axes = normalize_axes(in_axes, who)
        self.out_keys = _check_out_keys(out_keys, who)
        self.on_error = on_error
        inner = fn.region if is_batched(fn) else None
        self._xcs_inner = inner
        self._xcs_axes = self.in_axes if self.in_axes is not None or inner is None else inner._xcs_axes
        self._xcs_out_keys = self.out_keys if self.out_keys is not None or inner is None else inner._xcs_out_keys
        self._xcs_collect = on_error == "collect" or (inner is not None and inner._xcs_collect)
        self._xcs_label = f"{who}({_name(fn)}{label_options})"

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        def run(out_keys: tuple[str, ...] | None) -> Mapping[str, Any]:
            return run_batch(
                lambda batch, state: self.xcs_run_batch(batch, state, 0), inputs, self._xcs_label, self._xcs_axes,
                self._xcs_collect, out_keys,
            )

        try:
            return run(self._xcs_out_keys)
        except EmptyBatchError:
            if self._xcs_out_keys is not None:
                raise
        out_keys = element_keys(self.fn, inputs)  # an empty batch: the keys of the element's plan
        if out_keys is None:
            raise EmptyBatchError(
                f"{self._xcs_label}: empty batch: no element ran and the output keys cannot be known "
                f"without running one ({_name(self.fn)} does not return a dict display with literal keys); "
                "pass out_keys=[...] to get an empty list per output key"
            )
        return run(out_keys)

    def xcs_run_batch(self, batch: Batch, state: RunState, base: int) -> list:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._xcs_label


class VmapRegion(BatchRegion):
    """Runs ``vmap``: every element concurrently, at most ``batch_size`` (and the scheduler's
    ``max_workers``) in flight; over a nested transform, chunks of ``batch_size`` one after another."""

    kind = "vmap"

    def __init__(self, fn: Any, *, in_axes: Any = None, batch_size: int | None = None,
                 on_error: str = "raise", out_keys: Any = None):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise TransformError(f"vmap: batch_size must be a positive int or None, got {batch_size!r}")
        self.batch_size = batch_size
        shown = _options(in_axes=in_axes, batch_size=batch_size, on_error=(on_error, "raise"), out_keys=out_keys)
        super().__init__(fn, in_axes=in_axes, out_keys=out_keys, on_error=on_error, label_options=shown)

    @property
    def __xcs_vmap__(self) -> tuple[str, Batching] | None:
        """How a jitted ``forward`` calling this vmap captures it statically: a map region over ``fn``
        (the attribute path) with these batching settings. None over a nested transform, whose call
        stays one step."""
        if self._xcs_inner is not None:
            return None
        return "fn", Batching(self._xcs_label, self._xcs_axes, self.batch_size, self._xcs_collect, self._xcs_out_keys)

    def xcs_run_batch(self, batch: Batch, state: RunState, base: int) -> list:
        n = batch.n
        inner = self._xcs_inner
        if inner is not None:  # chunks of batch_size, each handed whole to the nested transform
            size = self.batch_size or n
            if size >= n:
                return inner.xcs_run_batch(batch, state, base)
            out: list = []
            for lo in range(0, n, size):
                if state.stop.is_set():
                    out.extend([NOT_RUN] * (n - lo))
                    break
                out.extend(inner.xcs_run_batch(batch.slice(lo, min(lo + size, n)), state, base + lo))
            return out
        return run_elements(self.fn, batch, state, base, self._xcs_label, self.batch_size)


class PmapRegion(BatchRegion):
    """Runs ``pmap``: the batch split into ``num_workers`` contiguous shards, one per worker (threads,
    or processes with ``backend="process"``); a shard runs its elements in order, or is handed whole to
    a nested transform."""

    kind = "pmap"

    def __init__(self, fn: Any, *, num_workers: int | None = None, devices: Any = None, backend: Any = "thread",
                 in_axes: Any = None, out_keys: Any = None, on_error: str = "raise", mp_context: str | None = None,
                 kind: str = "pmap"):
        if kind != "pmap":
            self.kind = kind
        who = kind
        if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1):
            raise TransformError(f"{who}: num_workers must be a positive int or None, got {num_workers!r}")
        executor = None
        if isinstance(backend, Executor):
            executor, backend = backend, "executor"
        elif backend not in BACKENDS:
            raise TransformError(
                f"{who}: backend must be 'thread', 'process' or a concurrent.futures.Executor, got {backend!r}"
            )
        if mp_context is not None:
            if backend != "process":
                raise TransformError(f"{who}: mp_context applies to backend='process' only")
            if mp_context not in multiprocessing.get_all_start_methods():
                raise TransformError(
                    f"{who}: mp_context must be one of {', '.join(multiprocessing.get_all_start_methods())}, "
                    f"got {mp_context!r}"
                )
        self.num_workers = num_workers
        self.devices = _check_devices(devices, who)
        self.backend = backend
        self.mp_context = mp_context
        self._xcs_executor = executor
        shown = _options(
            num_workers=num_workers, devices=self.devices, backend=(backend, "thread"), in_axes=in_axes,
            on_error=(on_error, "raise"), out_keys=out_keys,
        )
        super().__init__(fn, in_axes=in_axes, out_keys=out_keys, on_error=on_error, label_options=shown)
        self._xcs_fn_bytes = None
        if backend in ("process", "executor"):
            self._xcs_fn_bytes = check_picklable(_by_name_if_shadowed(fn), f"the function {_name(fn)}", self._xcs_label)

    def shards(self, n: int) -> int:
        count = self.num_workers or (len(self.devices) if self.devices else default_slots())
        return max(1, min(count, n))

    def device(self, shard: int) -> Any:
        return self.devices[shard % len(self.devices)] if self.devices else f"worker:{shard}"

    def xcs_run_batch(self, batch: Batch, state: RunState, base: int) -> list:
        bounds = shard_bounds(batch.n, self.shards(batch.n))
        if self._xcs_fn_bytes is not None:
            return self._run_processes(batch, state, base, bounds)
        out = [NOT_RUN] * batch.n
        inner, fn, label = self._xcs_inner, self.fn, self._xcs_label

        def task(s: int) -> None:
            lo, hi = bounds[s]
            token = DEVICE.set(self.device(s))
            try:
                if inner is not None:
                    out[lo:hi] = inner.xcs_run_batch(batch.slice(lo, hi), state, base + lo)
                else:
                    call_elements(fn, batch, out, lo, hi, state, base, label)
            finally:
                DEVICE.reset(token)

        run_each(task, len(bounds), len(bounds), state.stop)
        return out

    def _run_processes(self, batch: Batch, state: RunState, base: int, bounds: list[tuple[int, int]]) -> list:
        label = self._xcs_label
        options = _portable_options()
        payloads = [
            self._payload(batch.slice(lo, hi), state.collect, self.device(s), options)
            for s, (lo, hi) in enumerate(bounds)
        ]
        executor = self._xcs_executor
        own = executor is None
        if own:
            context = multiprocessing.get_context(self.mp_context or "spawn")
            executor = ProcessPoolExecutor(len(bounds), mp_context=context)
        out = [NOT_RUN] * batch.n
        futures: dict = {}
        finished = False
        try:
            futures = {executor.submit(run_shard_bytes, self._xcs_fn_bytes, p): s for s, p in enumerate(payloads)}
            for future in as_completed(futures):
                s = futures[future]
                lo, hi = bounds[s]
                try:
                    sub = pickle.loads(future.result())
                except (BrokenProcessPool, Exception) as exc:
                    raise TransformError(
                        f"{label}: the worker process of shard {s} (elements {lo}..{hi - 1}) failed: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                out[lo:hi] = sub
                for i, item in enumerate(sub):
                    if isinstance(item, BaseException):
                        state.failed(base + lo + i)
                if state.stop.is_set():
                    break
            else:
                finished = True
        finally:
            if own:
                executor.shutdown(wait=finished, cancel_futures=not finished)
            elif not finished:
                for future in futures:
                    future.cancel()
        return out

    def _payload(self, sub: Batch, collect: bool, device: Any, options: dict) -> bytes:
        label = self._xcs_label
        try:
            return pickle.dumps((dict(sub.inputs), sub.keys, sub.n, collect, device, options, label))
        except Exception:
            for key, value in sub.inputs.items():
                check_picklable(value, f"the input {key!r}", label)
            return check_picklable((dict(sub.inputs), sub.keys, sub.n, collect, device, options, label), "the inputs", label)


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


# ---------------------------------------------------------------------------------------- the transforms
def vmap(fn: Any = None, *, in_axes: Any = None, batch_size: int | None = None, on_error: str = "raise",
         out_keys: Any = None) -> Any:
    """Map ``fn`` (an operator, a jitted operator, a ``*, inputs`` function or another transform) over a
    batch: ``vmap(fn)(inputs={"data": [...], "shared": x})``.

    - Batched keys: those named by ``in_axes`` (a key list, or a ``{key: 0 | None}`` mapping), by
      default every input holding a list, tuple or numpy array; the other inputs are broadcast to every
      element. Different lengths, a non-sequence under a named key, no batched key: ``BatchError``s.
    - Output: ``{key: [value per element]}`` in input order; numpy arrays of one shape are stacked. An
      empty batch returns an empty list per output key: the element's, when its compiled plan fixes
      them (a dict display with literal keys), else ``out_keys``; ``EmptyBatchError`` when neither says.
    - Elements run concurrently under the current scheduler: ``max_workers`` threads (default 32;
      ``sequential``/``topological`` run them in order in the calling thread, ``wave`` in groups), at
      most ``batch_size`` in flight. Over a nested transform (``vmap(pmap(fn), batch_size=32)``) the
      batch is handed to it in chunks of ``batch_size``, one chunk after another.
    - ``on_error="raise"``: the first failure raises ``ElementError`` (index, inputs, chained) and no
      new element starts; ``"collect"``: every element runs and a ``Collected`` is returned.

    Without ``fn``, returns the configured transform: ``vmap(batch_size=32)``.
    """
    options = {"in_axes": in_axes, "batch_size": batch_size, "on_error": on_error, "out_keys": out_keys}
    if fn is None:
        VmapRegion(_Probe(), **options)  # validate the options now
        return Transform("vmap", vmap, {k: v for k, v in options.items() if v != _DEFAULTS.get(k)})
    return Vectorized(VmapRegion(fn, **options))


def pmap(fn: Any = None, *, num_workers: int | None = None, devices: Any = None, backend: Any = "thread",
         in_axes: Any = None, out_keys: Any = None, on_error: str = "raise", mp_context: str | None = None) -> Any:
    """Split the batch into ``num_workers`` contiguous shards run in parallel, results gathered in order.

    ``num_workers`` defaults to ``len(devices)``, else the current ``max_workers``, else the CPU count.
    ``devices`` (names, or a ``DeviceMesh``) label the shards' worker slots (``xcs.mesh.current_device()``
    inside a shard). ``backend="thread"`` (default) runs shards in threads; ``"process"`` in a process
    pool (``mp_context``, default ``"spawn"``) for CPU-bound pure functions: the function is checked
    picklable when ``pmap`` is called, the inputs before any shard starts (``UnpicklableError``); a
    ``concurrent.futures.Executor`` you own may be given instead. A shard runs its elements in order,
    or, when ``fn`` is itself a transform, hands the whole shard to it. ``in_axes``, ``out_keys`` and
    ``on_error`` are as for ``vmap``.
    """
    options = {"num_workers": num_workers, "devices": devices, "backend": backend, "in_axes": in_axes,
               "out_keys": out_keys, "on_error": on_error, "mp_context": mp_context}
    if fn is None:
        PmapRegion(_Probe(), **options)  # validate the options now
        return Transform("pmap", pmap, {k: v for k, v in options.items() if v != _DEFAULTS.get(k)})
    return Parallelized(PmapRegion(fn, **options))


def pjit(fn: Any = None, *, mode: str = "auto", **pmap_options: Any) -> Any:
    """``jit`` + ``pmap``: ``fn`` is jitted (unless it already is: an instance is marked, like
    ``jit(instance)``) so one plan is compiled for the element signature and reused by every element of
    every shard; the shards run as ``pmap(..., **pmap_options)``. ``mode`` is ``jit``'s."""
    unknown = sorted(set(pmap_options) - set(inspect.signature(pmap).parameters) - {"fn"})
    if unknown:
        valid = ", ".join(p for p in inspect.signature(pmap).parameters if p != "fn")
        raise TransformError(f"pjit: unknown option {unknown[0]!r}; valid options: mode, {valid}")
    if fn is None:
        pmap(**pmap_options)  # validate the options now
        return Transform("pjit", pjit, {"mode": mode, **pmap_options} if mode != "auto" else pmap_options)
    if is_batched(fn):
        raise TransformError(
            f"pjit({_name(fn)}): pjit compiles an element function; for a transform, jit its element "
            "function instead, e.g. pmap(vmap(jit(op)))"
        )
    _check_fn(fn, "pjit")
    if getattr(fn, "__xcs_jit__", None) is None:
        fn = importlib.import_module("xcs.plans").jit(fn, mode=mode)  # the module: ``xcs.plans`` is the function
    return Parallelized(PmapRegion(fn, kind="pjit", **pmap_options))


# ---------------------------------------------------------------------------------------- helpers
class _Probe:
    """A stand-in function for validating a configured transform's options."""

    def __call__(self, *, inputs: Any) -> Any:
        return inputs


_DEFAULTS: dict[str, Any] = {"backend": "thread", "on_error": "raise"}


def _options(**values: Any) -> str:
    """``", batch_size=32, ..."`` for a label: the options that are set (a tuple: (value, default))."""
    parts = []
    for name, value in values.items():
        if isinstance(value, tuple) and len(value) == 2 and name in ("on_error", "backend"):
            value, default = value
            if value == default:
                continue
        if value is None:
            continue
        if name == "backend" and not isinstance(value, str):
            value = type(value).__name__
        parts.append(f"{name}={value!r}")
    return "".join(", " + p for p in parts)


def _name(fn: Any) -> str:
    if isinstance(fn, (Transformed, Transform)):
        return repr(fn)
    if isinstance(fn, Operator):
        return type(fn).__qualname__
    if type(fn).__name__ == "JittedFunction":
        return repr(fn)
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def element_keys(fn: Any, inputs: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The output keys of one element of ``fn`` (an operator, a jitted function, or a transform over
    one) when its compiled plan fixes them, from a static capture (nothing runs); the batched inputs
    of the empty batch stand as ``None``. None when they cannot be known without running an element."""
    if is_batched(fn):
        return fn.region._xcs_out_keys or element_keys(fn.region.fn, inputs)
    if not isinstance(fn, (Operator, JittedFunction)):
        return None
    config = config_of(fn, "expected")
    sample = {k: None if isinstance(v, (list, tuple)) and not v else v for k, v in inputs.items()}
    try:
        cap = config.graph_of(fn, sample, config.label(fn), run=False)
    except XCSError:
        return None
    if cap.graph is None:
        return None
    out = cap.graph.nodes[-1]
    return output_keys(cap.graph.nodes, out.value) if isinstance(out, Output) else None


def _check_fn(fn: Any, who: str) -> None:
    if isinstance(fn, type):
        raise TransformError(
            f"{who} expects an operator instance or a function taking `*, inputs`; got the class "
            f"{fn.__qualname__} (instantiate it: {who}({fn.__qualname__}(...)))"
        )
    if isinstance(fn, Transform):
        raise TransformError(f"{who}: {fn!r} is a transform, not a function: apply it first ({fn!r}(fn))")
    if not callable(fn):
        raise TransformError(f"{who} expects an operator or a function taking `*, inputs`; got {type(fn).__name__}")
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        params = inspect.signature(fn).parameters
        takes = "inputs" in params and params["inputs"].kind in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        if not takes and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise TransformError(
                f"{who}({fn.__qualname__}): a function must take the keyword argument 'inputs' "
                "(def f(*, inputs): ...)"
            )


def _check_out_keys(out_keys: Any, who: str) -> tuple[str, ...] | None:
    if out_keys is None:
        return None
    if isinstance(out_keys, str) or not isinstance(out_keys, (list, tuple)) or not all(isinstance(k, str) for k in out_keys):
        raise TransformError(f"{who}: out_keys must be a list of output key names, got {out_keys!r}")
    return tuple(out_keys)


def _check_devices(devices: Any, who: str) -> tuple | None:
    if devices is None:
        return None
    mesh_devices = getattr(devices, "devices", None)  # a DeviceMesh
    if mesh_devices is not None and not isinstance(devices, (list, tuple)):
        devices = mesh_devices
    if isinstance(devices, (str, bytes)) or not isinstance(devices, (list, tuple)) or not devices:
        raise TransformError(f"{who}: devices must be a non-empty list of device names or a DeviceMesh, got {devices!r}")
    return tuple(devices)


class _ByName:
    """Pickles as a reference to ``module.qualname``: for a jitted function that shadows the function
    it wraps at module level (``@jit def f``), which pickle cannot reach by value."""

    def __init__(self, module: str, qualname: str):
        self.module = module
        self.qualname = qualname

    def __reduce__(self) -> Any:
        return (_resolve_name, (self.module, self.qualname))


def _resolve_name(module: str, qualname: str) -> Any:
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _by_name_if_shadowed(fn: Any) -> Any:
    try:
        pickle.dumps(fn)
        return fn
    except Exception:
        module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
            try:
                if _resolve_name(module, qualname) is fn:
                    return _ByName(module, qualname)
            except Exception:
                pass
        return fn  # check_picklable reports why


def _portable_options() -> dict[str, Any]:
    """The current execution options that differ from the defaults and can be sent to a process."""
    options = current_options()
    default = ExecutionOptions()
    found = {}
    for f in fields(options):
        if not f.init:
            continue
        value = getattr(options, f.name)
        if value != getattr(default, f.name):
            try:
                pickle.dumps(value)
            except Exception:
                continue
            found[f.name] = value
    return found


__all__ = [
    "BatchedTransform", "Composed", "BatchRegion", "Parallelized", "PmapRegion", "Transform", "Transformed",
"Vectorized", "VmapRegion", "compose", "pjit", "pmap", "vmap",
]
