"""Numba kernels for the fused inference and training paths: everything around the GEMMs, in one pass each.

The GEMMs are elsewhere (fast/gemm.py and fast/int8.py in the one-region forwards; BLAS on the
layer-by-layer path and in training); these kernels do what the reference does between them — embedding
sums, bias adds, GELU, residual + LayerNorm, attention softmax — without temporaries, over packed tokens
[T, ...] (all sequences' real tokens back to back, no padding). The one-region forwards (fast/layers.py,
fast/int8_layers.py) call their row functions. Each states the reference function it must equal;
tests/test_fast.py checks that they do.

Every kernel is compiled twice, parallel over rows and serial (``kernel.serial``): thread hand-off costs
more than small inputs take, so ``run`` picks by the amount of work. All use NumPy's error model: with
Python's, every float division checks its divisor for zero, and that check alone stops LLVM from
vectorising a loop.
"""

import math
import threading
import types

import numba
import numpy as np
from numba import prange

SQRT1_2 = 1.0 / math.sqrt(2.0)
PARALLEL_FROM = 1 << 18  # elements; below this a serial loop beats waking the thread pool
SHORT = 16  # sequences up to this length are attended to with plain loops (attend_short; benchmarks/bench_attention.py)


def kernel(**options):
    """numba.njit(parallel=True, error_model="numpy") with a serial twin at .serial, both cached on disk.

    The twin is compiled from a copy of the function under its own name: Numba's disk cache is keyed by
    the function's name and source line, and the two builds must not share one entry."""
    def compile_both(function):
        twin = types.FunctionType(function.__code__, function.__globals__, function.__name__ + "_serial",
                                  function.__defaults__, function.__closure__)
        twin.__qualname__ = function.__qualname__ + "_serial"
        parallel = numba.njit(cache=True, parallel=True, error_model="numpy", **options)(function)
        parallel.serial = numba.njit(cache=True, error_model="numpy", **options)(twin)
        return parallel
    return compile_both


def for_dtype(dtype: np.dtype, name: str):
    """The `name`_float32 kernel for float32, else `name`_exact. The float32 builds replace libm's erf and
    exp by arithmetic that vectorises, accurate to float32 (errors stated beside them) but not to float64."""
    return globals()[f"{name}_float32" if np.dtype(dtype) == np.float32 else f"{name}_exact"]


# Numba's workqueue pool (fast/__init__.py picks it) aborts the process if two threads enter parallel
# regions at once, e.g. two models serving requests side by side: one parallel region at a time.
PARALLEL_REGION = threading.Lock()


def run(kernel_function, work: int, *args):
    """Call the parallel kernel for `work` elements or more (one thread at a time), its serial twin below."""
    if work < PARALLEL_FROM:
        return kernel_function.serial(*args)
    with PARALLEL_REGION:
        return kernel_function(*args)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def layer_norm_row(row, gamma, beta, eps):
    """row = (row - μ) / √(σ² + ε) · γ + β in place, for one token (nn.layer_norm), two passes in float64
    accumulators."""
    n = row.shape[0]
    mean = 0.0
    for j in range(n):
        mean += row[j]
    mean /= n
    var = 0.0
    for j in range(n):
        d = row[j] - mean
        var += d * d
    inv = 1.0 / math.sqrt(var / n + eps)
    for j in range(n):
        row[j] = (row[j] - mean) * inv * gamma[j] + beta[j]


@kernel(fastmath=True)
def embed(input_ids, token_type_ids, position_ids, word, position, token_type, gamma, beta, eps, out):
    """nn.embeddings over packed tokens: out[t] = LayerNorm(E_word[id] + E_type[type] + E_pos[pos]).

    ids [T] each; tables [*, H]; out [T, H]
    """
    for t in prange(input_ids.shape[0]):
        embed_row(word[input_ids[t]], token_type[token_type_ids[t]], position[position_ids[t]], gamma, beta, eps,
                  out[t])


@numba.njit(cache=True, inline="always")
def copy_row(a, out):
    """out[:] = a, for 1-D arrays of one length, as a loop: Numba compiles an array assigned to a slice with
    its shape-mismatch message (string formatting), into every function it reaches, seconds of the first
    compilation of a forward."""
    for j in range(out.shape[0]):
        out[j] = a[j]


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def embed_row(w, ty, p, gamma, beta, eps, row):
    """row = LayerNorm(w + ty + p), one token's embedding from its word, token type and position vectors [H].
    The sum is formed in the output row and normalised in place (no scratch row)."""
    for j in range(row.shape[0]):
        row[j] = (w[j] + ty[j]) + p[j]  # transformers' order of the sums
    layer_norm_row(row, gamma, beta, eps)


@kernel()
def add_bias(x, bias):
    """x += bias, row by row.  x [T, N], bias [N]"""
    for t in prange(x.shape[0]):
        for j in range(x.shape[1]):
            x[t, j] += bias[j]


# Coefficients of erf_rational, as float32 so the arithmetic stays float32 and vectorises.
ERF_P = tuple(np.float32(c) for c in (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                                      -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                                      -1.60960333262415e-02))
ERF_Q = tuple(np.float32(c) for c in (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                                      -7.37332916720468e-03, -1.42647390514189e-02))
F32_4, F32_HALF, F32_ONE, F32_SQRT1_2 = np.float32(4), np.float32(0.5), np.float32(1), np.float32(SQRT1_2)


@numba.njit(cache=True, inline="always", error_model="numpy")
def erf_rational(x):
    """erf for float32 as pure arithmetic (a loop over it vectorises; one over libm's erff does not): x
    clamped to [-4, 4], where erf is ±1 in float32, then x·P(x²)/Q(x²) with the coefficients of Eigen's
    float32 erf. Max abs error against math.erf: 6.5e-8 evaluated in float64, 4.4e-7 in float32."""
    x = F32_4 if x > F32_4 else (-F32_4 if x < -F32_4 else x)
    x2 = x * x
    p = ERF_P[0]
    for c in ERF_P[1:]:
        p = p * x2 + c
    q = ERF_Q[0]
    for c in ERF_Q[1:]:
        q = q * x2 + c
    return x * p / q


@kernel(fastmath=True)
def bias_gelu_float32(x, bias):
    """x = GELU(x + bias) in place, GELU(z) = z · ½ · (1 + erf(z / √2)) (nn.gelu), erf by erf_rational.
    x [T, I] float32, bias [I]"""
    for t in prange(x.shape[0]):
        row = x[t]
        for j in range(row.shape[0]):
            z = row[j] + bias[j]
            row[j] = z * F32_HALF * (F32_ONE + erf_rational(z * F32_SQRT1_2))


@kernel()
def bias_gelu_exact(x, bias):
    """As bias_gelu_float32 with libm's erf: the float64 path, where the rational erf is not accurate enough."""
    for t in prange(x.shape[0]):
        for j in range(x.shape[1]):
            z = x[t, j] + bias[j]
            x[t, j] = z * 0.5 * (1.0 + math.erf(z * SQRT1_2))


@kernel(fastmath=True)
def gelu_keep_float32(z, out):
    """out = GELU(z), z kept for the backward (the training path's nn.gelu).  z, out [T, I] float32"""
    for t in prange(z.shape[0]):
        for j in range(z.shape[1]):
            out[t, j] = z[t, j] * F32_HALF * (F32_ONE + erf_rational(z[t, j] * F32_SQRT1_2))


@kernel()
def gelu_keep_exact(z, out):
    """As gelu_keep_float32 with libm's erf (float64)."""
    for t in prange(z.shape[0]):
        for j in range(z.shape[1]):
            out[t, j] = z[t, j] * 0.5 * (1.0 + math.erf(z[t, j] * SQRT1_2))


F32_INV_SQRT_2PI = np.float32(1.0 / math.sqrt(2.0 * math.pi))


@kernel(fastmath=True)
def gelu_backward_float32(dy, z):
    """dy = dy · (Φ(z) + z φ(z)) in place (nn.gelu_backward), Φ by erf_rational.  dy, z [T, I] float32"""
    for t in prange(z.shape[0]):
        for j in range(z.shape[1]):
            x = z[t, j]
            cdf = F32_HALF * (F32_ONE + erf_rational(x * F32_SQRT1_2))
            dy[t, j] *= cdf + x * np.exp(-F32_HALF * x * x) * F32_INV_SQRT_2PI


@kernel()
def gelu_backward_exact(dy, z):
    """As gelu_backward_float32 with libm's erf (float64)."""
    for t in prange(z.shape[0]):
        for j in range(z.shape[1]):
            x = z[t, j]
            dy[t, j] *= 0.5 * (1.0 + math.erf(x * SQRT1_2)) + x * math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@kernel(fastmath=True)
def bias_residual_layer_norm(y, bias, residual, gamma, beta, eps):
    """residual = LayerNorm(y + bias + residual) in place: the post-LN residual step of nn.bert's layer.

    y [T, H] (a GEMM's output), residual [T, H] (the layer input, overwritten with the result)
    """
    for t in prange(y.shape[0]):
        bias_residual_layer_norm_row(y[t], bias, residual[t], gamma, beta, eps)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def bias_residual_layer_norm_row(y, bias, row, gamma, beta, eps):
    """row = LayerNorm(y + bias + row) in place, for one token. y, bias, row, gamma, beta [H]"""
    for j in range(row.shape[0]):
        row[j] = (y[j] + bias[j]) + row[j]  # summed and normalised in place: a scratch row cost 2.5x at 128 tokens
    layer_norm_row(row, gamma, beta, eps)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _softmax_row(row, scale):
    """row = softmax(row · scale) in place, with libm's exp, in row's dtype.  row [L], scale > 0"""
    top = row.max()
    scale = row.dtype.type(scale)  # all in row's dtype: a float64 scale or a literal 0 would make it float64
    total = row.dtype.type(0)
    for j in range(row.shape[0]):
        row[j] = math.exp((row[j] - top) * scale)  # = x·scale - max(x·scale), as scale > 0
        total += row[j]
    row /= total


@kernel()
def softmax_rows(scores, scale):
    """scores = softmax(scores · scale) over each row, in place (nn.softmax of the scaled scores), with
    libm's exp: the float64 path (the float32 forward's is fast/softmax.py).  scores [N, L]"""
    for r in prange(scores.shape[0]):
        _softmax_row(scores[r], scale)


@kernel(fastmath=True)
def attention_short(qkv, starts, lengths, num_heads, scale, context):
    """Self-attention for short sequences, entirely in the kernel (BLAS calls would cost more than the work),
    per sequence and head (attend_short). qkv [T, 3H] (q | k | v, biases added), starts/lengths [N] of the
    sequences to do, context [T, H]"""
    for job in prange(starts.shape[0] * num_heads):
        s = job // num_heads
        attend_short(qkv, starts[s], lengths[s], job % num_heads, num_heads, scale, context,
                     np.empty(lengths[s], dtype=qkv.dtype))


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def attend_short(qkv, start, length, h, num_heads, scale, context, p):
    """context_i = Σ_j softmax_j(q_i · k_j · scale) v_j for one sequence (rows start.. of qkv [T, 3H]) and
    head h, as plain loops: for a few tokens, faster than any blocked product. p: scratch [≥ length]"""
    hidden = context.shape[1]
    head_size = hidden // num_heads
    zero = qkv.dtype.type(0)  # sums start from a zero of the input's dtype: a literal 0 would make them float64
    q0, k0, v0 = h * head_size, hidden + h * head_size, 2 * hidden + h * head_size
    p = p[:length]
    for i in range(length):
        q = qkv[start + i, q0:q0 + head_size]
        for j in range(length):
            k = qkv[start + j, k0:k0 + head_size]
            dot = zero  # all head_size terms in the vectorised loop (from q[0]·k[0], 63 left 31 to a scalar tail)
            for d in range(head_size):
                dot += q[d] * k[d]
            p[j] = dot
        _softmax_row(p, scale)
        out = context[start + i, q0:q0 + head_size]
        out[:] = 0
        for j in range(length):  # out = Σ_j p_j v_j, as row updates (axpy) that vectorise over d
            v = qkv[start + j, v0:v0 + head_size]
            for d in range(head_size):
                out[d] += p[j] * v[d]
