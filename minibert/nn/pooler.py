"""The pooler: a tanh dense layer on the [CLS] position, the sentence vector NSP was trained on."""

import numpy as np

from . import linear


def pooler(x: np.ndarray, dense: dict) -> np.ndarray:
    """p = tanh(x[:, 0] Wᵀ + b).  x [B, S, H] -> [B, H]"""
    return np.tanh(linear.dense(x[:, 0], **dense))  # [B, S, H] -> [B, H]


def pooler_backward(dp: np.ndarray, x: np.ndarray, dense: dict) -> tuple[np.ndarray, dict]:
    """Gradients of p = tanh(x[:, 0] Wᵀ + b): ∂z = ∂p (1 - p²), then the dense layer; only [CLS] gets ∂x.

    dp [B, H], x [B, S, H] -> (dx [B, S, H], {weight, bias})
    """
    p = pooler(x, dense)
    dcls, dw, db = linear.dense_backward(dp * (1.0 - p * p), x[:, 0], dense["weight"])
    dx = np.zeros_like(x)
    dx[:, 0] = dcls
    return dx, {"weight": dw, "bias": db}
