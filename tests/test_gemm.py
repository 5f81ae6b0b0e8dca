"""The float32 GEMM (minibert/fast/gemm.py) against NumPy's float64 matmul: vectors of 4, 8 and 16 lanes on
any CPU (LLVM splits a vector wider than the CPU's registers, so the AVX-512 tiles' logic is checked on an
AVX2 CPU too), serial and parallel, the weight read in place and as packed panels, every epilogue, and shapes
that hit every tail of the tiles (rows 1-33, widths not a multiple of the panel, K not a multiple of the K
block). The portable build runs in a subprocess with NUMBA_CPU_NAME=generic."""

import json

import numpy as np
import pytest

from minibert import nn
from minibert.fast import gemm
from tests.fixtures.cpu import run_for_cpu

WIDTHS = [4, 8, 16]  # each CPU's own among them (simd.host().width)
SHAPES = [(rows, 37, 45) for rows in range(1, 34)] + [
    (5, gemm.KC, 32), (9, gemm.KC + 1, 70), (3, 2 * gemm.KC + 77, 16), (109, 300, 100), (1, 1, 1),
    (2 * gemm.MC + 5, 40, 70)]  # more rows than a block: the output is fetched ahead, block by block


def expected(x, w, b, epilogue, residual):
    """The float64 result, and the float32 rounding bound: the dot products' (|x||w|ᵀ · K · 2⁻²⁴, Higham's
    γ_K) plus the epilogue's own rounding (GELU's float32 erf: ≤ 1e-6, tests/test_kernels.py)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    z = x64 @ w64.T
    bound = np.abs(x64) @ np.abs(w64).T * x.shape[1] * 2.0 ** -24
    if epilogue == gemm.NONE:
        return z, bound
    z = z + b
    if epilogue == gemm.BIAS_GELU:
        return nn.gelu(z), 1.13 * (bound + np.abs(z) * 2.0 ** -24) + 1e-6  # |GELU'| ≤ 1.13
    if epilogue == gemm.BIAS_RESIDUAL:
        z = z + residual
    return z, bound + np.abs(z) * 2.0 ** -23


def run(width, parallel, rows, k, n, epilogue, in_panels=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((rows, n)).astype(np.float32)
    out = np.full((rows, n), np.nan, dtype=np.float32)
    wt = np.ascontiguousarray(w.T)  # [K, N]
    gemm.kernel(width, parallel)(x, gemm.pack(wt, width) if in_panels else wt, in_panels, out, b, residual, epilogue, 2)
    want, bound = expected(x, w, b, epilogue, residual)
    return np.abs(out - want).max(), (np.abs(out - want) / bound).max()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("in_panels", [False, True])
def test_every_tail(width, parallel, in_panels):
    worst = max(run(width, parallel, *shape, gemm.BIAS, in_panels) for shape in SHAPES)
    print(f"width {width}, {'parallel' if parallel else 'serial'}, {'panels' if in_panels else 'in place'}: "
          f"max abs {worst[0]:.1e}, {worst[1]:.2f} of the float32 bound")
    assert worst[1] <= 1


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("epilogue", [gemm.NONE, gemm.BIAS, gemm.BIAS_GELU, gemm.BIAS_RESIDUAL])
@pytest.mark.parametrize("in_panels", [False, True])
def test_epilogues(width, epilogue, in_panels):
    worst = max(run(width, True, rows, k, n, epilogue, in_panels)
                for rows, k, n in [(1, 64, 16), (13, 300, 77), (33, 128, 1030)])
    print(f"width {width}, epilogue {epilogue}, {'panels' if in_panels else 'in place'}: max abs {worst[0]:.1e}, "
          f"{worst[1]:.2f} of the float32 bound")
    assert worst[1] <= 1


@pytest.mark.parametrize("width", WIDTHS)
def test_pack(width):
    """pack's panels: panel p's row k holds W[k, p·NR : (p+1)·NR], zeros past N; 64-byte aligned."""
    NR = 2 * width
    w = np.arange(5 * (2 * NR + 3), dtype=np.float32).reshape(5, 2 * NR + 3)  # K = 5, N = 2 NR + 3
    panels = gemm.pack(w, width)
    assert panels.shape == gemm.pack_shape(5, w.shape[1], width) == (3 * 5, NR)
    assert panels.ctypes.data % 64 == 0
    for p in range(3):
        for k in range(5):
            row = w[k, p * NR:(p + 1) * NR]
            assert np.array_equal(panels[p * 5 + k, :row.size], row) and not panels[p * 5 + k, row.size:].any()


@pytest.mark.parametrize("in_panels", [False, True])
def test_views_with_a_row_stride(in_panels):
    """x, w and out may be blocks of larger arrays (the encoder's reused buffers; a weight read in place may
    be a block too), through linear()."""
    rng = np.random.default_rng(2)
    big = rng.standard_normal((20, 50)).astype(np.float32)
    w = rng.standard_normal((40, 90)).astype(np.float32)
    out = np.full((20, 64), 7.0, dtype=np.float32)
    weight = gemm.pack(w[:, 7:37]) if in_panels else w[:, 7:37]
    gemm.linear(big[3:14, 5:45], weight, out[3:14, 10:40], np.zeros(30, np.float32), in_panels=in_panels)
    want = big[3:14, 5:45].astype(np.float64) @ w[:, 7:37]
    assert np.abs(out[3:14, 10:40] - want).max() <= 1e-4
    untouched = np.ones(out.shape, dtype=bool)
    untouched[3:14, 10:40] = False
    assert np.all(out[untouched] == 7.0)  # nothing written outside the output block
    rows = gemm.MC + 40  # more rows than a block: the output's rows fetched ahead are the block's own
    big = rng.standard_normal((rows + 9, 50)).astype(np.float32)
    out = np.full((rows + 9, 64), 7.0, dtype=np.float32)
    gemm.linear(big[3:3 + rows, 5:45], weight, out[3:3 + rows, 10:40], np.zeros(30, np.float32), in_panels=in_panels)
    assert np.abs(out[3:3 + rows, 10:40] - big[3:3 + rows, 5:45].astype(np.float64) @ w[:, 7:37]).max() <= 1e-4
    untouched = np.ones(out.shape, dtype=bool)
    untouched[3:3 + rows, 10:40] = False
    assert np.all(out[untouched] == 7.0)


def test_linear_refuses_panels_of_another_shape():
    x, out, bias = np.ones((3, 40), np.float32), np.empty((3, 30), np.float32), np.zeros(30, np.float32)
    with pytest.raises(ValueError, match=r"panels of shape \[\d+, \d+\] are not those of a \[40, 30\] matrix"):
        gemm.linear(x, gemm.pack(np.ones((30, 40), np.float32)), out, bias, in_panels=True)  # [K, N] swapped


def test_generic_target():
    """The portable kernels (4 lanes, multiply and add without FMA) as NUMBA_CPU_NAME=generic builds them."""
    program = """
import json
from minibert.fast import simd
from tests.test_gemm import SHAPES, run, gemm
target = simd.host()
worst = max(run(target.width, True, *shape, gemm.BIAS_GELU, in_panels) for shape in SHAPES
            for in_panels in (False, True))
print(json.dumps({"target": list(target), "worst": worst}))
"""
    report = json.loads(run_for_cpu(program).strip().splitlines()[-1])
    print(f"generic target {report['target']}: max abs {report['worst'][0]:.1e}, "
          f"{report['worst'][1]:.2f} of the float32 bound")
    assert report["target"][:3] == ["generic", 4, False]
    assert report["worst"][1] <= 1


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [9, 1])
def test_dense(order, n):
    """dense (the pooler's and the heads' product) is nn.dense in float32: weight [out, in] in either memory
    order (a head's row-major, the pooler's column-major), one output or several, x with leading axes."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7, 45)).astype(np.float32)
    w = np.asarray(rng.standard_normal((n, 45)).astype(np.float32), order=order)
    b = rng.standard_normal(n).astype(np.float32)
    got = gemm.dense(x, w, b)
    want, bound = expected(x.reshape(-1, 45), w, b, gemm.BIAS, None)
    print(f"dense, {order} order, {n} outputs: max abs {np.abs(got.reshape(-1, n) - want).max():.1e}")
    assert got.shape == (3, 7, n) and np.all(np.abs(got.reshape(-1, n) - want) <= bound)
    assert gemm.dense(x[:, :0], w, b).shape == (3, 0, n)  # no rows: nothing to compute
