"""One forward pass, step by step: every intermediate tensor of the reference path, named, in order.

For learners (``minibert trace``): the steps are the reference blocks of minibert/nn taken apart one level
further (attention into Q, K, V, scores, probabilities and context), in the order BERT computes them.
tests/test_cli.py checks that the last step equals BertModel's output, so this view cannot drift from
the model.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import nn
from ..models import BertModel, check_inputs
from ..nn.attention import merge_heads, split_heads


def trace(model: BertModel, input_ids, attention_mask=None, token_type_ids=None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, tensor) for each step of the reference forward pass of one batch."""
    c, w = model.config, model.weights
    input_ids, attention_mask, token_type_ids, position_ids, _ = check_inputs(c, input_ids, attention_mask, token_type_ids, None)
    e = w["embeddings"]
    yield "embeddings.word", e["word_embeddings"]["weight"][input_ids]  # [B, S, H]
    yield "embeddings.token_type", e["token_type_embeddings"]["weight"][token_type_ids]
    yield "embeddings.position", e["position_embeddings"]["weight"][position_ids]
    x = nn.embeddings(input_ids, token_type_ids, position_ids, **e, eps=c.layer_norm_eps)
    yield "embeddings.output (LayerNorm of the sum)", x
    mask_bias = nn.padding_mask_bias(attention_mask, model.dtype)
    for i, layer in enumerate(w["encoder"]["layer"]):
        p = f"layer.{i}."
        attention = layer["attention"]
        q, k, v = (split_heads(nn.dense(x, **attention["self"][n]), c.num_attention_heads) for n in ("query", "key", "value"))
        yield p + "attention.query [B, A, S, d]", q
        yield p + "attention.key", k
        yield p + "attention.value", v
        scores = (q @ k.transpose(0, 1, 3, 2)) * q.shape[-1] ** -0.5 + mask_bias
        yield p + "attention.scores (QKᵀ/√d + mask)", scores
        probs = nn.softmax(scores)
        yield p + "attention.probabilities", probs
        context = merge_heads(probs @ v)
        yield p + "attention.context (heads merged)", context
        a = nn.layer_norm(nn.dense(context, **attention["output"]["dense"]) + x, **attention["output"]["LayerNorm"], eps=c.layer_norm_eps)
        yield p + "attention.output (LayerNorm(x + projection))", a
        h = nn.gelu(nn.dense(a, **layer["intermediate"]["dense"]))
        yield p + "ffn.intermediate (GELU)", h
        x = nn.layer_norm(nn.dense(h, **layer["output"]["dense"]) + a, **layer["output"]["LayerNorm"], eps=c.layer_norm_eps)
        yield p + "output (LayerNorm(a + FFN))", x
    if "pooler" in w:
        yield "pooler_output", nn.pooler(x, **w["pooler"])
