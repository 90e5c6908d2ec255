"""The one executor: runs a ``Plan`` under a scheduler's mode and turns failures into ``StepError``.

``execute`` checks the plan's required input keys, then either calls the plan's straight-line ``run``
(sequential) or walks the step graph with ``graphlib.TopologicalSorter`` (topological, wave, parallel),
submitting steps to a ``ThreadPoolExecutor`` made for this call when the mode needs threads. After a
step fails no further step starts, queued steps are cancelled and the pool is shut down; steps already
running finish in the background and their threads then exit.
"""

from __future__ import annotations

import contextvars
import graphlib
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue
from types import TracebackType
from typing import Any

from runtime.errors import CycleError, OperatorInputError, StepError
from runtime.options import ExecutionOptions, current_options
from runtime.plan import Plan, Step
from runtime.schedulers import SCHEDULERS, Scheduler

DEFAULT_MAX_WORKERS = 32


def execute(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], options: ExecutionOptions | None = None
) -> Any:
    """Run ``plan`` on ``ops`` and ``inputs`` under ``options`` (default: the current ones)."""
    if type(inputs) is not dict and not isinstance(inputs, Mapping):
        raise OperatorInputError(f"{plan.name}: inputs must be a mapping, got {type(inputs).__name__}")
    for key in plan.required:
        if key not in inputs:
            raise _missing_keys_error(plan, inputs)
    if options is None:
        options = current_options()
    scheduler = options.scheduler
    if not isinstance(scheduler, Scheduler):
        scheduler = SCHEDULERS[scheduler]  # a valid name: ExecutionOptions checked it
    mode = scheduler.mode
    if mode == "auto":
        mode = "parallel" if plan.width > 1 else "sequential"
    if mode == "sequential":
        try:
            return plan.run(ops, inputs)
        except Exception as exc:
            step = _failing_step(plan, exc.__traceback__)
            if step is None:
                raise
            raise StepError(step.name, step.location, step.source, exc) from exc
    results: list[Any] = [None] * len(plan.steps)
    if mode == "topological":
        _run_in_order(plan, ops, inputs, results)
    elif plan.steps:
        workers = options.max_workers or scheduler.max_workers
        workers = workers or min(len(plan.steps), DEFAULT_MAX_WORKERS)
        _run_in_pool(plan, ops, inputs, results, workers, waves=mode == "wave")
    return _call_step(plan.output, ops, inputs, results)


def _missing_keys_error(plan: Plan, inputs: Mapping[str, Any]) -> OperatorInputError:
    """The error for ``inputs`` lacking some of ``plan.required``, naming the keys and the plan."""
    missing = [key for key in plan.required if key not in inputs]
    noun = "key" if len(missing) == 1 else "keys"
    have = ", ".join(repr(key) for key in inputs) or "no keys"
    names = ", ".join(repr(key) for key in missing)
    return OperatorInputError(f"{plan.name}: missing input {noun} {names} (inputs have: {have})")


def _failing_step(plan: Plan, tb: TracebackType | None) -> Step | None:
    """The step at the line of the innermost frame of ``tb`` in the plan file.

    A frame running ``plan.run`` itself is preferred, so that helpers the plan file defines and
    ``run`` calls are attributed to the line of ``run`` that called them.
    """
    run_code = getattr(plan.run, "__code__", None)
    in_run = in_file = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == plan.filename:
            in_file = tb.tb_lineno
            if code is run_code:
                in_run = tb.tb_lineno
        tb = tb.tb_next
    lineno = in_run or in_file
    return None if lineno is None else plan.step_at_line(lineno)


def _call_step(step: Step, ops: Any, inputs: Mapping[str, Any], results: list[Any]) -> Any:
    """Run one step in this thread; an exception becomes a ``StepError`` naming the step."""
    try:
        return step.fn(ops, inputs, *[results[d] for d in step.deps])
    except Exception as exc:
        raise StepError(step.name, step.location, step.source, exc) from exc


def _sorter(plan: Plan) -> graphlib.TopologicalSorter[int]:
    """A prepared sorter over the step indices; a cycle raises ``CycleError`` naming the steps."""
    sorter = graphlib.TopologicalSorter({i: step.deps for i, step in enumerate(plan.steps)})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise CycleError(tuple(plan.steps[i].name for i in exc.args[1])) from None
    return sorter


def _run_in_order(plan: Plan, ops: Any, inputs: Mapping[str, Any], results: list[Any]) -> None:
    """Run the steps one at a time in dependency order, in the calling thread."""
    sorter = _sorter(plan)
    while sorter.is_active():
        for i in sorter.get_ready():
            results[i] = _call_step(plan.steps[i], ops, inputs, results)
            sorter.done(i)


def _run_in_pool(
    plan: Plan, ops: Any, inputs: Mapping[str, Any], results: list[Any], workers: int, waves: bool
) -> None:
    """Run the steps on a thread pool: a wave at a time, or each step as soon as its deps are done.

    A step that is the only one ready while nothing runs is called in this thread: no other step
    could start meanwhile, so a chain costs no thread hand-offs and no pool at all.
    """
    steps = plan.steps
    sorter = _sorter(plan)
    finished: SimpleQueue[Future[Any]] = SimpleQueue()
    running: dict[Future[Any], int] = {}
    stop = threading.Event()
    pool = None
    try:
        while sorter.is_active():
            if not (waves and running):
                ready = sorter.get_ready()
                if len(ready) == 1 and not running:
                    results[ready[0]] = _call_step(steps[ready[0]], ops, inputs, results)
                    sorter.done(ready[0])
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(workers, thread_name_prefix=f"xcs-{plan.name}")
                for i in ready:
                    args = [results[d] for d in steps[i].deps]
                    context = contextvars.copy_context()
                    future = pool.submit(context.run, _guarded, stop, steps[i].fn, ops, inputs, args)
                    running[future] = i
                    future.add_done_callback(finished.put)
            future = finished.get()
            i = running.pop(future)
            error = future.exception()
            if error is not None:
                if not isinstance(error, Exception):
                    raise error
                step = steps[i]
                raise StepError(step.name, step.location, step.source, error) from error
            results[i] = future.result()
            sorter.done(i)
    except BaseException:
        stop.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown(wait=True)


def _guarded(
    stop: threading.Event, fn: Any, ops: Any, inputs: Mapping[str, Any], args: list[Any]
) -> Any:
    """Call a step unless an earlier one failed; a failure stops every step not yet started."""
    if stop.is_set():
        return None
    try:
        return fn(ops, inputs, *args)
    except BaseException:
        stop.set()
        raise
