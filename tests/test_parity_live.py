"""minibert against a freshly built transformers model, when torch and transformers are importable."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch", reason="live parity needs torch (pip install -e '.[reference]')")
pytest.importorskip("transformers", reason="live parity needs transformers (pip install -e '.[reference]')")

from tests.conftest import Fixture, assert_matches  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402
from tests.fixtures.reference import transformers_model, transformers_outputs  # noqa: E402
from minibert import BertConfig, BertModel, init_weights  # noqa: E402


def live_reference_model(fixture: Fixture, dtype: str):
    weights = fixture.weights()
    source = minilm_dir() if fixture.case == "minilm" else fixture.config
    return transformers_model(source, None if fixture.case == "minilm" else weights, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["tiny", "mini", "minilm"])
def test_matches_live_transformers(case, dtype):
    fixture = Fixture(case)
    model, reference = fixture.model(dtype), live_reference_model(fixture, dtype)
    for b in range(fixture.num_batches):
        batch = fixture.batch(b)
        assert_matches(f"live {case} {dtype} batch {b}", model, batch, transformers_outputs(reference, batch), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_explicit_position_ids_and_fresh_random_inputs(dtype):
    fixture = Fixture("mini")
    rng = np.random.default_rng(7)
    ids = rng.integers(0, fixture.config["vocab_size"], size=(3, 40))
    batch = {"input_ids": ids, "attention_mask": (rng.random((3, 40)) < 0.8).astype(np.int64),
             "token_type_ids": rng.integers(0, 2, size=(3, 40)), "position_ids": rng.integers(0, 512, size=(3, 40))}
    batch["attention_mask"][:, 0] = 1
    reference = transformers_outputs(live_reference_model(fixture, dtype), batch)
    assert_matches(f"live mini {dtype} scattered mask + positions", fixture.model(dtype), batch, reference, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inputs_embeds(dtype):
    """Vectors given in place of the word embeddings (inputs_embeds), with a mask and token types."""
    fixture = Fixture("mini")
    rng = np.random.default_rng(8)
    batch = {"inputs_embeds": rng.normal(0, 0.05, (3, 17, fixture.config["hidden_size"])).astype(dtype),
             "attention_mask": (np.arange(17)[None] < np.array([[17], [9], [1]])).astype(np.int64),
             "token_type_ids": rng.integers(0, 2, size=(3, 17))}
    reference = transformers_outputs(live_reference_model(fixture, dtype), batch)
    assert_matches(f"live mini {dtype} inputs_embeds", fixture.model(dtype), batch, reference, dtype)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_random_configs_and_inputs(data):
    """Random configs (1–4 heads of 4, 8 or 16, depth, FFN width, type vocabulary, LayerNorm eps, with or
    without a pooler) and inputs (right, left or scattered padding, token types, positions): every hidden
    state, attention map and the pooler equal transformers', on the reference path (attention maps asked
    for) and the fast path, in float32 and float64."""
    heads, head_size = data.draw(st.integers(1, 4)), data.draw(st.sampled_from([4, 8, 16]))
    config = dict(hidden_size=heads * head_size, num_attention_heads=heads,
                  num_hidden_layers=data.draw(st.integers(1, 2)),
                  intermediate_size=data.draw(st.integers(4, 40)), vocab_size=50, max_position_embeddings=64,
                  type_vocab_size=data.draw(st.integers(1, 2)),
                  layer_norm_eps=data.draw(st.sampled_from([1e-12, 1e-5])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**30)))
    weights = init_weights(BertConfig.from_dict(config), seed=int(rng.integers(2**30)))
    if not data.draw(st.booleans()):
        weights = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    batch, seq = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 30))
    lengths = rng.integers(1, seq + 1, batch)[:, None]
    mask = {"none": np.ones((batch, seq)), "right": np.arange(seq) < lengths, "left": np.arange(seq) >= seq - lengths,
            "scattered": (rng.random((batch, seq)) < 0.7) | (np.arange(seq) == rng.integers(0, seq, batch)[:, None]),
            }[data.draw(st.sampled_from(["none", "right",
                                         "left", "scattered"]))].astype(np.int64)  # a real token per row
    inputs = {"input_ids": rng.integers(0, 50, (batch, seq)), "attention_mask": mask,
              "token_type_ids": rng.integers(0, config["type_vocab_size"], (batch, seq))}
    if data.draw(st.booleans()):
        inputs["position_ids"] = rng.integers(0, 64, (batch, seq))
    for dtype in ("float32", "float64"):
        expected = transformers_outputs(transformers_model(config, weights, dtype), inputs)
        model = BertModel(BertConfig.from_dict(config), dict(weights), dtype=dtype)
        label = f"random config {config}, inputs {inputs}"
        assert_matches(label, model, inputs, expected, dtype, report=False)
        assert_matches(label, model, inputs, {k: v for k, v in expected.items() if not k.startswith("attentions")},
                       dtype, output_attentions=False, report=False)
