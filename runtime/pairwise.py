"""numpy's pairwise sum in numba: ``reductions(numba)`` gives the float64 ``sum``, ``mean``, ``std`` and
``std_about`` (``std`` given the mean) of a 1-D array that ``runtime.kernels.numpy_function`` calls.

numpy sums a float64 array pairwise: halves split at multiples of 8 down to blocks of at most 128; a
block of 8 or more starts 8 accumulators with its first 8 values, adds every 8th value to each, sums
them as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` and adds the rest in order. Done in the
same order here, the sums have numpy's bits. The 8 accumulators of a contiguous array are one vector
of 8 lanes (``_lanes``: each lane adds what its accumulator adds, in the same order), which numba's
own vectoriser does not find; a strided array keeps 8 scalars.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def reductions(numba: Any) -> dict[str, Any]:
    """numpy's float64 ``sum``, ``mean``, ``std`` and ``std_about`` of a 1-D array, in numpy's order."""
    import numpy
    from numba.extending import overload

    lanes = _lanes(numba)

    def eight(a: Any, lo: int, end: int, center: float, square: bool) -> float:
        raise NotImplementedError  # numba's: its overload below

    @overload(eight)
    def typed_eight(a, lo, end, center, square):  # noqa: ANN001 - numba's overload protocol
        if a.layout == "C":
            return lambda a, lo, end, center, square: lanes(a, lo, end, center, square)

        def scalars(a, lo, end, center, square):  # noqa: ANN001
            r0, r1 = term(a[lo], center, square), term(a[lo + 1], center, square)
            r2, r3 = term(a[lo + 2], center, square), term(a[lo + 3], center, square)
            r4, r5 = term(a[lo + 4], center, square), term(a[lo + 5], center, square)
            r6, r7 = term(a[lo + 6], center, square), term(a[lo + 7], center, square)
            for i in range(lo + 8, end, 8):
                r0, r1 = r0 + term(a[i], center, square), r1 + term(a[i + 1], center, square)
                r2, r3 = r2 + term(a[i + 2], center, square), r3 + term(a[i + 3], center, square)
                r4, r5 = r4 + term(a[i + 4], center, square), r5 + term(a[i + 5], center, square)
                r6, r7 = r6 + term(a[i + 6], center, square), r7 + term(a[i + 7], center, square)
            return ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))

        return scalars

    @numba.njit(cache=True)
    def term(v: float, center: float, square: bool) -> float:
        return (v - center) * (v - center) if square else v

    @numba.njit(cache=True)
    def block(a: Any, lo: int, n: int, center: float, square: bool) -> float:
        """numpy's sum of at most 128 terms: 8 accumulators, then the rest in order."""
        total, end = 0.0, lo
        if n >= 8:
            end = lo + n - n % 8
            total = eight(a, lo, end, center, square)
        for i in range(end, lo + n):
            total += term(a[i], center, square)
        return total

    @numba.njit(cache=True)
    def pairwise(a: Any, center: float, square: bool) -> float:
        """numpy's pairwise sum: halves split at multiples of 8 down to blocks of 128, left + right;
        walked with a stack (a task of size -1 adds the two values on top)."""
        stack = numpy.empty(480, numpy.int64)  # one allocation: starts, sizes, and the values' bits
        starts, sizes, values = stack[:192], stack[192:384], stack[384:].view(numpy.float64)
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
        return array_sum(a) / a.shape[0] if a.shape[0] else numpy.nan  # numpy: nan, and a warning

    @numba.njit(cache=True)
    def array_std_about(a: Any, mean: float) -> float:
        return numpy.sqrt(pairwise(a, mean, True) / a.shape[0]) if a.shape[0] else numpy.nan

    @numba.njit(cache=True)
    def array_std(a: Any) -> float:
        return array_std_about(a, array_mean(a))

    return {"sum": array_sum, "mean": array_mean, "std": array_std, "std_about": array_std_about}


def _lanes(numba: Any) -> Any:
    """An intrinsic ``lanes(a, lo, end, center, square)``: numpy's 8 accumulators over the contiguous
    ``a[lo:end]`` (``end - lo`` a multiple of 8, at least 8; each value, or its squared distance from
    ``center``), as one vector of 8 lanes, summed as numpy sums them."""
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def lanes(typingctx, a, lo, end, center, square):  # noqa: ANN001, ARG001 - numba's intrinsic protocol
        def codegen(context, builder, signature, args):  # noqa: ANN001
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            lo, end, center, square = args[1:]
            double, index = ir.DoubleType(), ir.IntType(32)
            vector = ir.VectorType(double, 8)
            base = builder.bitcast(data, double.as_pointer())
            centers = ir.Constant(vector, ir.Undefined)
            for k in range(8):
                centers = builder.insert_element(centers, center, ir.Constant(index, k))

            def terms(i):  # noqa: ANN001
                values = builder.load(builder.bitcast(builder.gep(base, [i]), vector.as_pointer()), align=8)
                distance = builder.fsub(values, centers)
                return builder.select(square, builder.fmul(distance, distance), values)

            step = ir.Constant(lo.type, 8)
            first, second = terms(lo), builder.add(lo, step)
            start = builder.block
            loop, body, done = (builder.append_basic_block(f"lanes.{part}") for part in ("loop", "body", "done"))
            builder.branch(loop)
            builder.position_at_end(loop)
            i, sums = builder.phi(lo.type), builder.phi(vector)
            i.add_incoming(second, start)
            sums.add_incoming(first, start)
            builder.cbranch(builder.icmp_signed("<", i, end), body, done)
            builder.position_at_end(body)
            i.add_incoming(builder.add(i, step), body)
            sums.add_incoming(builder.fadd(sums, terms(i)), body)
            builder.branch(loop)
            builder.position_at_end(done)
            r = [builder.extract_element(sums, ir.Constant(index, k)) for k in range(8)]
            left = builder.fadd(builder.fadd(r[0], r[1]), builder.fadd(r[2], r[3]))
            return builder.fadd(left, builder.fadd(builder.fadd(r[4], r[5]), builder.fadd(r[6], r[7])))

        return types.float64(a, lo, end, center, square), codegen

    return lanes
