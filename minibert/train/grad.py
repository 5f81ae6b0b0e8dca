"""Loss and gradients of a model, by the hand-written backward passes beside each block in minibert/nn."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import nn
from ..models import BertForSequenceClassification, check_inputs
from ..weights import flatten


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
    targets = labels.astype(logits.dtype).reshape(logits.shape)
    if problem_type == "multi_label_classification":
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


def value_and_grad(model: BertForSequenceClassification, encoding: dict[str, Any], labels: Any,
                   loss: Callable[[np.ndarray, Any], tuple[float, np.ndarray]] | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss on one batch and its gradient for every parameter, keyed by transformers' parameter names
    ("bert.encoder.layer.0.attention.self.query.weight", ..., "classifier.weight"). Dropout is off.

    encoding: input_ids, attention_mask, token_type_ids (as the tokenizer returns them); labels [B] class
    ids, [B, C] 0/1 targets (multi-label) or [B] / [B, 1] values (regression), as config.problem_type says.
    loss: (logits, labels) -> (loss, dloss/dlogits); default sequence_loss for the problem type (pass
    functools.partial(distillation_loss, teacher_logits=..., temperature=..., alpha=...) to distil).
    """
    if not isinstance(model, BertForSequenceClassification):
        raise TypeError(f"value_and_grad supports BertForSequenceClassification, got {type(model).__name__}")
    c, bert = model.config, model.bert
    ids, mask, types, positions = check_inputs(c, encoding["input_ids"], encoding.get("attention_mask"),
                                               encoding.get("token_type_ids"), encoding.get("position_ids"))
    # Asking for attention maps runs the reference blocks, whose hidden states the backward passes take.
    out = bert(ids, mask, types, positions, output_hidden_states=True, output_attentions=True)
    classifier = model.head["classifier"]
    logits = nn.dense(out.pooler_output, **classifier)  # [B, H] -> [B, C]
    value, dlogits = loss(logits, labels) if loss is not None else sequence_loss(logits, labels, c.problem_type)

    w, eps, heads = bert.weights, c.layer_norm_eps, c.num_attention_heads
    dpooled, dw_classifier, db_classifier = nn.dense_backward(dlogits, out.pooler_output, classifier["weight"])
    dx, d_pooler = nn.pooler_backward(dpooled, out.hidden_states[-1], w["pooler"]["dense"])
    mask_bias = nn.padding_mask_bias(mask, bert.dtype)
    d_layers = [None] * c.num_hidden_layers
    for i in reversed(range(c.num_hidden_layers)):  # hidden_states[i] is layer i's input
        dx, d_layers[i] = nn.encoder_layer_backward(dx, out.hidden_states[i], mask_bias, **w["encoder"]["layer"][i],
                                                    num_heads=heads, eps=eps)
    d_embeddings = nn.embeddings_backward(dx, ids, types, positions, **w["embeddings"], eps=eps)
    grads = flatten({"embeddings": d_embeddings, "encoder": {"layer": d_layers}, "pooler": {"dense": d_pooler}}, "bert.")
    grads.update({"classifier.weight": dw_classifier, "classifier.bias": db_classifier})
    return value, grads


def accumulate(parts: list[tuple[int, float, dict[str, np.ndarray]]]) -> tuple[float, dict[str, np.ndarray]]:
    """Combine micro-batches (examples, loss, grads) into the whole batch's loss and gradient: each loss is
    a mean over its examples, so the batch's is Σ nᵢ Lᵢ / Σ nᵢ, and likewise for every gradient. Lets a
    large batch run as several small ones in little memory."""
    total = sum(n for n, _, _ in parts)
    loss = sum(n * value for n, value, _ in parts) / total
    grads = {name: sum(n * g[name] for n, _, g in parts) / total for name in parts[0][2]}
    return loss, grads
