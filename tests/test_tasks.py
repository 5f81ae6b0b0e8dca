"""The task helpers and SentenceEncoder."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import minibert
from minibert.tasks import CrossEncoder, SentenceEncoder, classify, extract_answer, fill_mask, pool, tag_tokens
from tests.fixtures.cases import FIXTURES

CHECKPOINT = FIXTURES / "checkpoints" / "zip"  # BertForPreTraining with a 60-token vocabulary
HEADS = FIXTURES / "heads"


def with_vocab(tmp_path, name):
    """A head fixture directory plus the vocabulary its ids index."""
    directory = tmp_path / name
    shutil.copytree(HEADS / name, directory)
    shutil.copy(CHECKPOINT / "vocab.txt", directory)
    return directory


def softmax64(x):
    e = np.exp(x - x.max())
    return e / e.sum()


# ---- sentence embeddings --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoder(minilm_path):
    return SentenceEncoder.from_pretrained(minilm_path)


def test_embeddings_equal_sentence_transformers(encoder):
    data = np.load(FIXTURES / "sentence_embeddings.npz")
    ours = encoder.encode(list(data["sentences"]), batch_size=16)
    reference = data["embeddings"]
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    print(f"sentence embeddings: {len(ours)} sentences, min cosine {cosine.min():.8f}, "
          f"max abs diff {np.abs(ours - reference).max():.1e}")
    assert encoder.pooling == ["mean"] and encoder.normalize and encoder.max_seq_length == 256
    assert np.abs(ours - reference).max() <= 1e-5


def test_semantic_search_ranks_the_same_neighbours(encoder):
    data = np.load(FIXTURES / "sentence_embeddings.npz")
    corpus = encoder.encode(list(data["sentences"][:200]))
    queries = encoder.encode(list(data["queries"]))
    neighbours = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(neighbours, data["neighbours"])


def test_input_order_single_sentence_and_long_inputs(encoder):
    sentences = ["short one", "a somewhat longer sentence about castles and ghosts", "mid length text"]
    together = encoder.encode(sentences)
    for i, s in enumerate(sentences):
        np.testing.assert_allclose(encoder.encode(s), together[i], rtol=0, atol=1e-6)
    long_text = " ".join(["the ghost walks upon the platform at midnight"] * 80)  # ~640 tokens
    truncated, averaged = encoder.encode(long_text), encoder.encode(long_text, long_inputs="average")
    assert truncated.shape == averaged.shape == (384,)
    np.testing.assert_allclose(np.linalg.norm(averaged), 1.0, rtol=1e-6)
    np.testing.assert_allclose(encoder.encode(sentences, long_inputs="average"), together, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="long_inputs='split'"):
        encoder.encode("x", long_inputs="split")


@pytest.mark.parametrize("pooling_config, modes", [
    ({"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True}, ["mean"]),  # as version 6 saves it
    ({"pooling_mode": ["max", "mean_sqrt_len_tokens", "cls"]}, ["max", "mean_sqrt_len", "cls"]),  # in the order listed
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True}, ["cls", "mean"]),  # older flags: fixed order
    ({"pooling_mode_mean_tokens": False}, ["mean"]),  # no flag set: mean, as version 6 reads it
    ({"pooling_mode_lasttoken": True, "pooling_mode_weightedmean_tokens": True}, ["weightedmean", "lasttoken"]),
])
def test_pooling_config_of_every_sentence_transformers_version(tmp_path, minilm_path, encoder, pooling_config, modes):
    """A model saved by sentence-transformers 6 writes its Pooling config as "pooling_mode"; older ones as
    one flag per mode. Both load, the modes concatenated in sentence-transformers' order; the embeddings
    are the pooled hidden states of the same model."""
    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    loaded = SentenceEncoder.from_pretrained(directory)
    assert loaded.pooling == modes and loaded.dimension == 384 * len(modes)
    texts = ["a cat sits on the mat", "stocks fell"]
    batch = encoder.tokenizer(texts, padding=True, return_tensors="np")
    hidden = encoder.model(**batch).last_hidden_state
    pooled = pool(hidden, batch["attention_mask"], modes)
    np.testing.assert_allclose(loaded.encode(texts), pooled / np.linalg.norm(pooled, axis=1, keepdims=True),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("pooling_config, message", [
    ({"pooling_mode": ["mean", "attention"]}, r"pooling \['attention'\] is not supported"),
    ({"pooling_mode": 3}, "pooling_mode must be a string or a list, got 3"),
    ({"pooling_mode": []}, r"pooling_mode must be a mode or a list of modes, got \[\]"),
])
def test_unsupported_pooling_configs_are_named(tmp_path, minilm_path, pooling_config, message):
    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    with pytest.raises(ValueError, match=message):
        SentenceEncoder.from_pretrained(directory)


def test_encoder_errors(encoder):
    with pytest.raises(ValueError, match="pooling \\['weighted'\\]"):
        SentenceEncoder(encoder.model, encoder.tokenizer, pooling=["weighted"])
    for too_short in (0, 2):  # a window must hold [CLS], [SEP] and a token, or the text is lost
        with pytest.raises(ValueError, match=f"max_seq_length must be an integer ≥ 3, got {too_short}"):
            SentenceEncoder(encoder.model, encoder.tokenizer, max_seq_length=too_short)
    for batch_size in (0, -1):  # -1 gave NaN embeddings: no batch ran
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {batch_size}"):
            encoder.encode(["a sentence"], batch_size=batch_size)
    with pytest.raises(TypeError, match="sentences must be a str or a list of str, got NoneType"):
        encoder.encode(None)
    empty = encoder.encode([])  # an empty batch in, an empty batch out: [0, D]
    assert empty.shape == (0, encoder.dimension) and empty.dtype == encoder.model.dtype


def dense_model(tmp_path, minilm_path, modules: list[str], config: dict | None = None, tensors: dict | None = None):
    """A copy of all-MiniLM-L6-v2 whose modules.json chains `modules` (a Dense folder 2_Dense, written with
    `config` and `tensors`)."""
    from safetensors.numpy import save_file

    directory = tmp_path / "model"
    shutil.copytree(minilm_path, directory)
    folders = {"Transformer": "", "Pooling": "1_Pooling", "Dense": "2_Dense", "Normalize": "2_Normalize",
               "Router": "3_Router"}
    entries = [{"idx": i, "name": str(i), "path": folders[m], "type": f"sentence_transformers.models.{m}"}
               for i, m in enumerate(modules)]
    (directory / "modules.json").write_text(json.dumps(entries))
    if config is not None:
        (directory / "2_Dense").mkdir()
        (directory / "2_Dense" / "config.json").write_text(json.dumps(config))
        save_file(tensors, str(directory / "2_Dense" / "model.safetensors"))
    return directory


DENSE_CONFIG = {"in_features": 384, "out_features": 8, "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh"}
DENSE_TENSORS = {"linear.weight": np.ones((8, 384), np.float32), "linear.bias": np.zeros(8, np.float32)}


@pytest.mark.parametrize("modules, config, tensors, message", [
    (["Transformer", "Pooling", "Router"], None, None, "module Router is not supported"),
    (["Transformer", "Normalize", "Pooling"], None, None,
     r"modules \['Transformer', 'Normalize', 'Pooling'\]; minibert runs"),
    (["Transformer", "Pooling", "Dense"],
     dict(DENSE_CONFIG, activation_function="torch.nn.modules.activation.Softplus"),
     DENSE_TENSORS, "activation Softplus is not supported"),
    (["Transformer", "Pooling", "Dense"], {"in_features": 384}, DENSE_TENSORS,
     "must give a Dense module's in_features and out_features"),
    (["Transformer", "Pooling", "Dense"], DENSE_CONFIG, {"linear.weight": DENSE_TENSORS["linear.weight"]},
     "missing linear.bias"),
    (["Transformer", "Pooling", "Dense"], dict(DENSE_CONFIG, bias=False), DENSE_TENSORS, "unexpected linear.bias"),
    (["Transformer", "Pooling", "Dense"], dict(DENSE_CONFIG, in_features=100),
     {"linear.weight": np.ones((8, 100), np.float32), "linear.bias": np.zeros(8, np.float32)},
     "dense.0. takes 100 features, but gets 384"),
])
def test_modules_minibert_cannot_run_are_named(tmp_path, minilm_path, modules, config, tensors, message):
    """A module left out would change the embeddings without a word: each such model is an error."""
    with pytest.raises((ValueError, minibert.WeightsError), match=message):
        SentenceEncoder.from_pretrained(dense_model(tmp_path, minilm_path, modules, config, tensors))


def test_truncate_dim_errors_and_empty_batches(encoder):
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer, got 0"):
        SentenceEncoder(encoder.model, encoder.tokenizer, truncate_dim=0)
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer, got -3"):
        encoder.encode("a", truncate_dim=-3)
    assert encoder.encode([], truncate_dim=16).shape == (0, 16)
    small = SentenceEncoder(encoder.model, encoder.tokenizer, truncate_dim=8)
    # a call's truncate_dim replaces the encoder's, empty batch or not
    for dim, expected in ((None, 8), (4, 4), (32, 32)):
        assert small.encode([], truncate_dim=dim).shape[1] == small.encode(["a"], truncate_dim=dim).shape[1] == expected
    assert encoder.encode(["a"], truncate_dim=1000).shape == (1, 384)  # as many as there are


def test_similarity_errors(encoder):
    with pytest.raises(ValueError, match="similarity_fn_name 'jaccard': choose from cosine, dot, euclidean, manhattan"):
        SentenceEncoder(encoder.model, encoder.tokenizer, similarity_fn_name="jaccard")
    with pytest.raises(ValueError,
                       match=r"similarity takes \[N, D\] and \[M, D\] embeddings, got shapes \(1, 384\) and \(2, 3\)"):
        encoder.similarity(encoder.encode("a"), np.ones((2, 3)))


def test_prompts(encoder):
    """A prompt is text put before each sentence; a named or default one comes from `prompts`."""
    texts = ["castles in winter", "a frozen moat"]
    prompted = SentenceEncoder(encoder.model, encoder.tokenizer, normalize=True, prompts={"query": "query: "},
                               default_prompt_name="query")
    expected = encoder.encode(["query: " + t for t in texts])
    for embeddings in (prompted.encode(texts), prompted.encode_query(texts), encoder.encode(texts, prompt="query: ")):
        np.testing.assert_array_equal(embeddings, expected)
    np.testing.assert_array_equal(prompted.encode(texts, prompt=""), encoder.encode(texts))  # "" overrides the default
    np.testing.assert_array_equal(prompted.encode_document(texts), encoder.encode(texts))  # "document": blank here


@pytest.mark.parametrize("options, call, error, message", [
    ({"prompts": {"query": "q: "}, "default_prompt_name": "passage"}, {}, ValueError,
     r"default_prompt_name 'passage' is not among the prompts \(query, document\)"),
    ({"prompts": ["q: "]}, {}, TypeError, "prompts must be a dict of name: prompt text"),
    ({"include_prompt": "no"}, {}, TypeError, "include_prompt must be True or False, got 'no'"),
    ({}, {"prompt_name": "passage"}, ValueError, r"prompt_name 'passage' is not among the prompts \(query, document\)"),
    ({}, {"prompt_name": "query", "prompt": "q: "}, ValueError, "give prompt or prompt_name, not both"),
    ({}, {"prompt": 3}, TypeError, "prompt must be a str, got int"),
    ({}, {"prompt": "q: ", "long_inputs": "average"}, ValueError, "long_inputs='average' cannot take a prompt"),
])
def test_prompt_errors(encoder, options, call, error, message):
    with pytest.raises(error, match=message):
        SentenceEncoder(encoder.model, encoder.tokenizer, **options).encode("a sentence", **call)


def test_pooling_may_be_one_mode_by_name(encoder):
    one = SentenceEncoder(encoder.model, encoder.tokenizer, pooling="cls")
    assert one.pooling == ["cls"] and one.encode("a sentence").shape == (encoder.model.config.hidden_size,)


# ---- fill-mask, classification, answers, tags -----------------------------------------------------------

def test_fill_mask_ranks_by_the_models_probabilities():
    model = minibert.BertForPreTraining.from_pretrained(CHECKPOINT)
    tokenizer = minibert.BertTokenizer.from_pretrained(CHECKPOINT)
    result = fill_mask(model, tokenizer, "w1 [MASK] w3 [MASK]", top_k=3)
    logits = model(**tokenizer("w1 [MASK] w3 [MASK]", return_tensors="np")).prediction_logits[0]
    for candidates, position in zip(result, (2, 4)):
        p = softmax64(logits[position].astype(np.float64))
        assert [c["id"] for c in candidates] == list(np.argsort(-p)[:3])
        np.testing.assert_allclose([c["probability"] for c in candidates], np.sort(p)[::-1][:3], rtol=1e-12)
        assert [c["token"] for c in candidates] == tokenizer.convert_ids_to_tokens([c["id"] for c in candidates])
    assert len(fill_mask(model, tokenizer, ["w1 [MASK]", "[MASK] w2"], top_k=2)) == 2
    with pytest.raises(ValueError, match=r"text 1 has no \[MASK\]"):
        fill_mask(model, tokenizer, ["w1 [MASK]", "w2"])
    for top_k in (0, -1, 1.5):  # -1 listed all but one token
        with pytest.raises(ValueError, match=f"top_k must be a positive integer, got {top_k}"):
            fill_mask(model, tokenizer, "w1 [MASK]", top_k=top_k)
    assert fill_mask(model, tokenizer, []) == []  # an empty batch in, an empty batch out, as classify
    with pytest.raises(TypeError, match="text must be a str or a list of str, got int"):
        fill_mask(model, tokenizer, 5)


@pytest.mark.parametrize("name", ["sequence-single", "sequence-multi", "sequence-regression"])
def test_classify_by_problem_type(tmp_path, name):
    directory = with_vocab(tmp_path, name)
    model = minibert.BertForSequenceClassification.from_pretrained(directory)
    tokenizer = minibert.BertTokenizer.from_pretrained(directory)
    texts = ["w1 w2 w3", "w4", "w5 w6"]
    results = classify(model, tokenizer, texts, batch_size=2)
    labels = model.config.id2label
    for text, result in zip(texts, results):
        logits = model(**tokenizer(text, return_tensors="np")).logits[0].astype(np.float64)
        if name == "sequence-regression":
            assert result == {"score": pytest.approx(float(logits[0]), abs=1e-5)}
        elif name == "sequence-multi":
            p = 1 / (1 + np.exp(-logits))
            assert result["labels"] == [labels[i] for i in range(len(p)) if p[i] > 0.5]
            np.testing.assert_allclose(list(result["scores"].values()), p, atol=1e-6)
        else:
            p = softmax64(logits)
            assert result["label"] == labels[int(np.argmax(p))] and result["label"] in ("negative",
                                                                                        "neutral", "positive")
            np.testing.assert_allclose(list(result["scores"].values()), p, atol=1e-6)


def test_classify_pairs_and_mistakes(tmp_path):
    directory = with_vocab(tmp_path, "sequence-single")
    model = minibert.BertForSequenceClassification.from_pretrained(directory)
    tokenizer = minibert.BertTokenizer.from_pretrained(directory)
    logits = model(**tokenizer("w1 w2", "w3", return_tensors="np")).logits[0].astype(np.float64)
    assert classify(model, tokenizer, "w1 w2", "w3")[0]["score"] == pytest.approx(softmax64(logits).max(), abs=1e-6)
    assert classify(model, tokenizer, "w1 w2", "w3") == classify(model, tokenizer, ["w1 w2"], ["w3"])
    with pytest.raises(ValueError, match="2 texts but 1 text_pairs"):
        classify(model, tokenizer, ["w1", "w2"], ["w3"])
    for batch_size in (0, -1):  # -1 returned no results
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {batch_size}"):
            classify(model, tokenizer, ["w1"], batch_size=batch_size)


def test_cross_encoder_scores_pairs_through_its_activation(tmp_path):
    """One-label model: the pair's logit through a sigmoid, or the activation config_sentence_transformers.json
    names; rank() puts the best first."""
    directory = with_vocab(tmp_path, "sequence-regression")
    model = minibert.BertForSequenceClassification.from_pretrained(directory)
    tokenizer = minibert.BertTokenizer.from_pretrained(directory)
    documents = ["w1 w2 w3", "w4", "w5 w6 w7 w8", "w9 w10"]
    logits = np.array([model(**tokenizer("w11 w12", d, return_tensors="np")).logits[0, 0] for d in documents],
                      np.float64)
    for saved, activation in ((None, lambda x: 1 / (1 + np.exp(-x))),
                              ("torch.nn.modules.linear.Identity", lambda x: x)):
        if saved is not None:
            (directory / "config_sentence_transformers.json").write_text(json.dumps({"activation_fn": saved}))
        ranked = CrossEncoder.from_pretrained(directory).rank("w11 w12", documents, return_documents=True)
        assert [r["corpus_id"] for r in ranked] == np.argsort(-logits, kind="stable").tolist()
        assert [r["text"] for r in ranked] == [documents[r["corpus_id"]] for r in ranked]
        np.testing.assert_allclose([r["score"] for r in ranked], activation(logits)[[r["corpus_id"] for r in ranked]],
                                   rtol=0, atol=1e-6)
    cross_encoder = CrossEncoder(model, tokenizer)
    assert cross_encoder.activation_fn == "Sigmoid" and cross_encoder.predict([]).shape == (0,)
    assert [r["corpus_id"] for r in cross_encoder.rank("w11", documents, top_k=2)] == \
        [r["corpus_id"] for r in cross_encoder.rank("w11", documents, batch_size=3)][:2]
    assert cross_encoder.rank("w11", []) == []
    with pytest.raises(ValueError, match="activation_fn my.Activation is not supported"):
        CrossEncoder(model, tokenizer, "my.Activation")
    classifier = CrossEncoder.from_pretrained(with_vocab(tmp_path, "sequence-single"))
    assert classifier.activation_fn == "Identity" and classifier.predict([("w1", "w2")]).shape == (1, 3)
    with pytest.raises(ValueError, match="rank needs a cross-encoder with one label; this model has 3"):
        classifier.rank("w11", documents)
    with pytest.raises(TypeError, match="query must be a str, got list"):
        cross_encoder.rank(["w11"], documents)
    with pytest.raises(TypeError, match=r"pairs must be a list of \(str, str\)"):
        cross_encoder.predict([("w1", "w2", "w3")])


def brute_force_answer(model, tokenizer, question, context, max_answer_length):
    """Every span of a context that fits one window, scored independently of extract_answer's code."""
    enc = tokenizer(question, context, return_offsets_mapping=True, return_tensors="np")
    out = model(enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
    context_positions = np.flatnonzero(enc["token_type_ids"][0] == 1)[:-1]  # B's tokens, not the final [SEP]
    ps = softmax64(out.start_logits[0, context_positions].astype(np.float64))
    pe = softmax64(out.end_logits[0, context_positions].astype(np.float64))
    best = max((ps[i] * pe[j], i, j) for i in range(len(ps)) for j in range(i, min(len(pe), i + max_answer_length)))
    offsets = enc["offset_mapping"][0]
    return best[0], int(offsets[context_positions[best[1]]][0]), int(offsets[context_positions[best[2]]][1])


def test_extract_answer_in_one_window(tmp_path):
    directory = with_vocab(tmp_path, "question-answering")
    model, tokenizer = (minibert.BertForQuestionAnswering.from_pretrained(directory),
                        minibert.BertTokenizer.from_pretrained(directory))
    question, context = "w1 w2", "w10 w11, w12 w13 w14."
    answer = extract_answer(model, tokenizer, question, context, max_answer_length=3)
    score, start, end = brute_force_answer(model, tokenizer, question, context, 3)
    assert (answer["start"], answer["end"]) == (start, end)
    assert answer["answer"] == context[start:end] and answer["score"] == pytest.approx(score, rel=1e-9)


def test_extract_answer_over_a_long_context_uses_windows(tmp_path):
    directory = with_vocab(tmp_path, "question-answering")
    model, tokenizer = (minibert.BertForQuestionAnswering.from_pretrained(directory),
                        minibert.BertTokenizer.from_pretrained(directory))
    context = " ".join(f"w{10 + i % 40}" for i in range(50))  # 50 tokens; max_position_embeddings is 16
    answer = extract_answer(model, tokenizer, "w1", context, max_length=16, stride=4, max_answer_length=4)
    assert answer["answer"] == context[answer["start"]:answer["end"]] and 0 < answer["score"] <= 1
    # Windows of 16 - len([CLS] w1 [SEP] [SEP]) = 12 context tokens, overlapping by 4: starts 0, 8, ..., 40.
    words = context.split()
    best = max(brute_force_answer(model, tokenizer, "w1", " ".join(words[s:s + 12]), 4)[0] for s in range(0, 41, 8))
    assert answer["score"] == pytest.approx(best, rel=1e-6)
    with pytest.raises(ValueError, match="leaves no room for context"):
        extract_answer(model, tokenizer, " ".join(["w1"] * 20), context, max_length=16)
    with pytest.raises(ValueError, match="the context is empty"):
        extract_answer(model, tokenizer, "w1", "   ")
    with pytest.raises(ValueError, match="the question is empty"):
        extract_answer(model, tokenizer, " ", context)
    with pytest.raises(ValueError, match="stride must be an integer ≥ 0, got -4"):
        extract_answer(model, tokenizer, "w1", context, max_length=16, stride=-4)
    with pytest.raises(ValueError, match="max_answer_length must be a positive integer, got 0"):
        extract_answer(model, tokenizer, "w1", context, max_answer_length=0)


def test_tag_tokens_aggregates_words_and_entities(tmp_path):
    tokenizer = minibert.BertTokenizer.from_pretrained(CHECKPOINT)
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    # tokens of "w1 w2 w3 w4 w5 w6": first-token labels chosen per position
    wanted = [1, 2, 0, 3, 4, 1]

    def model(ids, attention_mask):
        logits = np.full((1, len(ids[0]), 5), -5.0)
        for k, label in enumerate(wanted):
            logits[0, k + 1, label] = 5.0
        return SimpleNamespace(logits=logits)

    model.config = SimpleNamespace(id2label=labels, max_position_embeddings=512, vocab_size=len(tokenizer))
    result = tag_tokens(model, tokenizer, "w1 w2 w3 w4 w5 w6")
    assert [w["label"] for w in result["words"]] == [labels[k] for k in wanted]
    assert [(e["entity"], e["text"]) for e in result["entities"]] == [("PER", "w1 w2"), ("LOC", "w4 w5"), ("PER", "w6")]


def test_tag_tokens_on_a_real_head_and_a_long_text(tmp_path):
    directory = with_vocab(tmp_path, "token")
    model, tokenizer = (minibert.BertForTokenClassification.from_pretrained(directory),
                        minibert.BertTokenizer.from_pretrained(directory))
    text = " ".join(f"w{i % 50}" for i in range(40))  # longer than the 16-position window
    result = tag_tokens(model, tokenizer, text)
    assert len(result["words"]) == 40
    assert all(text[w["start"]:w["end"]] == w["word"] for w in result["words"])
