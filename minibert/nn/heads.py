"""The masked-LM head. (Next-sentence, classification and span heads are a single dense layer: nn.dense.)"""

import numpy as np

from .activations import gelu, gelu_backward
from .layernorm import layer_norm, layer_norm_backward
from .linear import dense, dense_backward


def masked_lm_head(x: np.ndarray, transform: dict, decoder: dict, eps: float) -> np.ndarray:
    """Token scores over the vocabulary, decoder tied to the word embeddings:

        h = LayerNorm(GELU(x W_tᵀ + b_t));  logits = h Eᵀ + b

    x [..., H]; transform = {dense, LayerNorm}; decoder = {weight: E [V, H], bias: b [V]} -> [..., V]
    """
    h = layer_norm(gelu(dense(x, **transform["dense"])), **transform["LayerNorm"], eps=eps)
    return dense(h, **decoder)  # [..., H] -> [..., V]


def masked_lm_head_backward(dlogits: np.ndarray, x: np.ndarray, transform: dict, decoder: dict,
                            eps: float) -> tuple[np.ndarray, dict, dict]:
    """Gradients of masked_lm_head; z = x W_tᵀ + b_t and g = GELU(z) are recomputed from x:

        ∂h, ∂E, ∂b = dense_backward(∂logits);  ∂g = LayerNorm backward;  ∂z = GELU backward;  ∂x = ∂z W_t

    dlogits [..., V], x [..., H] -> (dx [..., H], transform gradients {dense, LayerNorm},
    decoder gradients {weight [V, H], bias [V]}). With tied weights, ∂E adds to the word embeddings'.
    """
    z = dense(x, **transform["dense"])
    g = gelu(z)
    h = layer_norm(g, **transform["LayerNorm"], eps=eps)
    dh, d_weight, d_bias = dense_backward(dlogits, h, decoder["weight"])
    dg, dgamma, dbeta = layer_norm_backward(dh, g, transform["LayerNorm"]["weight"], eps)
    dx, dw_t, db_t = dense_backward(gelu_backward(dg, z), x, transform["dense"]["weight"])
    transform_grads = {"dense": {"weight": dw_t, "bias": db_t}, "LayerNorm": {"weight": dgamma, "bias": dbeta}}
    return dx, transform_grads, {"weight": d_weight, "bias": d_bias}
