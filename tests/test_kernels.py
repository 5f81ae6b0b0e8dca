"""The float32 arithmetic that replaces libm (erf in GELU, exp in the attention softmax) against float64
math, and the softmax kernels against nn.softmax. The whole fast path is checked against the reference in
tests/test_fast.py; these pin each approximation's error where it is made."""

import math

import numba
import numpy as np
import pytest

from minibert import nn
from minibert.fast import kernels
from minibert.fast.gemm import WIDTH
from minibert.fast.softmax import softmax_exp


def test_erf_rational_float32():
    x = np.linspace(-6, 6, 200_001, dtype=np.float32)
    z = np.zeros_like(x)
    kernels.gelu_keep_float32.serial(x[None], z[None])  # GELU(x) = x Φ(x): compare it with float64 math
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    worst = np.abs(z - exact).max()
    print(f"float32 GELU (rational erf) vs float64 math.erf: max abs {worst:.1e}")
    assert worst <= 1e-6


@numba.njit(fastmath=True)
def _softmax_rows_float32(scores, length, scale):
    """softmax.softmax_exp on each row of scores [N, padded], each row then divided by its sum; compiled with
    fast math, as the forward's attention is (Numba then flags every float instruction, the intrinsic's
    too)."""
    for i in range(scores.shape[0]):
        total = softmax_exp(WIDTH, scores[i], 0, length, scores.shape[1], scale)
        scores[i, :length] /= total


@pytest.mark.parametrize("length", [77, 96, 5, 48, 56, 200, 256])
def test_softmax_exp_float32(length):
    """The float32 forward's softmax (vector IR: the max, Cephes' exponential as 2^k · exp(r), the sum; the
    division is the caller's) against nn.softmax in float64, on rows padded to 256: a ragged end, a row
    filling its padding, shorter than one vector, even and odd counts of whole vectors, and rows of more than
    EXP_VECTORS vectors, whose exponentials run side by side, with some left over (for 8 and 16 lanes).
    The padding lanes come out 0. Scores over a wide range reach the exponential's clamp at exp(-86).
    The row's max first, and last: each of the max's running maxima and its last vector are read."""
    rng = np.random.default_rng(1)
    scores = np.full((300, 256), np.nan, dtype=np.float32)  # the padding lanes' values are never read
    scores[:, :length] = rng.standard_normal((300, length)) * 20
    scores[0, :length] = np.linspace(-1e4, 0, length)  # exponents below -86: clamped, no wrapped exponent bits
    scores[1, :length] = np.linspace(0, -1e4, length)
    scores[2, length - 1] = 100.0
    expected = nn.softmax(scores[:, :length].astype(np.float64) * 0.125)
    _softmax_rows_float32(scores, length, np.float32(0.125))
    worst = np.abs(scores[:, :length] - expected).max()
    print(f"softmax_exp float32 (length {length}) vs nn.softmax in float64: max abs {worst:.1e}")
    assert worst <= 1e-6 and np.all(scores[:, length:] == 0) and np.all(scores[:, :length] >= 0)


@pytest.mark.parametrize("parallel", [False, True])
def test_softmax_rows(parallel):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((300, 77)) * 20  # wide range: large negative exponents
    expected = nn.softmax(scores * 0.125)
    (kernels.softmax_rows if parallel else kernels.softmax_rows.serial)(scores, 0.125)
    worst = np.abs(scores - expected).max()
    print(f"softmax_rows float64 vs nn.softmax: max abs {worst:.1e}")
    assert worst <= 1e-15


def test_parallel_kernels_from_several_threads():
    """Numba's workqueue pool (the layer minibert picks) aborts the whole process when two threads enter
    parallel regions at once, e.g. two models serving requests side by side; kernels.run lets one in at a
    time. In a child process, so a regression fails this test instead of killing the run."""
    import subprocess
    import sys
    from pathlib import Path

    program = """
import threading
import numpy as np
from minibert.fast import kernels
x = [np.zeros((512, 1024), np.float32) for _ in range(2)]  # 2^19 elements: above PARALLEL_FROM
bias = np.ones(1024, np.float32)
def calls(i):
    for _ in range(200):
        kernels.run(kernels.add_bias, x[i].size, x[i], bias)
threads = [threading.Thread(target=calls, args=(i,)) for i in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(x[0].min(), x[0].max(), x[1].min(), x[1].max())
"""
    assert 512 * 1024 >= kernels.PARALLEL_FROM
    child = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300,
                           cwd=Path(__file__).resolve().parents[1])
    assert child.returncode == 0, child.stderr[-500:]
    assert child.stdout.split() == ["200.0"] * 4
