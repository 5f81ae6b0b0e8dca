"""The fused training path: the encoder's forward keeping what its backward needs, and that backward.

The reference backward passes (minibert/nn) recompute their forward intermediates from each block's input,
which is clear but runs each layer's GEMMs up to three times, and the reference computes on padding. Here:

- tokens are packed ([T, H], T = real tokens of the batch): the dense layers, LayerNorms and GELU see no
  padding; attention alone runs on the padded [B, A, S, S] layout (scattered in, gathered out);
- the forward keeps Q, K, V, the attention probabilities, the LayerNorm inputs and the FFN activations, so
  a step is one forward (4 GEMMs + 2 batched attention GEMMs per layer) and one backward (8 + 4);
- Q, K and V come from one GEMM on the concatenated weights; GELU and its derivative run in Numba kernels;
  the rest reuses minibert/nn.

Same contract as nn.bert's layers / nn.encoder_layer_backward (the same dropout masks); the
gradients are checked equal to the reference's and to torch's by tests/test_train.py. Padding positions
get zero hidden states and zero gradient (their outputs never reach a loss over real positions).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from . import kernels
from .encoder import scatter


def encoder_forward(x: np.ndarray, attention_mask: np.ndarray, layers: list[dict], num_heads: int, eps: float,
                    dropout: list[dict]) -> tuple[np.ndarray, dict]:
    """The encoder's output and the cache encoder_backward takes.

    x [B, S, H] (the embeddings), attention_mask [B, S] of 1/0 (any pattern), layers: the layers' weights,
    dropout: per layer its masks, named as in nn.bert without the layer's prefix (empty dicts: none)
    -> (y [B, S, H], cache)
    """
    real = attention_mask.astype(bool)
    mask_bias = nn.padding_mask_bias(attention_mask, x.dtype)  # [B, S] -> [B, 1, 1, S]
    h = x[real]  # [B, S, H] -> [T, H]
    caches = []
    for weights, masks in zip(layers, dropout):
        h, cache = layer_forward(h, real, mask_bias, **weights, num_heads=num_heads, eps=eps,
                                 dropout=pack_masks(masks, real))
        caches.append(cache)
    return scatter(h, real, real.shape), {"real": real, "layers": caches}


def encoder_backward(dy: np.ndarray, cache: dict, layers: list[dict], eps: float,
                     dropout: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """Gradients of encoder_forward.  dy [B, S, H] -> (dx [B, S, H], per layer gradients nested like its weights)"""
    real = cache["real"]
    dh = dy[real]  # [B, S, H] -> [T, H]
    grads = [None] * len(layers)
    for i in reversed(range(len(layers))):
        dh, grads[i] = layer_backward(dh, cache["layers"][i], real, **layers[i], eps=eps,
                                      dropout=pack_masks(dropout[i], real))
    return scatter(dh, real, real.shape), grads


def layer_forward(x: np.ndarray, real: np.ndarray, mask_bias: np.ndarray, attention: dict, intermediate: dict,
                  output: dict, num_heads: int, eps: float, dropout: dict) -> tuple[np.ndarray, dict]:
    """One layer of nn.bert on packed tokens.  x [T, H], real [B, S] bool -> (y [T, H], cache)"""
    (B, S), H = real.shape, x.shape[1]
    d = H // num_heads
    projections = [attention["self"][name] for name in ("query", "key", "value")]
    w_qkv = np.concatenate([p["weight"] for p in projections])  # 3 × [H, H] -> [3H, H]
    # [T, H] -> [T, 3H] -> [B, S, 3H]
    qkv = scatter(x @ w_qkv.T + np.concatenate([p["bias"] for p in projections]), real, real.shape)
    heads = qkv.reshape(B, S, 3, num_heads, d).transpose(2, 0, 3, 1, 4)  # -> [3, B, A, S, d]
    q, k, v = heads[0], heads[1], heads[2]
    p = nn.softmax((q @ k.transpose(0, 1, 3, 2)) * d**-0.5 + mask_bias)  # [B, A, S, d] @ [B, A, d, S] -> [B, A, S, S]
    p_dropped = nn.dropout(p, dropout.get("attention.self.dropout"))
    context = (p_dropped @ v).transpose(0, 2, 1, 3)[real].reshape(-1, H)  # [B, A, S, d] -> [B, S, A, d] -> [T, H]
    u = nn.dropout(nn.dense(context, **attention["output"]["dense"]), dropout.get("attention.output.dropout")) + x
    a = nn.layer_norm(u, **attention["output"]["LayerNorm"], eps=eps)  # a = LayerNorm(x + dropout(ctx W_oᵀ + b_o))
    z = nn.dense(a, **intermediate["dense"])  # [T, H] -> [T, I]
    g = np.empty_like(z)
    kernels.run(kernels.for_dtype(z.dtype, "gelu_keep"), z.size, z, g)  # g = GELU(z)
    v_in = nn.dropout(nn.dense(g, **output["dense"]), dropout.get("output.dropout")) + a
    y = nn.layer_norm(v_in, **output["LayerNorm"], eps=eps)  # y = LayerNorm(a + dropout(g W_2ᵀ + b_2))
    cache = {"x": x, "w_qkv": w_qkv, "q": q, "k": k, "v": v, "p": p, "p_dropped": p_dropped, "context": context,
             "u": u, "a": a, "z": z, "g": g, "v_in": v_in}
    return y, cache


def layer_backward(dy: np.ndarray, cache: dict, real: np.ndarray, attention: dict, intermediate: dict, output: dict,
                   eps: float, dropout: dict) -> tuple[np.ndarray, dict]:
    """nn.encoder_layer_backward from layer_forward's cache.  dy [T, H] -> (dx [T, H], gradients)"""
    c = cache
    H = dy.shape[1]
    B, A, S, d = c["q"].shape
    dv_in, dgamma2, dbeta2 = nn.layer_norm_backward(dy, c["v_in"], output["LayerNorm"]["weight"], eps)
    dg, dw2, db2 = nn.dense_backward(nn.dropout(dv_in, dropout.get("output.dropout")), c["g"],
                                     output["dense"]["weight"])
    kernels.run(kernels.for_dtype(dg.dtype, "gelu_backward"), dg.size, dg, c["z"])  # ∂z = ∂g · GELU'(z), in place
    da, dw1, db1 = nn.dense_backward(dg, c["a"], intermediate["dense"]["weight"])
    da += dv_in  # the residual around the FFN
    du, dgamma1, dbeta1 = nn.layer_norm_backward(da, c["u"], attention["output"]["LayerNorm"]["weight"], eps)
    dcontext, dw_o, db_o = nn.dense_backward(nn.dropout(du, dropout.get("attention.output.dropout")), c["context"],
                                             attention["output"]["dense"]["weight"])
    # [T, H] -> [B, A, S, d], 0 at padding
    dc = scatter(dcontext, real, real.shape).reshape(B, S, A, d).transpose(0, 2, 1, 3)
    dqkv = np.empty((B, S, 3, A, d), dtype=dy.dtype)
    dheads = dqkv.transpose(2, 0, 3, 1, 4)  # a [3, B, A, S, d] view: ∂Q, ∂K, ∂V written in place
    dheads[2] = c["p_dropped"].transpose(0, 1, 3, 2) @ dc  # ∂V = P'ᵀ ∂C
    dp = nn.dropout(dc @ c["v"].transpose(0, 1, 3, 2), dropout.get("attention.self.dropout"))  # ∂P = (∂C Vᵀ) ⊙ M
    ds = nn.softmax_backward(dp, c["p"]) * d**-0.5
    dheads[0] = ds @ c["k"]  # ∂Q = ∂S K / √d
    dheads[1] = ds.transpose(0, 1, 3, 2) @ c["q"]  # ∂K = ∂Sᵀ Q / √d
    dqkv = dqkv[real].reshape(-1, 3 * H)  # [B, S, 3, A, d] -> [T, 3H]
    dx, dw_qkv, db_qkv = nn.dense_backward(dqkv, c["x"], c["w_qkv"])
    dx += du  # the residual around the attention
    d_self = {name: {"weight": dw_qkv[i * H:(i + 1) * H], "bias": db_qkv[i * H:(i + 1) * H]}
              for i, name in enumerate(("query", "key", "value"))}
    grads = {
        "attention": {"self": d_self, "output": {"dense": {"weight": dw_o, "bias": db_o},
                                                 "LayerNorm": {"weight": dgamma1, "bias": dbeta1}}},
        "intermediate": {"dense": {"weight": dw1, "bias": db1}},
        "output": {"dense": {"weight": dw2, "bias": db2}, "LayerNorm": {"weight": dgamma2, "bias": dbeta2}},
    }
    return dx, grads


def pack_masks(masks: dict, real: np.ndarray) -> dict:
    """A layer's dropout masks with the [B, S, H] ones packed to [T, H], like the activations here."""
    return {name: m if name == "attention.self.dropout" else m[real] for name, m in masks.items()}

