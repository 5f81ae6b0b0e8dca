"""An int8 model's attention on the int8 GEMM's kernels: nn.quantize.attention_int8, one sequence and head at a time.

Both products take the form of an int8 linear layer, with operands quantized at run time and packed as
fast/int8.py's panels (pack()'s layout) for each sequence and head:

    Q Kᵀ   the query rows are the activations (quantize_row: uint8 codes, a scale and zero point each);
           the key rows are the weight's output channels (int8, a scale each)    [L, d] x [d, L'] -> scores [L, L']
    e = exp((s - max) / √d), row by row (fast/softmax.py), in [0, 1]: codes round(255 · e), scale 1/255
    P V    e's codes are the activations, with the scale 1/255 divided by the row's Σ e (the softmax's
           division, on one number a row); V's columns are the weight's output channels, over the sequence's
           tokens                                                        [L, L"] x [L", d'] -> context [L, d']

L' = L rounded up to whole panels (NR columns; the scores past L are left out by the softmax), L" = L
rounded up to groups of G (the codes past L meet zero weights), d' = d rounded up to whole panels. Every
tile is dequantized in registers (int8.dequantize_kernel), so the float operations are the reference's, in
its order; what differs from nn.quantize.attention_int8 is the exponential (fast/softmax.py's) and the
order of Σ e's additions.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic

from ..nn.quantize import ACTIVATION_LEVELS, WEIGHT_MAX
from . import int8, kernels, simd
from .gemm import NONE, WIDTH
from .softmax import softmax_exp
from .tasks import claim, finish

LEVELS = np.float32(ACTIVATION_LEVELS)
E_SCALE = np.float32(1 / ACTIVATION_LEVELS)  # e's scale (nn.quantize.attention_int8)
TOP = np.float32(WEIGHT_MAX)
LANES = int8.LANES  # float32 lanes of the CPU's vectors


def buffers(threads: int, hidden: int, heads: int, longest: int, kernel: str) -> dict[str, tuple]:
    """name -> (shape, dtype) of attention_items' per-thread buffers, for sequences up to `longest` tokens and
    the int8 kernel `kernel` (one of int8.KERNELS)."""
    W, g, _, V = int8.KERNELS[kernel]
    nr, d = V * W, hidden // heads
    d_g, d_p = -(-d // g) * g, -(-d // nr) * nr
    L_g, L_p = -(-longest // g) * g, -(-longest // nr) * nr
    return {"codes": ((threads, longest * max(d_g, L_g)), int8.codes_dtype(kernel)),
            "key_panels": ((threads, L_p * d_g), np.int8), "value_panels": ((threads, d_p * L_g), np.int8),
            "channel_sums": ((threads, max(L_p, d_p)), np.int32),
            "channel_scales": ((threads, max(L_p, d_p)), np.float32),
            "token_scales": ((threads, longest), np.float32), "token_zeros": ((threads, longest), np.int32),
            "scores": ((threads, longest * L_p), np.float32), "heads": ((threads, longest * d_p), np.float32),
            "exp_sums": ((threads, longest), np.float32)}


@numba.njit(cache=True, inline="always", error_model="numpy")
def attention_items(qkv, starts, lengths, num_heads, context, counters, phase, codes, key_panels, value_panels,
                    channel_sums, channel_scales, token_scales, token_zeros, scores, heads, exp_sums, sums, row, kind,
                    mr, nr, g):
    """Claim (fast/tasks.py) and compute items of the attention, one sequence and head each: context [R, H]
    from qkv [T, 3H] float32, sequence s at rows starts[s] : + lengths[s]. Buffers: buffers(), this thread's
    rows; sums, row: int8.gemm_items' (int8_layers.buffers). kind, mr, nr, g: the int8 kernel's (int8.KERNELS),
    compile-time constants. Returns the item count, for tasks.wait."""
    items = starts.shape[0] * num_heads
    item = claim(counters, phase)
    while item < items:
        s, h = item // num_heads, item % num_heads
        attend(qkv, starts[s], lengths[s], h, num_heads, context, codes, key_panels, value_panels, channel_sums,
               channel_scales, token_scales, token_zeros, scores, heads, exp_sums, sums, row, kind, mr, nr, g)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, inline="always", error_model="numpy")
def attend(qkv, start, L, h, num_heads, context, codes, key_panels, value_panels, channel_sums, channel_scales,
           token_scales, token_zeros, scores, heads, exp_sums, sums, row, kind, mr, nr, g):
    """context rows start : start + L, columns of head h = softmax(q kᵀ / √d) v in int8 (see the module
    docstring); the arguments as attention_items'. Leaves e in scores [L, L'] and Σ e in exp_sums."""
    H = context.shape[1]
    d = H // num_heads
    q0, k0, v0 = h * d, H + h * d, 2 * H + h * d
    d_g, d_p, L_g, L_p = -(-d // g) * g, -(-d // nr) * nr, -(-L // g) * g, -(-L // nr) * nr
    q = codes[:L * d_g].reshape((L, d_g))  # Q's codes [L, d"], those past d meet zero key codes
    for i in range(L):
        token_scales[i], token_zeros[i] = int8.quantize_row(qkv[start + i, q0:q0 + d], LEVELS, q[i])
    keys = key_panels[:L_p * d_g].reshape((L_p // nr, d_g // g, nr * g))  # kᵀ's codes as panels
    _key_codes(qkv[start:start + L, k0:k0 + d], keys, channel_sums, channel_scales, nr, g, value_panels[:d_g], heads)
    e = scores[:L * L_p].reshape((L, L_p))
    _product(q, keys, token_scales, token_zeros, channel_sums, channel_scales, e[:, :], sums, row, kind, mr)  # q kᵀ
    _exps(scores, exp_sums, L, L_p, np.float32(d ** -0.5))  # e = exp((q kᵀ - max) / √d), zero past L
    p = codes[:L * L_g].reshape((L, L_g))  # e's codes [L, L"], those past L meet zero value codes
    for i in range(L):
        _exp_codes(e[i, :L], p[i])
        token_scales[i], token_zeros[i] = E_SCALE / exp_sums[i], 0  # s_e / Σ_j e_ij: the softmax's division
    values = value_panels[:d_p * L_g].reshape((d_p // nr, L_g // g, nr * g))  # v's columns' codes as panels
    _value_codes(qkv[start:start + L, v0:v0 + d], values, channel_sums, channel_scales, nr, g, key_panels, heads)
    out = context[start:start + L, q0:q0 + d]  # softmax(q kᵀ / √d) v = (e v) / Σ e, the head's columns of context
    if d < d_p:  # through whole panels' columns [L, d'], then the first d
        out = heads[:L * d_p].reshape((L, d_p))[:, :]
    _product(p, values, token_scales, token_zeros, channel_sums, channel_scales, out, sums, row, kind, mr)
    if d < d_p:
        for i in range(L):
            kernels.copy_row(out[i, :d], context[start + i, q0:q0 + d])


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _exps(scores, sums, L, L_p, scale):
    """Rows i < L of scores [L, L'] (flat): e = exp((x - max) · scale), zero past L, and sums[i] = Σ_j e_ij
    (fast/softmax.py). A function of its own, compiled with fastmath: in a function without it, LLVM keeps
    NaN semantics in the vector max and the sums, and the same code ran half as fast."""
    for i in range(L):
        sums[i] = softmax_exp(WIDTH, scores, i * L_p, L, L_p, scale)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _exp_codes(e, codes):
    """codes[j] = rint(255 · e[j]) for e [L] in [0, 1] (as nn.quantize.attention_int8), codes uint8 or int16."""
    for j in range(e.size):
        codes[j] = np.uint8(np.rint(e[j] * LEVELS))


@numba.njit(cache=True, error_model="numpy")
def _product(a, panels, x_scale, zero, weight_sum, weight_scale, out, sums, row, kind, mr):
    """out [M, P·nr] = dequantize(a Q_wᵀ): a [M, K'] codes (int8.codes_dtype) with x_scale, zero [M]; the weight as
    panels [P, K'/G, nr·G] with weight_sum, weight_scale [P·nr] (whatever they hold past the weight's
    channels makes output columns the caller does not read); panel by panel, as int8.gemm_items' (every
    panel whole, so sums and row, its buffers for a narrower one, go unused). One build (out of layout A) for
    the attention's products, where inlined each built the int8 GEMM's tiles again (docs/fast.md)."""
    for p in range(panels.shape[0]):
        int8.panel_rows(a, 0, a.shape[0], panels, p, weight_sum, weight_scale, x_scale, zero, weight_scale, out, NONE,
                        sums, row, kind, mr)


@intrinsic
def _symmetric_codes(typingctx, row, inverses, count, codes):
    """codes[k] = clip(rint(row[k] · inverses[k]), -127, 127) as int8 for k < count (a multiple of LANES), in
    float32 as nn.quantize.quantize_symmetric's; a vector of LANES at a time (as Numba loops, the rounding
    stayed scalar)."""
    def codegen(context, builder, sig, args):
        row_array, inverse_array, count_, code_array = args
        n = LANES
        floats = simd.vector(n)
        data, factors, out = (context.make_array(sig.args[i])(context, builder, array).data
                              for i, array in ((0, row_array), (1, inverse_array), (3, code_array)))
        top = simd.ir.Constant(floats, [float(WEIGHT_MAX)] * n)
        bottom = simd.ir.Constant(floats, [-float(WEIGHT_MAX)] * n)

        def body(i, _):
            at = builder.mul(i, cgutils.intp_t(n))
            x = simd.load(builder, simd.element_pointer(builder, data, at), n)
            y = simd.load(builder, simd.element_pointer(builder, factors, at), n)
            c = simd.call(builder, f"llvm.rint.v{n}f32", floats, [builder.fmul(x, y)])
            int8.store_codes(builder, c, bottom, top, simd.element_pointer(builder, out, at))
            return []

        simd.counted_loop(builder, builder.sdiv(count_, cgutils.intp_t(n)), body, [])
        return context.get_dummy_value()

    return nbtypes.void(row, inverses, count, codes), codegen


@numba.njit(cache=True, inline="always", error_model="numpy")
def _codes(row, inverses, codes):
    """codes[k] = clip(rint(row[k] · inverses[k]), -127, 127) for k < row.size: _symmetric_codes, the last
    row.size mod LANES one by one (the same operations)."""
    whole = row.size - row.size % LANES
    _symmetric_codes(row, inverses, whole, codes)
    for k in range(whole, row.size):
        codes[k] = np.int8(min(max(np.rint(row[k] * inverses[k]), -TOP), TOP))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _scale(top):
    """(s, 1 / s) of a row or column whose largest magnitude is top, as nn.quantize.quantize_symmetric."""
    if top == 0:
        return np.float32(1), np.float32(1)
    return top / TOP, TOP / top


@intrinsic
def _scatter_groups(typingctx, group, codes, count, out, start, stride):
    """out[start + i·stride : + group] = codes[i·group : + group] for i < count, each group of bytes moved as
    one integer. group: a compile-time constant; codes, out: int8 arrays."""
    if not isinstance(group, nbtypes.IntegerLiteral):
        return None
    word = simd.ir.IntType(8 * group.literal_value)

    def codegen(context, builder, sig, args):
        _, code_array, count_, out_array, start_, stride_ = args
        source = context.make_array(sig.args[1])(context, builder, code_array).data
        target = simd.element_pointer(builder, context.make_array(sig.args[3])(context, builder, out_array).data,
                                      start_)

        def body(i, _):
            at = simd.element_pointer(builder, source, builder.mul(i, cgutils.intp_t(group.literal_value)))
            value = builder.load(builder.bitcast(at, word.as_pointer()), align=1)
            to = simd.element_pointer(builder, target, builder.mul(i, stride_))
            builder.store(value, builder.bitcast(to, word.as_pointer()), align=1)
            return []

        simd.counted_loop(builder, count_, body, [])
        return context.get_dummy_value()

    return nbtypes.void(group, codes, count, out, start, stride), codegen


@intrinsic
def _interleave(typingctx, group, rows, column, length, out, start):
    """out[start + c·group + r] = rows[r·length + column + c] for c < 16, r < group (2 or 4): 16 columns of
    `group` rows of codes (rows int8, `length` apart), each column's codes side by side, by shuffles of
    16-byte vectors. group: a compile-time constant."""
    if not isinstance(group, nbtypes.IntegerLiteral) or group.literal_value not in (2, 4):
        return None
    G = group.literal_value

    def codegen(context, builder, sig, args):
        _, row_array, column_, length_, out_array, start_ = args
        source = context.make_array(sig.args[1])(context, builder, row_array).data
        target = context.make_array(sig.args[4])(context, builder, out_array).data

        def zip_(a, b):  # <n x T>, <n x T> -> <2n x T>: a0 b0 a1 b1 ...
            n = a.type.count
            order = [k // 2 + (k % 2) * n for k in range(2 * n)]
            return builder.shuffle_vector(a, b, simd.ir.Constant(simd.vector(2 * n, simd.I32), order))

        vectors = [simd.load(builder, simd.element_pointer(builder, source, builder.add(builder.mul(length_,
                   cgutils.intp_t(r)), column_)), 16) for r in range(G)]
        if G == 2:
            result = zip_(vectors[0], vectors[1])
        else:  # pairs of bytes, then pairs of those as int16
            pairs = [builder.bitcast(zip_(vectors[0], vectors[1]), simd.vector(16, simd.ir.IntType(16))),
                     builder.bitcast(zip_(vectors[2], vectors[3]), simd.vector(16, simd.ir.IntType(16)))]
            result = builder.bitcast(zip_(*pairs), simd.vector(64, simd.ir.IntType(8)))
        simd.store(builder, result, simd.element_pointer(builder, target, start_))
        return context.get_dummy_value()

    return nbtypes.void(group, rows, column, length, out, start), codegen


@numba.njit(cache=True, inline="always", error_model="numpy")
def _key_codes(k, panels, sums, scales, nr, g, codes, inverses):
    """nn.quantize.quantize_symmetric of k's rows (k [L, d], rows contiguous), each an output channel (the
    same float operations): codes into panels [L'/nr, d"/g, nr·g] (zero past d), scales and code sums into
    scales, sums [L]. codes int8 [d"], inverses float32 [≥ d]: work space. The panels' columns past L, and
    scales and sums past L, are left as they are: they make scores past L, which the softmax leaves out."""
    L, d = k.shape
    codes[:] = 0
    whole = d - d % LANES
    for j in range(L):
        row = k[j]
        lo, hi = int8._vector_range(LANES, row, whole)  # max |row| = max(-min(row, 0), max(row, 0)), exact
        for c in range(whole, d):
            lo, hi = min(lo, row[c]), max(hi, row[c])
        scales[j], inverse = _scale(max(-lo, hi))
        inverses[:d] = inverse
        _codes(row, inverses, codes)
        total = np.int32(0)
        for c in range(d):
            total += codes[c]
        sums[j] = total
        _scatter_groups(g, codes, -(-d // g), panels, (j // nr) * panels.shape[1] * panels.shape[2] + (j % nr) * g,
                        panels.shape[2])


@numba.njit(cache=True, inline="always", error_model="numpy")
def _value_codes(v, panels, sums, scales, nr, g, codes, inverses):
    """nn.quantize.quantize_symmetric of v's columns (v [L, d], rows contiguous): codes into panels [d'/nr,
    L"/g, nr·g] (zero past L), scales and code sums into scales, sums [d]. codes int8 [≥ g·d], inverses
    float32 [≥ d]: work space. Columns past d are left as they are: they make outputs past d, never read."""
    L, d = v.shape
    scales[:d] = 0
    sums[:d] = 0
    for j in range(L):
        row = v[j]
        for c in range(d):
            scales[c] = max(scales[c], abs(row[c]))
    for c in range(d):
        scales[c], inverses[c] = _scale(scales[c])
    rows = codes[:g * d].reshape((g, d))
    flat = panels.reshape(-1)
    step = panels.shape[1] * panels.shape[2]
    for j0 in range(0, L, g):
        rows[:] = 0
        for r in range(min(g, L - j0)):
            _codes(v[j0 + r], inverses, rows[r])
            for c in range(d):
                sums[c] += rows[r, c]
        group = (j0 // g) * panels.shape[2]  # this group of g tokens' offset in every panel
        whole = d - d % 16
        for c in range(0, whole, 16):  # 16 columns at a time, each column's g codes side by side
            _interleave(g, codes, c, d, flat, (c // nr) * step + group + (c % nr) * g)
        for c in range(whole, d):
            for r in range(g):
                flat[(c // nr) * step + group + (c % nr) * g + r] = rows[r, c]
