"""BertModel: the checkpoint's parameters and the wiring of the reference blocks, top to bottom."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import nn
from .config import BertConfig
from .hub import model_directory
from .weights import bert_weights, read_weights, unflatten, weights_file


@dataclass
class BertModelOutput:
    """What BertModel returns; attribute and key access, as transformers' ModelOutput.

    last_hidden_state [B, S, H]; pooler_output [B, H] or None when the checkpoint has no pooler;
    hidden_states: L+1 arrays [B, S, H] (embeddings, then each layer) when asked, else None;
    attentions: L arrays [B, A, S, S] when asked, else None.
    """

    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class BertModel:
    """The BERT encoder (embeddings, L transformer layers, optional pooler) in NumPy.

    ``weights`` maps Hugging Face names to arrays (see ``minibert.weights.bert_shapes``); it is
    checked against ``config`` and cast to ``dtype`` (float32 or float64).
    """

    def __init__(self, config: BertConfig, weights: dict[str, np.ndarray], dtype: Any = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.config = config
        self.weights = unflatten(bert_weights(weights, config, self.dtype))

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, dtype: Any = np.float32, revision: str | None = None,
        local_files_only: bool = False, token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
    ) -> BertModel:
        """Load config.json and the weights (model.safetensors, else pytorch_model.bin, read without torch)
        from a local directory, a Hugging Face cache folder, a hub id, or a miniature's name ("bert-mini")."""
        directory = model_directory(name_or_path, need=("config.json",), weights=True, revision=revision,
                                    local_files_only=local_files_only, token=token, cache_dir=cache_dir)
        config = BertConfig.from_json_file(directory / "config.json")
        return cls(config, read_weights(weights_file(directory)), dtype=dtype)

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertModelOutput:
        """Encode a batch of token ids.

        input_ids [B, S] (or [S], taken as a batch of one); attention_mask [B, S] of 1 (token) / 0
        (padding), default all 1; token_type_ids [B, S], default all 0; position_ids [B, S] or [S],
        default 0..S-1. Returns a BertModelOutput.
        """
        c = self.config
        input_ids = _token_array("input_ids", input_ids, upper=c.vocab_size)
        if input_ids.ndim == 1:
            input_ids = input_ids[None, :]  # [S] -> [1, S]
        if input_ids.ndim != 2 or input_ids.size == 0:
            raise ValueError(f"input_ids must be a non-empty [batch, seq] array, got shape {input_ids.shape}")
        batch, seq = input_ids.shape
        if seq > c.max_position_embeddings:
            raise ValueError(f"sequence length {seq} exceeds max_position_embeddings ({c.max_position_embeddings})")
        if attention_mask is not None and np.asarray(attention_mask).dtype == bool:
            attention_mask = np.asarray(attention_mask, dtype=np.int64)
        attention_mask = _like_ids("attention_mask", attention_mask, input_ids, upper=2, default=1)
        token_type_ids = _like_ids("token_type_ids", token_type_ids, input_ids, upper=c.type_vocab_size, default=0)
        if position_ids is None:
            position_ids = np.arange(seq)[None, :]  # [1, S], broadcast over the batch
        else:
            position_ids = _like_ids("position_ids", position_ids, input_ids, upper=c.max_position_embeddings)

        w = self.weights
        x = nn.embeddings(input_ids, token_type_ids, position_ids, **w["embeddings"], eps=c.layer_norm_eps)  # [B, S] -> [B, S, H]
        mask_bias = nn.padding_mask_bias(attention_mask, self.dtype)  # [B, S] -> [B, 1, 1, S]
        hidden_states, attentions = nn.encoder(x, mask_bias, w["encoder"]["layer"], c.num_attention_heads, c.layer_norm_eps)
        last = hidden_states[-1]
        return BertModelOutput(
            last_hidden_state=last,
            pooler_output=nn.pooler(last, **w["pooler"]) if "pooler" in w else None,  # [B, S, H] -> [B, H]
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


def _token_array(name: str, values: Any, upper: int) -> np.ndarray:
    """values as an int64 array, checked to lie in [0, upper)."""
    try:
        array = np.asarray(values)  # NumPy raises ValueError on ragged nested lists, or makes an object array
        if array.dtype == object:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} must be a rectangular array of integers (ragged lists need padding)") from None
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    bad = np.argwhere((array < 0) | (array >= upper))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} holds {int(array[where])} at position {list(where)}; values must lie in [0, {upper})"
            + (f" ({len(bad)} bad values)" if len(bad) > 1 else "")
        )
    return array


def _like_ids(name: str, values: Any, input_ids: np.ndarray, upper: int, default: int | None = None) -> np.ndarray:
    """An optional per-token input, checked to have input_ids' shape ([S] is taken as a batch of one)."""
    if values is None:
        return np.full(input_ids.shape, default, dtype=np.int64)
    array = _token_array(name, values, upper)
    if array.ndim == 1:
        array = array[None, :]
    if array.shape != input_ids.shape:
        raise ValueError(f"{name} has shape {array.shape}, but input_ids has shape {input_ids.shape}")
    return array
