"""Weights and work arrays that start on a cache line (minibert/fast/aligned.py)."""

import numpy as np
import pytest

from minibert import BertConfig, BertModel
from minibert.fast import aligned
from minibert.fast.int8 import KERNELS, pack
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int32])
def test_zeros_start_on_a_cache_line(dtype, order):
    for shape in [(5, 7), (256, 1024), (0, 3), (3,)]:
        a = aligned.zeros(shape, dtype, order)
        assert a.shape == shape and a.dtype == dtype and not a.any() and a.flags.writeable
        assert a.flags.f_contiguous if order == "F" else a.flags.c_contiguous
        assert aligned.is_aligned(a) or a.size == 0  # (an empty array's address means nothing)


def small_model(**options):
    return BertModel(BertConfig.from_dict(RANDOM_CONFIGS["tiny"]), random_weights(RANDOM_CONFIGS["tiny"]), **options)


def dense_weights(model):
    return {name: a for name, a in model.state_dict().items() if a.ndim == 2 and not name.startswith("embeddings.")}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_models_dense_weights_are_column_major_on_cache_lines(dtype):
    dense = dense_weights(small_model(dtype=dtype))
    assert len(dense) == 2 * 6 + 1  # six per layer and the pooler's
    for name, a in dense.items():
        assert a.flags.f_contiguous and aligned.is_aligned(a), name


def test_weights_changed_keeps_stored_arrays_and_aligns_new_ones():
    model = small_model()
    before = dense_weights(model)
    layer = model.weights["encoder"]["layer"][0]["intermediate"]["dense"]
    raw = np.zeros(layer["weight"].size + 8, np.float32)  # a column-major array one float off a line
    offset = np.asfortranarray(raw[1:1 + layer["weight"].size].reshape(layer["weight"].shape[::-1]).T)
    offset[...] = layer["weight"] * 2
    assert offset.flags.f_contiguous and not aligned.is_aligned(offset)
    layer["weight"] = offset
    model.weights_changed()
    after = dense_weights(model)
    name = "encoder.layer.0.intermediate.dense.weight"
    assert aligned.is_aligned(after[name]) and np.array_equal(after[name], offset)
    assert all(after[n] is a for n, a in before.items() if n != name)  # stored arrays are kept, not copied


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_int8_panels_start_on_a_cache_line(kernel):
    weight = np.random.default_rng(0).integers(-127, 128, (37, 50), dtype=np.int8)
    assert aligned.is_aligned(pack(weight, kernel))
