"""Task helpers against transformers' pipelines on the same checkpoints."""

import shutil

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="live pipeline comparison needs transformers")
pytest.importorskip("torch", reason="live pipeline comparison needs torch")

import minibert  # noqa: E402
from minibert.tasks import classify, fill_mask  # noqa: E402
from tests.fixtures.cases import FIXTURES  # noqa: E402


def test_fill_mask_matches_the_pipeline(tmp_path):
    directory = tmp_path / "mlm"
    shutil.copytree(FIXTURES / "heads" / "masked-lm", directory)
    shutil.copy(FIXTURES / "checkpoints" / "zip" / "vocab.txt", directory)
    pipe = transformers.pipeline("fill-mask", model=str(directory), tokenizer=str(directory), top_k=4)
    model, tokenizer = minibert.BertForMaskedLM.from_pretrained(directory), minibert.BertTokenizer.from_pretrained(directory)
    for text in ("w1 w2 [MASK] w4", "[MASK] w7 w8 w9 w10 w11"):
        expected = pipe(text)
        ours = fill_mask(model, tokenizer, text, top_k=4)[0]
        assert [c["id"] for c in ours] == [e["token"] for e in expected]
        np.testing.assert_allclose([c["probability"] for c in ours], [e["score"] for e in expected], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["sequence-single", "sequence-multi"])
def test_classify_matches_the_pipeline(tmp_path, name):
    directory = tmp_path / name
    shutil.copytree(FIXTURES / "heads" / name, directory)
    shutil.copy(FIXTURES / "checkpoints" / "zip" / "vocab.txt", directory)
    pipe = transformers.pipeline("text-classification", model=str(directory), tokenizer=str(directory), top_k=None)
    model = minibert.BertForSequenceClassification.from_pretrained(directory)
    texts = ["w1 w2 w3", "w40 w41", "w5"]
    for expected, ours in zip(pipe(texts), classify(model, minibert.BertTokenizer.from_pretrained(directory), texts)):
        for entry in expected:
            assert ours["scores"][entry["label"]] == pytest.approx(entry["score"], abs=1e-6)
