"""Training throughput: minibert (value_and_grad + AdamW) against torch eager training, same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench_training.py

all-MiniLM-L6-v2 as the encoder with a fresh 2-class head, SST-2 sentences (../shared/data/sst2/train.tsv)
in batches of 32 padded to their longest, dropout off in both, float32, all cores. Steps alternate between
the engines; tokens/s counts real (unpadded) tokens; the best of the timed steps' averages is reported.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
import transformers  # noqa: E402

import minibert  # noqa: E402
from minibert.bench import blas_description  # noqa: E402
from minibert.train import AdamW, value_and_grad  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402


def main(steps: int = 12) -> None:
    lines = (ROOT.parent / "shared" / "data" / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:1 + 32 * steps]
    rows = [line.split("\t") for line in lines if line]
    directory = minilm_dir()
    tokenizer = minibert.BertTokenizer.from_pretrained(directory)
    batches = [(tokenizer([r[0] for r in rows[i:i + 32]], padding=True, return_tensors="np"),
                np.array([int(r[1]) for r in rows[i:i + 32]])) for i in range(0, len(rows), 32)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = minibert.BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    optimizer = AdamW(ours.state_dict(), lr=5e-5)
    theirs = transformers.BertForSequenceClassification.from_pretrained(directory, num_labels=2, attn_implementation="sdpa",
                                                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    theirs.train()
    torch_optimizer = torch.optim.AdamW(theirs.parameters(), lr=5e-5)

    def minibert_step(encoding, labels):
        optimizer.step(value_and_grad(ours, encoding, labels)[1])

    def torch_step(encoding, labels):
        torch_optimizer.zero_grad()
        theirs(**{k: torch.from_numpy(v) for k, v in encoding.items()}, labels=torch.from_numpy(labels)).loss.backward()
        torch_optimizer.step()

    seconds = {"minibert": 0.0, "torch eager": 0.0}
    tokens = 0
    for k, (encoding, labels) in enumerate(batches):
        for name, step in (("minibert", minibert_step), ("torch eager", torch_step)):
            start = time.perf_counter()
            step(encoding, labels)
            if k >= 2:  # the first steps warm up (allocation, compilation)
                seconds[name] += time.perf_counter() - start
        if k >= 2:
            tokens += int(encoding["attention_mask"].sum())
    rate = {name: tokens / s for name, s in seconds.items()}
    print(f"{tokens} real tokens in {len(batches) - 2} timed steps of 32 SST-2 sentences, all-MiniLM-L6-v2; "
          f"BLAS: {blas_description()}")
    print(f"minibert {rate['minibert']:.0f} tokens/s, torch eager {rate['torch eager']:.0f} tokens/s: "
          f"{rate['minibert'] / rate['torch eager']:.2f}x")


if __name__ == "__main__":
    main()
