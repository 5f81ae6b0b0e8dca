"""The position-wise feed-forward network: expand, GELU, project back."""

import numpy as np

from .activations import gelu, gelu_backward
from .linear import dense, dense_backward


def feed_forward(x: np.ndarray, intermediate: dict, output: dict) -> np.ndarray:
    """FFN(x) = GELU(x W₁ᵀ + b₁) W₂ᵀ + b₂.

    x [B, S, H]; intermediate = W₁ [I, H], b₁ [I]; output = W₂ [H, I], b₂ [H] -> [B, S, H]
    """
    h = gelu(dense(x, **intermediate))  # [B, S, H] -> [B, S, I]
    return dense(h, **output)  # [B, S, I] -> [B, S, H]


def feed_forward_backward(dy: np.ndarray, x: np.ndarray,
                          intermediate: dict, output: dict) -> tuple[np.ndarray, dict, dict]:
    """Gradients of FFN(x) = GELU(x W₁ᵀ + b₁) W₂ᵀ + b₂; the hidden pre-activation is recomputed.

    dy, x [B, S, H] -> (dx [B, S, H], {weight, bias} of intermediate, {weight, bias} of output)
    """
    z = dense(x, **intermediate)  # [B, S, I], before GELU
    dh, dw2, db2 = dense_backward(dy, gelu(z), output["weight"])
    dx, dw1, db1 = dense_backward(gelu_backward(dh, z), x, intermediate["weight"])
    return dx, {"weight": dw1, "bias": db1}, {"weight": dw2, "bias": db2}
