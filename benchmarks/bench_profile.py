"""Where the fast path's time goes: one BERT-Mini forward split into its GEMMs, its attention, each kernel
and everything else, per shape; beside it ONNX Runtime's whole call, and the layers' GEMMs on one row.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_profile.py [--shapes 1x8,1x128] [--rounds 200]

Every np.matmul of the fast encoder and every kernel call is timed (the encoder's module is patched for
the run, not changed); "the rest" is the call's time minus those: Python between the calls, input checks,
packing, the pooler and unpacking. Each line is the median over the rounds; timing adds ~1 µs per call,
shown by the uninstrumented median beside the instrumented one.

"GEMMs on 1 row" runs the same 16 layer GEMMs on a single token: a matrix-vector product reads each weight
once and does almost no arithmetic, so it is the time to stream the weights from memory.

--onnx-ops adds ONNX Runtime's own split of its call (its per-operator profiler, SessionOptions.enable_profiling;
the profiler's own cost makes the small operators look larger): time per call by operator type.
"""

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel  # noqa: E402
from minibert.fast import encoder, kernels  # noqa: E402
from minibert.tools.bench import (  # noqa: E402
    SHAPES,
    blas_description,
    engines,
    export_onnx,
    onnx_session,
    parse_shapes,
    random_mini_weights,
    transformers_model,
)


@contextlib.contextmanager
def instrumented(spent: dict):
    """Time the encoder's np.matmul calls (by calling method) and kernels.run calls (by kernel) into `spent`."""
    run = kernels.run

    class TimedNumpy:  # stands in for the encoder module's `np`
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def matmul(*args, **kwargs):
            start = time.perf_counter()
            out = np.matmul(*args, **kwargs)
            spent["attention GEMMs" if sys._getframe(1).f_code.co_name == "_attention" else "layer GEMMs"] += \
                time.perf_counter() - start
            return out

    def timed_run(kernel_function, work, *args):
        start = time.perf_counter()
        out = run(kernel_function, work, *args)
        spent[f"kernel {kernel_function.py_func.__name__}"] += time.perf_counter() - start
        return out

    encoder.np, kernels.run = TimedNumpy(), timed_run
    try:
        yield
    finally:
        encoder.np, kernels.run = np, run


def median_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def median_call_ms(call, rounds: int) -> float:
    """The median time of `rounds` calls of call(), in ms."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return median_ms(samples)


def profile(run_minibert, ids, mask, rounds: int) -> tuple[dict[str, float], float]:
    """name -> median ms per call, and the uninstrumented median ms."""
    samples = collections.defaultdict(list)
    plain = []
    for _ in range(rounds):
        start = time.perf_counter()
        run_minibert(ids, mask)
        plain.append(time.perf_counter() - start)
        spent = collections.defaultdict(float)
        with instrumented(spent):
            start = time.perf_counter()
            run_minibert(ids, mask)
            total = time.perf_counter() - start
        spent["the rest"] = total - sum(spent.values())
        spent["whole call, instrumented"] = total
        for name, seconds in spent.items():
            samples[name].append(seconds)
    return {name: median_ms(s) for name, s in samples.items()}, median_ms(plain)


def one_row_gemms_ms(fast, rounds: int) -> float:
    """The layer GEMMs of the forward, in order, on one token."""
    weights = [dense["weight"].T for layer in fast.weights["encoder"]["layer"]  # [in, out] each
               for dense in (*layer["attention"]["self"].values(), layer["attention"]["output"]["dense"],
                             layer["intermediate"]["dense"], layer["output"]["dense"])]
    x = np.ones((1, max(w.shape[0] for w in weights)), dtype=np.float32)
    return median_call_ms(lambda: [np.matmul(x[:, :w.shape[0]], w) for w in weights], rounds)


def onnx_operator_ms(path: str, ids: np.ndarray, mask: np.ndarray, calls: int) -> dict[str, tuple[float, int]]:
    """ONNX Runtime's own profile of `calls` calls: operator type -> (ms per call, nodes of that type)."""
    session = onnx_session(path, threads=2, profile_prefix=os.path.join(os.path.dirname(path), "profile"))
    for _ in range(calls):
        session.run(None, {"input_ids": ids, "attention_mask": mask})
    profile_file = session.end_profiling()
    with open(profile_file) as f:
        events = [e for e in json.load(f) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    os.remove(profile_file)
    microseconds, nodes = collections.Counter(), collections.defaultdict(set)
    for event in events:
        microseconds[event["args"]["op_name"]] += event["dur"]
        nodes[event["args"]["op_name"]].add(event["name"])
    return {op: (us / calls / 1e3, len(nodes[op])) for op, us in microseconds.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(f"{b}x{s}" for b, s in SHAPES[:2]))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--onnx-ops", action="store_true", help="also ONNX Runtime's per-operator profile")
    args = parser.parse_args()
    config, weights = random_mini_weights()
    runs = engines(config, weights, threads=2)
    fast = BertModel(config, weights).fast
    print(f"BLAS: {blas_description()}; medians of {args.rounds} calls, ms")
    rng = np.random.default_rng(1)
    for batch, seq in parse_shapes(args.shapes):
        ids = rng.integers(1000, config.vocab_size, size=(batch, seq)).astype(np.int64)
        mask = np.ones_like(ids)
        calls = max(5, args.rounds * 8 // (batch * seq))
        runs["minibert"](ids, mask)
        parts, plain = profile(runs["minibert"], ids, mask, calls)
        print(f"{batch} x {seq}: minibert {plain:.3f} ms uninstrumented")
        for name, ms in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {name:<40} {ms:8.3f}")
        print(f"  {'layer GEMMs on 1 row (weights read once)':<40} {one_row_gemms_ms(fast, args.rounds):8.3f}")
        if "onnxruntime" in runs:
            runs["onnxruntime"](ids, mask)
            onnx_ms = median_call_ms(lambda: runs["onnxruntime"](ids, mask), calls)
            print(f"  {'ONNX Runtime, whole call':<40} {onnx_ms:8.3f}")
        if args.onnx_ops:
            path = export_onnx(transformers_model(config, weights), os.path.join(tempfile.mkdtemp(), "bert.onnx"))
            for op, (ms, count) in onnx_operator_ms(path, ids, mask, calls).items():
                print(f"  {'ONNX Runtime ' + op + f' ({count} nodes)':<40} {ms:8.3f}")


if __name__ == "__main__":
    main()
