"""Gradients against live torch autograd on BERT-Mini's shape (random weights, shrunk vocabulary)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="live gradient parity needs torch")
transformers = pytest.importorskip("transformers", reason="live gradient parity needs transformers")

import minibert  # noqa: E402
from minibert.train import value_and_grad  # noqa: E402
from tests.fixtures.cases import RANDOM_CONFIGS  # noqa: E402
from tests.test_train import BOUND, relative_errors  # noqa: E402


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bert_mini_gradients(tmp_path, dtype):
    torch.manual_seed(0)
    config = transformers.BertConfig(**RANDOM_CONFIGS["mini"], num_labels=3, attn_implementation="eager",
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    reference = transformers.BertForSequenceClassification(config)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    reference.save_pretrained(tmp_path)
    reference = reference.to(getattr(torch, dtype)).train()
    rng = np.random.default_rng(2)
    batch = {"input_ids": rng.integers(0, 1000, (4, 24)), "token_type_ids": rng.integers(0, 2, (4, 24)),
             "attention_mask": (np.arange(24)[None] < np.array([[24], [10], [17], [3]])).astype(np.int64)}
    labels = np.array([0, 2, 1, 2])
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    model = minibert.BertForSequenceClassification.from_pretrained(tmp_path, dtype=dtype)
    loss, grads = value_and_grad(model, batch, labels)
    errors = relative_errors(grads, {n: p.grad.numpy() for n, p in reference.named_parameters()})
    worst = max(errors, key=errors.get)
    print(f"live gradients BERT-Mini shape {dtype}: loss diff {abs(loss - out.loss.item()):.1e}, worst relative {errors[worst]:.1e} ({worst})")
    assert abs(loss - out.loss.item()) <= BOUND[dtype] and errors[worst] <= BOUND[dtype]
