"""Training throughput: minibert (value_and_grad + AdamW) against torch eager training, same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_training.py SST2_DIR

all-MiniLM-L6-v2 as the encoder with a fresh 2-class head, SST-2 sentences (SST2_DIR/train.tsv, the SST-2 TSV file)
in batches of 32, two ways: in file order padded to the longest of each batch, and length-bucketed as
`minibert finetune` draws them (little padding). Dropout off in both engines, float32, all cores. Steps
alternate between the engines; tokens/s counts real (unpadded) tokens over the timed steps.
"""

import argparse
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
from minibert.tools.bench import blas_description  # noqa: E402
from minibert.train import AdamW, value_and_grad  # noqa: E402
from minibert.train.finetune import Settings, batches, read_examples  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402

WARM_UP = 2  # steps per batch kind not timed (allocation, compilation)


def main(sst2: Path, steps: int = 12) -> None:
    directory = minilm_dir()
    tokenizer = minibert.BertTokenizer.from_pretrained(directory)
    examples = read_examples(sst2 / "train.tsv")
    in_order = [np.arange(i, i + 32) for i in range(0, 32 * steps, 32)]
    bucketed = [index for index, _ in zip(batches(examples, Settings(batch_size=32), np.random.default_rng(0)),
                                          range(steps))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = minibert.BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    optimizer = AdamW(ours.state_dict(), lr=5e-5)
    theirs = transformers.BertForSequenceClassification.from_pretrained(
        directory, num_labels=2, attn_implementation="sdpa", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    theirs.train()
    torch_optimizer = torch.optim.AdamW(theirs.parameters(), lr=5e-5)

    def minibert_step(encoding, labels):
        optimizer.step(value_and_grad(ours, encoding, labels)[1])

    def torch_step(encoding, labels):
        torch_optimizer.zero_grad()
        theirs(**{k: torch.from_numpy(v) for k, v in encoding.items()}, labels=torch.from_numpy(labels)).loss.backward()
        torch_optimizer.step()

    print(f"all-MiniLM-L6-v2, batches of 32 SST-2 sentences, {steps - WARM_UP} timed steps per kind; "
          f"BLAS: {blas_description()}")
    for kind, indices in (("in file order, padded to the longest", in_order),
                          ("length-bucketed (as finetune)", bucketed)):
        seconds = {"minibert": 0.0, "torch eager": 0.0}
        tokens = padded = 0
        for k, index in enumerate(indices):
            encoding = dict(tokenizer([examples.texts[i] for i in index], padding=True, return_tensors="np"))
            labels = examples.labels[index]
            for name, step in (("minibert", minibert_step), ("torch eager", torch_step)):
                start = time.perf_counter()
                step(encoding, labels)
                if k >= WARM_UP:
                    seconds[name] += time.perf_counter() - start
            if k >= WARM_UP:
                tokens += int(encoding["attention_mask"].sum())
                padded += encoding["attention_mask"].size
        rate = {name: tokens / s for name, s in seconds.items()}
        print(f"{kind}: {tokens} real tokens ({padded} with padding); minibert {rate['minibert']:.0f} tokens/s, "
              f"torch eager {rate['torch eager']:.0f} tokens/s: {rate['minibert'] / rate['torch eager']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("sst2", type=Path, help="the directory holding SST-2's train.tsv")
    main(parser.parse_args().sst2)
