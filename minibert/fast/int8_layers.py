"""An int8 model's encoder layers as one compiled function and one parallel region, as fast/layers.py's.

The embeddings of the packed tokens x [T, H] (fast/encoder.py) in float32 and their quantization, as
fast/layers.py's (layers.embed_items), then per layer each phase a list of items the threads claim
(fast/tasks.py), each waiting for the one before; Q(·) is a token's quantization (int8.quantize_row), each
GEMM the int8 kernel of fast/int8.py with the dequantization (and bias, GELU) in its registers:

    qkv = deq(Q(x) [Q_q | Q_k | Q_v]ᵀ) + [b_q | b_k | b_v]            one GEMM, x quantized once  (row block × panels)
    context = softmax(q kᵀ / √d) v, both products in int8              fast/int8_attention.py      (sequence × head)
    x = LayerNorm(deq(Q(context) Q_oᵀ) + b_o + x), then Q(x)           quantize; GEMM; rows        (rows)
    x = LayerNorm(deq(Q(GELU(deq(Q(x) Q_1ᵀ) + b_1)) Q_2ᵀ) + b_2 + x)   GEMM; quantize; GEMM; rows

and after the last layer the pooler in float32, as fast/layers.py's (layers.pooler_items). A batch of enough
tokens is cut into groups of whole sequences, each a thread's through every layer, as in fast/layers.py
(layers.groups): the same rows through the same kernels, so the same numbers.

The codes of the GEMM's input live in one buffer q [T, K'] (K' = K padded to the kernel's groups of k; the
codes past K meet zero weights), with each token's scale and zero point; a group's codes in its own rows of
the buffer viewed as [T, K'max]. A LayerNorm row is quantized by the thread that has just computed it.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numba import prange

from ..nn.quantize import ACTIVATION_LEVELS
from . import gemm, int8, int8_attention, layers
from .gemm import BIAS, BIAS_GELU, KC, NONE
from .tasks import claim, finish, wait

PHASES_PER_LAYER = 9  # QKV, attention, quantize, output, LayerNorm, FFN in, quantize, FFN out, LayerNorm
LEVELS = np.float32(ACTIVATION_LEVELS)
KIND, MR, NR, G = 0, 8, 32, 4  # each compiled copy of _worker gets its kernel's own (see _build)
WORKER = ENCODER = GEMM = ATTENTION = None  # _worker, _encoder, _gemm, _attention: each copy's own (see _build)


def buffers(threads: int, hidden: int, heads: int, longest: int, kernel: str) -> dict[str, tuple]:
    """name -> (shape, dtype) of the per-thread buffers, for sequences up to `longest` tokens: a last panel
    narrower than the kernel's NR columns (sums, row), the attention's (int8_attention.buffers), and the
    float32 GEMM's for the pooler (gemm.buffers)."""
    W, G, _, V = int8.KERNELS[kernel]
    return {"sums": ((threads, 8, V * W), np.int32), "row": ((threads, V * W), np.float32),
            **int8_attention.buffers(threads, hidden, heads, longest, kernel),
            **{name: (shape, np.float32) for name, shape in gemm.buffers(threads, hidden).items()}}


def _encode(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
            vector_bounds, num_heads, eps, starts, lengths, order, positions, x, qkv, context, projected, intermediate,
            hidden, pool_weight, pool_bias, first, pooled, q, x_scale, zero, groups, sums, row, codes, key_panels,
            value_panels, channel_sums, channel_scales, token_scales, token_zeros, scores, heads, exp_sums, packed,
            scratch, tail, counters):
    """The embeddings, then every layer, over packed tokens x [R, H] float32 (in its first T = Σ lengths rows),
    sequence s at rows starts[s] : + lengths[s]; tokens, embedding, order, positions: as layers.encode's.
    panels ... column_bounds: per layer the Int8Matrix parts of (QKV, output, FFN in, FFN out) in the arrays of
    int8.stack (matrix()); vectors, vector_bounds: as layers.encode's. qkv [R, 3H], context and projected [R, H],
    intermediate [R, I]: work arrays; q [≥ T · K'max] codes (int8.codes_dtype; code_room: K'max = the widest
    input's, max(H, I) rounded up to the kernel's G), x_scale float32 [R], zero int32 [R]: the codes. hidden
    and pool_weight ... pooled, groups: as layers.encode's (the last n hidden states, the pooler in float32,
    groups of sequences). sums ... tail: buffers(), one row per thread; counters: int64 zeros [2 · (2 +
    PHASES_PER_LAYER · layers + 3)]. WORKER: the copy's global (see _build)."""
    for thread in prange(sums.shape[0]):
        WORKER(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
               vector_bounds, num_heads, eps, starts, lengths, order, positions, x, qkv, context, projected,
               intermediate, hidden, pool_weight, pool_bias, first, pooled, q, x_scale, zero, groups, sums.shape[0],
               sums[thread], row[thread], codes[thread], key_panels[thread], value_panels[thread],
               channel_sums[thread], channel_scales[thread], token_scales[thread], token_zeros[thread],
               scores[thread], heads[thread], exp_sums[thread], packed[thread], scratch[thread], tail[thread],
               counters)


def _worker(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
            vector_bounds, num_heads, eps, starts, lengths, order, positions, x, qkv, context, projected, intermediate,
            hidden, pool_weight, pool_bias, first, pooled, q, x_scale, zero, groups, threads, sums, row, codes,
            key_panels, value_panels, channel_sums, channel_scales, token_scales, token_zeros, scores, heads,
            exp_sums, packed, scratch, tail, counters):
    """One thread's share of _encode: with several groups (layers.groups), the groups it claims, each through
    every layer alone (as layers._worker); with one, every phase's items that it claims. Then its share of
    the pooler. ENCODER, G: the copy's."""
    n_layers = (len(column_bounds) - 1) // 4
    K = code_room(x.shape[1], intermediate.shape[1], G)
    if groups.shape[0] > 2:  # several groups: each thread takes whole groups, through every layer alone
        mine = np.zeros_like(counters[:2 * (2 + PHASES_PER_LAYER * n_layers)])  # the phases of one group
        alone = np.int64(1)  # typed as the argument (a literal 1: a second build of ENCODER)
        g, s0, s1, r0, r1 = layers.claim_group(counters, groups, starts, lengths, mine)
        while g < groups.shape[0] - 1:
            ENCODER(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
                    vector_bounds, num_heads, eps, starts[s0:s1] - r0, lengths[s0:s1], positions[r0:r1], x[r0:r1],
                    qkv[r0:r1], context[r0:r1], projected[r0:r1], intermediate[r0:r1], hidden, q[r0 * K:r1 * K],
                    x_scale[r0:r1], zero[r0:r1], alone, sums, row, codes, key_panels, value_panels, channel_sums,
                    channel_scales, token_scales, token_zeros, scores, heads, exp_sums, mine)
            finish(counters, 0)
            g, s0, s1, r0, r1 = layers.claim_group(counters, groups, starts, lengths, mine)
        wait(counters, 0, groups.shape[0] - 1)
    else:
        ENCODER(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
                vector_bounds, num_heads, eps, starts, lengths, positions, x, qkv, context, projected, intermediate,
                hidden, q, x_scale, zero, threads, sums, row, codes, key_panels, value_panels, channel_sums,
                channel_scales, token_scales, token_zeros, scores, heads, exp_sums, counters)
    layers.pooler_items(x, starts, order, pool_weight, pool_bias, first, projected, pooled, threads, counters,
                        2 + PHASES_PER_LAYER * n_layers, gemm.aligned(packed, KC, layers.NR), scratch, tail)


def _encoder(tokens, embedding, panels, panel_bounds, weight_sums, weight_scales, column_bounds, vectors,
             vector_bounds, num_heads, eps, starts, lengths, positions, x, qkv, context, projected, intermediate,
             hidden, q, x_scale, zero, threads, sums, row, codes, key_panels, value_panels, channel_sums,
             channel_scales, token_scales, token_zeros, scores, heads, exp_sums, counters):
    """The embeddings and every layer over the tokens x [T, H] (sequence s at rows starts[s] : + lengths[s]),
    phase after phase, this thread claiming items of each from counters (phases 0 to 1 + PHASES_PER_LAYER ·
    layers) alongside `threads` - 1 others. KIND, MR, NR, G, GEMM, ATTENTION: the copy's."""
    T = lengths.sum()
    H, inner = x.shape[1], intermediate.shape[1]
    n_layers = (len(column_bounds) - 1) // 4
    first, no_slot = np.int64(1), np.int64(-1)  # typed as the phase and slot arguments (literals: second builds)
    n = layers.embed_items(tokens, embedding, eps, positions, x[:T], threads, counters, 0, hidden,
                           hidden.shape[0] - n_layers - 1)
    wait(counters, 0, n)
    matrices = panels, panel_bounds, weight_sums, weight_scales, column_bounds
    w_qkv = matrix(matrices, 0, H, NR, G)
    n = _quantize_items(x[:T], _codes(q, T, w_qkv[0], NR), x_scale, zero, threads, counters, first)
    wait(counters, first, n)
    for layer in range(n_layers):
        phase, m = 2 + PHASES_PER_LAYER * layer, 4 * layer
        w_qkv, w_o = matrix(matrices, m, H, NR, G), matrix(matrices, m + 1, H, NR, G)
        w_1, w_2 = matrix(matrices, m + 2, H, NR, G), matrix(matrices, m + 3, inner, NR, G)
        _, _, _, b_o, g_1, beta_1, b_1, b_2, g_2, beta_2 = layers.layer_vectors(vectors, vector_bounds, layer)
        v = layers.VECTORS_PER_LAYER * layer
        b_qkv = vectors[vector_bounds[v]:vector_bounds[v + 3]]  # b_q, b_k, b_v lie side by side: [3H]
        _linear(q, T, w_qkv, x_scale, zero, b_qkv, qkv[:T], BIAS, threads, counters, phase, sums, row)
        n = ATTENTION(qkv, starts, lengths, num_heads, context, counters, phase + 1, codes, key_panels, value_panels,
                      channel_sums, channel_scales, token_scales, token_zeros, scores, heads, exp_sums, sums, row)
        wait(counters, phase + 1, n)
        n = _quantize_items(context[:T], _codes(q, T, w_o[0], NR), x_scale, zero, threads, counters, phase + 2)
        wait(counters, phase + 2, n)
        _linear(q, T, w_o, x_scale, zero, b_o, projected[:T], NONE, threads, counters, phase + 3, sums, row)
        n = _layer_norm_items(projected, b_o, x, g_1, beta_1, eps, T, _codes(q, T, w_1[0], NR), x_scale, zero,
                              threads, counters, phase + 4, hidden, no_slot, positions)
        wait(counters, phase + 4, n)
        _linear(q, T, w_1, x_scale, zero, b_1, intermediate[:T], BIAS_GELU, threads, counters, phase + 5, sums, row)
        n = _quantize_items(intermediate[:T], _codes(q, T, w_2[0], NR), x_scale, zero, threads, counters,
                             phase + 6)
        wait(counters, phase + 6, n)
        _linear(q, T, w_2, x_scale, zero, b_2, projected[:T], NONE, threads, counters, phase + 7, sums, row)
        next_rows = 0 if layer + 1 == n_layers else T  # the last layer's output is not quantized
        slot = layer - n_layers + hidden.shape[0]  # hidden's row for this layer's output (< 0: none)
        n = _layer_norm_items(projected, b_2, x, g_2, beta_2, eps, T, _codes(q, next_rows, w_qkv[0], NR), x_scale,
                              zero, threads, counters, phase + 8, hidden, slot, positions)
        wait(counters, phase + 8, n)


def _gemm(q, panels, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, threads, counters, phase, sums,
          row):
    """int8.gemm_items with the copy's kernel (KIND, MR), compiled once for all of _worker's GEMMs."""
    return int8.gemm_items(q, panels, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, threads, counters,
                           phase, sums, row, KIND, MR)


def _attention(qkv, starts, lengths, num_heads, context, counters, phase, codes, key_panels, value_panels,
               channel_sums, channel_scales, token_scales, token_zeros, scores, heads, exp_sums, sums, row):
    """int8_attention.attention_items with the copy's kernel (KIND, MR, NR, G), compiled once."""
    return int8_attention.attention_items(qkv, starts, lengths, num_heads, context, counters, phase, codes, key_panels,
                                          value_panels, channel_sums, channel_scales, token_scales, token_zeros,
                                          scores, heads, exp_sums, sums, row, KIND, MR, NR, G)


def _linear(q, T, weight, x_scale, zero, bias, out, epilogue, threads, counters, phase, sums, row):
    """Phase `phase`: out = epilogue(dequantize(Q(x) Q_wᵀ) + bias) from the codes in q of the weight's input
    (weight: matrix()'s views); returns once every item is finished. GEMM, NR: the copy's (see _build)."""
    panels, weight_sum, weight_scale = weight
    n = GEMM(_codes(q, T, panels, NR), panels, weight_sum, weight_scale, x_scale, zero, bias, out, epilogue, threads,
             counters, phase, sums, row)
    wait(counters, phase, n)


@numba.njit(cache=True, inline="always")
def matrix(matrices, m, k, nr, g):
    """Matrix m's Int8Matrix parts, views of the arrays of int8.stack (matrices: (panels, panel_bounds,
    weight_sums, weight_scales, column_bounds)): its panels [⌈N/nr⌉, ⌈k/g⌉, nr·g] (k: its input size, nr and
    g: the kernel's NR and G), weight sums and scales [N]."""
    panels, panel_bounds, weight_sums, weight_scales, column_bounds = matrices
    n0, n1 = column_bounds[m], column_bounds[m + 1]
    shape = (-(-(n1 - n0) // nr), -(-k // g), nr * g)
    p0 = panel_bounds[m]
    return panels[p0:p0 + shape[0] * shape[1] * shape[2]].reshape(shape), weight_sums[n0:n1], weight_scales[n0:n1]


@numba.njit(cache=True)
def code_room(hidden, inner, g):
    """A token's room in the codes buffer q: K'max, the widest GEMM input (max(H, I)) padded to groups of g."""
    return g * -(-max(hidden, inner) // g)


@numba.njit(cache=True, inline="always")
def _codes(q, T, panels, nr):
    """q viewed as [T, K'], K' = the panels' padded K (groups of k × bytes per lane, for tiles of nr columns):
    the codes a GEMM on those panels reads."""
    k = panels.shape[1] * (panels.shape[2] // nr)
    return q[:T * k].reshape((T, k))


@numba.njit(cache=True, error_model="numpy")
def _quantize_items(x, q, x_scale, zero, threads, counters, phase):
    """Claim and compute items of q, x_scale, zero = Q(x) (_quantize_rows), layers.row_items' rows each."""
    T = q.shape[0]
    rows, items = layers.row_items(T, threads)
    item = claim(counters, phase)
    while item < items:
        _quantize_rows(x, q, x_scale, zero, item * rows, min(T, (item + 1) * rows))
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, inline="always", error_model="numpy")
def _quantize_rows(x, q, x_scale, zero, r0, r1):
    """Rows r0 : r1 of q, x_scale, zero = Q(x) (int8.quantize_row, never inlined, so exact under fastmath)."""
    for t in range(r0, r1):
        x_scale[t], zero[t] = int8.quantize_row(x[t], LEVELS, q[t])


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _layer_norm_items(y, bias, x, gamma, beta, eps, T, q, x_scale, zero, threads, counters, phase, hidden, slot,
                      positions):
    """layers._layer_norm_items (x = LayerNorm(y + bias + x), row t copied to hidden[slot, positions[t]] when
    slot ≥ 0: layers.layer_norm_rows), each item's rows then quantized into q [T', K'], x_scale, zero when q
    has rows (T' = T)."""
    rows, items = layers.row_items(T, threads)
    item = claim(counters, phase)
    while item < items:
        r0, r1 = item * rows, min(T, (item + 1) * rows)
        layers.layer_norm_rows(y, bias, x, gamma, beta, eps, r0, r1, hidden, slot, positions)
        if q.shape[0] > 0:
            _quantize_rows(x, q, x_scale, zero, r0, r1)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


_BUILDS: dict = {}


def encode(kernel: str):
    """_encode for the int8 kernel `kernel` (one of int8.KERNELS, not "portable")."""
    return _build(kernel)[1]


def attention_kernel(kernel: str):
    """_attention for the int8 kernel `kernel`: a function (qkv, starts, lengths, num_heads, context, counters,
    phase, codes, ..., exp_sums, sums, row) as int8_attention.attention_items, its buffers one thread's rows."""
    return _build(kernel)[2]


def gemm_kernel(kernel: str):
    """_gemm for the int8 kernel `kernel`: a function (q, panels, weight_sum, weight_scale, x_scale, zero, bias,
    out, epilogue, threads, counters, phase, sums, row) as int8.gemm_items."""
    return _build(kernel)[0]


def _build(kernel: str):
    """Copies of _gemm, _attention, _linear, _encoder, _worker and _encode under names of their own (so that
    Numba's disk cache keeps each build apart), with the kernel's KIND, MR, NR and G as compile-time
    constants, as int8.packed_matmul's."""
    if kernel not in _BUILDS:
        W, G, mr, V = int8.KERNELS[kernel]
        scope = dict(_encode.__globals__, KIND=list(int8.KERNELS).index(kernel), MR=mr, NR=V * W, G=G)
        for name, function, inline in (("GEMM", _gemm, "never"), ("ATTENTION", _attention, "never"),
                                       ("_linear", _linear, "always"), ("ENCODER", _encoder, "never"),
                                       ("WORKER", _worker, "never")):
            copy = types.FunctionType(function.__code__, scope, f"{function.__name__}_{kernel}")
            copy.__qualname__ = copy.__name__
            scope[name] = numba.njit(cache=True, inline=inline, error_model="numpy")(copy)
        copy = types.FunctionType(_encode.__code__, scope, f"_encode_{kernel}")
        copy.__qualname__ = copy.__name__
        _BUILDS[kernel] = (scope["GEMM"], numba.njit(cache=True, parallel=True, error_model="numpy")(copy),
                           scope["ATTENTION"])
    return _BUILDS[kernel]
