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
on SSE / generic targets (12 of 16 xmm). Rows past a multiple of MR run on kernels of 4, 2 and 1 rows,
those of 2 and 1 row over two panels at once: 4 vectors wide, 8 or 4 accumulators, where a 2-row tile's 4
would each wait for the multiply-add before.

A model's weights are packed once, at its first call (pack): each panel of NR columns becomes K × NR consecutive
floats, the last one zero-padded to NR, so the micro-kernel reads a panel as one contiguous stream, which the
hardware prefetcher follows. Read in place, the rows of a panel lie a row of W apart (1 to 4 KB for
BERT-Mini), each one cache line in a page of its own: a stream no prefetcher follows, which a small batch,
reading each weight once from memory, waits on (docs/fast.md).

Blocking (gemm_block, one call per thread's share): rows in blocks of MC, K in blocks of KC. Packed panels
are read as they lie. A matrix read in place (the attention's values, a task head's weight) has each KC × NR
block of a panel copied into a contiguous, 64-byte aligned buffer when more than one row tile reads it (rows
a page apart map to the same L1 sets and would evict each other between tiles), where it stays in L1 while
the block's row tiles stream over it; the micro-kernel and the copy ask for the row PREFETCH_ROWS ahead. An
output larger than one block of rows (one that the caches do not keep from call to call) is asked for, to be
written, a block at a time before that block's tiles store into it. The epilogue runs on the registers after
the last block of K: bias, bias + GELU (nn.gelu, erf as kernels.erf_rational computes it), or bias +
residual. A last panel narrower than NR writes through a scratch tile (and, read in place, reads a
zero-padded copy).

Threads share a GEMM by claiming items (gemm_items: blocks of rows, or groups of panels when rows are few)
from atomic counters (fast/tasks.py): linear() in a parallel region of its own, the float32 encoder
(fast/layers.py) inside the one region of its forward.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numba import prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from .. import nn
from . import kernels, simd
from .aligned import zeros
from .tasks import claim, finish
from .threads import num_threads
from .kernels import ERF_P, ERF_Q, F32_4, F32_HALF, F32_ONE, F32_SQRT1_2, erf_rational

# The epilogues, as NumPy integers: Numba types a Python int constant as a literal, and would build every
# function they are passed to once for each (the micro-kernel picks its epilogue at run time anyway).
NONE, BIAS, BIAS_GELU, BIAS_RESIDUAL = np.arange(4)
KC = 256  # K block: a KC × 32 float32 block of B is 32 KiB (L1)
PREFETCH_ROWS = 16  # rows of w ahead that the micro-kernel asks for
GELU_GROUP = 4  # vectors of a tile whose GELU is computed side by side
MC = 128  # M block: the rows that reuse each copied block of B
ITEMS_PER_THREAD = 4  # a GEMM is cut into about this many items per thread, so that threads finish together
# multiply-adds; below, one thread beats waking the pool (8 rows of a layer's GEMMs stay serial)
PARALLEL_FROM = 1 << 23


def tile_rows(width: int) -> int:
    """MR: 8 rows × 2 vectors = 16 accumulators of AVX-512's 32 registers; 6 × 2 = 12 of AVX2's or SSE's 16."""
    return 8 if width == 16 else 6


# The host's kernel constants; _build compiles _gemm with other values for other widths.
WIDTH, FUSED = simd.host().width, simd.host().fma
MR = tile_rows(WIDTH)
PART = None  # _gemm's per-thread function: each build (_build) gives its copy of _gemm its own


@intrinsic
def micro_kernel(typingctx, rows, vectors, width, fused, a, a_start, lda, b, b_start, ldb, panel_stride, k, c,
                 c_start, ldc, accumulate, epilogue, bias, bias_start, residual, residual_start, ldr):
    """One MR × NR' tile, NR' = vectors · width (at most two vectors a panel), held in registers over the whole
    K loop:

        acc[i, :] = Σ_κ a[a_start + i·lda + κ] · B[κ, :]                           i < rows, κ < k
        B[κ, v·W : +W] = b[b_start + (v // 2)·panel_stride + κ·ldb + (v % 2)·W : +W]    (vectors v)
        acc += c's tile                                      when accumulate (a later block of K)
        c[c_start + i·ldc : +NR] = epilogue(acc)             NONE: acc; BIAS: acc + bias;
                                                             BIAS_GELU: GELU(acc + bias);
                                                             BIAS_RESIDUAL: acc + bias + residual's tile
    rows, vectors, width, fused: compile-time constants; a, b, c, bias, residual: float32 arrays (any shape,
    contiguous in the addressed elements); bias from bias_start, residual's tile from residual_start with row
    stride ldr. k ≥ 1. Vectors 2 and 3 come from a second panel panel_stride elements on (a weight's next
    panel of NR columns, whose output columns follow), so that a tile of one or two rows still has enough
    independent accumulators to hide the multiply-add's latency.
    """
    for literal in (rows, vectors, width, fused):
        if not isinstance(literal, (nbtypes.IntegerLiteral, nbtypes.BooleanLiteral)):
            return None
    MR, V, W, FUSED = rows.literal_value, vectors.literal_value, width.literal_value, bool(fused.literal_value)
    signature = nbtypes.void(rows, vectors, width, fused, a, a_start, lda, b, b_start, ldb, panel_stride, k, c,
                             c_start, ldc, accumulate, epilogue, bias, bias_start, residual, residual_start, ldr)

    def codegen(context, builder, sig, args):
        (*_, a_array, a0, lda_, b_array, b0, ldb_, stride_, k_, c_array, c0, ldc_, acc_flag, mode, bias_array, bias0,
         residual_array, r0, ldr_) = args
        i64 = cgutils.intp_t
        data = [context.make_array(sig.args[n])(context, builder, array).data
                for n, array in ((4, a_array), (7, b_array), (12, c_array), (17, bias_array), (19, residual_array))]
        a_data, b_data, c_data, bias_data, residual_data = data
        a_rows = [simd.element_pointer(builder, a_data, builder.add(a0, builder.mul(lda_, i64(i)))) for i in range(MR)]
        b_panels = [simd.element_pointer(builder, b_data, builder.add(b0, builder.mul(stride_, i64(q))))
                    for q in range(-(-V // 2))]  # each panel's first element
        zero = simd.ir.Constant(simd.vector(W), [0.0] * W)

        def body(kk, flat):  # one k per iteration; the tile lives in phi nodes (registers)
            acc = [flat[i * V:(i + 1) * V] for i in range(MR)]
            b_rows = [simd.element_pointer(builder, panel, builder.mul(kk, ldb_)) for panel in b_panels]
            for q, b_row in enumerate(b_rows):  # each 64-byte line of the row PREFETCH_ROWS ahead
                ahead = simd.element_pointer(builder, b_row, builder.mul(ldb_, i64(PREFETCH_ROWS)))
                for v in range(0, min(V - 2 * q, 2) * W, 16):
                    simd.prefetch(builder, simd.element_pointer(builder, ahead, i64(v)))
            b_vectors = [simd.load(builder, simd.element_pointer(builder, b_rows[v // 2], i64(v % 2 * W)), W)
                         for v in range(V)]
            new = []
            for i in range(MR):
                a_ik = simd.broadcast(builder, builder.load(simd.element_pointer(builder, a_rows[i], kk)), W)
                new += [simd.multiply_add(builder, a_ik, b_vectors[v], acc[i][v], FUSED) for v in range(V)]
            return new

        flat = simd.counted_loop(builder, k_, body, [zero] * (MR * V))
        new = [flat[i * V:(i + 1) * V] for i in range(MR)]

        # the epilogue, on the registers: one branch per tile, by kind
        keep = builder.icmp_unsigned("!=", acc_flag, acc_flag.type(0))
        c_rows = [simd.element_pointer(builder, c_data, builder.add(c0, builder.mul(ldc_, i64(i)))) for i in range(MR)]
        r_rows = [simd.element_pointer(builder, residual_data, builder.add(r0, builder.mul(ldr_, i64(i))))
                  for i in range(MR)]
        before = builder.block
        with builder.if_then(keep):  # a later block of K: add c's tile (read only then: it may be cold)
            summed = [[builder.fadd(simd.load(builder, simd.element_pointer(builder, c_rows[i], i64(v * W)), W),
                                    new[i][v]) for v in range(V)] for i in range(MR)]
            after_sum = builder.block
        tile = []
        for i in range(MR):
            tile.append([])
            for v in range(V):
                merged = builder.phi(zero.type)
                merged.add_incoming(summed[i][v], after_sum)
                merged.add_incoming(new[i][v], before)
                tile[i].append(merged)
        kinds = [builder.append_basic_block(f"micro_kernel.epilogue{kind}") for kind in range(4)]
        switch = builder.switch(mode, kinds[NONE])
        for kind in (BIAS, BIAS_GELU, BIAS_RESIDUAL):
            switch.add_case(mode.type(kind), kinds[kind])
        for kind, block in enumerate(kinds):
            builder.position_at_end(block)
            z = {}
            for v in range(V):
                column = builder.add(bias0, i64(v * W))
                bias_pointer = simd.element_pointer(builder, bias_data, column)
                bias_v = None if kind == NONE else simd.load(builder, bias_pointer, W)
                for i in range(MR):
                    z[i, v] = tile[i][v] if bias_v is None else builder.fadd(tile[i][v], bias_v)
                    if kind == BIAS_RESIDUAL:
                        z[i, v] = builder.fadd(z[i, v], simd.load(builder, simd.element_pointer(builder, r_rows[i],
                                                                                                 i64(v * W)), W))
            if kind == BIAS_GELU:  # GELU_GROUP vectors at a time, step by step, so their chains overlap
                keys = list(z)
                for g in range(0, len(keys), GELU_GROUP):
                    group = keys[g:g + GELU_GROUP]
                    z.update(zip(group, gelu_vectors(builder, [z[key] for key in group], FUSED)))
            for (i, v), value in z.items():
                simd.store(builder, value, simd.element_pointer(builder, c_rows[i], i64(v * W)))
        end = builder.append_basic_block("micro_kernel.end")
        for block in kinds:
            builder.position_at_end(block)
            builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()

    return signature, codegen


def gelu_vectors(builder, zs: list, fused: bool) -> list:
    """GELU(z) = z · ½ · (1 + erf(z / √2)) on float32 vectors, erf as kernels.erf_rational computes it: x
    clamped to [-4, 4], then x · P(x²) / Q(x²). Each step is emitted for every vector before the next, so
    that the vectors' chains of dependent multiply-adds run side by side."""
    kind = zs[0].type
    def constant(value):
        return simd.ir.Constant(kind, [float(value)] * kind.count)
    xs = [builder.fmul(z, constant(F32_SQRT1_2)) for z in zs]
    xs = [builder.select(builder.fcmp_ordered(">", x, constant(F32_4)), constant(F32_4), x) for x in xs]
    xs = [builder.select(builder.fcmp_ordered("<", x, constant(-F32_4)), constant(-F32_4), x) for x in xs]
    x2s = [builder.fmul(x, x) for x in xs]
    ps, qs = [constant(ERF_P[0])] * len(zs), [constant(ERF_Q[0])] * len(zs)
    for c in ERF_P[1:]:
        ps = [simd.multiply_add(builder, p, x2, constant(c), fused) for p, x2 in zip(ps, x2s)]
    for c in ERF_Q[1:]:
        qs = [simd.multiply_add(builder, q, x2, constant(c), fused) for q, x2 in zip(qs, x2s)]
    erfs = [builder.fdiv(builder.fmul(x, p), q) for x, p, q in zip(xs, ps, qs)]
    return [builder.fmul(builder.fmul(z, constant(F32_HALF)), builder.fadd(constant(F32_ONE), erf))
            for z, erf in zip(zs, erfs)]


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

        def body(kk, _):
            row = simd.element_pointer(builder, source, builder.mul(kk, ldb_))
            ahead = simd.element_pointer(builder, row, builder.mul(ldb_, i64(PREFETCH_ROWS)))
            for v in range(0, 2 * W, 16):
                simd.prefetch(builder, simd.element_pointer(builder, ahead, i64(v)))
            out = simd.element_pointer(builder, target, builder.mul(kk, i64(2 * W)))
            for v in range(2):
                simd.store(builder, simd.load(builder, simd.element_pointer(builder, row, i64(v * W)), W),
                           simd.element_pointer(builder, out, i64(v * W)))
            return []

        simd.counted_loop(builder, rows_, body, [])
        return context.get_dummy_value()

    return nbtypes.void(width, b, b_start, ldb, rows, packed), codegen


@intrinsic
def prefetch_for_write(typingctx, a, index):
    """Ask for the cache line of the element `index` elements past a's first (a float32 array of any shape or
    row stride, counted in elements as micro_kernel counts), to be written (simd.prefetch)."""
    def codegen(context, builder, sig, args):
        array, i = args
        data = context.make_array(sig.args[0])(context, builder, array).data
        simd.prefetch(builder, simd.element_pointer(builder, data, i), write=True)
        return context.get_dummy_value()

    return nbtypes.void(a, index), codegen


@numba.njit(cache=True, inline="always", error_model="numpy")
def prefetch_rows(a, start, ld, rows, columns):
    """prefetch_for_write each 64-byte line of `rows` rows of `columns` float32, from the element `start`
    (as prefetch_for_write counts), rows ld elements apart."""
    for r in range(rows):
        for c in range(0, columns, 16):
            prefetch_for_write(a, start + r * ld + c)


@numba.njit(cache=True, inline="always", error_model="numpy")
def tile_column(x, lda, m0, m1, k0, kc, b, b0, ldb, pair, c, c0, ldc, keep, mode, bias, j0, residual, ldr, mr, width,
                fused):
    """Rows m0 ≤ i < m1 of one panel (NR columns from j0) over one block of K, in tiles of mr rows, then 4,
    2, 1: micro_kernel's c tile at c0 + (i - m0)·ldc, its residual tile at i·ldr + j0. When pair > 0, of two
    panels, the second `pair` elements on in b, its columns the next NR: the tiles of mr and 4 rows run on
    each panel, and those of 2 and 1 row on both at once, where alone their 4 or 2 accumulators would each
    wait for the one multiply-add before (a 2-row tile over two panels takes 0.55x the time of two).
    mr, width, fused: compile-time constants."""
    NR = 2 * width
    whole = m0 + (m1 - m0) // mr * mr  # rows in tiles of mr, then one of 4
    short = whole + 4 if m1 - whole >= 4 else whole
    for q in range(2 if pair > 0 else 1):
        bq, cq, jq = b0 + q * pair, c0 + q * NR, j0 + q * NR
        for i in range(m0, whole, mr):
            micro_kernel(mr, 2, width, fused, x, i * lda + k0, lda, b, bq, ldb, 0, kc, c, cq + (i - m0) * ldc, ldc,
                         keep, mode, bias, jq, residual, i * ldr + jq, ldr)
        if short > whole:
            micro_kernel(4, 2, width, fused, x, whole * lda + k0, lda, b, bq, ldb, 0, kc, c,
                         cq + (whole - m0) * ldc, ldc, keep, mode, bias, jq, residual, whole * ldr + jq, ldr)
    i = short
    if m1 - i >= 2:
        _short_tile(2, x, lda, i, m0, k0, kc, b, b0, ldb, pair, c, c0, ldc, keep, mode, bias, j0, residual, ldr,
                    width, fused)
        i += 2
    if m1 - i >= 1:
        _short_tile(1, x, lda, i, m0, k0, kc, b, b0, ldb, pair, c, c0, ldc, keep, mode, bias, j0, residual, ldr,
                    width, fused)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _short_tile(rows, x, lda, i, m0, k0, kc, b, b0, ldb, pair, c, c0, ldc, keep, mode, bias, j0, residual, ldr, width,
                fused):
    """tile_column's tile of `rows` (1 or 2, a compile-time constant) rows from row i: over both panels (4
    vectors) when pair > 0, else over one."""
    if pair > 0:
        micro_kernel(rows, 4, width, fused, x, i * lda + k0, lda, b, b0, ldb, pair, kc, c, c0 + (i - m0) * ldc, ldc,
                     keep, mode, bias, j0, residual, i * ldr + j0, ldr)
    else:
        micro_kernel(rows, 2, width, fused, x, i * lda + k0, lda, b, b0, ldb, 0, kc, c, c0 + (i - m0) * ldc, ldc,
                     keep, mode, bias, j0, residual, i * ldr + j0, ldr)


@numba.njit(cache=True, inline="always", error_model="numpy")
def gemm_block(x, w, in_panels, out, bias, residual, epilogue, r0, r1, p0, p1, packed, scratch, tail, mr, width,
               fused):
    """Rows r0 ≤ i < r1 and panels p0 ≤ p < p1 of out = epilogue(x W + bias (+ residual)): x [M, K], W [K, N],
    out and residual [M, N], bias [N], float32, rows of each contiguous; w is W itself, or when in_panels its
    panels (pack). Work buffers (one set per thread): packed [KC, NR] 64-byte aligned, scratch [MC, NR],
    tail [K, NR]. mr, width, fused: compile-time constants.

    Rows in blocks of MC, K in blocks of KC. Packed panels are read as they lie. Read in place, each KC × NR
    block of a panel is copied into packed (when more than one row tile reads it: rows of w a page apart map
    to the same L1 sets and would evict each other between tiles), where it stays in L1 while the block's
    row tiles stream over it, and a narrower last panel is read from a zero-padded copy (tail). A narrower
    last panel writes through scratch. When x has more rows than a block (so out is larger than the caches
    keep from one call to the next), a block's output rows are first fetched for writing: otherwise each
    tile's stores wait for their lines to be read from memory."""
    K, N = x.shape[1], out.shape[1] if in_panels else w.shape[1]
    NR = 2 * width
    lda, ldw, ldo, ldr = x.strides[0] // 4, w.strides[0] // 4, out.strides[0] // 4, residual.strides[0] // 4
    if not in_panels and p1 * NR > N:  # the narrower last panel is ours: zero-padded into tail
        tail[:K] = 0
        for k in range(K):
            kernels.copy_row(w[k, (p1 - 1) * NR:], tail[k, :N - (p1 - 1) * NR])
    for m0 in range(r0, r1, MC):
        m1 = min(m0 + MC, r1)
        for k0 in range(0, K, KC):
            kc = min(KC, K - k0)
            keep = k0 > 0
            last = k0 + kc == K
            if k0 == 0 and m1 - m0 > mr and x.shape[0] > MC:  # an output too large to stay in cache
                prefetch_rows(out, m0 * ldo + p0 * NR, ldo, m1 - m0, min(N, p1 * NR) - p0 * NR)
            p = p0
            while p < p1:
                j0 = p * NR
                full = j0 + NR <= N
                pair = 0  # > 0: panels p and p + 1 together, pair elements apart (tile_column)
                if p + 1 < p1 and j0 + 2 * NR <= N and (in_panels or m1 - m0 <= mr):
                    pair = K * NR if in_panels else NR  # two whole panels, read where they lie
                if in_panels:  # panel p's rows k0 ... as they lie, NR floats apart
                    src, s0, ls = w, (p * K + k0) * NR, NR
                elif m1 - m0 > mr:  # several row tiles read the block: from an aligned copy in L1
                    if full:
                        copy_panel(width, w, k0 * ldw + j0, ldw, kc, packed)
                    else:
                        copy_panel(width, tail, k0 * NR, NR, kc, packed)
                    src, s0, ls = packed, 0, NR
                elif full:
                    src, s0, ls = w, k0 * ldw + j0, ldw
                else:
                    src, s0, ls = tail, k0 * NR, NR
                p += 2 if pair > 0 else 1
                if full:  # the epilogue in the micro-kernel, after the last block of K
                    tile_column(x, lda, m0, m1, k0, kc, src, s0, ls, pair, out, m0 * ldo + j0, ldo, keep,
                                epilogue if last else NONE, bias, j0, residual, ldr, mr, width, fused)
                else:  # a narrower last panel: its tile into scratch, the epilogue on its columns
                    tile_column(x, lda, m0, m1, k0, kc, src, s0, ls, 0, scratch, 0, NR, keep, NONE, bias, j0,
                                residual, ldr, mr, width, fused)
                    if last:
                        for i in range(m0, m1):
                            epilogue_row(scratch[i - m0, :N - j0], out[i, j0:], bias[j0:], residual[i, j0:],
                                      epilogue)


@numba.njit(cache=True, inline="always", error_model="numpy")
def gemm_items(x, w, in_panels, out, bias, residual, epilogue, threads, counters, phase, packed, scratch, tail, mr,
               width, fused):
    """Claim (fast/tasks.py) and compute items of out = epilogue(x W + bias (+ residual)), each a gemm_block
    (item_bounds). Returns the item count, for tasks.wait."""
    count, groups, per = item_count(out.shape[0], out.shape[1], width, threads)
    item = claim(counters, phase)
    while item < count:
        r0, r1, p0, p1 = item_bounds(item, out.shape[0], out.shape[1], width, groups, per)
        gemm_block(x, w, in_panels, out, bias, residual, epilogue, r0, r1, p0, p1, packed, scratch, tail, mr, width,
                   fused)
        finish(counters, phase)
        item = claim(counters, phase)
    return count


@numba.njit(cache=True, inline="always")
def item_count(M, N, width, threads):
    """How gemm_items cuts an [M, N] output among `threads` threads: (items, groups, per). The items are its
    blocks of MC rows, each cut into `groups` groups of `per` panels when there are fewer blocks than
    ITEMS_PER_THREAD per thread (few rows: the threads share the weight's panels)."""
    blocks = (M + MC - 1) // MC
    groups, per = panel_groups(blocks, (N + 2 * width - 1) // (2 * width), threads)
    return blocks * groups, groups, per


@numba.njit(cache=True, inline="always")
def item_bounds(item, M, N, width, groups, per):
    """Item `item`'s rows r0 : r1 and panels p0 : p1 (item_count's cut of an [M, N] output)."""
    b, g = item // groups, item % groups
    return b * MC, min(M, (b + 1) * MC), g * per, min((N + 2 * width - 1) // (2 * width), (g + 1) * per)


@numba.njit(cache=True, inline="always")
def panel_groups(blocks, panels, threads):
    """(groups, panels per group): a GEMM's items are its blocks of rows, each cut into groups of its panels
    when there are fewer blocks than ITEMS_PER_THREAD per thread, so that every thread gets work."""
    wanted = ITEMS_PER_THREAD * threads
    groups = 1 if blocks >= wanted else min(panels, -(-wanted // blocks))
    per = -(-panels // groups)
    return -(-panels // per), per


@numba.njit(cache=True, error_model="numpy")
def aligned(raw, rows: int, columns: int):
    """The [rows, columns] view of float32 raw (of at least rows · columns + 16 elements) whose first element
    is 64-byte aligned."""
    a0 = (16 - (raw.ctypes.data // 4) % 16) % 16
    return raw[a0:a0 + rows * columns].reshape((rows, columns))


def pack(w: np.ndarray, width: int = WIDTH, out: np.ndarray | None = None) -> np.ndarray:
    """W [K, N] float32 as the GEMM's panels of NR = 2 · width columns, [P · K, NR], P = ⌈N / NR⌉: panel p's
    row k is W[k, p·NR : (p+1)·NR] (zeros past N) at row p·K + k, each panel K × NR consecutive floats;
    64-byte aligned. A copy, made once per weight (at the model's first call), into `out` when given (a
    contiguous array of that shape, such as rows of a larger aligned one)."""
    K, N = w.shape
    NR = 2 * width
    out = zeros(pack_shape(K, N, width), np.float32) if out is None else out
    panels = out.reshape(-1, K, NR)  # [P, K, NR], a view
    for p in range(panels.shape[0]):
        columns = w[:, p * NR:(p + 1) * NR]  # [K, ≤ NR]
        panels[p, :, :columns.shape[1]] = columns
        panels[p, :, columns.shape[1]:] = 0  # the last panel's missing columns
    return out


def pack_shape(k: int, n: int, width: int = WIDTH) -> tuple[int, int]:
    """The shape of pack()'s panels of a [k, n] matrix."""
    NR = 2 * width
    return (-(-n // NR) * k, NR)


def buffers(threads: int, rows: int) -> dict[str, tuple]:
    """name -> shape of gemm_items' per-thread work buffers (packed, scratch, tail), for K up to `rows`."""
    NR = 2 * WIDTH
    return {"packed": (threads, KC * NR + 16), "scratch": (threads, MC, NR), "tail": (threads, rows, NR)}


def _gemm_part(x, w, in_panels, out, bias, residual, epilogue, threads, counters):
    """One thread's share of out = epilogue(x W + bias (+ residual)): the items it claims (gemm_items), in
    work buffers of its own. WIDTH, MR, FUSED are the copy's globals (see _build)."""
    NR = 2 * WIDTH
    packed = aligned(np.empty(KC * NR + 16, dtype=np.float32), KC, NR)
    scratch, tail = np.empty((MC, NR), dtype=np.float32), np.empty((x.shape[1], NR), dtype=np.float32)
    gemm_items(x, w, in_panels, out, bias, residual, epilogue, threads, counters, 0, packed, scratch, tail, MR, WIDTH,
               FUSED)


def _gemm(x, w, in_panels, out, bias, residual, epilogue, threads):
    """out = epilogue(x W + bias (+ residual)); x [M, K], W [K, N] (w: W, or its panels when in_panels),
    out [M, N] float32, rows of each contiguous, on `threads` threads sharing its items. PART: the copy's
    global (see _build)."""
    counters = np.zeros(2, dtype=np.int64)
    for thread in prange(threads):
        PART(x, w, in_panels, out, bias, residual, epilogue, threads, counters)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def epilogue_row(row, out, bias, residual, epilogue):
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
    """_gemm compiled for vectors of `width` float32 lanes: copies of _gemm_part and _gemm under their own
    names (so Numba's disk cache keeps each build apart), with WIDTH, MR and FUSED as compile-time
    constants. Each thread's part is a function of its own, called from the parallel loop: compiled inside
    the loop's body, the same code ran up to 1.5x slower."""
    suffix = f"{width}{'_fma' if fused else ''}"
    scope = dict(_gemm.__globals__, WIDTH=width, MR=tile_rows(width), FUSED=fused)
    part = types.FunctionType(_gemm_part.__code__, scope, f"_gemm_part_{suffix}")
    part.__qualname__ = part.__name__
    scope["PART"] = numba.njit(cache=True, fastmath=True, error_model="numpy")(part)
    name = f"_gemm_{suffix}{'' if parallel else '_serial'}"
    copy = types.FunctionType(_gemm.__code__, scope, name)
    copy.__qualname__ = name
    return numba.njit(cache=True, parallel=parallel, fastmath=True, error_model="numpy")(copy)


_BUILDS: dict = {}


def kernel(width: int = WIDTH, parallel: bool = True):
    """The GEMM for vectors of `width` lanes (default: the CPU's), with fused multiply-adds where the CPU has
    them: a function (x, w, in_panels, out, bias, residual, epilogue, threads) as _gemm."""
    key = (width, parallel)
    if key not in _BUILDS:
        _BUILDS[key] = _build(width, FUSED, parallel)
    return _BUILDS[key]


def linear(x: np.ndarray, w: np.ndarray, out: np.ndarray, bias: np.ndarray, epilogue: int = BIAS,
           residual: np.ndarray | None = None, in_panels: bool = False) -> None:
    """out = epilogue(x W + bias), float32: x [M, K], W [K, N] (w: W, or pack(W) when in_panels), out [M, N]
    (rows of each contiguous), bias [N], residual [M, N] for BIAS_RESIDUAL. On all of Numba's threads from
    PARALLEL_FROM multiply-adds."""
    if any(a.dtype != np.float32 or a.strides[-1] != 4 and a.shape[-1] > 1 and a.size for a in (x, w, out, bias)):
        raise ValueError("gemm.linear takes float32 arrays whose rows are contiguous")
    if in_panels and w.shape != pack_shape(x.shape[1], out.shape[1]):
        raise ValueError(f"gemm.linear: panels of shape {list(w.shape)} are not those of a "
                         f"[{x.shape[1]}, {out.shape[1]}] matrix, {list(pack_shape(x.shape[1], out.shape[1]))}")
    if out.size == 0:
        return None
    threads = num_threads()
    args = (x, w, in_panels, out, bias, out if residual is None else residual, epilogue)
    if threads == 1 or x.shape[0] * x.shape[1] * out.shape[1] < PARALLEL_FROM:  # M·K·N (w's shape is panels')
        return kernel(parallel=False)(*args, 1)
    with kernels.PARALLEL_REGION:
        return kernel()(*args, threads)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y = x Wᵀ + b, as nn.dense: x [..., in], weight [out, in], bias [out] -> [..., out]. A float32 weight
    multiplies on this GEMM, x taken in float32; other dtypes (float64, the verification dtype) go to nn.dense.

    For the fast path's own small products (the pooler, the task heads, a Dense module): a BLAS call there
    would leave OpenBLAS's threads spinning for a while after it, holding a core the next forward's threads
    need (see docs/fast.md, "Threads"). W is read as Wᵀ [in, out]: in place when W is column-major (the
    pooler's), a copy of out × in floats otherwise (a head's few rows)."""
    if weight.dtype != np.float32:
        return nn.dense(x, weight, bias)
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float32)  # [..., in] -> [T, in]
    out = np.empty((rows.shape[0], weight.shape[0]), np.float32)  # [T, out]
    linear(rows, np.ascontiguousarray(weight.T), out, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])  # [T, out] -> [..., out]
