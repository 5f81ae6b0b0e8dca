"""One forward pass, step by step: the tensors of the reference path (nn.bert), named, in order.

For learners (``minibert trace``): the embedding lookups and their normalised sum, then per layer its
attention probabilities and its output, then the pooled vector. The tensors are nn.bert's own outputs, so
this view cannot drift from the model.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import nn
from ..inputs import check_inputs
from ..models import BertModel


def trace(model: BertModel, input_ids, attention_mask=None, token_type_ids=None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, tensor) for each step of the reference forward pass of one batch."""
    c, w = model.config, model.weights
    input_ids, attention_mask, token_type_ids, position_ids, _ = check_inputs(c, input_ids, attention_mask,
                                                                              token_type_ids, None)
    e = w["embeddings"]
    yield "embeddings.word", e["word_embeddings"]["weight"][input_ids]  # [B, S, H]
    yield "embeddings.token_type", e["token_type_embeddings"]["weight"][token_type_ids]
    yield "embeddings.position", e["position_embeddings"]["weight"][position_ids]
    hidden_states, attentions, pooled = nn.bert(input_ids, attention_mask, token_type_ids, position_ids, **w,
                                                num_heads=c.num_attention_heads, eps=c.layer_norm_eps)
    yield "embeddings.output (LayerNorm of the sum)", hidden_states[0]
    for i, (probs, x) in enumerate(zip(attentions, hidden_states[1:])):
        yield f"layer.{i}.attention.probabilities", probs  # [B, A, S, S]
        yield f"layer.{i}.output (LayerNorm(a + FFN))", x
    if pooled is not None:
        yield "pooler_output", pooled
