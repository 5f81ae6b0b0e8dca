"""Explicit SIMD for Numba kernels: LLVM vector IR written with llvmlite's IR builder, called from
`numba.core.extending.intrinsic` code generators.

Numba compiles loops with SLP vectorisation off, so a register tile written as scalar accumulators stays in
memory. Vectors written as LLVM `<W x T>` values do not: LLVM lowers them on every target (AVX-512, AVX2,
SSE, NEON), splitting a vector wider than the target's registers. The helpers here are the few pieces a
micro-kernel needs (a vector type, unaligned loads and stores, a broadcast, a multiply-add, a call to an
LLVM intrinsic by its full name), and `host()` says which vector width and instructions the CPU that Numba
compiles for has, so callers pick their kernels at run time.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import config

F32 = ir.FloatType()
I32 = ir.IntType(32)


def vector(width: int, element: ir.Type = F32) -> ir.VectorType:
    """<width x element>"""
    return ir.VectorType(element, width)


def element_pointer(builder: ir.IRBuilder, base: ir.Value, index: ir.Value) -> ir.Value:
    """&base[index] for a scalar pointer base and an integer index (in elements)."""
    return builder.gep(base, [index])


def load(builder: ir.IRBuilder, pointer: ir.Value, width: int) -> ir.Value:
    """The `width` elements at a scalar pointer as one vector, no alignment assumed beyond the element's."""
    element = pointer.type.pointee
    cast = builder.bitcast(pointer, vector(width, element).as_pointer())
    return builder.load(cast, align=element_bytes(element))


def store(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value) -> None:
    """Store a vector at a scalar pointer (unaligned, as load)."""
    element = pointer.type.pointee
    cast = builder.bitcast(pointer, value.type.as_pointer())
    builder.store(value, cast, align=element_bytes(element))


def element_bytes(element: ir.Type) -> int:
    return element.width // 8 if isinstance(element, ir.IntType) else (4 if element == F32 else 8)


def broadcast(builder: ir.IRBuilder, scalar: ir.Value, width: int) -> ir.Value:
    """<width x T> with every lane = scalar (insertelement into lane 0, then a shufflevector of lane 0)."""
    kind = vector(width, scalar.type)
    first = builder.insert_element(ir.Constant(kind, ir.Undefined), scalar, ir.Constant(I32, 0))
    return builder.shuffle_vector(first, ir.Constant(kind, ir.Undefined), ir.Constant(vector(width, I32), [0] * width))


def call(builder: ir.IRBuilder, name: str, result: ir.Type, args: list[ir.Value]) -> ir.Value:
    """Call the LLVM intrinsic (or any function) `name` (full name, e.g. "llvm.fma.v16f32"), declaring it in
    the module once. Module.declare_intrinsic does not take vector types, so it is declared by name."""
    module = builder.module
    try:
        function = module.get_global(name)
    except KeyError:
        function = ir.Function(module, ir.FunctionType(result, [a.type for a in args]), name=name)
    return builder.call(function, args)


def prefetch(builder: ir.IRBuilder, pointer: ir.Value, write: bool = False) -> None:
    """Ask for the cache line at `pointer` to be loaded (llvm.prefetch, keep in all levels): for streams the
    hardware prefetcher does not follow, such as rows of a matrix a page or more apart. write: fetch it to
    be written (x86's prefetchw where the CPU has it), so that stores to it do not each wait for the line."""
    byte = builder.bitcast(pointer, ir.IntType(8).as_pointer())
    call(builder, "llvm.prefetch", ir.VoidType(), [byte, I32(int(write)), I32(3), I32(1)])


def multiply_add(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value, fused: bool) -> ir.Value:
    """a * b + c: one fused instruction where the CPU has FMA (llvm.fma, rounded once), else a multiply and
    an add flagged `contract` (without FMA in the target, llvm.fma would become a call to libm's fmaf)."""
    if fused:
        suffix = "f32" if a.type.element == F32 else "f64"
        return call(builder, f"llvm.fma.v{a.type.count}{suffix}", a.type, [a, b, c])
    return builder.fadd(builder.fmul(a, b, flags=("contract",)), c, flags=("contract",))


def counted_loop(builder: ir.IRBuilder, count: ir.Value, body, carried: list[ir.Value]) -> list[ir.Value]:
    """IR of `for i in range(count)` (count ≥ 0, an integer) with loop-carried values, which live in phi nodes
    (registers, for a micro-kernel's tile): body(i, values) emits one iteration and returns the next values;
    returns the values after the loop (the initial ones when count is 0)."""
    i64 = count.type
    entry = builder.block
    loop = builder.append_basic_block("loop")
    done = builder.append_basic_block("loop.done")
    builder.cbranch(builder.icmp_signed(">", count, i64(0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(i64)
    values = [builder.phi(v.type) for v in carried]
    new = body(i, values)
    i_next = builder.add(i, i64(1))
    end = builder.block
    i.add_incoming(i64(0), entry)
    i.add_incoming(i_next, end)
    for phi, start, value in zip(values, carried, new):
        phi.add_incoming(start, entry)
        phi.add_incoming(value, end)
    builder.cbranch(builder.icmp_signed("<", i_next, count), loop, done)
    builder.position_at_end(done)
    results = []
    for start, value in zip(carried, new):
        result = builder.phi(start.type)
        result.add_incoming(start, entry)
        result.add_incoming(value, end)
        results.append(result)
    return results


class Target(NamedTuple):
    """What the CPU Numba compiles for offers the kernels."""

    name: str  # LLVM's CPU name ("generic" for the portable build)
    width: int  # float32 lanes per vector register: 16 (AVX-512F), 8 (AVX), 4 (SSE, NEON, generic)
    fma: bool  # fused multiply-add (FMA3 or AVX-512)
    avx2: bool = False  # 256-bit integer vectors (vpmaddwd on 8 int32 lanes)
    vnni: bool = False  # vpdpbusd, the u8 × s8 dot product into int32 (AVX512-VNNI, or AVX-VNNI on 256 bits)


# CPUs LLVM knows with AVX-512F, FMA, AVX: for NUMBA_CPU_NAME given without NUMBA_CPU_FEATURES.
AVX512_CPUS = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
               "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5",
               "x86-64-v4")
FMA_CPUS = ("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake", "lunarlake",
            "znver1", "znver2", "znver3", "bdver2", "bdver3", "bdver4", "x86-64-v3") + AVX512_CPUS
AVX_CPUS = ("sandybridge", "ivybridge", "btver2", "bdver1") + FMA_CPUS
AVX2_CPUS = tuple(name for name in FMA_CPUS if not name.startswith("bdver"))
VNNI_CPUS = ("cascadelake", "cooperlake", "icelake-client", "icelake-server", "tigerlake", "rocketlake",
             "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5", "alderlake", "raptorlake",
             "meteorlake", "arrowlake", "lunarlake")


def host() -> Target:
    """The target Numba compiles for: the host CPU, or NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when set (so
    NUMBA_CPU_NAME=generic gets the portable kernels)."""
    name = config.CPU_NAME or os.environ.get("NUMBA_CPU_NAME")
    features = config.CPU_FEATURES or os.environ.get("NUMBA_CPU_FEATURES")
    if not name or name == "host":
        name = llvm.get_host_cpu_name()
        features = features or llvm.get_host_cpu_features().flatten()
    if features is not None:
        enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
        width = 16 if "avx512f" in enabled else 8 if "avx" in enabled else 4
        vnni = "avxvnni" in enabled or {"avx512vnni", "avx512vl"} <= enabled
        return Target(name, width, "fma" in enabled or "avx512f" in enabled, "avx2" in enabled, vnni)
    return Target(name, 16 if name in AVX512_CPUS else 8 if name in AVX_CPUS else 4, name in FMA_CPUS,
                  name in AVX2_CPUS, name in VNNI_CPUS)
