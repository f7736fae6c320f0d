"""Explicit SIMD vectors for numba kernels: load, store, broadcast, multiply, fused multiply-add.

numba exposes no vector types, and LLVM's vectorisers decide themselves which loop to
vectorise and how many values to keep in registers. The distance tile kernel
(:mod:`deepmanifold.geometry._kernels`) needs one particular register block (a few row
models times a few vectors of column models, their sums over the classes held in
registers), which neither vectoriser finds. These intrinsics give numba
code LLVM vector values of a fixed number of lanes; LLVM still picks the instructions
(AVX2, AVX-512, NEON) for the CPU it compiles for.

Every operation is lane-wise and rounds as its scalar counterpart: ``fma`` is one
rounding (``llvm.fma``; a library call per lane on a CPU without FMA instructions, where
the kernels use ``mul`` and ``add`` instead), ``mul`` and ``add`` one, ``widen`` (float32
to float64) none. A value
computed in any lane therefore has the same bits whatever its position in a vector,
which is what makes a distance independent of the tile it was computed in.

The intrinsics are made per lane count (:func:`vector_ops`) and kept at module level,
so numba's cache can refer to them by name.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic, models, register_model

__all__ = ["Vector", "vector_ops", "LANE_COUNTS"]

LANE_COUNTS = (2, 4, 8, 16)


class Vector(types.Type):
    """A numba type: ``lanes`` values of the scalar type ``dtype`` in one LLVM vector."""

    def __init__(self, dtype, lanes: int):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"Vector({dtype}, {lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _pointer(context, builder, array_type, array, offset, vector_type):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), vector_type.as_pointer())


def _splat(builder, vector_type, x):
    """LLVM IR: the vector of ``vector_type`` with ``x`` in every lane."""
    undefined = ir.Constant(vector_type, ir.Undefined)
    one = builder.insert_element(undefined, x, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(one, undefined, zeros)


def _below_bits(builder, vector, floor):
    """LLVM IR: an integer of one bit per lane, set where the lane is below the scalar ``floor``."""
    below = builder.fcmp_ordered("<", vector, _splat(builder, vector.type, floor))
    return builder.bitcast(below, ir.IntType(vector.type.count))


def _make(lanes: int) -> dict:
    """The intrinsics for vectors of ``lanes`` lanes."""

    @intrinsic
    def load(typingctx, array, offset):
        """``array.flat[offset:offset + lanes]`` as a vector (C-contiguous arrays only)."""
        vector = Vector(array.dtype, lanes)

        def codegen(context, builder, sig, args):
            vt = context.get_value_type(vector)
            ptr = _pointer(context, builder, sig.args[0], args[0], args[1], vt)
            return builder.load(ptr, align=sig.args[0].dtype.bitwidth // 8)
        return vector(array, offset), codegen

    @intrinsic
    def store(typingctx, array, offset, value):
        """``array.flat[offset:offset + lanes] = value``."""
        def codegen(context, builder, sig, args):
            ptr = _pointer(context, builder, sig.args[0], args[0], args[1], args[2].type)
            builder.store(args[2], ptr, align=sig.args[0].dtype.bitwidth // 8)
            return context.get_dummy_value()
        return types.void(array, offset, value), codegen

    @intrinsic
    def splat(typingctx, x):
        """A vector with ``x`` in every lane."""
        vector = Vector(x, lanes)

        def codegen(context, builder, sig, args):
            return _splat(builder, context.get_value_type(vector), args[0])
        return vector(x), codegen

    @intrinsic
    def mul(typingctx, a, b):
        """``a * b`` lane by lane."""
        def codegen(context, builder, sig, args):
            return builder.fmul(args[0], args[1])
        return a(a, b), codegen

    @intrinsic
    def add(typingctx, a, b):
        """``a + b`` lane by lane."""
        def codegen(context, builder, sig, args):
            return builder.fadd(args[0], args[1])
        return a(a, b), codegen

    @intrinsic
    def fma(typingctx, a, b, c):
        """``a * b + c`` lane by lane with one rounding."""
        def codegen(context, builder, sig, args):
            vt = args[0].type
            name = f"llvm.fma.v{lanes}f{64 if isinstance(vt.element, ir.DoubleType) else 32}"
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]), name)
            return builder.call(fn, list(args))
        return c(a, b, c), codegen

    @intrinsic
    def widen(typingctx, a):
        """The lanes as float64 (exact)."""
        vector = Vector(types.float64, lanes)

        def codegen(context, builder, sig, args):
            if sig.args[0].dtype == types.float64:
                return args[0]
            return builder.fpext(args[0], context.get_value_type(vector))
        return vector(a), codegen

    @intrinsic
    def raise_to(typingctx, a, floor):
        """``max(a, floor)`` lane by lane (``floor`` a scalar of the lanes' type; no NaN)."""
        def codegen(context, builder, sig, args):
            vt = args[0].type
            f = _splat(builder, vt, args[1])
            return builder.select(builder.fcmp_ordered("<", args[0], f), f, args[0])
        return a(a, floor), codegen

    @intrinsic
    def below_mask(typingctx, a, floor):
        """Bit ``k`` set where lane ``k`` of ``a`` is below ``floor`` (an int64)."""
        def codegen(context, builder, sig, args):
            return builder.zext(_below_bits(builder, *args), ir.IntType(64))
        return types.int64(a, floor), codegen

    @intrinsic
    def count_below(typingctx, a, floor):
        """How many lanes of ``a`` are below ``floor`` (an int64)."""
        def codegen(context, builder, sig, args):
            bits = _below_bits(builder, *args)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(bits.type, [bits.type]),
                                                f"llvm.ctpop.i{lanes}")
            return builder.zext(builder.call(fn, [bits]), ir.IntType(64))
        return types.int64(a, floor), codegen

    return {"load": load, "store": store, "splat": splat, "mul": mul, "add": add, "fma": fma, "widen": widen,
            "raise_to": raise_to, "below_mask": below_mask, "count_below": count_below}


_OPS = {lanes: _make(lanes) for lanes in LANE_COUNTS}
for _lanes, _ops in _OPS.items():
    for _name, _fn in _ops.items():
        globals()[f"{_name}{_lanes}"] = _fn


def vector_ops(lanes: int) -> dict:
    """The intrinsics for ``lanes``-lane vectors, by name: ``load``, ``store``, ``splat``,
    ``mul``, ``add``, ``fma``, ``widen``, ``raise_to``, ``below_mask``, ``count_below``; each is also
    this module's attribute ``<name><lanes>`` (``fma4``)."""
    if lanes not in _OPS:
        raise ValueError(f"lanes must be one of {LANE_COUNTS}, got {lanes!r}")
    return _OPS[lanes]
