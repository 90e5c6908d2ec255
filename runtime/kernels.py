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
``std`` of a float64 array (1-D, or C- or F-contiguous) sum pairwise in numpy's order (its
8-accumulator blocks of 128, halves split at multiples of 8; ``std_about`` is ``std`` given the mean),
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

        reduction = _reductions(numba).get(name)

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

        std = _reductions(numba)["std_about"]

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
def _reductions(numba: Any) -> dict[str, Any]:
    """numpy's float64 ``sum``, ``mean`` and ``std`` of a 1-D array, in numpy's order of additions."""
    import numpy

    @numba.njit(cache=True)
    def term(v: float, center: float, square: bool) -> float:
        return (v - center) * (v - center) if square else v

    @numba.njit(cache=True)
    def block(a: Any, lo: int, n: int, center: float, square: bool) -> float:
        """numpy's sum of at most 128 terms: 8 accumulators, then the rest in order."""
        if n < 8:
            total = 0.0
            for i in range(lo, lo + n):
                total += term(a[i], center, square)
            return total
        r0, r1 = term(a[lo], center, square), term(a[lo + 1], center, square)
        r2, r3 = term(a[lo + 2], center, square), term(a[lo + 3], center, square)
        r4, r5 = term(a[lo + 4], center, square), term(a[lo + 5], center, square)
        r6, r7 = term(a[lo + 6], center, square), term(a[lo + 7], center, square)
        i, end = lo + 8, lo + n - n % 8
        while i < end:
            r0, r1 = r0 + term(a[i], center, square), r1 + term(a[i + 1], center, square)
            r2, r3 = r2 + term(a[i + 2], center, square), r3 + term(a[i + 3], center, square)
            r4, r5 = r4 + term(a[i + 4], center, square), r5 + term(a[i + 5], center, square)
            r6, r7 = r6 + term(a[i + 6], center, square), r7 + term(a[i + 7], center, square)
            i += 8
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(i, lo + n):
            total += term(a[j], center, square)
        return total

    @numba.njit(cache=True)
    def pairwise(a: Any, center: float, square: bool) -> float:
        """numpy's pairwise sum: halves split at multiples of 8 down to blocks of 128, left + right;
        walked with a stack (a task of size -1 adds the two values on top)."""
        starts, sizes, values = numpy.empty(192, numpy.int64), numpy.empty(192, numpy.int64), numpy.empty(96)
        starts[0], sizes[0], top, count = 0, a.shape[0], 1, 0
        while top:
            top -= 1
            lo, n = starts[top], sizes[top]
            if n < 0:
                values[count - 2] += values[count - 1]
                count -= 1
            elif n <= 128:
                values[count] = block(a, lo, n, center, square)
                count += 1
            else:
                half = n // 2 - (n // 2) % 8
                sizes[top], starts[top + 1], sizes[top + 1], starts[top + 2], sizes[top + 2] = -1, lo + half, n - half, lo, half
                top += 3
        return 0.0 + values[0]

    @numba.njit(cache=True)
    def array_sum(a: Any) -> float:
        return pairwise(a, 0.0, False)

    @numba.njit(cache=True)
    def array_mean(a: Any) -> float:
        return pairwise(a, 0.0, False) / a.shape[0] if a.shape[0] else numpy.nan  # numpy: nan, and a warning

    @numba.njit(cache=True)
    def array_std_about(a: Any, mean: float) -> float:
        return numpy.sqrt(pairwise(a, mean, True) / a.shape[0]) if a.shape[0] else numpy.nan

    @numba.njit(cache=True)
    def array_std(a: Any) -> float:
        return array_std_about(a, array_mean(a))

    return {"sum": array_sum, "mean": array_mean, "std": array_std, "std_about": array_std_about}


@functools.cache
def _first_call_ready(numba: Any) -> None:
    """What numba does lazily on a kernel's first call (typing an array imports ``numpy.ma``), done
    once, while the plan is imported, so the first call costs what a warm one does."""
    import numpy

    numba.typeof(numpy.empty(1))
