"""BertModel's call: input forms it accepts, and a clear error for each kind of bad input."""

import numpy as np
import pytest

from minibert import BertConfig, BertModel
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights

CONFIG = RANDOM_CONFIGS["tiny"]


@pytest.fixture(scope="module")
def model():
    return BertModel(BertConfig.from_dict(CONFIG), random_weights(CONFIG), dtype="float64")


def test_one_dimensional_ids_are_a_batch_of_one(model):
    ids = [3, 14, 15, 92, 65]
    out = model(ids)
    assert out.last_hidden_state.shape == (1, 5, CONFIG["hidden_size"])
    assert out.pooler_output.shape == (1, CONFIG["hidden_size"])
    np.testing.assert_array_equal(out.last_hidden_state, model(np.array([ids])).last_hidden_state)


def test_keyword_call_with_an_encoding_dict(model):
    encoding = {"input_ids": np.array([[2, 7, 1, 0]]), "attention_mask": np.array([[1, 1, 1, 0]]),
                "token_type_ids": np.array([[0, 0, 1, 0]])}
    out = model(**encoding, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == CONFIG["num_hidden_layers"] + 1
    assert len(out.attentions) == CONFIG["num_hidden_layers"]
    assert out.attentions[0].shape == (1, CONFIG["num_attention_heads"], 4, 4)
    assert out["last_hidden_state"] is out.last_hidden_state
    np.testing.assert_array_equal(out.hidden_states[-1], out.last_hidden_state)


def test_outputs_not_asked_for_are_none(model):
    out = model([[1, 2, 3]])
    assert out.hidden_states is None and out.attentions is None


def test_outputs_index_and_iterate_as_transformers_model_outputs(model):
    """transformers' ModelOutput: keys are the fields that are not None, in order; an int indexes them."""
    out = model([[1, 2, 3]])
    assert list(out) == list(out.keys()) == ["last_hidden_state", "pooler_output"] and len(out) == 2
    assert out[0] is out.last_hidden_state and out[1] is out.pooler_output and out[:2] == out.to_tuple()
    assert "hidden_states" not in out
    with pytest.raises(KeyError, match="hidden_states"):
        out["hidden_states"]
    hidden = model([[1, 2, 3]], output_hidden_states=True)
    assert hidden[2] is hidden.hidden_states and dict(hidden.items()) == dict(zip(hidden.keys(), hidden.values()))


def test_padding_does_not_change_real_positions(model):
    """A sentence alone and the same sentence padded inside a batch give the same vectors."""
    alone = model([[4, 8, 15, 16]]).last_hidden_state[0]
    batch = model([[4, 8, 15, 16, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]],
                  attention_mask=[[1, 1, 1, 1, 0, 0, 0], [1] * 7]).last_hidden_state[0, :4]
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-12)


def test_padded_keys_get_zero_attention(model):
    out = model([[4, 8, 15, 0, 0]], attention_mask=[[1, 1, 1, 0, 0]], output_attentions=True)
    for probs in out.attentions:
        assert np.all(probs[..., 3:] == 0)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)


def test_default_positions_and_types_equal_explicit_ones(model):
    ids = np.array([[9, 8, 7, 6]])
    np.testing.assert_array_equal(
        model(ids).last_hidden_state,
        model(ids, token_type_ids=np.zeros_like(ids), position_ids=np.arange(4)).last_hidden_state,
    )
    shifted = model(ids, position_ids=[[1, 2, 3, 4]]).last_hidden_state
    assert not np.allclose(shifted, model(ids).last_hidden_state)


@pytest.mark.parametrize("mask", [np.array([[True, True, True, False]]), np.array([[1.0, 1.0, 1.0, 0.0]]),
                                  np.array([[1, 1, 1, 0]], np.float32)], ids=["bool", "float64", "float32"])
def test_boolean_and_float_masks_equal_the_integer_mask(model, mask):
    """transformers takes these as the same mask (np.ones gives a float one)."""
    ids = [[4, 8, 15, 0]]
    np.testing.assert_array_equal(model(ids, attention_mask=mask).last_hidden_state,
                                  model(ids, attention_mask=[[1, 1, 1, 0]]).last_hidden_state)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"input_ids": [[1, 99]]}, ValueError, r"input_ids holds 99 at position \[0, 1\]; values must lie in \[0, 99\)"),
    ({"input_ids": [[-1, 2, -3]]}, ValueError, r"input_ids holds -1 .* \(2 bad values\)"),
    ({"input_ids": np.array([[1, 2**63 + 5]], np.uint64)}, ValueError,
     r"input_ids holds 9223372036854775813 at position \[0, 1\]"),
    ({"input_ids": [[1.0, 2.0]]}, TypeError, "input_ids must hold integers, got dtype float64"),
    ({"input_ids": [["a", "b"]]}, TypeError, "input_ids must hold integers"),
    ({"input_ids": [[1, 2], [3]]}, ValueError, "ragged lists need padding"),
    ({"input_ids": np.zeros((0, 5), np.int64)}, ValueError, r"non-empty \[batch, seq\] array, got shape \(0, 5\)"),
    ({"input_ids": []}, ValueError, "non-empty"),
    ({"input_ids": np.zeros((2, 2, 2), np.int64)}, ValueError, r"got shape \(2, 2, 2\)"),
    ({"input_ids": np.ones((1, 65), np.int64)}, ValueError,
     r"sequence length 65 exceeds max_position_embeddings \(64\)"),
    ({"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1]]}, ValueError,
     r"attention_mask has shape \(1, 2\), but input_ids has shape \(1, 3\)"),
    ({"input_ids": [[1, 2, 3]], "attention_mask": [[1, 2, 1]]}, ValueError, r"attention_mask holds 2 .* \[0, 2\)"),
    ({"input_ids": [[1, 2, 3]], "attention_mask": [[1.0, 0.5, 0.0]]}, ValueError,
     r"attention_mask holds 0.5 at position \[0, 1\]; a mask's values must be 0 or 1"),
    ({"input_ids": [[1, 2, 3]], "attention_mask": [[np.nan, 1.0, 2.0]]}, ValueError, r"holds nan .* \(2 bad values\)"),
    ({"input_ids": [[1, 2, 3]], "attention_mask": [["1", "1", "0"]]}, TypeError, "attention_mask must hold integers"),
    ({"input_ids": [[1, 2], [3, 4]], "attention_mask": [[1, 1], [1]]}, ValueError,
     r"attention_mask must be a rectangular array of integers \(ragged lists need padding"),
    ({"input_ids": [[1, 2, 3]], "token_type_ids": [[0, 2, 0]]}, ValueError, r"token_type_ids holds 2 .* \[0, 2\)"),
    ({"input_ids": [[1, 2, 3]], "position_ids": [[0, 1, 64]]}, ValueError, r"position_ids holds 64 .* \[0, 64\)"),
    ({"input_ids": [[1, 2, 3]], "position_ids": [[0, 1]]}, ValueError, "position_ids has shape"),
    ({}, ValueError, r"give input_ids \(or inputs_embeds\)"),
    ({"input_ids": [[1]], "inputs_embeds": np.zeros((1, 1, CONFIG["hidden_size"]))}, ValueError, "not both"),
    ({"inputs_embeds": np.zeros((1, 3, 5))}, ValueError,
     rf"inputs_embeds must be a non-empty \[batch, seq, {CONFIG['hidden_size']}\] array, got shape \(1, 3, 5\)"),
    ({"inputs_embeds": np.zeros((0, 3, CONFIG["hidden_size"]))}, ValueError, "non-empty"),
    ({"inputs_embeds": np.full((1, 2, CONFIG["hidden_size"]), "x")}, TypeError, "inputs_embeds must hold numbers"),
    ({"inputs_embeds": [[[0.0] * CONFIG["hidden_size"]], [[0.0]]]}, ValueError,
     "inputs_embeds must be a rectangular array of numbers"),
    ({"inputs_embeds": np.zeros((1, 3, CONFIG["hidden_size"])), "attention_mask": [[1, 1]]}, ValueError,
     r"attention_mask has shape \(1, 2\), but inputs_embeds' \[batch, seq\] has shape \(1, 3\)"),
])
def test_bad_inputs_raise_clear_errors(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        model(**kwargs)


def test_unknown_keyword_is_a_type_error(model):
    with pytest.raises(TypeError, match="offset_mapping"):
        model(input_ids=[[1, 2]], offset_mapping=[[(0, 1), (1, 2)]])


def test_reference_path_keeps_float32_after_a_float64_model_ran(model):
    """GELU's erf once was a lazily compiled Numba ufunc: after a float64 call it cast float32 input to its
    float64 loop, so a float32 model's reference path returned float64 (seen when training tests ran first)."""
    batch = {"input_ids": np.array([[2, 7, 9, 3]])}
    model(**batch, output_attentions=True)  # float64
    small = BertModel(BertConfig.from_dict(CONFIG), random_weights(CONFIG), dtype="float32")
    out = small(**batch, output_hidden_states=True, output_attentions=True)
    assert {h.dtype for h in (*out.hidden_states, *out.attentions, out.pooler_output)} == {np.dtype("float32")}


def test_inputs_embeds_take_the_place_of_the_word_embeddings(model):
    """inputs_embeds = E_word[input_ids] gives what input_ids give; other vectors go through the same
    layers (the live comparison with transformers is in test_parity_live.py). Heads take them too."""
    import minibert

    batch = {"input_ids": np.array([[2, 7, 9, 3], [4, 5, 0, 0]]),
             "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]]),
             "token_type_ids": np.array([[0, 0, 1, 1], [0, 1, 0, 0]])}
    vectors = model.weights["embeddings"]["word_embeddings"]["weight"][batch["input_ids"]]
    model.use_fast = False
    try:
        expected = model(**batch, output_hidden_states=True)
    finally:
        model.use_fast = True
    out = model(inputs_embeds=vectors, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"],
                output_hidden_states=True)
    for ours, reference in zip(out.hidden_states, expected.hidden_states):
        np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(model(inputs_embeds=vectors[0]).last_hidden_state,  # [S, H]: a batch of one
                                  model(inputs_embeds=vectors[:1]).last_hidden_state)
    with pytest.warns(UserWarning, match="newly initialised"):
        head = minibert.BertForSequenceClassification(BertConfig.from_dict({**CONFIG, "num_labels": 2}),
                                                      random_weights(CONFIG), dtype="float64")
    table = head.bert.weights["embeddings"]["word_embeddings"]["weight"]
    np.testing.assert_allclose(head(inputs_embeds=table[batch["input_ids"]],
                                    attention_mask=batch["attention_mask"]).logits,
                               head(batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                               rtol=0, atol=1e-12)
