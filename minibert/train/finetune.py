"""Fine-tuning a sequence classifier (or regressor) from TSV/CSV files: the BERT recipe, in NumPy.

One epoch: shuffle (seeded), group examples of similar length into batches (little padding), and for each
batch compute the loss and gradients (value_and_grad, with dropout), clip them, and take an AdamW step with linear
warm-up and decay. After each epoch: evaluate on the dev file (accuracy and F1, or Pearson for regression)
and write a checkpoint — model.safetensors + config.json + vocab.txt that transformers'
BertForSequenceClassification loads, and the optimiser state, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm  # installed with huggingface-hub

from ..config import MAX_LABELS
from ..errors import check_positive_int
from ..loading.files import present, read_json, write_json
from ..models import BertForSequenceClassification
from ..tokenizer import BertTokenizer
from .grad import accumulate, distillation_loss, dropout_masks, value_and_grad
from .optim import AdamW, clip_grad_norm, linear_schedule

# The model card's fine-tuning grid for the miniatures (4 epochs each).
GRID_LEARNING_RATES = (3e-4, 1e-4, 5e-5, 3e-5)
GRID_BATCH_SIZES = (8, 16, 32, 64, 128)


@dataclass
class Settings:
    """One fine-tuning run's hyper-parameters (the BERT recipe; see grid_search for the model card's grid)."""

    lr: float = 5e-5
    batch_size: int = 32
    epochs: int = 4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 0
    max_steps: int | None = None  # stop early (smoke runs)
    accumulation_steps: int = 1  # run each batch as this many micro-batches (same result, less memory)
    dropout: bool = True  # the config's dropout while training (masks seeded by seed and step); never in evaluation
    save_steps: int | None = None  # also checkpoint every this many steps, so an interruption loses less than an epoch
    temperature: float = 2.0  # distillation only: softening of the teacher's and the student's outputs
    alpha: float = 0.5  # distillation only: weight of the hard labels against the teacher's soft targets

    def __post_init__(self) -> None:
        """Refuse settings that would train nothing, or train the wrong way, without a word (epochs=0 saved
        the untrained model; a negative max_grad_norm turned every gradient around)."""
        for name in ("batch_size", "epochs", "max_length", "accumulation_steps"):
            check_positive_int(name, getattr(self, name))
        for name in ("max_steps", "save_steps"):  # None: no limit, no extra checkpoints
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_positive_int("seed", self.seed, minimum=0)
        bounds = {"lr": (lambda x: x > 0, "> 0"), "warmup_ratio": (lambda x: 0 <= x <= 1, "in [0, 1]"),
                  "weight_decay": (lambda x: x >= 0, "≥ 0"), "max_grad_norm": (lambda x: x > 0, "> 0"),
                  "temperature": (lambda x: x > 0, "> 0"), "alpha": (lambda x: 0 <= x <= 1, "in [0, 1]")}
        for name, (fits, wanted) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not fits(value):
                raise ValueError(f"{name} must be a finite number {wanted}, got {value!r}")


@dataclass
class Examples:
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray  # int class ids, or floats for regression


def read_examples(path: str | os.PathLike, regression: bool = False) -> Examples:
    """A TSV (.tsv) or CSV file with a header: `sentence<TAB>label`, or `sentence1<TAB>sentence2<TAB>label`
    (the last column is the label; the first one or two are text)."""
    path = Path(path)
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter=delimiter,
                                   quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL))
    except OSError as e:
        raise FileNotFoundError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x}); data files "
                         "are read as UTF-8") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a {'TSV' if delimiter == chr(9) else 'CSV'} file "
                         f"minibert can read ({e})") from None
    if len(rows) < 2 or len(rows[0]) not in (2, 3):
        raise ValueError(f"{path}: expected a header and rows of 'text, label' or 'text, text, label'")
    width = len(rows[0])
    texts, pairs, labels = [], [], []
    for line, row in enumerate(rows[1:], 2):
        if len(row) != width:
            raise ValueError(f"{path}:{line}: {len(row)} columns, the header has {width}")
        try:
            label = float(row[-1]) if regression else int(row[-1])
            if not (math.isfinite(label) if regression else 0 <= label < MAX_LABELS):  # "nan" parses; ids from 0
                raise ValueError
        except ValueError:
            wanted = "a finite number" if regression else f"an integer class id in [0, {MAX_LABELS})"
            raise ValueError(f"{path}:{line}: label {row[-1]!r} is not {wanted}") from None
        labels.append(label)
        texts.append(row[0])
        if width == 3:
            pairs.append(row[1])
    return Examples(texts, pairs if width == 3 else None, np.array(labels))


def batches(examples: Examples, settings: Settings, rng: np.random.Generator):
    """Shuffled batches of similar length: shuffle, cut into pools of 50 batches, sort each pool by length."""
    order = rng.permutation(len(examples.labels))
    lengths = np.array([len(t) + (len(examples.pairs[i]) if examples.pairs else 0)
                        for i, t in enumerate(examples.texts)])
    pool = settings.batch_size * 50
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        groups = [chunk[i:i + settings.batch_size] for i in range(0, len(chunk), settings.batch_size)]
        for k in rng.permutation(len(groups)):
            yield groups[k]


def encode(examples: Examples, index: np.ndarray, tokenizer: BertTokenizer, max_length: int) -> dict:
    pairs = [examples.pairs[i] for i in index] if examples.pairs else None
    return tokenizer([examples.texts[i] for i in index], pairs, padding=True, truncation=True, max_length=max_length,
                     return_tensors="np")


def evaluate(model: BertForSequenceClassification, tokenizer: BertTokenizer, examples: Examples,
             settings: Settings) -> dict[str, float]:
    """accuracy (and F1 of class 1 for two classes), or Pearson's r for regression."""
    predictions = []
    index = np.arange(len(examples.labels))
    for start in range(0, len(index), 128):
        predictions.append(model(**encode(examples, index[start:start + 128], tokenizer, settings.max_length)).logits)
    logits = np.concatenate(predictions)
    if model.config.problem_type == "regression":
        return {"pearson": float(np.corrcoef(logits[:, 0], examples.labels)[0, 1])}
    predicted, gold = logits.argmax(axis=1), examples.labels
    metrics = {"accuracy": float((predicted == gold).mean())}
    if logits.shape[1] == 2:
        tp = int(((predicted == 1) & (gold == 1)).sum())
        precision, recall = tp / max(1, int((predicted == 1).sum())), tp / max(1, int((gold == 1).sum()))
        metrics["f1"] = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return metrics


def finetune(model_name_or_path: str | os.PathLike, train_file: str | os.PathLike, output_dir: str | os.PathLike,
             dev_file: str | os.PathLike | None = None, settings: Settings | None = None, num_labels: int | None = None,
             regression: bool = False, progress: bool = True,
             teacher: BertForSequenceClassification | None = None, logging_steps: int = 50) -> list[dict[str, Any]]:
    """Fine-tune a pre-trained BERT (hub id, name or directory) into output_dir; returns per-epoch history.

    A new classifier head gets num_labels classes (default: those seen in the training labels). If
    output_dir holds a checkpoint of an unfinished run with the same settings, training resumes from it.
    With a teacher, the loss is distillation_loss on the teacher's logits (settings.temperature, .alpha).
    progress: a tqdm bar on stderr (step, epoch, loss, tokens/s, ETA) when it is a terminal, else the same
    figures as a plain line every logging_steps steps; and each epoch's record as a line of JSON.
    """
    check_positive_int("logging_steps", logging_steps)
    settings = settings or Settings()
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a directory, so it cannot hold the checkpoints",
                              str(output_dir))
    train = read_examples(train_file, regression)
    if len(set(train.labels.tolist())) < 2:
        raise ValueError(f"{train_file}: every label is {train.labels[0]}: there is nothing to learn "
                         + ("(regression needs labels that vary)" if regression
                            else "(a classifier needs two classes or more)"))
    dev = read_examples(dev_file, regression) if dev_file else None
    if dev is not None and (dev.pairs is None) != (train.pairs is None):
        raise ValueError(f"{dev_file} holds {'single texts' if dev.pairs is None else 'text pairs'} but {train_file} "
                         f"{'single texts' if train.pairs is None else 'text pairs'}: both files must "
                         "have the same columns")
    tokenizer = BertTokenizer.from_pretrained(model_name_or_path)
    state_file = output_dir / "trainer_state.json"
    state = read_json(state_file) if present(state_file) else None
    if state is not None and not (isinstance(state, dict) and isinstance(state.get("settings"), dict)):
        raise ValueError(f"{state_file}: not a trainer state minibert wrote; choose another directory")
    if state is not None and state["settings"] != asdict(settings):
        raise ValueError(f"{output_dir} holds a run with other settings ({state['settings']}); choose "
                         "another directory")
    if state is not None:
        model = BertForSequenceClassification.from_pretrained(output_dir)
    else:
        labels = ({"num_labels": 1, "problem_type": "regression"} if regression
                  else {"num_labels": num_labels or int(train.labels.max()) + 1})
        model = BertForSequenceClassification.from_pretrained(model_name_or_path, seed=settings.seed, **labels)
    if not regression:  # a class the head does not have: training would fail at its batch, evaluation count it wrong
        classes = model.config.num_labels
        for examples, path in ((train, train_file), (dev, dev_file)):
            largest = None if examples is None else int(examples.labels.max())
            if largest is not None and largest >= classes:
                raise ValueError(f"{path}: label {largest} is outside the model's {classes} classes (0..{classes - 1})")
    params = model.state_dict()
    optimizer = AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(train.labels) // settings.batch_size)
    total_steps = settings.max_steps or steps_per_epoch * settings.epochs
    warmup = int(settings.warmup_ratio * total_steps)
    step, history, start_epoch, unfinished = 0, [], 0, None
    if state is not None:
        moments = np.load(output_dir / "optimizer.npz")
        for name in params:
            optimizer.m[name][...] = moments[f"m/{name}"]
            optimizer.v[name][...] = moments[f"v/{name}"]
        optimizer.t, step, history, start_epoch = state["t"], state["step"], state["history"], state["epoch"]
        unfinished = state.get("partial_epoch")  # saved mid-epoch (save_steps): how far that epoch had come

    terminal = sys.stderr.isatty()
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=not (progress and terminal))
    run_started, first_step = time.perf_counter(), step  # the ETA counts this run's steps only
    for epoch in range(start_epoch, settings.epochs):
        rng = np.random.default_rng(settings.seed + epoch)  # the same batches when resumed
        started, tokens, losses, done = time.perf_counter(), 0, [], 0
        if unfinished is not None:
            started, tokens, losses, done = (started - unfinished["seconds"], unfinished["tokens"],
                                             unfinished["losses"], unfinished["batches"])
            unfinished = None
        for n, index in enumerate(batches(train, settings, rng)):
            if n < done:
                continue  # trained before the interruption
            if step >= total_steps:
                break
            parts = []
            for k, micro in enumerate(np.array_split(index, min(settings.accumulation_steps, len(index)))):
                encoding = encode(train, micro, tokenizer, settings.max_length)
                soft = None if teacher is None else partial(distillation_loss,
                                                            teacher_logits=teacher(**encoding).logits,
                                                            temperature=settings.temperature, alpha=settings.alpha)
                masks = None
                if settings.dropout:  # seeded by the step, so a resumed run draws the same masks
                    masks = dropout_masks(model, encoding["input_ids"].shape,
                                          np.random.default_rng([settings.seed, step, k]))
                parts.append((len(micro),
                              *value_and_grad(model, encoding, train.labels[micro], loss=soft, dropout=masks)))
                tokens += int(encoding["attention_mask"].sum())
            loss, grads = accumulate(parts)
            clip_grad_norm(grads, settings.max_grad_norm)
            optimizer.step(grads, lr=settings.lr * linear_schedule(step, warmup, total_steps))
            step += 1
            losses.append(loss)
            if settings.save_steps and step % settings.save_steps == 0:
                save_checkpoint(model, tokenizer, optimizer, output_dir, settings, step, epoch, history,
                                {"batches": n + 1, "losses": losses, "tokens": tokens,
                                 "seconds": time.perf_counter() - started})
            figures = (f"epoch {epoch + 1}/{settings.epochs}, loss {np.mean(losses[-50:]):.4f}, "
                       f"{tokens / (time.perf_counter() - started):.0f} tokens/s")
            bar.set_postfix_str(figures, refresh=False)
            bar.update()
            if progress and not terminal and step % logging_steps == 0:
                elapsed = time.perf_counter() - run_started
                eta = elapsed / (step - first_step) * (total_steps - step)
                print(f"step {step}/{total_steps}, {figures}, elapsed {tqdm.format_interval(elapsed)}, "
                      f"ETA {tqdm.format_interval(eta)}", file=sys.stderr, flush=True)
        record = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)) if losses else None,
                  "tokens_per_second": tokens / max(time.perf_counter() - started, 1e-9),
                  "seconds": time.perf_counter() - started}
        if dev is not None:
            record["dev"] = evaluate(model, tokenizer, dev, settings)
        history.append(record)
        if progress:
            tqdm.write(json.dumps(record), file=sys.stderr)
        save_checkpoint(model, tokenizer, optimizer, output_dir, settings, step, epoch + 1, history)
        if step >= total_steps:
            break
    bar.close()
    return history


def grid_search(model_name_or_path: str | os.PathLike, train_file: str | os.PathLike, output_dir: str | os.PathLike,
                dev_file: str | os.PathLike, settings: Settings | None = None,
                learning_rates: tuple[float, ...] = GRID_LEARNING_RATES,
                batch_sizes: tuple[int, ...] = GRID_BATCH_SIZES,
                num_labels: int | None = None, regression: bool = False, progress: bool = True) -> dict[str, Any]:
    """Fine-tune once per (learning rate, batch size) of the grid, each into output_dir/lr{lr}-bs{batch}, and
    pick the run with the best dev score (accuracy, or Pearson's r) at its best epoch. Other settings as
    given. Written to output_dir/grid.json after every run; rerunning resumes (finished runs are not redone).
    Returns {"runs": [{lr, batch_size, directory, best epoch's record}], "best": one of them}."""
    settings = settings or Settings()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for lr in learning_rates:
        for batch_size in batch_sizes:
            directory = output_dir / f"lr{lr:g}-bs{batch_size}"
            run_settings = Settings(**{**asdict(settings), "lr": lr, "batch_size": batch_size})
            history = finetune(model_name_or_path, train_file, directory, dev_file, run_settings, num_labels=num_labels,
                               regression=regression, progress=progress)
            best = max(history, key=lambda record: score(record["dev"]))
            runs.append({"lr": lr, "batch_size": batch_size, "directory": str(directory), "best_epoch": best})
            summary = {"runs": runs, "best": max(runs, key=lambda run: score(run["best_epoch"]["dev"]))}
            write_json(output_dir / "grid.json", summary)
    return summary


def score(metrics: dict[str, float]) -> float:
    return metrics["pearson"] if "pearson" in metrics else metrics["accuracy"]


def save_checkpoint(model, tokenizer, optimizer, output_dir: Path, settings: Settings, step: int, epoch: int,
                    history: list, partial_epoch: dict | None = None) -> None:
    """The model (as transformers loads it), the tokenizer, and the optimiser state; the state file last,
    so a run interrupted while saving resumes from the previous checkpoint. epoch: epochs completed;
    partial_epoch: within the next one, the batches done and their losses, tokens and seconds."""
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    moments = {**{f"m/{n}": a for n, a in optimizer.m.items()}, **{f"v/{n}": a for n, a in optimizer.v.items()}}
    np.savez(output_dir / "optimizer.npz.partial.npz", **moments)
    os.replace(output_dir / "optimizer.npz.partial.npz", output_dir / "optimizer.npz")
    state = {"settings": asdict(settings), "t": optimizer.t, "step": step, "epoch": epoch, "history": history,
             "partial_epoch": partial_epoch}
    write_json(output_dir / "trainer_state.json", state)


def distill(teacher: str | os.PathLike, student: str | os.PathLike, train_file: str | os.PathLike,
            output_dir: str | os.PathLike, dev_file: str | os.PathLike | None = None, settings: Settings | None = None,
            progress: bool = True, logging_steps: int = 50) -> list[dict[str, Any]]:
    """Train `student` on a fine-tuned `teacher`'s soft targets mixed with the hard labels.

    student: a pre-trained model (directory or hub id), or a config — a config.json file or a miniature's
    name ("bert-mini") — for a randomly initialised student that reads the teacher's vocabulary.
    """
    from ..config import BertConfig
    from ..loading.miniatures import find_miniature
    from ..loading.weights import init_weights

    settings = settings or Settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # refused below, in words for distillation
        teacher_model = BertForSequenceClassification.from_pretrained(teacher)
    if teacher_model.untrained_head:
        raise ValueError(f"the teacher {teacher} has no trained classifier: distillation needs a fine-tuned sequence "
                         "classifier as the teacher (minibert finetune makes one)")
    student_path = Path(os.fspath(student))
    miniature = find_miniature(os.fspath(student)) if not student_path.exists() else None
    if student_path.is_file() or miniature is not None:
        config = BertConfig.from_pretrained(miniature.name) if miniature else BertConfig.from_json_file(student_path)
        tokenizer = BertTokenizer.from_pretrained(teacher)
        if config.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"the student's vocabulary ({config.vocab_size}) differs from the teacher's "
                             f"({tokenizer.vocab_size})")
        start = Path(output_dir) / "initial"
        if not (start / "model.safetensors").is_file():
            from ..loading.convert import write_safetensors_atomically

            start.mkdir(parents=True, exist_ok=True)
            config.save_pretrained(start)
            tokenizer.save_pretrained(start)
            write_safetensors_atomically(init_weights(config, settings.seed), start / "model.safetensors")
        student = start
    elif (student_vocab := BertTokenizer.from_pretrained(student).get_vocab()) != (
            teacher_vocab := BertTokenizer.from_pretrained(teacher).get_vocab()):
        differ = min(set(student_vocab.items()) ^ set(teacher_vocab.items()), key=lambda item: item[1])
        raise ValueError(f"the student's vocabulary ({len(student_vocab)} tokens) differs from the teacher's "
                         f"({len(teacher_vocab)}; e.g. {differ[0]!r} is id {differ[1]} in one of them only): the "
                         "student must read the teacher's token ids")
    return finetune(student, train_file, output_dir, dev_file, settings, num_labels=teacher_model.config.num_labels,
                    progress=progress, teacher=teacher_model, logging_steps=logging_steps)
