"""Head classes against freshly built transformers models, and a fine-tuned checkpoint round trip."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="live head parity needs torch")
transformers = pytest.importorskip("transformers", reason="live head parity needs transformers")

import minibert  # noqa: E402
from tests.conftest import logit_tolerance, maxdiff  # noqa: E402
from tests.fixtures.cases import RANDOM_CONFIGS  # noqa: E402
from tests.fixtures.reference import fresh_model  # noqa: E402

CLASSES = ["BertForMaskedLM", "BertForPreTraining", "BertForNextSentencePrediction", "BertForSequenceClassification",
           "BertForMultipleChoice", "BertForTokenClassification", "BertForQuestionAnswering"]
OUTPUTS = ("logits", "prediction_logits", "seq_relationship_logits", "start_logits", "end_logits")


def inputs_for(class_name: str, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A batch [B, S] as the class takes it: multiple choice, [B, 2, S], each row and the row before it."""
    if class_name != "BertForMultipleChoice":
        return batch
    return {k: np.stack([v, np.roll(v, 1, axis=0)], axis=1) for k, v in batch.items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("class_name", CLASSES)
def test_fresh_transformers_head_round_trip(tmp_path, class_name, dtype):
    """Build with transformers (BERT-Mini's shape, shrunk vocabulary), save, load in minibert: same outputs.
    The LayerNorm eps is not BERT's 1e-12, so that every LayerNorm, the MLM head's too, must read it."""
    labels = 2 if class_name == "BertForQuestionAnswering" else 3  # transformers splits QA logits into start, end
    config = dict(RANDOM_CONFIGS["mini"], layer_norm_eps=1e-5)
    reference = fresh_model(class_name, tmp_path, **config, num_labels=labels).eval()
    rng = np.random.default_rng(1)
    batch = inputs_for(class_name, {
        "input_ids": rng.integers(0, 1000, (3, 21)), "token_type_ids": rng.integers(0, 2, (3, 21)),
        "attention_mask": (np.arange(21)[None] < np.array([[21], [9], [1]])).astype(np.int64)})
    with torch.no_grad():
        expected = reference.to(getattr(torch, dtype))(**{k: torch.from_numpy(v) for k, v in batch.items()})
    model = getattr(minibert, class_name).from_pretrained(tmp_path, dtype=dtype)
    assert model.eval() is model
    assert model.num_parameters() == reference.num_parameters(), "tied arrays are counted once, as in transformers"
    out = model(**batch)
    with torch.no_grad():  # return_dict=False: the same fields as a tuple, in transformers' order
        expected_tuple = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, return_dict=False)
    ours_tuple = model(**batch, return_dict=False)
    assert isinstance(ours_tuple, tuple) and len(ours_tuple) == len(expected_tuple)
    for key, ours_item, reference_item in zip(out.keys(), ours_tuple, expected_tuple):
        assert maxdiff(f"live {class_name} {dtype} tuple", key, ours_item, reference_item.numpy(),
                       batch["attention_mask"]) <= logit_tolerance(dtype, reference_item.numpy())
    for key in OUTPUTS:
        if getattr(expected, key, None) is not None:
            ref = getattr(expected, key).numpy()
            d = maxdiff(f"live {class_name} {dtype}", key, getattr(out, key), ref, batch["attention_mask"])
            assert d <= logit_tolerance(dtype, ref), (key, d)


def test_saved_bert_model_loads_in_transformers(tmp_path, minilm_path):
    """BertModel.save_pretrained writes what transformers' BertModel loads, every tensor used."""
    ours = minibert.BertModel.from_pretrained(minilm_path)
    ours.save_pretrained(tmp_path)
    reference, info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert ours.num_parameters() == reference.num_parameters()
    assert not any(info.values()), info  # nothing missing, unexpected or mismatched
    ids = np.array([[101, 7592, 1010, 2088, 999, 102]])
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(ids))
    for key in ("last_hidden_state", "pooler_output"):
        d = maxdiff("live saved BertModel", key, getattr(ours(ids), key), getattr(expected, key).numpy(),
                    np.ones_like(ids))
        assert d <= 1e-5, (key, d)


def _word_embeddings(model) -> np.ndarray:
    return model.get_input_embeddings().weight.detach().numpy()


@pytest.mark.parametrize("class_name, untied", [(name, False) for name in ["BertModel", *CLASSES]]
                         + [("BertForMaskedLM", True), ("BertForPreTraining", True)])
def test_resize_token_embeddings(tmp_path, class_name, untied):
    """After tokenizer.add_tokens, model.resize_token_embeddings(len(tokenizer)) as in transformers: the old
    rows kept, config.vocab_size and the parameter count the same as transformers', new rows at the old rows'
    mean (transformers draws them around it with 1e-9 of their covariance), a tied MLM bias padded with 0
    (an untied one drawn around its mean). With the new rows copied into transformers' model, both give the
    same outputs on the new ids; the resized model saves into a checkpoint transformers loads whole.
    Untied (tie_word_embeddings=false): the MLM decoder's own weight and bias are read and written, and the
    save also fills transformers 5's unused cls.predictions.bias (with the decoder's bias, which is where
    transformers 4 reads it)."""
    mlm = class_name in ("BertForMaskedLM", "BertForPreTraining")
    reference = fresh_model(class_name, tmp_path / "before", **RANDOM_CONFIGS["mini"], tie_word_embeddings=not untied)
    old = _word_embeddings(reference).copy()
    for new_num_tokens, multiple in ((None, None), (old.shape[0] + 5, None), (old.shape[0] + 5, 8),
                                     (old.shape[0] - 7, None)):
        reference = getattr(transformers, class_name).from_pretrained(tmp_path / "before").eval()
        model = getattr(minibert, class_name).from_pretrained(tmp_path / "before")
        reference.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple)
        ours = model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple, seed=0)
        assert (ours.shape == _word_embeddings(reference).shape
                and model.config.vocab_size == reference.config.vocab_size)
        assert model.num_parameters() == reference.num_parameters()
        kept = min(len(old), len(ours))
        assert np.array_equal(ours[:kept], old[:kept])
        spread = 6 * np.sqrt(1e-9 * old.var(axis=0).max())  # six standard deviations of transformers' draw
        for name, new_rows in (("minibert", ours[kept:]), ("transformers", _word_embeddings(reference)[kept:])):
            assert np.abs(new_rows - old.mean(axis=0)).max(initial=0.0) <= spread, name
        state = model.state_dict()
        if mlm:
            bias = state["cls.predictions.decoder.bias" if untied else "cls.predictions.bias"]
            expected_bias = reference.cls.predictions.decoder.bias.detach().numpy()
            assert np.array_equal(bias[:kept], expected_bias[:kept])
            assert np.abs(bias[kept:] - expected_bias[kept:]).max(initial=0.0) <= (1e-6 if untied else 0.0)
        if new_num_tokens is not None:  # the same parameters in both, then the same outputs on the new ids too
            with torch.no_grad():
                for name, parameter in reference.named_parameters():
                    if name in state:
                        parameter.copy_(torch.from_numpy(state[name]))
        ids = inputs_for(class_name, {"input_ids": np.array([[1, len(ours) - 1, 5, len(ours) - 2, 2]])})["input_ids"]
        with torch.no_grad():
            expected = reference(torch.from_numpy(ids))
        out = model(ids)
        for key in ("last_hidden_state", *OUTPUTS):
            if getattr(expected, key, None) is not None:
                ref = getattr(expected, key).numpy()
                d = maxdiff(f"live resized {class_name} {'untied' if untied else 'tied'}", key, getattr(out, key),
                            ref, np.ones_like(ids))
                assert d <= logit_tolerance("float32", ref), (key, d)
    model.save_pretrained(tmp_path / "after")
    loaded, info = getattr(transformers, class_name).from_pretrained(tmp_path / "after", output_loading_info=True)
    assert not any(info.values()), info  # nothing missing, unexpected or mismatched, tied or untied
    assert loaded.config.vocab_size == model.config.vocab_size
