"""Cold start: a fresh process's import + load + first call, minibert against torch + transformers and ONNX
Runtime (whichever are installed), on the real all-MiniLM-L6-v2 directory.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cold_start.py [--runs 5]

Each engine runs in its own fresh interpreter, `--runs` times, interleaved; the minimum wall time of the
child's work (from its first line to the first call's return, interpreter start-up excluded) is reported,
with ratios. Children run outside the checkout, so an installed minibert is not shadowed by the source tree.
The first minibert run also fills Numba's on-disk cache if it is empty: that one is excluded.
ONNX Runtime loads a file exported once beforehand (the export is not timed).

Numba imports SciPy when it is installed (to offer BLAS inside kernels; docs/fast.md has its cost), and the test extras
bring SciPy in. `--minibert-python venv/bin/python` runs minibert's children in an interpreter with only
minibert's runtime dependencies, as a user would have them (`python -m venv venv && venv/bin/pip install .`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minibert.tools.bench import cpu_description  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402

TEXT = "A first sentence, to be embedded."
CHILDREN = {
    "minibert": """
import minibert
model = minibert.BertModel.from_pretrained(DIRECTORY)
tokenizer = minibert.BertTokenizer.from_pretrained(DIRECTORY)
model(**tokenizer([TEXT], return_tensors="np"))
""",
    "torch + transformers": """
import torch, transformers
model = transformers.BertModel.from_pretrained(DIRECTORY).eval()
tokenizer = transformers.BertTokenizerFast.from_pretrained(DIRECTORY)
with torch.inference_mode():
    model(**tokenizer([TEXT], return_tensors="pt"))
""",
    "onnxruntime": """
import onnxruntime, tokenizers, numpy as np
session = onnxruntime.InferenceSession(ONNX, providers=["CPUExecutionProvider"])
tokenizer = tokenizers.Tokenizer.from_file(DIRECTORY + "/tokenizer.json")
ids = np.array([tokenizer.encode(TEXT).ids], dtype=np.int64)
session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
""",
}


def child_seconds(source: str, directory: str, onnx: str | None, python: str = sys.executable) -> float:
    program = (f"import time\nstart = time.perf_counter()\nDIRECTORY, ONNX, TEXT = {directory!r}, {onnx!r}, {TEXT!r}\n"
               f"{source}\nprint(time.perf_counter() - start)\n")
    out = subprocess.run([python, "-c", program], capture_output=True, text=True, cwd=tempfile.gettempdir(), check=True)
    return float(out.stdout.strip().splitlines()[-1])


def available(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minibert-python", default=sys.executable,
                        help="interpreter for minibert's runs (default: this one)")
    args = parser.parse_args()
    directory = str(minilm_dir())
    engines = ["minibert"]
    onnx = None
    if available("transformers"):
        engines.append("torch + transformers")
        if available("onnxruntime") and available("tokenizers"):
            import transformers

            from minibert.tools.bench import export_onnx

            hf = transformers.BertModel.from_pretrained(directory).eval()
            onnx = export_onnx(hf, os.path.join(tempfile.mkdtemp(prefix="minibert-cold-"), "model.onnx"))
            engines.append("onnxruntime")
    python = {name: sys.executable for name in engines} | {"minibert": args.minibert_python}
    child_seconds(CHILDREN["minibert"], directory, onnx, python["minibert"])  # fills Numba's cache if it was empty
    times = {name: [] for name in engines}
    for _ in range(args.runs):
        for name in engines:
            times[name].append(child_seconds(CHILDREN[name], directory, onnx, python[name]))
    best = {name: min(t) for name, t in times.items()}
    print(f"CPU: {cpu_description()}")
    print(f"cold start (import + load + first call, fresh process, min of {args.runs}), all-MiniLM-L6-v2; "
          f"minibert run by {args.minibert_python}:")
    for name in engines:
        print(f"  {name:<22} {best[name]:6.3f} s   {best[name] / best['minibert']:5.2f}x minibert's time")
    print(json.dumps(best))


if __name__ == "__main__":
    main()
