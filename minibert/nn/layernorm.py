"""Layer normalisation over the hidden axis."""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """y = (x - μ) / √(σ² + ε) · γ + β, with μ and σ² (biased) taken over the last axis.

    x [..., H], weight γ [H], bias β [H] -> [..., H]
    """
    mean = x.mean(axis=-1, keepdims=True)  # μ: [..., H] -> [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # σ² = mean((x - μ)²), biased as in torch
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def layer_norm_backward(dy: np.ndarray, x: np.ndarray, weight: np.ndarray,
                        eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = x̂ γ + β with x̂ = (x - μ) r, r = 1 / √(σ² + ε), over the last axis of size N:

        ∂γ = Σ ∂y x̂,   ∂β = Σ ∂y,   ∂x = r/N · (N ∂x̂ - Σ_j ∂x̂ - x̂ Σ_j ∂x̂ x̂)   with ∂x̂ = ∂y γ

    dy, x [..., N], weight [N] -> (dx [..., N], dweight [N], dbias [N]); μ and σ² are recomputed from x.
    """
    n = x.shape[-1]
    mean = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    x_hat = (x - mean) * r
    dx_hat = dy * weight
    dx = r / n * (n * dx_hat - dx_hat.sum(axis=-1, keepdims=True)
                  - x_hat * (dx_hat * x_hat).sum(axis=-1, keepdims=True))
    rows = dy.reshape(-1, n), x_hat.reshape(-1, n)
    return dx, (rows[0] * rows[1]).sum(axis=0), rows[0].sum(axis=0)
