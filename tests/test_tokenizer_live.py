"""minibert's BertTokenizer against transformers' BertTokenizer, live, when transformers is importable."""

import copy
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers", reason="live tokenizer parity needs transformers")
tokenizers = pytest.importorskip("tokenizers", reason="live tokenizer parity needs tokenizers")

from minibert import AddedToken, BertTokenizer  # noqa: E402
from tests.fixtures.corpora import corpora  # noqa: E402
from tests.fixtures.tokenizer_cases import (  # noqa: E402
    ADDED_TEXTS, CALLS, MAPPINGS, PADS, SETTINGS, encode_added, flatten_texts, line_record, run_additions, run_call,
    run_mappings, run_pad,
)


@pytest.fixture(scope="module")
def model_dir(minilm_path):
    transformers.logging.set_verbosity_error()
    return minilm_path


def assert_same_records(reference, ours, texts, label):
    mismatches = [t for t in texts if line_record(reference, t) != line_record(ours, t)]
    print(f"live {label}: {len(texts)} texts, {len(mismatches)} mismatches")
    assert not mismatches, [(t[:40], line_record(reference, t)[:150], line_record(ours, t)[:150])
                            for t in mismatches[:5]]


def test_every_code_point_in_context(model_dir):
    """Each code point between letters and doubled, so removal, splitting, accents and case all show."""
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [" ".join(f"x{chr(c)}y{chr(c)}{chr(c)}" for c in code_points[i:i + 256])
             for i in range(0, len(code_points), 256)]
    assert_same_records(transformers.BertTokenizer.from_pretrained(model_dir),
                        BertTokenizer.from_pretrained(model_dir), texts, "all code points")


def test_corpora(model_dir):
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    for source, lines in corpora().items():
        assert_same_records(reference, ours, lines, source)


@pytest.mark.parametrize("directory_kind", ["minilm", "vocab-only"])
def test_batch_calls(model_dir, tmp_path, directory_kind):
    if directory_kind == "vocab-only":
        shutil.copy(model_dir / "vocab.txt", tmp_path)
        model_dir = tmp_path
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    for kwargs, inputs in CALLS:
        assert run_call(ours, kwargs, inputs) == run_call(reference, kwargs, inputs), kwargs
    for kwargs, inputs in PADS:
        assert run_pad(ours, kwargs, inputs) == run_pad(reference, kwargs, inputs), ("pad", kwargs)
    for kwargs, inputs in MAPPINGS:
        assert run_mappings(ours, kwargs, inputs) == run_mappings(reference, kwargs, inputs), ("lookups", kwargs)


def test_helpers(model_dir):
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    tokens = ["hel", "##lo", "[CLS]", "world", ".", "don", "'", "t", "?", "##s", ","]
    assert ours.convert_tokens_to_string(tokens) == reference.convert_tokens_to_string(tokens)
    assert ours.special_tokens_map == reference.special_tokens_map
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == reference.num_special_tokens_to_add(pair)


def test_saved_tokenizer_loads_in_transformers(model_dir, tmp_path):
    ours = BertTokenizer.from_pretrained(model_dir, strip_accents=False)
    ours.save_pretrained(tmp_path)
    reloaded = transformers.BertTokenizer.from_pretrained(tmp_path)
    assert reloaded.model_max_length == 512
    assert_same_records(reloaded, ours, ["Café crème [MASK] ünïcödé", "plain text"], "saved tokenizer")


OPTION_CHOICES = {
    "padding": [False, True, "max_length"], "truncation": [None, True, "only_first", "only_second"],
    "max_length": [None, 4, 5, 7, 12], "stride": [0, 1, 2], "return_overflowing_tokens": [False, True],
    "pad_to_multiple_of": [None, 4], "padding_side": ["right", "left"], "truncation_side": ["right", "left"],
    "add_special_tokens": [True, False], "return_special_tokens_mask": [True], "return_offsets_mapping": [True],
}


@pytest.fixture(scope="module")
def both(model_dir):
    return transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def both_with_added_tokens(model_dir):
    """A pair with added tokens whose matches carry their own text (normalised, with swallowed spaces)."""
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    for tokenizer, added_token in ((reference, transformers.AddedToken), (ours, AddedToken)):
        tokenizer.add_tokens(["Zoë", added_token("cat", lstrip=True, rstrip=True), "日"])
        tokenizer.add_special_tokens({"extra_special_tokens": ["[E1]"]})
    return reference, ours


@pytest.mark.parametrize("pair", ["both", "both_with_added_tokens"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_option_combinations(request, pair, data):
    """Random texts (words, pairs, batches) under random combinations of the call options: the same rows,
    masks, offsets, word ids and errors as transformers, with and without added tokens. Combinations where
    the reference panics (a Rust assertion, not a Python exception) are not compared: minibert raises a
    ValueError there instead."""
    reference, ours = request.getfixturevalue(pair)
    words = st.lists(st.sampled_from(["the", "cat", "un", "##x", "Zoë", "日本", "[MASK]", ",", "don't", "a b", "",
                                      "[E1]"]), max_size=9)
    split = data.draw(st.booleans())
    text = words if split else words.map(" ".join)
    batched = data.draw(st.booleans())
    inputs = {"text": data.draw(st.lists(text, min_size=1, max_size=3) if batched else text)}
    if data.draw(st.booleans()):
        inputs["text_pair"] = data.draw(st.lists(text, min_size=len(inputs["text"]), max_size=len(inputs["text"]))
                                        if batched else text)
    kwargs = {name: data.draw(st.sampled_from(choices)) for name, choices in OPTION_CHOICES.items()}
    kwargs["is_split_into_words"] = split
    try:
        expected = _call(reference, inputs, kwargs)
    except BaseException as e:  # the reference's Rust panics are BaseExceptions
        if "must be strictly less than" not in str(e):
            raise
        return
    assert _call(ours, inputs, kwargs) == expected, (inputs, kwargs)


def _call(tokenizer, inputs: dict, kwargs: dict) -> dict:
    kwargs = dict(kwargs)
    side, tokenizer.truncation_side = tokenizer.truncation_side, kwargs.pop("truncation_side")
    try:
        encoding = tokenizer(**inputs, **kwargs)
    except Exception as e:  # compared by kind only: the messages differ where minibert says more
        return {"error": type(e).__name__ if not str(e).startswith("Truncation error") else str(e)}
    finally:
        tokenizer.truncation_side = side
    ids = encoding["input_ids"]
    rows = range(len(ids)) if len(ids) and isinstance(ids[0], list) else range(1)
    chars = range(max(map(len, flatten_texts([inputs["text"], inputs.get("text_pair")])), default=0) + 1)
    return {**{k: v for k, v in encoding.items()}, "word_ids": [encoding.word_ids(i) for i in rows],
            "tokens": [encoding.tokens(i) for i in rows],
            "sequence_ids": [encoding.sequence_ids(i) for i in rows],
            "char_to_token": [[encoding.char_to_token(i, c, s) for c in chars for s in (0, 1)] for i in rows],
            "char_to_word": [[encoding.char_to_word(i, c, s) for c in chars for s in (0, 1)] for i in rows],
            "token_to_chars": [[encoding.token_to_chars(i, k) for k in range(len(encoding.word_ids(i)))] for i in rows]}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_added_tokens(model_dir, tmp_path, setting):
    """The frozen added-token cases, live; then each library loads the other's save with the same encodings."""
    reference = transformers.BertTokenizer.from_pretrained(model_dir, **SETTINGS[setting])
    ours = BertTokenizer.from_pretrained(model_dir, **SETTINGS[setting])
    expected = run_additions(reference, transformers.AddedToken)
    assert run_additions(ours, AddedToken) == expected
    reference.save_pretrained(tmp_path / "transformers")
    ours.save_pretrained(tmp_path / "minibert")
    assert encode_added(BertTokenizer.from_pretrained(tmp_path / "transformers")) == expected["encodings"]
    assert encode_added(transformers.BertTokenizer.from_pretrained(tmp_path / "minibert")) == expected["encodings"]
    # The tokenizers library alone reads minibert's tokenizer.json, normaliser and post-processor included.
    backend = tokenizers.Tokenizer.from_file(str(tmp_path / "minibert" / "tokenizer.json"))
    rows = expected["encodings"]["texts"]
    for i, text in enumerate(ADDED_TEXTS):
        encoding = backend.encode(text)
        assert [encoding.ids, [list(o) for o in encoding.offsets]] == [rows["input_ids"][i], rows["offset_mapping"][i]]


ADDED_PIECES = ["zorg", "Zorg", "ZÖRG", "new york", "<x>", "[T]", "é", "中", "ab", "a", "-", "cat", "x y", "##s"]
TEXT_PIECES = ADDED_PIECES + ["zorgs", "NEW YORK", "new  york", "<X>", "[t]", "abc", "the", "Cat", "日本", "e\u0301"]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_added_tokens(both, data):
    """Random added tokens (any flags, special or not) and random texts made of them and their look-alikes:
    the same counts, ids, offsets, word ids, tokens() and decodings as transformers. Tokens that normalise to
    the same string are not drawn together: which of them the reference matches varies from run to run."""
    reference, ours = (copy.deepcopy(t) for t in both)  # tokens are added to copies
    flags = st.fixed_dictionaries({}, optional={name: st.booleans() for name in
                                                ("single_word", "lstrip", "rstrip", "normalized", "special")})
    tokens = data.draw(st.lists(st.tuples(st.lists(st.sampled_from(ADDED_PIECES), min_size=1, max_size=2).map("".join),
                                          flags), max_size=5, unique_by=lambda t: t[0]))
    normalized = [ours.encoder.normalize(content)[0] for content, f in tokens
                  if f.get("normalized", not f.get("special", False))]
    if len(set(normalized)) < len(normalized):
        return
    special = data.draw(st.booleans())
    for library, tokenizer in ((transformers, reference), (None, ours)):
        added_token = transformers.AddedToken if library else AddedToken
        new = [content if not f else added_token(content, **f) for content, f in tokens]
        tokenizer.added = tokenizer.add_tokens(new, special_tokens=special)
    assert ours.added == reference.added and len(ours) == len(reference)
    separators = st.sampled_from(["", " ", "  ", "\t", ".", "x"])
    texts = data.draw(st.lists(st.lists(st.tuples(st.sampled_from(TEXT_PIECES), separators), max_size=6).map(
        lambda parts: "".join(a + b for a, b in parts)), min_size=1, max_size=3))
    assert encode_added(ours, texts) == encode_added(reference, texts), (tokens, special, texts)

