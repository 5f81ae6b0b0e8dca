"""Loss and gradients of a model, by the hand-written backward passes beside each block in minibert/nn."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import nn
from ..fast import training as fast_training
from ..inputs import check_inputs
from ..loading.weights import flatten
from .heads import sequence_loss

if TYPE_CHECKING:
    from ..models import BertHeadModel


def distillation_loss(logits: np.ndarray, labels: np.ndarray, teacher_logits: np.ndarray, temperature: float,
                      alpha: float) -> tuple[float, np.ndarray]:
    """Knowledge distillation (Hinton et al., 2015) as the BERT miniatures' paper trains students:

        L = α · CE(z, y) + (1 - α) · T² · KL(softmax(t / T) ‖ softmax(z / T))
        ∂L/∂z = α · ∂CE/∂z + (1 - α) · T · (softmax(z / T) - softmax(t / T)) / B

    z student logits, t teacher logits [B, C], y hard labels [B]; T² keeps the soft term's gradient scale
    independent of T. α = 0: soft targets only.
    """
    hard, dhard = sequence_loss(logits, labels, "single_label_classification")
    batch = logits.shape[0]

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    log_student, log_teacher = log_softmax(logits / temperature), log_softmax(teacher_logits / temperature)
    p_teacher = np.exp(log_teacher)
    soft = float((p_teacher * (log_teacher - log_student)).sum() / batch) * temperature ** 2
    dsoft = temperature * (np.exp(log_student) - p_teacher) / batch
    return alpha * hard + (1 - alpha) * soft, alpha * dhard + (1 - alpha) * dsoft


def dropout_masks(model: BertHeadModel, shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh dropout masks for one training step on a [B, S] batch, named after transformers' Dropout
    modules: "bert.embeddings.dropout" [B, S, H]; per layer i, "bert.encoder.layer.i.attention.self.dropout"
    (on the attention probabilities) [B, A, S, S], "...attention.output.dropout" and "...output.dropout"
    [B, S, H]; and, for a classifier, "dropout" on its input: [B, H] (the pooled vector) or [B, S, H]
    (tokens). A multiple-choice batch [B, C, S] counts as B·C sequences. Probabilities from the config:
    hidden_dropout_prob, attention_probs_dropout_prob, classifier_dropout (default hidden_dropout_prob)."""
    return {name: nn.dropout_mask(rng, mask_shape, p, model.dtype)  # drawn in the forward's order
            for name, (mask_shape, p) in dropout_shapes(model, shape).items()}


def dropout_shapes(model, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], float]]:
    """{Dropout module: (its mask's shape, p)} for a batch of input shape [B, S] ([B, C, S]), in the forward's order."""
    c = model.config
    batch, seq, hidden = math.prod(shape[:-1]), shape[-1], c.hidden_size
    p_hidden, p_attention = c.hidden_dropout_prob, c.attention_probs_dropout_prob
    shapes = {"bert.embeddings.dropout": ((batch, seq, hidden), p_hidden)}
    for i in range(c.num_hidden_layers):
        layer = f"bert.encoder.layer.{i}."
        shapes[layer + "attention.self.dropout"] = ((batch, c.num_attention_heads, seq, seq), p_attention)
        shapes[layer + "attention.output.dropout"] = ((batch, seq, hidden), p_hidden)
        shapes[layer + "output.dropout"] = ((batch, seq, hidden), p_hidden)
    return {**shapes, **model.head_dropout_shapes(batch, seq)}  # the head's own: a classifier's "dropout"


def checked_dropout(masks: Mapping[str, Any],
                    shapes: dict[str, tuple[tuple[int, ...], float]]) -> dict[str, np.ndarray]:
    """The masks value_and_grad was given, each named as dropout_masks names them and of its shape (a module
    left out is not dropped); a misspelt name would otherwise switch its dropout off without a word."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"dropout must be a dict of masks from dropout_masks(), got {type(masks).__name__}")
    unknown = [name for name in masks if name not in shapes]
    if unknown:
        raise ValueError(f"dropout: no Dropout module is named {', '.join(map(repr, unknown[:3]))}; this model's are "
                         f"{', '.join(list(shapes)[:2])}, ... (see dropout_masks)")
    checked = {}
    for name, mask in masks.items():
        checked[name] = np.asarray(mask)
        if checked[name].shape != shapes[name][0]:
            raise ValueError(f"dropout: the mask for {name} has shape {checked[name].shape}; this batch needs "
                             f"{shapes[name][0]}")
    return checked


def value_and_grad(model: BertHeadModel, encoding: dict[str, Any], labels: Any,
                   loss: Callable[[np.ndarray, Any], tuple[float, np.ndarray]] | None = None,
                   dropout: dict[str, np.ndarray] | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss on one batch and its gradient for every parameter, keyed as model.state_dict() and torch's
    named_parameters() name them ("bert.encoder.layer.0.attention.self.query.weight", ..., "classifier.weight").

    encoding: input_ids, attention_mask, token_type_ids (as the tokenizer returns them); or inputs_embeds
    [B, S, H] in place of input_ids, when the gradient is then also returned for them, under
    "inputs_embeds" (take it out of the dict before clipping or an optimizer step: it is not a parameter;
    the word-embedding table, not read, gets a zero gradient, plus the tied MLM decoder's).
    labels: BertForSequenceClassification: [B] class ids, [B, C] 0/1 targets (multi-label) or [B] / [B, 1]
    values (regression), as config.problem_type says; BertForMultipleChoice: [B] the right choice (inputs
    [B, C, S], cross-entropy over the C scores); BertForTokenClassification: [B, S] class ids, -100
    where not scored (padding, word pieces after the first); BertForMaskedLM: [B, S] token ids at the
    masked positions and -100 elsewhere; BertForPreTraining: (those [B, S] MLM labels, [B] next-sentence
    labels: 0 = B follows A, 1 = random), the loss being their sum as in transformers.
    loss (sequence classification, multiple choice): (logits, labels) -> (loss, dloss/dlogits); default
    sequence_loss for the problem type (single-label for multiple choice, on the scores [B, C]); for
    distillation pass functools.partial(distillation_loss, teacher_logits=..., temperature=..., alpha=...).
    dropout: masks from dropout_masks() to train with dropout; None (default) runs without it.
    """
    if not hasattr(model, "head_value_and_grad"):
        raise TypeError("value_and_grad supports BertForSequenceClassification, BertForMultipleChoice, "
                        "BertForTokenClassification, BertForMaskedLM, BertForPreTraining (the heads with a loss), "
                        f"got {type(model).__name__}")
    if model.is_quantized:
        raise ValueError("an int8 model cannot be trained: train the float model, then quantize it")
    if not model.takes_loss and loss is not None:
        raise ValueError(f"{type(model).__name__} trains on cross-entropy at the labelled positions; loss= is for "
                         "sequence classification and multiple choice")
    c, bert = model.config, model.bert
    if not isinstance(encoding, Mapping):
        raise TypeError(f"encoding must be a dict of input_ids, attention_mask, ... (as the tokenizer returns), "
                        f"got {type(encoding).__name__}")
    given_shape = np.shape(encoding.get("inputs_embeds"))  # their gradient is returned in this shape
    encoding, loss = model.training_batch(encoding, loss)  # multiple choice: [B, C, S] -> [B·C, S]
    ids, mask, types, positions, embeds = check_inputs(
        c, encoding.get("input_ids"), encoding.get("attention_mask"), encoding.get("token_type_ids"),
        encoding.get("position_ids"), encoding.get("inputs_embeds"), bert.dtype)
    masks = checked_dropout(dropout or {}, dropout_shapes(model, mask.shape))
    w, eps, heads = bert.weights, c.layer_norm_eps, c.num_attention_heads
    layer_masks = [{k.removeprefix(f"bert.encoder.layer.{i}."): m for k, m in masks.items()
                    if k.startswith(f"bert.encoder.layer.{i}.")} for i in range(c.num_hidden_layers)]

    # The fused path (model.bert.use_fast, the default) packs the tokens and keeps each layer's activations
    # for its backward; the reference keeps each layer's input, and its backward passes recompute the rest.
    # The fused path leaves padding positions at zero, so a head reading one (a pooler on a left-padded row,
    # an MLM label on padding) takes the reference, which computes them as transformers does.
    fast = bert.use_fast and not model.reads_padding(mask, labels)
    mask_bias = nn.padding_mask_bias(mask, bert.dtype)  # [B, S] -> [B, 1, 1, S]
    if fast:
        x = nn.dropout(nn.embeddings(ids, types, positions, **w["embeddings"], eps=eps, inputs_embeds=embeds),
                       masks.get("bert.embeddings.dropout"))
        x, fast_cache = fast_training.encoder_forward(x, mask, w["encoder"]["layer"], heads, eps, layer_masks)
    else:
        bert_masks = {name.removeprefix("bert."): m for name, m in masks.items() if name.startswith("bert.")}
        hidden_states, _, _ = nn.bert(ids, mask, types, positions, w["embeddings"], w["encoder"], num_heads=heads,
                                      eps=eps, inputs_embeds=embeds, dropout=bert_masks)
        x, layer_inputs = hidden_states[-1], hidden_states[:-1]

    value, dx, grads = model.head_value_and_grad(x, labels, loss, masks)  # the head's forward, loss and backward

    if fast:
        dx, d_layers = fast_training.encoder_backward(dx, fast_cache, w["encoder"]["layer"], eps, layer_masks)
    else:
        d_layers = [None] * c.num_hidden_layers
        for i in reversed(range(c.num_hidden_layers)):
            dx, d_layers[i] = nn.encoder_layer_backward(dx, layer_inputs[i], mask_bias, **w["encoder"]["layer"][i],
                                                        num_heads=heads, eps=eps, dropout=layer_masks[i])
    dx = nn.dropout(dx, masks.get("bert.embeddings.dropout"))
    d_embeddings = nn.embeddings_backward(dx, ids, types, positions, **w["embeddings"], eps=eps, inputs_embeds=embeds)
    d_inputs = d_embeddings.pop("inputs_embeds", None)
    encoder_grads = flatten({"embeddings": d_embeddings, "encoder": {"layer": d_layers}}, "bert.")
    for name in grads.keys() & encoder_grads.keys():  # a tied MLM decoder is the word-embedding matrix: both uses add
        encoder_grads[name] += grads.pop(name)
    return value, {**encoder_grads, **grads,
                   **({} if d_inputs is None else {"inputs_embeds": d_inputs.reshape(given_shape)})}


def accumulate(parts: list[tuple[int, float, dict[str, np.ndarray]]]) -> tuple[float, dict[str, np.ndarray]]:
    """Combine micro-batches (examples, loss, grads) into the whole batch's loss and gradient: each loss is
    a mean over its examples, so the batch's is Σ nᵢ Lᵢ / Σ nᵢ, and likewise for every gradient. Lets a
    large batch run as several small ones in little memory."""
    total = sum(n for n, _, _ in parts)
    loss = sum(n * value for n, value, _ in parts) / total
    grads = {name: sum(n * g[name] for n, _, g in parts) / total for name in parts[0][2]}
    return loss, grads
