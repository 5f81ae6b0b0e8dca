"""Multi-head scaled dot-product self-attention with BERT's additive padding mask."""

import numpy as np

from .dropout import dropout
from .linear import dense, dense_backward
from .quantize import attention_int8


def padding_mask_bias(attention_mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Turn a 1/0 token mask into the bias added to attention scores.

    attention_mask [B, S] (1 = token, 0 = padding) -> [B, 1, 1, S]: 0 where a key is a token and the
    dtype's most negative number where it is padding, so that exp() sends padding keys to exactly 0
    (transformers adds the same finfo.min).
    """
    bias = np.where(attention_mask == 1, 0.0, np.finfo(dtype).min).astype(dtype)
    return bias[:, None, None, :]  # [B, S] -> [B, 1, 1, S], broadcast over heads and queries


def split_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """[B, S, H] -> [B, A, S, d] with A = num_heads and d = H / A."""
    batch, seq, hidden = x.shape
    x = x.reshape(batch, seq, num_heads, hidden // num_heads)  # [B, S, H] -> [B, S, A, d]
    return x.transpose(0, 2, 1, 3)  # [B, S, A, d] -> [B, A, S, d]


def merge_heads(x: np.ndarray) -> np.ndarray:
    """[B, A, S, d] -> [B, S, H], the inverse of split_heads."""
    batch, heads, seq, head_size = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * head_size)  # [B, A, S, d] -> [B, S, H]


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax(x)_j = exp(x_j - max x) / Σ_k exp(x_k - max x) over the last axis (max shifted out for range)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def self_attention(
    x: np.ndarray, mask_bias: np.ndarray, query: dict, key: dict, value: dict, num_heads: int,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Attention(Q, K, V) = dropout(softmax(Q Kᵀ / √d + mask)) V, computed per head, heads concatenated.

    x [B, S, H], mask_bias [B, 1, 1, S], dropout_mask [B, A, S, S] (training) or None
    -> (context [B, S, H], probabilities before dropout [B, A, S, S])
    """
    q = split_heads(dense(x, **query), num_heads)  # [B, S, H] -> [B, A, S, d]
    k = split_heads(dense(x, **key), num_heads)
    v = split_heads(dense(x, **value), num_heads)
    if "weight_scale" in query:  # an int8 model: both products in integers too
        context, probs = attention_int8(q, k, v, mask_bias[:, 0, 0, :] == 0)  # [B, A, S, d], [B, A, S, S]
        return merge_heads(context), probs
    head_size = q.shape[-1]
    scores = (q @ k.transpose(0, 1, 3, 2)) * head_size**-0.5 + mask_bias  # [B, A, S, d] @ [B, A, d, S] -> [B, A, S, S]
    probs = softmax(scores)
    context = merge_heads(dropout(probs, dropout_mask) @ v)  # [B, A, S, S] @ [B, A, S, d] -> [B, A, S, d] -> [B, S, H]
    return context, probs


def softmax_backward(dp: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Gradient through p = softmax(s) over the last axis:  ∂s = p ⊙ (∂p - Σ_j ∂p_j p_j)."""
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))


def self_attention_backward(
    dcontext: np.ndarray, x: np.ndarray, mask_bias: np.ndarray, query: dict, key: dict, value: dict, num_heads: int,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Gradients of self_attention's context. Q, K, V and the probabilities P are recomputed from x.

    With S = Q Kᵀ / √d + mask, P = softmax(S), P' = P ⊙ M (dropout; M = 1 without), C = P' V (per head):
        ∂V = P'ᵀ ∂C,  ∂P = (∂C Vᵀ) ⊙ M,  ∂S = softmax_backward(∂P, P),  ∂Q = ∂S K / √d,  ∂K = ∂Sᵀ Q / √d
    then back through the three projections. dcontext, x [B, S, H] -> (dx [B, S, H], {query, key, value}
    gradients with the weights' names).
    """
    q = split_heads(dense(x, **query), num_heads)  # [B, A, S, d]
    k = split_heads(dense(x, **key), num_heads)
    v = split_heads(dense(x, **value), num_heads)
    scale = q.shape[-1] ** -0.5
    p = softmax((q @ k.transpose(0, 1, 3, 2)) * scale + mask_bias)  # [B, A, S, S]
    dc = split_heads(dcontext, num_heads)  # [B, S, H] -> [B, A, S, d]
    dv = dropout(p, dropout_mask).transpose(0, 1, 3, 2) @ dc
    ds = softmax_backward(dropout(dc @ v.transpose(0, 1, 3, 2), dropout_mask), p)
    dq = (ds @ k) * scale
    dk = (ds.transpose(0, 1, 3, 2) @ q) * scale
    dx = np.zeros_like(x)
    grads = {}
    for name, weights, d in (("query", query, dq), ("key", key, dk), ("value", value, dv)):
        dxi, dw, db = dense_backward(merge_heads(d), x, weights["weight"])
        dx += dxi
        grads[name] = {"weight": dw, "bias": db}
    return dx, grads
