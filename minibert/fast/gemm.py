"""float32 GEMM on weights packed once at load: out = epilogue(x W + b), in Numba, explicit SIMD.

The weight W [K, N] (a Linear's [out, in] weight, transposed) is packed into panels of NR columns,

    panels [P, K, NR], P = ⌈N / NR⌉, panels[p, k, :] = W[k, p·NR : p·NR + NR] (zeros past N),

so the micro-kernel reads B as one contiguous stream. The micro-kernel computes an MR × NR tile of the
output, held in registers for the whole K loop (MR · NR/W vector accumulators, W lanes per vector):

               NR = V vectors of W lanes
             ┌────────┬────────┐
     B row k │ b[k,0] │ b[k,1] │          2 vector loads per k (V = 2)
             └────────┴────────┘
     A col k                               MR broadcasts per k
       a[0,k] ─► acc[0][0]  acc[0][1]
       a[1,k] ─► acc[1][0]  acc[1][1]      acc[i][v] += broadcast(a[i,k]) · b[k,v]
        ...        ...        ...          (MR · V fused multiply-adds per k)
       a[MR-1,k]► acc[MR-1][0] acc[MR-1][1]

Tiles: 8 × 32 on AVX-512 (16 of the 32 zmm registers hold the tile), 6 × 16 on AVX2 (12 of 16 ymm), 6 × 8
on SSE / generic targets (12 of 16 xmm). Rows past a multiple of MR run on kernels of 4, 2 and 1 rows.

Blocking: the output is cut into tasks of MC rows × one panel, run in parallel (prange); within a task, K
is cut into blocks of KC so a B block (KC × NR) stays in L1 while the task's row tiles stream over it, and
each tile accumulates over the K blocks in a small scratch block, from which the epilogue writes the
output: bias, bias + GELU (nn.gelu, erf as kernels.erf_rational), or bias + residual.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numba import prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import simd
from .kernels import F32_HALF, F32_ONE, F32_SQRT1_2, erf_rational

NONE, BIAS, BIAS_GELU, BIAS_RESIDUAL = 0, 1, 2, 3  # epilogues
KC = 256  # K block: a KC × 32 float32 block of B is 32 KiB (L1)
MC = 96  # rows per task: an MC × KC block of A is 96 KiB (L2)


def tile_rows(width: int) -> int:
    """MR: 8 rows × 2 vectors = 16 accumulators of AVX-512's 32 registers; 6 × 2 = 12 of AVX2's or SSE's 16."""
    return 8 if width == 16 else 6


# The host's kernel constants; _build compiles _gemm with other values for other widths.
WIDTH, FUSED = simd.host().width, simd.host().fma
MR = tile_rows(WIDTH)


@intrinsic
def micro_kernel(typingctx, rows, vectors, width, fused, a, a_start, lda, b, b_start, k, c, accumulate):
    """c[i, :] (+)= Σ_k a[a_start + i·lda + k] · b[b_start + k·NR : +NR] for i < rows, NR = vectors · width.

    rows, vectors, width, fused: compile-time constants; a, b, c: float32 arrays (any shape, contiguous in
    the addressed elements); c is the tile [rows, NR] at c's first element; accumulate: add to c's values
    instead of overwriting them. k ≥ 1.
    """
    for literal in (rows, vectors, width, fused):
        if not isinstance(literal, (nbtypes.IntegerLiteral, nbtypes.BooleanLiteral)):
            return None
    MR, V, W, FUSED = rows.literal_value, vectors.literal_value, width.literal_value, bool(fused.literal_value)
    NR = V * W
    signature = nbtypes.void(rows, vectors, width, fused, a, a_start, lda, b, b_start, k, c, accumulate)

    def codegen(context, builder, sig, args):
        *_, a_array, a0, lda_, b_array, b0, k_, c_array, acc_flag = args
        i64 = cgutils.intp_t
        a_data = context.make_array(sig.args[4])(context, builder, a_array).data
        b_data = context.make_array(sig.args[7])(context, builder, b_array).data
        c_data = context.make_array(sig.args[10])(context, builder, c_array).data
        a_rows = [simd.element_pointer(builder, a_data, builder.add(a0, builder.mul(lda_, i64(i)))) for i in range(MR)]
        b_start_ = simd.element_pointer(builder, b_data, b0)
        zero = simd.ir.Constant(simd.vector(W), [0.0] * W)
        entry = builder.block
        loop = builder.append_basic_block("micro_kernel.loop")
        done = builder.append_basic_block("micro_kernel.done")
        builder.branch(loop)

        builder.position_at_end(loop)  # one k per iteration; the tile lives in phi nodes (registers)
        kk = builder.phi(i64)
        acc = [[builder.phi(zero.type) for _ in range(V)] for _ in range(MR)]
        b_row = simd.element_pointer(builder, b_start_, builder.mul(kk, i64(NR)))
        b_vectors = [simd.load(builder, simd.element_pointer(builder, b_row, i64(v * W)), W) for v in range(V)]
        new = []
        for i in range(MR):
            a_ik = simd.broadcast(builder, builder.load(simd.element_pointer(builder, a_rows[i], kk)), W)
            new.append([simd.multiply_add(builder, a_ik, b_vectors[v], acc[i][v], FUSED) for v in range(V)])
        k_next = builder.add(kk, i64(1))
        kk.add_incoming(i64(0), entry)
        kk.add_incoming(k_next, loop)
        for i in range(MR):
            for v in range(V):
                acc[i][v].add_incoming(zero, entry)
                acc[i][v].add_incoming(new[i][v], loop)
        builder.cbranch(builder.icmp_signed("<", k_next, k_), loop, done)

        builder.position_at_end(done)
        keep = builder.trunc(acc_flag, simd.ir.IntType(1)) if acc_flag.type != simd.ir.IntType(1) else acc_flag
        for i in range(MR):
            for v in range(V):
                out = simd.element_pointer(builder, c_data, i64(i * NR + v * W))
                old = simd.load(builder, out, W)
                total = builder.select(keep, builder.fadd(old, new[i][v]), new[i][v])
                simd.store(builder, total, out)
        return context.get_dummy_value()

    return signature, codegen


def pack(weight: np.ndarray, width: int) -> np.ndarray:
    """A Linear's weight [N, K] ([out, in]) -> panels [⌈N/NR⌉, K, NR] float32, NR = 2 · width, zero-padded."""
    N, K = weight.shape
    NR = 2 * width
    P = -(-N // NR)
    padded = np.zeros((P * NR, K), dtype=np.float32)
    padded[:N] = weight
    return np.ascontiguousarray(padded.reshape(P, NR, K).transpose(0, 2, 1))  # [P·NR, K] -> [P, K, NR]


def _gemm(x, panels, n, out, bias, residual, epilogue, threads):
    """out[:M, :n] = epilogue(x panels + bias (+ residual)); x [M, K], panels [P, K, NR], out [M, ≥n] float32,
    rows of x and out contiguous; the tasks split in `threads` runs. WIDTH, MR, FUSED are the copy's globals
    (see _build)."""
    M, K = x.shape
    P, NR = panels.shape[0], panels.shape[2]
    lda = x.strides[0] // 4
    blocks = (M + MC - 1) // MC
    tasks = blocks * P  # task t: rows of block t // P, columns of panel t % P
    chunks = min(threads, tasks)  # one run of consecutive tasks per thread
    for chunk in prange(chunks):
        tile = np.empty((MC, NR), dtype=np.float32)  # [MC, NR] a task's output block, summed over K blocks
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            m0 = (task // P) * MC
            m1 = min(m0 + MC, M)
            p = task % P
            for k0 in range(0, K, KC):
                kc = min(KC, K - k0)
                b0 = (p * K + k0) * NR
                keep = k0 > 0
                i = m0
                while i + MR <= m1:
                    micro_kernel(MR, 2, WIDTH, FUSED, x, i * lda + k0, lda, panels, b0, kc, tile[i - m0:], keep)
                    i += MR
                if m1 - i >= 4:
                    micro_kernel(4, 2, WIDTH, FUSED, x, i * lda + k0, lda, panels, b0, kc, tile[i - m0:], keep)
                    i += 4
                if m1 - i >= 2:
                    micro_kernel(2, 2, WIDTH, FUSED, x, i * lda + k0, lda, panels, b0, kc, tile[i - m0:], keep)
                    i += 2
                if m1 - i >= 1:
                    micro_kernel(1, 2, WIDTH, FUSED, x, i * lda + k0, lda, panels, b0, kc, tile[i - m0:], keep)
            j0 = p * NR
            j1 = min(j0 + NR, n)
            for i in range(m0, m1):
                _epilogue(tile[i - m0, :j1 - j0], out[i, j0:j1], bias[j0:j1], residual[i, j0:j1], epilogue)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _epilogue(row, out, bias, residual, epilogue):
    """out = f(row + bias) for one row of a tile: f = identity (no bias), GELU (nn.gelu), or + residual.
    row, out, bias, residual [n]"""
    if epilogue == NONE:
        for j in range(row.shape[0]):
            out[j] = row[j]
    elif epilogue == BIAS:
        for j in range(row.shape[0]):
            out[j] = row[j] + bias[j]
    elif epilogue == BIAS_GELU:
        for j in range(row.shape[0]):
            z = row[j] + bias[j]
            out[j] = z * F32_HALF * (F32_ONE + erf_rational(z * F32_SQRT1_2))
    else:
        for j in range(row.shape[0]):
            out[j] = (row[j] + bias[j]) + residual[j]


def _build(width: int, fused: bool, parallel: bool):
    """_gemm compiled for vectors of `width` float32 lanes (a copy of the function under its own name, so
    Numba's disk cache keeps each build apart, with WIDTH, MR and FUSED as its compile-time constants)."""
    name = f"_gemm_{width}{'_fma' if fused else ''}{'' if parallel else '_serial'}"
    scope = dict(_gemm.__globals__, WIDTH=width, MR=tile_rows(width), FUSED=fused)
    copy = types.FunctionType(_gemm.__code__, scope, name)
    copy.__qualname__ = name
    return numba.njit(cache=True, parallel=parallel, fastmath=True, error_model="numpy")(copy)


_BUILDS: dict = {}


def kernel(width: int | None = None, parallel: bool = True):
    """The GEMM for vectors of `width` lanes (default: the CPU's, simd.host()), fused multiply-adds where the
    CPU has them."""
    target = simd.host()
    width = width or target.width
    key = (width, target.fma, parallel)
    if key not in _BUILDS:
        _BUILDS[key] = _build(width, target.fma, parallel)
    return _BUILDS[key]
