"""The input layer: word + position + token-type embeddings, then LayerNorm."""

import numpy as np

from .layernorm import layer_norm


def embeddings(
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    position_ids: np.ndarray,
    word_embeddings: dict,
    position_embeddings: dict,
    token_type_embeddings: dict,
    LayerNorm: dict,
    eps: float,
) -> np.ndarray:
    """e = LayerNorm(E_word[ids] + E_type[token_type_ids] + E_pos[position_ids]).

    input_ids, token_type_ids [B, S]; position_ids [B, S] or [1, S]; tables [vocab | types | positions, H]
    -> [B, S, H]
    """
    # The sum is taken in transformers' order, (word + type) + position, so fp32 rounding agrees.
    x = word_embeddings["weight"][input_ids] + token_type_embeddings["weight"][token_type_ids]  # [B, S] -> [B, S, H]
    x = x + position_embeddings["weight"][position_ids]
    return layer_norm(x, **LayerNorm, eps=eps)
