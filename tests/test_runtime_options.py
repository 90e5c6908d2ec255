"""Execution options and scheduler configurations: validation, nesting, isolation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from xcs.runtime.errors import SchedulerError, XCSError
from xcs.runtime.options import ExecutionOptions, current_options, execution_options
from xcs.runtime.schedulers import SCHEDULERS, Scheduler, create_scheduler

NAMES = ("async", "auto", "parallel", "sequential", "topological", "wave")


def test_defaults():
    assert current_options() == ExecutionOptions(scheduler="auto", max_workers=None)


def test_block_sets_and_restores():
    with execution_options(scheduler="wave", max_workers=4) as options:
        assert options == current_options() == ExecutionOptions("wave", 4)
    assert current_options() == ExecutionOptions()


def test_nesting_merges_with_outer():
    with execution_options(scheduler="wave", max_workers=4):
        with execution_options(max_workers=2):
            assert current_options() == ExecutionOptions("wave", 2)
            with execution_options(scheduler="parallel"):
                assert current_options() == ExecutionOptions("parallel", 2)
            assert current_options() == ExecutionOptions("wave", 2)
        assert current_options() == ExecutionOptions("wave", 4)
    assert current_options() == ExecutionOptions()


def test_exception_restores_outer():
    with execution_options(scheduler="topological"):
        with pytest.raises(KeyError):
            with execution_options(scheduler="wave", max_workers=3):
                raise KeyError("boom")
        assert current_options() == ExecutionOptions("topological")
    assert current_options() == ExecutionOptions()


def test_accepts_scheduler_object():
    scheduler = create_scheduler("parallel", max_workers=3)
    with execution_options(scheduler=scheduler):
        assert current_options().scheduler is scheduler


def test_unknown_option():
    with pytest.raises(SchedulerError, match=r"unknown execution option 'workers'.*max_workers"):
        with execution_options(workers=2):
            pass  # pragma: no cover
    assert current_options() == ExecutionOptions()


@pytest.mark.parametrize("bad", [0, -1, "4", 2.0, True])
def test_bad_max_workers(bad):
    with pytest.raises(SchedulerError, match="max_workers must be a positive int"):
        with execution_options(max_workers=bad):
            pass  # pragma: no cover
    with pytest.raises(SchedulerError):
        ExecutionOptions(max_workers=bad)
    with pytest.raises(SchedulerError):
        create_scheduler("wave", max_workers=bad)


def test_unknown_scheduler_lists_valid_names():
    with pytest.raises(SchedulerError) as info:
        with execution_options(scheduler="wavy"):
            pass  # pragma: no cover
    message = str(info.value)
    assert "unknown scheduler 'wavy'" in message
    assert "did you mean 'wave'?" in message
    assert all(name in message for name in NAMES)
    assert isinstance(info.value, XCSError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [None, 3, ["wave"]])
def test_scheduler_of_wrong_type(bad):
    with pytest.raises(SchedulerError, match="unknown scheduler"):
        ExecutionOptions(scheduler=bad)


def test_registry_and_create_scheduler():
    assert tuple(sorted(SCHEDULERS)) == NAMES
    for name in NAMES:
        scheduler = create_scheduler(name)
        assert scheduler == Scheduler(name, name, None)
    assert create_scheduler("parallel", max_workers=8) == Scheduler("parallel", "parallel", 8)


def test_create_scheduler_errors():
    with pytest.raises(SchedulerError, match=r"valid schedulers: async, auto, parallel, sequential"):
        create_scheduler("fastest")
    with pytest.raises(SchedulerError, match=r"unknown scheduler option 'timeout'.*max_workers"):
        create_scheduler("wave", timeout=3)
    with pytest.raises(SchedulerError, match=r"unknown mode 'magic'.*valid modes"):
        Scheduler("mine", "magic")


def test_isolated_between_threads():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with execution_options(scheduler="wave", max_workers=7):
            seen["worker"] = current_options()
            inside.set()
            release.wait(5)
        seen["worker after"] = current_options()

    with execution_options(scheduler="topological"):
        thread = threading.Thread(target=worker)
        thread.start()
        assert inside.wait(5)
        seen["main"] = current_options()
        release.set()
        thread.join(5)
    assert seen["worker"] == ExecutionOptions("wave", 7)
    assert seen["main"] == ExecutionOptions("topological")
    assert seen["worker after"] == ExecutionOptions()
    assert current_options() == ExecutionOptions()


def test_isolated_between_asyncio_tasks():
    async def task(name, workers):
        with execution_options(scheduler=name, max_workers=workers):
            await asyncio.sleep(0.01)  # the other task runs and sets its own options meanwhile
            first = current_options()
            await asyncio.sleep(0.01)
            return first, current_options()

    async def main():
        with execution_options(scheduler="sequential"):
            results = await asyncio.gather(task("wave", 2), task("parallel", 5))
            return results, current_options()

    (wave, parallel), outer = asyncio.run(main())
    assert wave == (ExecutionOptions("wave", 2),) * 2
    assert parallel == (ExecutionOptions("parallel", 5),) * 2
    assert outer == ExecutionOptions("sequential")
    assert current_options() == ExecutionOptions()
