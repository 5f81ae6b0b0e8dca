"""Int8 models: the reference arithmetic (minibert/nn/quantize.py) against a float64 simulation of the same
quantization, the fast kernels against the reference bit for bit, the API, and int8 checkpoints."""

import os
import subprocess
import sys

import numpy as np
import pytest

import minibert
from minibert import WeightsError
from minibert.fast import gemm, int8, int8_attention, int8_layers, layers, set_num_threads, simd
from minibert.loading.weights import read_safetensors
from minibert.nn import quantize
from minibert.nn.activations import gelu as nn_gelu
from tests.conftest import maxdiff
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights
from tests.fixtures.cpu import run_with_lanes
from tests.test_heads import BATCH, CHOICES, CLASSES, HEADS

SHAPES = [(1, 8, 16), (3, 33, 7), (5, 64, 48), (33, 100, 129), (17, 256, 768)]  # (tokens T, in K, out N): tails


def random_linear(rng, T, K, N, dtype=np.float32):
    """Activations with a few large features (as BERT's have) and weights of BERT's scale."""
    x = rng.standard_normal((T, K)) * np.where(rng.random(K) < 0.05, 8.0, 1.0)
    x[0] = np.abs(x[0])  # a row of one sign: its range starts at 0
    weight = rng.normal(0, 0.05, (N, K))
    weight[N // 2] = 0  # a row of zeros
    return x.astype(dtype), weight.astype(dtype), rng.normal(0, 0.1, N).astype(dtype)


def simulated_dense(x, weight, bias):
    """y = x̂ Ŵᵀ + b in float64, with Ŵ = s_w Q_w and x̂ = s_x (Q_x - z): the same quantization, written
    independently (codes chosen in float64 from the same ranges), without integers or the zero-point algebra."""
    x, weight = x.astype(np.float64), weight.astype(np.float64)
    s_w = np.float32(np.abs(weight).max(axis=1) / 127).astype(np.float64)  # stored as float32
    s_w[s_w == 0] = 1
    w_hat = s_w[:, None] * np.clip(np.rint(weight / s_w[:, None]), -127, 127)
    lo, hi = np.minimum(x.min(axis=1), 0), np.maximum(x.max(axis=1), 0)
    s_x = (hi - lo) / 255
    z = np.rint(-lo / s_x)
    x_hat = s_x[:, None] * (np.clip(np.rint(x / s_x[:, None]) + z[:, None], 0, 255) - z[:, None])
    return x_hat @ w_hat.T + bias, np.abs(x_hat) @ np.abs(w_hat).T  # and the scale of each output's terms


def int8_error(dense, x, weight, bias):
    """max |dense(x) - simulation| relative to the size of each output's terms Σ|x̂ Ŵ|."""
    q, s = quantize.quantize_weight(weight)
    expected, size = simulated_dense(x, weight, bias)
    return float((np.abs(dense(x, q, s, bias) - expected) / (size + 1)).max())


@pytest.mark.parametrize("T, K, N", SHAPES)
def test_reference_equals_float64_simulation(T, K, N):
    x, weight, bias = random_linear(np.random.default_rng(T), T, K, N)
    error = int8_error(quantize.dense_int8, x, weight, bias)
    print(f"int8 reference vs float64 simulation, {T}x{K}x{N}: {error:.1e} of Σ|x̂ Ŵ|")
    assert error <= 1e-6  # float32 rounding of the epilogue only


def planted_no_zero_point(x, q, s, bias):
    q_x, s_x, zero = quantize.quantize_rows(x)
    return quantize.dequantize(quantize.int_matmul(q_x, q), s_x, 0 * zero, s, q.sum(axis=1, dtype=np.int32)) + bias


def planted_truncation(x, q, s, bias):
    original = np.rint
    try:
        np.rint = np.trunc
        return quantize.dense_int8(x, q, s, bias)
    finally:
        np.rint = original


def planted_one_scale(x, q, s, bias):
    return quantize.dense_int8(x, q, np.full_like(s, s.mean()), bias)


def planted_per_tensor(x, q, s, bias):
    flat = x.reshape(1, -1)
    q_x, s_x, zero = quantize.quantize_rows(flat)
    rows = q_x.reshape(x.shape)
    acc = quantize.int_matmul(rows, q)
    weight_sum = q.sum(axis=1, dtype=np.int32)
    return quantize.dequantize(acc, np.repeat(s_x, len(x)), np.repeat(zero, len(x)), s, weight_sum) + bias


@pytest.mark.parametrize("planted", [planted_no_zero_point, planted_truncation, planted_one_scale, planted_per_tensor])
def test_simulation_sees_planted_bugs(planted):
    """Each planted bug (zero point dropped, codes truncated, one weight scale for all channels, one
    activation range for all tokens) misses the simulation by far more than the bound above."""
    x, weight, bias = random_linear(np.random.default_rng(1), 33, 100, 129)
    error = int8_error(planted, x, weight, bias)
    print(f"{planted.__name__}: {error:.1e}")
    assert error > 1e-3


def test_quantize_weight_codes():
    weight = np.random.default_rng(0).normal(0, 0.05, (64, 32)).astype(np.float32)
    weight[3] = 0
    q, s = quantize.quantize_weight(weight)
    assert q.dtype == np.int8 and s.dtype == np.float32
    np.testing.assert_array_equal(np.delete(np.abs(q).max(axis=1), 3), 127)  # each row uses the full range
    assert np.all(np.abs(q.astype(np.float64) * s[:, None] - weight) <= s[:, None] / 2 * (1 + 1e-6))
    np.testing.assert_array_equal(quantize.quantize_weight(-weight)[0], -q)  # symmetric
    np.testing.assert_array_equal(quantize.quantize_weight(q * s[:, None])[0], q)  # quantizing again changes nothing


# ---- the fast kernels: bit for bit on the integers ------------------------------------------------------


@pytest.mark.parametrize("kernel", ["vnni512", "vnni256", "avx2", "portable"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, K, N", SHAPES)
def test_fast_kernels_equal_reference(T, K, N, dtype, kernel):
    """Every GEMM kernel, forced, at shapes with row, column and K tails: on its instruction where the CPU has
    it, else on the same sums in plain vector IR (int8.dot_bytes, int8.pair_sums)."""
    x, weight, _ = random_linear(np.random.default_rng(K), T, K, N, dtype)
    q, s = quantize.quantize_weight(weight)
    matrix = int8.Int8Matrix(q, s, kernel)
    q_x, s_x, zero = quantize.quantize_rows(x)
    acc_fast, s_fast, zero_fast = matrix.accumulate(x)
    np.testing.assert_array_equal(s_fast, s_x)
    np.testing.assert_array_equal(zero_fast, zero)
    np.testing.assert_array_equal(acc_fast, quantize.int_matmul(q_x, q))  # the int32 accumulators, bit for bit
    out = np.empty((T, N), dtype)
    matrix.matmul(x, out)
    reference = quantize.dense_int8(x, q, s, np.zeros(N, dtype))
    print(f"{kernel} vs reference int8 {T}x{K}x{N} {np.dtype(dtype).name}: {np.abs(out - reference).max():.1e}")
    assert np.abs(out - reference).max() <= 1e-5 * max(1.0, np.abs(reference).max())


def test_an_unknown_kernel_is_refused():
    q, s = quantize.quantize_weight(np.ones((4, 8), np.float32))
    with pytest.raises(ValueError, match="int8 kernel 'vnni1024' is not one of vnni512, vnni256, avx2, portable"):
        int8.Int8Matrix(q, s, "vnni1024")


OTHER_CPU = """
import numpy as np
from minibert.fast import gemm, int8, int8_attention, int8_layers, layers, set_num_threads, simd
from minibert.nn import quantize
from minibert.nn.activations import gelu as nn_gelu
rng = np.random.default_rng(0)
for T, K, N in [(1, 8, 16), (3, 33, 7), (33, 100, 129)]:
    x = rng.standard_normal((T, K)).astype(np.float32)
    q, s = quantize.quantize_weight(rng.normal(0, 0.05, (N, K)))
    for kernel in [None, *int8.KERNELS]:  # the kernel chosen for this CPU, then each one forced
        acc, _, _ = int8.Int8Matrix(q, s, kernel).accumulate(x)
        assert np.array_equal(acc, quantize.int_matmul(quantize.quantize_rows(x)[0], q)), (T, K, N, kernel)
print(",".join(int8.kernels_present()))
"""


@pytest.mark.parametrize("cpu, kernels", [("generic", "portable"), ("haswell", "avx2,portable")])
def test_kernels_chosen_for_other_cpus(cpu, kernels, tmp_path):
    """Compiled for a CPU without vector extensions beyond x86-64's (NUMBA_CPU_NAME=generic), or for one with
    AVX2 and no VNNI (as AMD Zen 3), the kernel chosen gives the same integers, and so does each kernel forced
    (on the plain-IR sums that stand in for an instruction the target lacks)."""
    if cpu != "generic" and "avx2" not in int8.kernels_present():
        pytest.skip(f"this CPU cannot run code compiled for {cpu}")
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_CPU_FEATURES", None)
    result = subprocess.run([sys.executable, "-c", OTHER_CPU], env=env, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == kernels


# ---- models: every class, save and load ------------------------------------------------------------------


def outputs(model, name, use_fast=True):
    (model.bert if hasattr(model, "bert") else model).use_fast = use_fast
    out = model(**(CHOICES if name == "multiple-choice" else BATCH))
    return {key: value for key, value in out.items()}


@pytest.mark.parametrize("name", list(CLASSES))
def test_every_head_class_loads_int8_saves_and_loads_back(name, tmp_path):
    kind = getattr(minibert, CLASSES[name])
    model = kind.from_pretrained(HEADS / name, quantize="int8")
    float_model = kind.from_pretrained(HEADS / name)
    assert model.is_quantized and not float_model.is_quantized
    fast, reference, exact = outputs(model, name), outputs(model, name, use_fast=False), outputs(float_model, name)
    mask = (CHOICES if name == "multiple-choice" else BATCH)["attention_mask"].reshape(-1, BATCH["input_ids"].shape[1])
    for key in fast:
        size = np.abs(exact[key]).max()
        to_float = maxdiff(f"{name} int8 vs float32", key, fast[key], exact[key], mask, report=False)
        paths = maxdiff(f"{name} int8 fast vs reference", key, fast[key], reference[key], mask, report=False)
        print(f"{name} {key}: int8 fast vs int8 reference {paths:.1e}, int8 vs float32 {to_float:.1e} "
              f"(outputs up to {size:.1e})")
        # How close int8 is to float is measured on real models (test_sentence_encoder_int8, the accuracy
        # script); these tiny random ones only show it is not broken. The two int8 paths may differ by a
        # code rounded the other way, where their float inputs differ in the last bit.
        assert to_float <= 0.2 * size and paths <= 1e-3 * size

    model.save_pretrained(tmp_path)
    saved = read_safetensors(tmp_path / "model.safetensors")
    query = next(key for key in saved if key.endswith("layer.0.attention.self.query.weight"))
    assert saved[query].dtype == np.int8 and saved[query + "_scale"].dtype == np.float32
    for mode in (None, "int8"):  # an int8 checkpoint loads as int8; asking for int8 is simply a load
        loaded = kind.from_pretrained(tmp_path, quantize=mode)
        assert loaded.is_quantized
        state, again = model.state_dict(), loaded.state_dict()
        assert state.keys() == again.keys()
        for key in state:
            np.testing.assert_array_equal(again[key], state[key])
            assert again[key].dtype == state[key].dtype
        for key, value in outputs(loaded, name).items():
            np.testing.assert_array_equal(value, fast[key])


def test_quantize_on_a_loaded_model_and_again():
    model = minibert.BertModel.from_pretrained(HEADS / "token")
    assert model.quantize("int8") is model and model.is_quantized
    state = {k: v.copy() for k, v in model.state_dict().items()}
    model.quantize("int8")  # already int8: unchanged
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    with pytest.raises(ValueError, match="quantize='int4': choose from 'int8'"):
        model.quantize("int4")
    with pytest.raises(ValueError, match="quantize='fp16'"):
        minibert.BertModel.from_pretrained(HEADS / "token", quantize="fp16")
    assert minibert.BertModel.from_pretrained(HEADS / "token").num_parameters() == model.num_parameters()


def test_copies_of_an_int8_model_are_int8():
    import copy

    model = minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-single", quantize="int8")
    twin = copy.deepcopy(model)
    assert twin.is_quantized
    np.testing.assert_array_equal(twin(**BATCH).logits, model(**BATCH).logits)


def broken_checkpoint(tmp_path, change):
    minibert.BertModel.from_pretrained(HEADS / "token", quantize="int8").save_pretrained(tmp_path)
    from safetensors.numpy import save_file

    tensors = read_safetensors(tmp_path / "model.safetensors")
    change(tensors)
    save_file(tensors, tmp_path / "model.safetensors")
    return tmp_path


NAME = "encoder.layer.1.intermediate.dense.weight"


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop(NAME + "_scale"), f"missing {NAME}_scale"),
    (lambda t: t.update({NAME + "_scale": t[NAME + "_scale"].astype(np.float16)}),
     f"{NAME}_scale is float16 \\[24\\], expected float32 \\[24\\]"),
    (lambda t: t.update({NAME: t[NAME].astype(np.int16)}),
     f"{NAME} is int16 \\[24, 16\\], but beside {NAME}_scale it must be int8"),
    (lambda t: t.update({NAME: t[NAME].astype(np.float32)}), f"{NAME} is float32"),
    (lambda t: t.update({NAME + "_scale": -t[NAME + "_scale"]}), f"{NAME}_scale holds a scale that is not a positive"),
    (lambda t: t.update({"encoder.layer.0.output.dense.weight_scale": np.ones(3, np.float32)}),
     "_scale is float32 \\[3\\]"),
])
def test_bad_int8_checkpoint_is_a_named_error(tmp_path, change, message):
    directory = broken_checkpoint(tmp_path, change)
    with pytest.raises(WeightsError, match=message):
        minibert.BertModel.from_pretrained(directory)


def test_int8_scales_beside_float_weights_are_an_error(tmp_path):
    model = minibert.BertModel.from_pretrained(HEADS / "token")
    model.save_pretrained(tmp_path)
    from safetensors.numpy import save_file

    tensors = read_safetensors(tmp_path / "model.safetensors")
    tensors[NAME + "_scale"] = np.ones(24, np.float32)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(WeightsError, match=f"{NAME} is float32 \\[24, 16\\], but beside {NAME}_scale it must be int8"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_sentence_encoder_int8(minilm_path):
    from minibert.tasks import SentenceEncoder

    sentences = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]
    exact = SentenceEncoder.from_pretrained(minilm_path).encode(sentences)
    encoder = SentenceEncoder.from_pretrained(minilm_path, quantize="int8")
    assert encoder.model.is_quantized
    cosine = (encoder.encode(sentences) * exact).sum(axis=1)  # unit vectors
    print(f"all-MiniLM-L6-v2 int8 vs float32, cosine: {cosine}")
    assert cosine.min() > 0.99


def test_an_int8_model_is_not_trained():
    from minibert.train import value_and_grad

    model = minibert.BertForSequenceClassification.from_pretrained(HEADS / "sequence-single", quantize="int8")
    with pytest.raises(ValueError, match="an int8 model cannot be trained"):
        value_and_grad(model, BATCH, np.zeros(len(BATCH["input_ids"]), np.int64))


def test_cli_int8(minilm_path, capsys):
    from minibert.cli import main

    assert main(["embed", "--model", str(minilm_path), "--int8", "--json", "A man is playing a guitar."]) == 0
    import json

    embedding = np.array(json.loads(capsys.readouterr().out)[0]["embedding"])
    assert main(["embed", "--model", str(minilm_path), "--json", "A man is playing a guitar."]) == 0
    exact = np.array(json.loads(capsys.readouterr().out)[0]["embedding"])
    assert 0.99 < embedding @ exact < 1 - 1e-7  # int8, and close
    assert main(["trace", "--model", str(minilm_path), "--int8", "Hello world"]) == 0


# ---- the int8 forward in one parallel region (fast/int8_layers.py) ---------------------------------------


HOST_KERNEL = int8.kernels_present()[0]


def fused_dense(kernel, x, q, s, bias, epilogue):
    """int8_layers' GEMM (the dequantization, bias and GELU in the kernel's registers) on x, one thread."""
    matrix = int8.Int8Matrix(q, s, kernel)
    W, G, _, V = int8.KERNELS[kernel]
    T, N = x.shape[0], q.shape[0]
    codes = np.zeros((T, matrix.panels.shape[1] * G), int8.codes_dtype(kernel))  # K padded, as the forward's codes
    x_scale, zero = np.empty(T, np.float32), np.empty(T, np.int32)
    int8.quantize_rows(x, np.float32(quantize.ACTIVATION_LEVELS), codes, x_scale, zero)
    out = np.full((T, N), np.nan, np.float32)
    int8_layers.gemm_kernel(kernel)(codes, matrix.panels, matrix.weight_sum, matrix.scale, x_scale, zero, bias, out,
                                    epilogue, 1, np.zeros(2, np.int64), 0, np.zeros((8, V * W), np.int32),
                                    np.zeros(V * W, np.float32))
    return out


@pytest.mark.parametrize("kernel", list(int8.KERNELS))
@pytest.mark.parametrize("T, K, N", SHAPES)
def test_fused_gemm_equals_reference(T, K, N, kernel):
    """The region's GEMM, each epilogue, every vector kernel (natively where the CPU has it), at shapes with
    row, column and K tails: bit for bit the reference's dequantize (+ bias), and GELU as nn.gelu within
    float32 rounding."""
    x, weight, bias = random_linear(np.random.default_rng(K), T, K, N)
    q, s = quantize.quantize_weight(weight)
    y = quantize.dense_int8(x, q, s, np.zeros(N, np.float32))
    np.testing.assert_array_equal(fused_dense(kernel, x, q, s, bias, gemm.NONE), y)
    np.testing.assert_array_equal(fused_dense(kernel, x, q, s, bias, gemm.BIAS), y + bias)
    gelu = fused_dense(kernel, x, q, s, bias, gemm.BIAS_GELU)
    expected = nn_gelu((y + bias).astype(np.float64))
    print(f"{kernel} fused GEMM + GELU vs float64 GELU of the reference, {T}x{K}x{N}: "
          f"{np.abs(gelu - expected).max():.1e}")
    assert np.abs(gelu - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_fused_gemm_sees_a_planted_bug():
    """The comparison above fails when one column's scale is off by one part in a million."""
    kernel = HOST_KERNEL
    if kernel == "portable":
        pytest.skip("this CPU has no vector int8 kernel")
    x, weight, bias = random_linear(np.random.default_rng(0), 17, 256, 768)
    q, s = quantize.quantize_weight(weight)
    wrong = s.copy()
    wrong[5] *= np.float32(1 + 1e-6)
    assert not np.array_equal(fused_dense(kernel, x, q, wrong, bias, gemm.BIAS),
                              quantize.dense_int8(x, q, s, bias))


@pytest.mark.parametrize("kernel", [k if k == HOST_KERNEL else pytest.param(k, marks=pytest.mark.slow)
                                    for k in int8.KERNELS])  # each build of the forward compiles for most of a minute
def test_int8_forward_in_one_region(kernel, monkeypatch):
    """An int8 model's forward (int8_layers) against the int8 reference, on each vector kernel (natively where
    the CPU has it), with padding, sequences longer and shorter than attention's SHORT and a hidden size whose
    panels have tails (48 = 32 + 16); on one thread it gives the same bits as on two, and so it does with each
    sequence a group of its own (layers.groups: each thread takes whole groups through every layer)."""
    config = dict(RANDOM_CONFIGS["tiny"], hidden_size=48, intermediate_size=70, num_hidden_layers=3)
    weights = random_weights(config)
    model = minibert.BertModel(minibert.BertConfig.from_dict(config), weights).quantize()
    reference = minibert.BertModel(minibert.BertConfig.from_dict(config), weights).quantize()
    reference.use_fast = False
    monkeypatch.setattr(int8, "kernels_present", lambda: [kernel, "portable"])  # the kernel each matrix takes
    model.fast.refresh()
    assert model.fast.compiled_int8[0] == kernel
    ids = np.random.default_rng(1).integers(0, config["vocab_size"], (3, 40))
    mask = np.ones_like(ids)
    mask[1, 17:], mask[2, 5:] = 0, 0
    fast = model(ids, attention_mask=mask, output_hidden_states=True)
    slow = reference(ids, attention_mask=mask, output_hidden_states=True)
    size = max(np.abs(h).max() for h in slow.hidden_states)
    worst = max(maxdiff(f"int8 region ({kernel}) vs int8 reference", f"hidden state {i}", a, b, mask, report=False)
                for i, (a, b) in enumerate(zip(fast.hidden_states, slow.hidden_states)))
    print(f"int8 region ({kernel}) vs int8 reference: hidden states {worst:.1e} (values up to {size:.1e})")
    assert worst <= 1e-3 * size  # a code may round the other way where float inputs differ in the last bit
    try:
        set_num_threads(1)
        one = model(ids, attention_mask=mask).last_hidden_state
    finally:
        set_num_threads(2)
    np.testing.assert_array_equal(one, fast.last_hidden_state)
    monkeypatch.setattr(layers, "groups", lambda lengths, *_: np.arange(len(lengths) + 1))  # a group per sequence
    grouped = model(ids, attention_mask=mask, output_hidden_states=True)
    for a, b in zip(grouped.hidden_states, fast.hidden_states):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(grouped.pooler_output, fast.pooler_output)


INT8_FORWARD_OTHER_WIDTH = """
import numpy as np
import minibert
from minibert.fast import int8, simd
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights
kernel = "vnni512" if simd.host().width == 16 else "avx2"
int8.kernels_present = lambda target=None: [kernel, "portable"]  # the kernel an AVX-512 VNNI (or AVX2) CPU takes
config = dict(RANDOM_CONFIGS["tiny"], hidden_size=48, intermediate_size=70, num_hidden_layers=3)
weights = random_weights(config)
model = minibert.BertModel(minibert.BertConfig.from_dict(config), weights).quantize()
reference = minibert.BertModel(minibert.BertConfig.from_dict(config), weights).quantize()
reference.use_fast = False
ids = np.random.default_rng(1).integers(0, config["vocab_size"], (3, 40))
mask = np.ones_like(ids)
mask[1, 17:], mask[2, 5:] = 0, 0
fast, slow = (m(ids, attention_mask=mask).last_hidden_state for m in (model, reference))
real = mask.astype(bool)
print(model.fast.compiled_int8[0], simd.host().width, float(np.abs(fast - slow)[real].max()),
      float(np.abs(slow[real]).max()))
"""


@pytest.mark.slow
def test_int8_forward_with_the_other_vector_width(tmp_path):
    """The int8 forward as a CPU of the other x86 width runs it, on this CPU: 16 float32 lanes and the vnni512
    kernel (an AVX-512 VNNI CPU's) where the CPU has no AVX-512, else 8 lanes and the avx2 kernel (AMD Zen 3's),
    against the int8 reference, with padding and panel tails, as test_int8_forward_in_one_region."""
    lanes = 8 if simd.host().width == 16 else 16
    kernel, width, worst, size = run_with_lanes(INT8_FORWARD_OTHER_WIDTH, lanes, tmp_path, timeout=1200).split()
    print(f"int8 forward, {kernel} with {width} lanes: vs int8 reference {float(worst):.1e} (values up to {size})")
    assert (kernel, width) == ("vnni512" if lanes == 16 else "avx2", str(lanes))
    assert float(worst) <= 1e-3 * float(size)


def test_the_int8_region_reads_one_copy_of_each_weight_that_weights_changed_renews():
    """The int8 region reads the matrices' parts from int8.stack's arrays, of which the layers' Int8Matrix parts
    are views (one copy of the panels), and the encoder's vectors from the array the model's are views of, as
    the float32 region. A matrix and a bias replaced in the dict reach it after weights_changed(): it then
    gives the bits of a model made afresh from the changed weights."""
    if HOST_KERNEL == "portable":
        pytest.skip("this CPU has no vector int8 kernel")
    config = dict(RANDOM_CONFIGS["tiny"], hidden_size=48, intermediate_size=70, num_hidden_layers=2)
    model = minibert.BertModel(minibert.BertConfig.from_dict(config), random_weights(config)).quantize()
    _, panels, panel_bounds, sums, scales, column_bounds, vectors, _ = model.fast.compiled_int8
    matrices = [m for layer in model.fast.layers for m, _ in (*layer["qkv"], layer["o"], layer["ffn_in"],
                                                              layer["ffn_out"])]
    for m, p, c in zip(matrices, panel_bounds, column_bounds):
        assert m.panels.ctypes.data == panels.ctypes.data + p and np.shares_memory(m.panels, panels)
        assert m.weight_sum.ctypes.data == sums[c:].ctypes.data and m.scale.ctypes.data == scales[c:].ctypes.data
    assert all(np.shares_memory(a, vectors) for name, a in model.state_dict().items()
               if name.startswith("encoder.") and name.endswith((".bias", "LayerNorm.weight")))
    ids = np.random.default_rng(1).integers(0, config["vocab_size"], (2, 20))
    before = model(ids).last_hidden_state
    layer = model.weights["encoder"]["layer"][1]
    weight, scale = quantize.quantize_weight(np.linspace(-1, 1, 70 * 48, dtype=np.float32).reshape(48, 70))
    layer["output"]["dense"]["weight"], layer["output"]["dense"]["weight_scale"] = weight, scale
    layer["attention"]["self"]["value"]["bias"] = np.linspace(-1, 1, 48, dtype=np.float32)
    model.weights_changed()
    after = model(ids).last_hidden_state
    afresh = minibert.BertModel(minibert.BertConfig.from_dict(config), model.state_dict())(ids).last_hidden_state
    print(f"int8 region after weights_changed vs before: {np.abs(after - before).max():.1e}")
    np.testing.assert_array_equal(after, afresh)
    assert np.abs(after - before).max() > 1e-2


# ---- the attention's products in int8 (nn.quantize.attention_int8, fast/int8_attention.py) -----------------


def random_attention(rng, B, A, S, d):
    """q, k, v [B, A, S, d] float32 with a few large features, and real [B, S] with padding in the last row."""
    q, k, v = (rng.standard_normal((B, A, S, d)) * np.where(rng.random(d) < 0.1, 4.0, 1.0) for _ in range(3))
    real = np.ones((B, S), dtype=bool)
    real[-1, S // 2 + 1:] = False
    return q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), real


def simulated_scores(q, k, planted=None):
    """Q̂ K̂ᵀ in float64 with Q̂ = s_q (Q_q - z) per row and K̂ = s_k Q_k per key, written without integers or the
    zero-point algebra; and the scale of each score's terms Σ|Q̂ K̂|."""
    q, k = q.astype(np.float64), k.astype(np.float64)
    lo, hi = np.minimum(q.min(-1, keepdims=True), 0), np.maximum(q.max(-1, keepdims=True), 0)
    s_q = ((hi - lo) / 255).astype(np.float32).astype(np.float64)  # stored as float32
    z = np.rint(-lo / s_q)
    q_hat = s_q * (np.clip(np.rint(q / s_q) + z, 0, 255) - (0 if planted == "no zero point" else z))
    top = np.abs(k).max(-1, keepdims=True)
    k_hat = top / 127 * np.rint(k * (127 / top))
    return q_hat @ np.swapaxes(k_hat, -1, -2), np.abs(q_hat) @ np.abs(np.swapaxes(k_hat, -1, -2))


def simulated_context(e, v, real, planted=None):
    """(ê V̂) / Σ e in float64 with ê = round(255 e) / 255 and V̂ = s_v Q_v, a scale per column over the real
    keys; and the scale of each output's terms Σ|ê V̂| / Σ e."""
    e, v = e.astype(np.float64), v.astype(np.float64)
    columns = np.where(real[:, None, :, None], v, 0)
    top = np.abs(columns).max(-1 if planted == "a scale per row" else -2, keepdims=True)
    top[top == 0] = 1  # a column (or row) of zeros
    v_hat = top / 127 * np.rint(columns * (127 / top))
    levels = 127 if planted == "7-bit e" else 255
    e_hat = np.rint(e * levels) / levels
    total = 1 if planted == "no division" else e.sum(-1, keepdims=True)
    return e_hat @ v_hat / total, np.abs(e_hat) @ np.abs(v_hat) / e.sum(-1, keepdims=True)


def attention_errors(q, k, v, real, planted=None):
    """max |reference - simulation| of the scores and of the context, each relative to its terms' scale."""
    scores, size = simulated_scores(q, k, planted)
    score_error = np.abs(quantize.scores_int8(q, k) - scores) / (size + 1)
    _, p = quantize.attention_int8(q, k, v, real)
    e = p / p.max(-1, keepdims=True)  # the reference's e (its max is 1), up to rounding
    e = e.astype(np.float32)
    total = e.sum(-1)
    context, size = simulated_context(e, v, real, planted)
    context_error = np.abs(quantize.context_int8(e, total, v, real) - context) / (size + 1)
    return float(score_error.max()), float(np.where(real[:, None, :, None], context_error, 0).max())


@pytest.mark.parametrize("B, A, S, d", [(1, 1, 1, 4), (2, 3, 24, 16), (3, 4, 37, 40), (2, 2, 130, 64)])
def test_attention_products_equal_float64_simulation(B, A, S, d):
    """Both int8 products of the reference's attention against a float64 simulation of the same quantization:
    float32 rounding of the epilogue only (real query rows; padding keys take no part)."""
    q, k, v, real = random_attention(np.random.default_rng(S), B, A, S, d)
    scores, context = attention_errors(q, k, v, real)
    print(f"attention B={B} A={A} S={S} d={d}: scores {scores:.1e}, context {context:.1e} of their terms' scale")
    assert scores <= 1e-6 and context <= 1e-6


@pytest.mark.parametrize("planted", ["no zero point", "a scale per row", "7-bit e", "no division"])
def test_attention_simulation_sees_planted_bugs(planted):
    """Each planted bug (the queries' zero point dropped, V quantized per row instead of per column, e in 7
    bits, the softmax's division left out) misses the simulation by far more than the bound above."""
    q, k, v, real = random_attention(np.random.default_rng(2), 2, 3, 24, 16)
    error = max(attention_errors(q, k, v, real, planted))
    print(f"{planted}: {error:.1e}")
    assert error > 1e-3


def test_attention_int8_ignores_padding():
    """A padded sequence's real rows equal the same sequence alone (the same codes; Σ e summed in another
    order moves the last bit); a sequence of padding only gives finite numbers (it attends to every key, as
    in transformers)."""
    q, k, v, real = random_attention(np.random.default_rng(3), 2, 2, 20, 8)
    context, _ = quantize.attention_int8(q, k, v, real)
    alone, _ = quantize.attention_int8(q[1:, :, :11], k[1:, :, :11], v[1:, :, :11], real[1:, :11])
    assert np.abs(context[1, :, :11] - alone[0]).max() <= 1e-6 * np.abs(v).max()
    nothing, _ = quantize.attention_int8(q, k, v, np.zeros_like(real))
    assert np.isfinite(nothing).all()


def fast_attention(kernel, qkv, lengths, num_heads):
    """int8_attention.attention_items with kernel's constants on one thread: (context [T, H], e [L, L] and
    Σ e [L] of the last sequence's last head, as it leaves them in its buffers)."""
    W, _, _, V = int8.KERNELS[kernel]
    T, H = qkv.shape[0], qkv.shape[1] // 3
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    buffers = {name: np.zeros(shape, dtype)[0] for name, (shape, dtype) in
               int8_attention.buffers(1, H, num_heads, int(lengths.max()), kernel).items()}
    context = np.full((T, H), np.nan, np.float32)
    int8_layers.attention_kernel(kernel)(qkv, starts, lengths, num_heads, context, np.zeros(2, np.int64), 0,
                                         *buffers.values(), np.zeros((8, V * W), np.int32), np.zeros(V * W, np.float32))
    L, L_p = lengths[-1], -(-lengths[-1] // (V * W)) * (V * W)
    return context, buffers["scores"][:L * L_p].reshape(L, L_p)[:, :L], buffers["exp_sums"][:L]


@pytest.mark.parametrize("kernel", list(int8.KERNELS))
@pytest.mark.parametrize("H, A", [(48, 4), (160, 4), (256, 4)])  # heads of 12, 40 (tails of 16) and 64 columns
def test_fast_attention_equals_reference(kernel, H, A):
    """The int8 attention (fast/int8_attention.py) on every vector kernel (natively where the CPU has it),
    against the reference, on sequences with row and panel tails: given the fast e, its context equals the
    reference's context_int8 bit for bit; its e is the reference's to float32 rounding (its exponential is
    another); and the whole context is the reference's within one step of an e code (where the two e round
    differently)."""
    rng = np.random.default_rng(H)
    lengths = np.array([37, 1, 33, 5])
    d = H // A
    qkv = (rng.standard_normal((lengths.sum(), 3 * H)) * np.where(rng.random(3 * H) < 0.1, 4.0, 1.0)).astype(np.float32)
    context, e, total = fast_attention(kernel, qkv, lengths, A)
    L, start = lengths[-1], lengths[:-1].sum()
    block = qkv[start:].reshape(L, 3, A, d)[:, :, -1][None, None]  # the last sequence's last head [1, 1, L, 3, d]
    q, k, v = (np.ascontiguousarray(block[..., i, :]) for i in range(3))
    real = np.ones((1, L), dtype=bool)
    np.testing.assert_array_equal(context[start:, -d:], quantize.context_int8(e[None, None], total[None, None], v,
                                                                              real)[0, 0])
    scores = quantize.scores_int8(q, k)[0, 0]
    expected = np.exp((scores - scores.max(-1, keepdims=True)) * np.float32(d ** -0.5))
    assert np.abs(e - expected).max() <= 1e-6
    worst = 0.0
    for s, L in zip(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths):
        q, k, v = (qkv[s:s + L].reshape(L, 3, A, d)[:, i].transpose(1, 0, 2)[None] for i in range(3))
        reference, _ = quantize.attention_int8(q, k, v, np.ones((1, L), dtype=bool))
        error = np.abs(context[s:s + L] - reference[0].transpose(1, 0, 2).reshape(L, H)) / np.abs(v).max()
        worst = max(worst, float(error.max()))
    print(f"int8 attention ({kernel}, d={d}): context vs reference {worst:.1e} of max |v|")
    assert worst <= 1 / 255  # one e code rounded the other way moves an output by at most |v| / 255
