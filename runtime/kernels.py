"""``njit``: how a plan compiles its numeric kernels (``compiler.numeric``).

``@njit(signature)`` is ``numba.njit(signature, cache=True, boundscheck=True)`` when numba is installed
and neither ``XCS_DISABLE_NUMBA=1`` nor ``NUMBA`` (False under ``jit(numba=False)``) says otherwise; else
the function itself, so the same source runs as Python. Compilation is eager (the signature comes from
the plan's input signature): a kernel numba cannot compile is reported while the plan is imported, with
one ``KernelWarning`` naming numba's reason, and runs as Python. A compiled kernel that raises runs
again as Python, which gives eager's value or eager's exception. Machine code is cached beside the plan
file (numba's ``__pycache__``); a plan held only in memory compiles without that cache.

``numpy_function(name)`` is how a kernel calls a numpy function whose numba version gives other bits
or runs slower. A transcendental ufunc (``tanh``, ``exp``...) on a float array runs numpy's own loop
(``runtime.numpy_loops``; ``<ufunc>_in_place`` over a temporary it may overwrite); ``sum``, ``mean`` and
``std`` of a float64 array (1-D, or C- or F-contiguous) sum pairwise in numpy's order
(``runtime.pairwise``; ``std_about`` is ``std`` given the mean),
so both give numpy's values bit for bit, at numpy's speed. Any other argument gets numba's own. As
Python, ``numpy_function(name)`` is the numpy function.
"""

from __future__ import annotations

import contextvars
import functools
import os
import warnings
from typing import Any, Callable

from xcs.runtime.numpy_loops import call_loop, in_place_same, loop_of
from xcs.runtime.pairwise import reductions

IN_PLACE = "_in_place"  # numpy_function("tanh_in_place"): numpy.tanh of a temporary, written over it

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
            kernel = numba.njit(signature, cache=os.path.isfile(fn.__code__.co_filename), boundscheck=True)(fn)
            _first_call_ready(numba)
            return _or_python(kernel, fn)
        except Exception as exc:  # numba's typing or lowering error: this kernel runs as Python
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = "; ".join(line for line in lines[1:4] if not line.startswith("During:")) or repr(exc)
            warnings.warn(
                f"numeric kernel {fn.__name__} runs as Python: numba cannot compile it: {reason}",
                KernelWarning, stacklevel=2,
            )
            return fn

    return compile_kernel


def _or_python(kernel: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel``, run again as Python when it raises: numba raises where numpy does not (a scalar
    division by zero, which a numpy scalar turns into ``inf`` and a warning) and with messages of its
    own (``division by zero``, ``index is out of bounds``); Python gives eager's value or eager's
    exception (not chained to numba's). A kernel changes nothing before it returns (no writes into
    arrays: ``compiler.forwards``), so running it again is running it once."""

    def run(*args: Any) -> Any:
        try:
            return kernel(*args)
        except Exception:  # noqa: S110 - the Python run gives eager's outcome
            pass
        return fn(*args)

    run.__name__ = run.__qualname__ = fn.__name__
    run.compiled = kernel  # the numba dispatcher (its signatures, cache statistics)
    return run


def numpy_function(name: str) -> Callable[..., Any]:
    """``numpy.<name>`` as a kernel calls it; ``"std_about"`` is ``numpy.std(x)`` given ``x``'s mean
    (``compiler.kernels`` shares the mean a statement computes anyway)."""
    if name == "std_about":
        return _std_about(_numba())
    return _numpy_function(name, _numba())


def _numpy_function(name: str, numba: Any) -> Callable[[Any], Any]:
    """``numpy.<name>``; ``<ufunc>_in_place`` is ``numpy.<ufunc>`` of a temporary array, which a
    kernel may overwrite with the result (one array fewer to allocate and fault in)."""
    ufunc, in_place = (name[: -len(IN_PLACE)], True) if name.endswith(IN_PLACE) else (name, False)
    return _numpy_call(ufunc, in_place, numba)


@functools.cache
def _numpy_call(name: str, in_place: bool, numba: Any) -> Callable[[Any], Any]:
    import numpy

    function = getattr(numpy, name)

    def call(x: Any) -> Any:
        return function(x)

    call.__name__ = call.__qualname__ = f"numpy_{name}{IN_PLACE if in_place else ''}"
    if numba is not None:
        for dtype in ("float32", "float64"):  # named to LLVM before numba loads a kernel that calls them
            loop_of(name, dtype)
        from numba.core import types
        from numba.extending import overload

        reduction = reductions(numba).get(name)

        @overload(call)
        def typed(x):  # noqa: ANN001 - numba compares its parameters with the implementations' (no annotations)
            if not isinstance(x, types.Array) or not isinstance(x.dtype, types.Float):
                return lambda x: function(x)
            if reduction is None:  # a ufunc: numpy's loop
                symbol = loop_of(name, str(x.dtype))
                if symbol is not None and (x.ndim == 1 or x.layout in "CF"):
                    over = in_place and x.mutable and in_place_same(name, str(x.dtype))
                    return _run_loop(numba, call_loop(symbol), x, over)

                def on_array(x):  # noqa: ANN001
                    out = numpy.empty_like(x)
                    with numba.objmode():
                        function(x, out=out)
                    return out

                return on_array
            flat = _flat(numba, x)
            if flat is not None:
                return lambda x: reduction(flat(x))
            return lambda x: function(x)

    return call


@functools.cache
def _std_about(numba: Any) -> Callable[[Any, Any], Any]:
    import numpy

    def call(x: Any, mean: Any) -> Any:  # noqa: ARG001 - numpy computes the same mean itself
        return numpy.std(x)

    call.__name__ = call.__qualname__ = "numpy_std_about"
    if numba is not None:
        from numba.extending import overload

        std = reductions(numba)["std_about"]

        @overload(call)
        def typed(x, mean):  # noqa: ANN001
            flat = _flat(numba, x)
            if flat is not None:
                return lambda x, mean: std(flat(x), mean)
            return lambda x, mean: numpy.std(x)

    return call


def _flat(numba: Any, x: Any) -> Any:
    """An njit function giving the elements of a float64 array of numba type ``x`` as one 1-D array in
    memory order, for the pairwise sums; None for other arrays (numba's own reductions)."""
    from numba.core import types

    if not isinstance(x, types.Array) or x.dtype != types.float64 or not (x.ndim == 1 or x.layout in "CF"):
        return None
    return _flat_view(numba, x)


def _flat_view(numba: Any, x: Any) -> Any:
    """An njit function: the elements of an array of numba type ``x`` (1-D, or C- or F-contiguous) as
    one 1-D view in memory order."""
    return numba.njit((lambda x: x) if x.ndim == 1 else (lambda x: x.ravel()) if x.layout == "C" else (lambda x: x.T.ravel()))


def _run_loop(numba: Any, loop: Any, x: Any, over: bool) -> Callable[[Any], Any]:
    """``numpy.<ufunc>(x)`` through numpy's loop, for a 1-D array or a C- or F-contiguous one (one run
    over its elements in memory order, as numpy coalesces it); written over ``x`` when ``over``."""
    import numpy

    if over:
        flat = _flat_view(numba, x)

        def on_itself(x):  # noqa: ANN001
            loop(flat(x), flat(x))
            return x

        return on_itself
    if x.ndim == 1:

        def on_vector(x):  # noqa: ANN001
            out = numpy.empty_like(x)
            loop(x, out)
            return out

        return on_vector
    if x.layout == "C":

        def on_c(x):  # noqa: ANN001
            out = numpy.empty_like(x)
            loop(x.ravel(), out.ravel())
            return out

        return on_c

    def on_f(x):  # noqa: ANN001
        out = numpy.empty_like(x.T)
        loop(x.T.ravel(), out.ravel())
        return out.T

    return on_f


@functools.cache
def _first_call_ready(numba: Any) -> None:
    """What numba does lazily on a kernel's first call (typing an array imports ``numpy.ma``), done
    once, while the plan is imported, so the first call costs what a warm one does."""
    import numpy

    numba.typeof(numpy.empty(1))
