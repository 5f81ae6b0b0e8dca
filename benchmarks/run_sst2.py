"""SST-2 runs: fine-tune all-MiniLM-L6-v2 with minibert and with transformers/torch (same recipe), then
distil the minibert teacher into a BERT-Mini-shaped student, with and without the teacher.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_sst2.py SST2_DIR [--train-examples N]
        [--epochs E] [--runs minibert,torch,students] [--torch-epochs K] [--student-epochs E] [--student-lr LR]
        [--teacher DIR] --out DIR

Data: SST2_DIR holds the SST-2 TSV files, train.tsv and dev.tsv (`sentence<TAB>label`, read there, never
copied into the repository); the first N training examples (all by default), the whole dev file for
evaluation. Recipe: lr 5e-5 (students 1e-3 unless
--student-lr: they start from random weights), batch 32, warm-up 10%, weight decay 0.01, clipping at 1, dropout 0.1 (the
config's), max length 128. Both engines train on the same batches, in the same order (minibert's
length-bucketed shuffle); --torch-epochs K stops the torch run after K of the E epochs' schedule, so its
epochs compare one to one with minibert's. Prints a JSON line per run; docs/training.md holds the results.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minibert.train.finetune import Settings, batches, distill, finetune, read_examples  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402


def subset(sst2: Path, n: int | None, out: Path) -> Path:
    lines = (sst2 / "train.tsv").read_text(encoding="utf-8").split("\n")
    lines = [line for line in lines if line]
    path = out / "train-subset.tsv"
    path.write_text("\n".join(lines[:1 + n] if n else lines) + "\n", encoding="utf-8")  # the header, then N rows
    return path


def torch_finetune(train: Path, dev_file: Path, settings: Settings, epochs: int) -> list[dict]:
    """transformers/torch with the same recipe and the same batches, for the first `epochs` epochs."""
    import torch
    import transformers

    torch.manual_seed(settings.seed)
    directory = minilm_dir()
    tokenizer = transformers.BertTokenizer.from_pretrained(directory)
    model = transformers.BertForSequenceClassification.from_pretrained(directory, num_labels=2).train()
    examples, dev = read_examples(train), read_examples(dev_file)
    decay = [p for n, p in model.named_parameters() if not n.endswith(("bias", "LayerNorm.weight"))]
    rest = [p for n, p in model.named_parameters() if n.endswith(("bias", "LayerNorm.weight"))]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=settings.lr)
    steps = -(-len(examples.labels) // settings.batch_size) * settings.epochs
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * steps), steps)
    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        # the batches as finetune draws them
        for index in batches(examples, settings, np.random.default_rng(settings.seed + epoch)):
            enc = tokenizer([examples.texts[i] for i in index], padding=True, truncation=True,
                            max_length=settings.max_length, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor(examples.labels[index])).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            schedule.step()
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            predicted = np.concatenate([
                model(**tokenizer(dev.texts[i:i + 128], padding=True, truncation=True, max_length=settings.max_length,
                                  return_tensors="pt")).logits.argmax(-1).numpy()
                for i in range(0, len(dev.texts), 128)])
        model.train()
        accuracy = float((predicted == dev.labels).mean())
        history.append({"epoch": epoch + 1, "seconds": seconds, "dev": {"accuracy": accuracy}})
    return history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sst2", type=Path, help="the directory holding SST-2's train.tsv and dev.tsv")
    parser.add_argument("--train-examples", type=int)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", default="minibert,torch,students", help="which runs, comma-separated")
    parser.add_argument("--torch-epochs", type=int, help="stop the torch run after this many epochs (default: all)")
    parser.add_argument("--student-epochs", type=int, help="the students' epochs (default: --epochs)")
    parser.add_argument("--student-lr", type=float, default=1e-3, help="the students' learning rate (default 1e-3)")
    parser.add_argument("--teacher",
                        help="a fine-tuned teacher directory (default: OUT/teacher, from the minibert run)")
    args = parser.parse_args()
    runs = set(args.runs.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, dev = subset(args.sst2, args.train_examples, out), args.sst2 / "dev.tsv"
    warnings.simplefilter("ignore")
    teacher_settings = Settings(lr=5e-5, batch_size=32, epochs=args.epochs)
    student_settings = Settings(lr=args.student_lr, batch_size=32, epochs=args.student_epochs or args.epochs)
    teacher = Path(args.teacher) if args.teacher else out / "teacher"

    def report(name, history):
        print(json.dumps({"run": name, "train_examples": args.train_examples or "all", "history": history}), flush=True)

    if "minibert" in runs:
        report("minibert fine-tune all-MiniLM-L6-v2", finetune(minilm_dir(), train, out / "teacher", dev,
                                                                teacher_settings, progress=False))
    if "torch" in runs:
        report("transformers/torch fine-tune all-MiniLM-L6-v2",
               torch_finetune(train, dev, teacher_settings, args.torch_epochs or args.epochs))
    if "students" in runs:
        report("student bert-mini shape, hard labels only",
               distill(teacher, "bert-mini", train, out / "student-hard", dev,
                       Settings(**{**student_settings.__dict__, "alpha": 1.0}), progress=False))
        report("student bert-mini shape, distilled (T=2, alpha=0.5)",
               distill(teacher, "bert-mini", train, out / "student-distilled", dev, student_settings,
                       progress=False))


if __name__ == "__main__":
    main()
