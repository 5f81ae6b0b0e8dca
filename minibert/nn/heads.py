"""The masked-LM head. (Next-sentence, classification and span heads are a single dense layer: nn.dense.)"""

import numpy as np

from .activations import gelu
from .layernorm import layer_norm
from .linear import dense


def masked_lm_head(x: np.ndarray, transform: dict, decoder: dict, eps: float) -> np.ndarray:
    """Token scores over the vocabulary, decoder tied to the word embeddings:

        h = LayerNorm(GELU(x W_tᵀ + b_t));  logits = h Eᵀ + b

    x [B, S, H]; transform = {dense, LayerNorm}; decoder = {weight: E [V, H], bias: b [V]} -> [B, S, V]
    """
    h = layer_norm(gelu(dense(x, **transform["dense"])), **transform["LayerNorm"], eps=eps)
    return dense(h, **decoder)  # [B, S, H] -> [B, S, V]
