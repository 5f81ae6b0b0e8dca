"""Every head class against transformers' outputs for the same checkpoint (frozen fixtures, no torch)."""

import copy
import pickle

import numpy as np
import pytest

import minibert
import minibert.loading.weights
from minibert import WeightsError
from tests.conftest import logit_tolerance, maxdiff
from tests.fixtures.cases import FIXTURES

HEADS = FIXTURES / "heads"
OUTPUTS = np.load(HEADS / "outputs.npz")
BATCH = {k.removeprefix("input/"): OUTPUTS[k] for k in OUTPUTS.files if k.startswith("input/")}
CHOICES = {k.removeprefix("choices/"): OUTPUTS[k] for k in OUTPUTS.files if k.startswith("choices/")}  # [B, C, S]
CLASSES = {
    "masked-lm": "BertForMaskedLM", "pretraining": "BertForPreTraining",
    "next-sentence": "BertForNextSentencePrediction",
    "sequence-single": "BertForSequenceClassification", "sequence-multi": "BertForSequenceClassification",
    "sequence-regression": "BertForSequenceClassification", "token": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering", "multiple-choice": "BertForMultipleChoice",
}


def check_outputs(label, out, expected: dict, dtype):
    failures = []
    for key, reference in expected.items():
        d = maxdiff(label, key, getattr(out, key), reference, BATCH["attention_mask"])
        if d > logit_tolerance(dtype, reference):
            failures.append(f"{key}: {d:.2e} > {logit_tolerance(dtype, reference):.1e}")
    assert not failures, failures


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CLASSES))
def test_head_matches_transformers(name, dtype):
    model = getattr(minibert, CLASSES[name]).from_pretrained(HEADS / name, dtype=dtype)
    out = model(**(CHOICES if name == "multiple-choice" else BATCH), output_hidden_states=True, output_attentions=True)
    prefix = f"{name}/{dtype}/"
    expected = {k[len(prefix):]: OUTPUTS[k] for k in OUTPUTS.files if k.startswith(prefix)}
    assert expected
    check_outputs(f"head {name} {dtype}", out, expected, dtype)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2


def test_labels_and_problem_types_come_from_config_json():
    single = minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-single")
    assert single.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert single.config.problem_type == "single_label_classification"
    multi = minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-multi")
    assert multi.config.problem_type == "multi_label_classification"
    regression = minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-regression")
    assert regression.config.problem_type == "regression" and regression.config.num_labels == 1


def test_google_style_pretraining_checkpoint_gives_mlm_and_nsp():
    """A .bin with bert.* and cls.* keys, tied decoder stored, as the miniatures' pytorch_model.bin."""
    reference = np.load(FIXTURES / "checkpoints" / "reference.npz")
    batch = {k.removeprefix("input/"): reference[k] for k in reference.files if k.startswith("input/")}
    for layout in ("zip", "legacy", "safetensors"):
        out = minibert.BertForPreTraining.from_pretrained(FIXTURES / "checkpoints" / layout)(**batch)
        for key in ("prediction_logits", "seq_relationship_logits"):
            d = maxdiff(f"pretraining {layout}", key, getattr(out, key), reference[key], batch["attention_mask"])
            assert d <= logit_tolerance("float32", reference[key]), (layout, key, d)
        mlm = minibert.BertForMaskedLM.from_pretrained(FIXTURES / "checkpoints" / layout)(**batch)
        np.testing.assert_allclose(mlm.logits, out.prediction_logits, rtol=0, atol=1e-6)


def test_decoder_is_tied_to_the_word_embeddings():
    """save_pretrained omits the tied decoder weight and bias; they come from the originals."""
    model = minibert.BertForMaskedLM.from_pretrained(HEADS / "masked-lm")
    decoder = model.head["cls"]["predictions"]["decoder"]
    np.testing.assert_array_equal(decoder["weight"], model.bert.weights["embeddings"]["word_embeddings"]["weight"])
    stored = minibert.loading.weights.read_weights(HEADS / "masked-lm" / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in stored and "cls.predictions.decoder.bias" not in stored
    np.testing.assert_array_equal(decoder["bias"], stored["cls.predictions.bias"])



def test_untied_decoder_saves_its_own_weight_and_bias(tmp_path):
    """tie_word_embeddings=false: the decoder keeps its own weight and bias (cls.predictions.decoder.*); the
    save also writes the bias as cls.predictions.bias, the name transformers 4 reads it by, and the saved
    model loads back equal."""
    config = minibert.BertConfig.from_dict(
        {**minibert.BertForMaskedLM.from_pretrained(HEADS / "masked-lm").config.to_dict(),
         "tie_word_embeddings": False})
    weights = minibert.loading.weights.read_weights(HEADS / "masked-lm" / "model.safetensors")
    rng = np.random.default_rng(0)
    weights["cls.predictions.decoder.weight"] = rng.normal(size=weights["bert.embeddings.word_embeddings.weight"].shape)
    weights["cls.predictions.decoder.bias"] = rng.normal(size=weights["cls.predictions.bias"].shape)
    model = minibert.BertForMaskedLM(config, weights)
    assert "cls.predictions.bias" not in model.state_dict()  # one name per parameter, as named_parameters()
    model.save_pretrained(tmp_path)
    stored = minibert.loading.weights.read_weights(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(stored["cls.predictions.bias"], stored["cls.predictions.decoder.bias"])
    np.testing.assert_array_equal(stored["cls.predictions.decoder.bias"],
                                  weights["cls.predictions.decoder.bias"].astype(np.float32))
    loaded = minibert.BertForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded(**BATCH).logits, model(**BATCH).logits)

def test_new_classification_head_on_a_pretrained_encoder_warns():
    with pytest.warns(UserWarning,
                      match="the checkpoint has no classifier.weight, classifier.bias; they are newly initialised"):
        model = minibert.BertForSequenceClassification.from_pretrained(FIXTURES / "checkpoints" / "zip", num_labels=3)
    assert model.config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert model([[2, 5, 3]]).logits.shape == (1, 3)
    with pytest.warns(UserWarning, match="qa_outputs.weight"):
        minibert.BertForQuestionAnswering.from_pretrained(FIXTURES / "checkpoints" / "zip")


def test_missing_pretraining_head_is_an_error(minilm_path):
    with pytest.raises(WeightsError, match="this model has no masked-LM head, which BertForMaskedLM needs"):
        minibert.BertForMaskedLM.from_pretrained(minilm_path)


def test_bad_problem_type_is_a_clear_error():
    with pytest.raises(minibert.ConfigError, match="problem_type 'ranking' is not supported"):
        minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-single", problem_type="ranking")


def test_eval_train_and_return_dict_as_code_written_for_transformers_uses_them():
    """model.eval() and model.train() return the model and switch dropout off and on; return_dict=False gives
    a tuple."""
    model = minibert.BertForMaskedLM.from_pretrained(HEADS / "masked-lm")
    assert model.eval() is model and model.train(False) is model
    as_tuple = model(**BATCH, output_hidden_states=True, return_dict=False)  # model(...) is model.forward(...)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(as_tuple[0], model.forward(**BATCH).logits)
    assert model.train() is model and model.training and model.bert.training  # see test_transformers_api_models
    assert model.eval() is model and not model.bert.training
    tied = model.head["cls"]["predictions"]["decoder"]["weight"]
    flatten = minibert.loading.weights.flatten
    every_array = [*flatten(model.bert.weights).values(), *flatten(model.head).values()]
    assert model.num_parameters() == sum(a.size for a in every_array) - tied.size  # the tied decoder counted once


@pytest.mark.parametrize("copy_model", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
                         ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("class_name", ["BertModel", "BertForMaskedLM"])
def test_copies_are_independent_models(copy_model, class_name):
    """A copy gives the same outputs, shares no memory with the original, and its own fast path sees
    in-place changes to its own parameters (the one-copy layout is rebuilt, not copied as loose arrays)."""
    model = getattr(minibert, class_name).from_pretrained(HEADS / "masked-lm")
    model.use_fast = True
    twin = copy_model(model)
    key = "logits" if class_name == "BertForMaskedLM" else "last_hidden_state"
    np.testing.assert_array_equal(getattr(twin(**BATCH), key), getattr(model(**BATCH), key))
    originals = list(model.state_dict().values())
    assert not any(np.shares_memory(a, b) for a in twin.state_dict().values() for b in originals)
    before = getattr(model(**BATCH), key)
    for array in twin.state_dict().values():
        if not array.flags.writeable:  # as AdamW does: the weights the fast path packed are read-only until then
            array.flags.writeable = True
        array *= 1.5  # in place, as an optimizer step
    np.testing.assert_array_equal(getattr(model(**BATCH), key), before)
    encoder = twin if class_name == "BertModel" else twin.bert
    fast = getattr(twin(**BATCH), key)
    encoder.use_fast = False
    d = maxdiff(f"{class_name} copy, changed in place", key, fast, getattr(twin(**BATCH), key), BATCH["attention_mask"])
    assert d <= logit_tolerance("float32", fast) and not np.allclose(fast, before)


@pytest.mark.parametrize("class_name", ["BertModel", "BertForMaskedLM"])
def test_resize_token_embeddings_for_added_tokens(class_name, tmp_path):
    """tokenizer.add_tokens, then model.resize_token_embeddings(len(tokenizer)): the new ids run, the old
    ones give what they gave, the fast path sees the new array and in-place changes to it, and the resized
    model saves and loads. The comparison with transformers' resize is in test_heads_live.py."""
    model = getattr(minibert, class_name).from_pretrained(HEADS / "masked-lm")
    old = model.state_dict()
    key = "logits" if class_name == "BertForMaskedLM" else "last_hidden_state"
    before = getattr(model(**BATCH), key)
    n = model.config.vocab_size
    array = model.resize_token_embeddings(n + 3, seed=0)
    assert array.shape == (n + 3, model.config.hidden_size) and model.config.vocab_size == n + 3
    assert model.num_parameters() == sum(a.size
                                         for a in old.values()) + 3 * model.config.hidden_size + 3 * (key == "logits")
    after = getattr(model(**BATCH), key)
    np.testing.assert_array_equal(after[..., :n], before)  # the old vocabulary's scores (hidden states) unchanged
    if key == "logits":
        assert np.array_equal(model.head["cls"]["predictions"]["decoder"]["weight"], array)  # still tied
        assert (model.state_dict()["cls.predictions.bias"][n:] == 0).all()
    ids = np.array([[2, n, n + 2, 5]])
    encoder = model if class_name == "BertModel" else model.bert
    fast = getattr(model(ids), key)
    array[n:] += 0.5  # in place, as an optimizer step: the fast path sees it
    changed = getattr(model(ids), key)
    encoder.use_fast = False
    d = maxdiff(f"{class_name} resized", key, changed, getattr(model(ids), key), np.ones_like(ids))
    assert d <= logit_tolerance("float32", changed) and not np.allclose(fast, changed)
    np.testing.assert_array_equal(model.resize_token_embeddings(n + 3, seed=5), array)  # the same size: unchanged
    model.save_pretrained(tmp_path)
    loaded = getattr(minibert, class_name).from_pretrained(tmp_path)
    assert loaded.config.vocab_size == n + 3 and loaded.state_dict().keys() == model.state_dict().keys()
    assert all(np.array_equal(a, loaded.state_dict()[k]) for k, a in model.state_dict().items())


def test_resize_token_embeddings_rows_and_sizes():
    """New rows: at the old rows' mean, 1e-9 of their covariance around it (reproducible with a seed), or
    N(0, initializer_range²); sizes rounded up to a multiple, or cut; bad sizes are clear errors."""
    def fresh():
        return minibert.BertModel.from_pretrained(HEADS / "masked-lm")
    model = fresh()
    old = model.state_dict()["embeddings.word_embeddings.weight"].copy()
    n, hidden = old.shape
    new = model.resize_token_embeddings(n + 4, seed=1)[n:]
    np.testing.assert_array_equal(new, fresh().resize_token_embeddings(n + 4, seed=1)[n:])
    assert np.abs(new - old.mean(axis=0)).max() <= 6 * np.sqrt(1e-9 * old.var(axis=0).max()) and new.std() > 0
    spread = fresh().resize_token_embeddings(n + 50, mean_resizing=False, seed=1)[n:]
    std = model.config.initializer_range
    assert np.abs(spread).max() <= 6 * std and 0.8 * std < spread.std() < 1.2 * std
    assert fresh().resize_token_embeddings(n + 1, pad_to_multiple_of=64).shape == (-(-(n + 1) // 64) * 64, hidden)
    assert fresh().resize_token_embeddings(pad_to_multiple_of=7).shape == (-(-n // 7) * 7, hidden)
    small = fresh()
    np.testing.assert_array_equal(small.resize_token_embeddings(n - 10), old[:n - 10])
    with pytest.raises(ValueError,
                       match=f"input_ids holds {n - 10} at position \\[0, 0\\]; values must lie in \\[0, {n - 10}\\)"):
        small(np.array([[n - 10]]))
    for arguments, message in [((0,), "new_num_tokens must be a positive integer, got 0"),
                               (("9",), "new_num_tokens must be a positive integer, got '9'"),
                               ((None, 0), "pad_to_multiple_of must be a positive integer, got 0")]:
        with pytest.raises(ValueError, match=message):
            fresh().resize_token_embeddings(*arguments)


def test_multiple_choice_inputs():
    """BertForMultipleChoice takes [batch, choices, seq] (inputs_embeds [batch, choices, seq, hidden]); each
    choice is scored as a sequence of its own, and anything else is an error that names the input."""
    model = minibert.BertForMultipleChoice.from_pretrained(HEADS / "multiple-choice", dtype="float64")
    logits = model(**CHOICES).logits
    one_by_one = [model(**{k: v[:, c:c + 1] for k, v in CHOICES.items()}).logits[:, 0]  # [B, 1, S] -> [B]
                  for c in range(CHOICES["input_ids"].shape[1])]
    np.testing.assert_allclose(logits, np.stack(one_by_one, axis=1), rtol=0, atol=1e-12)
    table = model.state_dict()["bert.embeddings.word_embeddings.weight"]
    vectors = {**CHOICES, "inputs_embeds": table[CHOICES["input_ids"]], "input_ids": None}
    model.bert.use_fast = False  # inputs_embeds runs on the reference path: compare it with the same path's ids
    np.testing.assert_array_equal(model(**vectors).logits, model(**CHOICES).logits)
    model.bert.use_fast = True
    seq = CHOICES["input_ids"].shape[2]
    np.testing.assert_array_equal(model(**CHOICES, position_ids=np.arange(seq)).logits, logits)
    for inputs, message in [
        ({"input_ids": BATCH["input_ids"]},
         r"takes input_ids as a non-empty \[batch, choices, seq\] array, got shape \(2, 8\)"),
        ({**CHOICES, "attention_mask": BATCH["attention_mask"]}, r"attention_mask has shape \(2, 8\), but the "
                                                               r"\[batch, choices, seq\] of input_ids is \(2, 2, 8\)"),
        ({"input_ids": [[[1, 2], [3]]]}, "input_ids must be a rectangular"),
        ({"inputs_embeds": np.zeros((2, 2, 8))}, r"takes inputs_embeds as a non-empty \[batch, choices, seq, hidden\]"),
        ({**CHOICES, "position_ids": np.arange(seq)[None]}, r"position_ids has shape \(1, 8\)"),
        ({"attention_mask": CHOICES["attention_mask"]}, r"give input_ids \(or inputs_embeds\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            model(**inputs)
