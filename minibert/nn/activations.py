"""GELU, the exact (erf) form BERT was trained with."""

import math

import numba
import numpy as np


# NumPy has no erf; Numba compiles the C library's erf/erff into a ufunc, so GELU stays one
# elementwise NumPy expression in float32 and float64 without bringing in SciPy. Without signatures it is
# compiled (or loaded from the disk cache) on first use, so importing minibert does not pay for it.
@numba.vectorize(cache=True)
def erf(x):
    return math.erf(x)


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
