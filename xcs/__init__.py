"""ember-xcs: compile compound-AI operators into cached, readable execution plans.

The public API, one path per name: ``from xcs import Operator, jit, execution_options, ...``. Names load
lazily (PEP 562): ``import xcs.runtime`` (all a plan file needs, e.g. on a Dask worker) and the pytest
plugin import nothing from the compiler until a public name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_HOME = {
    "AsyncContextError": "xcs.runtime.errors",
    "CycleError": "xcs.runtime.errors",
    "FrozenOperatorError": "xcs.runtime.errors",
    "InputIndexError": "xcs.runtime.errors",
    "InputKeyError": "xcs.runtime.errors",
    "JitError": "xcs.compiler.errors",
    "OperatorCycleError": "xcs.compiler.errors",
    "OperatorInputError": "xcs.runtime.errors",
    "OperatorOutputError": "xcs.runtime.errors",
    "SchedulerError": "xcs.runtime.errors",
    "StepError": "xcs.runtime.errors",
    "TimeoutError": "xcs.runtime.errors",
    "XCSError": "xcs.runtime.errors",
    "ExecutionOptions": "xcs.runtime.options",
    "execution_options": "xcs.runtime.options",
    "Collected": "xcs.runtime.outcome",
    "Failure": "xcs.runtime.outcome",
    "RunRecord": "xcs.runtime.record",
    "StepRecord": "xcs.runtime.record",
    "last_run": "xcs.runtime.record",
    "Scheduler": "xcs.runtime.schedulers",
    "create_scheduler": "xcs.runtime.schedulers",
    "register_scheduler": "xcs.runtime.schedulers",
    "unregister_scheduler": "xcs.runtime.schedulers",
    "PlanCacheWarning": "xcs.compiler.disk_cache",
    "Explanation": "xcs.explanation",
    "explain": "xcs.explanation",
    "CacheInfo": "xcs.compiler.records",
    "GraphBreakWarning": "xcs.compiler.driver",
    "RecompileLimitError": "xcs.compiler.driver",
    "RecompileWarning": "xcs.compiler.driver",
    "Strategy": "xcs.compiler.extensions",
    "register_pass": "xcs.compiler.extensions",
    "register_strategy": "xcs.compiler.extensions",
    "cache_info": "xcs.plans",
    "dump": "xcs.plans",
    "mermaid": "xcs.plans",
    "jit": "xcs.plans",
    "Operator": "xcs.operator",
    "BatchAxisError": "xcs.runtime.errors",
    "BatchError": "xcs.runtime.errors",
    "BatchLengthError": "xcs.runtime.errors",
    "ElementError": "xcs.runtime.errors",
    "EmptyBatchError": "xcs.runtime.errors",
    "MeshError": "xcs.mesh",
    "ShardError": "xcs.mesh",
    "TransformError": "xcs.runtime.errors",
    "UnpicklableError": "xcs.shards",
    "DeviceMesh": "xcs.mesh",
    "PartitionSpec": "xcs.mesh",
    "current_device": "xcs.mesh",
    "mesh_sharded": "xcs.mesh",
    "compose": "xcs.transforms",
    "pjit": "xcs.transforms",
    "pmap": "xcs.transforms",
    "vmap": "xcs.transforms",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'xcs' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "AsyncContextError",
    "CacheInfo",
    "Collected",
    "Failure",
    "CycleError",
    "ExecutionOptions",
    "FrozenOperatorError",
    "GraphBreakWarning",
    "InputIndexError",
    "InputKeyError",
    "JitError",
    "Operator",
    "OperatorCycleError",
    "OperatorInputError",
    "OperatorOutputError",
    "PlanCacheWarning",
    "RecompileLimitError",
    "RecompileWarning",
    "RunRecord",
    "Scheduler",
    "SchedulerError",
    "StepError",
    "StepRecord",
    "XCSError",
    "cache_info",
    "create_scheduler",
    "dump",
    "mermaid",
    "explain",
    "Explanation",
    "execution_options",
    "jit",
    "last_run",
    "register_pass",
    "register_scheduler",
    "register_strategy",
    "Strategy",
    "unregister_scheduler",
    # transforms (xcs.transforms, xcs.mesh; their errors from xcs.runtime.errors)
    "BatchAxisError",
    "BatchError",
    "BatchLengthError",
    "DeviceMesh",
    "ElementError",
    "EmptyBatchError",
    "MeshError",
    "PartitionSpec",
    "ShardError",
    "TransformError",
    "UnpicklableError",
    "compose",
    "current_device",
    "mesh_sharded",
    "pjit",
    "pmap",
    "vmap",
]
