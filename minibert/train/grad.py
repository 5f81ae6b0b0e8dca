"""Loss and gradients of a model, by the hand-written backward passes beside each block in minibert/nn."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any, Callable

import numpy as np

from .. import nn
from ..fast import training as fast_training
from ..inputs import check_inputs, flatten_choices
from ..loading.weights import flatten
from ..models import (
    BertForMaskedLM, BertForMultipleChoice, BertForPreTraining, BertForSequenceClassification,
    BertForTokenClassification, tied_word_embeddings,
)

TRAINABLE = (BertForSequenceClassification, BertForMultipleChoice, BertForTokenClassification, BertForMaskedLM,
             BertForPreTraining)
POOLED_CLASSIFIERS = (BertForSequenceClassification, BertForMultipleChoice)  # loss= applies to these
INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def sequence_loss(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> tuple[float, np.ndarray]:
    """The loss transformers' BertForSequenceClassification uses, and its gradient with respect to the logits.

    single_label_classification: cross-entropy, mean over the batch: ∂z = (softmax(z) - onehot(y)) / B
    multi_label_classification: binary cross-entropy on logits, mean over all entries: ∂z = (σ(z) - y) / (B·C)
    regression: mean squared error: ∂z = 2 (z - y) / (B·C)
    logits [B, C] -> (loss, dlogits [B, C])
    """
    labels = np.asarray(labels)
    batch = logits.shape[0]
    if problem_type == "single_label_classification":
        if labels.shape != (batch,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"single-label classification needs integer labels of shape ({batch},), got {labels.dtype} {labels.shape}")
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # log softmax
        loss = -log_p[np.arange(batch), labels].mean()
        dlogits = np.exp(log_p)
        dlogits[np.arange(batch), labels] -= 1.0
        return float(loss), dlogits / batch
    if labels.size != logits.size or not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{problem_type} needs {logits.size} numeric labels for logits {list(logits.shape)}, "
                         f"got {labels.dtype} {labels.shape}")
    targets = labels.astype(logits.dtype).reshape(logits.shape)
    multi_label = problem_type == "multi_label_classification"
    if not np.isfinite(targets).all() or (multi_label and not ((targets >= 0) & (targets <= 1)).all()):
        raise ValueError(f"{problem_type} labels must be finite{' and lie in [0, 1]' if multi_label else ''}")
    if multi_label:
        # log(1 + e^-|z|) + max(z, 0) - z·y: binary cross-entropy on logits without overflow
        loss = (np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))).mean()
        return float(loss), (1.0 / (1.0 + np.exp(-logits)) - targets) / logits.size
    if problem_type == "regression":
        return float(((logits - targets) ** 2).mean()), 2.0 * (logits - targets) / logits.size
    raise ValueError(f"problem_type {problem_type!r} is not supported")


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


def dropout_masks(model: BertForSequenceClassification | BertForMultipleChoice | BertForTokenClassification |
                  BertForMaskedLM | BertForPreTraining, shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
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
    if isinstance(model, (*POOLED_CLASSIFIERS, BertForTokenClassification)):  # the classifiers' own dropout, on [CLS]'s pooled vector or every token
        p_classifier = c.extra.get("classifier_dropout")
        classifier = (batch, hidden) if isinstance(model, POOLED_CLASSIFIERS) else (batch, seq, hidden)
        shapes["dropout"] = (classifier, p_hidden if p_classifier is None else p_classifier)
    return shapes


def checked_dropout(masks: Mapping[str, Any], shapes: dict[str, tuple[tuple[int, ...], float]]) -> dict[str, np.ndarray]:
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
            raise ValueError(f"dropout: the mask for {name} has shape {checked[name].shape}; this batch needs {shapes[name][0]}")
    return checked


def value_and_grad(model: BertForSequenceClassification | BertForMultipleChoice | BertForTokenClassification |
                   BertForMaskedLM | BertForPreTraining, encoding: dict[str, Any], labels: Any,
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
    if not isinstance(model, TRAINABLE):
        raise TypeError(f"value_and_grad supports {', '.join(cls.__name__ for cls in TRAINABLE)}, got {type(model).__name__}")
    if model.is_quantized:
        raise ValueError("an int8 model cannot be trained: train the float model, then quantize it")
    if not isinstance(model, POOLED_CLASSIFIERS) and loss is not None:
        raise ValueError(f"{type(model).__name__} trains on cross-entropy at the labelled positions; loss= is for "
                         "sequence classification and multiple choice")
    c, bert = model.config, model.bert
    if not isinstance(encoding, Mapping):
        raise TypeError(f"encoding must be a dict of input_ids, attention_mask, ... (as the tokenizer returns), "
                        f"got {type(encoding).__name__}")
    given_shape = np.shape(encoding.get("inputs_embeds"))  # their gradient is returned in this shape
    if isinstance(model, BertForMultipleChoice):  # [B, C, S] -> [B·C, S]: each choice is a sequence of its own
        choices, encoding = flatten_choices(**{name: encoding.get(name) for name in INPUTS})
        loss = per_choice(loss or partial(sequence_loss, problem_type="single_label_classification"), choices)
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
    fast = bert.use_fast and not head_reads_padding(model, mask, labels)
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

    if isinstance(model, POOLED_CLASSIFIERS):
        value, dx, grads = classifier_value_and_grad(model, x, labels, loss, masks.get("dropout"))
    elif isinstance(model, BertForTokenClassification):
        value, dx, grads = token_classifier_value_and_grad(model, x, labels, masks.get("dropout"))
    elif isinstance(model, BertForPreTraining):
        value, dx, grads = pretraining_value_and_grad(model, x, labels)
    else:
        value, dx, grads = masked_lm_value_and_grad(model, x, labels)

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
    tied = grads.pop("cls.predictions.decoder.weight", None) if tied_word_embeddings(c) else None
    if tied is not None:  # the decoder is the word-embedding matrix: both uses add to one gradient
        encoder_grads["bert.embeddings.word_embeddings.weight"] += tied
    return value, {**encoder_grads, **grads, **({} if d_inputs is None else {"inputs_embeds": d_inputs.reshape(given_shape)})}


def per_choice(loss: Callable, choices: int) -> Callable:
    """A loss on the choices' scores [B, C] as the classifier's loss on its [B·C, 1] outputs."""
    def choice_loss(logits: np.ndarray, labels: Any) -> tuple[float, np.ndarray]:
        value, dlogits = loss(logits.reshape(-1, choices), labels)  # [B·C, 1] -> [B, C]
        return value, dlogits.reshape(-1, 1)
    return choice_loss


def head_reads_padding(model, attention_mask: np.ndarray, labels: Any) -> bool:
    padding = attention_mask == 0
    if isinstance(model, POOLED_CLASSIFIERS):
        return bool(padding[:, 0].any())  # the pooler reads position 0
    if isinstance(model, BertForPreTraining):
        return bool(padding[:, 0].any()) or head_reads_padding(None, attention_mask, pretraining_labels(labels)[0])
    labels = np.asarray(labels)
    return labels.shape == padding.shape and bool((labels[padding] != -100).any())


def pooled_head_value_and_grad(model, x: np.ndarray, head: dict, head_name: str, labels: Any, loss, mask=None):
    """The pooler, dropout (mask None: none) and a dense head on the pooled [CLS] vector, with loss(logits,
    labels) -> (value, dlogits): x [B, S, H] -> (value, dx [B, S, H], pooler and head grads by name)."""
    pooler = model.bert.weights["pooler"]["dense"]
    pooled = nn.dropout(nn.pooler(x, pooler), mask)  # [B, S, H] -> [B, H]
    value, dlogits = loss(nn.dense(pooled, **head), labels)  # [B, H] -> [B, C]
    dpooled, dw, db = nn.dense_backward(dlogits, pooled, head["weight"])
    dx, d_pooler = nn.pooler_backward(nn.dropout(dpooled, mask), x, pooler)
    return value, dx, {"bert.pooler.dense.weight": d_pooler["weight"], "bert.pooler.dense.bias": d_pooler["bias"],
                       f"{head_name}.weight": dw, f"{head_name}.bias": db}


def classifier_value_and_grad(model: BertForSequenceClassification | BertForMultipleChoice, x: np.ndarray, labels: Any,
                              loss, mask):
    """Pooler, dropout and classifier on the last hidden state x [B, S, H] -> (loss, dx [B, S, H], grads)."""
    loss = loss or partial(sequence_loss, problem_type=model.config.problem_type)
    return pooled_head_value_and_grad(model, x, model.head["classifier"], "classifier", labels, loss, mask)


def labelled_positions(shape: tuple[int, int], labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-token labels [B, S] (-100: not scored, as transformers ignores) -> (labels, chosen [B, S] bool).
    shape: the inputs' [B, S]."""
    labels = np.asarray(labels)
    if labels.shape != shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what} labels must be integers of the inputs' [batch, seq] shape {shape}, got {labels.dtype} {labels.shape}")
    chosen = labels != -100
    if not chosen.any():
        raise ValueError(f"{what} labels mark no position (every label is -100): there is nothing to predict")
    return labels, chosen


def masked_lm_value_and_grad(model: BertForMaskedLM, x: np.ndarray, labels: Any):
    """The MLM head and its loss on the labelled positions only (the others do not touch the loss):
    x [B, S, H] -> (loss, dx [B, S, H], head grads, with the tied decoder's as cls.predictions.decoder.weight)."""
    labels, chosen = labelled_positions(x.shape[:2], labels, "masked-LM")
    predictions = model.head["cls"]["predictions"]
    rows = x[chosen]  # [B, S, H] -> [N, H], the N labelled positions
    logits = nn.masked_lm_head(rows, **predictions, eps=model.config.layer_norm_eps)  # [N, H] -> [N, V]
    value, dlogits = sequence_loss(logits, labels[chosen], "single_label_classification")  # mean over the N positions
    drows, d_transform, d_decoder = nn.masked_lm_head_backward(dlogits, rows, **predictions, eps=model.config.layer_norm_eps)
    dx = np.zeros_like(x)
    dx[chosen] = drows  # [N, H] -> [B, S, H]
    bias = "cls.predictions.bias" if tied_word_embeddings(model.config) else "cls.predictions.decoder.bias"  # as state_dict()
    grads = {**flatten(d_transform, "cls.predictions.transform."), bias: d_decoder["bias"],
             "cls.predictions.decoder.weight": d_decoder["weight"]}
    return value, dx, grads


def pretraining_labels(labels: Any) -> tuple[Any, Any]:
    if not (isinstance(labels, (tuple, list)) and len(labels) == 2):
        raise ValueError("BertForPreTraining labels are a pair: (masked-LM labels [B, S], next-sentence labels [B])")
    return labels[0], labels[1]


def pretraining_value_and_grad(model: BertForPreTraining, x: np.ndarray, labels: Any):
    """Both pre-training heads: L = MLM cross-entropy + next-sentence cross-entropy (on the pooled [CLS]).
    x [B, S, H] -> (loss, dx [B, S, H], grads of the pooler and both heads)."""
    mlm_labels, nsp_labels = pretraining_labels(labels)
    mlm_loss, dx, grads = masked_lm_value_and_grad(model, x, mlm_labels)
    nsp_loss, dx_pooler, nsp_grads = pooled_head_value_and_grad(  # 2 logits: B follows A, or not
        model, x, model.head["cls"]["seq_relationship"], "cls.seq_relationship", nsp_labels,
        partial(sequence_loss, problem_type="single_label_classification"))
    return mlm_loss + nsp_loss, dx + dx_pooler, {**grads, **nsp_grads}


def token_classifier_value_and_grad(model: BertForTokenClassification, x: np.ndarray, labels: Any, mask):
    """Dropout and the classifier on every token, cross-entropy over the labelled positions:
    x [B, S, H] -> (loss, dx [B, S, H], classifier grads)."""
    labels, chosen = labelled_positions(x.shape[:2], labels, "token-classification")
    classifier = model.head["classifier"]
    rows = nn.dropout(x, mask)[chosen]  # [B, S, H] -> [N, H]
    logits = nn.dense(rows, **classifier)  # [N, H] -> [N, C]
    value, dlogits = sequence_loss(logits, labels[chosen], "single_label_classification")  # mean over the N positions
    drows, dw, db = nn.dense_backward(dlogits, rows, classifier["weight"])
    dx = np.zeros_like(x)
    dx[chosen] = drows  # [N, H] -> [B, S, H]
    return value, nn.dropout(dx, mask), {"classifier.weight": dw, "classifier.bias": db}


def accumulate(parts: list[tuple[int, float, dict[str, np.ndarray]]]) -> tuple[float, dict[str, np.ndarray]]:
    """Combine micro-batches (examples, loss, grads) into the whole batch's loss and gradient: each loss is
    a mean over its examples, so the batch's is Σ nᵢ Lᵢ / Σ nᵢ, and likewise for every gradient. Lets a
    large batch run as several small ones in little memory."""
    total = sum(n for n, _, _ in parts)
    loss = sum(n * value for n, value, _ in parts) / total
    grads = {name: sum(n * g[name] for n, _, g in parts) / total for name in parts[0][2]}
    return loss, grads
