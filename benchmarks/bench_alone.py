"""minibert, ONNX Runtime and OpenVINO each alone in a process of its own, as each would serve: a cross-check
of `minibert bench`, whose engines share one process (and so each other's spinning thread pools).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_alone.py \
        [--shapes 1x8,1x128] [--alternations 3]

The same BERT-Mini-shaped random weights as `minibert bench` (ONNX Runtime and OpenVINO read them exported
once, by torch, into a temporary file; their processes import onnxruntime or openvino and NumPy only,
minibert's import minibert only; OpenVINO is left out when not installed). For each shape the engines'
processes alternate, `--alternations` times each, so the machine's
drift reaches both; each process warms up, then times calls back to back for about `--seconds`. Printed:
each engine's fastest call over all its processes and the median of its processes' medians, and the
speed-ups (engine ms / minibert ms) of both; then, as `minibert bench` does, each engine's max abs diff from
minibert's last hidden state (the bench stops when a float32 engine computes another model).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minibert.tools.bench import (  # noqa: E402
    SHAPES,
    blas_description,
    cpu_description,
    export_onnx,
    output_differences,
    parse_shapes,
    random_mini_weights,
    transformers_model,
)

CHILD = """
import json, sys, time
import numpy as np
engine, batch, seq, seconds, onnx, output = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), \
    sys.argv[5], sys.argv[6]
ids = np.random.default_rng(1).integers(1000, 30522, size=(batch, seq)).astype(np.int64)
mask = np.ones_like(ids)
if engine == "minibert":
    from minibert import BertModel
    from minibert.tools.bench import random_mini_weights
    model = BertModel(*random_mini_weights())
    run = lambda: model(ids, attention_mask=mask)
elif engine == "openvino":
    import openvino
    compiled = openvino.Core().compile_model(onnx, "CPU", {"INFERENCE_NUM_THREADS": 2,
                                                           "INFERENCE_PRECISION_HINT": "f32"})
    run = lambda: compiled({"input_ids": ids, "attention_mask": mask})
else:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    run = lambda: session.run(None, {"input_ids": ids, "attention_mask": mask})
hidden = run()
np.save(output, hidden.last_hidden_state if engine == "minibert" else hidden[0])  # compared by the parent
for _ in range(5):
    run()
times, end = [], time.perf_counter() + seconds
while time.perf_counter() < end or len(times) < 5:
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
print(json.dumps({"min": min(times) * 1e3, "median": float(np.median(times)) * 1e3, "calls": len(times)}))
"""
ENGINES = ("minibert", "onnxruntime") + (("openvino",) if importlib.util.find_spec("openvino") else ())


def child(engine: str, shape: tuple[int, int], seconds: float, onnx: str, output: str) -> dict:
    """One process of `engine` timing `shape`: {min, median (ms), calls}; its last hidden state saved at output."""
    result = subprocess.run([sys.executable, "-c", CHILD, engine, *map(str, shape), str(seconds), onnx, output],
                            capture_output=True, text=True, cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise RuntimeError(f"{engine} {shape}: {result.stderr.strip()[-400:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(f"{b}x{s}" for b, s in SHAPES))
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed calls per process, in seconds")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="minibert-alone-")
    onnx = export_onnx(transformers_model(*random_mini_weights()), os.path.join(directory, "bert.onnx"))
    pins = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"CPU: {cpu_description()}; BLAS (this process): {blas_description()}; "
          f"BLAS pins in the environment: {pins or 'none'}")
    others = ENGINES[1:]
    print(f"{'batch x seq':>12} " + " ".join(f"{e + ' min / median':>28}" for e in ENGINES)
          + "".join(f" {'vs ' + e + ' (min, median)':>30}" for e in others) + "   (speed-up = engine ms / minibert ms)")
    for shape in parse_shapes(args.shapes):
        runs = {engine: [] for engine in ENGINES}
        for _ in range(args.alternations):
            for engine in ENGINES:
                runs[engine].append(child(engine, shape, args.seconds, onnx, os.path.join(directory, f"{engine}.npy")))
        best = {e: min(r["min"] for r in runs[e]) for e in ENGINES}
        median = {e: float(np.median([r["median"] for r in runs[e]])) for e in ENGINES}
        print(f"{shape[0]:>6} x {shape[1]:<4} " + " ".join(f"{best[e]:>15.2f} / {median[e]:>7.2f} ms" for e in ENGINES)
              + "".join(f" {best[e] / best['minibert']:>18.2f}x, {median[e] / median['minibert']:.2f}x"
                        for e in others),
              flush=True)
        differences = output_differences({e: np.load(os.path.join(directory, f"{e}.npy")) for e in ENGINES},
                                         f"{shape[0]}x{shape[1]}")
        print(f"{'':>13}max abs diff from minibert's last hidden state: "
              + ", ".join(f"{e} {d:.1e}" for e, d in differences.items()), flush=True)


if __name__ == "__main__":
    main()
