"""float32 GEMM in Numba with explicit SIMD: out = epilogue(x W + b), W a row-major [in, out] weight.

The output is computed in tiles of MR rows × NR columns, each held in registers for the whole K loop
(MR · NR/W vector accumulators, W lanes per vector), over a panel of NR columns of W:

               NR = V vectors of W lanes
             ┌────────┬────────┐
     W row k │ w[k,0] │ w[k,1] │          2 vector loads per k (V = 2)
             └────────┴────────┘
     x col k                               MR broadcasts per k
       x[0,k] ─► acc[0][0]  acc[0][1]
       x[1,k] ─► acc[1][0]  acc[1][1]      acc[i][v] += broadcast(x[i,k]) · w[k,v]
        ...        ...        ...          (MR · V fused multiply-adds per k)
       x[MR-1,k]► acc[MR-1][0] acc[MR-1][1]

Tiles: 8 × 32 on AVX-512 (16 of the 32 zmm registers hold the tile), 6 × 16 on AVX2 (12 of 16 ymm), 6 × 8
on SSE / generic targets (12 of 16 xmm). Rows past a multiple of MR run on kernels of 4, 2 and 1 rows.

Blocking: the panels are split between threads in runs of consecutive panels (one parallel region per
GEMM). A panel's output [M, NR] is accumulated over K in blocks of KC: each KC × NR block of W is copied
into a contiguous, 64-byte aligned buffer (when more than one row tile reads it: rows of W a page apart
map to the same L1 sets and would evict each other between tiles), where it stays in L1 while every row
tile streams over it. The epilogue then writes the panel's output: bias, bias + GELU (nn.gelu, erf as
kernels.erf_rational), or bias + residual. A last panel narrower than NR reads a zero-padded copy.

W is read from the caller's array rather than from panels packed once at load, so a model and its fast
path could share one copy of each weight (an optimizer's in-place step then reaches both); on BERT-Mini's
16 layer GEMMs at 8 rows, panels packed at load and W read in place took the same time.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numba import prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import kernels, simd
from .kernels import F32_HALF, F32_ONE, F32_SQRT1_2, erf_rational

NONE, BIAS, BIAS_GELU, BIAS_RESIDUAL = 0, 1, 2, 3  # epilogues
KC = 256  # K block: a KC × 32 float32 block of B is 32 KiB (L1)
# multiply-adds; below, one thread beats waking the pool (8 rows of a layer's GEMMs stay serial)
PARALLEL_FROM = 1 << 23


def tile_rows(width: int) -> int:
    """MR: 8 rows × 2 vectors = 16 accumulators of AVX-512's 32 registers; 6 × 2 = 12 of AVX2's or SSE's 16."""
    return 8 if width == 16 else 6


# The host's kernel constants; _build compiles _gemm with other values for other widths.
WIDTH, FUSED = simd.host().width, simd.host().fma
MR = tile_rows(WIDTH)


@intrinsic
def micro_kernel(typingctx, rows, vectors, width, fused, a, a_start, lda, b, b_start, ldb, k, c, accumulate):
    """c[i, :] (+)= Σ_k a[a_start + i·lda + k] · b[b_start + k·ldb : +NR] for i < rows, NR = vectors · width.

    rows, vectors, width, fused: compile-time constants; a, b, c: float32 arrays (any shape, contiguous in
    the addressed elements); c is the tile [rows, NR] at c's first element; accumulate: add to c's values
    instead of overwriting them. k ≥ 1.
    """
    for literal in (rows, vectors, width, fused):
        if not isinstance(literal, (nbtypes.IntegerLiteral, nbtypes.BooleanLiteral)):
            return None
    MR, V, W, FUSED = rows.literal_value, vectors.literal_value, width.literal_value, bool(fused.literal_value)
    NR = V * W
    signature = nbtypes.void(rows, vectors, width, fused, a, a_start, lda, b, b_start, ldb, k, c, accumulate)

    def codegen(context, builder, sig, args):
        *_, a_array, a0, lda_, b_array, b0, ldb_, k_, c_array, acc_flag = args
        i64 = cgutils.intp_t
        a_data = context.make_array(sig.args[4])(context, builder, a_array).data
        b_data = context.make_array(sig.args[7])(context, builder, b_array).data
        c_data = context.make_array(sig.args[11])(context, builder, c_array).data
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
        b_row = simd.element_pointer(builder, b_start_, builder.mul(kk, ldb_))
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


@intrinsic
def copy_panel(typingctx, width, b, b_start, ldb, rows, packed):
    """packed[κ, :NR] = b[b_start + κ·ldb : +NR] for κ < rows, NR = 2 · width (a compile-time constant): a
    block of a panel into a contiguous buffer, one vector load and store each (an element loop over an
    array of unknown layout does not vectorise). rows ≥ 1."""
    if not isinstance(width, nbtypes.IntegerLiteral):
        return None
    W = width.literal_value

    def codegen(context, builder, sig, args):
        _, b_array, b0, ldb_, rows_, packed_array = args
        i64 = cgutils.intp_t
        source = simd.element_pointer(builder, context.make_array(sig.args[1])(context, builder, b_array).data, b0)
        target = context.make_array(sig.args[5])(context, builder, packed_array).data
        entry = builder.block
        loop = builder.append_basic_block("copy_panel.loop")
        done = builder.append_basic_block("copy_panel.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        kk = builder.phi(i64)
        row = simd.element_pointer(builder, source, builder.mul(kk, ldb_))
        out = simd.element_pointer(builder, target, builder.mul(kk, i64(2 * W)))
        for v in range(2):
            simd.store(builder, simd.load(builder, simd.element_pointer(builder, row, i64(v * W)), W),
                       simd.element_pointer(builder, out, i64(v * W)))
        k_next = builder.add(kk, i64(1))
        kk.add_incoming(i64(0), entry)
        kk.add_incoming(k_next, loop)
        builder.cbranch(builder.icmp_signed("<", k_next, rows_), loop, done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return nbtypes.void(width, b, b_start, ldb, rows, packed), codegen


@numba.njit(cache=True, inline="always", error_model="numpy")
def panel_product(x, x0, lda, rows, k, b, b0, ldb, tile, packed, mr, width, fused):
    """tile[:rows] = x-rows · one panel of b: tile[i, :NR] = Σ_κ x[x0 + i·lda + κ] · b[b0 + κ·ldb : +NR] for
    i < rows ≤ tile's rows, κ < k; NR = 2 · width, ldb = b's row stride. mr, width, fused: the caller's
    compile-time constants (the tile's rows, the vector lanes, FMA). K in blocks of KC; each block of b is
    first copied into packed [KC, NR] when more than one row tile reads it (rows of b a page apart map to
    the same L1 sets and would evict each other between tiles); tile rows in MR, then 4, 2, 1."""
    nr = 2 * width
    for k0 in range(0, k, KC):
        kc = min(KC, k - k0)
        keep = k0 > 0
        if rows > mr:
            copy_panel(width, b, b0 + k0 * ldb, ldb, kc, packed)
            src, s0, ls = packed, 0, nr
        else:
            src, s0, ls = b, b0 + k0 * ldb, ldb
        i = 0
        while i + mr <= rows:
            micro_kernel(mr, 2, width, fused, x, x0 + i * lda + k0, lda, src, s0, ls, kc, tile[i:], keep)
            i += mr
        if rows - i >= 4:
            micro_kernel(4, 2, width, fused, x, x0 + i * lda + k0, lda, src, s0, ls, kc, tile[i:], keep)
            i += 4
        if rows - i >= 2:
            micro_kernel(2, 2, width, fused, x, x0 + i * lda + k0, lda, src, s0, ls, kc, tile[i:], keep)
            i += 2
        if rows - i >= 1:
            micro_kernel(1, 2, width, fused, x, x0 + i * lda + k0, lda, src, s0, ls, kc, tile[i:], keep)


def _gemm(x, w, out, bias, residual, epilogue, threads):
    """out = epilogue(x w + bias (+ residual)); x [M, K], w [K, N], out [M, N] float32, rows of each
    contiguous; the panels split in `threads` runs. WIDTH, MR, FUSED are the copy's globals (see _build)."""
    M, K = x.shape
    N = w.shape[1]
    NR = 2 * WIDTH
    P = (N + NR - 1) // NR
    lda, ldw = x.strides[0] // 4, w.strides[0] // 4
    tail = np.zeros((K if N % NR else 0, NR), dtype=np.float32)  # [K, NR] a narrower last panel, zero-padded
    if N % NR:
        tail[:, :N % NR] = w[:, (P - 1) * NR:]
    chunks = min(threads, P)  # one run of consecutive panels per thread
    for chunk in prange(chunks):
        tile = np.empty((M, NR), dtype=np.float32)  # [M, NR] a panel's output
        raw = np.empty(KC * NR + 16, dtype=np.float32)
        a0 = (16 - (raw.ctypes.data // 4) % 16) % 16
        packed = raw[a0:a0 + KC * NR].reshape((KC, NR))  # [KC, NR] a block of w's panel, 64-byte aligned
        for p in range(chunk * P // chunks, (chunk + 1) * P // chunks):
            if (p + 1) * NR <= N:
                panel_product(x, 0, lda, M, K, w, p * NR, ldw, tile, packed, MR, WIDTH, FUSED)
            else:
                panel_product(x, 0, lda, M, K, tail, 0, NR, tile, packed, MR, WIDTH, FUSED)
            j0 = p * NR
            j1 = min(j0 + NR, N)
            for i in range(M):
                _epilogue(tile[i, :j1 - j0], out[i, j0:j1], bias[j0:j1], residual[i, j0:j1], epilogue)


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


def kernel(width: int = WIDTH, parallel: bool = True):
    """The GEMM for vectors of `width` lanes (default: the CPU's), with fused multiply-adds where the CPU has
    them: a function (x, w, out, bias, residual, epilogue, threads) as _gemm."""
    key = (width, parallel)
    if key not in _BUILDS:
        _BUILDS[key] = _build(width, FUSED, parallel)
    return _BUILDS[key]


def linear(x: np.ndarray, w: np.ndarray, out: np.ndarray, bias: np.ndarray, epilogue: int = BIAS,
           residual: np.ndarray | None = None) -> None:
    """out = epilogue(x w + bias), float32: x [M, K], w [K, N], out [M, N] (rows of each contiguous), bias
    [N], residual [M, N] for BIAS_RESIDUAL. On all of Numba's threads from PARALLEL_FROM multiply-adds."""
    if any(a.dtype != np.float32 or a.strides[-1] != 4 for a in (x, w, out, bias)):
        raise ValueError("gemm.linear takes float32 arrays whose rows are contiguous")
    threads = numba.get_num_threads()
    args = (x, w, out, bias, out if residual is None else residual, epilogue)
    if threads == 1 or x.shape[0] * x.shape[1] * w.shape[1] < PARALLEL_FROM:
        return kernel(parallel=False)(*args, 1)
    with kernels.PARALLEL_REGION:
        return kernel()(*args, threads)
