"""Int8 linear layers: weights quantized once per output channel, activations per token at run time.

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
every kernel (minibert/fast/int8.py) must give it bit for bit; the rest is the float epilogue.
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
    """acc = Q_x Q_wᵀ in int32.  q_x uint8 [T, K], q_w int8 [N, K] -> int32 [T, N].

    Computed as a float64 matrix product, which is exact here: every product and partial sum is an integer
    of magnitude ≤ 255 · 127 · K < 2⁵³, and such integers are exact in float64 whatever the order of the
    additions. (NumPy's own integer matmul is exact too, but has no BLAS behind it and runs far slower.)"""
    acc = q_x.astype(np.float64) @ q_w.T.astype(np.float64)  # [T, K] @ [K, N] -> [T, N]
    return acc.astype(np.int32)


def dequantize(acc: np.ndarray, x_scale: np.ndarray, zero: np.ndarray, weight_scale: np.ndarray,
               weight_sum: np.ndarray) -> np.ndarray:
    """y = s_x[t] · s_w[j] · (acc[t, j] - z[t] · colsum[j]), in s_x's precision.
    acc int32 [T, N], x_scale [T], zero int32 [T], weight_scale [N], weight_sum int32 [N] -> [T, N]."""
    centred = acc - zero[:, None] * weight_sum[None, :]  # int32 [T, N], exact
    dtype = x_scale.dtype
    return centred.astype(dtype) * x_scale[:, None] * weight_scale.astype(dtype)[None, :]


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
