"""The pooler: a tanh dense layer on the [CLS] position, the sentence vector NSP was trained on."""

import numpy as np

from . import linear


def pooler(x: np.ndarray, dense: dict) -> np.ndarray:
    """p = tanh(x[:, 0] Wᵀ + b).  x [B, S, H] -> [B, H]"""
    return np.tanh(linear.dense(x[:, 0], **dense))  # [B, S, H] -> [B, H]
