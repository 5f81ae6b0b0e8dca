"""Task helpers against transformers' pipelines and sentence-transformers on the same checkpoints."""

import json
import shutil

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="live pipeline comparison needs transformers")
pytest.importorskip("torch", reason="live pipeline comparison needs torch")

import minibert  # noqa: E402
from minibert.tasks import CrossEncoder, SentenceEncoder, classify, fill_mask, pool, pooling_modes  # noqa: E402
from tests.fixtures.cases import FIXTURES  # noqa: E402


def test_fill_mask_matches_the_pipeline(tmp_path):
    directory = tmp_path / "mlm"
    shutil.copytree(FIXTURES / "heads" / "masked-lm", directory)
    shutil.copy(FIXTURES / "checkpoints" / "zip" / "vocab.txt", directory)
    pipe = transformers.pipeline("fill-mask", model=str(directory), tokenizer=str(directory), top_k=4)
    model, tokenizer = (minibert.BertForMaskedLM.from_pretrained(directory),
                        minibert.BertTokenizer.from_pretrained(directory))
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


@pytest.mark.parametrize("activation", [None, "Identity"])
def test_cross_encoder_equals_sentence_transformers(tmp_path, minilm_path, activation):
    """A random-weight cross-encoder saved by sentence-transformers: CrossEncoder's scores are its predict's
    (its default activation for one label, sigmoid, or the one it saved) and rank's order is its rank's."""
    sentence_transformers = pytest.importorskip("sentence_transformers", minversion="6")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64, num_labels=1,
                                     initializer_range=0.5)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "random")
    transformers.BertTokenizer.from_pretrained(str(minilm_path)).save_pretrained(tmp_path / "random")
    options = {} if activation is None else {"activation_fn": getattr(torch.nn, activation)()}
    sentence_transformers.CrossEncoder(str(tmp_path / "random"), device="cpu", **options).save(str(tmp_path / "saved"))
    reference = sentence_transformers.CrossEncoder(str(tmp_path / "saved"), device="cpu")
    assert type(reference.activation_fn).__name__ == (activation or "Sigmoid")

    ours = CrossEncoder.from_pretrained(tmp_path / "saved")
    query = "How many people live in Berlin?"
    documents = ["Berlin has a population of 3.7 million.", "Paris is the capital of France.", "Short.",
                 "Berlin " * 80 + "(longer than the window: cut longest first)",
                 "New York City is famous for its museums."]
    pairs = [(query, d) for d in documents]
    diff = np.abs(ours.predict(pairs, batch_size=2) - reference.predict(pairs)).max()
    print(f"CrossEncoder.predict ({activation or 'Sigmoid'}) vs sentence-transformers: max abs diff {diff:.1e}")
    assert diff <= 1e-5
    assert [r["corpus_id"] for r in ours.rank(query, documents)] == [r["corpus_id"]
                                                                     for r in reference.rank(query, documents)]


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("modes",
                         [["cls"], ["max"], ["mean"], ["mean_sqrt_len_tokens"], ["weightedmean"], ["lasttoken"],
                                   ["mean", "cls"], ["max", "mean_sqrt_len_tokens", "cls"],
                          ["lasttoken", "weightedmean"]])
def test_pooling_equals_sentence_transformers(modes, padding_side):
    """pool() against sentence-transformers' Pooling module, float64, on padded rows (a row of one token
    included); the modes named as its config.json names them."""
    pytest.importorskip("sentence_transformers", minversion="6")
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(3)
    hidden = rng.standard_normal((3, 7, 5))
    lengths = np.array([[7], [4], [1]])
    mask = (np.arange(7) < lengths if padding_side == "right" else np.arange(7) >= 7 - lengths).astype(np.int64)
    module = Pooling(5, pooling_mode=tuple(modes))
    expected = module({"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(mask)})
    ours = pool(hidden, mask, pooling_modes({"pooling_mode": modes}, "test"))
    diff = np.abs(ours - expected["sentence_embedding"].numpy()).max()
    print(f"pooling {modes}, {padding_side} padding: max abs diff {diff:.1e}")
    assert diff <= 1e-15


def test_model_saved_by_sentence_transformers_loads(tmp_path, minilm_path):
    """sentence-transformers 6 saves all-MiniLM-L6-v2 in its own format ("pooling_mode", no max_seq_length
    in sentence_bert_config.json): SentenceEncoder reads the same settings and gives its embeddings."""
    sentence_transformers = pytest.importorskip("sentence_transformers", minversion="6")

    reference = sentence_transformers.SentenceTransformer(str(minilm_path), device="cpu")
    reference.save(str(tmp_path))
    ours = SentenceEncoder.from_pretrained(tmp_path)
    assert ours.max_seq_length == reference.max_seq_length == 256 and ours.pooling == ["mean"] and ours.normalize
    texts = ["The cat sits on the mat.", "Stock markets fell sharply today.", "¿Dónde está la biblioteca?"]
    diff = np.abs(ours.encode(texts) - reference.encode(texts)).max()
    print(f"all-MiniLM-L6-v2 saved by sentence-transformers, 3 sentences: max abs diff {diff:.1e}")
    assert diff <= 1e-6


@pytest.mark.parametrize("pooling_mode", ["mean", ["weightedmean", "lasttoken", "cls"]])
@pytest.mark.parametrize("include_prompt", [True, False])
def test_prompts_equal_sentence_transformers(tmp_path, minilm_path, include_prompt, pooling_mode):
    """Prompts read from config_sentence_transformers.json (a default one among them) and include_prompt
    from the pooling config: encode, encode_query (its own prompt, not the default), encode_document (a
    "document" prompt, blank here, and not "passage"), prompt= and prompt_name= give sentence-transformers'
    embeddings; include_prompt=False leaves [CLS] and the prompt's tokens out of the pooling."""
    pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers import SentenceTransformer

    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    settings = json.loads((directory / "config_sentence_transformers.json").read_text())
    settings.update(prompts={"query": "query: ", "passage": "passage: ", "empty": None}, default_prompt_name="passage")
    (directory / "config_sentence_transformers.json").write_text(json.dumps(settings))
    pooling = {"embedding_dimension": 384, "pooling_mode": pooling_mode, "include_prompt": include_prompt}
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    reference, ours = SentenceTransformer(str(directory), device="cpu"), SentenceEncoder.from_pretrained(directory)
    texts = ["how do castles keep out the cold", "The moat was frozen all winter."]
    calls = {"default prompt": ("encode", {}), "query": ("encode_query", {}), "document": ("encode_document", {}),
             "named": ("encode", {"prompt_name": "passage"}), "empty by name": ("encode", {"prompt_name": "empty"}),
             "given": ("encode", {"prompt": "Represent this sentence: "}), "no prompt": ("encode", {"prompt": ""})}
    for label, (method, options) in calls.items():
        diff = np.abs(getattr(ours, method)(texts, **options) - getattr(reference, method)(texts, **options)).max()
        print(f"prompts, include_prompt={include_prompt}, {label}: max abs diff {diff:.1e}")
        assert diff <= 1e-6, label
    assert np.abs(ours.encode(texts) - ours.encode(texts, prompt="")).max() > 1e-3  # the default prompt changes them


def test_dense_modules_equal_sentence_transformers(tmp_path, minilm_path):
    """A model with two Dense modules after the pooling (tanh with a bias, then identity without one) and
    then Normalize, as sentence-transformers saves it: the same embeddings."""
    pytest.importorskip("sentence_transformers", minversion="6")
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    torch.manual_seed(0)
    base = SentenceTransformer(str(minilm_path), device="cpu")
    modules = [base[0], base[1], Dense(384, 96),
               Dense(96, 64, bias=False, activation_function=torch.nn.Identity()), base[2]]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path))
    reference, ours = SentenceTransformer(str(tmp_path), device="cpu"), SentenceEncoder.from_pretrained(tmp_path)
    texts = ["The cat sits on the mat.", "Stock markets fell sharply today.", "¿Dónde está la biblioteca?"]
    embeddings = ours.encode(texts)
    diff = np.abs(embeddings - reference.encode(texts)).max()
    print(f"two Dense modules: max abs diff {diff:.1e}")
    assert embeddings.shape == (3, 64) and ours.dimension == 64 and diff <= 1e-6


def test_lowercasing_of_sentence_bert_config_equals_sentence_transformers(tmp_path, minilm_path):
    """sentence_bert_config.json's do_lower_case lower-cases the texts whatever the tokenizer does: here a
    tokenizer set not to (so capitals miss the uncased vocabulary) behind it. Per character, as the
    tokenizers library does: a word-final capital sigma becomes σ, not ς."""
    pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers import SentenceTransformer

    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    (directory / "tokenizer.json").unlink()  # tokenizer_config.json's do_lower_case then decides
    settings = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps(dict(settings, do_lower_case=False)))
    texts = ["The Cat Sits On The MAT.", "ΟΔΟΣ ΣΑΣ", "İstanbul Straße"]
    for lower in (False, True):
        (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256,
                                                                         "do_lower_case": lower}))
        reference, ours = SentenceTransformer(str(directory), device="cpu"), SentenceEncoder.from_pretrained(directory)
        diff = np.abs(ours.encode(texts) - reference.encode(texts)).max()
        print(f"sentence_bert_config do_lower_case={lower}: max abs diff {diff:.1e}")
        assert diff <= 1e-6


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_equals_sentence_transformers(tmp_path, minilm_path, name):
    """similarity() by the model's similarity_fn_name (config_sentence_transformers.json), on embeddings
    left unnormalised (no Normalize module) so that the four functions differ."""
    pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers import SentenceTransformer

    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    settings = json.loads((directory / "config_sentence_transformers.json").read_text())
    (directory / "config_sentence_transformers.json").write_text(json.dumps(dict(settings, similarity_fn_name=name)))
    modules = json.loads((directory / "modules.json").read_text())
    (directory / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    reference, ours = SentenceTransformer(str(directory), device="cpu"), SentenceEncoder.from_pretrained(directory)
    queries, documents = ["where is the cat", "market news"], ["The cat sits on the mat.", "Stocks fell.", "A dog."]
    a, b = ours.encode(queries), ours.encode(documents)
    expected = reference.similarity(reference.encode(queries), reference.encode(documents)).numpy()
    scores = ours.similarity(a, b)
    diff = np.abs(scores - expected).max()
    print(f"similarity {name}: max abs diff {diff:.1e} on scores up to {np.abs(expected).max():.1f}")
    assert ours.similarity_fn_name == name and scores.shape == (2, 3) and diff <= 1e-5 * max(1.0,
                                                                                             np.abs(expected).max())


def test_normalize_embeddings_as_in_sentence_transformers(tmp_path, minilm_path):
    """normalize_embeddings=True normalises a model without a Normalize module; False leaves a model's own
    Normalize module in place."""
    pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers import SentenceTransformer

    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    texts = ["The cat sits on the mat.", "Stocks fell."]
    for keep_normalize in (True, False):
        modules = json.loads((minilm_path / "modules.json").read_text())
        (directory / "modules.json").write_text(json.dumps([m for m in modules if keep_normalize
                                                            or not m["type"].endswith("Normalize")]))
        reference, ours = SentenceTransformer(str(directory), device="cpu"), SentenceEncoder.from_pretrained(directory)
        for flag in (False, True):
            expected = reference.encode(texts, normalize_embeddings=flag)
            diff = np.abs(ours.encode(texts, normalize_embeddings=flag) - expected).max()
            print(f"Normalize module {keep_normalize}, normalize_embeddings={flag}: max abs diff {diff:.1e}")
            # float32's bound, relative where the unnormalised vectors exceed 1 (as the similarity test's)
            assert diff <= 1e-5 * max(1.0, np.abs(expected).max()), (keep_normalize, flag, diff)


def test_truncate_dim_equals_sentence_transformers(minilm_path):
    """truncate_dim, set on the encoder or per call, keeps the first values after the model's Normalize
    module; normalize_embeddings=True then normalises the truncated vectors."""
    pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers import SentenceTransformer

    texts = ["The cat sits on the mat.", "Stocks fell."]
    reference = SentenceTransformer(str(minilm_path), device="cpu", truncate_dim=64)
    ours = SentenceEncoder.from_pretrained(minilm_path)
    ours_64 = SentenceEncoder(ours.model, ours.tokenizer, pooling=ours.pooling, normalize=ours.normalize,
                              max_seq_length=ours.max_seq_length, truncate_dim=64)
    assert ours_64.dimension == reference.get_sentence_embedding_dimension() == 64
    for flag in (False, True):
        expected = reference.encode(texts, normalize_embeddings=flag)
        for embeddings in (ours_64.encode(texts, normalize_embeddings=flag),
                           ours.encode(texts, normalize_embeddings=flag, truncate_dim=64)):
            assert embeddings.shape == (2, 64) and np.abs(embeddings - expected).max() <= 1e-6
    assert np.abs(ours_64.encode(texts, truncate_dim=16) - reference.encode(texts, truncate_dim=16)).max() <= 1e-6
