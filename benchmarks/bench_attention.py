"""Short-sequence attention on the layer-by-layer path (float64, the verification dtype): the in-kernel path
(kernels.attention_short) against the BLAS path (batched GEMMs + the softmax kernel), per attention call of
a BERT-Mini layer, same process, interleaved, min of N. The crossover is what sets
minibert.fast.kernels.SHORT.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_attention.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel  # noqa: E402
from minibert.fast import encoder  # noqa: E402
from minibert.tools.bench import blas_description, interleaved_minimum, random_mini_weights  # noqa: E402


def main(rounds: int = 300) -> None:
    print(f"BLAS: {blas_description()}; SHORT = {encoder.SHORT}")
    fast = BertModel(*random_mini_weights(), dtype=np.float64).fast
    hidden = fast.config.hidden_size
    rng = np.random.default_rng(0)
    for count, length in [(1, 4), (1, 8), (1, 12), (1, 16), (1, 20), (1, 24), (1, 32), (16, 8), (16, 16), (64, 12)]:
        tokens = count * length
        qkv = rng.standard_normal((tokens, 3 * hidden))
        starts, lengths = np.arange(count) * length, np.full(count, length)
        in_kernel = encoder.attention_plan(starts, lengths, fast.config.num_attention_heads, short=length)
        in_blas = encoder.attention_plan(starts, lengths, fast.config.num_attention_heads, short=length - 1)
        context = np.zeros((encoder.gemm_rows(tokens), hidden))
        best = interleaved_minimum({"kernel": lambda: fast._attention(qkv, in_kernel, context),
                                    "blas": lambda: fast._attention(qkv, in_blas, context)}, rounds)
        print(f"{count:>3} x {length:<3} kernel {best['kernel'] * 1e6:7.1f} us, BLAS {best['blas'] * 1e6:7.1f} us: "
              f"the kernel takes {best['kernel'] / best['blas']:.2f}x")


if __name__ == "__main__":
    main()
