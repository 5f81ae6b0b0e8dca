"""Head classes against freshly built transformers models, and a fine-tuned checkpoint round trip."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="live head parity needs torch")
transformers = pytest.importorskip("transformers", reason="live head parity needs transformers")

import minibert  # noqa: E402
from tests.conftest import logit_tolerance, maxdiff  # noqa: E402
from tests.fixtures.cases import RANDOM_CONFIGS  # noqa: E402

CLASSES = ["BertForMaskedLM", "BertForPreTraining", "BertForNextSentencePrediction", "BertForSequenceClassification",
           "BertForTokenClassification", "BertForQuestionAnswering"]
OUTPUTS = ("logits", "prediction_logits", "seq_relationship_logits", "start_logits", "end_logits")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("class_name", CLASSES)
def test_fresh_transformers_head_round_trip(tmp_path, class_name, dtype):
    """Build with transformers (BERT-Mini's shape, shrunk vocabulary), save, load in minibert: same outputs."""
    torch.manual_seed(0)
    labels = 2 if class_name == "BertForQuestionAnswering" else 3  # transformers splits QA logits into start, end
    config = transformers.BertConfig(**RANDOM_CONFIGS["mini"], num_labels=labels, attn_implementation="eager")
    reference = getattr(transformers, class_name)(config).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    reference.save_pretrained(tmp_path)
    rng = np.random.default_rng(1)
    batch = {"input_ids": rng.integers(0, 1000, (3, 21)), "token_type_ids": rng.integers(0, 2, (3, 21)),
             "attention_mask": (np.arange(21)[None] < np.array([[21], [9], [1]])).astype(np.int64)}
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
        d = maxdiff("live saved BertModel", key, getattr(ours(ids), key), getattr(expected, key).numpy(), np.ones_like(ids))
        assert d <= 1e-5, (key, d)
