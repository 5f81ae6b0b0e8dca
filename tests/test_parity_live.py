"""minibert against a freshly built transformers model, when torch and transformers are importable."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="live parity needs torch (pip install -e '.[reference]')")
pytest.importorskip("transformers", reason="live parity needs transformers (pip install -e '.[reference]')")

from tests.conftest import Fixture, assert_matches  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402
from tests.fixtures.reference import transformers_model, transformers_outputs  # noqa: E402


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
