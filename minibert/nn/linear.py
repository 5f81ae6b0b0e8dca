"""Dense (fully connected) layer, in torch's weight layout."""

import numpy as np


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y = x Wᵀ + b.

    x [..., in], weight [out, in] (torch/Hugging Face layout), bias [out] -> [..., out]
    """
    return x @ weight.T + bias
