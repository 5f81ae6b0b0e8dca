"""Arrays that start on a cache line.

NumPy aligns a large array to 16 bytes only. The rows of a weight matrix of a whole number of cache lines
(256 floats, 1 KB) then start off a line too, so each 64-byte vector load the GEMM makes from one
straddles two lines, and 32 floats of a row (two lines' worth) touch three. At small batches, where each
weight is read once per call from beyond L2, the float32 forward took 1.19x the time on weights 16 to 48
bytes off a line (BERT-Mini, 1 × 8 tokens; docs/fast.md).
"""

from __future__ import annotations

import math

import numpy as np

CACHE_LINE = 64  # bytes


def zeros(shape: tuple[int, ...], dtype: np.dtype, order: str = "C") -> np.ndarray:
    """A zero array of `shape` and `dtype` (in `order`, "C" or "F") whose first element starts on a cache
    line, so that each row (column, for "F") of a whole number of lines starts on one too."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    raw = np.zeros(nbytes + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape, order=order)


def is_aligned(a: np.ndarray) -> bool:
    """Whether a's first element starts on a cache line."""
    return a.ctypes.data % CACHE_LINE == 0
