"""What a pause before a call costs: the engines at a small shape back to back, and as `minibert bench` times
them (a pause of SETTLE seconds, untimed calls, then the timed one), beside a plain read of an array as
large as the encoder's weights in the same two ways.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_pause.py [--shape 1x8] [--rounds 30]

BERT-Mini, random weights; minibert, and ONNX Runtime and OpenVINO when installed (minibert.tools.bench's
engines). Printed per engine (and for the read): the fastest and the median call back to back, and after
a pause with 1 and with 3 untimed calls before the timed one, and the ratio of those fastest calls to the
back-to-back one.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert.tools.bench import SETTLE, cpu_description, engines, one_shape_options, random_mini_weights  # noqa: E402

BACK_TO_BACK = 10, 30  # per round: calls timed back to back, after that many untimed


def timings(call, rounds: int) -> dict[str, np.ndarray]:
    """'back to back' and 'after a pause, k untimed' (k = 1, 3) -> seconds of the timed calls."""
    out = {"back to back": [], "pause, 1 untimed": [], "pause, 3 untimed": []}
    for _ in range(rounds):
        for untimed in (1, 3):
            time.sleep(SETTLE)
            for _ in range(untimed):
                call()
            start = time.perf_counter()
            call()
            out[f"pause, {untimed} untimed"].append(time.perf_counter() - start)
        for _ in range(BACK_TO_BACK[1]):
            call()
        for _ in range(BACK_TO_BACK[0]):
            start = time.perf_counter()
            call()
            out["back to back"].append(time.perf_counter() - start)
    return {name: np.array(t) for name, t in out.items()}


def main() -> None:
    batch, seq, rounds = one_shape_options(__doc__.split("\n")[0], 30)
    config, weights = random_mini_weights()
    runs = {name: run for name, run in engines(config, weights, 2).items()
            if name in ("minibert", "onnxruntime", "openvino")}
    ids = np.random.default_rng(0).integers(1000, config.vocab_size, (batch, seq))
    mask = np.ones_like(ids)
    encoder = sum(a.nbytes for name, a in weights.items() if name.startswith("encoder.") and a.ndim == 2)
    array = np.random.default_rng(0).random(encoder // 4, dtype=np.float32)
    calls = {f"read {encoder / 2**20:.0f} MB": array.sum, **{name: (lambda run=run: run(ids, mask))
                                                            for name, run in runs.items()}}
    print(f"CPU: {cpu_description()}; BERT-Mini {batch} x {seq}; pause {SETTLE} s; ms: fastest / median")
    for name, call in calls.items():
        for _ in range(20):
            call()
        t = timings(call, rounds)
        base = t["back to back"].min()
        print(f"{name:>12}: " + "; ".join(f"{kind} {v.min() * 1e3:.3f} / {np.median(v) * 1e3:.3f} "
                                          f"({v.min() / base:.2f}x)" for kind, v in t.items()), flush=True)


if __name__ == "__main__":
    main()
