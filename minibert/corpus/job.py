"""A corpus job — what to compute, from which file, into which directory — and its manifest.

DIR/manifest.json names the job first (task, model, input file, shard size, options) and, once every
shard is written, what came out (lines, rows, lines skipped by reason, shards, the values' width, and for
a classifier its labels). A rerun into DIR must be the same job: it resumes, leaving the shards already
written as they are; another job is refused before anything is computed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import check_positive_int
from ..loading.files import read_json, write_json
from .shards import SHARD_SIZE, remove_temporaries, shard_name

FORMAT = "minibert-corpus/1"
TASKS = ("embed", "classify")


@dataclass(frozen=True)
class Job:
    """task: "embed" (Embedder) or "classify" (Classifier); model: hub id or directory; input: a text file,
    one text per line; output: the directory of shards; shard_size: lines per shard; prompt_name: embed's."""

    task: str
    model: str
    input: str
    output: str
    shard_size: int = SHARD_SIZE
    prompt_name: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r}: choose from {', '.join(TASKS)}")
        check_positive_int("shard_size", self.shard_size)
        if not os.path.isfile(self.input):
            raise FileNotFoundError(f"cannot read {self.input}: no such file")

    def worker(self, threads: int):
        """The worker that computes a shard's rows from its texts (a list in, [N, D] float32 out)."""
        from .worker import Classifier, Embedder

        if self.task == "embed":
            return Embedder(self.model, threads=threads, prompt_name=self.prompt_name)
        return Classifier(self.model, threads=threads)

    def identity(self) -> dict[str, Any]:
        """What a rerun must share to resume: the task, the model (a directory by its absolute path), the
        input (path, size and a hash of its first MiB) and the options."""
        model = os.path.abspath(self.model) if os.path.isdir(self.model) else self.model
        with open(self.input, "rb") as f:
            head = hashlib.sha256(f.read(1 << 20)).hexdigest()
        source = {"path": os.path.abspath(self.input), "bytes": os.path.getsize(self.input), "head_sha256": head}
        return {"task": self.task, "model": model, "input": source, "shard_size": self.shard_size,
                "prompt_name": self.prompt_name}


def start(job: Job) -> Path:
    """Create the output directory and its manifest, or check that the one there is this job's."""
    directory = Path(job.output)
    directory.mkdir(parents=True, exist_ok=True)
    path, identity = directory / "manifest.json", job.identity()
    if path.is_file():
        try:
            given = read_json(path)["job"]  # strictly: not UTF-8, NaN, nesting without end are ValueErrors
            if not isinstance(given, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a minibert corpus manifest; choose another output directory") from None
        differ = [key for key in identity if given.get(key) != identity[key]]
        if differ:
            key = differ[0]
            raise ValueError(f"{directory} holds the output of another job ({key} {given.get(key)!r}, not "
                             f"{identity[key]!r}); rerun that job's command or choose another output directory")
    elif any(directory.glob("shard-*")):
        raise ValueError(f"{directory} holds shards but no manifest.json; choose another output directory")
    else:
        write_json(path, {"format": FORMAT, "job": identity, "complete": False})
    remove_temporaries(directory)
    return directory


def finish(job: Job, lines: int, rows: int, skipped: dict[str, int], shards: int) -> dict[str, Any]:
    """Write the manifest of a complete run, and return it."""
    directory = Path(job.output)
    manifest = {"format": FORMAT, "job": job.identity(), "complete": True, "lines": lines, "rows": rows,
                "skipped": skipped, "shards": shards, "dtype": "float32"}
    if shards:
        manifest["width"] = int(np.load(directory / f"{shard_name(0)}.npy", mmap_mode="r").shape[1])
    if job.task == "classify":
        from ..config import BertConfig
        from ..loading.hub import model_directory

        config = BertConfig.from_json_file(model_directory(job.model, need=("config.json",)) / "config.json")
        manifest["problem_type"] = config.problem_type
        manifest["labels"] = [config.id2label[i] for i in range(config.num_labels)]  # the scores' columns
    write_json(directory / "manifest.json", manifest)
    return manifest
