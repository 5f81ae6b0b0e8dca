"""minibert against the frozen transformers outputs: every hidden state, attention map and the pooler.

Runs without torch. Regenerate the fixtures with tests/fixtures/make_fixtures.py.
"""

import pytest

from tests.conftest import Fixture, assert_matches

CASES = ["tiny", "mini", "minilm"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_matches_frozen_transformers_outputs(case, dtype):
    fixture = Fixture(case)
    model = fixture.model(dtype)
    for b in range(fixture.num_batches):
        reference = fixture.reference(b, dtype)
        assert reference, f"fixture {case} has no {dtype} outputs for batch {b}"
        assert_matches(f"{case} {dtype} batch {b}", model, fixture.batch(b), reference, dtype)
        # Asking for attention maps runs the reference path; without them the fast path runs: check it too.
        hidden = {k: v for k, v in reference.items() if not k.startswith("attentions")}
        assert_matches(f"{case} {dtype} batch {b} fast path", model, fixture.batch(b), hidden, dtype,
                       output_attentions=False)
