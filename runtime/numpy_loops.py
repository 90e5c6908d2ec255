"""numpy's own inner loop of a ufunc, called from a numba kernel (``runtime.kernels.numpy_function``).

``loop_of(ufunc, dtype)`` asks numpy for the strided loop it runs for ``ufunc`` on ``dtype`` (numpy's
API for this, ``ufunc._resolve_dtypes_and_context`` and ``ufunc._get_strided_loop``, added for numba)
and names it to LLVM as a symbol; ``call_loop(symbol)`` is a numba intrinsic that calls it on a 1-D
input and output, with their own strides, as numpy does for an array whose iteration it can
coalesce into one run. The values are numpy's bit for bit (the same machine code), without the
crossing into object mode: no Python call, no GIL handling, and nothing compiled at the first call
of a process (the kernel's machine code names the symbol, which every process defines again before
numba loads its cache). A loop that needs the Python API, or that numpy specialises for contiguous
strides, is not used (``loop_of`` returns None).
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

CAPSULE = b"numpy_1.24_ufunc_call_info"
_held: list[Any] = []  # the call infos whose loops LLVM knows: alive for the process


@functools.cache
def loop_of(name: str, dtype: str) -> str | None:
    """The LLVM symbol of numpy's loop of ``numpy.<name>`` from ``dtype`` to ``dtype``, or None."""
    import numpy

    ufunc = getattr(numpy, name, None)
    if not isinstance(ufunc, numpy.ufunc) or ufunc.nin != 1 or ufunc.nout != 1:
        return None
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    try:
        descr = numpy.dtype(dtype)
        infos = []
        for strides in (None, (descr.itemsize, descr.itemsize)):  # any strides, and contiguous ones
            dtypes, info = ufunc._resolve_dtypes_and_context((descr, descr))
            if tuple(dtypes) != (descr, descr):
                return None
            ufunc._get_strided_loop(info, fixed_strides=strides)
            infos.append(info)
    except Exception:  # a numpy without this API, or no loop for this dtype
        return None
    general, contiguous = (pointer(info, CAPSULE) for info in infos)
    loop = ctypes.c_void_p.from_address(general).value
    needs_python = ctypes.c_ubyte.from_address(general + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    if not loop or loop != ctypes.c_void_p.from_address(contiguous).value or needs_python:
        return None
    import llvmlite.binding as llvm

    symbol = f"xcs_numpy_{name}_{descr.name}"
    _held.append(infos)
    llvm.add_symbol(symbol, general)  # {loop, context, auxdata}: numpy's ufunc_call_info
    return symbol


@functools.cache
def in_place_same(name: str, dtype: str) -> bool:
    """Whether numpy's loop gives the same bits written over its input as into a new array, on a
    spread of values (numpy takes one path for both where it can: its overlap test passes an input
    that is exactly its output); a kernel then computes ``numpy.<name>`` of a temporary in place."""
    import numpy

    ufunc = getattr(numpy, name)
    rng = numpy.random.default_rng(0)
    values = numpy.concatenate([
        numpy.linspace(-40.0, 40.0, 4099), rng.normal(size=4099) * 10.0 ** rng.uniform(-12, 3, size=4099),
        [0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan, 1e-310, -1e-310, 1e308, -1e308],
    ]).astype(dtype)
    with numpy.errstate(all="ignore"):
        new = ufunc(values)
        ufunc(values, out=values)
    return bool(numpy.array_equal(new, values, equal_nan=True))


@functools.cache
def call_loop(symbol: str) -> Any:
    """A numba intrinsic ``loop(x, out)``: numpy's loop ``symbol`` over the 1-D arrays ``x`` and ``out``."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def loop(typingctx, x, out):  # noqa: ANN001, ARG001 - numba's intrinsic protocol
        def codegen(context, builder, signature, args):  # noqa: ANN001
            src = context.make_array(signature.args[0])(context, builder, args[0])
            dst = context.make_array(signature.args[1])(context, builder, args[1])
            byte = ir.IntType(8).as_pointer()
            intp = context.get_value_type(types.intp)
            info = builder.module.globals.get(symbol)
            if info is None:
                info = ir.GlobalVariable(builder.module, ir.LiteralStructType([byte, byte, byte]), symbol)
                info.linkage = "external"
            function, call_context, auxdata = (builder.load(cgutils.gep(builder, info, 0, i)) for i in range(3))
            data = cgutils.alloca_once(builder, byte, size=2)
            builder.store(builder.bitcast(src.data, byte), data)
            builder.store(builder.bitcast(dst.data, byte), cgutils.gep(builder, data, 1))
            count = cgutils.alloca_once(builder, intp)
            builder.store(builder.extract_value(src.shape, 0), count)
            steps = cgutils.alloca_once(builder, intp, size=2)
            builder.store(builder.extract_value(src.strides, 0), steps)
            builder.store(builder.extract_value(dst.strides, 0), cgutils.gep(builder, steps, 1))
            kind = ir.FunctionType(ir.IntType(32), [byte, data.type, count.type, steps.type, byte])
            return builder.call(builder.bitcast(function, kind.as_pointer()), [call_context, data, count, steps, auxdata])

        return types.int32(x, out), codegen

    return loop
