"""Gradients against live torch autograd on BERT-Mini's shape (random weights, shrunk vocabulary)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="live gradient parity needs torch")
transformers = pytest.importorskip("transformers", reason="live gradient parity needs transformers")

import minibert  # noqa: E402
from minibert.train import value_and_grad  # noqa: E402
from tests.fixtures.cases import RANDOM_CONFIGS  # noqa: E402
from tests.fixtures.reference import fresh_model  # noqa: E402
from tests.test_train import BOUND, relative_errors  # noqa: E402


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bert_mini_gradients(tmp_path, dtype):
    reference = fresh_model("BertForSequenceClassification", tmp_path, **RANDOM_CONFIGS["mini"], num_labels=3,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
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
    print(f"live gradients BERT-Mini shape {dtype}: loss diff {abs(loss - out.loss.item()):.1e}, worst relative "
          f"{errors[worst]:.1e} ({worst})")
    assert abs(loss - out.loss.item()) <= BOUND[dtype] and errors[worst] <= BOUND[dtype]


@pytest.mark.parametrize("untied", [False, True], ids=["tied", "untied"])
def test_masked_lm_gradients(tmp_path, untied):
    """The MLM head's gradients, keyed as torch names the parameters: with the decoder tied (one gradient for
    the word embeddings, cls.predictions.bias) and untied (the decoder's own weight and bias)."""
    reference = fresh_model("BertForMaskedLM", tmp_path, **RANDOM_CONFIGS["tiny"], tie_word_embeddings=not untied,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    reference = reference.double().train()
    rng = np.random.default_rng(3)
    ids = rng.integers(0, reference.config.vocab_size, (2, 9))
    labels = np.where(rng.random((2, 9)) < 0.4, ids, -100)
    labels[0, 0] = ids[0, 0]
    out = reference(input_ids=torch.from_numpy(ids), labels=torch.from_numpy(labels))
    out.loss.backward()
    model = minibert.BertForMaskedLM.from_pretrained(tmp_path, dtype="float64")
    loss, grads = value_and_grad(model, {"input_ids": ids}, labels)
    expected = {n: p.grad.numpy() for n, p in reference.named_parameters() if p.grad is not None}
    assert grads.keys() == model.state_dict().keys() == expected.keys()
    errors = relative_errors(grads, expected)
    assert abs(loss - out.loss.item()) <= BOUND["float64"] and max(errors.values()) <= BOUND["float64"], errors



@pytest.mark.parametrize("head", ["BertForSequenceClassification", "BertForMaskedLM"])
def test_inputs_embeds_gradients(tmp_path, head):
    """value_and_grad on inputs_embeds, BERT-Mini's shape, float64, with padding and token types: their
    gradient against torch's inputs_embeds.grad, and every parameter's (the word table: torch's None is
    minibert's zero; with the tied decoder, the decoder's gradient)."""
    reference = fresh_model(head, tmp_path, **RANDOM_CONFIGS["mini"], num_labels=3, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0).double().train()
    rng = np.random.default_rng(5)
    shape = (3, 19)
    mask = (np.arange(shape[1])[None] < np.array([[19], [7], [12]])).astype(np.int64)
    batch = {"inputs_embeds": rng.normal(0, 0.05, (*shape, reference.config.hidden_size)),
             "attention_mask": mask, "token_type_ids": rng.integers(0, 2, shape)}
    if head == "BertForMaskedLM":
        labels = np.where((mask == 1) & (rng.random(shape) < 0.3),
                          rng.integers(0, reference.config.vocab_size, shape), -100)
    else:
        labels = np.array([2, 0, 1])
    vectors = torch.from_numpy(batch["inputs_embeds"]).requires_grad_()
    out = reference(inputs_embeds=vectors, attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.from_numpy(batch["token_type_ids"]), labels=torch.from_numpy(labels))
    out.loss.backward()
    model = getattr(minibert, head).from_pretrained(tmp_path, dtype="float64")
    loss, grads = value_and_grad(model, batch, labels)
    expected = {n: np.zeros(p.shape) if p.grad is None else p.grad.numpy() for n, p in reference.named_parameters()}
    expected["inputs_embeds"] = vectors.grad.numpy()
    assert grads.keys() == expected.keys()
    errors = relative_errors(grads, expected)
    worst = max(errors, key=errors.get)
    print(f"live inputs_embeds gradients {head}: loss diff {abs(loss - out.loss.item()):.1e}, worst relative "
          f"{errors[worst]:.1e} ({worst}), inputs_embeds {errors['inputs_embeds']:.1e}")
    assert abs(loss - out.loss.item()) <= BOUND["float64"] and errors[worst] <= BOUND["float64"]



def test_multiple_choice_gradients(tmp_path):
    """BertForMultipleChoice, BERT-Mini's shape, float64: inputs [B, C, S] with padding, labels the right
    choice. The classifier's bias has exact gradient 0 (it moves every choice's score alike), checked as 0
    to the precision; every other gradient against torch autograd."""
    reference = fresh_model("BertForMultipleChoice", tmp_path, **RANDOM_CONFIGS["mini"], hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0).double().train()
    rng = np.random.default_rng(6)
    shape = (3, 4, 15)
    batch = {"input_ids": rng.integers(0, 1000, shape), "token_type_ids": rng.integers(0, 2, shape),
             "attention_mask": (np.arange(shape[2]) < rng.integers(1, shape[2] + 1, (*shape[:2], 1))).astype(np.int64)}
    labels = np.array([3, 0, 2])
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    model = minibert.BertForMultipleChoice.from_pretrained(tmp_path, dtype="float64")
    loss, grads = value_and_grad(model, batch, labels)
    expected = {n: p.grad.numpy() for n, p in reference.named_parameters()}
    assert grads.keys() == expected.keys()
    errors = relative_errors(grads, expected, "multiple-choice")
    worst = max(errors, key=errors.get)
    largest = max(np.abs(g).max() for g in expected.values())
    print(f"live gradients BertForMultipleChoice: loss diff {abs(loss - out.loss.item()):.1e}, worst relative "
          f"{errors[worst]:.1e} ({worst}), classifier.bias {np.abs(grads['classifier.bias']).max():.1e}")
    assert abs(loss - out.loss.item()) <= BOUND["float64"] and errors[worst] <= BOUND["float64"]
    assert np.abs(grads["classifier.bias"]).max() <= BOUND["float64"] * largest


def test_trained_checkpoint_loads_in_transformers_with_equal_logits(tmp_path):
    from minibert.train import AdamW

    torch.manual_seed(1)
    config = transformers.BertConfig(**RANDOM_CONFIGS["mini"], num_labels=2, attn_implementation="eager")
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "start")
    model = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "start")
    optimizer = AdamW(model.state_dict(), lr=1e-3)
    rng = np.random.default_rng(3)
    batch = {"input_ids": rng.integers(0, 1000, (3, 12)), "attention_mask": np.ones((3, 12), np.int64)}
    for _ in range(3):
        optimizer.step(value_and_grad(model, batch, np.array([0, 1, 1]))[1])
    model.save_pretrained(tmp_path / "trained")
    reference = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "trained",
                                                                           attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    diff = np.abs(model(**batch).logits - expected).max()
    print(f"trained checkpoint in transformers: logits max abs diff {diff:.1e}")
    assert diff <= 1e-5


def test_masked_lm_trained_with_dropout_loads_in_transformers_with_equal_logits(tmp_path):
    """Tied decoder: the steps update the word embeddings once for both uses; the saved checkpoint
    (cls.predictions.bias, no decoder copy) loads in transformers' BertForMaskedLM with the same logits."""
    from minibert.train import AdamW, dropout_masks

    torch.manual_seed(2)
    config = transformers.BertConfig(**RANDOM_CONFIGS["mini"], attn_implementation="eager")
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "start")
    model = minibert.BertForMaskedLM.from_pretrained(tmp_path / "start")
    optimizer = AdamW(model.state_dict(), lr=1e-3)
    rng = np.random.default_rng(4)
    batch = {"input_ids": rng.integers(5, 1000, (3, 12)), "attention_mask": np.ones((3, 12), np.int64)}
    labels = np.where(rng.random((3, 12)) < 0.2, rng.integers(5, 1000, (3, 12)), -100)
    labels[0, 1] = 7
    losses = []
    for _ in range(3):
        loss, grads = value_and_grad(model, batch, labels, dropout=dropout_masks(model, (3, 12), rng))
        optimizer.step(grads)
        losses.append(loss)
    model.save_pretrained(tmp_path / "trained")
    reference = transformers.BertForMaskedLM.from_pretrained(tmp_path / "trained", attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    logits = model(**batch).logits
    diff = np.abs(logits - expected).max()
    print(f"MLM trained 3 steps with dropout (losses {np.round(losses, 3).tolist()}), in transformers: "
          f"logits max abs diff {diff:.1e} (|logits| ≤ {np.abs(expected).max():.1f})")
    assert diff <= 1e-5 * max(1.0, np.abs(expected).max())
    assert losses[-1] < losses[0]


def test_pretraining_init_names_the_parameters_as_torch_does():
    config = transformers.BertConfig(**RANDOM_CONFIGS["mini"])
    torch_names = {n.removeprefix("bert.") for n, _ in transformers.BertForPreTraining(config).named_parameters()}
    ours = minibert.init_weights(minibert.BertConfig.from_dict(RANDOM_CONFIGS["mini"]), pretraining_heads=True)
    assert set(ours) == torch_names
    model = minibert.BertForPreTraining(minibert.BertConfig.from_dict(RANDOM_CONFIGS["mini"]), ours)
    assert set(model.state_dict()) == {n for n, _ in transformers.BertForPreTraining(config).named_parameters()}
