"""ember-xcs: compile compound-AI operators into cached, readable execution plans.

The public API, one path per name: ``from xcs import Operator, jit, execution_options, ...``.
"""

from runtime.errors import (
    CycleError,
    FrozenOperatorError,
    JitError,
    OperatorInputError,
    OperatorOutputError,
    SchedulerError,
    StepError,
    XCSError,
)
from runtime.options import ExecutionOptions, execution_options
from runtime.schedulers import Scheduler, create_scheduler
from xcs.jit import GraphBreakWarning, dump, jit
from xcs.operator import Operator

__version__ = "0.1.0"

__all__ = [
    "CycleError",
    "ExecutionOptions",
    "FrozenOperatorError",
    "GraphBreakWarning",
    "JitError",
    "Operator",
    "OperatorInputError",
    "OperatorOutputError",
    "Scheduler",
    "SchedulerError",
    "StepError",
    "XCSError",
    "create_scheduler",
    "dump",
    "execution_options",
    "jit",
]
