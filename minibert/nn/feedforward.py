"""The position-wise feed-forward network: expand, GELU, project back."""

import numpy as np

from .activations import gelu
from .linear import dense


def feed_forward(x: np.ndarray, intermediate: dict, output: dict) -> np.ndarray:
    """FFN(x) = GELU(x W₁ᵀ + b₁) W₂ᵀ + b₂.

    x [B, S, H]; intermediate = W₁ [I, H], b₁ [I]; output = W₂ [H, I], b₂ [H] -> [B, S, H]
    """
    h = gelu(dense(x, **intermediate))  # [B, S, H] -> [B, S, I]
    return dense(h, **output)  # [B, S, I] -> [B, S, H]
