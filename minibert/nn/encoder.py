"""The backward pass of one encoder layer (the layer itself is written out in nn.bert)."""

import numpy as np

from .attention import self_attention, self_attention_backward
from .dropout import dropout as drop
from .feedforward import feed_forward, feed_forward_backward
from .layernorm import layer_norm, layer_norm_backward
from .linear import dense, dense_backward


def encoder_layer_backward(
    dy: np.ndarray, x: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict, output: dict,
    num_heads: int, eps: float, dropout: dict | None = None,
) -> tuple[np.ndarray, dict]:
    """Gradients of a layer's output y (a layer of nn.bert). The forward's intermediates are recomputed from x
    (with the forward's dropout masks).

    Forward: u = x + dropout(context W_oᵀ + b_o), a = LayerNorm(u), v = a + dropout(FFN(a)),
    y = LayerNorm(v). Backward, in reverse: through LayerNorm(v); the residual sends ∂v to a, and ∂v ⊙ M
    goes through the FFN; through LayerNorm(u); the residual sends ∂u to x, and ∂u ⊙ M goes through the
    projection and the attention.
    dy, x [B, S, H] -> (dx [B, S, H], gradients nested like the layer's weights)
    """
    masks = dropout or {}
    context, _ = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads,
                                dropout_mask=masks.get("attention.self.dropout"))
    u = drop(dense(context, **attention["output"]["dense"]), masks.get("attention.output.dropout")) + x
    a = layer_norm(u, **attention["output"]["LayerNorm"], eps=eps)
    v = drop(feed_forward(a, intermediate["dense"], output["dense"]), masks.get("output.dropout")) + a

    dv, dgamma2, dbeta2 = layer_norm_backward(dy, v, output["LayerNorm"]["weight"], eps)
    da, d_intermediate, d_output = feed_forward_backward(drop(dv, masks.get("output.dropout")), a,
                                                         intermediate["dense"], output["dense"])
    da += dv  # the residual around the FFN
    du, dgamma1, dbeta1 = layer_norm_backward(da, u, attention["output"]["LayerNorm"]["weight"], eps)
    dcontext, dw_o, db_o = dense_backward(drop(du, masks.get("attention.output.dropout")), context,
                                          attention["output"]["dense"]["weight"])
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
