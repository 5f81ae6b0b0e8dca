"""Int8 linear layers for the fast path: the reference's arithmetic (minibert/nn/quantize.py) in Numba kernels.

Per call: quantize_rows turns the activations into uint8 codes (one range per token), a GEMM accumulates
Q_x Q_wᵀ in int32, and dequantize_rows applies the scales. The int32 accumulators equal the reference's bit
for bit (integer arithmetic is exact, and the codes come from the same float operations in the same
order); tests/test_int8.py checks it for every kernel.

The GEMM kernels, chosen at run time from the CPU (simd.host()):

    vnni512   vpdpbusd on 16 int32 lanes (AVX512-VNNI): per lane, 4 u8 × s8 products summed into int32
    vnni256   vpdpbusd on 8 lanes (AVX-VNNI, or AVX512-VNNI with AVX512VL)
    avx2      codes stored as int16 (codes_dtype), weights widened to int16, then vpmaddwd: per lane, 2 int16 ×
              int16 products into int32
    portable  plain loops (any CPU; what NUMBA_CPU_NAME=generic runs)

Where the compile target lacks a kernel's instruction, the kernel computes the same integer sums in plain
vector IR instead (dot_bytes, pair_sums): never chosen there, but forced by the tests, so that each kernel's
tiling and packing are checked on every CPU.

None can saturate: vpdpbusd adds its four products in int32, and vpmaddwd's pair sums stay below 2 · 255 · 128.
(vpmaddubsw, u8 × s8 into saturating int16 pair sums, would clip 2 · 255 · 127 and is not used.) The weight
is packed once into panels of NR columns, G consecutive k of a column side by side (the G bytes one lane
multiplies), K padded with zero weights to a multiple of G:

    panels [P, K/G, NR·G] int8, P = ⌈N / NR⌉,   panels[p, g, c·G + r] = Q_w[p·NR + c, g·G + r]   (0 past N, K)

The micro-kernel holds an MR × NR tile of int32 accumulators in registers over the whole K loop; per group
of G k it loads NR·G weight bytes (V vectors) and, per row, broadcasts that row's G activation codes.
"""

from __future__ import annotations

import itertools
import types

import numba
import numpy as np
from numba import prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from ..nn.quantize import ACTIVATION_LEVELS
from . import aligned, gemm, simd
from .kernels import PARALLEL_REGION, kernel, run
from .tasks import claim, finish

ROWS = 4  # tokens per step of int_matmul: each weight row read from cache serves four tokens
MC = 64  # rows per task of the packed GEMM
# kernel name -> (int32 lanes W, bytes per lane G, rows per tile MR, vectors per tile V)
KERNELS = {"vnni512": (16, 4, 8, 2), "vnni256": (8, 4, 6, 2), "avx2": (8, 2, 6, 2)}
I8, I16 = simd.ir.IntType(8), simd.ir.IntType(16)
LANES = simd.host().width  # float32 lanes of the CPU's vectors, for the quantization
KIND, MR, NR = 0, 8, 32  # each compiled copy of _packed_matmul gets its kernel's own (see packed_matmul)


@kernel()
def quantize_rows(x, levels, q, scale, zero):
    """nn.quantize.quantize_rows into q [T, ≥K] uint8 or int16 (columns past K untouched), scale [T] (x's dtype),
    zero [T] int32; x [T, K] float, levels = 255 in x's dtype (so that every operation stays in x's precision,
    as NumPy's do)."""
    for t in prange(x.shape[0]):
        scale[t], zero[t] = quantize_row(x[t], levels, q[t])


@numba.njit(cache=True, error_model="numpy")
def quantize_row(row, levels, q):
    """One token of quantize_rows: q [≥K] codes of row [K], uint8 or int16 (q past K untouched); returns (s_x, z).
    A vector at a time (_vector_range, _vector_codes), the last K mod its elements one by one. Never
    inlined, so that it keeps its exact float semantics when called from fastmath code (which may replace
    row[k] / s by row[k] · (1 / s) and round differently)."""
    nought = levels - levels
    whole = row.size - row.size % (LANES if row.itemsize == 4 else max(2, LANES // 2))
    lo, hi = _vector_range(LANES, row, whole)
    for k in range(whole, row.size):
        lo, hi = min(lo, row[k]), max(hi, row[k])
    s = (hi - lo) / levels
    if s == nought:
        s = levels / levels
    z = np.rint(-lo / s)
    _vector_codes(LANES, row, whole, s, z, q)
    for k in range(whole, row.size):
        q[k] = np.uint8(min(max(np.rint(row[k] / s) + z, nought), levels))  # the reference's clip, same order
    return s, np.int32(z)


def _vector_type(lanes, element):
    """(n, <n x float>) for float32 rows, (n / 2, <n / 2 x double>) for float64 ones (the same register width,
    at least 2 lanes), n = lanes."""
    if element == simd.F32:
        return lanes.literal_value, simd.vector(lanes.literal_value)
    n = max(2, lanes.literal_value // 2)
    return n, simd.vector(n, simd.ir.DoubleType())


@intrinsic
def _vector_range(typingctx, lanes, row, count):
    """(min(row[:count], 0), max(row[:count], 0)), exact; count a multiple of the vector's elements: running
    minima and maxima lane by lane, then across the lanes."""
    if not isinstance(lanes, nbtypes.IntegerLiteral):
        return None

    def codegen(context, builder, sig, args):
        _, row_array, count_ = args
        n, kind = _vector_type(lanes, context.get_value_type(sig.args[1].dtype))
        data = context.make_array(sig.args[1])(context, builder, row_array).data
        zero = simd.ir.Constant(kind, [0.0] * n)

        def body(i, values):
            x = simd.load(builder, simd.element_pointer(builder, data, builder.mul(i, cgutils.intp_t(n))), n)
            lo, hi = values
            return [builder.select(builder.fcmp_ordered("<", x, lo), x, lo),
                    builder.select(builder.fcmp_ordered(">", x, hi), x, hi)]

        lo, hi = simd.counted_loop(builder, builder.sdiv(count_, cgutils.intp_t(n)), body, [zero, zero])
        lo_s, hi_s = builder.extract_element(lo, simd.I32(0)), builder.extract_element(hi, simd.I32(0))
        for j in range(1, n):
            a, b = builder.extract_element(lo, simd.I32(j)), builder.extract_element(hi, simd.I32(j))
            lo_s = builder.select(builder.fcmp_ordered("<", a, lo_s), a, lo_s)
            hi_s = builder.select(builder.fcmp_ordered(">", b, hi_s), b, hi_s)
        return context.make_tuple(builder, sig.return_type, [lo_s, hi_s])

    return nbtypes.UniTuple(row.dtype, 2)(lanes, row, count), codegen


@intrinsic
def _vector_codes(typingctx, lanes, row, count, scale, zero, q):
    """q[k] = clip(rint(row[k] / scale) + zero, 0, 255) as q's integers for k < count (a multiple of the vector's
    elements): the reference's float operations in the same order, a vector at a time."""
    if not isinstance(lanes, nbtypes.IntegerLiteral):
        return None

    def codegen(context, builder, sig, args):
        _, row_array, count_, s, z, q_array = args
        n, kind = _vector_type(lanes, context.get_value_type(sig.args[1].dtype))
        name = f"llvm.rint.v{n}{'f32' if kind.element == simd.F32 else 'f64'}"
        data = context.make_array(sig.args[1])(context, builder, row_array).data
        codes = context.make_array(sig.args[5])(context, builder, q_array).data
        s_v, z_v = simd.broadcast(builder, s, n), simd.broadcast(builder, z, n)
        nought = simd.ir.Constant(kind, [0.0] * n)
        top = simd.ir.Constant(kind, [float(ACTIVATION_LEVELS)] * n)

        def body(i, values):
            at = builder.mul(i, cgutils.intp_t(n))
            x = simd.load(builder, simd.element_pointer(builder, data, at), n)
            c = builder.fadd(simd.call(builder, name, kind, [builder.fdiv(x, s_v)]), z_v)
            store_codes(builder, c, nought, top, simd.element_pointer(builder, codes, at))
            return []

        simd.counted_loop(builder, builder.sdiv(count_, cgutils.intp_t(n)), body, [])
        return context.get_dummy_value()

    return nbtypes.void(lanes, row, count, scale, zero, q), codegen


def store_codes(builder, c, low, high, pointer) -> None:
    """IR: the float vector c clipped to [low, high] (vectors; max first, then min, as np.clip), converted to
    integers and stored at pointer (an i8* or i16*) as its integers."""
    c = builder.select(builder.fcmp_ordered("<", c, low), low, c)
    c = builder.select(builder.fcmp_ordered(">", c, high), high, c)
    n = c.type.count
    integers = builder.fptosi(c, simd.vector(n, simd.I32))
    simd.store(builder, builder.trunc(integers, simd.vector(n, pointer.type.pointee)), pointer)


@numba.njit(cache=True, inline="always")
def _dot(a, w):
    """Σ_k a[k] · w[k] in int32; a uint8 [K], w int8 [K]."""
    total = np.int32(0)
    for k in range(a.size):
        total += np.int32(a[k]) * np.int32(w[k])
    return total


@kernel()
def int_matmul(q_x, q_w, acc):
    """acc [T, N] int32 = q_x [T, K] uint8 @ q_w [N, K] int8 ᵀ, exact (the portable kernel: plain loops,
    vectorised by LLVM for the CPU it compiles for)."""
    T, N = acc.shape
    for block in prange((T + ROWS - 1) // ROWS):
        first = block * ROWS
        last = min(first + ROWS, T)
        for j in range(N):
            w = q_w[j]
            for t in range(first, last):
                acc[t, j] = _dot(q_x[t], w)


@kernel()
def dequantize_rows(acc, x_scale, zero, weight_scale, weight_sum, out):
    """nn.quantize.dequantize into out [T, N]: s_x[t] · s_w[j] · (acc[t, j] - z[t] · colsum[j]), the same
    float operations in the same order."""
    for t in prange(out.shape[0]):
        for j in range(out.shape[1]):
            out[t, j] = acc[t, j] - zero[t] * weight_sum[j]  # stored: int32 -> out's float type
            out[t, j] = out[t, j] * x_scale[t] * weight_scale[j]


def codes_dtype(name: str) -> type:
    """The activation codes' dtype kernel `name` (or "portable") reads: int16 for avx2, whose vpmaddwd
    multiplies int16 pairs (codes stored widened are widened once, not once per tile that reads them), uint8
    for the others."""
    return np.int16 if name == "avx2" else np.uint8


def _codes_fit(rows, kind, a) -> bool:
    """Typing check of the kernels' intrinsics: rows and kind compile-time constants, a of kind's codes_dtype."""
    if not all(isinstance(literal, nbtypes.IntegerLiteral) for literal in (rows, kind)):
        return False
    return a.dtype == numba.from_dtype(np.dtype(codes_dtype(list(KERNELS)[kind.literal_value])))


def kernels_present(target: simd.Target | None = None) -> list[str]:
    """The GEMM kernels the CPU can run, fastest first; "portable" always."""
    target = target or simd.host()
    present = ["vnni512"] if target.vnni and target.width == 16 else []
    present += ["vnni256"] if target.vnni else []
    present += ["avx2"] if target.avx2 else []
    return [*present, "portable"]


@intrinsic
def micro_kernel(typingctx, rows, kind, a, a_start, lda, b, b_start, groups, c, c_start, ldc):
    """c[c_start + i·ldc + j] = Σ_g Σ_r a[a_start + i·lda + g·G + r] · b[b_start + g·NR·G + j·G + r] for
    i < rows, j < NR: an MR × NR tile of int32 sums. rows, kind (an index into KERNELS): compile-time
    constants; a the codes (codes_dtype), b int8, c int32 arrays, addressed in elements from their first one."""
    if not _codes_fit(rows, kind, a):
        return None
    MR, (W, _, _, V) = rows.literal_value, KERNELS[list(KERNELS)[kind.literal_value]]

    def codegen(context, builder, sig, args):
        _, _, a_array, a0, lda_, b_array, b0, groups_, c_array, c0, ldc_ = args
        tile = _tile_sums(context, builder, sig, args, kind.literal_value, MR)
        c_data = context.make_array(sig.args[8])(context, builder, c_array).data  # i32*
        i64 = cgutils.intp_t
        for i in range(MR):
            row = builder.add(c0, builder.mul(ldc_, i64(i)))
            for v in range(V):
                simd.store(builder, tile[i][v], simd.element_pointer(builder, c_data, builder.add(row, i64(v * W))))
        return context.get_dummy_value()

    return nbtypes.void(rows, kind, a, a_start, lda, b, b_start, groups, c, c_start, ldc), codegen


@intrinsic
def dequantize_kernel(typingctx, rows, kind, a, a_start, lda, b, b_start, groups, c, c_start, ldc, epilogue,
                      zero, x_scale, t0, weight_sum, weight_scale, bias, j0):
    """micro_kernel's tile, dequantized in registers and stored as float32 (nn.quantize.dequantize, then the
    epilogue), for rows t0 + i and columns j0 + j:

        y = s_x[t] · s_w[j] · (acc[i, j] - z[t] · colsum[j])      the same float operations in the same order
        c[c_start + i·ldc + j] = y (NONE), y + b[j] (BIAS), GELU(y + b[j]) (BIAS_GELU, as gemm's epilogue)

    zero int32 [T], x_scale float32 [T], weight_sum int32 [N], weight_scale and bias float32 [N], c float32;
    every column j0 + j < j0 + NR must be < N."""
    if not _codes_fit(rows, kind, a):
        return None
    MR, (W, _, _, V) = rows.literal_value, KERNELS[list(KERNELS)[kind.literal_value]]
    signature = nbtypes.void(rows, kind, a, a_start, lda, b, b_start, groups, c, c_start, ldc, epilogue, zero,
                             x_scale, t0, weight_sum, weight_scale, bias, j0)

    def codegen(context, builder, sig, args):
        c_array, c0, ldc_, mode, zero_array, scale_array, t0_, sum_array, w_scale_array, bias_array, j0_ = args[8:]
        i64 = cgutils.intp_t
        tile = _tile_sums(context, builder, sig, args[:11], kind.literal_value, MR)
        c_data, zeros, x_scales, sums, w_scales, biases = (
            context.make_array(sig.args[n])(context, builder, array).data
            for n, array in ((8, c_array), (12, zero_array), (13, scale_array), (15, sum_array),
                             (16, w_scale_array), (17, bias_array)))
        floats = simd.vector(W)
        def row_value(array, i):  # array[t0 + i] in every lane
            return simd.broadcast(builder, builder.load(simd.element_pointer(builder, array, builder.add(t0_, i64(i)))),
                                  W)
        row_zero = [row_value(zeros, i) for i in range(MR)]
        row_scale = [row_value(x_scales, i) for i in range(MR)]
        kinds = [builder.append_basic_block(f"dequantize_kernel.epilogue{k}") for k in range(3)]
        end = builder.append_basic_block("dequantize_kernel.end")
        switch = builder.switch(mode, kinds[gemm.NONE])
        for k in (gemm.BIAS, gemm.BIAS_GELU):
            switch.add_case(mode.type(k), kinds[k])
        for k, block in enumerate(kinds):
            builder.position_at_end(block)
            for v in range(V):
                column = builder.add(j0_, i64(v * W))
                weight_sum_v = simd.load(builder, simd.element_pointer(builder, sums, column), W)
                weight_scale_v = simd.load(builder, simd.element_pointer(builder, w_scales, column), W)
                bias_v = simd.load(builder, simd.element_pointer(builder, biases, column), W)
                for i in range(MR):
                    centred = builder.sub(tile[i][v], builder.mul(row_zero[i], weight_sum_v))  # int32, exact
                    y = builder.fmul(builder.fmul(builder.sitofp(centred, floats), row_scale[i]), weight_scale_v)
                    if k != gemm.NONE:
                        y = builder.fadd(y, bias_v)
                    if k == gemm.BIAS_GELU:
                        y = gemm.gelu_vectors(builder, [y], gemm.FUSED)[0]
                    row = builder.add(c0, builder.mul(ldc_, i64(i)))
                    simd.store(builder, y, simd.element_pointer(builder, c_data, builder.add(row, i64(v * W))))
            builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()

    return signature, codegen


def _tile_sums(context, builder, sig, args, kind: int, MR: int) -> list[list]:
    """The IR of micro_kernel's loop: returns the MR × V int32 vectors of the tile's sums (args: micro_kernel's
    first 11)."""
    W, G, _, V = KERNELS[list(KERNELS)[kind]]
    NR = V * W
    _, _, a_array, a0, lda_, b_array, b0, groups_ = args[:8]
    i64 = cgutils.intp_t
    a_data = context.make_array(sig.args[2])(context, builder, a_array).data  # i8*, or i16* (codes_dtype)
    b_data = context.make_array(sig.args[5])(context, builder, b_array).data  # i8*
    a_rows = [simd.element_pointer(builder, a_data, builder.add(a0, builder.mul(lda_, i64(i)))) for i in range(MR)]
    b_start_ = simd.element_pointer(builder, b_data, b0)
    lanes = simd.vector(W, simd.I32)

    def body(g, flat):  # one group of G k per iteration; the tile lives in phi nodes
        acc = [flat[i * V:(i + 1) * V] for i in range(MR)]
        b_group = simd.element_pointer(builder, b_start_, builder.mul(g, i64(NR * G)))
        b_vectors = [simd.load(builder, simd.element_pointer(builder, b_group, i64(v * W * G)), W * G)
                     for v in range(V)]
        if G == 4:  # W lanes of 4 signed bytes
            b_vectors = [builder.bitcast(x, lanes) for x in b_vectors]
        else:  # W lanes of 2 signed bytes, sign-extended to 2 int16
            b_vectors = [builder.sext(x, simd.vector(2 * W, I16)) for x in b_vectors]
        new = []
        for i in range(MR):
            at = simd.element_pointer(builder, a_rows[i], builder.mul(g, i64(G)))
            if G == 4:  # the row's 4 unsigned bytes as one int32, in every lane
                a_ig = builder.load(builder.bitcast(at, simd.I32.as_pointer()), align=1)
                a_lanes = simd.broadcast(builder, a_ig, W)
                new += [dot_bytes(builder, acc[i][v], a_lanes, b_vectors[v]) for v in range(V)]
            else:  # the row's 2 codes, already int16 (codes_dtype), as one int32 in every lane
                pair = builder.load(builder.bitcast(at, simd.I32.as_pointer()), align=2)
                a_lanes = builder.bitcast(simd.broadcast(builder, pair, W), simd.vector(2 * W, I16))
                new += [builder.add(acc[i][v], pair_sums(builder, a_lanes, b_vectors[v])) for v in range(V)]
        return new

    flat = simd.counted_loop(builder, groups_, body, [simd.ir.Constant(lanes, [0] * W)] * (MR * V))
    return [flat[i * V:(i + 1) * V] for i in range(MR)]


def dot_bytes(builder, acc, a, b):
    """acc + vpdpbusd(a, b) on W int32 lanes: per lane, its 4 bytes of a (unsigned) times its 4 bytes of b
    (signed), the 4 products summed into the lane's int32. The instruction where the compile target has it at
    this width (AVX512-VNNI for 16 lanes; AVX-VNNI or AVX512-VNNI + VL for 8); elsewhere the same integer
    sums in plain vector IR, which LLVM lowers on any CPU (slowly), so that the kernel runs, and is tested,
    everywhere."""
    W = acc.type.count
    target = simd.host()
    if target.vnni and W <= target.width:
        return simd.call(builder, f"llvm.x86.avx512.vpdpbusd.{32 * W}", acc.type, [acc, a, b])
    wide = simd.vector(4 * W, simd.I32)
    products = builder.mul(builder.zext(builder.bitcast(a, simd.vector(4 * W, I8)), wide),
                           builder.sext(builder.bitcast(b, simd.vector(4 * W, I8)), wide))
    for r in range(4):  # acc + the lanes' r-th products
        acc = builder.add(acc, _every_nth(builder, products, r, 4))
    return acc


def pair_sums(builder, a, b):
    """vpmaddwd(a, b) on <2W x i16>: per int32 lane, a[2l] · b[2l] + a[2l + 1] · b[2l + 1] (int16 products
    summed in int32). The instruction where the target has AVX2; elsewhere the same sums in plain vector IR."""
    W = a.type.count // 2
    if simd.host().avx2 and W == 8:
        return simd.call(builder, "llvm.x86.avx2.pmadd.wd", simd.vector(W, simd.I32), [a, b])
    wide = simd.vector(2 * W, simd.I32)
    products = builder.mul(builder.sext(a, wide), builder.sext(b, wide))
    return builder.add(_every_nth(builder, products, 0, 2), _every_nth(builder, products, 1, 2))


def _every_nth(builder, x, first: int, step: int):
    """<n/step x T> = x[first::step] for a vector x of n lanes."""
    count = x.type.count // step
    picks = simd.ir.Constant(simd.vector(count, simd.I32), [first + step * lane for lane in range(count)])
    return builder.shuffle_vector(x, simd.ir.Constant(x.type, simd.ir.Undefined), picks)


def _packed_matmul(q_x, panels, acc):
    """acc [T, P·NR] int32 = q_x [T, K/G·G] codes (rows contiguous, K padded with any codes) times the
    panels [P, K/G, NR·G]; KIND, MR and NR are the compiled copy's constants (see packed_matmul)."""
    T = q_x.shape[0]
    P, groups = panels.shape[0], panels.shape[1]
    lda, ldc = q_x.strides[0] // q_x.itemsize, acc.strides[0] // 4
    blocks = (T + MC - 1) // MC
    for task in prange(blocks * P):  # rows of block task // P, columns of panel task % P
        m0 = (task // P) * MC
        m1 = min(m0 + MC, T)
        p = task % P
        b0 = p * panels.shape[1] * panels.shape[2]
        i = m0
        while i + MR <= m1:
            micro_kernel(MR, KIND, q_x, i * lda, lda, panels, b0, groups, acc, i * ldc + p * NR, ldc)
            i += MR
        if m1 - i >= 4:
            micro_kernel(4, KIND, q_x, i * lda, lda, panels, b0, groups, acc, i * ldc + p * NR, ldc)
            i += 4
        if m1 - i >= 2:
            micro_kernel(2, KIND, q_x, i * lda, lda, panels, b0, groups, acc, i * ldc + p * NR, ldc)
            i += 2
        if m1 - i >= 1:
            micro_kernel(1, KIND, q_x, i * lda, lda, panels, b0, groups, acc, i * ldc + p * NR, ldc)


@numba.njit(cache=True, inline="always", error_model="numpy")
def gemm_items(q, panels, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, threads, counters, phase,
               sums, row, kind, mr):
    """Claim (fast/tasks.py) and compute items of out [T, N] = epilogue(dequantize(q Q_wᵀ) + bias): q [T, K']
    codes (codes_dtype; K' = the panels' padded K, rows contiguous) with x_scale [T], zero [T]; the weight as
    panels, weight_sum, weight_scale (Int8Matrix's). Items as gemm.gemm_items': blocks of MC rows, cut into
    groups of panels when rows are few. sums int32 [MR, NR] and row float32 [NR]: the thread's buffers for
    a last panel narrower than NR. kind, mr: compile-time constants. Returns the item count."""
    T, N = out.shape
    P = panels.shape[0]
    blocks = (T + MC - 1) // MC
    groups, per = gemm.panel_groups(blocks, P, threads)
    items = blocks * groups
    item = claim(counters, phase)
    while item < items:
        b, g = item // groups, item % groups
        m0, m1 = b * MC, min(T, (b + 1) * MC)
        for p in range(g * per, min(P, (g + 1) * per)):
            panel_rows(q, m0, m1, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row,
                       kind, mr)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, inline="always", error_model="numpy")
def panel_rows(q, m0, m1, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row, kind,
               mr):
    """Rows m0 : m1 of panel p of out = epilogue(dequantize(q Q_wᵀ) + bias) (gemm_items' arguments), in tiles
    of mr rows, then 4, 2, 1 (_tile)."""
    i = m0
    while i + mr <= m1:
        _tile(mr, kind, q, i, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row)
        i += mr
    if m1 - i >= 4:
        _tile(4, kind, q, i, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row)
        i += 4
    if m1 - i >= 2:
        _tile(2, kind, q, i, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row)
        i += 2
    if m1 - i >= 1:
        _tile(1, kind, q, i, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _tile(rows, kind, q, i, panels, p, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, sums, row):
    """Rows i : i + rows of panel p (gemm_items' arguments): dequantized in the kernel's registers, or, for a
    last panel narrower than NR, summed into sums and finished by _narrow_epilogue."""
    NR = sums.shape[1]
    j0 = p * NR
    lda, ldo, step = q.strides[0] // q.itemsize, out.strides[0] // 4, panels.shape[1] * panels.shape[2]
    if j0 + NR <= out.shape[1]:
        dequantize_kernel(rows, kind, q, i * lda, lda, panels, p * step, panels.shape[1], out, i * ldo + j0, ldo,
                          epilogue, zero, x_scale, i, weight_sum, weight_scale, bias, j0)
    else:
        micro_kernel(rows, kind, q, i * lda, lda, panels, p * step, panels.shape[1], sums, 0, NR)
        _narrow_epilogue(sums, np.int64(rows), i, j0, weight_sum, weight_scale, x_scale, zero, bias, out[:, :],
                         epilogue, row)  # typed values, one layout: one build for every tile and caller


@numba.njit(cache=True, error_model="numpy")
def _narrow_epilogue(sums, rows, t0, j0, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, row):
    """dequantize_kernel's epilogue in plain loops, for columns j0 : N of rows t0 : t0 + rows from their sums
    [rows, NR] (the float operations of nn.quantize.dequantize; not inlined, so never under fastmath)."""
    n = out.shape[1] - j0
    for r in range(rows):
        t = t0 + r
        for j in range(n):
            row[j] = np.float32(sums[r, j] - zero[t] * weight_sum[j0 + j]) * x_scale[t] * weight_scale[j0 + j]
        gemm.epilogue_row(row[:n], out[t, j0:], bias[j0:], out[t, j0:], epilogue)


_BUILDS: dict = {}


def packed_matmul(name: str, parallel: bool):
    """_packed_matmul compiled for kernel `name` (a copy under its own name, so that Numba's disk cache keeps
    each build apart, with KIND, MR and NR as its constants)."""
    if (name, parallel) not in _BUILDS:
        function = f"_packed_matmul_{name}{'' if parallel else '_serial'}"
        W, _, MR, V = KERNELS[name]
        scope = dict(_packed_matmul.__globals__, KIND=list(KERNELS).index(name), MR=MR, NR=V * W)
        copy = types.FunctionType(_packed_matmul.__code__, scope, function)
        copy.__qualname__ = function
        _BUILDS[name, parallel] = numba.njit(cache=True, parallel=parallel, error_model="numpy")(copy)
    return _BUILDS[name, parallel]


def pack(weight: np.ndarray, name: str) -> np.ndarray:
    """Q_w int8 [N, K] -> panels [⌈N/NR⌉, ⌈K/G⌉, NR·G] for kernel `name` (see the module docstring)."""
    W, G, _, V = KERNELS[name]
    NR = V * W
    N, K = weight.shape
    P, groups = -(-N // NR), -(-K // G)
    padded = np.zeros((P * NR, groups * G), np.int8)
    padded[:N, :K] = weight
    panels = aligned.zeros((P, groups, NR, G), np.int8)  # its rows on cache lines (fast/aligned.py)
    panels[...] = padded.reshape(P, NR, groups, G).transpose(0, 2, 1, 3)  # [P, NR, K/G, G] -> [P, K/G, NR, G]
    return panels.reshape(P, groups, NR * G)


def stack(matrices: list[Int8Matrix]) -> tuple[np.ndarray, ...]:
    """The parts of `matrices` (each packed for the same kernel) in one array each, as int8_layers.encode takes
    them, each matrix then holding views of those arrays (one copy of its panels): panels int8, matrix m's
    from byte panel_bounds[m] (each on a cache line, so padding may follow it); weight_sums int32 and
    weight_scales float32, matrix m's at column_bounds[m] : column_bounds[m + 1]. Returns (panels,
    panel_bounds, weight_sums, weight_scales, column_bounds)."""
    line = aligned.CACHE_LINE
    panel_bounds = np.zeros(len(matrices) + 1, np.int64)
    panel_bounds[1:] = np.cumsum([-(-m.panels.nbytes // line) * line for m in matrices])
    column_bounds = np.zeros(len(matrices) + 1, np.int64)
    column_bounds[1:] = np.cumsum([len(m.weight_sum) for m in matrices])
    panels = aligned.zeros((panel_bounds[-1],), np.int8)
    weight_sums, weight_scales = np.empty(column_bounds[-1], np.int32), np.empty(column_bounds[-1], np.float32)
    for m, p, (c0, c1) in zip(matrices, panel_bounds, itertools.pairwise(column_bounds)):
        view = panels[p:p + m.panels.size].reshape(m.panels.shape)
        view[...] = m.panels
        weight_sums[c0:c1], weight_scales[c0:c1] = m.weight_sum, m.scale
        m.panels, m.weight_sum, m.scale = view, weight_sums[c0:c1], weight_scales[c0:c1]
    return panels, panel_bounds, weight_sums, weight_scales, column_bounds


class Int8Matrix:
    """A quantized weight as the kernels read it: Q_w int8 [N, K] (rows = output channels), s_w float32 [N],
    and colsum [N] int32 = Σ_k Q_w[j, k], the zero points' correction, worked out once."""

    def __init__(self, weight: np.ndarray, scale: np.ndarray, kernel: str | None = None) -> None:
        """kernel: one of KERNELS or "portable" (default: kernels_present()[0], the fastest this CPU has). A
        kernel whose instruction the CPU lacks gives the same integers, slowly (dot_bytes, pair_sums)."""
        if kernel is not None and kernel not in (*KERNELS, "portable"):
            raise ValueError(f"int8 kernel {kernel!r} is not one of {', '.join((*KERNELS, 'portable'))}")
        self.weight, self.scale, self.kernel = weight, scale, kernel or kernels_present()[0]
        self.refresh()

    def refresh(self) -> None:
        """Recompute what is derived from the weight (after it was changed in place)."""
        self.weight_sum = self.weight.sum(axis=1, dtype=np.int32)
        self.panels = None if self.kernel == "portable" else pack(self.weight, self.kernel)

    @property
    def shape(self) -> tuple[int, int]:
        """[K, N], as the float path's [in, out] matrices."""
        return self.weight.shape[1], self.weight.shape[0]

    def accumulate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [T, K] float -> (acc int32 [T, N], s_x [T], z int32 [T]): the integer product and the activations'
        quantization parameters."""
        T, K = x.shape
        N = self.weight.shape[0]
        padded_k = K if self.panels is None else self.panels.shape[1] * KERNELS[self.kernel][1]
        q = np.zeros((T, padded_k), codes_dtype(self.kernel))  # codes past K meet zero weights
        x_scale, zero = np.empty(T, x.dtype), np.empty(T, np.int32)
        run(quantize_rows, x.size, x, x.dtype.type(ACTIVATION_LEVELS), q, x_scale, zero)
        if self.panels is None:
            acc = np.empty((T, N), np.int32)
            run(int_matmul, T * K * N // 64, q, self.weight, acc)
            return acc, x_scale, zero
        acc = np.empty((T, self.panels.shape[0] * self.panels.shape[2] // KERNELS[self.kernel][1]), np.int32)
        parallel = T * K * N >= 64 * (1 << 18)  # as kernels.run: below this, waking the thread pool costs more
        if parallel:
            with PARALLEL_REGION:
                packed_matmul(self.kernel, True)(q, self.panels, acc)
        else:
            packed_matmul(self.kernel, False)(q, self.panels, acc)
        return acc[:, :N], x_scale, zero

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:
        """out [T, N] = x [T, K] Wᵀ, the weight's int8 product (no bias: the caller's kernels add it)."""
        acc, x_scale, zero = self.accumulate(x)
        run(dequantize_rows, out.size, acc, x_scale, zero, self.scale, self.weight_sum, out)
