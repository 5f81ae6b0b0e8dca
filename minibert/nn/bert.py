"""BERT's forward pass, top to bottom in one function: embeddings, the layers, the pooler."""

import numpy as np

from .attention import padding_mask_bias, self_attention
from .dropout import dropout as drop
from .embeddings import embeddings as embed
from .feedforward import feed_forward
from .layernorm import layer_norm
from .linear import dense
from .pooler import pooler as pool


def bert(
    input_ids: np.ndarray | None, attention_mask: np.ndarray, token_type_ids: np.ndarray, position_ids: np.ndarray,
    embeddings: dict, encoder: dict, pooler: dict | None = None, *, num_heads: int, eps: float,
    inputs_embeds: np.ndarray | None = None, dropout: dict | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]:
    """The encoder of BERT (post-LayerNorm transformer layers) on a batch, with the weights named as in a
    Hugging Face checkpoint: ``bert(ids, mask, types, positions, **model.weights, num_heads=A, eps=ε)``.

    input_ids, attention_mask (1 token, 0 padding), token_type_ids [B, S]; position_ids [B, S] or [1, S];
    inputs_embeds [B, S, H] in place of the word embeddings of input_ids (then None). dropout (training):
    masks named after transformers' Dropout modules ("embeddings.dropout", "encoder.layer.0.output.dropout",
    ...); None in evaluation.
    -> (hidden states: the embeddings and each layer's output, L + 1 arrays [B, S, H];
        attention probabilities before dropout: L arrays [B, A, S, S]; pooled [CLS] vector [B, H] or None)
    """
    masks = dropout or {}
    x = embed(input_ids, token_type_ids, position_ids, **embeddings, eps=eps, inputs_embeds=inputs_embeds)
    x = drop(x, masks.get("embeddings.dropout"))  # LayerNorm(E_word[ids] + E_type[types] + E_pos[positions]) [B, S, H]
    mask_bias = padding_mask_bias(attention_mask, x.dtype)  # [B, S] -> [B, 1, 1, S]: 0 at tokens, -inf at padding
    hidden_states, attentions = [x], []
    for i, layer in enumerate(encoder["layer"]):
        attention, name = layer["attention"], f"encoder.layer.{i}."  # name: the prefix of the layer's dropout masks
        context, probs = self_attention(x, mask_bias, **attention["self"], num_heads=num_heads,  # [B,S,H], [B,A,S,S]
                                        dropout_mask=masks.get(name + "attention.self.dropout"))
        projected = drop(dense(context, **attention["output"]["dense"]), masks.get(name + "attention.output.dropout"))
        a = layer_norm(projected + x, **attention["output"]["LayerNorm"], eps=eps)  # a = LayerNorm(x + ctx W_oᵀ + b_o)
        f = feed_forward(a, layer["intermediate"]["dense"], layer["output"]["dense"])  # [B, S, H] -> [B, S, I] -> same
        f = drop(f, masks.get(name + "output.dropout"))
        x = layer_norm(f + a, **layer["output"]["LayerNorm"], eps=eps)  # y = LayerNorm(a + GELU(a W₁ᵀ + b₁) W₂ᵀ + b₂)
        hidden_states.append(x)
        attentions.append(probs)
    pooled = pool(x, **pooler) if pooler is not None else None  # tanh(x[:, 0] Wᵀ + b): [B, S, H] -> [B, H]
    return hidden_states, attentions, pooled
