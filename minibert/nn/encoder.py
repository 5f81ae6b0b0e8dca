"""The encoder: a stack of post-LayerNorm transformer layers."""

import numpy as np

from .attention import self_attention, self_attention_backward
from .feedforward import feed_forward, feed_forward_backward
from .layernorm import layer_norm, layer_norm_backward
from .linear import dense, dense_backward


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


def encoder_layer_backward(
    dy: np.ndarray, x: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict, output: dict,
    num_heads: int, eps: float,
) -> tuple[np.ndarray, dict]:
    """Gradients of encoder_layer's output y. The forward's intermediates are recomputed from x.

    Forward: u = x + context W_oᵀ + b_o, a = LayerNorm(u), v = a + FFN(a), y = LayerNorm(v). Backward, in
    reverse: through LayerNorm(v); the residual sends ∂v to a and through the FFN; through LayerNorm(u);
    the residual sends ∂u to x and through the projection and the attention.
    dy, x [B, S, H] -> (dx [B, S, H], gradients nested like the layer's weights)
    """
    context, _ = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads)
    u = dense(context, **attention["output"]["dense"]) + x
    a = layer_norm(u, **attention["output"]["LayerNorm"], eps=eps)
    v = feed_forward(a, intermediate["dense"], output["dense"]) + a

    dv, dgamma2, dbeta2 = layer_norm_backward(dy, v, output["LayerNorm"]["weight"], eps)
    da, d_intermediate, d_output = feed_forward_backward(dv, a, intermediate["dense"], output["dense"])
    da += dv  # the residual around the FFN
    du, dgamma1, dbeta1 = layer_norm_backward(da, u, attention["output"]["LayerNorm"]["weight"], eps)
    dcontext, dw_o, db_o = dense_backward(du, context, attention["output"]["dense"]["weight"])
    dx, d_self = self_attention_backward(dcontext, x, mask_bias, **attention["self"], num_heads=num_heads)
    dx += du  # the residual around the attention
    grads = {
        "attention": {"self": d_self, "output": {"dense": {"weight": dw_o, "bias": db_o},
                                                 "LayerNorm": {"weight": dgamma1, "bias": dbeta1}}},
        "intermediate": {"dense": d_intermediate},
        "output": {"dense": d_output, "LayerNorm": {"weight": dgamma2, "bias": dbeta2}},
    }
    return dx, grads
