"""How the float32 forward shares a batch between threads (layers.groups), and what sets layers.GROUP_ROWS.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_groups.py [--shapes 2x128,32x128] [--rounds 20]
        [--int8]

--int8: the same for an int8 model's forward (fast/int8_layers.py, on a CPU with a vector int8 kernel).

Per shape (BERT-Mini, random weights; "mixed" rows: 32 sequences of 5 to 128 tokens, padded to 128), the
forward with one group (the threads share each phase over the whole batch, with chains where
layers.chains takes them: each layer's work after its attention as a chain of rows per thread) against
groups of sequences (each thread takes whole groups through every layer): the groups layers.groups picks,
and groups cut for other sizes (GROUP_ROWS[1] = 64, 128, 512); and one group without chains (phase by
phase). Each as time / one group's time: by the fastest call, and the paired median over rounds
(interleaved_times: every variant once per round, same process). The outputs of every variant are
checked to be the one group's, bit for bit.
"""

import argparse
import sys
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel  # noqa: E402
from minibert.fast import layers  # noqa: E402
from minibert.tools.bench import cpu_description, interleaved_times, parse_shapes, random_mini_weights  # noqa: E402

SIZES = (64, 128, 256, 512)  # GROUP_ROWS[1] values tried; layers.GROUP_ROWS[1] is the default


def one_group(lengths, *_):
    return np.array([0, len(lengths)])


def variants(model, inputs) -> dict:
    """name -> a call of the forward on `inputs` with that way of grouping (layers.groups swapped in and out)."""
    chosen = layers.groups

    def run(groups):
        def call():
            layers.groups = groups
            try:
                return model(**inputs).last_hidden_state
            finally:
                layers.groups = chosen
        return call

    def sized(rows):
        def groups(*args):
            default, layers.GROUP_ROWS = layers.GROUP_ROWS, (layers.GROUP_ROWS[0], rows)
            try:
                return chosen(*args)
            finally:
                layers.GROUP_ROWS = default
        return groups

    def phases():  # one group, its layers phase by phase rather than as chains (layers.chains)
        default, layers.chains = layers.chains, lambda *_: False
        layers.groups = one_group
        try:
            return model(**inputs).last_hidden_state
        finally:
            layers.chains, layers.groups = default, chosen

    calls = {"one group": run(one_group), "groups (default)": run(chosen), "one group, no chains": phases}
    calls |= {f"groups of {rows}": run(sized(rows)) for rows in SIZES if rows != layers.GROUP_ROWS[1]}
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", type=parse_shapes, default=parse_shapes("1x128,2x128,16x16,4x64,32x128,8x512"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--int8", action="store_true", help="an int8 model's forward")
    args = parser.parse_args()
    config, weights = random_mini_weights()
    model = BertModel(config, weights).quantize() if args.int8 else BertModel(config, weights)
    print(f"CPU: {cpu_description()}; BERT-Mini{' int8' if args.int8 else ''}; GROUP_ROWS = {layers.GROUP_ROWS}; "
          f"time / one group's: fastest call, paired median")
    rng = np.random.default_rng(0)
    cases = [(f"{b} x {s}", b, s, np.full(b, s)) for b, s in args.shapes]
    cases.append(("mixed", 32, 128, np.sort(rng.integers(5, 129, 32))[::-1]))
    for label, batch, seq, lengths in cases:
        inputs = {"input_ids": rng.integers(0, config.vocab_size, (batch, seq)),
                  "attention_mask": (np.arange(seq)[None] < lengths[:, None]).astype(np.int64)}
        calls = variants(model, inputs)
        expected = calls["one group"]()
        for name, call in calls.items():
            np.testing.assert_array_equal(call(), expected, err_msg=name)
        rounds = args.rounds if batch * seq < 4096 else max(3, args.rounds // 2)
        times = interleaved_times(calls, rounds)
        base = times.pop("one group")
        bounds = layers.groups(lengths, numba.get_num_threads(), config.hidden_size, config.intermediate_size)
        print(f"{label:>9} ({len(bounds) - 1} groups): one group {base.min() * 1e3:7.2f} ms; " + "; ".join(
            f"{name} {t.min() / base.min():.2f}x ({np.median(t / base):.2f}x)" for name, t in times.items()),
            flush=True)


if __name__ == "__main__":
    main()
