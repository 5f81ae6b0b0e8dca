"""The input layer: word + position + token-type embeddings, then LayerNorm."""

import numpy as np

from .layernorm import layer_norm, layer_norm_backward


def embeddings(
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    position_ids: np.ndarray,
    word_embeddings: dict,
    position_embeddings: dict,
    token_type_embeddings: dict,
    LayerNorm: dict,
    eps: float,
    inputs_embeds: np.ndarray | None = None,
) -> np.ndarray:
    """e = LayerNorm(E_word[ids] + E_type[token_type_ids] + E_pos[position_ids]).

    input_ids, token_type_ids [B, S]; position_ids [B, S] or [1, S]; tables [vocab | types | positions, H]
    -> [B, S, H]. inputs_embeds [B, S, H], when given, stands for E_word[ids] (input_ids is then None).
    """
    words = word_embeddings["weight"][input_ids] if inputs_embeds is None else inputs_embeds  # [B, S] -> [B, S, H]
    # The sum is taken in transformers' order, (word + type) + position, so fp32 rounding agrees.
    x = words + token_type_embeddings["weight"][token_type_ids]
    x = x + position_embeddings["weight"][position_ids]
    return layer_norm(x, **LayerNorm, eps=eps)


def embeddings_backward(
    dy: np.ndarray, input_ids: np.ndarray, token_type_ids: np.ndarray, position_ids: np.ndarray,
    word_embeddings: dict, position_embeddings: dict, token_type_embeddings: dict, LayerNorm: dict, eps: float,
    inputs_embeds: np.ndarray | None = None,
) -> dict:
    """Gradients of the embeddings: back through LayerNorm, then each token's gradient is added into the
    row of every table it was looked up from (a scatter-add: repeated ids accumulate).

    dy [B, S, H] -> gradients nested like the embedding weights. With inputs_embeds [B, S, H] (input_ids
    None), the sum's gradient is theirs, under "inputs_embeds" [B, S, H], and the word table's is zero.
    """
    words = word_embeddings["weight"][input_ids] if inputs_embeds is None else inputs_embeds
    x = words + token_type_embeddings["weight"][token_type_ids]
    x = x + position_embeddings["weight"][position_ids]
    dx, dgamma, dbeta = layer_norm_backward(dy, x, LayerNorm["weight"], eps)  # ∂(word + type + position)
    rows = dx.reshape(-1, dx.shape[-1])  # [B, S, H] -> [B·S, H]
    grads = {}
    for name, table, ids in (("word_embeddings", word_embeddings, input_ids),
                             ("token_type_embeddings", token_type_embeddings, token_type_ids),
                             ("position_embeddings", position_embeddings, np.broadcast_to(position_ids, dx.shape[:2]))):
        d = np.zeros_like(table["weight"])
        if ids is not None:  # the word table was not read when inputs_embeds stood in for it
            np.add.at(d, ids.reshape(-1), rows)  # ∂E[i] = Σ over tokens looked up at row i
        grads[name] = {"weight": d}
    if inputs_embeds is not None:
        grads["inputs_embeds"] = dx
    grads["LayerNorm"] = {"weight": dgamma, "bias": dbeta}
    return grads
