"""The readable reference: one small pure-NumPy function per BERT block.

Each function takes its weights as dicts whose names are the Hugging Face checkpoint names, so
``embeddings(ids, types, positions, **weights["embeddings"], eps=...)`` reads like the checkpoint.
"""

from .activations import gelu
from .attention import padding_mask_bias, self_attention, softmax
from .embeddings import embeddings
from .encoder import encoder, encoder_layer
from .feedforward import feed_forward
from .heads import masked_lm_head
from .layernorm import layer_norm
from .linear import dense
from .pooler import pooler

__all__ = [
    "dense", "embeddings", "encoder", "encoder_layer", "feed_forward", "gelu", "layer_norm",
    "masked_lm_head", "padding_mask_bias", "pooler", "self_attention", "softmax",
]
