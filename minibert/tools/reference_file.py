"""Frozen reference files: transformers' outputs on sample batches, committed as tests/fixtures/bert_<case>.npz
by tests/fixtures/make_fixtures.py, and read here by the tests and by `minibert check` without transformers.

Layout: "config" (config.json text), "weights_digest" (minibert.loading.weights.weights_digest of the weights),
per batch b "b/input_ids", "b/attention_mask", "b/token_type_ids", and per dtype "b/<dtype>/<tensor>" with
tensor "hidden_states/i", "attentions/i" or "pooler_output".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Where a source checkout keeps them (an installed wheel has none).
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


class ReferenceFile:
    """One frozen reference file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.data = np.load(self.path)
        self.config = json.loads(str(self.data["config"]))
        self.weights_digest = str(self.data["weights_digest"])
        self.num_batches = len({k.split("/")[0] for k in self.data.files if k.endswith("/input_ids")})

    @classmethod
    def for_weights(cls, digest: str) -> ReferenceFile | None:
        """The committed file made from the weights with this digest, if there is one."""
        for path in sorted(FIXTURES.glob("bert_*.npz")):
            reference = cls(path)
            if reference.weights_digest == digest:
                return reference
        return None

    def batch(self, b: int) -> dict[str, np.ndarray]:
        """input_ids, attention_mask, token_type_ids [B, S] of batch b."""
        return {k: self.data[f"{b}/{k}"] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def reference(self, b: int, dtype: str) -> dict[str, np.ndarray]:
        """transformers' tensors on batch b in dtype, by name ("hidden_states/0", "attentions/3", "pooler_output")."""
        prefix = f"{b}/{dtype}/"
        return {k[len(prefix):]: self.data[k] for k in self.data.files if k.startswith(prefix)}
