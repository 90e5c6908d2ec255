"""``njit``: how a plan compiles its numeric kernels (``compiler.numeric``).

``@njit(signature)`` is ``numba.njit(signature, cache=True)`` when numba is installed and neither
``XCS_DISABLE_NUMBA=1`` nor ``python_kernels`` (``jit(numba=False)``) says otherwise; else the function
itself, so the same source runs as Python. Compilation is eager (the signature comes from the plan's
input signature): a kernel numba cannot compile is reported while the plan is imported, with one
``KernelWarning`` naming numba's reason, and runs as Python. Machine code is cached beside the plan file
(numba's ``__pycache__``); a plan held only in memory compiles without that cache.

``numpy_ufunc(name)`` is how a kernel calls a transcendental numpy ufunc (``tanh``, ``exp``...): on an
array numba runs numpy's own loop (in an object-mode block), so the values are numpy's, bit for bit, and
as fast; on a scalar, numba's. As Python it is the ufunc.
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


def _numba() -> Any:
    """The numba module when kernels are compiled (installed, and not turned off), else None."""
    if not NUMBA.get() or os.environ.get("XCS_DISABLE_NUMBA", "") not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


def njit(signature: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def compile_kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
        numba = _numba()
        if numba is None:
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


def numpy_ufunc(name: str) -> Callable[[Any], Any]:
    return _ufunc(name, _numba())


@functools.cache
def _ufunc(name: str, numba: Any) -> Callable[[Any], Any]:
    import numpy

    ufunc = getattr(numpy, name)

    def call(x: Any) -> Any:
        return ufunc(x)

    call.__name__ = call.__qualname__ = f"numpy_{name}"
    if numba is not None:
        from numba.core import types
        from numba.extending import overload

        @overload(call)
        def typed(x: Any) -> Any:
            if isinstance(x, types.Array) and isinstance(x.dtype, types.Float):

                def on_array(x: Any) -> Any:
                    out = numpy.empty_like(x)
                    with numba.objmode():
                        ufunc(x, out=out)
                    return out

                return on_array
            return lambda x: ufunc(x)

    return call


@functools.cache
def _first_call_ready(numba: Any) -> None:
    """What numba does lazily on a kernel's first call (typing an array imports ``numpy.ma``), done
    once, while the plan is imported, so the first call costs what a warm one does."""
    import numpy

    numba.typeof(numpy.empty(1))
