"""GELU, the exact (erf) form BERT was trained with."""

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _erf_flat(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = math.erf(x[i])  # erff for float32 input, erf for float64: the input's precision
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise, in x's precision.  Any shape -> same shape.

    NumPy has no erf; a Numba loop over the C library's erf/erff gives it without bringing in SciPy. (Not
    a lazily compiled Numba ufunc: once it had only a float64 loop, it would cast float32 input to that
    loop and return float64.) Compiled per dtype on first use, from Numba's disk cache after the first run.
    """
    x = np.asarray(x)
    return _erf_flat(np.ascontiguousarray(x).reshape(-1)).reshape(x.shape)


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
