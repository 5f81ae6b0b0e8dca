"""The tokenizer's API as code written for transformers calls it: transformers' and tokenizers' own test cases,
translated to minibert with the peers' expected values (each test names the peer test it comes from), and,
when transformers is importable, the same calls side by side against transformers' BertTokenizer.

Peer files: transformers tests/models/bert/test_tokenization_bert.py (4.x: the small vocabulary below; 5.x:
the integration strings), tests/test_tokenization_common.py (5.x TokenizerTesterMixin),
tests/test_tokenizers_backend_mixin.py (5.x, run there with BertTokenizer); tokenizers'
bindings/python/tests/bindings/test_encoding.py and implementations/test_bert_wordpiece.py (bert-base-uncased's
vocabulary, here all-MiniLM-L6-v2's copy of it). Where minibert deliberately
differs, the test says so; docs/transformers_api.md lists the differences.
"""

import json
import logging
import pickle
import re
from collections.abc import Mapping
from itertools import takewhile

import numpy as np
import pytest

from minibert import AddedToken, BatchEncoding, BertTokenizer

# test_tokenization_bert.py's setUp vocabulary
PEER_VOCAB = [
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[PAD]",
    "[MASK]",
    "want",
    "##want",
    "##ed",
    "wa",
    "un",
    "runn",
    "##ing",
    ",",
    "low",
    "lowest",
]
LONG_WARNING = "Token indices sequence length is longer than the specified maximum sequence length for this model"


@pytest.fixture
def peer_dir(tmp_path):
    (tmp_path / "vocab.txt").write_text("".join(x + "\n" for x in PEER_VOCAB), encoding="utf-8")
    return tmp_path


@pytest.fixture
def get_tokenizer(peer_dir):
    """TokenizerTesterMixin.get_tokenizer: from_pretrained on the saved directory, with keyword overrides."""
    return lambda **kwargs: BertTokenizer.from_pretrained(peer_dir, **kwargs)


@pytest.fixture(scope="module")
def real(minilm_path):
    """bert-base-uncased's vocabulary (all-MiniLM-L6-v2 ships it): the peers' from_pretrained_id."""
    return minilm_path


def get_clean_sequence(tokenizer, max_length=20, min_length=5, with_prefix_space=False):
    """TokenizerTesterMixin.get_clean_sequence, as written there."""
    toks = [(i, tokenizer.decode([i], clean_up_tokenization_spaces=False)) for i in set(tokenizer.get_vocab().values())]
    toks = [t for t in toks if re.match(r"^[ a-zA-Z]+$", t[1])]
    toks = [t for t in toks if [t[0]] == tokenizer.encode(t[1], add_special_tokens=False)]
    toks = toks[:max_length]
    while 0 < len(toks) < min_length:
        toks = toks + toks
    ids = [t[0] for t in toks]
    text = tokenizer.decode(ids, clean_up_tokenization_spaces=False)
    if " " not in text and len(ids) > 1:
        text = (
            tokenizer.decode([ids[0]], clean_up_tokenization_spaces=False)
            + " "
            + tokenizer.decode(ids[1:], clean_up_tokenization_spaces=False)
        )
    text = " " + text if with_prefix_space else text
    return text, tokenizer.encode(text, add_special_tokens=False)


def as_rows(batch):
    """TokenizerTesterMixin.convert_batch_to_list_format."""
    return [{key: batch[key][i] for key in batch} for i in range(len(batch["input_ids"]))]


# ---- test_tokenization_bert.py -------------------------------------------------------------------------


def test_full_tokenizer(peer_dir):  # test_full_tokenizer
    tokenizer = BertTokenizer(str(peer_dir / "vocab.txt"))
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [9, 6, 7, 12, 10, 11]


def test_clean_text(get_tokenizer):  # test_clean_text
    assert [get_tokenizer().tokenize(t) for t in ["Test", "\xad", "test"]] == [["[UNK]"], [], ["[UNK]"]]


def test_internal_consistency(get_tokenizer):  # test_internal_consistency, with BERT's get_input_output_texts
    tokenizer = get_tokenizer()
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert ids == tokenizer.encode("UNwant\u00e9d,running", add_special_tokens=False)
    assert tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.decode(ids) == "unwanted, running"


def test_offsets_with_special_characters(real):  # test_offsets_with_special_characters (uncased branch)
    tokenizer = BertTokenizer.from_pretrained(real)
    sentence = f"A, naïve {tokenizer.mask_token} AllenNLP sentence."
    tokens = tokenizer.encode_plus(
        sentence,
        return_attention_mask=False,
        return_token_type_ids=False,
        return_offsets_mapping=True,
        add_special_tokens=True,
    )
    expected = [
        ((0, 0), "[CLS]"),
        ((0, 1), "a"),
        ((1, 2), ","),
        ((3, 8), "naive"),
        ((9, 15), "[MASK]"),
        ((16, 21), "allen"),
        ((21, 23), "##nl"),
        ((23, 24), "##p"),
        ((25, 33), "sentence"),
        ((33, 34), "."),
        ((0, 0), "[SEP]"),
    ]
    assert tokenizer.convert_ids_to_tokens(tokens["input_ids"]) == [e[1] for e in expected]
    assert tokens["offset_mapping"] == [e[0] for e in expected]
    assert set(tokens) == {"input_ids", "offset_mapping"}


def test_change_tokenize_chinese_chars(real):  # test_change_tokenize_chinese_chars
    chars = ["的", "人", "有"]
    on = BertTokenizer.from_pretrained(real, tokenize_chinese_chars=True)
    assert on.convert_ids_to_tokens(on.encode("".join(chars), add_special_tokens=False)) == chars
    off = BertTokenizer.from_pretrained(real, tokenize_chinese_chars=False)
    assert off.convert_ids_to_tokens(off.encode("".join(chars), add_special_tokens=False)) == ["的", "##人", "##有"]


def test_sequence_builders(real):  # test_sequence_builders (transformers 4; transformers 5 removed the method)
    tokenizer = BertTokenizer.from_pretrained(real)
    text = tokenizer.encode("sequence builders", add_special_tokens=False)
    text_2 = tokenizer.encode("multi-sequence build", add_special_tokens=False)
    assert tokenizer.build_inputs_with_special_tokens(text) == [101] + text + [102]
    assert tokenizer.build_inputs_with_special_tokens(text, text_2) == [101] + text + [102] + text_2 + [102]
    assert tokenizer.create_token_type_ids_from_sequences(text, text_2) == [0] * (len(text) + 2) + [1] * (
        len(text_2) + 1
    )
    assert tokenizer.get_special_tokens_mask(text, text_2) == [1] + [0] * len(text) + [1] + [0] * len(text_2) + [1]


# transformers 5's BertTokenizationTest: bert-base-uncased loaded with do_lower_case=False and keep_accents=True
INTEGRATION_TEXT = """This is a test 😊
I was born in 92000, and this is falsé.
生活的真谛是
Hi  Hello
Hi   Hello

 
  
 Hello
<s>
hi<s>there
The following string should be properly encoded: Hello.
But ird and ปี   ird   ด
Hey how are you doing"""
INTEGRATION_TOKENS = [
    "[UNK]",
    "is",
    "a",
    "test",
    "[UNK]",
    "[UNK]",
    "was",
    "born",
    "in",
    "92",
    "##00",
    "##0",
    ",",
    "and",
    "this",
    "is",
    "[UNK]",
    ".",
    "生",
    "[UNK]",
    "的",
    "真",
    "[UNK]",
    "[UNK]",
    "[UNK]",
    "[UNK]",
    "[UNK]",
    "[UNK]",
    "[UNK]",
    "<",
    "s",
    ">",
    "hi",
    "<",
    "s",
    ">",
    "there",
    "[UNK]",
    "following",
    "string",
    "should",
    "be",
    "properly",
    "encoded",
    ":",
    "[UNK]",
    ".",
    "[UNK]",
    "ir",
    "##d",
    "and",
    "[UNK]",
    "ir",
    "##d",
    "[UNK]",
    "[UNK]",
    "how",
    "are",
    "you",
    "doing",
]
INTEGRATION_IDS = [
    100,
    2003,
    1037,
    3231,
    100,
    100,
    2001,
    2141,
    1999,
    6227,
    8889,
    2692,
    1010,
    1998,
    2023,
    2003,
    100,
    1012,
    1910,
    100,
    1916,
    1921,
    100,
    100,
    100,
    100,
    100,
    100,
    100,
    1026,
    1055,
    1028,
    7632,
    1026,
    1055,
    1028,
    2045,
    100,
    2206,
    5164,
    2323,
    2022,
    7919,
    12359,
    1024,
    100,
    1012,
    100,
    20868,
    2094,
    1998,
    100,
    20868,
    2094,
    100,
    100,
    2129,
    2024,
    2017,
    2725,
]
INTEGRATION_DECODED = (
    "[UNK] is a test [UNK] [UNK] was born in 92000, and this is [UNK]. 生 [UNK] 的 真 [UNK] [UNK] [UNK] "
    "[UNK] [UNK] [UNK] [UNK] < s > hi < s > there [UNK] following string should be properly encoded : "
    "[UNK]. [UNK] ird and [UNK] ird [UNK] [UNK] how are you doing"
)


def test_integration(real):  # TokenizerTesterMixin.test_integration with BertTokenizationTest's values
    tokenizer = BertTokenizer.from_pretrained(real, do_lower_case=False, keep_accents=True)
    assert tokenizer.tokenize(INTEGRATION_TEXT) == INTEGRATION_TOKENS
    assert tokenizer.encode(INTEGRATION_TEXT, add_special_tokens=False) == INTEGRATION_IDS
    assert tokenizer.decode(INTEGRATION_IDS, clean_up_tokenization_spaces=False) == INTEGRATION_DECODED
    assert tokenizer.init_kwargs["keep_accents"] is True  # an argument BERT does not use is kept, not refused


# ---- test_tokenization_common.py (transformers 5) ---------------------------------------------------------


def test_tokenize_special_tokens(get_tokenizer):  # test_tokenize_special_tokens
    tokenizer = get_tokenizer(do_lower_case=True)
    tokenizer.add_tokens(["[SPECIAL_TOKEN_1]"], special_tokens=True)
    tokenizer.add_special_tokens({"extra_special_tokens": ["[SPECIAL_TOKEN_2]"]}, replace_extra_special_tokens=False)
    token_1, token_2 = tokenizer.tokenize("[SPECIAL_TOKEN_1]"), tokenizer.tokenize("[SPECIAL_TOKEN_2]")
    assert len(token_1) == len(token_2) == 1 and token_1[0] == "[SPECIAL_TOKEN_1]"


def test_model_input_names_signature_and_full_signature(get_tokenizer):
    """test_model_input_names_signature; test_tokenizer_store_full_signature (every argument with a default
    is in init_kwargs)."""
    import inspect

    tokenizer = get_tokenizer()
    assert tokenizer.model_input_names[0] == "input_ids"
    for name, parameter in inspect.signature(BertTokenizer.__init__).parameters.items():
        if parameter.default is not inspect.Parameter.empty and name not in ("vocab_file", "vocab"):
            assert name in tokenizer.init_kwargs, name


def test_tokenizers_common_properties(get_tokenizer):  # test_tokenizers_common_properties
    tokenizer = get_tokenizer()
    for attr in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        assert hasattr(tokenizer, attr) and hasattr(tokenizer, attr + "_id")
    for attr in [
        "extra_special_tokens",
        "extra_special_tokens_ids",
        "model_max_length",
        "init_kwargs",
        "added_tokens_encoder",
        "added_tokens_decoder",
    ]:
        assert hasattr(tokenizer, attr)


def test_tokenizers_common_ids_setters(get_tokenizer):  # test_tokenizers_common_ids_setters
    tokenizer = get_tokenizer()
    token_id = next(iter(tokenizer.get_vocab().values()))
    token = tokenizer.convert_ids_to_tokens(token_id, skip_special_tokens=False)
    for attr in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        setattr(tokenizer, attr + "_id", None)
        assert getattr(tokenizer, attr) is None and getattr(tokenizer, attr + "_id") is None
        setattr(tokenizer, attr + "_id", token_id)
        assert getattr(tokenizer, attr) == token and getattr(tokenizer, attr + "_id") == token_id
    tokenizer.extra_special_tokens_ids = []
    assert tokenizer.extra_special_tokens == [] and tokenizer.extra_special_tokens_ids == []
    tokenizer.extra_special_tokens_ids = [token_id]
    assert tokenizer.extra_special_tokens == [token] and tokenizer.extra_special_tokens_ids == [token_id]


def test_save_and_load_tokenizer(get_tokenizer, tmp_path):  # test_save_and_load_tokenizer
    tokenizer = get_tokenizer()
    assert tokenizer.model_max_length != 42
    sample_text = " He is very happy, UNwant\u00e9d,running"
    before_tokens, before_vocab = tokenizer.encode(sample_text, add_special_tokens=False), tokenizer.get_vocab()
    tokenizer.save_pretrained(tmp_path / "a")
    after = BertTokenizer.from_pretrained(tmp_path / "a")
    assert after.encode(sample_text, add_special_tokens=False) == before_tokens and after.get_vocab() == before_vocab

    tokenizer = get_tokenizer(model_max_length=42)
    tokenizer.add_tokens(["bim", "bambam"])
    extra_special_tokens = tokenizer.extra_special_tokens
    extra_special_tokens.append("new_extra_special_token")
    tokenizer.add_special_tokens({"extra_special_tokens": extra_special_tokens}, replace_extra_special_tokens=False)
    before_tokens, before_vocab = tokenizer.encode(sample_text, add_special_tokens=False), tokenizer.get_vocab()
    tokenizer.save_pretrained(save_directory=tmp_path / "b")
    after = BertTokenizer.from_pretrained(pretrained_model_name_or_path=tmp_path / "b")
    assert after.encode(sample_text, add_special_tokens=False) == before_tokens and after.get_vocab() == before_vocab
    assert "bim" in after.get_vocab() and "bambam" in after.get_vocab()
    assert "new_extra_special_token" in after.extra_special_tokens and after.model_max_length == 42
    assert BertTokenizer.from_pretrained(tmp_path / "b", model_max_length=43).model_max_length == 43


def test_mask_output_token_type_ids_and_sequence_ids(get_tokenizer):
    """test_mask_output, test_token_type_ids, test_sequence_ids, test_number_of_added_tokens."""
    tokenizer = get_tokenizer(do_lower_case=False)
    seq_0, seq_1 = "Test this method.", "With these inputs."
    information = tokenizer(seq_0, seq_1, add_special_tokens=True, return_token_type_ids=True)
    assert len(information["input_ids"]) == len(information["token_type_ids"])
    assert 0 in tokenizer(seq_0, return_token_type_ids=True)["token_type_ids"]
    assert 0 in tokenizer(seq_0).sequence_ids()
    output = tokenizer(seq_0, seq_1)
    assert {0, 1, None} <= set(output.sequence_ids())
    sequences = tokenizer.encode(seq_0, seq_1, add_special_tokens=False)
    attached = tokenizer.encode(seq_0, seq_1, add_special_tokens=True)
    assert tokenizer.num_special_tokens_to_add(pair=True) == len(attached) - len(sequences)


def test_maximum_encoding_length_single_input(get_tokenizer, caplog):  # test_maximum_encoding_length_single_input
    tokenizer = get_tokenizer(do_lower_case=False, model_max_length=100)
    seq_0, _ = get_clean_sequence(tokenizer, max_length=20)
    sequence = tokenizer.encode(seq_0, add_special_tokens=False)
    total_length = len(sequence)
    assert total_length > 4
    seq_1 = seq_0 * 100
    assert len(tokenizer(seq_1, add_special_tokens=False)["input_ids"]) > 100
    for padding_state in [False, True, "longest"]:
        for truncation_state in [True, "longest_first", "only_first"]:
            assert len(tokenizer(seq_1, padding=padding_state, truncation=truncation_state)["input_ids"]) == 100
            assert len(tokenizer([seq_1], padding=padding_state, truncation=truncation_state)["input_ids"][0]) == 100
        for batch in (seq_1, [seq_1]):
            tokenizer.deprecation_warnings = {}
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                output = tokenizer(batch, padding=padding_state, truncation=False)
            assert len(np.ravel(output["input_ids"])) != 100
            assert len(caplog.records) == 1 and caplog.records[0].getMessage().startswith(LONG_WARNING)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tokenizer(seq_1)  # once per tokenizer, as in transformers
        get_tokenizer(model_max_length=100)(seq_1, verbose=False)  # a length measured on purpose: no warning
    assert not caplog.records
    # overflowing tokens, the TokenizersBackend branch
    information = tokenizer(
        seq_0,
        max_length=total_length - 2,
        add_special_tokens=False,
        stride=2,
        truncation="longest_first",
        return_overflowing_tokens=True,
    )
    assert len(information["input_ids"]) == 2
    assert information["input_ids"][0] == sequence[:-2] and information["input_ids"][1] == sequence[-4:]


def test_maximum_encoding_length_pair_input(get_tokenizer, caplog):  # test_maximum_encoding_length_pair_input
    tokenizer = get_tokenizer(do_lower_case=False, model_max_length=100)
    stride = 2
    seq_0, ids = get_clean_sequence(tokenizer, max_length=20)
    if len(ids) <= 2 + stride:
        seq_0 = (seq_0 + " ") * (2 + stride)
    seq0_tokens = tokenizer.encode(seq_0, add_special_tokens=False)
    seq_1 = "This is another sentence to be encoded."
    seq1_tokens = tokenizer.encode(seq_1, add_special_tokens=False)
    if abs(len(seq0_tokens) - len(seq1_tokens)) <= 2:
        seq1_tokens = seq1_tokens + seq1_tokens
        seq_1 = tokenizer.decode(seq1_tokens, clean_up_tokenization_spaces=False)
    seq1_tokens = tokenizer.encode(seq_1, add_special_tokens=False)
    assert len(seq1_tokens) > 2 + stride
    smallest = seq1_tokens if len(seq0_tokens) > len(seq1_tokens) else seq0_tokens
    sequence = tokenizer.encode(seq_0, seq_1, add_special_tokens=False)
    seq_2 = seq_0 * 100
    for padding_state in [False, True, "longest"]:
        for truncation_state in [True, "longest_first", "only_first"]:
            assert len(tokenizer(seq_2, seq_1, padding=padding_state, truncation=truncation_state)["input_ids"]) == 100
            assert (
                len(tokenizer([seq_2], [seq_1], padding=padding_state, truncation=truncation_state)["input_ids"][0])
                == 100
            )
        assert len(tokenizer(seq_1, seq_2, padding=padding_state, truncation="only_second")["input_ids"]) == 100
        assert len(tokenizer([seq_1], [seq_2], padding=padding_state, truncation="only_second")["input_ids"][0]) == 100
        tokenizer.deprecation_warnings = {}
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            tokenizer(seq_1, seq_2, padding=padding_state, truncation=False)
        assert len(caplog.records) == 1 and caplog.records[0].getMessage().startswith(LONG_WARNING)
    first, second = (tokenizer.encode(seq, add_special_tokens=False) for seq in (seq_0, seq_1))
    truncated_longest = first[:-2] + second if len(seq0_tokens) > len(seq1_tokens) else first + second[:-2]
    overflow_longest = (
        first[-(2 + stride) :] + second if len(seq0_tokens) > len(seq1_tokens) else first + second[-(2 + stride) :]
    )
    assert len(overflow_longest) == 2 + stride + len(smallest)
    expected = {  # the TokenizersBackend branch: the kept window, then the overflowing one
        "longest_first": [truncated_longest, overflow_longest],
        True: [truncated_longest, overflow_longest],
        "only_first": [first[:-2] + second, first[-(2 + stride) :] + second],
        "only_second": [first + second[:-2], first + second[-(2 + stride) :]],
    }
    for truncation, rows in expected.items():
        information = tokenizer(
            seq_0,
            seq_1,
            max_length=len(sequence) - 2,
            add_special_tokens=False,
            stride=stride,
            truncation=truncation,
            return_overflowing_tokens=True,
        )
        assert information["input_ids"] == rows, truncation


def test_special_tokens_mask(get_tokenizer):  # test_special_tokens_mask, test_special_tokens_mask_input_pairs
    tokenizer = get_tokenizer(do_lower_case=False)
    encoded = tokenizer.encode("Encode this.", add_special_tokens=False)
    d = tokenizer("Encode this.", add_special_tokens=True, return_special_tokens_mask=True)
    assert len(d["special_tokens_mask"]) == len(d["input_ids"])
    assert [x for x, m in zip(d["input_ids"], d["special_tokens_mask"]) if not m] == encoded
    encoded += tokenizer.encode("This one too please.", add_special_tokens=False)
    d = tokenizer("Encode this.", "This one too please.", add_special_tokens=True, return_special_tokens_mask=True)
    assert [x for x, m in zip(d["input_ids"], d["special_tokens_mask"]) if not m] == encoded


def test_padding_and_truncation_side_in_kwargs(peer_dir):  # test_padding_side_in_kwargs, test_truncation_side_in_kwargs
    for name in ("padding_side", "truncation_side"):
        for side in ("left", "right"):
            assert getattr(BertTokenizer.from_pretrained(peer_dir, **{name: side}), name) == side
        with pytest.raises(ValueError):
            BertTokenizer.from_pretrained(peer_dir, **{name: "unauthorized"})


def test_encode_basic_padding_and_truncation(
    get_tokenizer,
):  # test_encode_basic_padding, test_right_and_left_truncation
    tokenizer = get_tokenizer(do_lower_case=False)
    for side in ("right", "left"):
        tokenizer.padding_side = side
        encoded = tokenizer.encode("Sequence")
        padded = tokenizer.encode("Sequence", max_length=len(encoded) + 10, padding="max_length")
        pad = [tokenizer.pad_token_id] * 10
        assert padded == (encoded + pad if side == "right" else pad + encoded)
    encoded = tokenizer.encode("This is a test sequence", add_special_tokens=False)
    for side, kept in (("right", encoded[:-3]), ("left", encoded[3:])):
        tokenizer.truncation_side = side
        assert (
            tokenizer.encode(
                "This is a test sequence", max_length=len(encoded) - 3, truncation=True, add_special_tokens=False
            )
            == kept
        )
        for truncation in (True, "longest_first", False, None):
            assert (
                tokenizer.encode("This is a test sequence", truncation=truncation, add_special_tokens=False) == encoded
            )


def test_padding_to_multiple_of_and_attention_mask(get_tokenizer):
    """test_padding_to_multiple_of, test_padding_with_attention_mask."""
    tokenizer = get_tokenizer()
    for text in ("", "This is a sample input"):
        assert all(len(v) % 8 == 0 for v in tokenizer(text, padding=True, pad_to_multiple_of=8).values())
    assert all(len(v) % 8 for v in tokenizer("This", pad_to_multiple_of=8).values())
    assert all(len(v) % 8 == 0 for v in tokenizer("This", padding=True, truncation=True, pad_to_multiple_of=8).values())
    with pytest.raises(ValueError):
        tokenizer("This", padding=True, truncation=True, max_length=12, pad_to_multiple_of=8)
    features = [
        {"input_ids": [1, 2, 3, 4, 5, 6], "attention_mask": [1, 1, 1, 1, 1, 0]},
        {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 0]},
    ]
    assert tokenizer.pad(features)["attention_mask"] == [[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]]


@pytest.mark.parametrize("as_call_kwarg", [True, False])
def test_encode_plus_with_padding(get_tokenizer, as_call_kwarg):  # test_encode_plus_with_padding
    tokenizer = get_tokenizer(do_lower_case=False)
    encoded = tokenizer("Sequence", return_special_tokens_mask=True)
    input_ids, mask = encoded["input_ids"], encoded["special_tokens_mask"]
    for padding in (True, False):
        same = tokenizer("Sequence", padding=padding, return_special_tokens_mask=True)
        assert same["input_ids"] == input_ids and same["special_tokens_mask"] == mask
    for side in ("right", "left"):
        kwargs = {"max_length": len(input_ids) + 10, "padding": "max_length", "return_special_tokens_mask": True}
        if as_call_kwarg:
            kwargs["padding_side"] = side
        else:
            tokenizer.padding_side = side

        def padded(values, pad, side=side):
            return values + [pad] * 10 if side == "right" else [pad] * 10 + values

        out = tokenizer("Sequence", **kwargs)
        assert out["input_ids"] == padded(input_ids, tokenizer.pad_token_id)
        assert out["special_tokens_mask"] == padded(mask, 1)
        assert out["token_type_ids"] == padded(encoded["token_type_ids"], tokenizer.pad_token_type_id)
        assert out["attention_mask"] == padded(encoded["attention_mask"], 0)


def test_get_vocab_and_conversion_reversible(get_tokenizer):  # test_get_vocab, test_conversion_reversible
    tokenizer = get_tokenizer(do_lower_case=False)
    vocab = tokenizer.get_vocab()
    assert isinstance(vocab, dict) and len(tokenizer) >= len(vocab)
    assert len([tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]) == len(tokenizer)
    tokenizer.add_tokens(["asdfasdfasdfasdf"])
    assert len([tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]) == len(tokenizer)
    for word, index in vocab.items():
        if word != tokenizer.unk_token:
            assert tokenizer.convert_tokens_to_ids(word) == index and tokenizer.convert_ids_to_tokens(index) == word


SEQUENCES = [
    "Testing batch encode plus",
    "Testing batch encode plus with different sequence lengths",
    "Testing batch encode plus with different sequence lengths correctly pads",
]


def test_call_and_batches(get_tokenizer):
    """test_call, test_batch_encode_plus_batch_sequence_length, test_batch_encode_plus_padding."""
    tokenizer = get_tokenizer(do_lower_case=False)
    assert tokenizer(list(zip(SEQUENCES, SEQUENCES))) == tokenizer(SEQUENCES, SEQUENCES)
    assert [tokenizer(s) for s in SEQUENCES] == as_rows(tokenizer(SEQUENCES, padding=False))
    longest = max(len(tokenizer(s)["input_ids"]) for s in SEQUENCES)
    assert [tokenizer(s, max_length=longest, padding="max_length") for s in SEQUENCES] == as_rows(
        tokenizer(SEQUENCES, padding=True)
    )
    assert tokenizer(SEQUENCES, padding=True) == tokenizer(SEQUENCES, max_length=longest + 10, padding="longest")
    assert tokenizer(SEQUENCES, padding=False) == tokenizer(SEQUENCES, max_length=longest + 10, padding=False)
    for side in ("right", "left"):
        tokenizer.padding_side = side
        assert [tokenizer(s, max_length=100, padding="max_length") for s in SEQUENCES] == as_rows(
            tokenizer(SEQUENCES, max_length=100, padding="max_length")
        )
    assert tokenizer.batch_encode_plus(SEQUENCES) == tokenizer(SEQUENCES)  # the transformers 4 name


def test_pretokenized_inputs(get_tokenizer):  # test_pretokenized_inputs
    tokenizer = get_tokenizer(do_lower_case=False)
    sequence, _ = get_clean_sequence(tokenizer, with_prefix_space=True, max_length=20)
    words = sequence.split()
    for special in (False, True):
        output = tokenizer(words, is_split_into_words=True, add_special_tokens=special)
        assert all(output[k] == v for k, v in tokenizer(sequence, add_special_tokens=special).items())
        output = tokenizer(words, words, is_split_into_words=True, add_special_tokens=special)
        assert all(output[k] == v for k, v in tokenizer(sequence, sequence, add_special_tokens=special).items())
    batch = [sequence.strip()] * 2 + [sequence.strip() + " " + sequence.strip()]
    word_batch = [s.split() for s in batch]
    for special in (False, True):
        output = tokenizer(word_batch, is_split_into_words=True, add_special_tokens=special)
        expected = tokenizer([" " + " ".join(s) for s in word_batch], add_special_tokens=special)
        assert all(output[k] == v for k, v in expected.items())
    pair_batch = [(sequence.strip(), sequence.strip())] * 2 + [
        (sequence.strip() + " " + sequence.strip(), sequence.strip())
    ]
    word_pair_batch = [tuple(s.split() for s in pair) for pair in pair_batch]  # a batch of pre-tokenized pairs
    for special in (False, True):
        output = tokenizer(word_pair_batch, is_split_into_words=True, add_special_tokens=special)
        expected = tokenizer(
            [tuple(" " + " ".join(s) for s in pair) for pair in word_pair_batch], add_special_tokens=special
        )
        assert all(output[k] == v for k, v in expected.items())


def test_no_pad_token(get_tokenizer):  # _check_no_pad_token_padding
    tokenizer = get_tokenizer()
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    with pytest.raises(ValueError, match="Asking to pad but the tokenizer does not have a padding token"):
        tokenizer(SEQUENCES, padding="longest")
    tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    assert len(set(map(len, tokenizer(SEQUENCES, padding=True)["input_ids"]))) == 1


def test_batch_encode_dynamic_overflowing(real):  # test_batch_encode_dynamic_overflowing ("np", and "pt" with torch)
    tokenizer = BertTokenizer.from_pretrained(real)
    for tensors in ["np"] + (["pt"] if _torch() else []):
        tokens = tokenizer(
            "HuggingFace is solving NLP one commit at a time",
            max_length=6,
            padding=True,
            truncation=True,
            return_tensors=tensors,
            return_overflowing_tokens=True,
        )
        assert all(len(tokens[k].shape) == 2 for k in tokens if k != "overflow_to_sample_mapping")
        for texts in (
            ["HuggingFace is solving NLP one commit at a time"],
            ["HuggingFace is solving NLP one commit at a time", "Very tiny input"],
        ):
            tokens = tokenizer(
                texts,
                max_length=6,
                padding=True,
                truncation="only_first",
                return_tensors=tensors,
                return_overflowing_tokens=True,
            )
            assert all(tokens[k].shape[-1] == 6 for k in tokens if k != "overflow_to_sample_mapping")


def test_padding(real):  # test_padding, tokenizer_p's calls (encode, encode_plus, batch_encode_plus, pad)
    tokenizer, max_length = BertTokenizer.from_pretrained(real), 50
    pad = tokenizer.pad_token_id

    def padded(ids, length):
        assert len(ids) == length
        return list(takewhile(lambda i: i == pad, reversed(ids)))

    assert padded(tokenizer.encode("This is a simple input", max_length=max_length, padding="max_length"), max_length)
    assert padded(
        tokenizer.encode("This is a simple input", "This is a pair", max_length=max_length, padding="max_length"),
        max_length,
    )
    assert padded(
        tokenizer.encode_plus("This is a simple input", max_length=max_length, padding="max_length")["input_ids"],
        max_length,
    )
    batch = tokenizer.batch_encode_plus(
        [
            ("This is a simple input 1", "This is a simple input 2"),
            ("This is a simple pair 1", "This is a simple pair 2"),
        ],
        max_length=max_length,
        truncation=True,
        padding="max_length",
    )
    assert all(len(row) == max_length for row in batch["input_ids"])
    single = tokenizer.pad(tokenizer.encode_plus("This is a input 1"), max_length=max_length, padding="max_length")
    assert padded(single["input_ids"], max_length)
    after = tokenizer.pad(
        tokenizer.batch_encode_plus(["This is a input 1", "This is a much longer input whilch should be padded"])
    )
    assert len({len(row) for row in after["input_ids"]}) == 1
    empty = tokenizer.pad({"input_ids": [[], []]}, max_length=max_length, padding="max_length")
    assert empty["input_ids"] == [[pad] * max_length] * 2 and empty["attention_mask"] == [[0] * max_length] * 2


def test_compare_add_special_tokens(real):  # test_compare_add_special_tokens
    tokenizer = BertTokenizer.from_pretrained(real)
    n = tokenizer.num_special_tokens_to_add(pair=False)
    for text in ["", " "]:
        assert (
            len(tokenizer.tokenize(text, add_special_tokens=False))
            == len(tokenizer.tokenize(text, add_special_tokens=True)) - n
        )
        assert (
            len(tokenizer.encode(text, add_special_tokens=False))
            == len(tokenizer.encode(text, add_special_tokens=True)) - n
        )
        without, with_ = tokenizer.encode_plus(text, add_special_tokens=False), tokenizer.encode_plus(text)
        assert all(len(without[k]) == len(with_[k]) - n for k in without)
        without = tokenizer.batch_encode_plus([text, text], add_special_tokens=False)
        with_ = tokenizer.batch_encode_plus([text, text], add_special_tokens=True)
        assert all(len(a) == len(b) - n for k in without for a, b in zip(without[k], with_[k]))


def test_special_tokens_initialization(real, tmp_path):
    """test_special_tokens_initialization;
    test_special_tokens_initialization_with_non_empty_additional_special_tokens."""
    tokenizer = BertTokenizer.from_pretrained(real, additional_special_tokens=[AddedToken("<special>", lstrip=True)])
    special_id = tokenizer.encode("<special>", add_special_tokens=False)[0]
    assert special_id in tokenizer.encode("Hey this is a <special> token")
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["additional_special_tokens"] = ["an_additional_special_token"]
    config.pop("extra_special_tokens")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    loaded = BertTokenizer.from_pretrained(tmp_path)
    assert "an_additional_special_token" in loaded.additional_special_tokens
    assert "an_additional_special_token" in loaded.get_vocab()
    assert loaded.convert_ids_to_tokens(loaded.convert_tokens_to_ids(["an_additional_special_token"])) == [
        "an_additional_special_token"
    ]
    loaded = BertTokenizer.from_pretrained(
        tmp_path, additional_special_tokens=[AddedToken("a_new_additional_special_token", lstrip=True)]
    )
    assert "a_new_additional_special_token" in loaded.additional_special_tokens
    assert loaded.convert_ids_to_tokens(loaded.convert_tokens_to_ids(["a_new_additional_special_token"])) == [
        "a_new_additional_special_token"
    ]


def test_split_special_tokens(real, tmp_path):  # test_split_special_tokens
    special, sentence = "<my_new_token>", "Hey this is a <my_new_token> token"
    tokenizer = BertTokenizer.from_pretrained(real, additional_special_tokens=[special], split_special_tokens=True)
    special_id = tokenizer.convert_tokens_to_ids(special)
    assert special_id in tokenizer.encode(special, add_special_tokens=False, split_special_tokens=False)
    assert special_id not in tokenizer.encode(special, add_special_tokens=False)
    assert special not in tokenizer.tokenize(sentence)
    assert special in tokenizer.tokenize(sentence, split_special_tokens=False)
    assert special_id not in tokenizer(sentence)["input_ids"]
    tokenizer.save_pretrained(tmp_path)
    reloaded = BertTokenizer.from_pretrained(tmp_path)
    assert special not in reloaded.tokenize(sentence) and special in reloaded.tokenize(
        sentence, split_special_tokens=False
    )


def test_added_tokens_serialization(real, tmp_path):  # test_added_tokens_serialization
    new_eos = AddedToken("[NEW_EOS]", rstrip=False, lstrip=True, normalized=False, special=True)
    tokenizer = BertTokenizer.from_pretrained(real, eos_token=new_eos)
    assert tokenizer.eos_token == "[NEW_EOS]" and "[NEW_EOS]" in [
        str(t) for t in tokenizer.added_tokens_decoder.values()
    ]
    expected = {str(t) for t in tokenizer.added_tokens_decoder.values()}
    tokenizer.save_pretrained(tmp_path)
    loaded = BertTokenizer.from_pretrained(tmp_path)
    assert "[NEW_EOS]" not in loaded.extra_special_tokens
    assert str(loaded.added_tokens_decoder[loaded.eos_token_id]) == "[NEW_EOS]"
    assert expected <= {str(t) for t in loaded.added_tokens_decoder.values()}


def test_initialization_arguments(get_tokenizer):
    """test_tokenizer_initialization_with_conflicting_key, test_pad_token_initialization,
    test_bos_token_with_add_bos_token_true/false, test_convert_tokens_to_string_format."""
    for key in ("add_special_tokens", "get_vocab"):
        with pytest.raises(AttributeError, match="conflicts with the method"):
            get_tokenizer(**{key: True})
    tokenizer = get_tokenizer(pad_token="[PAD]")
    assert tokenizer.pad_token == "[PAD]" and tokenizer.pad_token_id is not None
    output = tokenizer(
        ["Test this method.", "With these inputs and some extra tokens here."], padding=True, return_attention_mask=True
    )
    assert len(output["input_ids"][0]) == len(output["input_ids"][1]) and 0 in output["attention_mask"][0]
    for add_bos_token in (True, False):
        tokenizer = get_tokenizer(bos_token="<BOS>", add_bos_token=add_bos_token)
        assert (
            tokenizer.bos_token == "<BOS>"
            and tokenizer("Hello world", add_special_tokens=False)["input_ids"] is not None
        )
    assert isinstance(tokenizer.convert_tokens_to_string(["this", "is", "a", "test"]), str)


def test_empty_input_string(get_tokenizer):  # test_empty_input_string
    tokenizer = get_tokenizer()
    assert tokenizer("", return_tensors="np").input_ids.dtype == np.int64
    if _torch():
        assert tokenizer("", return_tensors="pt").input_ids.dtype == _torch().int64


# ---- test_tokenizers_backend_mixin.py -------------------------------------------------------------------


def test_alignment_methods(real):  # test_alignment_methods
    tokenizer = BertTokenizer.from_pretrained(real)
    words = ["Wonderful", "no", "inspiration", "example", "with", "subtoken"]
    text = " ".join(words)
    encoding = tokenizer(text, add_special_tokens=False)
    batch = tokenizer([text] * 3, add_special_tokens=False)
    num_tokens, last_word, last_token, last_char = len(encoding["input_ids"]), len(words) - 1, None, len(text) - 1
    last_token = num_tokens - 1
    assert len(encoding.word_ids(0)) == num_tokens and len(encoding.tokens(0)) == num_tokens
    assert max(w for w in batch.word_ids(2) if w is not None) == last_word
    for enc, row in ((encoding, 0), (batch, 2)):
        assert enc.token_to_word(row, 0) == 0 and enc.token_to_word(row, last_token) == last_word
        assert enc.word_to_tokens(row, 0).start == 0 and enc.word_to_tokens(row, last_word).end == last_token + 1
        assert enc.token_to_chars(row, 0).start == 0 and enc.token_to_chars(row, last_token).end == last_char + 1
        assert enc.char_to_token(row, 0) == 0 and enc.char_to_token(row, last_char) == last_token
        assert enc.char_to_word(row, 0) == 0 and enc.char_to_word(row, last_char) == last_word
        assert enc.word_to_chars(row, 0).start == 0 and enc.word_to_chars(row, last_word).end == last_char + 1
        assert enc.token_to_sequence(row, num_tokens // 2) == 0
    assert encoding.token_to_word(last_token) == last_word and encoding.char_to_token(last_char) == last_token
    pair_words = ["Amazing", "example", "full", "of", "inspiration"]
    pair_text = " ".join(pair_words)
    pair = tokenizer(text, pair_text, add_special_tokens=False)
    first = pair.word_to_tokens(words.index("inspiration"), sequence_index=0).start
    second = pair.word_to_tokens(pair_words.index("inspiration"), sequence_index=1).start
    assert first != second and pair["input_ids"][first] == pair["input_ids"][second]
    a, b = (
        pair.char_to_token(text.find("inspiration"), sequence_index=0),
        pair.char_to_token(pair_text.find("inspiration"), sequence_index=1),
    )
    assert a != b and pair["input_ids"][a] == pair["input_ids"][b]
    assert (
        words[pair.char_to_word(text.find("inspiration"), sequence_index=0)]
        == pair_words[pair.char_to_word(pair_text.find("inspiration"), sequence_index=1)]
    )
    pair = tokenizer(text, pair_text)
    assert {0, 1, None} <= {pair.token_to_sequence(i) for i in range(len(pair["input_ids"]))}


def test_offsets_mapping(real):  # test_offsets_mapping
    tokenizer = BertTokenizer.from_pretrained(real)
    for texts, pair in (
        (["Wonderful no inspiration example with subtoken"], False),
        (["Wonderful no inspiration example with subtoken", "Along with an awesome pair"], True),
    ):
        out = tokenizer(*texts, return_special_tokens_mask=True, return_offsets_mapping=True)
        assert len(out["offset_mapping"]) == len(out["input_ids"])
        assert sum(out["special_tokens_mask"]) == tokenizer.num_special_tokens_to_add(pair)


# ---- the surface issue by issue (transformers' behaviour, checked live below) ----------------------------


def test_lookups_past_the_end_are_none(get_tokenizer):
    enc = get_tokenizer()("want running")
    assert (enc.token_to_word(10), enc.token_to_sequence(10), enc.token_to_chars(10)) == (None, None, None)
    assert enc.token_to_word(0, 10) is None and enc.token_to_word(0, 1) == 0
    with pytest.raises(IndexError, match="token index -1 is negative"):  # transformers: an unrelated AttributeError
        enc.token_to_word(-1)


def test_batch_encoding_surface(get_tokenizer):
    tokenizer = get_tokenizer()
    enc = tokenizer(["want", "running"], ["low", "lowest"], padding=True)
    assert enc.data is enc and enc.encodings is None and enc.is_fast and enc.n_sequences == 2
    assert tokenizer("want").n_sequences == 1 and tokenizer.pad(enc).n_sequences is None
    assert enc[:1] == {k: v[:1] for k, v in enc.items()}
    with pytest.raises(KeyError, match="no `tokenizers` Encoding objects"):
        enc[0]
    assert enc.convert_to_tensors("np") is enc and enc["input_ids"].dtype == np.int64 and enc.to("cpu") is enc
    assert BatchEncoding({"input_ids": [1, 2]}, tensor_type="np", prepend_batch_axis=True)["input_ids"].shape == (1, 2)
    sent = pickle.loads(pickle.dumps(enc))
    assert sent.n_sequences == 2 and sent.word_ids(1) == enc.word_ids(1)
    if _torch():
        pt = tokenizer(["want", "running"], padding=True, return_tensors="pt")
        assert isinstance(pt["input_ids"], _torch().Tensor) and pt["input_ids"].dtype == _torch().int64
        assert pt.to("cpu") is pt and tokenizer.pad([{"input_ids": [1]}, {"input_ids": [1, 2]}], return_tensors="pt")[
            "input_ids"
        ].tolist() == [[1, 3], [1, 2]]


def test_tokenizer_attributes(get_tokenizer, peer_dir, tmp_path, caplog):
    tokenizer = get_tokenizer(model_max_length=512)
    assert tokenizer.is_fast and tokenizer.pad_token_type_id == 0
    assert (tokenizer.max_len_single_sentence, tokenizer.max_len_sentences_pair) == (510, 509)
    assert tokenizer.name_or_path == str(peer_dir) and tokenizer.init_kwargs["model_max_length"] == 512
    tokenizer.pad_token_id = 4
    assert tokenizer.pad_token == "[MASK]" and tokenizer(["want", "want want"], padding=True)["input_ids"][0][-1] == 4
    assert tokenizer.save_vocabulary(tmp_path) == (str(tmp_path / "vocab.txt"),)
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8") == "".join(x + "\n" for x in PEER_VOCAB)
    assert tokenizer.save_vocabulary(save_directory=tmp_path, filename_prefix="x") == (str(tmp_path / "x-vocab.txt"),)
    narrow = get_tokenizer(model_input_names=["input_ids", "attention_mask"])
    assert set(narrow("want")) == {"input_ids", "attention_mask"}
    assert set(narrow("want", return_token_type_ids=True)) == {"input_ids", "attention_mask", "token_type_ids"}
    eos = get_tokenizer(bos_token="<s>", eos_token="</s>", additional_special_tokens=["<x>"])
    assert list(eos.special_tokens_map) == [
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
    ]
    assert eos.all_special_tokens[:2] == ["<s>", "</s>"] and eos.all_special_tokens[-1] == "<x>"
    assert (eos.bos_token_id, eos.eos_token_id) == (15, 16)
    with caplog.at_level(logging.WARNING):
        quiet = get_tokenizer(do_basic_tokenize=True, never_split=None)
    assert not caplog.records and quiet.init_kwargs["do_basic_tokenize"] is True
    with caplog.at_level(logging.WARNING):
        get_tokenizer(never_split=["want"])
    assert "are ignored, as transformers 5's BertTokenizer ignores them" in caplog.text


def test_keyword_names(get_tokenizer):
    tokenizer = get_tokenizer()
    ids = tokenizer.encode("want running", "low", stride=0, padding_side="left", padding="max_length", max_length=9)
    assert ids[:3] == [3, 3, 1]  # two [PAD] on the left, then [CLS]
    assert tokenizer.decode(token_ids=ids, skip_special_tokens=True) == "want running low"
    assert tokenizer.decode([ids, ids[2:]], skip_special_tokens=True) == ["want running low"] * 2
    assert tokenizer.batch_decode([ids], skip_special_tokens=True, clean_up_tokenization_spaces=True) == [
        "want running low"
    ]
    assert tokenizer.tokenize("want", pair="low", add_special_tokens=True) == ["[CLS]", "want", "[SEP]", "low", "[SEP]"]
    assert tokenizer.tokenize(["wanted", "low"], is_split_into_words=True) == ["want", "##ed", "low"]
    assert tokenizer.get_special_tokens_mask([1, 5, 2], already_has_special_tokens=True) == [1, 0, 1]


def test_is_split_into_words_takes_words_only(get_tokenizer):
    """transformers raises for a plain string with is_split_into_words (its Rust backend's TypeError); so does
    minibert, with its own message."""
    with pytest.raises(TypeError, match="with is_split_into_words, text must be a list of words"):
        get_tokenizer()("want running", is_split_into_words=True)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- the same calls against transformers ------------------------------------------------------------------

LIVE_CALLS = {
    "word pairs": lambda t: t([(["Hello", "world"], ["a", "b"])], is_split_into_words=True),
    "word pairs, padded": lambda t: t(
        [(["Hello", "world"], ["a"]), (["x"], ["y", "z", "w"])],
        is_split_into_words=True,
        padding=True,
        return_offsets_mapping=True,
    ),
    "word pairs via text_pair": lambda t: t([["Hello", "world"], ["x"]], [["a"], ["y", "z"]], is_split_into_words=True),
    "lookups past the end": lambda t: [
        (e.token_to_word(50), e.token_to_sequence(50), e.token_to_chars(50)) for e in [t("hello world")]
    ],
    "n_sequences": lambda t: (t("a").n_sequences, t("a", "b").n_sequences, t(["a"], ["b"]).n_sequences),
    "tokenize with pair": lambda t: t.tokenize("Hello world", pair="x y", add_special_tokens=True),
    "encode stride padding_side": lambda t: t.encode(
        "Hello there world", max_length=12, padding="max_length", padding_side="left", stride=1
    ),
    "decode(token_ids=)": lambda t: t.decode(token_ids=[101, 7592, 1010, 2088, 102], skip_special_tokens=True),
    "decode a batch": lambda t: t.decode([[101, 7592, 102], [101, 2088, 1005, 1055, 102]]),
    "batch_decode clean_up": lambda t: [
        t.batch_decode([[7592, 1010, 2088, 1005, 1055]], clean_up_tokenization_spaces=c) for c in (True, False)
    ],
    "special tokens mask, encoded": lambda t: t.get_special_tokens_mask(
        [101, 7592, 102, 0], already_has_special_tokens=True
    ),
    "attributes": lambda t: (
        t.is_fast,
        t.model_input_names,
        t.pad_token_type_id,
        t.max_len_single_sentence,
        t.max_len_sentences_pair,
        t.special_tokens_map,
        t.bos_token,
        t.eos_token_id,
    ),
    "bos, eos, extra": lambda t: [
        (
            x.special_tokens_map,
            x.all_special_tokens,
            x.all_special_ids,
            x.extra_special_tokens,
            x("a <x> b [SEP] <s>")["input_ids"],
        )
        for x in [
            t.from_pretrained(t.name_or_path, bos_token="<s>", eos_token="</s>", additional_special_tokens=["<x>"])
        ]
    ],
    "split_special_tokens": lambda t: [
        (
            x.tokenize("a <x> b [SEP] <s>"),
            x("a <x> [SEP]")["input_ids"],
            x.tokenize("a <x> [SEP]", split_special_tokens=False),
        )
        for x in [
            t.from_pretrained(
                t.name_or_path, additional_special_tokens=["<x>"], eos_token="<s>", split_special_tokens=True
            )
        ]
    ],
    "pad and model_input_names": lambda t: [
        (
            dict(x.pad({"input_ids": [[101, 7592], [101]]})),
            dict(x.pad({"input_ids": [[101], [101, 7]]}, return_attention_mask=True)),
        )
        for x in [t.from_pretrained(t.name_or_path, model_input_names=["input_ids", "token_type_ids"])]
    ],
    "model_input_names": lambda t: dict(
        t.from_pretrained(t.name_or_path, model_input_names=["input_ids", "attention_mask"])("hello")
    ),
    "unknown kwargs": lambda t: [
        (x.init_kwargs["keep_accents"], x.init_kwargs["foo"], x.tokenize("Héllo"))
        for x in [t.from_pretrained(t.name_or_path, keep_accents=True, foo=3)]
    ],
    "pad_token_id setter": lambda t: [
        (x.pad_token, x(["a", "a b c"], padding=True)["input_ids"])
        for x in [t.from_pretrained(t.name_or_path)]
        if setattr(x, "pad_token_id", 103) is None
    ],
    "ids setter None": lambda t: [
        (x.cls_token, x.cls_token_id)
        for x in [t.from_pretrained(t.name_or_path)]
        if setattr(x, "cls_token_id", None) is None
    ],
    "numpy tensors": lambda t: {
        k: (v.dtype.str, v.tolist()) for k, v in t(["a b", "c"], padding=True, return_tensors="np").items()
    },
}


@pytest.mark.parametrize("name", list(LIVE_CALLS))
def test_same_calls_as_transformers(real, name):
    transformers = pytest.importorskip("transformers", reason="the side-by-side calls need transformers")
    call = LIVE_CALLS[name]
    ours, theirs = call(BertTokenizer.from_pretrained(real)), call(transformers.BertTokenizer.from_pretrained(real))
    assert _plain(ours) == _plain(theirs)


@pytest.mark.parametrize("batched", [False, True])
def test_too_long_warning_as_transformers(real, caplog, batched):
    """The same warning, once, from both (transformers logs through its own logger, which does not propagate)."""
    transformers = pytest.importorskip("transformers", reason="the side-by-side calls need transformers")
    text = "hello " * 600
    text = [text] if batched else text
    ours = BertTokenizer.from_pretrained(real)
    with caplog.at_level(logging.WARNING):
        ours(text)
        ours(text)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("minibert")]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    logger.addHandler(handler)
    try:
        theirs = transformers.BertTokenizer.from_pretrained(real)
        theirs(text)
        theirs(text)
    finally:
        logger.removeHandler(handler)
        transformers.logging.set_verbosity(verbosity)
    assert messages == [r.getMessage() for r in records] and len(messages) == 1 and LONG_WARNING in messages[0]


def _plain(value):
    """Results as plain Python, so minibert's and transformers' types compare (spans as tuples, arrays as lists)."""
    if isinstance(value, Mapping):  # transformers' BatchEncoding is a UserDict
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# ---- tokenizers' bindings/python/tests (the Encoding's lookups, through transformers' call convention) ------


@pytest.fixture(scope="module")
def love(real):
    tokenizer = BertTokenizer.from_pretrained(real)
    return tokenizer("I love HuggingFace"), tokenizer("I love HuggingFace", "Do you?")


def test_encoding_sequences_and_words(love):  # test_encoding.py: sequence_ids ... word_to_chars
    single, pair = love
    assert single.sequence_ids() == [None, 0, 0, 0, 0, None]
    assert pair.sequence_ids() == [None, 0, 0, 0, 0, None, 1, 1, 1, None]
    assert (single.n_sequences, pair.n_sequences) == (1, 2)
    assert single.tokens() == ["[CLS]", "i", "love", "hugging", "##face", "[SEP]"]
    assert pair.tokens() == ["[CLS]", "i", "love", "hugging", "##face", "[SEP]", "do", "you", "?", "[SEP]"]
    assert single.word_to_tokens(0) == (1, 2) and pair.word_to_tokens(0) == (1, 2)
    assert pair.word_to_tokens(0, sequence_index=0) == (1, 2) and pair.word_to_tokens(6, sequence_index=0) is None
    assert pair.word_to_tokens(0, sequence_index=1) == (6, 7)
    assert single.word_to_chars(2) == (7, 18) and pair.word_to_chars(2, sequence_index=0) == (7, 18)
    assert pair.word_to_chars(2, sequence_index=1) == (6, 7)


def test_encoding_tokens_and_chars(love):  # test_encoding.py: token_to_sequence ... char_to_word
    single, pair = love
    assert single.token_to_sequence(2) == 0 and pair.token_to_sequence(2) == 0
    assert [pair.token_to_sequence(i) for i in (0, 5, 6, 8, 9, 1200)] == [None, None, 1, 1, None, None]
    assert single.token_to_chars(0) is None and single.token_to_chars(2) == (2, 6) and pair.token_to_chars(2) == (2, 6)
    assert pair.token_to_chars(5) is None and pair.token_to_chars(6) == (0, 2)
    assert [single.token_to_word(i) for i in (0, 1, 4)] == [None, 0, 2]
    assert [pair.token_to_word(i) for i in (1, 4, 5, 6, 7)] == [0, 2, None, 0, 1]
    assert single.char_to_token(0) == 1 and pair.char_to_token(0) == 1 and pair.char_to_token(0, sequence_index=0) == 1
    assert pair.char_to_token(1, sequence_index=0) is None and pair.char_to_token(0, sequence_index=1) == 6
    assert pair.char_to_token(2, sequence_index=1) is None
    assert single.char_to_word(0) == 0 and single.char_to_word(1) is None and pair.char_to_word(2) == 1
    assert pair.char_to_word(2, sequence_index=1) is None and pair.char_to_word(3, sequence_index=1) == 1


def test_bert_wordpiece_basic_encode(real):  # test_bert_wordpiece.py: test_basic_encode
    tokenizer = BertTokenizer.from_pretrained(real)
    output = tokenizer("My name is John", "pair", return_offsets_mapping=True)
    assert output["input_ids"] == [101, 2026, 2171, 2003, 2198, 102, 3940, 102]
    assert output.tokens() == ["[CLS]", "my", "name", "is", "john", "[SEP]", "pair", "[SEP]"]
    assert output["offset_mapping"] == [(0, 0), (0, 2), (3, 7), (8, 10), (11, 15), (0, 0), (0, 4), (0, 0)]
    assert output["token_type_ids"] == [0, 0, 0, 0, 0, 0, 1, 1]
    output = tokenizer("My name is John", "pair", add_special_tokens=False, return_offsets_mapping=True)
    assert output["input_ids"] == [2026, 2171, 2003, 2198, 3940]
    assert output.tokens() == ["my", "name", "is", "john", "pair"]
    assert output["offset_mapping"] == [(0, 2), (3, 7), (8, 10), (11, 15), (0, 4)]
    assert output["token_type_ids"] == [0, 0, 0, 0, 1]
