"""The exponentials of a softmax over one row of attention scores, as LLVM vector IR (float32), for
fast/layers.py.

Written as Numba loops, the passes stay scalar (LLVM vectorises neither the row's max, a reduction, nor
the exponential's arithmetic there: 5 cycles a score); with vectors, each is a few instructions per W
scores:

    top = max_j x_j                       the max over the row (two running maxima), then the lanes
    e_j = exp((x_j - top) · scale)        2^k · exp(r), below, W lanes at a time; returns Σ_j e_j

An exponential is a chain of some twenty dependent instructions, longer than the core can look ahead
over, so one vector at a time left it waiting at each step; EXP_VECTORS vectors are computed side by side,
step by step, so that the steps of the others fill each wait. The max is a compare and a select (one
vmaxps on x86), not llvm.maxnum, whose rule for NaN costs two more instructions.

The division by Σ_j e_j is the caller's: softmax(x) v = (e v) / Σ e, so p v takes the e_j and its
[L, d] result is divided row by row, d divisions a row where normalising p would take L. The row is padded
to whole vectors: lanes past its length are left out of the max and the sum, and written as 0; only the
vector holding the row's end needs the mask.
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
EXP_VECTORS = 8  # vectors whose exponentials are computed side by side, step by step (see exp)
F32_EXP_MIN = np.float32(-86.0)  # exp(-86) = 4.4e-38 is still a normal float32; below, 2^k would not be


@intrinsic
def softmax_exp(typingctx, width, row, start, length, padded, scale):
    """row[start + j] = exp((row[start + j] - max_i row[start + i]) · scale) for j < length, 0 for length ≤
    j < padded; returns their sum (float32), the softmax's denominator.

    width: W, float32 lanes per vector (a compile-time constant); row: float32 array; padded: a multiple of
    W, ≥ length ≥ 1; scale > 0 (float32)."""
    if not isinstance(width, nbtypes.IntegerLiteral):
        return None
    W = width.literal_value

    def codegen(context, builder, sig, args):
        _, row_array, start_, length_, padded_, scale_ = args
        i64 = cgutils.intp_t
        floats, ints = simd.vector(W), simd.vector(W, simd.I32)
        base = simd.element_pointer(builder, context.make_array(sig.args[1])(context, builder, row_array).data,
                                    start_)

        def constant(value):
            return simd.ir.Constant(floats, [float(value)] * W)

        def pointer(c):
            return simd.element_pointer(builder, base, builder.mul(c, i64(W)))

        def maximum(a, b):
            return builder.select(builder.fcmp_ordered(">", a, b), a, b)

        def update(accumulator, value, combine):
            builder.store(combine(builder.load(accumulator), value), accumulator)

        full = builder.udiv(length_, i64(W))  # vectors wholly inside the row; then one partly inside, or none
        ragged = builder.icmp_signed("!=", builder.urem(length_, i64(W)), i64(0))
        lanes = builder.add(simd.ir.Constant(simd.vector(W, i64), list(range(W))),
                            simd.broadcast(builder, builder.mul(full, i64(W)), W))
        inside = builder.icmp_signed("<", lanes, simd.broadcast(builder, length_, W))  # the ragged vector's lanes

        top = [cgutils.alloca_once_value(builder, constant(-math.inf)) for _ in range(2)]
        with cgutils.for_range(builder, builder.udiv(full, i64(2))) as loop:  # top = max_j x_j
            for half in range(2):  # two running maxima: each maxnum waits for the one before on its own
                c = builder.add(builder.mul(loop.index, i64(2)), i64(half))
                update(top[half], simd.load(builder, pointer(c), W), maximum)
        with builder.if_then(builder.icmp_signed("!=", builder.urem(full, i64(2)), i64(0))):
            update(top[0], simd.load(builder, pointer(builder.sub(full, i64(1))), W), maximum)
        with builder.if_then(ragged):
            update(top[0], builder.select(inside, simd.load(builder, pointer(full), W), constant(-math.inf)),
                   maximum)
        top_b = simd.broadcast(builder, simd.call(builder, f"llvm.vector.reduce.fmax.v{W}f32", simd.F32,
                                                  [maximum(builder.load(top[0]), builder.load(top[1]))]), W)
        scale_b = simd.broadcast(builder, scale_, W)

        def exp(vectors):
            """exp((v - top) · scale) for each vector v of W lanes, step by step across the vectors"""
            x = [builder.fmul(builder.fsub(v, top_b), scale_b) for v in vectors]  # ≤ 0
            x = [maximum(v, constant(F32_EXP_MIN)) for v in x]
            k = [simd.call(builder, f"llvm.floor.v{W}f32", floats,
                           [builder.fadd(builder.fmul(v, constant(F32_LOG2E)), constant(F32_HALF))]) for v in x]
            # r = x - k ln 2, ln 2 in two parts; k · ln2_hi is exact (ln2_hi has 9 bits), so fused or not alike
            r = [simd.multiply_add(builder, n, constant(-F32_LN2_HI), v, FUSED) for v, n in zip(x, k)]
            r = [builder.fsub(v, builder.fmul(n, constant(F32_LN2_LO))) for v, n in zip(r, k)]
            p = [constant(EXP_P[0])] * len(vectors)
            for c in EXP_P[1:]:
                p = [simd.multiply_add(builder, q, v, constant(c), FUSED) for q, v in zip(p, r)]
            e = [builder.fadd(simd.multiply_add(builder, builder.fmul(q, v), v, v, FUSED), constant(F32_ONE))
                 for q, v in zip(p, r)]
            exponent = [builder.shl(builder.fptosi(n, ints), simd.ir.Constant(ints, [23] * W)) for n in k]  # · 2^k
            return [builder.bitcast(builder.add(builder.bitcast(v, ints), n), floats) for v, n in zip(e, exponent)]

        total = cgutils.alloca_once_value(builder, constant(0.0))

        def exp_run(first, count):  # e_j = exp((x_j - top) · scale) over `count` vectors from `first`, Σ e_j
            c = [builder.add(first, i64(i)) for i in range(count)]
            for i, e in enumerate(exp([simd.load(builder, pointer(v), W) for v in c])):
                simd.store(builder, e, pointer(c[i]))
                update(total, e, builder.fadd)  # in the row's order, as one vector at a time would add them

        runs = builder.udiv(full, i64(EXP_VECTORS))  # runs of EXP_VECTORS whole vectors, then the rest one by one
        with cgutils.for_range(builder, runs) as loop:
            exp_run(builder.mul(loop.index, i64(EXP_VECTORS)), EXP_VECTORS)
        with cgutils.for_range(builder, builder.urem(full, i64(EXP_VECTORS))) as loop:
            exp_run(builder.add(builder.mul(runs, i64(EXP_VECTORS)), loop.index), 1)
        with builder.if_then(ragged):
            e = builder.select(inside, exp([simd.load(builder, pointer(full), W)])[0], constant(0.0))
            simd.store(builder, e, pointer(full))
            update(total, e, builder.fadd)
        written = builder.add(full, builder.zext(ragged, i64))
        with cgutils.for_range(builder, builder.sub(builder.udiv(padded_, i64(W)), written)) as loop:
            simd.store(builder, constant(0.0), pointer(builder.add(written, loop.index)))  # the padding
        return simd.call(builder, f"llvm.vector.reduce.fadd.v{W}f32", simd.F32,
                         [simd.ir.Constant(simd.F32, 0.0), builder.load(total)])

    return nbtypes.float32(width, row, start, length, padded, scale), codegen
