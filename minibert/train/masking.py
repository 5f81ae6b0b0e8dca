"""BERT's masked-language-model inputs: which tokens to predict and what the model sees in their place."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tokenizer import BertTokenizer


def mask_tokens(encoding: dict[str, Any], tokenizer: BertTokenizer, rng: np.random.Generator,
                probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Choose each real, non-special token with `probability`; of the chosen, 80% become [MASK], 10% a
    random vocabulary token and 10% stay as they are (Devlin et al., 2019; transformers'
    DataCollatorForLanguageModeling). The model is trained to predict the original token at each chosen
    position.

    encoding: input_ids [B, S] (and attention_mask [B, S], default all real) as the tokenizer returns them
    -> (masked input_ids [B, S], labels [B, S]: the original id where chosen, -100 elsewhere)
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"masking probability must lie in (0, 1), got {probability}")
    ids = np.asarray(encoding["input_ids"])
    real = np.asarray(encoding.get("attention_mask", np.ones_like(ids))) == 1
    candidates = real & ~np.isin(ids, tokenizer.all_special_ids)
    chosen = candidates & (rng.random(ids.shape) < probability)
    labels = np.where(chosen, ids, -100)
    draw = rng.random(ids.shape)
    masked = ids.copy()
    masked[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    replaced = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[replaced] = rng.integers(0, tokenizer.vocab_size, int(replaced.sum()))
    return masked, labels
