"""``njit``: how a plan compiles its numeric kernels (``compiler.numeric``).

``@njit(signature)`` is ``numba.njit(signature, cache=True)`` when numba is installed and neither
``XCS_DISABLE_NUMBA=1`` nor ``python_kernels`` (``jit(numba=False)``) says otherwise; else the function
itself, so the same source runs as Python. Compilation is eager (the signature comes from the plan's
input signature): a kernel numba cannot compile is reported while the plan is imported, with one
``KernelWarning`` naming numba's reason, and runs as Python. Machine code is cached beside the plan file
(numba's ``__pycache__``); a plan held only in memory compiles without that cache.
"""

from __future__ import annotations

import contextvars
import functools
import os
import warnings
from typing import Any, Callable

# False while a plan of ``jit(numba=False)`` is imported: its kernels stay Python
NUMBA: contextvars.ContextVar[bool] = contextvars.ContextVar("xcs_numba", default=True)


class KernelWarning(UserWarning):
    """A numeric kernel runs as Python: numba could not compile it (the message says why)."""


def njit(signature: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def compile_kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not NUMBA.get() or os.environ.get("XCS_DISABLE_NUMBA", "") not in ("", "0"):
            return fn
        try:
            import numba
        except ImportError:
            return fn
        try:
            kernel = numba.njit(signature, cache=os.path.isfile(fn.__code__.co_filename))(fn)
            _first_call_ready(numba)
            return kernel
        except Exception as exc:  # numba's typing or lowering error: this kernel runs as Python
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = "; ".join(line for line in lines[1:4] if not line.startswith("During:")) or repr(exc)
            warnings.warn(
                f"numeric kernel {fn.__name__} runs as Python: numba cannot compile it: {reason}",
                KernelWarning, stacklevel=2,
            )
            return fn

    return compile_kernel


@functools.cache
def _first_call_ready(numba: Any) -> None:
    """What numba does lazily on a kernel's first call (typing an array imports ``numpy.ma``), done
    once, while the plan is imported, so the first call costs what a warm one does."""
    import numpy

    numba.typeof(numpy.empty(1))
