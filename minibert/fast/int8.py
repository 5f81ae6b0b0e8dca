"""Int8 linear layers for the fast path: the reference's arithmetic (minibert/nn/quantize.py) in Numba kernels.

Per call: quantize_rows turns the activations into uint8 codes (one range per token), int_matmul
accumulates Q_x Q_wᵀ in int32, and dequantize_rows applies the scales. The int32 accumulators equal the
reference's bit for bit (integer arithmetic is exact, and the codes come from the same float operations
in the same order); tests/test_int8.py checks it for every kernel present.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..nn.quantize import ACTIVATION_LEVELS
from .kernels import kernel, run

ROWS = 4  # tokens per step of int_matmul: each weight row read from cache serves four tokens


@kernel()
def quantize_rows(x, levels, q, scale, zero):
    """nn.quantize.quantize_rows into q [T, K] uint8, scale [T] (x's dtype), zero [T] int32; x [T, K] float,
    levels = 255 in x's dtype (so that every operation stays in x's precision, as NumPy's do)."""
    nought = levels - levels
    for t in prange(x.shape[0]):
        row = x[t]
        lo, hi = nought, nought  # the range always holds 0
        for v in row:
            lo = min(lo, v)
            hi = max(hi, v)
        s = (hi - lo) / levels
        if s == nought:
            s = levels / levels
        z = np.rint(-lo / s)
        for k in range(row.size):
            code = min(max(np.rint(row[k] / s) + z, nought), levels)  # the reference's clip, same order
            q[t, k] = np.uint8(code)
        scale[t] = s
        zero[t] = np.int32(z)


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
    for t in prange(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[t, j] = acc[t, j] - zero[t] * weight_sum[j]  # stored: int32 -> out's float type
            out[t, j] = out[t, j] * x_scale[t] * weight_scale[j]


class Int8Matrix:
    """A quantized weight as the kernels read it: Q_w int8 [N, K] (rows = output channels), s_w float32 [N],
    and colsum [N] int32 = Σ_k Q_w[j, k], the zero points' correction, worked out once."""

    def __init__(self, weight: np.ndarray, scale: np.ndarray) -> None:
        self.weight, self.scale = weight, scale
        self.refresh()

    def refresh(self) -> None:
        """Recompute what is derived from the weight (after it was changed in place)."""
        self.weight_sum = self.weight.sum(axis=1, dtype=np.int32)

    @property
    def shape(self) -> tuple[int, int]:
        """[K, N], as the float path's [in, out] matrices."""
        return self.weight.shape[1], self.weight.shape[0]

    def accumulate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [T, K] float -> (acc int32 [T, N], s_x [T], z int32 [T]): the integer product and the activations'
        quantization parameters."""
        T, K = x.shape
        q = np.empty((T, K), np.uint8)
        x_scale, zero = np.empty(T, x.dtype), np.empty(T, np.int32)
        run(quantize_rows, x.size, x, x.dtype.type(ACTIVATION_LEVELS), q, x_scale, zero)
        acc = np.empty((T, self.weight.shape[0]), np.int32)
        run(int_matmul, T * K * self.weight.shape[0] // 64, q, self.weight, acc)
        return acc, x_scale, zero

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:
        """out [T, N] = x [T, K] Wᵀ, the weight's int8 product (no bias: the caller's kernels add it)."""
        acc, x_scale, zero = self.accumulate(x)
        run(dequantize_rows, out.size, acc, x_scale, zero, self.scale, self.weight_sum, out)
