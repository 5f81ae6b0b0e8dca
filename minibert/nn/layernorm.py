"""Layer normalisation over the hidden axis."""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """y = (x - μ) / √(σ² + ε) · γ + β, with μ and σ² (biased) taken over the last axis.

    x [..., H], weight γ [H], bias β [H] -> [..., H]
    """
    mean = x.mean(axis=-1, keepdims=True)  # μ: [..., H] -> [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # σ² = mean((x - μ)²), biased as in torch
    return (x - mean) / np.sqrt(var + eps) * weight + bias
