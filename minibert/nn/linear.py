"""Dense (fully connected) layer, in torch's weight layout."""

import numpy as np

from .quantize import dense_int8


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, weight_scale: np.ndarray | None = None) -> np.ndarray:
    """y = x Wᵀ + b.

    x [..., in], weight [out, in] (torch/Hugging Face layout), bias [out] -> [..., out]. With weight_scale
    [out], weight is int8 (a quantized model's) and the product runs in integers: see nn/quantize.py.
    """
    if weight_scale is not None:
        return dense_int8(x, weight, weight_scale, bias)
    rows = x.reshape(-1, x.shape[-1])  # [..., in] -> [tokens, in]: one GEMM, not one per batch row
    return (rows @ weight.T + bias).reshape(*x.shape[:-1], weight.shape[0])  # [tokens, out] -> [..., out]


def dense_backward(dy: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = x Wᵀ + b:  ∂x = ∂y W,  ∂W = Σ ∂yᵀ x,  ∂b = Σ ∂y  (sums over all leading axes).

    dy [..., out], x [..., in], weight [out, in] -> (dx [..., in], dweight [out, in], dbias [out])
    """
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])  # [..., n] -> [rows, n]
    return (dy2 @ weight).reshape(x.shape), dy2.T @ x2, dy2.sum(axis=0)
