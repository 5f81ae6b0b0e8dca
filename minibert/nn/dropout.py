"""Dropout, the inverted form BERT trains with: drop each entry with probability p, scale the rest by 1/(1-p)."""

import numpy as np


def dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype: np.dtype) -> np.ndarray:
    """m = keep / (1 - p), keep ~ Bernoulli(1 - p) per entry, so that E[x ⊙ m] = x and evaluation needs no
    rescaling. The mask is drawn once per training step and used by the forward and the backward pass.

    -> [*shape] of 0 and 1/(1-p)
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
    keep = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64) >= p
    return keep.astype(dtype) / dtype.type(1.0 - p)


def dropout(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """y = x ⊙ m (no mask: evaluation, y = x). Its backward is the same product: ∂x = ∂y ⊙ m."""
    return x if mask is None else x * mask
