"""The float32 kernels that replace libm (erf in GELU, exp in the attention softmax) against float64 math,
and the softmax kernels against nn.softmax. The whole fast path is checked against the reference in
tests/test_fast.py; these pin each approximation's error where it is made."""

import math

import numpy as np
import pytest

from minibert import nn
from minibert.fast import kernels


def test_erf_rational_float32():
    x = np.linspace(-6, 6, 200_001, dtype=np.float32)
    z = np.zeros_like(x)
    kernels.gelu_keep_float32.serial(x[None], z[None])  # GELU(x) = x Φ(x): compare it with float64 math
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    worst = np.abs(z - exact).max()
    print(f"float32 GELU (rational erf) vs float64 math.erf: max abs {worst:.1e}")
    assert worst <= 1e-6


def test_exp_nonpositive_float32():
    x = -np.concatenate([np.linspace(0, 86, 1_000_001), np.random.default_rng(0).exponential(2, 100_000)])
    x = x.astype(np.float32)
    e = x.copy()
    kernels.exp_nonpositive_float32(e, np.empty(len(e), dtype=np.int32))
    exact = np.exp(x.astype(np.float64))
    worst = (np.abs(e - exact) / exact).max()
    print(f"float32 exp vs float64 exp on [-86, 0]: max relative {worst:.1e}")
    assert worst <= 5e-7
    below = np.array([-86.5, -100.0, -1e30, -np.inf], dtype=np.float32)
    kernels.exp_nonpositive_float32(below, np.empty(4, dtype=np.int32))
    assert np.all((below >= 0) & (below < 1e-37))  # clamped to exp(-86) ≈ 4e-38: no wrapped exponent bits


@pytest.mark.parametrize("dtype, bound", [("float32", 1e-6), ("float64", 1e-15)])
@pytest.mark.parametrize("parallel", [False, True])
def test_softmax_rows(dtype, bound, parallel):
    rng = np.random.default_rng(1)
    scores = (rng.standard_normal((300, 77)) * 20).astype(dtype)  # wide range: large negative exponents
    expected = nn.softmax(scores.astype(np.float64) * 0.125)
    kernel = kernels.for_dtype(scores.dtype, "softmax_rows")
    (kernel if parallel else kernel.serial)(scores, scores.dtype.type(0.125))
    worst = np.abs(scores - expected).max()
    print(f"softmax_rows {dtype} vs nn.softmax in float64: max abs {worst:.1e}")
    assert worst <= bound


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
