"""Device-mesh sharding: ``DeviceMesh``, ``PartitionSpec``, ``mesh_sharded`` and ``current_device``.

A ``DeviceMesh`` arranges devices (worker slots now: threads named ``worker:0``, ...; the distributed
backend's workers later) in an n-dimensional grid with named axes. ``mesh_sharded(fn, mesh, ...)``
splits the batched inputs into blocks along named mesh axes (``in_partition``), calls ``fn`` once per
distinct block, concurrently, each on its device, and reassembles the blocks of every output
(``out_partition``). ``fn`` receives a *block* (lists or arrays) and returns blocks: to map an element
operator over its block, pass ``vmap(op)``. Its errors: ``MeshError``, ``ShardError``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from xcs.runtime.batching import RunState, batchable, is_array
from xcs.runtime.errors import OperatorInputError, OperatorOutputError, TransformError, XCSError
from xcs.runtime.pool import run_each
from xcs.operator import Operator
from xcs.shards import DEVICE, default_slots, slots_bound
from xcs.transforms import Transform, Transformed, _check_fn, _name


class MeshError(TransformError):
    """An invalid device mesh, partition spec, or a value whose shape does not fit its spec."""


class ShardError(XCSError, RuntimeError):
    """A mesh device's block raised; names the device and its mesh coordinates; chained."""

    def __init__(self, label: str, device: Any, coords: Mapping[str, int], error: BaseException):
        self.device = device
        self.coords = dict(coords)
        self.error = error
        where = ", ".join(f"{k}={v}" for k, v in self.coords.items())
        super().__init__(f"{label}: device {device!r} ({where}) failed: {type(error).__name__}: {error}")


def current_device() -> Any:
    """The device (worker slot) the calling code runs on inside ``pmap`` or ``mesh_sharded``; else None."""
    return DEVICE.get()


DEFAULT_AXIS_NAMES = ("data", "model")


class DeviceMesh:
    """Devices in a grid with named axes: ``DeviceMesh(shape=(2, 4), axis_names=("data", "model"))``.

    ``devices`` defaults to one device per worker slot (the current ``max_workers``, else the CPU
    count), named ``worker:0``, ``worker:1``, ...; or ``prod(shape)`` of them when ``shape`` is given.
    ``shape`` defaults to ``(len(devices),)``; its product must equal the number of devices. Device
    ``i`` sits at the row-major position ``i``. ``axis_names`` defaults to ``DEFAULT_AXIS_NAMES``' first
    names: ``("data",)`` for a 1-D mesh, ``("data", "model")`` for 2-D, then ``axis2``, ``axis3``, ...
    """

    __slots__ = ("devices", "shape", "axis_names")

    def __init__(self, devices: Any = None, shape: Any = None, axis_names: Any = None):
        if shape is not None:
            if isinstance(shape, int) and not isinstance(shape, bool):
                shape = (shape,)
            if not isinstance(shape, (list, tuple)) or not shape or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape
            ):
                raise MeshError(f"DeviceMesh: shape must be a non-empty tuple of positive ints, got {shape!r}")
            shape = tuple(shape)
        if devices is None:
            count = math.prod(shape) if shape is not None else default_slots()
            devices = tuple(f"worker:{i}" for i in range(count))
        else:
            if isinstance(devices, (str, bytes)) or not isinstance(devices, (list, tuple)) or not devices:
                raise MeshError(f"DeviceMesh: devices must be a non-empty list of device names, got {devices!r}")
            devices = tuple(devices)
            if len(set(devices)) != len(devices):
                raise MeshError(f"DeviceMesh: devices must be distinct, got {list(devices)!r}")
        if shape is None:
            shape = (len(devices),)
        if math.prod(shape) != len(devices):
            raise MeshError(
                f"DeviceMesh: shape {shape} holds {math.prod(shape)} devices, but {len(devices)} were given"
            )
        if axis_names is None:
            axis_names = (*DEFAULT_AXIS_NAMES, *(f"axis{i}" for i in range(2, len(shape))))[: len(shape)]
        if isinstance(axis_names, str):
            axis_names = (axis_names,)
        if not isinstance(axis_names, (list, tuple)) or not all(isinstance(a, str) and a for a in axis_names):
            raise MeshError(f"DeviceMesh: axis_names must be a tuple of names, got {axis_names!r}")
        if len(axis_names) != len(shape):
            raise MeshError(
                f"DeviceMesh: {len(axis_names)} axis names {tuple(axis_names)} for a {len(shape)}-D shape {shape}"
            )
        if len(set(axis_names)) != len(axis_names):
            raise MeshError(f"DeviceMesh: axis names must be distinct, got {tuple(axis_names)}")
        object.__setattr__(self, "devices", devices)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "axis_names", tuple(axis_names))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DeviceMesh is immutable")

    @property
    def size(self) -> int:
        return len(self.devices)

    def axis_size(self, name: str) -> int:
        return self.shape[self.axis_names.index(name)]

    def coords(self) -> list[tuple[int, ...]]:
        """Every device's coordinates, in device order (row-major)."""
        return list(itertools.product(*(range(s) for s in self.shape)))

    def device_at(self, coord: tuple[int, ...]) -> Any:
        index = 0
        for c, s in zip(coord, self.shape):
            index = index * s + c
        return self.devices[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeviceMesh) and (self.devices, self.shape, self.axis_names) == (
            other.devices, other.shape, other.axis_names
        )

    def __hash__(self) -> int:
        return hash((self.devices, self.shape, self.axis_names))

    def __repr__(self) -> str:
        axes = ", ".join(f"{a}={s}" for a, s in zip(self.axis_names, self.shape))
        return f"DeviceMesh({axes})"

    def __reduce__(self) -> Any:
        return (DeviceMesh, (self.devices, self.shape, self.axis_names))


class PartitionSpec:
    """How a value is split over mesh axes, one entry per value dimension: a mesh axis name, a tuple of
    names (split over their combined size, row-major), or ``None`` (not split). ``PartitionSpec()``
    is fully replicated. ``PartitionSpec("data")`` splits dimension 0 (the batch) along ``data``."""

    __slots__ = ("entries",)

    def __init__(self, *entries: Any):
        checked = []
        for entry in entries:
            if entry is None or isinstance(entry, str):
                checked.append(entry)
            elif isinstance(entry, tuple) and entry and all(isinstance(a, str) for a in entry):
                checked.append(entry if len(entry) > 1 else entry[0])
            else:
                raise MeshError(
                    f"PartitionSpec entries must be a mesh axis name, a tuple of names or None, got {entry!r}"
                )
        while checked and checked[-1] is None:
            checked.pop()
        object.__setattr__(self, "entries", tuple(checked))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PartitionSpec is immutable")

    def axes(self, dim: int) -> tuple[str, ...]:
        """The mesh axes dimension ``dim`` is split along (empty: not split)."""
        if dim >= len(self.entries) or self.entries[dim] is None:
            return ()
        entry = self.entries[dim]
        return (entry,) if isinstance(entry, str) else entry

    def all_axes(self) -> tuple[str, ...]:
        return tuple(a for d in range(len(self.entries)) for a in self.axes(d))

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionSpec) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"PartitionSpec({', '.join(map(repr, self.entries))})"

    def __reduce__(self) -> Any:
        return (PartitionSpec, self.entries)


def _check_spec(spec: Any, mesh: DeviceMesh, what: str) -> PartitionSpec:
    if spec is None:
        return PartitionSpec()
    if not isinstance(spec, PartitionSpec):
        raise MeshError(f"{what} must be a PartitionSpec or None, got {type(spec).__name__}")
    used = spec.all_axes()
    for axis in used:
        if axis not in mesh.axis_names:
            raise MeshError(f"{what} {spec!r} names mesh axis {axis!r}; the mesh has axes {mesh.axis_names}")
    if len(set(used)) != len(used):
        raise MeshError(f"{what} {spec!r} uses a mesh axis twice")
    return spec


def _check_partition(partition: Any, mesh: DeviceMesh, what: str) -> Any:
    if partition is None:
        return None
    if isinstance(partition, PartitionSpec):
        return _check_spec(partition, mesh, what)
    if isinstance(partition, Mapping):
        out = {}
        for key, spec in partition.items():
            if not isinstance(key, str):
                raise MeshError(f"{what} keys must be input/output names (str), got {key!r}")
            out[key] = _check_spec(spec, mesh, f"{what}[{key!r}]")
        return out
    raise MeshError(f"{what} must be a PartitionSpec, a mapping of key -> PartitionSpec, or None; got {partition!r}")


class MeshRegion(Operator):
    """Runs ``mesh_sharded``: split, run one block per distinct device assignment, reassemble."""

    __xcs_step__ = True  # one step of a plan (a capture never inlines its forward)

    def __init__(self, fn: Any, mesh: Any, in_partition: Any = None, out_partition: Any = None):
        _check_fn(fn, "mesh_sharded")
        if not isinstance(mesh, DeviceMesh):
            raise MeshError(f"mesh_sharded: mesh must be a DeviceMesh, got {type(mesh).__name__}")
        self.fn = fn
        self.mesh = mesh
        self.in_partition = _check_partition(in_partition, mesh, "in_partition")
        self.out_partition = _check_partition(out_partition, mesh, "out_partition")
        self._xcs_label = f"mesh_sharded({_name(fn)}, {mesh!r})"

    def __repr__(self) -> str:
        return self._xcs_label

    # ---------------------------------------------------------------- split
    def in_specs(self, inputs: Mapping[str, Any]) -> dict[str, PartitionSpec]:
        partition, mesh, label = self.in_partition, self.mesh, self._xcs_label
        if isinstance(partition, Mapping):
            specs = {}
            for key, spec in partition.items():
                if key not in inputs:
                    have = ", ".join(repr(k) for k in inputs) or "no keys"
                    raise MeshError(f"{label}: in_partition names {key!r}, but the inputs have no such key (inputs have: {have})")
                if spec.entries:
                    specs[key] = spec
        else:
            spec = partition if partition is not None else PartitionSpec(mesh.axis_names)
            specs = {key: spec for key, value in inputs.items() if batchable(value)} if spec.entries else {}
        if not specs:
            raise MeshError(
                f"{label}: no input is split: give in_partition={{key: PartitionSpec(...)}}, or pass the "
                "batched inputs as lists, tuples or arrays"
            )
        for key, spec in specs.items():
            value = inputs[key]
            if is_array(value):
                if len(spec) > value.ndim:
                    raise MeshError(f"{label}: input {key!r} has {value.ndim} dimension(s); {spec!r} splits {len(spec)}")
            elif type(value) in (list, tuple):
                if len(spec) > 1:
                    raise MeshError(
                        f"{label}: input {key!r} is a {type(value).__name__}, which splits along dimension 0 only; "
                        f"{spec!r} splits {len(spec)} dimensions (use a numpy array)"
                    )
            else:
                raise MeshError(
                    f"{label}: input {key!r} is split by {spec!r} but holds a {type(value).__name__}, not a list, "
                    "tuple or array"
                )
        return specs

    def part(self, spec: PartitionSpec, dim: int, coord: dict[str, int]) -> tuple[int, int] | None:
        """(part index, number of parts) of dimension ``dim`` for the device at ``coord``."""
        axes = spec.axes(dim)
        if not axes:
            return None
        index, count = 0, 1
        for axis in axes:
            size = self.mesh.axis_size(axis)
            index, count = index * size + coord[axis], count * size
        return index, count

    # ---------------------------------------------------------------- run
    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(inputs, Mapping):
            raise OperatorInputError(f"{self._xcs_label}: inputs must be a mapping, got {type(inputs).__name__}")
        mesh, label = self.mesh, self._xcs_label
        specs = self.in_specs(inputs)
        blocks: dict[tuple, int] = {}  # block assignment -> index of the distinct block
        block_of: dict[tuple[int, ...], int] = {}  # device coordinate -> distinct block
        runs: list[tuple[tuple[int, ...], dict[str, Any] | None]] = []
        for coord in mesh.coords():
            named = dict(zip(mesh.axis_names, coord))
            assignment = tuple(
                (key, tuple(self.part(spec, d, named) for d in range(len(spec)))) for key, spec in specs.items()
            )
            found = blocks.get(assignment)
            if found is None:
                found = blocks[assignment] = len(runs)
                runs.append((coord, _block(inputs, assignment)))
            block_of[coord] = found
        results: list[Any] = [None] * len(runs)
        errors: list[tuple[int, BaseException]] = []
        state = RunState(collect=False)
        fn = self.fn

        def task(r: int) -> None:
            coord, block = runs[r]
            if block is None:  # an empty block: nothing to run on this device
                return
            token = DEVICE.set(mesh.device_at(coord))
            try:
                output = fn(inputs=block)
                if not isinstance(output, Mapping):
                    raise OperatorOutputError(f"{label}: fn must return a mapping, got {type(output).__name__}")
                results[r] = output
            except Exception as exc:
                errors.append((r, exc))
                state.failed(r)
            finally:
                DEVICE.reset(token)

        run_each(task, len(runs), slots_bound() or len(runs), state.stop)
        if errors:
            r, error = errors[0]
            coord = runs[r][0]
            raise ShardError(label, mesh.device_at(coord), dict(zip(mesh.axis_names, coord)), error) from error
        return self.gather(results, block_of, specs)

    # ---------------------------------------------------------------- gather
    def gather(self, results: list, block_of: dict, specs: dict[str, PartitionSpec]) -> dict[str, Any]:
        label, mesh = self._xcs_label, self.mesh
        ran = [r for r in results if r is not None]
        if not ran:
            keys = list(self.out_partition) if isinstance(self.out_partition, Mapping) else None
            if keys is None:
                raise MeshError(f"{label}: every block is empty, so the output keys are unknown; name them in out_partition")
            return {key: [] for key in keys}
        keys = tuple(ran[0])
        for output in ran[1:]:
            if output.keys() != set(keys):
                raise OperatorOutputError(
                    f"{label}: the blocks returned different keys: {sorted(map(str, keys))} and {sorted(map(str, output))}"
                )
        split_axes = {a for spec in specs.values() for a in spec.all_axes() if mesh.axis_size(a) > 1}
        out = {}
        for key in keys:
            spec = self.out_spec(key, specs)
            missing = split_axes - set(spec.all_axes())
            if missing:
                raise MeshError(
                    f"{label}: output {key!r} ({spec!r}) is not reassembled along mesh axis "
                    f"{sorted(missing)[0]!r}, but the inputs are split along it, so its blocks differ there; "
                    "name that axis in out_partition"
                )
            value = self.assemble(key, spec, 0, {}, results, block_of)
            if value is None:
                value = [] if spec.entries else ran[0][key]
            out[key] = value
        return out

    def out_spec(self, key: str, specs: dict[str, PartitionSpec]) -> PartitionSpec:
        partition = self.out_partition
        if isinstance(partition, PartitionSpec):
            return partition
        if isinstance(partition, Mapping):
            return partition.get(key, PartitionSpec())
        firsts = {spec.entries[0] if spec.entries else None for spec in specs.values()}
        if len(firsts) != 1 or any(len(spec) > 1 for spec in specs.values()):
            raise MeshError(
                f"{self._xcs_label}: the inputs are split in different ways ({', '.join(f'{k}: {s!r}' for k, s in specs.items())}), "
                "so how to reassemble the outputs is ambiguous: give out_partition"
            )
        return PartitionSpec(firsts.pop())

    def assemble(self, key: str, spec: PartitionSpec, dim: int, fixed: dict[str, int], results: list, block_of: dict) -> Any:
        mesh = self.mesh
        if dim >= len(spec):
            coord = tuple(fixed.get(axis, 0) for axis in mesh.axis_names)
            result = results[block_of[coord]]
            return None if result is None else result[key]
        axes = spec.axes(dim)
        if not axes:
            return self.assemble(key, spec, dim + 1, fixed, results, block_of)
        parts = []
        for combo in itertools.product(*(range(mesh.axis_size(a)) for a in axes)):
            part = self.assemble(key, spec, dim + 1, {**fixed, **dict(zip(axes, combo))}, results, block_of)
            if part is not None:
                parts.append(part)
        if not parts:
            return None
        return _concat(parts, dim, key, spec, self._xcs_label)


def _block(inputs: Mapping[str, Any], assignment: tuple) -> dict[str, Any] | None:
    """The inputs of one block (``None`` when a split dimension of it is empty)."""
    block = dict(inputs)
    for key, parts in assignment:
        value = inputs[key]
        if is_array(value):
            index = []
            for dim, part in enumerate(parts):
                if part is None:
                    index.append(slice(None))
                else:
                    lo, hi = _bounds(value.shape[dim], *part)
                    if lo == hi:
                        return None
                    index.append(slice(lo, hi))
            block[key] = value[tuple(index)]
        else:
            lo, hi = _bounds(len(value), *parts[0])
            if lo == hi:
                return None
            block[key] = value[lo:hi]
    return block


def _bounds(length: int, index: int, count: int) -> tuple[int, int]:
    """Part ``index`` of ``count`` contiguous parts of ``range(length)`` (sizes differ by at most one)."""
    size, extra = divmod(length, count)
    lo = index * size + min(index, extra)
    return lo, lo + size + (1 if index < extra else 0)


def _concat(parts: list, dim: int, key: str, spec: PartitionSpec, label: str) -> Any:
    if all(is_array(p) for p in parts):
        import numpy as np  # present: the parts are numpy arrays

        if any(p.ndim <= dim for p in parts):
            raise MeshError(f"{label}: output {key!r} has fewer dimensions than {spec!r} reassembles")
        return np.concatenate(parts, axis=dim)
    if dim == 0 and all(type(p) in (list, tuple) for p in parts):
        return [item for p in parts for item in p]
    kinds = sorted({type(p).__name__ for p in parts})
    raise MeshError(
        f"{label}: output {key!r} is reassembled by {spec!r} along dimension {dim}, but its blocks are "
        f"{'/'.join(kinds)}; return lists (dimension 0) or numpy arrays, or take it replicated with "
        "out_partition={key: PartitionSpec()}"
    )


class MeshSharded(Transformed):
    """``mesh_sharded(fn, mesh)``: ``fn`` run per device block of a ``DeviceMesh``."""


def mesh_sharded(fn: Any = None, mesh: DeviceMesh | None = None, *, in_partition: Any = None,
                 out_partition: Any = None) -> Any:
    """Shard ``fn`` over ``mesh``: split the inputs into blocks, run ``fn`` per block, reassemble.

    ``in_partition``: ``{key: PartitionSpec(...)}`` (keys not named are broadcast), one
    ``PartitionSpec`` for every list/tuple/array input, or ``None``: every such input split along
    dimension 0 over all mesh axes (one block per device). Devices that receive the same blocks are
    replicas: ``fn`` runs once for them. ``out_partition``: the same forms for the outputs (a key not
    named is replicated: taken from the first device); ``None`` reassembles every output like the
    inputs' dimension 0. Blocks run concurrently under the current scheduler (one worker slot per
    device); a failing block raises ``ShardError`` naming the device.
    """
    if mesh is None:
        raise MeshError("mesh_sharded needs a mesh: mesh_sharded(fn, DeviceMesh(...), ...)")
    if fn is None:
        MeshRegion(_probe, mesh, in_partition, out_partition)  # validate the options now
        options = {"mesh": mesh, "in_partition": in_partition, "out_partition": out_partition}
        return Transform("mesh_sharded", mesh_sharded, {k: v for k, v in options.items() if v is not None})
    return MeshSharded(MeshRegion(fn, mesh, in_partition, out_partition))


def _probe(*, inputs: Any) -> Any:
    return inputs


__all__ = ["DeviceMesh", "MeshSharded", "PartitionSpec", "current_device", "mesh_sharded"]
