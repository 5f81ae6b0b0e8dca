"""The kernels as Numba builds them for CPUs the tests may not run on, read in their assembly: built (not run)
for an AVX-512 CPU with VNNI and for an AVX2 CPU without, each kernel uses the instructions it was written
for where the target has them (zmm multiply-adds, vpdpbusd, vpmaddwd), and the plain-IR sums that stand in
for a missing instruction (int8.dot_bytes) only where it lacks them. What the kernels compute is tested
elsewhere, on this CPU's builds and on the other vector widths' (test_gemm, test_int8, test_fast)."""

import json
import platform

import pytest

from tests.fixtures.cpu import run_for_cpu

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 builds need an x86 host")

AVX512_VNNI = "+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx512cd,+avx512vnni,+evex512,+avx2,+avx,+fma"
AVX2 = "+avx2,+avx,+fma,-avx512f,-avx512vnni,-avxvnni"

ASSEMBLY = """
import json
from numba import types as t
from minibert.fast import gemm, int8, simd

def assembly(function, *arguments):
    function.compile(arguments)
    return function.inspect_asm(function.signatures[-1])

def lines(text, *words):  # lines of the assembly holding every word
    return sum(all(word in line for word in words) for line in text.splitlines())

f32, i32 = t.Array(t.float32, 2, "C"), t.Array(t.int32, 2, "C")
serial = gemm.kernel(parallel=False)
assembly(serial, f32, f32, t.boolean, f32, t.Array(t.float32, 1, "C"), f32, t.int64, t.int64)
part = serial.py_func.__globals__["PART"]  # the thread's share, where the micro-kernel is
found = {"target": list(simd.host()), "float32": {w: lines(part.inspect_asm(part.signatures[0]), "vfmadd", w)
                                                   for w in ("%ymm", "%zmm")}}
for name in int8.KERNELS:
    codes = t.Array(t.int16 if name == "avx2" else t.uint8, 2, "C")
    text = assembly(int8.packed_matmul(name, False), codes, t.Array(t.int8, 3, "C"), i32)
    found[name] = {word: lines(text, *word.split()) for word in ("vpdpbusd %zmm", "vpdpbusd %ymm", "vpmaddwd")}
print(json.dumps(found))
"""


def build(cpu: str, features: str, cache) -> dict:
    """Instruction counts in the kernels' assembly, as built for `cpu` with `features` (never run here)."""
    return json.loads(run_for_cpu(ASSEMBLY, cpu, NUMBA_CPU_FEATURES=features,
                                  NUMBA_CACHE_DIR=str(cache)).strip().splitlines()[-1])


@pytest.mark.slow
def test_avx512_vnni_build(tmp_path):
    found = build("sapphirerapids", AVX512_VNNI, tmp_path)
    print(f"built for {found.pop('target')}: {found}")
    assert found["float32"]["%zmm"] >= 16  # the 8 × 32 tile: 16 zmm multiply-adds a k
    assert found["vnni512"]["vpdpbusd %zmm"] >= 16 and found["vnni512"]["vpdpbusd %ymm"] == 0
    assert found["vnni256"]["vpdpbusd %ymm"] >= 12 and found["vnni256"]["vpdpbusd %zmm"] == 0
    assert found["avx2"]["vpmaddwd"] >= 12


@pytest.mark.slow
def test_avx2_build(tmp_path):
    found = build("znver3", AVX2, tmp_path)
    print(f"built for {found.pop('target')}: {found}")
    assert found["float32"]["%ymm"] >= 12 and found["float32"]["%zmm"] == 0  # the 6 × 16 tile
    assert all(found[name]["vpdpbusd %zmm"] + found[name]["vpdpbusd %ymm"] == 0 for name in ("vnni512", "vnni256"))
    assert found["avx2"]["vpmaddwd"] >= 12
