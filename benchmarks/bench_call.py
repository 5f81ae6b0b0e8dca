"""A small call's fixed cost, layer by layer: what the Python around the compiled forward, Numba's dispatch
of its arguments and the thread pool's hand-over each add to a float32 call.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_call.py [--shape 1x8] [--rounds 40]

BERT-Mini, random weights, one process. Timed in turn in each round, each both back to back (the fastest
of a few calls after untimed ones) and as `minibert bench` times a call (after a pause of SETTLE seconds and
one untimed call):

    model        model(ids, attention_mask=mask), the whole call
    forward      layers.encode called directly, on the arguments the model call passed it (made once)
    dispatch     a compiled function that does nothing, called with those same arguments: Numba's typing
                 and unpacking of each one
    hand-over    a parallel region that does nothing, on one small array: Numba's pool waking its threads
                 and waiting for them

Printed: the median of each over the rounds, and model − forward (the Python around the compiled call).
"""

import inspect
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel  # noqa: E402
from minibert.fast import layers  # noqa: E402
from minibert.tools.bench import SETTLE, cpu_description, one_shape_options, random_mini_weights  # noqa: E402

BACK_TO_BACK = 10, 5  # per round: untimed calls, then timed ones (the fastest counts)


@numba.njit
def nothing(*args):
    return 0


@numba.njit(parallel=True)
def empty_region(out):
    for thread in numba.prange(out.shape[0]):
        out[thread] += 1


def encode_arguments(model: BertModel, ids: np.ndarray, mask: np.ndarray) -> list:
    """The arguments a model call passes layers.encode, in its order (captured during one call)."""
    captured = {}
    encode = layers.encode

    def spy(*args, **kwargs):
        captured.update(zip(inspect.signature(encode.py_func).parameters, args), **kwargs)
        return encode(*args, **kwargs)

    layers.encode = spy
    try:
        model(ids, attention_mask=mask)
    finally:
        layers.encode = encode
    return [captured[name] for name in inspect.signature(encode.py_func).parameters]


def main() -> None:
    batch, seq, rounds = one_shape_options(__doc__.split("\n")[0], 40)
    config, weights = random_mini_weights()
    model = BertModel(config, weights)
    ids = np.random.default_rng(0).integers(1000, config.vocab_size, (batch, seq))
    mask = np.ones_like(ids)
    arguments = encode_arguments(model, ids, mask)
    counters = arguments[-1]
    one = np.zeros(numba.get_num_threads())

    def forward():
        counters[:] = 0  # the model call passes fresh zeros
        layers.encode(*arguments)

    calls = {"model": lambda: model(ids, attention_mask=mask), "forward": forward,
             "dispatch": lambda: nothing(*arguments), "hand-over": lambda: empty_region(one)}
    times = {(name, regime): [] for name in calls for regime in ("back to back", "after a pause")}
    for call in calls.values():
        call()  # compiled
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(BACK_TO_BACK[0]):
                call()
            fastest = np.inf
            for _ in range(BACK_TO_BACK[1]):
                start = time.perf_counter()
                call()
                fastest = min(fastest, time.perf_counter() - start)
            times[name, "back to back"].append(fastest)
            time.sleep(SETTLE)
            call()
            start = time.perf_counter()
            call()
            times[name, "after a pause"].append(time.perf_counter() - start)
    print(f"CPU: {cpu_description()}; threads {numba.get_num_threads()}; {batch} x {seq}; median of {rounds} "
          "rounds, µs")
    for regime in ("back to back", "after a pause"):
        median = {name: 1e6 * np.median(times[name, regime]) for name in calls}
        print(f"{regime:>14}: " + "  ".join(f"{name} {t:.0f}" for name, t in median.items())
              + f"  | Python around the compiled call (model - forward) {median['model'] - median['forward']:.0f}")


if __name__ == "__main__":
    main()
