"""BertModel and the task-head classes: the checkpoint's parameters and the wiring of the reference blocks.

Names follow transformers: BertModel, BertForMaskedLM, BertForPreTraining, BertForNextSentencePrediction,
BertForSequenceClassification, BertForMultipleChoice, BertForTokenClassification, BertForQuestionAnswering; each loads
transformers checkpoints of its class by their keys and returns what transformers returns.
"""

from __future__ import annotations

import dataclasses
import functools
from functools import partial
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from . import nn
from .config import MAX_LABELS, MAX_SIZES, BertConfig
from .errors import ConfigError, WeightsError, check_positive_int
from .fast import FastEncoder, aligned, gemm
from .inputs import check_inputs, check_memory, flatten_choices
from .train.heads import (
    labels_on_padding, masked_lm_value_and_grad, per_choice, pooled_head_value_and_grad, pretraining_labels,
    sequence_loss, token_classifier_value_and_grad,
)
from .loading.hub import model_directory
from .loading.weights import (
    SCALE_SUFFIX, bert_weights, canonical_state, flatten, mlm_shapes, nsp_shapes, quantized_weight_names, read_weights,
    take, unflatten, weights_file,
)

QUANTIZE_MODES = ("int8",)
# Written into a quantized model's config.json: transformers refuses a quant_method it does not know, rather
# than loading int8 codes as if they were weights.
QUANTIZATION_CONFIG = {"quant_method": "minibert-int8",
                       "weights": "int8, symmetric, per output channel (X.weight_scale)",
                       "activations": "uint8, asymmetric, per token, at run time"}


class ModelOutput:
    """A model's outputs by attribute, key or index, as transformers' ModelOutput: the keys are the fields
    that are not None, in order, so out[0] is last_hidden_state (or logits) and out["hidden_states"] is a
    KeyError unless they were asked for."""

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, key) for key in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(self.values())

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()


@dataclass
class BertModelOutput(ModelOutput):
    """last_hidden_state [B, S, H]; pooler_output [B, H] or None when the checkpoint has no pooler;
    hidden_states: L+1 arrays [B, S, H] (embeddings, then each layer) when asked, else None;
    attentions: L arrays [B, A, S, S] when asked, else None."""

    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


class InferenceModel:
    """What BertModel and the head models share with transformers' models beyond their forward pass."""

    def __call__(self, *args: Any, return_dict: bool | None = None, **kwargs: Any) -> Any:
        """model(...) runs model.forward(...), as in transformers; return_dict=False gives its outputs as a
        tuple (the fields that are not None, in transformers' order); None: config.return_dict."""
        outputs = self.forward(*args, **kwargs)
        return outputs if (self.config.return_dict if return_dict is None else return_dict) else outputs.to_tuple()

    def eval(self) -> InferenceModel:
        """Dropout off: the default, as transformers' from_pretrained returns its models. Returns self."""
        return self.train(False)

    def train(self, mode: bool = True) -> InferenceModel:
        """Dropout on (train(False) is eval()), as in transformers: calls then drop activations with the
        config's probabilities (hidden_dropout_prob, attention_probs_dropout_prob, classifier_dropout), fresh
        masks from self.dropout_rng at each call, on the reference path. Gradients and optimizer steps are
        minibert.train's (value_and_grad, finetune, distill). Returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train takes true or false, got {mode!r}")
        self.training = mode
        return self

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write model.safetensors (state_dict()) and config.json (its architectures naming this class),
        loadable by this class and by transformers' class of the same name (verified, atomic write: see
        minibert.loading.convert)."""
        from .loading.convert import write_safetensors_atomically

        os.makedirs(directory, exist_ok=True)
        extra = {**self.config.extra, "architectures": [type(self).__name__]}
        extra.pop("quantization_config", None)
        if self.is_quantized:
            extra["quantization_config"] = QUANTIZATION_CONFIG
        dataclasses.replace(self.config, extra=extra).save_pretrained(directory)
        write_safetensors_atomically(self.checkpoint_state(), Path(directory) / "model.safetensors")

    def checkpoint_state(self) -> dict[str, np.ndarray]:
        """What save_pretrained writes: state_dict(), and whatever else transformers' checkpoints of the class hold."""
        return self.state_dict()

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """The number of parameters, a tied array counted once (as transformers counts them); an int8 model's
        scales are not counted. exclude_embeddings: without the word, position and token-type tables. (Every
        parameter is trainable: only_trainable changes nothing.)"""
        return sum(array.size for name, array in self.state_dict().items() if not name.endswith(SCALE_SUFFIX)
                   and not (exclude_embeddings and name.endswith("_embeddings.weight")))

    def get_input_embeddings(self) -> Embedding:
        """The word embeddings, as transformers' nn.Embedding: .weight is the model's own [vocab, hidden] array."""
        return Embedding(self.state_dict()[self.base_prefix + "embeddings.word_embeddings.weight"])

    def set_input_embeddings(self, value: Embedding | np.ndarray) -> None:
        """Copy new word embeddings (an Embedding or an array) of the same [vocab, hidden] shape
        into the model (the tied MLM decoder follows); a new vocabulary size is resize_token_embeddings' job."""
        weight = self.get_input_embeddings().weight
        new = np.asarray(value.weight if isinstance(value, Embedding) else value)
        if new.shape != weight.shape:
            raise ValueError(f"set_input_embeddings takes a {list(weight.shape)} table, got {list(new.shape)}; "
                             "to change the vocabulary size, use resize_token_embeddings")
        np.copyto(weight, new)  # in place: the fast path and a tied decoder read the same array

    @property
    def is_quantized(self) -> bool:
        """Whether the encoder's linear layers hold int8 weights (from quantize(), or an int8 checkpoint)."""
        return any(name.endswith(SCALE_SUFFIX) for name in self.state_dict())

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True, seed: int | None = None) -> np.ndarray:
        """Give the model `new_num_tokens` word embeddings (e.g. len(tokenizer) after tokenizer.add_tokens),
        rounded up to a multiple of pad_to_multiple_of; returns the new [vocab, hidden] array.

        As in transformers: existing rows are kept (or cut from the end), and config.vocab_size follows. New
        rows are drawn from N(mean, 1e-9 · covariance) of the old rows (mean_resizing; the mean itself when
        that covariance is not positive definite) or from N(0, initializer_range²). The MLM head follows: its
        decoder is the new array (an untied decoder's rows are resized the same way) and its bias gets 0 for
        the new tokens (an untied decoder's, drawn from N(mean, (1e-9 · std)²) of the old ones). seed: for
        the draws."""
        n = self.config.vocab_size if new_num_tokens is None else new_num_tokens
        check_positive_int("new_num_tokens", n)
        if pad_to_multiple_of is not None:
            check_positive_int("pad_to_multiple_of", pad_to_multiple_of)
            n = -(-n // pad_to_multiple_of) * pad_to_multiple_of  # round up
        if n > MAX_SIZES["vocab_size"]:  # the bound a config.json's vocab_size has
            raise ValueError(f"new_num_tokens would make {n} word embeddings, more than {MAX_SIZES['vocab_size']}")
        prefix = self.base_prefix
        state = dict(self.state_dict())
        if n != self.config.vocab_size:
            rng = np.random.default_rng(seed)
            std = self.config.initializer_range
            for name in (prefix + "embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"):
                if name in state:  # the decoder's weight, only when it is not tied
                    state[name] = resized_rows(state[name], n, mean_resizing, std, rng)
            if "cls.predictions.bias" in state:  # a tied decoder's bias: padded with 0, as transformers does
                state["cls.predictions.bias"] = resized_bias(state["cls.predictions.bias"], n, False, rng)
            if "cls.predictions.decoder.bias" in state:  # an untied decoder's: its new entries drawn as its rows
                state["cls.predictions.decoder.bias"] = resized_bias(state["cls.predictions.decoder.bias"], n,
                                                                     mean_resizing, rng)
            kind, arguments, *attributes = self.__reduce__()  # rebuilt, fast path included, from config + parameters
            resized = kind(dataclasses.replace(self.config, vocab_size=n), state, *arguments[2:])
            self.__dict__.update({**resized.__dict__, **(attributes[0] if attributes else {})})
        return self.state_dict()[prefix + "embeddings.word_embeddings.weight"]

    def __reduce__(self) -> tuple:
        """Copies (copy.deepcopy of the best model so far, pickling for a worker process) are built anew from
        config and parameters, so that a copy's fast path and parameters share memory as the original's do."""
        return type(self), (self.config, self.state_dict(), self.dtype)


@dataclass
class Embedding:
    """What get_input_embeddings() returns, as transformers' nn.Embedding: weight [num_embeddings, embedding_dim]."""

    weight: np.ndarray

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.weight.shape[1]


class BertModel(InferenceModel):
    """The BERT encoder (embeddings, L transformer layers, optional pooler) in NumPy.

    ``weights`` maps Hugging Face names to arrays (see ``minibert.loading.weights.bert_shapes``); it is checked
    against ``config`` and cast to ``dtype`` (float32 or float64). Task-head tensors in it are ignored.

    Calls run the fused fast path (``self.fast``, minibert/fast), an accelerator computing from the model's
    weights, unless attention maps are asked for, a row of the mask has no token, the pooler would read a
    padding position (a left-padded row), or ``use_fast`` is False (its default under NUMBA_DISABLE_JIT=1,
    Numba's debugging mode, in which the fast path's SIMD cannot run); then the readable reference blocks
    (minibert/nn) run. Both give the same numbers on real positions; at padding positions the fast path
    returns zeros (it computes nothing there) and the reference path what transformers computes. In training
    mode (train()) the reference path runs, with dropout.
    """

    base_prefix = ""  # where state_dict() names the encoder's parameters

    def __init__(self, config: BertConfig, weights: dict[str, np.ndarray], dtype: Any = np.float32,
                 add_pooling_layer: bool = True) -> None:
        self.dtype = _float_dtype(dtype)
        self.config = config
        self.weights = unflatten(column_major(bert_weights(weights, config, self.dtype, add_pooling_layer)))
        self.fast = FastEncoder(self.weights, config, self.dtype)
        self.use_fast = not numba.config.DISABLE_JIT
        self.training = False
        self.dropout_rng = np.random.default_rng()  # train mode's masks; seed it for reproducible draws

    def __reduce__(self) -> tuple:
        arguments = (self.config, self.state_dict(), self.dtype, "pooler" in self.weights)
        return type(self), arguments, {"use_fast": self.use_fast, "training": self.training,
                                       "dropout_rng": self.dropout_rng}

    def dropout(self, x: np.ndarray, p: float) -> np.ndarray:
        """x with dropout at probability p in training mode (a fresh mask from dropout_rng); x in evaluation."""
        return nn.dropout(x, nn.dropout_mask(self.dropout_rng, x.shape, p, self.dtype) if self.training else None)

    def bytes_per_token(self, seq: int, output_hidden_states: bool, output_attentions: bool) -> int:
        """Bytes a call holds per token at its peak, roughly: the outputs kept (one hidden state or all of them,
        attention maps) and one layer's working arrays (Q, K, V, a residual, the feed-forward's widening, one
        layer's maps)."""
        c = self.config
        kept = c.hidden_size * (c.num_hidden_layers + 1 if output_hidden_states else 1)
        kept += c.num_attention_heads * seq * c.num_hidden_layers if output_attentions else 0
        working = 5 * c.hidden_size + c.intermediate_size + c.num_attention_heads * seq
        return (kept + working) * self.dtype.itemsize

    def weights_changed(self) -> None:
        """Call after replacing arrays in self.weights by new ones: checks them as a checkpoint is checked,
        stores them as the model stores its weights (its dtype; dense weights column-major) and has the fast
        path take them up. Changes made in place (an optimizer step) need no call; in float32 the weights the
        fast path has packed are read-only until made writeable (see state_dict)."""
        state = flatten(self.weights)
        bert_weights(state, self.config, self.dtype, "pooler" in self.weights)  # raises WeightsError naming problems
        floats = {name: np.asarray(a, self.dtype) for name, a in state.items()
                  if a.dtype != np.int8 and not name.endswith(SCALE_SUFFIX)}
        for name, array in column_major(floats).items():  # arrays already stored so are kept, not copied
            *path, key = name.split(".")
            parent = functools.reduce(lambda node, k: node[int(k)] if isinstance(node, list) else node[k],
                                      path, self.weights)
            parent[key] = array
        self.fast.refresh()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter under transformers' BertModel names ("embeddings.word_embeddings.weight", ...).
        The arrays are the model's own: changing them in place changes the model, fast path included. In
        float32 the encoder's and the pooler's dense weights, once the fast path has packed them (at its
        first call), are read-only: set `flags.writeable = True` first (AdamW does), and the next call packs
        them again."""
        return flatten(self.weights)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, dtype: Any = np.float32, quantize: str | None = None,
                        **hub_options: Any) -> BertModel:
        """Load config.json and the weights (model.safetensors, else pytorch_model.bin, read without torch)
        from a local directory, a Hugging Face cache folder, a hub id, or a miniature's name ("bert-mini").
        quantize="int8": then quantize() (an int8 checkpoint is int8 either way). hub_options: revision,
        local_files_only, token, cache_dir."""
        check_quantize_mode(quantize)
        config, state = load_checkpoint(name_or_path, **hub_options)
        model = cls(config, state, dtype=dtype)
        return model.quantize(quantize) if quantize else model

    def quantize(self, mode: str = "int8") -> BertModel:
        """Turn the encoder's linear layers (Q, K, V, attention output, FFN in and out) into int8 ones, in
        place, and return the model: weights in int8 per output channel, activations quantized per token at
        each call (minibert/nn/quantize.py). Embeddings, LayerNorm, attention's own products, the pooler and
        task heads stay in floating point. A model already in int8 is returned unchanged."""
        check_quantize_mode(mode)
        if self.is_quantized:
            return self
        state = dict(self.state_dict())
        for name in quantized_weight_names(self.config):
            state[name], state[name + SCALE_SUFFIX] = nn.quantize_weight(state[name])
        self.weights = unflatten(column_major(bert_weights(state, self.config, self.dtype, "pooler" in self.weights)))
        self.fast = FastEncoder(self.weights, self.config, self.dtype)
        return self

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        inputs_embeds: Any = None,
    ) -> BertModelOutput:
        """Encode a batch of token ids.

        input_ids [B, S] (or [S], taken as a batch of one); attention_mask [B, S] of 1 (token) / 0
        (padding), default all 1; token_type_ids [B, S], default all 0; position_ids [B, S] or [S],
        default 0..S-1. inputs_embeds [B, S, H], instead of input_ids: vectors that take the place of the
        word embeddings (the reference path runs). output_hidden_states / output_attentions: None takes the
        config's. Returns a BertModelOutput.
        """
        c = self.config
        output_hidden_states = c.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = c.output_attentions if output_attentions is None else output_attentions
        input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = check_inputs(
            c, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, self.dtype)
        B, S = attention_mask.shape
        check_memory(self.bytes_per_token(S, output_hidden_states, output_attentions), (B, S), self.dtype)
        if self.use_fast and not output_attentions and inputs_embeds is None and not self.training:
            fast = self.fast(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states)
            if fast is not None:
                return BertModelOutput(*fast)
        masks = self.dropout_masks(B, S) if self.training else None
        hidden_states, attentions, pooled = nn.bert(
            input_ids, attention_mask, token_type_ids, position_ids, **self.weights, num_heads=c.num_attention_heads,
            eps=c.layer_norm_eps, inputs_embeds=inputs_embeds, dropout=masks)
        return BertModelOutput(
            last_hidden_state=hidden_states[-1],
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    def dropout_masks(self, batch: int, seq: int) -> dict[str, np.ndarray]:
        """Training mode's dropout masks for nn.bert, named and drawn in order as minibert.train.dropout_masks
        draws them."""
        c, rng, dtype = self.config, self.dropout_rng, self.dtype
        hidden, probabilities = (batch, seq, c.hidden_size), (batch, c.num_attention_heads, seq, seq)
        masks = {"embeddings.dropout": nn.dropout_mask(rng, hidden, c.hidden_dropout_prob, dtype)}
        for i in range(c.num_hidden_layers):
            masks[f"encoder.layer.{i}.attention.self.dropout"] = nn.dropout_mask(
                rng, probabilities, c.attention_probs_dropout_prob, dtype)
            masks[f"encoder.layer.{i}.attention.output.dropout"] = nn.dropout_mask(rng, hidden,
                                                                                   c.hidden_dropout_prob, dtype)
            masks[f"encoder.layer.{i}.output.dropout"] = nn.dropout_mask(rng, hidden, c.hidden_dropout_prob, dtype)
        return masks


def column_major(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's tensors with each float dense weight W [out, in] stored column-major and starting on a
    cache line (a copy when it is not), so that W.T, the [in, out] matrix a layer multiplies by (x W^T), is
    row-major, the layout BLAS and minibert's GEMM multiply fastest, with each of its rows starting on a
    line (fast/aligned.py). Embedding tables, 1-D tensors and int8 weights (whose kernels read rows) as
    given."""
    def stored(a: np.ndarray) -> np.ndarray:
        if a.flags.f_contiguous and aligned.is_aligned(a):
            return a
        copy = aligned.zeros(a.shape, a.dtype, order="F")
        copy[...] = a
        return copy

    return {name: stored(a) if a.ndim == 2 and a.dtype.kind == "f" and not name.startswith("embeddings.") else a
            for name, a in tensors.items()}


def check_quantize_mode(mode: str | None) -> None:
    if mode is not None and mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize={mode!r}: choose from {', '.join(map(repr, QUANTIZE_MODES))} (or None)")


def load_checkpoint(name_or_path: str | os.PathLike, **hub_options: Any) -> tuple[BertConfig, dict[str, np.ndarray]]:
    """config.json and every tensor of a model, from a directory, cache folder, hub id or miniature name."""
    return read_checkpoint(model_directory(name_or_path, need=("config.json",), weights=True, **hub_options))


def read_checkpoint(directory: Path) -> tuple[BertConfig, dict[str, np.ndarray]]:
    """config.json and every tensor of the model in a local directory (a name already resolved to it)."""
    return BertConfig.from_json_file(directory / "config.json"), read_weights(weights_file(directory))


# ---- task heads -----------------------------------------------------------------------------------------


@dataclass
class MaskedLMOutput(ModelOutput):
    logits: np.ndarray  # [B, S, V]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class BertForPreTrainingOutput(ModelOutput):
    prediction_logits: np.ndarray  # [B, S, V]
    seq_relationship_logits: np.ndarray  # [B, 2]: 0 = B follows A, 1 = B is random
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class NextSentencePredictorOutput(ModelOutput):
    logits: np.ndarray  # [B, 2]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    logits: np.ndarray  # [B, num_labels]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    logits: np.ndarray  # [B, C]: a score per choice
    hidden_states: tuple[np.ndarray, ...] | None = None  # [B·C, S, H] each: the choices flattened into the batch
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    logits: np.ndarray  # [B, S, num_labels]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    start_logits: np.ndarray  # [B, S]
    end_logits: np.ndarray  # [B, S]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


class BertHeadModel(InferenceModel):
    """A BertModel (``self.bert``) with a task head (``self.head``, Hugging Face names without the prefix).

    Subclasses say which head tensors they need (``head_shapes``), whether the encoder's pooler feeds the
    head, and whether a missing head is created fresh: task heads a checkpoint is fine-tuned into
    (classifier, qa_outputs) start from N(0, initializer_range²) weights and zero biases, with a warning,
    as in transformers; a missing pre-training head (MLM, NSP) is an error.
    """

    uses_pooler = False
    new_head_allowed = False
    base_prefix = "bert."

    def __init__(self, config: BertConfig, weights: dict[str, np.ndarray],
                 dtype: Any = np.float32, seed: int = 0) -> None:
        self.config = config
        self.bert = BertModel(config, weights, dtype, add_pooling_layer=self.uses_pooler)
        self.dtype = self.bert.dtype
        tensors = canonical_state(weights)
        shapes = self.head_shapes(config)
        if not self.new_head_allowed and not any(name.startswith("cls.") for name in tensors):
            heads = " and ".join(dict.fromkeys({"predictions": "masked-LM",
                                                "seq_relationship": "next-sentence"}[name.split(".")[1]]
                                               for name in shapes))
            raise WeightsError(f"this model has no {heads} head, which {type(self).__name__} needs (it "
                               "is a bare encoder or fine-tuned for another task); a pre-training checkpoint such "
                               "as bert-mini has it")
        tensors = self.tie_weights(tensors)
        self.untrained_head = self.new_head_allowed and not any(name in tensors for name in shapes)
        if self.untrained_head:  # its outputs mean nothing until it is fine-tuned
            tensors = {**tensors, **self.new_head(shapes, seed)}
        self.head = unflatten(take(tensors, shapes, self.dtype, type(self).__name__))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, dtype: Any = np.float32, seed: int = 0,
                        quantize: str | None = None, **options: Any):
        """As BertModel.from_pretrained. Classification heads also take num_labels, id2label and problem_type,
        which override config.json (for a new head on a pre-trained encoder)."""
        check_quantize_mode(quantize)
        overrides = {k: options.pop(k) for k in ("num_labels", "id2label", "problem_type") if k in options}
        config, state = load_checkpoint(name_or_path, **options)
        if overrides:
            config = with_labels(config, **overrides)
        model = cls(config, state, dtype=dtype, seed=seed)
        return model.quantize(quantize) if quantize else model

    def quantize(self, mode: str = "int8") -> BertHeadModel:
        """BertModel.quantize on the encoder (the head stays in floating point); returns the model."""
        self.bert.quantize(mode)
        return self

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter under transformers' names for this class ("bert.embeddings...", "classifier.weight").
        The arrays are the model's own: changing them in place changes the model, fast path included (the
        encoder's weights read-only while packed, see BertModel.state_dict)."""
        return {**flatten(self.bert.weights, "bert."), **flatten(self.head)}

    def tie_weights(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fill in head tensors a checkpoint may omit because they are tied to others (none by default)."""
        return tensors

    def new_head(self, shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        warnings.warn(f"{type(self).__name__}: the checkpoint has no {', '.join(shapes)}; they are newly initialised "
                      "(random), so the model's outputs mean nothing until it is fine-tuned (minibert finetune)",
                      stacklevel=_caller_level())
        std = self.config.initializer_range
        return {name: rng.normal(0.0, std, shape) if name.endswith("weight") else np.zeros(shape)
                for name, shape in shapes.items()}

    # Training (minibert.train.value_and_grad): a head that can be trained defines head_value_and_grad (its
    # forward, loss and backward on the encoder's output) and reads_padding; these defaults are the rest.
    takes_loss = False  # whether value_and_grad's loss= (a function of the logits) applies to this head

    def training_batch(self, encoding: dict[str, Any], loss: Any) -> tuple[dict[str, Any], Any]:
        """value_and_grad's inputs and loss, as the encoder and head_value_and_grad take them."""
        return encoding, loss

    def head_dropout_shapes(self, batch: int, seq: int) -> dict[str, tuple[tuple[int, ...], float]]:
        """The head's own Dropout modules: {name: (its mask's shape, p)}; none by default."""
        return {}

    def classifier_dropout_prob(self) -> float:
        """The classifier's dropout probability: classifier_dropout, else hidden_dropout_prob (as transformers')."""
        p = self.config.extra.get("classifier_dropout")
        return self.config.hidden_dropout_prob if p is None else p

    def encode(self, input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
               output_attentions, inputs_embeds) -> BertModelOutput:
        return self.bert.forward(input_ids, attention_mask, token_type_ids, position_ids,
                                 output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                                 inputs_embeds=inputs_embeds)

    # Training mode and its random masks are the encoder's, so that they are the same for both parts.
    training = property(lambda self: self.bert.training, lambda self, mode: setattr(self.bert, "training", mode))
    dropout_rng = property(lambda self: self.bert.dropout_rng, lambda self, rng: setattr(self.bert, "dropout_rng", rng))

    def classifier_dropout(self, x: np.ndarray) -> np.ndarray:
        """The classifier's input with its dropout in training mode (classifier_dropout, else hidden_dropout_prob),
        as transformers' classification heads apply it."""
        return self.bert.dropout(x, self.classifier_dropout_prob())

    def dense(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """A head's y = x Wᵀ + b (nn.dense): in inference through gemm.dense, which multiplies float32 on the
        fast path's GEMM, so that no BLAS call's threads spin on against the next forward."""
        return (gemm.dense if self.bert.use_fast and not self.training else nn.dense)(x, weight, bias)


class MaskedLMHeadModel(BertHeadModel):
    """A head model with the MLM head, whose decoder is tied as in transformers: the decoder weight *is* the
    word-embedding array (unless config.json says tie_word_embeddings=false) and its bias is saved as
    cls.predictions.bias, so state_dict() names each parameter once, as torch's named_parameters() does,
    and a training step on it updates both uses of a tied array."""

    def __init__(self, config: BertConfig, weights: dict[str, np.ndarray],
                 dtype: Any = np.float32, seed: int = 0) -> None:
        super().__init__(config, weights, dtype, seed)
        if tied_word_embeddings(config):
            self.head["cls"]["predictions"]["decoder"]["weight"] = (
                self.bert.weights["embeddings"]["word_embeddings"]["weight"])

    def tie_weights(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return tie_mlm_weights(tensors, self.config)

    def mlm_value_and_grad(self, x: np.ndarray, labels: Any) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """The MLM head's loss at the labelled positions of x [B, S, H] -> (loss, dx, grads by state_dict name;
        a tied decoder's under the word embeddings' name, which value_and_grad adds to theirs)."""
        tied = tied_word_embeddings(self.config)
        bias = "cls.predictions.bias" if tied else "cls.predictions.decoder.bias"  # as state_dict() names it
        value, dx, grads = masked_lm_value_and_grad(x, self.head["cls"]["predictions"], labels,
                                                    self.config.layer_norm_eps, bias)
        if tied:
            grads["bert.embeddings.word_embeddings.weight"] = grads.pop("cls.predictions.decoder.weight")
        return value, dx, grads

    def checkpoint_state(self) -> dict[str, np.ndarray]:
        """Untied, also cls.predictions.bias = the decoder's bias: transformers 5 keeps that name as a parameter
        of its own (unused), and transformers 4 reads the decoder's bias from it."""
        state = self.state_dict()
        if not tied_word_embeddings(self.config):
            state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
        return state

    def state_dict(self) -> dict[str, np.ndarray]:
        if not tied_word_embeddings(self.config):
            return super().state_dict()  # the decoder's own weight and bias, under their own names
        state = {}
        for name, array in super().state_dict().items():
            if name == "cls.predictions.decoder.weight":
                continue  # the same array as bert.embeddings.word_embeddings.weight
            state["cls.predictions.bias" if name == "cls.predictions.decoder.bias" else name] = array
        return state


class BertForMaskedLM(MaskedLMHeadModel):
    """BERT with its masked-language-model head: scores over the vocabulary for every position."""

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return mlm_shapes(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> MaskedLMOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        check_memory(self.config.vocab_size * self.dtype.itemsize, out.last_hidden_state.shape[:2], self.dtype,
                     "its scores over the vocabulary")
        logits = nn.masked_lm_head(out.last_hidden_state, **self.head["cls"]["predictions"],
                                   eps=self.config.layer_norm_eps)
        return MaskedLMOutput(logits, out.hidden_states, out.attentions)


    def reads_padding(self, attention_mask: np.ndarray, labels: Any) -> bool:
        return labels_on_padding(attention_mask, labels)

    def head_value_and_grad(self, x: np.ndarray, labels: Any, loss: Any = None, dropout: dict | None = None):
        """Cross-entropy at the labelled positions (labels [B, S], -100 elsewhere) on the last hidden state
        x [B, S, H] -> (loss, dx [B, S, H], the head's grads)."""
        return self.mlm_value_and_grad(x, labels)


class BertForNextSentencePrediction(BertHeadModel):
    """BERT with its next-sentence head: does text B follow text A? (logit 0: yes, 1: no)."""

    uses_pooler = True

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return nsp_shapes(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> NextSentencePredictorOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        logits = self.dense(out.pooler_output, **self.head["cls"]["seq_relationship"])  # [B, H] -> [B, 2]
        return NextSentencePredictorOutput(logits, out.hidden_states, out.attentions)


class BertForPreTraining(MaskedLMHeadModel):
    """BERT with both pre-training heads, as the Google miniature checkpoints are saved."""

    uses_pooler = True

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return {**mlm_shapes(config), **nsp_shapes(config)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> BertForPreTrainingOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        cls = self.head["cls"]
        check_memory(self.config.vocab_size * self.dtype.itemsize, out.last_hidden_state.shape[:2], self.dtype,
                     "its scores over the vocabulary")
        return BertForPreTrainingOutput(
            prediction_logits=nn.masked_lm_head(out.last_hidden_state, **cls["predictions"],
                                                eps=self.config.layer_norm_eps),
            seq_relationship_logits=self.dense(out.pooler_output, **cls["seq_relationship"]),  # [B, H] -> [B, 2]
            hidden_states=out.hidden_states, attentions=out.attentions,
        )


    def reads_padding(self, attention_mask: np.ndarray, labels: Any) -> bool:
        return bool((attention_mask[:, 0] == 0).any()) or labels_on_padding(attention_mask,
                                                                            pretraining_labels(labels)[0])

    def head_value_and_grad(self, x: np.ndarray, labels: Any, loss: Any = None, dropout: dict | None = None):
        """L = MLM cross-entropy + next-sentence cross-entropy (on the pooled [CLS]); labels: (MLM labels
        [B, S], next-sentence labels [B]). x [B, S, H] -> (loss, dx [B, S, H], grads of the pooler and both heads)."""
        mlm_labels, nsp_labels = pretraining_labels(labels)
        mlm_loss, dx, grads = self.mlm_value_and_grad(x, mlm_labels)
        nsp_loss, dx_pooler, nsp_grads = pooled_head_value_and_grad(  # 2 logits: B follows A, or not
            x, self.bert.weights["pooler"]["dense"], self.head["cls"]["seq_relationship"], "cls.seq_relationship",
            nsp_labels, partial(sequence_loss, problem_type="single_label_classification"))
        return mlm_loss + nsp_loss, dx + dx_pooler, {**grads, **nsp_grads}


class PooledClassifier(BertHeadModel):
    """A classifier on the pooled [CLS] vector (sequence classification, multiple choice), trained on
    loss(logits, labels): sequence_loss for config.problem_type unless value_and_grad is given another."""

    uses_pooler = True
    new_head_allowed = True
    takes_loss = True

    def head_dropout_shapes(self, batch: int, seq: int) -> dict[str, tuple[tuple[int, ...], float]]:
        return {"dropout": ((batch, self.config.hidden_size), self.classifier_dropout_prob())}  # on the pooled vector

    def reads_padding(self, attention_mask: np.ndarray, labels: Any) -> bool:
        return bool((attention_mask[:, 0] == 0).any())  # the pooler reads position 0

    def head_value_and_grad(self, x: np.ndarray, labels: Any, loss: Any = None, dropout: dict | None = None):
        """Pooler, dropout and classifier on the last hidden state x [B, S, H] -> (loss, dx [B, S, H], grads)."""
        loss = loss or partial(sequence_loss, problem_type=self.config.problem_type)
        return pooled_head_value_and_grad(x, self.bert.weights["pooler"]["dense"], self.head["classifier"],
                                          "classifier", labels, loss, (dropout or {}).get("dropout"))


class BertForSequenceClassification(PooledClassifier):
    """BERT with a classifier on the pooled [CLS] vector: single-label, multi-label or regression, as
    config.problem_type says; labels in config.id2label."""

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return {"classifier.weight": (config.num_labels, config.hidden_size), "classifier.bias": (config.num_labels,)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> SequenceClassifierOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        x = self.classifier_dropout(out.pooler_output)
        logits = self.dense(x, **self.head["classifier"])  # [B, H] -> [B, num_labels]
        return SequenceClassifierOutput(logits, out.hidden_states, out.attentions)


class BertForMultipleChoice(PooledClassifier):
    """BERT choosing among C candidate texts (a context paired with each possible answer, as in SWAG or RACE):
    each choice is encoded on its own, scored from its pooled [CLS] vector, and the scores compete in a
    softmax over the choices."""

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return {"classifier.weight": (1, config.hidden_size), "classifier.bias": (1,)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> MultipleChoiceModelOutput:
        """input_ids, attention_mask, token_type_ids, position_ids [B, C, S] (C choices per example), or
        inputs_embeds [B, C, S, H] -> logits [B, C]. hidden_states and attentions come with the choices
        flattened into the batch ([B·C, S, H]), as in transformers."""
        choices, inputs = flatten_choices(input_ids=input_ids, attention_mask=attention_mask,
                                          token_type_ids=token_type_ids,
                                          position_ids=position_ids, inputs_embeds=inputs_embeds)
        out = self.encode(**inputs, output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        x = self.classifier_dropout(out.pooler_output)
        logits = self.dense(x, **self.head["classifier"])  # [B·C, H] -> [B·C, 1]
        return MultipleChoiceModelOutput(logits.reshape(-1, choices), out.hidden_states, out.attentions)  # -> [B, C]


    def training_batch(self, encoding: dict[str, Any], loss: Any) -> tuple[dict[str, Any], Any]:
        """The batch [B, C, S] as B·C sequences, and the loss (default: cross-entropy) on the choices' scores [B, C]."""
        choices, flat = flatten_choices(**{name: encoding.get(name) for name in
                                           ("input_ids", "attention_mask", "token_type_ids", "position_ids",
                                            "inputs_embeds")})
        return flat, per_choice(loss or partial(sequence_loss, problem_type="single_label_classification"), choices)


class BertForTokenClassification(BertHeadModel):
    """BERT with a classifier on every token (named entities, parts of speech)."""

    new_head_allowed = True

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return {"classifier.weight": (config.num_labels, config.hidden_size), "classifier.bias": (config.num_labels,)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> TokenClassifierOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        x = self.classifier_dropout(out.last_hidden_state)
        logits = self.dense(x, **self.head["classifier"])  # [B, S, H] -> [B, S, num_labels]
        return TokenClassifierOutput(logits, out.hidden_states, out.attentions)


    def head_dropout_shapes(self, batch: int, seq: int) -> dict[str, tuple[tuple[int, ...], float]]:
        return {"dropout": ((batch, seq, self.config.hidden_size), self.classifier_dropout_prob())}  # on every token

    def reads_padding(self, attention_mask: np.ndarray, labels: Any) -> bool:
        return labels_on_padding(attention_mask, labels)

    def head_value_and_grad(self, x: np.ndarray, labels: Any, loss: Any = None, dropout: dict | None = None):
        """Dropout and the classifier on every token, cross-entropy at the labelled positions (labels [B, S],
        -100 elsewhere): x [B, S, H] -> (loss, dx [B, S, H], classifier grads)."""
        return token_classifier_value_and_grad(x, self.head["classifier"], labels, (dropout or {}).get("dropout"))


class BertForQuestionAnswering(BertHeadModel):
    """BERT with a span head: for every token, a score for starting and one for ending the answer."""

    new_head_allowed = True

    def head_shapes(self, config: BertConfig) -> dict[str, tuple[int, ...]]:
        return {"qa_outputs.weight": (2, config.hidden_size), "qa_outputs.bias": (2,)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=None, output_attentions=None, inputs_embeds=None) -> QuestionAnsweringModelOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                          output_attentions, inputs_embeds)
        logits = self.dense(out.last_hidden_state, **self.head["qa_outputs"])  # [B, S, H] -> [B, S, 2]
        return QuestionAnsweringModelOutput(logits[..., 0], logits[..., 1], out.hidden_states, out.attentions)


def tie_mlm_weights(tensors: dict[str, np.ndarray], config: BertConfig) -> dict[str, np.ndarray]:
    """The MLM decoder is tied, as in transformers: its weight is the word-embedding matrix and its bias is
    cls.predictions.bias. Checkpoints often store only the originals; the decoder copies, when stored, are
    not read. With tie_word_embeddings=false in config.json, nothing is tied: the decoder's weight and bias
    are its own (transformers 5 then also keeps an unused cls.predictions.bias, read here only when the
    checkpoint has no decoder bias, as transformers 4 saved them)."""
    tensors = dict(tensors)
    tied = tied_word_embeddings(config)
    if tied and "embeddings.word_embeddings.weight" in tensors:
        tensors["cls.predictions.decoder.weight"] = tensors["embeddings.word_embeddings.weight"]
    if "cls.predictions.bias" in tensors and (tied or "cls.predictions.decoder.bias" not in tensors):
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    return tensors


def resized_rows(rows: np.ndarray, n: int, mean_resizing: bool, std: float, rng: np.random.Generator) -> np.ndarray:
    """[V, H] -> [n, H]: the first rows kept; new ones from N(mean, 1e-9 · covariance) of the old rows (or
    their mean, when that covariance is not positive definite), or from N(0, std²)."""
    if n <= len(rows):
        return rows[:n].copy()
    added = n - len(rows)
    if mean_resizing:
        old = rows.astype(np.float64)
        mean = old.mean(axis=0)
        covariance = 1e-9 * (old - mean).T @ (old - mean) / len(old)  # [H, V] @ [V, H] -> [H, H]
        try:
            factor = np.linalg.cholesky(covariance)  # fails when not positive definite
            new = mean + rng.standard_normal((added, len(mean))) @ factor.T
        except np.linalg.LinAlgError:
            new = np.repeat(mean[None, :], added, axis=0)
    else:
        new = rng.normal(0.0, std, (added, rows.shape[1]))
    return np.concatenate([rows, new.astype(rows.dtype)])


def resized_bias(bias: np.ndarray, n: int, mean_resizing: bool, rng: np.random.Generator) -> np.ndarray:
    """A decoder's bias [V] -> [n], as transformers resizes it: cut, or new entries from
    N(mean, (1e-9 · std)²) of the old ones (mean_resizing, for an untied decoder), else 0."""
    added = max(0, n - len(bias))
    new = rng.normal(bias.mean(), 1e-9 * bias.std(ddof=1), added) if mean_resizing else np.zeros(added)
    return np.concatenate([bias[:n], new.astype(bias.dtype)])


def tied_word_embeddings(config: BertConfig) -> bool:
    return bool(config.extra.get("tie_word_embeddings", True))


def with_labels(config: BertConfig, num_labels: int | None = None, id2label: dict | None = None,
                problem_type: str | None = None) -> BertConfig:
    """A copy of `config` with a new label set (id2label, or LABEL_0.. for num_labels) and problem type."""
    extra = dict(config.extra)
    if id2label is not None:
        extra["id2label"] = {str(i): label for i, label in id2label.items()}
        extra["label2id"] = {label: int(i) for i, label in id2label.items()}
    elif num_labels is not None:
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or not 1 <= num_labels <= MAX_LABELS:
            # before the loop
            raise ConfigError(f"num_labels must be a whole number in [1, {MAX_LABELS}], got {num_labels!r}")
        extra["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        extra["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
    if problem_type is not None:
        extra["problem_type"] = problem_type
    return dataclasses.replace(config, extra=extra)  # __post_init__ checks the problem type


def _caller_level() -> int:
    """The stacklevel of a warning raised in minibert that points at the first frame outside the package (the
    user's line, not ours)."""
    import sys

    package, level, frame = os.path.dirname(os.path.abspath(__file__)), 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _float_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype
