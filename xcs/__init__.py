"""ember-xcs: compile compound-AI operators into cached, readable execution plans.

The public API, one path per name: ``from xcs import Operator, jit, execution_options, ...``.
"""

from runtime.errors import (
    AsyncContextError,
    CycleError,
    FrozenOperatorError,
    InputIndexError,
    InputKeyError,
    JitError,
    OperatorCycleError,
    OperatorInputError,
    OperatorOutputError,
    SchedulerError,
    StepError,
    TimeoutError,  # also a builtins.TimeoutError; left out of __all__ so ``import *`` never shadows it
    XCSError,
)
from runtime.options import ExecutionOptions, execution_options
from runtime.outcome import Collected, StepFailure
from runtime.record import RunRecord, StepRecord, last_run
from runtime.schedulers import Scheduler, create_scheduler, register_scheduler, unregister_scheduler
from compiler.disk_cache import PlanCacheWarning
from xcs.explain import Explanation, explain
from xcs.plans import CacheInfo, GraphBreakWarning, RecompileLimitError, RecompileWarning, cache_info, dump, jit
from xcs.operator import Operator
from runtime.batching import (
    BatchAxisError,
    BatchError,
    BatchLengthError,
    BatchResult,
    ElementError,
    ElementFailure,
    EmptyBatchError,
    MeshError,
    ShardError,
    TransformError,
    UnpicklableError,
)
from xcs.mesh import DeviceMesh, PartitionSpec, current_device, mesh_sharded
from xcs.transforms import compose, pjit, pmap, vmap

__version__ = "0.1.0"

__all__ = [
    "AsyncContextError",
    "CacheInfo",
    "Collected",
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
    "StepFailure",
    "StepRecord",
    "XCSError",
    "cache_info",
    "create_scheduler",
    "dump",
    "explain",
    "Explanation",
    "execution_options",
    "jit",
    "last_run",
    "register_scheduler",
    "unregister_scheduler",
    # transforms (xcs.transforms, xcs.mesh; errors and BatchResult from runtime.batching)
    "BatchAxisError",
    "BatchError",
    "BatchLengthError",
    "BatchResult",
    "DeviceMesh",
    "ElementError",
    "ElementFailure",
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
