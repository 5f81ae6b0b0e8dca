"""The task heads' losses and their gradients: each head class in minibert/models.py calls these from its
head_value_and_grad, so a head's forward, loss and backward sit with the head."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import nn
from ..loading.weights import flatten


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
            raise ValueError(f"single-label classification needs integer labels of shape ({batch},), got "
                             f"{labels.dtype} {labels.shape}")
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


def per_choice(loss: Callable, choices: int) -> Callable:
    """A loss on the choices' scores [B, C] as the classifier's loss on its [B·C, 1] outputs."""
    def choice_loss(logits: np.ndarray, labels: Any) -> tuple[float, np.ndarray]:
        value, dlogits = loss(logits.reshape(-1, choices), labels)  # [B·C, 1] -> [B, C]
        return value, dlogits.reshape(-1, 1)
    return choice_loss


def pooled_head_value_and_grad(x: np.ndarray, pooler: dict, head: dict, head_name: str, labels: Any, loss, mask=None):
    """The pooler (its dense weights), dropout (mask None: none) and a dense head on the pooled [CLS] vector,
    with loss(logits, labels) -> (value, dlogits): x [B, S, H] -> (value, dx [B, S, H], pooler and head grads
    by name)."""
    pooled = nn.dropout(nn.pooler(x, pooler), mask)  # [B, S, H] -> [B, H]
    value, dlogits = loss(nn.dense(pooled, **head), labels)  # [B, H] -> [B, C]
    dpooled, dw, db = nn.dense_backward(dlogits, pooled, head["weight"])
    dx, d_pooler = nn.pooler_backward(nn.dropout(dpooled, mask), x, pooler)
    return value, dx, {"bert.pooler.dense.weight": d_pooler["weight"], "bert.pooler.dense.bias": d_pooler["bias"],
                       f"{head_name}.weight": dw, f"{head_name}.bias": db}


def labelled_positions(shape: tuple[int, int], labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-token labels [B, S] (-100: not scored, as transformers ignores) -> (labels, chosen [B, S] bool).
    shape: the inputs' [B, S]."""
    labels = np.asarray(labels)
    if labels.shape != shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what} labels must be integers of the inputs' [batch, seq] shape {shape}, got "
                         f"{labels.dtype} {labels.shape}")
    chosen = labels != -100
    if not chosen.any():
        raise ValueError(f"{what} labels mark no position (every label is -100): there is nothing to predict")
    return labels, chosen


def masked_lm_value_and_grad(x: np.ndarray, predictions: dict, labels: Any, eps: float, bias_name: str):
    """The MLM head and its loss on the labelled positions only (the others do not touch the loss):
    x [B, S, H] -> (loss, dx [B, S, H], head grads, with the tied decoder's as cls.predictions.decoder.weight)."""
    labels, chosen = labelled_positions(x.shape[:2], labels, "masked-LM")
    rows = x[chosen]  # [B, S, H] -> [N, H], the N labelled positions
    logits = nn.masked_lm_head(rows, **predictions, eps=eps)  # [N, H] -> [N, V]
    value, dlogits = sequence_loss(logits, labels[chosen], "single_label_classification")  # mean over the N positions
    drows, d_transform, d_decoder = nn.masked_lm_head_backward(dlogits, rows, **predictions, eps=eps)
    dx = np.zeros_like(x)
    dx[chosen] = drows  # [N, H] -> [B, S, H]
    grads = {**flatten(d_transform, "cls.predictions.transform."), bias_name: d_decoder["bias"],
             "cls.predictions.decoder.weight": d_decoder["weight"]}
    return value, dx, grads


def labels_on_padding(attention_mask: np.ndarray, labels: Any) -> bool:
    """Whether per-token labels [B, S] score a padding position (where the fused path computes nothing)."""
    labels, padding = np.asarray(labels), attention_mask == 0
    return labels.shape == padding.shape and bool((labels[padding] != -100).any())


def pretraining_labels(labels: Any) -> tuple[Any, Any]:
    if not (isinstance(labels, (tuple, list)) and len(labels) == 2):
        raise ValueError("BertForPreTraining labels are a pair: (masked-LM labels [B, S], next-sentence labels [B])")
    return labels[0], labels[1]


def token_classifier_value_and_grad(x: np.ndarray, classifier: dict, labels: Any, mask):
    """Dropout and the classifier on every token, cross-entropy over the labelled positions:
    x [B, S, H] -> (loss, dx [B, S, H], classifier grads)."""
    labels, chosen = labelled_positions(x.shape[:2], labels, "token-classification")
    rows = nn.dropout(x, mask)[chosen]  # [B, S, H] -> [N, H]
    logits = nn.dense(rows, **classifier)  # [N, H] -> [N, C]
    value, dlogits = sequence_loss(logits, labels[chosen], "single_label_classification")  # mean over the N positions
    drows, dw, db = nn.dense_backward(dlogits, rows, classifier["weight"])
    dx = np.zeros_like(x)
    dx[chosen] = drows  # [N, H] -> [B, S, H]
    return value, nn.dropout(dx, mask), {"classifier.weight": dw, "classifier.bias": db}
