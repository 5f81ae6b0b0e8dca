"""Where the float32 forward's time goes, and how close its GEMMs come to the micro-kernel's peak.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_profile.py [--shapes 1x8,32x128] [--rounds 20]

Per shape (BERT-Mini, random weights, no padding):
- the whole call on all threads (median), and its GFLOP/s (the GEMMs' and attention's multiply-adds × 2);
- each phase of fast/layers.py on one thread, run phase by phase from Python on the forward's own
  buffers (each phase's items all claimed by the calling thread): ms per call summed over the layers, share,
  and GFLOP/s. One thread, so the split is the work's, not the region's waiting.
Before them, the time that reading the encoder's weight matrices once takes at the rate the threads can
stream an array as large (a floor under the small shapes, where each weight is read once and used for few
rows). Then the GEMM at the 32 × 128 forward's shapes (4096 rows) on all threads: minibert's (gemm.linear on
packed panels) and NumPy's sgemm (BLAS), GFLOP/s; and the micro-kernel's own hot-cache peak (one tile over
data in L1, one thread and all threads at once, the fastest of 20 runs), what GELU in FFN in's epilogue
costs (the same product with the bias alone, one thread), and the int8 GEMM's peak on the
CPU's int8 kernel (fast/int8.py; one thread, 96 rows over a 256 × 256 weight, in cache), in multiply-adds × 2.
"""

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import prange

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel  # noqa: E402
from minibert.fast import gemm, int8, layers, set_num_threads  # noqa: E402
from minibert.tools.bench import (  # noqa: E402
    SETTLE, SHAPES, blas_description, cpu_description, interleaved_minimum, interleaved_times, parse_shapes,
    random_mini_weights)

MR, WIDTH, FUSED = gemm.MR, gemm.WIDTH, gemm.FUSED  # module constants: compile-time literals in _hot_tiles
PHASES = ("Q, K, V", "attention", "output", "LayerNorm 1", "FFN in (+ GELU)", "FFN out", "LayerNorm 2")


def call_seconds(call, rounds: int) -> list[float]:
    """The seconds of `rounds` timed calls, after one untimed call."""
    call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def median_ms(call, rounds: int) -> float:
    return float(np.median(call_seconds(call, rounds))) * 1e3


def phase_ms(model, batch: int, seq: int, rounds: int) -> list[float]:
    """Each phase's one-thread time per call (ms, summed over the layers), on the forward's own buffers."""
    fast, c = model.fast, model.config
    H, A, T = c.hidden_size, c.num_attention_heads, batch * seq
    starts, lengths = np.arange(batch) * seq, np.full(batch, seq)
    work = layers.buffers(1, H, c.intermediate_size, A, seq)
    buffers = {name: np.zeros(shape, np.float32) for name, shape in work.items()}
    packed = gemm.aligned(buffers["packed"][0], gemm.KC, layers.NR)
    scratch, tail, keys, scores, values, heads = (buffers[n][0] for n in ("scratch", "tail", "keys", "scores",
                                                                          "values", "heads"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, H)).astype(np.float32)
    qkv, context, projected = (np.zeros((T, n), np.float32) for n in (3 * H, H, H))
    intermediate = np.zeros((T, c.intermediate_size), np.float32)
    hidden, positions = np.empty((0, 1, H), np.float32), np.arange(T)  # no layer's output kept
    panels, panel_bounds, vectors, vector_bounds = fast.compiled
    scale = np.float32((H // A) ** -0.5)
    counters = np.zeros(6, np.int64)  # Q, K and V each claim from a phase of their own
    totals = [0.0] * len(PHASES)
    for layer in range(c.num_hidden_layers):
        w, v = layers.layer_weights(panels, panel_bounds, vectors, vector_bounds, layer)
        calls = [
            lambda: [layers._gemm_items(x, w[i], qkv[:, i * H:(i + 1) * H], v[i], gemm.BIAS, 1, counters, i, packed,
                                        scratch, tail) for i in range(3)],
            lambda: layers._attention_items(qkv, starts, lengths, A, scale, context, counters, 0, packed, scratch,
                                            tail, keys, scores, values, heads),
            lambda: layers._gemm_items(context, w[3], projected, v[3], gemm.NONE, 1, counters, 0, packed, scratch,
                                       tail),
            lambda: layers._layer_norm_items(projected, v[3], x, v[4], v[5], c.layer_norm_eps, T, 1, counters, 0,
                                             hidden, -1, positions),
            lambda: layers._gemm_items(x, w[4], intermediate, v[6], gemm.BIAS_GELU, 1, counters, 0, packed,
                                       scratch, tail),
            lambda: layers._gemm_items(intermediate, w[5], projected, v[7], gemm.NONE, 1, counters, 0, packed,
                                       scratch, tail),
            lambda: layers._layer_norm_items(projected, v[7], x, v[8], v[9], c.layer_norm_eps, T, 1, counters, 0,
                                             hidden, -1, positions),
        ]
        for i, call in enumerate(calls):
            def fresh(call=call):
                counters[:] = 0  # every item unclaimed: the calling thread claims them all
                call()
            totals[i] += median_ms(fresh, rounds)
    return totals


def phase_flops(config, batch: int, seq: int) -> list[float]:
    """Multiply-adds × 2 of each phase, all layers."""
    H, F, L, T = config.hidden_size, config.intermediate_size, config.num_hidden_layers, batch * seq
    attention = 2 * 2 * batch * seq * seq * H  # q kᵀ and p v, all heads
    return [L * f for f in (2 * T * H * 3 * H, attention, 2 * T * H * H, 0, 2 * T * H * F, 2 * T * F * H, 0)]


@numba.njit
def _hot_tile(x, b, c, reps):
    for _ in range(reps):
        gemm.micro_kernel(MR, 2, WIDTH, FUSED, x, 0, x.shape[1], b, 0, b.shape[1], 0, b.shape[0], c, 0, c.shape[1],
                          False, gemm.NONE, c[0], 0, c, 0, c.shape[1])


@numba.njit(parallel=True)
def _hot_tiles(x, b, c, reps, threads):
    for t in prange(threads):  # each thread its own tile (a function of its own: see gemm._build)
        _hot_tile(x[t], b, c[t], reps)


def hot_peak(threads: int) -> float:
    """GFLOP/s of the micro-kernel on one tile over K = 256, all operands in L1, `threads` at once: the
    fastest of 20 runs (a peak; the machine's slow moments only lower it)."""
    K, NR = 256, 2 * gemm.WIDTH
    x = np.random.default_rng(0).random((threads, gemm.MR, K + 8), dtype=np.float32)
    b = np.random.default_rng(1).random((K, NR), dtype=np.float32)
    c = np.zeros((threads, gemm.MR, NR), np.float32)
    reps = 20000
    seconds = min(call_seconds(lambda: _hot_tiles(x, b, c, reps, threads), 20))
    return 2 * gemm.MR * NR * K * reps * threads / seconds / 1e9


def gelu_cost() -> float:
    """How much longer FFN in's product takes with bias + GELU in its epilogue than with the bias alone: one
    thread, 256 rows × 256 × 1024 on packed panels, the fastest of 40 of each, interleaved."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((256, 256), dtype=np.float32), rng.standard_normal((256, 1024), dtype=np.float32)
    out, bias, panels = np.empty((256, 1024), np.float32), np.zeros(1024, np.float32), gemm.pack(w)
    threads = numba.get_num_threads()
    set_num_threads(1)
    try:
        best = interleaved_minimum({epilogue: lambda e=epilogue: gemm.linear(x, panels, out, bias, e, in_panels=True)
                                    for epilogue in (gemm.BIAS, gemm.BIAS_GELU)}, 40)
    finally:
        set_num_threads(threads)
    return best[gemm.BIAS_GELU] / best[gemm.BIAS]


def int8_hot_peak(kernel: str) -> float:
    """G multiply-adds × 2 per second of the int8 GEMM on `kernel` (a vector one) on one thread, on operands
    that stay in cache (int8.packed_matmul, 96 rows over a 256 × 256 weight): the fastest of 20 runs of 200
    products."""
    T, K, N = 96, 256, 256
    rng = np.random.default_rng(0)
    panels = int8.pack(rng.integers(-127, 128, (N, K), dtype=np.int8), kernel)
    codes = rng.integers(0, 256, (T, panels.shape[1] * int8.KERNELS[kernel][1])).astype(int8.codes_dtype(kernel))
    acc = np.zeros((T, panels.shape[0] * panels.shape[2] // int8.KERNELS[kernel][1]), np.int32)
    product = int8.packed_matmul(kernel, parallel=False)

    def products():
        for _ in range(200):
            product(codes, panels, acc)

    return 2 * T * K * N * 200 / min(call_seconds(products, 20)) / 1e9


@numba.njit(parallel=True, fastmath=True)
def _stream(a, threads):
    """Σ a, each thread summing one contiguous share: a read of every element, at the rate memory allows."""
    share = a.size // threads
    sums = np.zeros(threads, np.float32)
    for t in prange(threads):
        total = np.float32(0.0)
        for i in range(t * share, (t + 1) * share):
            total += a[i]
        sums[t] = total
    return sums.sum()


def stream_floor(nbytes: int, threads: int) -> tuple[float, float]:
    """(GB/s, ms): the rate at which `threads` threads read an array of nbytes that does not fit in their L2
    caches (it comes from L3 or memory, as a small batch's weights do), and the time such a read takes."""
    a = np.ones(nbytes // 4, np.float32)
    ms = median_ms(lambda: _stream(a, threads), 20)
    return nbytes / ms / 1e6, ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", type=parse_shapes, default=SHAPES)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    threads = numba.get_num_threads()
    print(f"CPU: {cpu_description()}; {threads} threads; micro-kernel {gemm.MR} x {2 * gemm.WIDTH}, "
          f"{'FMA' if gemm.FUSED else 'no FMA'}; BLAS: {blas_description()}")
    config, weights = random_mini_weights()
    model = BertModel(config, weights)
    model(np.zeros((1, 8), np.int64))  # the first call packs the weights into panels
    panels, bounds = model.fast.compiled[:2]
    nbytes = panels[:bounds[-2]].nbytes  # the encoder's, not the pooler's (the last)
    rate, floor = stream_floor(nbytes, threads)
    print(f"The encoder's weight matrices: {nbytes / 2**20:.1f} MB; read at {rate:.1f} GB/s on {threads} threads "
          f"(an array as large, summed): {floor:.3f} ms, a floor under any call that reads each weight once "
          f"from beyond L2")
    for batch, seq in args.shapes:
        ids = np.random.default_rng(0).integers(0, config.vocab_size, (batch, seq))
        rounds = max(3, args.rounds * 128 // (batch * seq)) if batch * seq > 128 else args.rounds * 10
        whole = median_ms(lambda: model(ids), rounds)
        flops = phase_flops(config, batch, seq)
        print(f"\n{batch} x {seq}: whole call {whole:.3f} ms on {threads} threads, "
              f"{sum(flops) / whole / 1e6:.0f} GFLOP/s")
        ms = phase_ms(model, batch, seq, max(3, rounds // 2))
        total = sum(ms)
        print(f"  {'phase, one thread':<20} {'ms':>9} {'share':>7} {'GFLOP/s':>8}")
        for name, t, f in zip(PHASES, ms, flops):
            rate = f"{f / t / 1e6:8.0f}" if f else f"{'':>8}"
            print(f"  {name:<20} {t:9.3f} {t / total:7.1%} {rate}")
        print(f"  {'all phases':<20} {total:9.3f}         {sum(flops) / total / 1e6:8.0f}")
    print(f"\nGEMMs of the 32 x 128 forward (4096 rows), {threads} threads, GFLOP/s of the fastest / median call "
          f"(the two alternating, each after a pause of {SETTLE} s: OpenBLAS's threads spin on after a call):")
    rng = np.random.default_rng(0)
    for name, (k, n) in {"Q, K, V (each)": (256, 256), "FFN in": (256, 1024), "FFN out": (1024, 256)}.items():
        x, w = rng.standard_normal((4096, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
        out, bias = np.empty((4096, n), np.float32), np.zeros(n, np.float32)
        panels = gemm.pack(w)  # as the encoder's weights are, at the model's first call
        times = interleaved_times({"minibert": lambda: gemm.linear(x, panels, out, bias, in_panels=True),
                                   "NumPy's BLAS": lambda: np.matmul(x, w, out=out)}, 20, SETTLE)
        rate = 2 * 4096 * k * n / 1e9
        print(f"  {name:<16} " + ", ".join(f"{engine} {rate / t.min():4.0f} / {rate / np.median(t):4.0f}"
                                           for engine, t in times.items()))
    print(f"micro-kernel hot-cache peak: {hot_peak(1):.0f} GFLOP/s on one thread, {hot_peak(threads):.0f} on "
          f"{threads} at once")
    print(f"bias + GELU in the epilogue (FFN in's) against the bias alone: {gelu_cost():.2f}x the time "
          "(256 x 256 x 1024, one thread)")
    kernel = int8.kernels_present()[0]
    if kernel != "portable":
        print(f"int8 GEMM ({kernel} kernel) hot-cache peak: {int8_hot_peak(kernel):.0f} G multiply-adds x 2 per "
              "second on one thread")


if __name__ == "__main__":
    main()
