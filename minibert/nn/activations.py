"""GELU, the exact (erf) form BERT was trained with."""

import math

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf: the C library's, one element at a time


def erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise, by math.erf (the C library's, in float64), returned in x's dtype.  Any shape."""
    x = np.asarray(x)
    return _erf(x).astype(x.dtype)


SQRT1_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU(x) = x · Φ(x) = x · ½ · (1 + erf(x / √2)).  Any shape -> same shape."""
    return x * 0.5 * (1.0 + erf(x * SQRT1_2))


def gelu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """∂x = ∂y · d/dx [x Φ(x)] = ∂y · (Φ(x) + x φ(x)), φ(x) = exp(-x²/2) / √(2π).  Any shape."""
    cdf = 0.5 * (1.0 + erf(x * SQRT1_2))
    pdf = np.exp(-0.5 * x * x) * INV_SQRT_2PI
    return dy * (cdf + x * pdf)
