"""The encoder: a stack of post-LayerNorm transformer layers."""

import numpy as np

from .attention import self_attention, self_attention_backward
from .dropout import dropout as drop
from .feedforward import feed_forward, feed_forward_backward
from .layernorm import layer_norm, layer_norm_backward
from .linear import dense, dense_backward


def encoder_layer(
    x: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict, output: dict,
    num_heads: int, eps: float, dropout: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One BERT layer, residuals added before each LayerNorm (post-LN):

        a = LayerNorm(x + dropout(Attention(x) W_oᵀ + b_o))
        y = LayerNorm(a + dropout(FFN(a)))

    x [B, S, H], mask_bias [B, 1, 1, S] -> (y [B, S, H], attention probabilities [B, A, S, S]).
    dropout (training): masks named after the layer's Dropout modules in transformers,
    {"attention.self.dropout": [B, A, S, S], "attention.output.dropout": [B, S, H], "output.dropout": [B, S, H]};
    None in evaluation.
    """
    masks = dropout or {}
    context, probs = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads, dropout_mask=masks.get("attention.self.dropout"))
    a = layer_norm(drop(dense(context, **attention["output"]["dense"]), masks.get("attention.output.dropout")) + x,
                   **attention["output"]["LayerNorm"], eps=eps)
    y = layer_norm(drop(feed_forward(a, intermediate["dense"], output["dense"]), masks.get("output.dropout")) + a,
                   **output["LayerNorm"], eps=eps)
    return y, probs


def encoder(
    x: np.ndarray, mask_bias: np.ndarray, layer: list[dict], num_heads: int, eps: float,
    dropout: list[dict] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the layers in order.

    x [B, S, H] -> (hidden states: [x, layer 1 output, ..., layer L output], each [B, S, H];
                    attention probabilities: L arrays [B, A, S, S])
    dropout (training): each layer's masks (see encoder_layer); None in evaluation.
    """
    hidden_states, attentions = [x], []
    for weights, masks in zip(layer, dropout or [None] * len(layer)):
        x, probs = encoder_layer(x, mask_bias, **weights, num_heads=num_heads, eps=eps, dropout=masks)
        hidden_states.append(x)
        attentions.append(probs)
    return hidden_states, attentions


def encoder_layer_backward(
    dy: np.ndarray, x: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict, output: dict,
    num_heads: int, eps: float, dropout: dict | None = None,
) -> tuple[np.ndarray, dict]:
    """Gradients of encoder_layer's output y. The forward's intermediates are recomputed from x (with the
    forward's dropout masks).

    Forward: u = x + dropout(context W_oᵀ + b_o), a = LayerNorm(u), v = a + dropout(FFN(a)),
    y = LayerNorm(v). Backward, in reverse: through LayerNorm(v); the residual sends ∂v to a, and ∂v ⊙ M
    goes through the FFN; through LayerNorm(u); the residual sends ∂u to x, and ∂u ⊙ M goes through the
    projection and the attention.
    dy, x [B, S, H] -> (dx [B, S, H], gradients nested like the layer's weights)
    """
    masks = dropout or {}
    context, _ = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads, dropout_mask=masks.get("attention.self.dropout"))
    u = drop(dense(context, **attention["output"]["dense"]), masks.get("attention.output.dropout")) + x
    a = layer_norm(u, **attention["output"]["LayerNorm"], eps=eps)
    v = drop(feed_forward(a, intermediate["dense"], output["dense"]), masks.get("output.dropout")) + a

    dv, dgamma2, dbeta2 = layer_norm_backward(dy, v, output["LayerNorm"]["weight"], eps)
    da, d_intermediate, d_output = feed_forward_backward(drop(dv, masks.get("output.dropout")), a, intermediate["dense"], output["dense"])
    da += dv  # the residual around the FFN
    du, dgamma1, dbeta1 = layer_norm_backward(da, u, attention["output"]["LayerNorm"]["weight"], eps)
    dcontext, dw_o, db_o = dense_backward(drop(du, masks.get("attention.output.dropout")), context, attention["output"]["dense"]["weight"])
    dx, d_self = self_attention_backward(dcontext, x, mask_bias, **attention["self"], num_heads=num_heads,
                                         dropout_mask=masks.get("attention.self.dropout"))
    dx += du  # the residual around the attention
    grads = {
        "attention": {"self": d_self, "output": {"dense": {"weight": dw_o, "bias": db_o},
                                                 "LayerNorm": {"weight": dgamma1, "bias": dbeta1}}},
        "intermediate": {"dense": d_intermediate},
        "output": {"dense": d_output, "LayerNorm": {"weight": dgamma2, "bias": dbeta2}},
    }
    return dx, grads
