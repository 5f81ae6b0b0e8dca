"""The readable reference: one small pure-NumPy function per BERT block, and its backward pass beside it;
bert.py is the whole forward pass in one function over the blocks.

Each function takes its weights as dicts whose names are the Hugging Face checkpoint names, so
``embeddings(ids, types, positions, **weights["embeddings"], eps=...)`` reads like the checkpoint.
"""

from .activations import gelu, gelu_backward
from .attention import padding_mask_bias, self_attention, self_attention_backward, softmax, softmax_backward
from .bert import bert
from .dropout import dropout, dropout_mask
from .embeddings import embeddings, embeddings_backward
from .encoder import encoder_layer_backward
from .feedforward import feed_forward, feed_forward_backward
from .heads import masked_lm_head, masked_lm_head_backward
from .layernorm import layer_norm, layer_norm_backward
from .linear import dense, dense_backward
from .pooler import pooler, pooler_backward
from .quantize import dense_int8, quantize_rows, quantize_weight

__all__ = [
    "bert", "dense", "dense_backward", "dense_int8", "dropout", "dropout_mask", "embeddings", "embeddings_backward",
    "encoder_layer_backward", "feed_forward", "feed_forward_backward", "gelu", "gelu_backward",
    "layer_norm", "layer_norm_backward", "masked_lm_head", "masked_lm_head_backward", "padding_mask_bias", "pooler",
    "pooler_backward", "quantize_rows", "quantize_weight", "self_attention", "self_attention_backward", "softmax",
    "softmax_backward",
]
