"""What padding-free batching gains on real sentence lengths.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_packing.py

512 real texts (Guardian headlines and Rotten Tomatoes snippets, from tests/fixtures/corpora.py), shuffled,
in batches of 64 padded to the longest (at most 128 tokens), through a BERT-Mini-shaped model: the fast
path packs real tokens; computing on padding is the same call with an all-ones mask. Best of 3.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minibert import BertModel, BertTokenizer  # noqa: E402
from minibert.tools.bench import random_mini_weights  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402
from tests.fixtures.corpora import corpora  # noqa: E402


def main() -> None:
    sources = corpora()
    texts = sources["guardian-headlines"][:256] + sources["rotten-tomatoes"][:256]
    np.random.default_rng(0).shuffle(texts)
    tokenizer = BertTokenizer.from_pretrained(minilm_dir())
    model = BertModel(*random_mini_weights())
    batches = [tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="np")
               for i in range(0, len(texts), 64)]
    lengths = np.concatenate([b["attention_mask"].sum(1) for b in batches])

    def seconds(packed: bool) -> float:
        start = time.perf_counter()
        for b in batches:
            model(b["input_ids"], attention_mask=b["attention_mask"] if packed else np.ones_like(b["input_ids"]))
        return time.perf_counter() - start

    seconds(True), seconds(False)  # warm-up
    packed, padded = min(seconds(True) for _ in range(3)), min(seconds(False) for _ in range(3))
    print(f"{len(texts)} texts, {lengths.min()}-{lengths.max()} tokens (median {int(np.median(lengths))}); "
          f"real tokens {lengths.sum()} of {sum(b['input_ids'].size for b in batches)} padded")
    print(f"packed {packed * 1e3:.0f} ms, computing on padding {padded * 1e3:.0f} ms: {padded / packed:.2f}x")


if __name__ == "__main__":
    main()
