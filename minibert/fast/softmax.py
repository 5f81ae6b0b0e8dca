"""The softmax of one row of attention scores as LLVM vector IR (float32), for fast/layers.py.

Written as Numba loops, the passes stay scalar (LLVM vectorises neither the row's max, a reduction, nor
the exponential's arithmetic there: 5 cycles a score); with vectors, each is a few instructions per W
scores:

    top = max_j x_j                       llvm.maxnum over the row, then across the lanes
    e_j = exp((x_j - top) · scale)        2^k · exp(r), below, W lanes at a time
    x_j = e_j / Σ_j e_j

The row is padded to whole vectors: lanes past its length count as -∞ in the max and 0 in the sum (and
are written as 0).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import simd
from .kernels import F32_HALF, F32_ONE

# Cephes' expf: exp(r) ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2, with ln 2 split in two for an exact k·ln 2.
EXP_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                      1.6666665459e-1, 5.0000001201e-1))
FUSED = simd.host().fma  # the polynomial in fused multiply-adds where the CPU has them
F32_LOG2E, F32_LN2_HI, F32_LN2_LO = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
F32_EXP_MIN = np.float32(-86.0)  # exp(-86) = 4.4e-38 is still a normal float32; below, 2^k would not be


@intrinsic
def softmax_padded(typingctx, width, row, start, length, padded, scale):
    """row[start + j] = softmax_j(row[start + j] · scale) for j < length, 0 for length ≤ j < padded.

    width: W, float32 lanes per vector (a compile-time constant); row: float32 array; padded: a multiple of
    W, ≥ length ≥ 1; scale > 0 (float32)."""
    if not isinstance(width, nbtypes.IntegerLiteral):
        return None
    W = width.literal_value

    def codegen(context, builder, sig, args):
        _, row_array, start_, length_, padded_, scale_ = args
        i64, i32 = cgutils.intp_t, simd.I32
        floats, ints = simd.vector(W), simd.vector(W, i32)
        base = simd.element_pointer(builder, context.make_array(sig.args[1])(context, builder, row_array).data,
                                    start_)

        def constant(value):
            return simd.ir.Constant(floats, [float(value)] * W)

        lanes = simd.ir.Constant(simd.vector(W, i64), list(range(W)))
        length_v = simd.broadcast(builder, length_, W)
        chunks = builder.udiv(padded_, i64(W))

        def chunk(c):
            """(pointer to vector c, its values, which lanes are real scores)"""
            pointer = simd.element_pointer(builder, base, builder.mul(c, i64(W)))
            index = builder.add(simd.broadcast(builder, builder.mul(c, i64(W)), W), lanes)
            return pointer, simd.load(builder, pointer, W), builder.icmp_signed("<", index, length_v)

        top_v = cgutils.alloca_once_value(builder, constant(-math.inf))
        with cgutils.for_range(builder, chunks) as loop:  # top = max_j x_j
            _, values, real = chunk(loop.index)
            values = builder.select(real, values, constant(-math.inf))
            builder.store(simd.call(builder, f"llvm.maxnum.v{W}f32", floats, [builder.load(top_v), values]), top_v)
        top = simd.call(builder, f"llvm.vector.reduce.fmax.v{W}f32", simd.F32, [builder.load(top_v)])
        top_b, scale_b = simd.broadcast(builder, top, W), simd.broadcast(builder, scale_, W)

        sum_v = cgutils.alloca_once_value(builder, constant(0.0))
        with cgutils.for_range(builder, chunks) as loop:  # e_j = exp((x_j - top) · scale), Σ e_j
            pointer, values, real = chunk(loop.index)
            x = builder.fmul(builder.fsub(values, top_b), scale_b)  # ≤ 0
            x = simd.call(builder, f"llvm.maxnum.v{W}f32", floats, [x, constant(F32_EXP_MIN)])
            k = simd.call(builder, f"llvm.floor.v{W}f32", floats,
                          [builder.fadd(builder.fmul(x, constant(F32_LOG2E)), constant(F32_HALF))])
            r = builder.fsub(x, builder.fmul(k, constant(F32_LN2_HI)))
            r = builder.fsub(r, builder.fmul(k, constant(F32_LN2_LO)))  # x - k ln 2, ln 2 in two parts
            p = constant(EXP_P[0])
            for c in EXP_P[1:]:
                p = simd.multiply_add(builder, p, r, constant(c), FUSED)
            e = builder.fadd(simd.multiply_add(builder, builder.fmul(p, r), r, r, FUSED), constant(F32_ONE))
            exponent = builder.shl(builder.fptosi(k, ints), simd.ir.Constant(ints, [23] * W))  # · 2^k
            e = builder.bitcast(builder.add(builder.bitcast(e, ints), exponent), floats)
            e = builder.select(real, e, constant(0.0))
            simd.store(builder, e, pointer)
            builder.store(builder.fadd(builder.load(sum_v), e), sum_v)
        total = simd.call(builder, f"llvm.vector.reduce.fadd.v{W}f32", simd.F32,
                          [simd.ir.Constant(simd.F32, 0.0), builder.load(sum_v)])
        inverse = simd.broadcast(builder, builder.fdiv(simd.ir.Constant(simd.F32, 1.0), total), W)
        with cgutils.for_range(builder, chunks) as loop:  # x_j = e_j / Σ e_j
            pointer, values, _ = chunk(loop.index)
            simd.store(builder, builder.fmul(values, inverse), pointer)
        return context.get_dummy_value()

    return nbtypes.void(width, row, start, length, padded, scale), codegen
