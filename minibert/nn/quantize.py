"""Int8 linear layers (weights quantized once per output channel, activations per token at run time), and
the attention's two products in the same form (attention_int8).

A float w is stored as an integer q and a scale s, w ≈ s · q. The matrix product then runs on integers,
exactly, and one multiplication per output puts the scales back:

    weights      W[j, :] ≈ s_w[j] · Q_w[j, :]            Q_w int8 in [-127, 127], s_w[j] = max|W[j, :]| / 127
    activations  x[t, :] ≈ s_x[t] · (Q_x[t, :] - z[t])    Q_x uint8 in [0, 255], z[t] the zero point (x = 0 is exact)
    product      y[t, j] = s_x[t] · s_w[j] · (acc[t, j] - z[t] · colsum[j]) + b[j]
                 acc[t, j] = Σ_k Q_x[t, k] · Q_w[j, k]   (int32),   colsum[j] = Σ_k Q_w[j, k]

The weights are symmetric (no zero point, so colsum is all a zero point costs); activations are
asymmetric, because after GELU they are almost all ≥ 0 and a symmetric range would waste half of the
codes; uint8 × int8 is what the CPU's integer dot-product instruction (vpdpbusd) takes. Each token gets its
own range, so one token with large values does not coarsen the others. acc is exact integer arithmetic:
every kernel (minibert/fast/int8.py, fast/int8_attention.py) must give it bit for bit; the rest is the
float epilogue.
"""

import numpy as np

WEIGHT_MAX = 127  # symmetric: -127..127, so that -W quantizes to -Q_w
ACTIVATION_LEVELS = 255  # uint8: 0..255


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel quantization.  weight [out, in] float -> (Q_w int8 [out, in], s_w float32 [out]).

    s_w[j] = max_k |W[j, k]| / 127, Q_w[j, k] = round(W[j, k] / s_w[j]); a row of zeros gets s_w = 1."""
    scale = (np.abs(weight).max(axis=1) / WEIGHT_MAX).astype(np.float32)  # [out, in] -> [out]
    scale[scale == 0] = 1
    q = np.rint(weight.astype(np.float64) / scale[:, None].astype(np.float64))  # [out, in], |q| ≤ 127
    return np.clip(q, -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8), scale


def quantize_symmetric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row quantization at run time, in x's precision (for the attention's keys and values,
    which are quantized as a weight's output channels, but per call).  x [T, K] float -> (Q int8 [T, K],
    s [T] of x's dtype) with x ≈ s · Q.

    s = max_k |x[t, k]| / 127 and Q = round(x · (127 / max_k |x[t, k]|)): a multiplication by the inverse
    scale, not a division, as the fast kernels make it; a row of zeros gets s = 1."""
    top = np.abs(x).max(axis=1)  # [T, K] -> [T]
    zero = top == 0
    top[zero] = 1
    scale = top / x.dtype.type(WEIGHT_MAX)
    scale[zero] = 1
    inverse = x.dtype.type(WEIGHT_MAX) / top  # [T]
    q = np.clip(np.rint(x * inverse[:, None]), -WEIGHT_MAX, WEIGHT_MAX)  # [T, K]
    return q.astype(np.int8), scale


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric per-row (per-token) quantization, in x's precision.  x [T, K] float ->
    (Q_x uint8 [T, K], s_x [T] of x's dtype, z int32 [T]) with x ≈ s_x · (Q_x - z).

    The range [lo, hi] is the row's own, widened to hold 0: s_x = (hi - lo) / 255, z = round(-lo / s_x),
    Q_x = clip(round(x / s_x) + z, 0, 255). Rounding is to nearest, ties to even (np.rint); the fast kernels
    make the same float operations in the same order, so they give the same Q_x."""
    lo = np.minimum(x.min(axis=1), 0)  # [T, K] -> [T]
    hi = np.maximum(x.max(axis=1), 0)
    scale = (hi - lo) / x.dtype.type(ACTIVATION_LEVELS)
    scale[scale == 0] = 1  # a row of zeros
    zero = np.rint(-lo / scale)  # [T], in [0, 255]
    q = np.clip(np.rint(x / scale[:, None]) + zero[:, None], 0, ACTIVATION_LEVELS)  # [T, K]
    return q.astype(np.uint8), scale, zero.astype(np.int32)


def int_matmul(q_x: np.ndarray, q_w: np.ndarray) -> np.ndarray:
    """acc = Q_x Q_wᵀ in int32.  q_x uint8 [..., T, K], q_w int8 [..., N, K] -> int32 [..., T, N].

    Computed as a float64 matrix product, which is exact here: every product and partial sum is an integer
    of magnitude ≤ 255 · 127 · K < 2⁵³, and such integers are exact in float64 whatever the order of the
    additions. (NumPy's own integer matmul is exact too, but has no BLAS behind it and runs far slower.)"""
    acc = q_x.astype(np.float64) @ np.swapaxes(q_w, -1, -2).astype(np.float64)  # [..., T, K] @ [..., K, N]
    return acc.astype(np.int32)


def dequantize(acc: np.ndarray, x_scale: np.ndarray, zero: np.ndarray, weight_scale: np.ndarray,
               weight_sum: np.ndarray) -> np.ndarray:
    """y = s_x[t] · s_w[j] · (acc[t, j] - z[t] · colsum[j]), in s_x's precision.
    acc int32 [..., T, N], x_scale [..., T], zero int32 [..., T], weight_scale [..., N], weight_sum int32 [..., N]
    -> [..., T, N]."""
    centred = acc - zero[..., :, None] * weight_sum[..., None, :]  # int32 [..., T, N], exact
    dtype = x_scale.dtype
    return centred.astype(dtype) * x_scale[..., :, None] * weight_scale.astype(dtype)[..., None, :]


def dense_int8(x: np.ndarray, weight: np.ndarray, weight_scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y = x Wᵀ + b with W ≈ s_w · Q_w stored as int8 and x quantized per token.

    x [..., in] float, weight Q_w int8 [out, in], weight_scale s_w float32 [out], bias [out] -> [..., out]
    in x's precision."""
    rows = x.reshape(-1, x.shape[-1])  # [..., in] -> [T, in]
    q_x, x_scale, zero = quantize_rows(rows)
    acc = int_matmul(q_x, weight)  # [T, in] x [out, in] -> int32 [T, out]
    weight_sum = weight.sum(axis=1, dtype=np.int32)  # colsum [out]
    y = dequantize(acc, x_scale, zero, weight_scale, weight_sum) + bias.astype(x.dtype)
    return y.reshape(*x.shape[:-1], weight.shape[0])  # [T, out] -> [..., out]


def attention_int8(q: np.ndarray, k: np.ndarray, v: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """softmax(Q Kᵀ / √d) V over the real keys, both products in integers, as an int8 model attends:

        s = Q Kᵀ                             scores_int8
        e_ij = exp((s_ij - max_j s_ij) / √d)  in [0, 1], the max at 1; 0 at padding keys
        context = (e V) / Σ_j e_ij            context_int8

    q, k, v [B, A, S, d] float; real [B, S] bool (keys that are tokens, not padding; a sequence of padding
    only attends to all its keys, as in transformers) -> (context [B, A, S, d], probabilities [B, A, S, S])"""
    real = real | ~real.any(axis=1, keepdims=True)
    keys = real[:, None, None, :]  # [B, S] -> [B, 1, 1, S]
    scores = scores_int8(q, k)  # [B, A, S, S]
    top = np.where(keys, scores, -np.inf).max(axis=-1, keepdims=True)  # [B, A, S, 1]
    e = np.exp(np.where(keys, (scores - top) * q.dtype.type(q.shape[-1] ** -0.5), -np.inf))  # [B, A, S, S]
    total = e.sum(axis=-1)  # Σ_j e_ij [B, A, S]
    return context_int8(e, total, v, real), e / total[..., None]


def scores_int8(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Q Kᵀ in integers: a query row quantized as an activation (quantize_rows), a key row as a weight's
    output channel (quantize_symmetric), so  s_ij = s_q[i] · s_k[j] · (acc_ij - z_q[i] · Σ_c Q_k[j, c]).
    q, k [B, A, S, d] float -> [B, A, S, S] in q's precision"""
    B, A, S, d = q.shape
    q_codes, q_scale, q_zero = quantize_rows(q.reshape(-1, d))  # [B·A·S, d]
    k_codes, k_scale = quantize_symmetric(k.reshape(-1, d))  # a scale per key (token and head)
    acc = int_matmul(q_codes.reshape(B, A, S, d), k_codes.reshape(B, A, S, d))  # -> [B, A, S, S]
    k_sum = k_codes.sum(axis=1, dtype=np.int32).reshape(B, A, S)
    return dequantize(acc, q_scale.reshape(B, A, S), q_zero.reshape(B, A, S), k_scale.reshape(B, A, S), k_sum)


def context_int8(e: np.ndarray, total: np.ndarray, v: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(e V) / Σ e in integers, e in [0, 1]: a fixed scale serves every row, Q_e = round(255 · e) (z = 0), and
    the softmax's division is folded into the row's scale (one division a row); V is quantized per column,
    a weight's output channel, over the real keys only:

        context_ic = ((1/255) / Σ_j e_ij) · s_v[c] · Σ_j Q_e[i, j] · Q_v[c, j]

    e [B, A, S, S] float (0 at padding keys), total [B, A, S] = Σ_j e_ij, v [B, A, S, d], real [B, S] bool
    -> [B, A, S, d] in e's precision"""
    B, A, S, d = v.shape
    e_codes = np.rint(e * e.dtype.type(ACTIVATION_LEVELS)).astype(np.uint8)  # [B, A, S, S]
    e_scale = e.dtype.type(1 / ACTIVATION_LEVELS) / total  # [B, A, S]
    columns = np.swapaxes(np.where(real[:, None, :, None], v, 0), -1, -2)  # [B, A, S, d] -> [B, A, d, S], padding 0
    v_codes, v_scale = quantize_symmetric(columns.reshape(-1, S))  # a scale per column (head and channel)
    acc = int_matmul(e_codes, v_codes.reshape(B, A, d, S))  # -> [B, A, S, d]
    v_sum = v_codes.sum(axis=1, dtype=np.int32).reshape(B, A, d)
    return dequantize(acc, e_scale, np.zeros((B, A, S), np.int32), v_scale.reshape(B, A, d), v_sum)
