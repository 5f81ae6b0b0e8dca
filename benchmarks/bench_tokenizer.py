"""Tokenizer throughput: minibert against transformers' BertTokenizer (Rust backend), one thread, same run.

    RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python benchmarks/bench_tokenizer.py

Needs the reference extra and the corpora (tests/fixtures/install_corpora.sh). Reports tokens/s and
minibert's ratio to the reference, with a cold cache (a fresh tokenizer per run: the fair figure) and a
warm one (the same tokenizer again: repeated words are looked up, not tokenized).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import transformers  # noqa: E402

from minibert import BertTokenizer  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402
from tests.fixtures.corpora import corpora  # noqa: E402

ENGLISH = ["hamlet", "guardian-headlines", "rotten-tomatoes", "reuters", "python-docstrings"]


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    transformers.logging.set_verbosity_error()
    directory = minilm_dir()
    sources = corpora()
    lines = [line for name in ENGLISH if name in sources for line in sources[name]]
    reference = transformers.BertTokenizer.from_pretrained(directory)
    tokens = sum(map(len, reference(lines)["input_ids"]))
    print(f"{len(lines)} lines of English ({', '.join(n for n in ENGLISH if n in sources)}), {tokens} tokens")
    for offsets in (False, True):
        ref = min(seconds(lambda: reference(lines, return_offsets_mapping=offsets)) for _ in range(5))
        fresh = [BertTokenizer.from_pretrained(directory) for _ in range(5)]
        cold = min(seconds(lambda: tokenizer(lines, return_offsets_mapping=offsets)) for tokenizer in fresh)
        warm = min(seconds(lambda: fresh[0](lines, return_offsets_mapping=offsets)) for _ in range(5))
        print(f"offsets={offsets!s:5}  transformers {tokens / ref / 1e3:6.0f}k tok/s   minibert cold "
              f"{tokens / cold / 1e3:6.0f}k tok/s ({ref / cold:.2f}x)   "
              f"warm {tokens / warm / 1e3:6.0f}k tok/s ({ref / warm:.2f}x)")


if __name__ == "__main__":
    main()
