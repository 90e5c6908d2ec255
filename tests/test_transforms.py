"""vmap, pmap, pjit and compose: equal to a plain loop for every transform, composition and scheduler;
broadcasting; ordering; bad inputs; failure as data; composition with jit; the process backend."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor

import multiprocessing

import numpy as np
import pytest
from threads import quiet

from xcs import (
    BatchAxisError, BatchLengthError, Collected, DeviceMesh, ElementError, EmptyBatchError, GraphBreakWarning,
    Operator, OperatorOutputError, TransformError, UnpicklableError, XCSError, cache_info, compose,
    current_device, dump, execution_options, jit, mesh_sharded, pjit, pmap, vmap,
)
from xcs.transforms import Transform

SCHEDULERS = ["auto", "sequential", "topological", "wave", "parallel", "async"]


# ---------------------------------------------------------------------------------------- module-level
# (importable by name: the process backend pickles them)
class Affine(Operator):
    def __init__(self, offset=0):
        self.offset = offset

    def forward(self, *, inputs):
        return {"y": inputs["x"] * inputs.get("k", 1) + self.offset, "x": inputs["x"]}


def square(*, inputs):
    return {"y": inputs["x"] * inputs["x"], "device": current_device()}


def fail_on_three(*, inputs):
    if inputs["x"] == 3:
        raise ValueError("three is not allowed")
    return {"y": inputs["x"]}


def fail_on_odd(*, inputs):
    if inputs["x"] % 2:
        raise KeyError(inputs["x"])
    return {"y": inputs["x"]}


def busy(*, inputs):
    total = 0
    for i in range(inputs["n"]):
        total += i * i
    return {"total": total}


@jit
def jitted_square(*, inputs):
    return {"y": inputs["x"] * inputs["x"]}


def process_item(*, inputs):
    return {"result": str(inputs["data"]).upper()}


def loop(fn, batched, **broadcast):
    """The plain Python loop every transform must equal."""
    keys = list(batched)
    outs = [fn(inputs={**broadcast, **dict(zip(keys, values))}) for values in zip(*batched.values())]
    return {key: [o[key] for o in outs] for key in outs[0]}


class Tracker:
    """Peak concurrency and start/end times per element (a mutable helper an operator may hold)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.started = {}
        self.ended = {}
        self.devices = {}
        self.threads = {}

    def enter(self, i):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.started[i] = time.perf_counter()
            self.devices[i] = current_device()
            self.threads[i] = threading.current_thread().name

    def leave(self, i):
        with self.lock:
            self.now -= 1
            self.ended[i] = time.perf_counter()


class Tracked(Operator):
    def __init__(self, tracker, delay=0.005):
        self.tracker = tracker
        self.delay = delay

    def forward(self, *, inputs):
        self.tracker.enter(inputs["x"])
        time.sleep(self.delay)
        self.tracker.leave(inputs["x"])
        return {"y": inputs["x"] + 1}


# ---------------------------------------------------------------------------------------- seed snippets
def test_seed_function_transformations_run():
    batch_process = vmap(process_item)
    batch_results = batch_process(inputs={"data": ["item1", "item2", "item3"]})
    assert batch_results == {"result": ["ITEM1", "ITEM2", "ITEM3"]}

    large_dataset = [f"d{i}" for i in range(100)]
    parallel_process = pmap(process_item, num_workers=4)
    parallel_results = parallel_process(inputs={"data": large_dataset})
    assert parallel_results == {"result": [d.upper() for d in large_dataset]}

    vectorized_parallel = compose(vmap(batch_size=32), pmap(num_workers=4))
    optimized_fn = vectorized_parallel(process_item)
    assert optimized_fn(inputs={"data": large_dataset}) == parallel_results  # nothing dropped past 32

    optimized_fn = pjit(process_item, mode="enhanced")
    assert optimized_fn(inputs={"data": large_dataset}) == parallel_results


# ---------------------------------------------------------------------------------------- equal to a loop
def _mesh(op):
    return mesh_sharded(vmap(op), DeviceMesh(shape=(3,)))


TRANSFORMS = {
    "vmap": lambda op: vmap(op),
    "vmap-batch3": lambda op: vmap(op, batch_size=3),
    "pmap": lambda op: pmap(op, num_workers=3),
    "pjit": lambda op: pjit(op, num_workers=3),
    "vmap(jit)": lambda op: vmap(jit(op)),
    "jit(vmap)": lambda op: jit(vmap(op)),
    "vmap32(pmap4)": compose(vmap(batch_size=32), pmap(num_workers=4)),
    "vmap4(pmap3)": compose(vmap(batch_size=4), pmap(num_workers=3)),
    "pmap3(vmap4)": compose(pmap(num_workers=3), vmap(batch_size=4)),
    "vmap(vmap)": compose(vmap(batch_size=5), vmap(batch_size=2)),
    "pmap(pmap)": compose(pmap(num_workers=2), pmap(num_workers=2)),
    "jit(vmap(pmap))": compose(jit, vmap(batch_size=4), pmap(num_workers=2)),
    "mesh": _mesh,
}


@pytest.mark.parametrize("n", [1, 7, 50])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_equals_a_plain_loop(name, scheduler, n):
    op = Affine(offset=3)  # fresh: pjit / jit mark the instance
    batched = {"x": list(range(n))}
    expected = loop(Affine(offset=3), batched, k=2)
    transformed = TRANSFORMS[name](op)
    with execution_options(scheduler=scheduler, max_workers=4):
        assert transformed(inputs={**batched, "k": 2}) == expected


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_vmapped_operator_inside_a_jitted_forward_is_a_map_region(scheduler):
    class Outer(Operator):
        def __init__(self):
            self.each = vmap(Affine(offset=1))
            self.judge = Affine(offset=0)

        def forward(self, *, inputs):
            answers = self.each(inputs={"x": inputs["items"], "k": 10})
            return {"answers": answers["y"], "best": self.judge(inputs={"x": len(answers["y"])})["y"]}

    items = [1, 2, 3, 4, 5]
    eager = Outer()(inputs={"items": items})
    assert eager == {"answers": [11, 21, 31, 41, 51], "best": 5}
    outer = jit(Outer())
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            assert outer(inputs={"items": items}) == eager
            assert outer(inputs={"items": [7]}) == {"answers": [71], "best": 1}
    text = dump(outer, {"items": items})
    assert """map_batch(answers_body, {"x": inputs["items"], "k": 10}, 'vmap(Affine)')""" in text
    assert "ops.each.fn(inputs=element)" in text  # the region's body: one call per element


def test_vmap_of_a_jitted_operator_compiles_one_element_plan(fresh_plans):
    op = jit(Affine(offset=1))
    out = vmap(op)(inputs={"x": list(range(40))})
    assert out["y"] == [x + 1 for x in range(40)]
    info = cache_info(op)
    assert info.captures == 1 and len(info.signatures) == 1
    assert info.hits + info.misses == 40 and info.misses == 1
    vmap(op)(inputs={"x": list(range(40))})
    assert cache_info(op).captures == 1 and cache_info(op).hits == 79


def test_pjit_compiles_one_plan_for_every_shard(fresh_plans):
    p = pjit(Affine(offset=2), num_workers=4)
    assert p(inputs={"x": list(range(20))})["y"] == [x + 2 for x in range(20)]
    info = cache_info(p.fn)
    assert info.captures == 1 and info.hits == 19


def test_jit_of_vmap_is_a_plan_of_one_map_region(fresh_plans):
    jv = jit(vmap(Affine(offset=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        assert jv(inputs={"x": [1, 2, 3]}) == {"y": [2, 3, 4], "x": [1, 2, 3]}
        assert jv(inputs={"x": [5]}) == {"y": [6], "x": [5]}
    text = dump(jv, {"x": [1, 2]})
    assert "map_batch(region_body, inputs, 'vmap(Affine)')" in text and "steps: 1" in text


def test_transform_plans_are_snapshot_tested(plan_snapshot, fresh_plans):
    class Outer(Operator):
        def __init__(self):
            self.each = vmap(Affine(offset=1), batch_size=8)

        def forward(self, *, inputs):
            return {"ys": self.each(inputs={"x": inputs["items"]})["y"]}

    assert dump(jit(Outer()), {"items": [1, 2]}) == plan_snapshot


# ---------------------------------------------------------------------------------------- batching rules
def test_default_batched_keys_are_lists_tuples_and_arrays_others_broadcast():
    seen = []

    def record(*, inputs):
        seen.append(dict(inputs))
        return {"ok": True}

    vmap(record)(inputs={"a": [1, 2], "b": ("x", "y"), "c": np.array([10, 20]), "s": "shared",
                         "d": {"k": 1}, "n": 5})
    assert sorted(seen, key=lambda e: e["a"]) == [
        {"a": 1, "b": "x", "c": 10, "s": "shared", "d": {"k": 1}, "n": 5},
        {"a": 2, "b": "y", "c": 20, "s": "shared", "d": {"k": 1}, "n": 5},
    ]


def test_in_axes_names_the_batched_keys_and_broadcasts_the_rest():
    def f(*, inputs):
        return {"n": len(inputs["stops"]), "q": inputs["q"]}

    out = vmap(f, in_axes=["q"])(inputs={"q": ["a", "b", "c"], "stops": ["x", "y"]})
    assert out == {"n": [2, 2, 2], "q": ["a", "b", "c"]}
    out = vmap(f, in_axes={"q": 0, "stops": None})(inputs={"q": ["a", "b", "c"], "stops": ["x", "y"]})
    assert out == {"n": [2, 2, 2], "q": ["a", "b", "c"]}
    out = vmap(f, in_axes="q")(inputs={"q": range(3), "stops": []})  # any sequence under a named key
    assert out == {"n": [0, 0, 0], "q": [0, 1, 2]}


def test_nested_transforms_share_the_outer_batched_keys():
    def f(*, inputs):
        return {"q": inputs["q"], "stops": len(inputs["stops"])}

    composed = compose(pmap(num_workers=2, in_axes=["q"]), vmap(batch_size=2))(f)
    assert composed(inputs={"q": [1, 2, 3], "stops": ["a"]}) == {"q": [1, 2, 3], "stops": [1, 1, 1]}


def test_output_order_is_input_order_under_out_of_order_completion():
    done = []

    def slow_first(*, inputs):
        time.sleep(0.01 * (8 - inputs["x"]))
        done.append(inputs["x"])
        return {"x": inputs["x"]}

    for transform in (vmap(slow_first), pmap(slow_first, num_workers=8)):
        done.clear()
        with execution_options(max_workers=8):
            assert transform(inputs={"x": list(range(8))}) == {"x": list(range(8))}
        assert done != sorted(done)  # they really finished out of order


def test_arrays_of_one_shape_are_stacked():
    def f(*, inputs):
        return {"v": np.full(3, inputs["x"]), "s": inputs["x"] * 2, "ragged": np.zeros(inputs["x"] + 1)}

    out = vmap(f)(inputs={"x": np.arange(4)})
    assert isinstance(out["v"], np.ndarray) and out["v"].shape == (4, 3)
    assert out["v"][2].tolist() == [2, 2, 2]
    assert out["s"] == [0, 2, 4, 6]
    assert isinstance(out["ragged"], list) and [len(r) for r in out["ragged"]] == [1, 2, 3, 4]


def test_execution_options_reach_the_elements():
    def f(*, inputs):
        from xcs.runtime.options import current_options

        return {"timeout": current_options().timeout}

    with execution_options(timeout=5.0):
        assert vmap(f)(inputs={"x": [1, 2, 3]}) == {"timeout": [5.0] * 3}


def test_acall_runs_the_batch():
    v = vmap(Affine())
    assert asyncio.run(v.acall(inputs={"x": [1, 2]})) == {"y": [1, 2], "x": [1, 2]}


# ---------------------------------------------------------------------------------------- concurrency
def test_batch_size_bounds_elements_in_flight():
    tracker = Tracker()
    with execution_options(max_workers=16):
        out = vmap(Tracked(tracker), batch_size=3)(inputs={"x": list(range(12))})
    assert out == {"y": list(range(1, 13))}
    assert tracker.peak <= 3


def test_max_workers_bounds_elements_in_flight():
    tracker = Tracker()
    with execution_options(max_workers=2):
        vmap(Tracked(tracker))(inputs={"x": list(range(8))})
    assert tracker.peak <= 2


def test_sequential_runs_in_the_calling_thread_in_order():
    tracker = Tracker()
    with execution_options(scheduler="sequential"):
        vmap(Tracked(tracker, delay=0))(inputs={"x": list(range(5))})
    assert set(tracker.threads.values()) == {threading.current_thread().name}
    assert sorted(tracker.started, key=tracker.started.get) == list(range(5))


def test_wave_runs_groups_of_max_workers():
    tracker = Tracker()
    with execution_options(scheduler="wave", max_workers=3):
        vmap(Tracked(tracker))(inputs={"x": list(range(9))})
    for wave in range(2):
        group, following = range(3 * wave, 3 * wave + 3), range(3 * wave + 3, 3 * wave + 6)
        assert max(tracker.ended[i] for i in group) <= min(tracker.started[i] for i in following)


def test_compose_vmap_over_pmap_runs_chunks_of_batch_size_over_the_workers():
    tracker = Tracker()
    op = Tracked(tracker)
    composed = compose(vmap(batch_size=8), pmap(num_workers=2))(op)
    xs = list(range(20))
    assert composed(inputs={"x": xs}) == loop(Tracked(Tracker(), delay=0), {"x": xs})
    assert tracker.peak <= 2
    chunks = [range(0, 8), range(8, 16), range(16, 20)]
    for chunk, following in zip(chunks, chunks[1:]):
        assert max(tracker.ended[i] for i in chunk) <= min(tracker.started[i] for i in following)
    for chunk in chunks:  # each chunk split into 2 contiguous shards
        half = (len(chunk) + 1) // 2
        assert {tracker.devices[i] for i in chunk[:half]} == {"worker:0"}
        assert {tracker.devices[i] for i in chunk[half:]} == {"worker:1"}


def test_compose_pmap_over_vmap_shards_then_maps_each_shard():
    tracker = Tracker()
    op = Tracked(tracker)
    composed = compose(pmap(num_workers=2), vmap(batch_size=3))(op)
    xs = list(range(20))
    with execution_options(max_workers=16):
        assert composed(inputs={"x": xs}) == loop(Tracked(Tracker(), delay=0), {"x": xs})
    assert tracker.peak <= 6  # 2 shards x 3 in flight
    assert {tracker.devices[i] for i in range(10)} == {"worker:0"}
    assert {tracker.devices[i] for i in range(10, 20)} == {"worker:1"}


def test_pmap_shards_are_contiguous_and_labelled_by_device():
    out = pmap(square, devices=["gpu:0", "gpu:1", "gpu:2"])(inputs={"x": list(range(7))})
    assert out["y"] == [x * x for x in range(7)]
    assert out["device"] == ["gpu:0"] * 3 + ["gpu:1"] * 2 + ["gpu:2"] * 2
    with execution_options(max_workers=2):
        assert pmap(square)(inputs={"x": [1, 2, 3]})["device"] == ["worker:0", "worker:0", "worker:1"]


def test_custom_scheduler_executor_runs_the_elements():
    from xcs.runtime.schedulers import Scheduler
    from concurrent.futures import ThreadPoolExecutor

    made = []

    def factory(workers):
        made.append(workers)
        return ThreadPoolExecutor(workers, thread_name_prefix="custom")

    tracker = Tracker()
    with execution_options(scheduler=Scheduler("mine", "parallel", 3, factory)):
        vmap(Tracked(tracker, delay=0.01))(inputs={"x": list(range(6))})
    assert made == [3] and all(t.startswith("custom") for t in tracker.threads.values())


# ---------------------------------------------------------------------------------------- bad inputs
def test_batched_inputs_of_different_lengths():
    with pytest.raises(BatchLengthError, match="'a' has 3, 'b' has 2") as info:
        vmap(Affine())(inputs={"a": [1, 2, 3], "b": [1, 2]})
    assert info.value.lengths == {"a": 3, "b": 2}
    assert isinstance(info.value, XCSError)


def test_empty_batch_returns_empty_outputs_of_the_given_keys():
    assert vmap(Affine())(inputs={"x": []}) == {"y": [], "x": []}  # the keys of Affine's plan
    with pytest.raises(EmptyBatchError, match="cannot be known without running one.*out_keys"):
        vmap(lambda *, inputs: dict(inputs))(inputs={"x": []})
    assert vmap(Affine(), out_keys=["y", "x"])(inputs={"x": []}) == {"y": [], "x": []}
    assert pmap(Affine(), out_keys=["y"])(inputs={"x": ()}) == {"y": []}
    composed = compose(vmap(batch_size=4), pmap(num_workers=2, out_keys=["y"]))(Affine())
    assert composed(inputs={"x": []}) == {"y": []}
    collected = vmap(Affine(), out_keys=["y"], on_error="collect")(inputs={"x": []})
    assert isinstance(collected, Collected) and collected == {"y": []} and collected.ok


def test_out_keys_are_checked_against_the_elements():
    with pytest.raises(OperatorOutputError, match="out_keys declares"):
        vmap(Affine(), out_keys=["z"])(inputs={"x": [1]})


@pytest.mark.parametrize("value, kind", [("abc", "str"), (3, "int"), ({"a": 1}, "dict"), (np.float64(1), "0-d array")])
def test_a_non_sequence_under_a_named_axis(value, kind):
    if kind == "0-d array":
        value = np.array(1.0)
    with pytest.raises(BatchAxisError, match=f"input 'x' is batched .in_axes. but holds a.? {kind}"):
        vmap(Affine(), in_axes=["x"])(inputs={"x": value})


def test_a_named_key_missing_and_no_batched_input():
    with pytest.raises(BatchAxisError, match="in_axes names 'q', but the inputs have no such key"):
        vmap(Affine(), in_axes=["q"])(inputs={"x": [1]})
    with pytest.raises(BatchAxisError, match="no batched input"):
        vmap(Affine())(inputs={"x": 1, "s": "text"})


def test_inputs_must_be_a_mapping():
    from xcs import OperatorInputError

    with pytest.raises(OperatorInputError):
        vmap(Affine())(inputs=[1, 2])


@pytest.mark.parametrize("make, message", [
    (lambda: vmap(Affine(), batch_size=0), "batch_size must be a positive int"),
    (lambda: vmap(batch_size=True), "batch_size must be a positive int"),
    (lambda: vmap(Affine(), on_error="ignore"), "on_error must be 'raise' or 'collect'"),
    (lambda: vmap(Affine(), in_axes=0), "in_axes must be a list of input keys"),
    (lambda: vmap(Affine(), in_axes={"x": 1}), "maps over its axis 0"),
    (lambda: vmap(Affine(), in_axes=["x", "x"]), "names a key twice"),
    (lambda: vmap(Affine(), out_keys="y"), "out_keys must be a list"),
    (lambda: vmap(Affine), "got the class Affine"),
    (lambda: vmap(lambda x: x), "must take the keyword argument 'inputs'"),
    (lambda: vmap(42), "expects an operator or a function"),
    (lambda: vmap(vmap(batch_size=2)), "is a transform, not a function"),
    (lambda: pmap(Affine(), num_workers=0), "num_workers must be a positive int"),
    (lambda: pmap(Affine(), backend="gpu"), "backend must be 'thread', 'process'"),
    (lambda: pmap(Affine(), mp_context="spawn"), "mp_context applies to backend='process' only"),
    (lambda: pmap(Affine(), devices=[]), "devices must be a non-empty list"),
    (lambda: pjit(Affine(), num_worker=2), "unknown option 'num_worker'"),
    (lambda: pjit(vmap(Affine())), "pjit compiles an element function"),
    (lambda: compose(vmap(batch_size=2), 3), "compose expects transforms"),
    (lambda: compose(vmap(Affine())), "got an operator"),
])
def test_bad_transform_options_are_clear_errors(make, message):
    with pytest.raises(TransformError, match=message):
        make()


def test_an_element_that_returns_no_mapping():
    def bad(*, inputs):
        return None

    with pytest.raises(ElementError, match="element 0 .x=1. failed: OperatorOutputError") as info:
        vmap(bad)(inputs={"x": [1]})
    assert "forget 'return'" in str(info.value)


def test_elements_returning_different_keys():
    def odd_keys(*, inputs):
        return {"a": 1} if inputs["x"] == 0 else {"b": 1}

    with pytest.raises(OperatorOutputError, match=r"element 1 returned keys \['b'\], but element 0 returned \['a'\]"):
        vmap(odd_keys)(inputs={"x": [0, 1]})
    out = vmap(odd_keys, on_error="collect")(inputs={"x": [0, 1]})
    assert out.failed == (1,) and out == {"a": [1, None]}


# ---------------------------------------------------------------------------------------- failures
def test_the_first_failure_raises_naming_the_element_and_nothing_new_starts():
    started = []

    def f(*, inputs):
        started.append(inputs["x"])
        return fail_on_three(inputs=inputs)

    with execution_options(scheduler="sequential"):
        with pytest.raises(ElementError) as info:
            vmap(f)(inputs={"x": list(range(10)), "k": "shared"})
    error = info.value
    assert error.index == 3 and error.inputs == {"x": 3}
    assert isinstance(error.__cause__, ValueError) and error.error is error.__cause__
    assert "vmap(test_the_first_failure_raises_naming_the_element_and_nothing_new_starts.<locals>.f): element 3 (x=3) failed: ValueError: three is not allowed" in str(error)
    assert started == [0, 1, 2, 3]


def test_a_failure_stops_a_concurrent_batch_early_and_leaks_no_thread():
    baseline = quiet()
    started = []

    def f(*, inputs):
        started.append(inputs["x"])
        if inputs["x"] == 0:
            raise RuntimeError("boom")
        time.sleep(0.02)
        return {"y": 1}

    for transform in (vmap(f), pmap(f, num_workers=2), compose(vmap(batch_size=2), pmap(num_workers=2))(f)):
        started.clear()
        with execution_options(max_workers=2):
            with pytest.raises(ElementError, match="boom"):
                transform(inputs={"x": list(range(40))})
        assert len(started) < 10
    deadline = time.time() + 2
    while threading.active_count() > baseline and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == baseline


@pytest.mark.parametrize("transform", [
    lambda f: vmap(f, on_error="collect"),
    lambda f: pmap(f, num_workers=3, on_error="collect"),
    lambda f: compose(vmap(batch_size=3), pmap(num_workers=2, on_error="collect"))(f),
    lambda f: compose(pmap(num_workers=2), vmap(on_error="collect"))(f),
])
@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave"])
def test_collect_returns_per_element_results_and_errors(transform, scheduler):
    with execution_options(scheduler=scheduler):
        out = transform(fail_on_odd)(inputs={"x": list(range(7))})
    assert isinstance(out, Collected) and isinstance(out, Mapping)
    assert not out.ok
    assert out.failed == (1, 3, 5) and out.succeeded == (0, 2, 4, 6)
    assert out["y"] == [0, None, 2, None, 4, None, 6]
    assert dict(out) == {"y": [0, None, 2, None, 4, None, 6]}
    assert out.results[2] == {"y": 2} and out.results[3] is None
    assert [type(f.error) for f in out.failures] == [KeyError] * 3
    assert out.failures[1].step == 3 and out.failures[1].inputs == {"x": 3}
    with pytest.raises(ElementError) as info:
        out.raise_first()
    assert info.value.index == 1 and isinstance(info.value.__cause__, KeyError)
    assert "element 1" in repr(out)


def test_collect_with_no_failure_stacks_arrays():
    def f(*, inputs):
        return {"v": np.ones(2) * inputs["x"]}

    out = vmap(f, on_error="collect")(inputs={"x": [1, 2]})
    assert out.ok and isinstance(out["v"], np.ndarray) and out["v"].shape == (2, 2)


# ---------------------------------------------------------------------------------------- configured transforms
def test_transforms_without_a_function_are_configured_transforms():
    t = vmap(batch_size=32)
    assert isinstance(t, Transform) and repr(t) == "vmap(batch_size=32)"
    assert t(process_item)(inputs={"data": ["a"]}) == {"result": ["A"]}
    c = compose(vmap(batch_size=32), pmap(num_workers=4))
    assert repr(c) == "compose(vmap(batch_size=32), pmap(num_workers=4))"
    assert repr(c(process_item)) == "vmap(pmap(process_item, num_workers=4), batch_size=32)"
    assert compose()(process_item) is process_item
    assert repr(pjit(num_workers=2)) == "pjit(num_workers=2)"


def test_compose_applies_right_to_left():
    order = []

    def tag(name):
        def transform(fn):
            order.append(name)
            return fn
        return transform

    compose(tag("f"), tag("g"), tag("h"))(process_item)
    assert order == ["h", "g", "f"]


def test_pjit_passes_its_mode_to_jit():
    p = pjit(Affine(), mode="trace", num_workers=2)
    assert p.fn.__xcs_jit__.mode == "trace"
    assert p(inputs={"x": [1, 2]})["y"] == [1, 2]
    with pytest.raises(XCSError, match="unknown jit mode"):
        pjit(Affine(), mode="fastest")


# ---------------------------------------------------------------------------------------- processes
@pytest.fixture(scope="module")
def process_pool():
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    yield pool
    pool.shutdown()


def test_process_backend_equals_the_loop():
    out = pmap(square, num_workers=2, backend="process")(inputs={"x": list(range(9))})
    assert out["y"] == [x * x for x in range(9)]
    assert out["device"] == ["worker:0"] * 5 + ["worker:1"] * 4


def test_process_backend_with_an_executor_jit_and_nested_vmap(process_pool):
    p = pmap(jitted_square, num_workers=2, backend=process_pool)  # @jit shadows the function: sent by name
    assert p(inputs={"x": [1, 2, 3]}) == {"y": [1, 4, 9]}
    p = pjit(Affine(offset=1), num_workers=2, backend=process_pool)
    assert p(inputs={"x": list(range(6)), "k": 3}) == loop(Affine(offset=1), {"x": list(range(6))}, k=3)
    nested = pmap(vmap(square, batch_size=2), num_workers=2, backend=process_pool)
    assert nested(inputs={"x": list(range(5))})["y"] == [0, 1, 4, 9, 16]


def test_process_backend_checks_picklability_up_front(process_pool):
    with pytest.raises(UnpicklableError, match="<lambda> cannot be pickled.*module level"):
        pmap(lambda *, inputs: inputs, backend="process")

    class Local(Operator):
        def forward(self, *, inputs):
            return inputs

    with pytest.raises(UnpicklableError, match="cannot be pickled"):
        pmap(Local(), backend=process_pool)
    with pytest.raises(UnpicklableError, match="the input 'lock' cannot be pickled"):
        pmap(square, backend=process_pool)(inputs={"x": [1, 2], "lock": threading.Lock()})


def test_process_backend_failures_raise_or_collect(process_pool):
    with pytest.raises(ElementError, match="element 3 .x=3. failed: ValueError") as info:
        pmap(fail_on_three, num_workers=2, backend=process_pool)(inputs={"x": list(range(6))})
    assert "worker process" in "".join(getattr(info.value.__cause__, "__notes__", []))
    out = pmap(fail_on_odd, num_workers=2, backend=process_pool, on_error="collect")(inputs={"x": list(range(5))})
    assert out.failed == (1, 3) and out["y"] == [0, None, 2, None, 4]


def test_process_backend_runs_cpu_bound_work(process_pool):
    out = pmap(busy, num_workers=2, backend=process_pool)(inputs={"n": [1000, 2000, 3000]})
    assert out == loop(busy, {"n": [1000, 2000, 3000]})
