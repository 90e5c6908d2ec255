"""Device meshes, partition specs and ``mesh_sharded`` over 1-D and 2-D meshes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xcs import (
    DeviceMesh, MeshError, Operator, PartitionSpec as P, ShardError, TransformError, compose, current_device,
    execution_options, jit, mesh_sharded, vmap,
)


class Double(Operator):
    def forward(self, *, inputs):
        return {"y": inputs["x"] * 2 + inputs.get("b", 0)}


def block_times_ten(*, inputs):
    return {"y": inputs["x"] * 10}


class Calls:
    def __init__(self):
        self.lock = threading.Lock()
        self.blocks = []

    def add(self, block, device):
        with self.lock:
            self.blocks.append((block, device))


# ---------------------------------------------------------------------------------------- DeviceMesh
def test_default_mesh_has_one_device_per_worker_slot():
    with execution_options(max_workers=3):
        mesh = DeviceMesh()
    assert mesh.devices == ("worker:0", "worker:1", "worker:2")
    assert mesh.shape == (3,) and mesh.axis_names == ("data",) and mesh.size == 3
    assert DeviceMesh(shape=(2, 3), axis_names=("data", "model")).devices[-1] == "worker:5"


def test_mesh_coordinates_are_row_major():
    mesh = DeviceMesh(["a", "b", "c", "d", "e", "f"], shape=(2, 3), axis_names=("data", "model"))
    assert mesh.coords()[:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert mesh.device_at((1, 0)) == "d" and mesh.axis_size("model") == 3
    assert repr(mesh) == "DeviceMesh(data=2, model=3)"
    assert mesh == DeviceMesh(["a", "b", "c", "d", "e", "f"], shape=(2, 3), axis_names=("data", "model"))
    with pytest.raises(AttributeError):
        mesh.shape = (6,)


@pytest.mark.parametrize("make, message", [
    (lambda: DeviceMesh(["a", "b", "c"], shape=(2, 2), axis_names=("x", "y")), "holds 4 devices, but 3 were given"),
    (lambda: DeviceMesh(shape=(2, 2), axis_names=("x",)), "1 axis names"),
    (lambda: DeviceMesh(shape=(2, 2), axis_names=("x", "x")), "must be distinct"),
    (lambda: DeviceMesh(shape=(0,)), "positive ints"),
    (lambda: DeviceMesh(devices=[]), "non-empty list"),
    (lambda: DeviceMesh(devices=["a", "a"]), "devices must be distinct"),
    (lambda: P(3), "mesh axis name, a tuple of names or None"),
    (lambda: mesh_sharded(Double(), DeviceMesh(shape=(2,)), in_partition={"x": P("model")}), "names mesh axis 'model'"),
    (lambda: mesh_sharded(Double(), DeviceMesh(shape=(2, 2), axis_names=("a", "b")), in_partition=P(("a", "b"), "a")),
     "uses a mesh axis twice"),
    (lambda: mesh_sharded(Double(), DeviceMesh(shape=(2,)), in_partition=["x"]), "must be a PartitionSpec"),
    (lambda: mesh_sharded(Double(), "mesh"), "mesh must be a DeviceMesh"),
    (lambda: mesh_sharded(Double()), "needs a mesh"),
])
def test_invalid_meshes_and_specs_are_clear_errors(make, message):
    with pytest.raises(MeshError, match=message) as info:
        make()
    assert isinstance(info.value, TransformError)


def test_partition_spec():
    assert P("data", None) == P("data") and len(P("data", None)) == 1
    assert P(("data",)) == P("data")
    assert P(("a", "b"), None, "c").axes(0) == ("a", "b") and P("a").axes(3) == ()
    assert repr(P("data", None, "model")) == "PartitionSpec('data', None, 'model')"


# ---------------------------------------------------------------------------------------- 1-D
@pytest.mark.parametrize("n", [1, 3, 10])
@pytest.mark.parametrize("scheduler", ["auto", "sequential", "wave", "parallel"])
def test_1d_mesh_equals_a_plain_loop(n, scheduler):
    mesh = DeviceMesh(shape=(4,))
    f = mesh_sharded(vmap(Double()), mesh)
    with execution_options(scheduler=scheduler):
        out = f(inputs={"x": list(range(n)), "b": 1})
    assert out == {"y": [x * 2 + 1 for x in range(n)]}


def test_1d_blocks_are_contiguous_and_run_on_their_device():
    calls = Calls()

    def record(*, inputs):
        calls.add(list(inputs["x"]), current_device())
        return {"x": list(inputs["x"]), "device": [current_device()] * len(inputs["x"])}

    out = mesh_sharded(record, DeviceMesh(["d0", "d1", "d2"]))(inputs={"x": list(range(7))})
    assert out["x"] == list(range(7))
    assert out["device"] == ["d0"] * 3 + ["d1"] * 2 + ["d2"] * 2
    assert sorted(calls.blocks) == [([0, 1, 2], "d0"), ([3, 4], "d1"), ([5, 6], "d2")]


def test_a_batch_smaller_than_the_mesh_leaves_devices_idle():
    calls = Calls()

    def record(*, inputs):
        calls.add(list(inputs["x"]), current_device())
        return {"y": [v + 1 for v in inputs["x"]]}

    assert mesh_sharded(record, DeviceMesh(shape=(8,)))(inputs={"x": [1, 2]}) == {"y": [2, 3]}
    assert len(calls.blocks) == 2
    with pytest.raises(MeshError, match="output keys are unknown"):
        mesh_sharded(record, DeviceMesh(shape=(2,)))(inputs={"x": []})
    empty = mesh_sharded(record, DeviceMesh(shape=(2,)), out_partition={"y": P("data")})(inputs={"x": []})
    assert empty == {"y": []}


def test_arrays_are_split_and_reassembled():
    x = np.arange(10.0)
    out = mesh_sharded(block_times_ten, DeviceMesh(shape=(3,)))(inputs={"x": x})
    assert isinstance(out["y"], np.ndarray) and out["y"].tolist() == (x * 10).tolist()


def test_broadcast_inputs_reach_every_block():
    out = mesh_sharded(vmap(Double(), in_axes=["x"]), DeviceMesh(shape=(2,)), in_partition={"x": P("data")})(
        inputs={"x": [1, 2, 3], "b": 100}
    )
    assert out == {"y": [102, 104, 106]}


# ---------------------------------------------------------------------------------------- 2-D
def test_2d_mesh_splits_an_array_along_both_axes():
    calls = Calls()

    def f(*, inputs):
        calls.add(inputs["x"].shape, current_device())
        return {"y": inputs["x"] * 10}

    mesh = DeviceMesh(shape=(2, 3), axis_names=("data", "model"))
    x = np.arange(4 * 9).reshape(4, 9)
    sharded = mesh_sharded(f, mesh, in_partition={"x": P("data", "model")}, out_partition={"y": P("data", "model")})
    out = sharded(inputs={"x": x})
    assert (out["y"] == x * 10).all()
    assert sorted(calls.blocks, key=lambda c: c[1]) == [((2, 3), f"worker:{i}") for i in range(6)]


def test_2d_mesh_replicas_run_once():
    calls = Calls()

    def f(*, inputs):
        calls.add(list(inputs["x"]), current_device())
        return {"y": [v * 2 for v in inputs["x"]]}

    mesh = DeviceMesh(shape=(2, 3), axis_names=("data", "model"))
    out = mesh_sharded(f, mesh, in_partition={"x": P("data")})(inputs={"x": list(range(5))})
    assert out == {"y": [0, 2, 4, 6, 8]}
    assert sorted(calls.blocks) == [([0, 1, 2], "worker:0"), ([3, 4], "worker:3")]  # one per data row


def test_2d_mesh_over_combined_axes_and_two_inputs_on_different_axes():
    mesh = DeviceMesh(shape=(2, 2), axis_names=("data", "model"))
    out = mesh_sharded(vmap(Double()), mesh, in_partition=P(("data", "model")))(inputs={"x": list(range(9))})
    assert out == {"y": [x * 2 for x in range(9)]}

    def outer(*, inputs):  # a block of rows times a block of columns
        return {"grid": np.outer(inputs["rows"], inputs["cols"])}

    rows, cols = np.arange(4), np.arange(6)
    grid = mesh_sharded(
        outer, mesh, in_partition={"rows": P("data"), "cols": P("model")}, out_partition={"grid": P("data", "model")}
    )(inputs={"rows": rows, "cols": cols})
    assert (grid["grid"] == np.outer(rows, cols)).all()


def test_2d_reassembly_errors():
    mesh = DeviceMesh(shape=(2, 2), axis_names=("data", "model"))
    both = {"x": P("data", "model")}
    with pytest.raises(MeshError, match="not reassembled along mesh axis 'model'"):
        mesh_sharded(block_times_ten, mesh, in_partition=both, out_partition={"y": P("data")})(
            inputs={"x": np.ones((4, 4))}
        )
    with pytest.raises(MeshError, match="splits along dimension 0 only"):
        mesh_sharded(block_times_ten, mesh, in_partition=both)(inputs={"x": [[1, 2], [3, 4]]})
    with pytest.raises(MeshError, match="has 1 dimension"):
        mesh_sharded(block_times_ten, mesh, in_partition=both)(inputs={"x": np.ones(4)})
    with pytest.raises(MeshError, match="holds a str"):
        mesh_sharded(block_times_ten, mesh, in_partition=both)(inputs={"x": "abcd"})
    with pytest.raises(MeshError, match="in_partition names 'z'"):
        mesh_sharded(block_times_ten, mesh, in_partition={"z": P("data")})(inputs={"x": [1]})
    with pytest.raises(MeshError, match="ambiguous"):
        mesh_sharded(block_times_ten, mesh, in_partition=both)(inputs={"x": np.ones((4, 4))})


def test_scalar_blocks_cannot_be_concatenated_but_can_be_replicated():
    mesh = DeviceMesh(shape=(2,))

    def count(*, inputs):
        return {"n": len(inputs["x"]), "tag": "same"}

    with pytest.raises(MeshError, match="output 'n' is reassembled by PartitionSpec\\('data'\\) along dimension 0"):
        mesh_sharded(count, mesh)(inputs={"x": [1, 2, 3]})
    out = mesh_sharded(count, DeviceMesh(shape=(1,)), out_partition={"tag": P(), "n": P()})(inputs={"x": [1, 2]})
    assert out == {"n": 2, "tag": "same"}


def test_a_failing_block_names_its_device():
    def f(*, inputs):
        if 4 in inputs["x"]:
            raise ValueError("no fours")
        return {"y": list(inputs["x"])}

    mesh = DeviceMesh(shape=(2, 2), axis_names=("data", "model"))
    with pytest.raises(ShardError, match=r"device 'worker:2' \(data=1, model=0\) failed: ValueError: no fours") as info:
        mesh_sharded(f, mesh, in_partition={"x": P("data")})(inputs={"x": list(range(6))})
    assert info.value.device == "worker:2" and isinstance(info.value.__cause__, ValueError)


def test_mesh_sharded_composes_and_jits():
    mesh = DeviceMesh(shape=(3,))
    f = compose(mesh_sharded(mesh=mesh), vmap(batch_size=2))(Double())
    assert f(inputs={"x": list(range(7))}) == {"y": [x * 2 for x in range(7)]}
    assert repr(f) == "mesh_sharded(vmap(Double, batch_size=2), DeviceMesh(data=3))"
    assert jit(f)(inputs={"x": [1, 2]}) == {"y": [2, 4]}
