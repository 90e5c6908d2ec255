"""A ``vmap``-ed operator called inside a jitted forward is captured as a map region (``map_batch``):
outputs, errors and failure-as-data equal to eager execution under every scheduler; a jitted mapped
operator is inlined into the region's body; what stays one opaque step (nested transforms, pmap,
trace capture) still runs correctly."""

from __future__ import annotations

import warnings

import pytest
from test_transforms import SCHEDULERS, Affine, fail_on_three, square

from xcs import (
    BatchLengthError, ElementError, EmptyBatchError, GraphBreakWarning, Operator, StepError, cache_info, dump,
    execution_options, jit, pmap, vmap,
)


@jit
class Doubled(Operator):
    def __init__(self):
        self.inner = Affine(offset=0)

    def forward(self, *, inputs):
        first = self.inner(inputs={"x": inputs["x"], "k": 2})
        return {"y": first["y"] + inputs["bonus"], "label": f"item-{inputs['x']}"}


class Opaque(Operator):
    """Its output keys are known only by running it."""

    def forward(self, *, inputs):
        return {key: value for key, value in inputs.items() if key != "bonus"}


class Pipeline(Operator):
    """A map region between two steps, reading an input and a step's output."""

    def __init__(self, mapped, **options):
        self.prepare = Affine(offset=1)
        self.each = vmap(mapped, **options)
        self.total = Affine(offset=0)

    def forward(self, *, inputs):
        start = self.prepare(inputs={"x": inputs["n"]})["y"]
        mapped = self.each(inputs={"x": inputs["xs"], "bonus": start})
        return {"ys": mapped["y"], "total": self.total(inputs={"x": len(mapped["y"])})["y"]}


def strict_jit(op, **options):
    return jit(op, strict=True, **options)


def run_both(op, inputs, scheduler="auto"):
    eager = op(inputs=inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        with execution_options(scheduler=scheduler):
            return eager, strict_jit(op)(inputs=inputs)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("xs", [[1, 2, 3], [5], list(range(40))])
def test_a_vmap_of_a_jitted_operator_is_inlined_and_equals_eager(scheduler, xs):
    op = Pipeline(Doubled())
    eager, compiled = run_both(op, {"n": 1, "xs": xs}, scheduler)
    assert compiled == eager
    assert eager["ys"] == [2 * x + 2 for x in xs]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_vmap_of_an_operator_or_function_calls_it_per_element(scheduler):
    for mapped in (Affine(offset=3), square):
        op = Pipeline(mapped, in_axes=["x"])
        eager, compiled = run_both(op, {"n": 1, "xs": [4, 5, 6]}, scheduler)
        assert compiled == eager


def test_the_plan_shows_the_region_with_the_inlined_element_steps():
    text = dump(strict_jit(Pipeline(Doubled(), batch_size=4)), {"n": 1, "xs": [1, 2]})
    assert "from xcs.runtime.batching import map_batch" in text
    assert "def mapped_body(element):" in text  # named after the user's variable
    assert "ops.each.fn.inner(inputs={'x': element['x'], 'k': 2})" in text  # Doubled's forward, inlined
    assert "'vmap(Doubled, batch_size=4)', batch_size=4, out_keys=('y', 'label'))" in text  # Doubled's keys
    assert "steps: 3" in text


def test_the_length_can_change_without_recompiling(fresh_plans):
    compiled = strict_jit(Pipeline(Doubled()))
    for n in (1, 7, 3, 2):
        assert compiled(inputs={"n": 0, "xs": list(range(n))})["ys"] == [2 * x + 1 for x in range(n)]
    info = cache_info(compiled)
    assert info.captures + info.disk_loads == 1 and len(info.signatures) == 1


def test_errors_are_the_eager_errors():
    op = Pipeline(fail_on_three)
    with pytest.raises(ElementError, match=r"vmap\(fail_on_three\): element 2 \(x=3\) failed"):
        op(inputs={"n": 0, "xs": [1, 2, 3, 4]})
    with pytest.raises(StepError) as caught:
        strict_jit(op)(inputs={"n": 0, "xs": [1, 2, 3, 4]})
    assert isinstance(caught.value.__cause__, ElementError)
    assert str(caught.value.__cause__) == "vmap(fail_on_three): element 2 (x=3) failed: ValueError: three is not allowed"

    class TwoLists(Operator):
        def __init__(self):
            self.each = vmap(Affine())

        def forward(self, *, inputs):
            return self.each(inputs={"x": inputs["a"], "k": inputs["b"]})

    with pytest.raises(StepError) as caught:
        strict_jit(TwoLists())(inputs={"a": [1, 2], "b": [1, 2, 3]})
    assert isinstance(caught.value.__cause__, BatchLengthError)


def test_collect_returns_the_same_batch_result():
    class Collect(Operator):
        def __init__(self):
            self.each = vmap(fail_on_three, on_error="collect")

        def forward(self, *, inputs):
            return {"r": self.each(inputs={"x": inputs["xs"]})}

    eager, compiled = run_both(Collect(), {"xs": [1, 3, 5, 3]})
    for result in (eager["r"], compiled["r"]):
        assert [f.step for f in result.failures] == [1, 3]
        assert result["y"] == [1, None, 5, None]


def test_an_empty_batch_gives_the_declared_keys_or_the_eager_error():
    eager, compiled = run_both(Pipeline(Doubled(), out_keys=("y", "label")), {"n": 0, "xs": []})
    assert compiled == eager == {"ys": [], "total": 0}
    eager, compiled = run_both(Pipeline(Doubled()), {"n": 0, "xs": []})  # the keys of Doubled's plan
    assert compiled == eager == {"ys": [], "total": 0}
    with pytest.raises(StepError) as caught:
        strict_jit(Pipeline(Opaque()))(inputs={"n": 0, "xs": []})
    assert isinstance(caught.value.__cause__, EmptyBatchError)


def test_jit_of_vmap_is_one_map_region():
    compiled = strict_jit(vmap(Doubled()))
    assert compiled(inputs={"x": [1, 2], "bonus": 1}) == vmap(Doubled())(inputs={"x": [1, 2], "bonus": 1})
    text = dump(compiled, {"x": [1, 2], "bonus": 1})
    assert "map_batch(region_body, inputs, 'vmap(Doubled)', out_keys=('y', 'label'))" in text and "steps: 1" in text


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_nested_transforms_and_pmap_stay_one_step(scheduler):
    for each in (vmap(pmap(Affine(), num_workers=2), batch_size=2), pmap(Affine(), num_workers=3)):
        class Outer(Operator):
            def __init__(self):
                self.each = each

            def forward(self, *, inputs):
                return {"ys": self.each(inputs={"x": inputs["xs"]})["y"]}

        eager, compiled = run_both(Outer(), {"xs": [1, 2, 3, 4, 5]}, scheduler)
        assert compiled == eager == {"ys": [1, 2, 3, 4, 5]}
        text = dump(strict_jit(Outer()), {"xs": [1]})
        assert "map_batch" not in text and "ops.each(inputs=" in text


def test_trace_capture_keeps_the_vmap_one_step():
    compiled = jit(Pipeline(Doubled()), mode="trace")
    assert compiled(inputs={"n": 1, "xs": [1, 2]}) == Pipeline(Doubled())(inputs={"n": 1, "xs": [1, 2]})
    text = dump(compiled, {"n": 1, "xs": [1, 2]})
    assert "map_batch" not in text and "ops.each(inputs=" in text


def test_structural_capture_needs_no_source():
    namespace: dict = {"Operator": Operator, "vmap": vmap, "Doubled": Doubled}
    exec(
        "class Made(Operator):\n"
        "    def __init__(self):\n"
        "        self.each = vmap(Doubled())\n"
        "    def forward(self, *, inputs):\n"
        "        return self.each(inputs={'x': inputs['xs'], 'bonus': 0})\n",
        namespace,
    )
    op = namespace["Made"]()
    compiled = jit(op, mode="structural", strict=True)
    assert compiled(inputs={"xs": [1, 2]}) == op(inputs={"xs": [1, 2]}) == {"y": [2, 4], "label": ["item-1", "item-2"]}
    assert "map_batch(each_body" in dump(compiled, {"xs": [1]})
