"""BERT-Mini's four GEMMs alone: NumPy's BLAS (what minibert calls) against ONNX Runtime's MatMul (MLAS, with
its weights pre-packed when the session loads), same process, interleaved, min of N.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gemm.py [--rows]

Where minibert's whole forward is GEMM-bound (small inputs), the ratio here bounds what it can reach
against ONNX Runtime; needs onnx and onnxruntime.

--rows instead times NumPy alone on each row count from 1 to 40 (and a few larger) against the count the
fast path rounds it up to (minibert.fast.encoder.gemm_rows): the measurement behind that rounding.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert.fast.encoder import gemm_rows  # noqa: E402
from minibert.tools.bench import blas_description, interleaved_minimum  # noqa: E402

SHAPES = {"QKV": (256, 768), "attention output": (256, 256), "FFN in": (256, 1024), "FFN out": (1024, 256)}


def main(rounds: int = 300, threads: int = 2) -> None:
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    print(f"BLAS: {blas_description()}; ONNX Runtime {onnxruntime.__version__}, {threads} threads")
    rng = np.random.default_rng(0)
    for tokens in (8, 128, 4096):
        total = {"numpy": 0.0, "onnxruntime": 0.0}
        for name, (k, n) in SHAPES.items():
            w = rng.random((k, n), dtype=np.float32)
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [tokens, k])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [tokens, n])], [numpy_helper.from_array(w, "w")])
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(
                helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), options,
                providers=["CPUExecutionProvider"])
            x, out = rng.random((tokens, k), dtype=np.float32), np.empty((tokens, n), dtype=np.float32)
            runs = {"numpy": lambda: np.matmul(x, w, out=out), "onnxruntime": lambda: session.run(None, {"x": x})}
            best = interleaved_minimum(runs, max(5, rounds * 8 // tokens))
            for engine in total:
                total[engine] += best[engine]
            print(f"  [{tokens}, {k}] x [{k}, {n}] ({name}): numpy {best['numpy'] * 1e6:8.0f} us, "
                  f"onnxruntime {best['onnxruntime'] * 1e6:8.0f} us, "
                  f"numpy takes {best['numpy'] / best['onnxruntime']:.2f}x")
        print(f"{tokens} tokens, one layer's four GEMMs: numpy takes {total['numpy'] / total['onnxruntime']:.2f}x "
              f"ONNX Runtime's time")


def rows(rounds: int = 150) -> None:
    """A layer's four GEMMs on T rows against gemm_rows(T) rows, NumPy only."""
    print(f"BLAS: {blas_description()}")
    rng = np.random.default_rng(0)
    weights = [rng.random(shape, dtype=np.float32) for shape in SHAPES.values()]
    x = rng.random((136, 1024), dtype=np.float32)

    def layer(tokens):
        return lambda: [np.matmul(x[:tokens, :w.shape[0]], w) for w in weights]

    print(f"{'T':>4} {'on T rows':>12} {'rounded':>8} {'on those':>12} {'T rows take':>12}")
    for tokens in [*range(1, 41), 57, 64, 100, 127, 128]:
        padded = gemm_rows(tokens)
        best = interleaved_minimum({"T": layer(tokens), "padded": layer(padded)},
                                   rounds if tokens < 64 else rounds // 3)
        print(f"{tokens:>4} {best['T'] * 1e6:>9.0f} us {padded:>8} {best['padded'] * 1e6:>9.0f} us "
              f"{best['T'] / best['padded']:>11.2f}x")


if __name__ == "__main__":
    rows() if "--rows" in sys.argv[1:] else main()
