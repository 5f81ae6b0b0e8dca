"""The encoder: a stack of post-LayerNorm transformer layers."""

import numpy as np

from .attention import self_attention
from .feedforward import feed_forward
from .layernorm import layer_norm
from .linear import dense


def encoder_layer(
    x: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict, output: dict,
    num_heads: int, eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One BERT layer, residuals added before each LayerNorm (post-LN):

        a = LayerNorm(x + Attention(x) W_oᵀ + b_o)
        y = LayerNorm(a + FFN(a))

    x [B, S, H], mask_bias [B, 1, 1, S] -> (y [B, S, H], attention probabilities [B, A, S, S])
    """
    context, probs = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads)
    a = layer_norm(dense(context, **attention["output"]["dense"]) + x, **attention["output"]["LayerNorm"], eps=eps)
    y = layer_norm(feed_forward(a, intermediate["dense"], output["dense"]) + a, **output["LayerNorm"], eps=eps)
    return y, probs


def encoder(
    x: np.ndarray, mask_bias: np.ndarray, layer: list[dict], num_heads: int, eps: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the layers in order.

    x [B, S, H] -> (hidden states: [x, layer 1 output, ..., layer L output], each [B, S, H];
                    attention probabilities: L arrays [B, A, S, S])
    """
    hidden_states, attentions = [x], []
    for weights in layer:
        x, probs = encoder_layer(x, mask_bias, **weights, num_heads=num_heads, eps=eps)
        hidden_states.append(x)
        attentions.append(probs)
    return hidden_states, attentions
