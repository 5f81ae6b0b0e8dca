"""A corpus file cut into shards, and the shards written out: the rule for lines, the atomic writes.

Shard k holds the input's lines k·S to (k+1)·S - 1 (S = the shard size), whatever they contain, so the cut
is known before anything is computed and is the same on every engine and every rerun. Its results are
NAME.npy (float32, one row per kept line, in input order) and NAME.ids.npy (int64, each row's 0-based line
number), NAME = shard-000000, shard-000001, ...

Lines end at "\n" (a "\r" before it is dropped, and a UTF-8 byte-order mark before the first line). A line
that is not valid UTF-8, or is empty or only whitespace, gets no row: it is skipped and counted
(SKIP_REASONS), and its number is missing from the ids.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

SHARD_SIZE = 4096  # lines per shard: a few seconds of work on one core, and a few MB of output
SKIP_REASONS = ("invalid_utf8", "empty")
BOM = b"\xef\xbb\xbf"


class Shard(NamedTuple):
    index: int
    first_line: int  # 0-based number of its first line in the input
    start: int  # byte offset of its first line
    end: int  # byte offset just past its last line


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def scan(path: str | os.PathLike, shard_size: int) -> Iterator[tuple[Shard, list[bytes]]]:
    """The input's shards in order, each with its raw lines; the file is read once, a shard at a time."""
    with open(path, "rb") as f:
        lines: list[bytes] = []
        index = first = start = offset = 0
        for raw in f:
            lines.append(raw)
            offset += len(raw)
            if len(lines) == shard_size:
                yield Shard(index, first, start, offset), lines
                index, first, start, lines = index + 1, first + shard_size, offset, []
        if lines:
            yield Shard(index, first, start, offset), lines


def read_lines(path: str | os.PathLike, shard: Shard) -> list[bytes]:
    """One shard's raw lines, read from its byte range (a worker that is given the descriptor only)."""
    with open(path, "rb") as f:
        f.seek(shard.start)
        return list(io.BytesIO(f.read(shard.end - shard.start)))


def parse(lines: list[bytes], first_line: int) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Raw lines -> (ids [N] int64, the N texts kept, {reason: lines skipped}) by the module's rule."""
    ids, texts, skipped = [], [], dict.fromkeys(SKIP_REASONS, 0)
    for k, raw in enumerate(lines):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        line = line[:-1] if line.endswith(b"\r") else line
        if first_line + k == 0 and line.startswith(BOM):
            line = line[len(BOM):]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            skipped["invalid_utf8"] += 1
            continue
        if not text.strip():
            skipped["empty"] += 1
            continue
        ids.append(first_line + k)
        texts.append(text)
    return np.array(ids, dtype=np.int64), texts, skipped


def is_written(directory: Path, index: int) -> bool:
    """Whether shard `index` is complete: its values file is renamed into place last."""
    return (directory / f"{shard_name(index)}.npy").is_file()


def write_shard(directory: Path, shard: Shard, lines: list[bytes], worker: Callable[[list[str]], np.ndarray]) -> int:
    """Compute one shard's rows with `worker` and write its two files atomically; returns its row count."""
    ids, texts, _ = parse(lines, shard.first_line)
    values = worker(texts)  # [N, D]
    if len(values) != len(ids):
        raise RuntimeError(f"the worker returned {len(values)} rows for {len(ids)} texts")
    name = shard_name(shard.index)
    save_atomically(directory / f"{name}.ids.npy", ids)
    save_atomically(directory / f"{name}.npy", np.ascontiguousarray(values, dtype=np.float32))  # last: marks it done
    return len(ids)


def save_atomically(path: Path, array: np.ndarray) -> None:
    """Write through a temporary file, flushed to disk, then renamed: a kill leaves the old state or the new."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: a retried worker's own
    with open(temporary, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself, on disk
    finally:
        os.close(descriptor)


def remove_temporaries(directory: Path) -> None:
    """Temporary files a killed run left behind (never a complete shard)."""
    for path in directory.glob(".shard-*.tmp"):
        path.unlink(missing_ok=True)


def count_lines(path: str | os.PathLike) -> int:
    """Lines in the file (a last line without "\\n" counts), read in 1 MiB blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def load(directory: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Every complete shard of an output directory, in order: (ids [N] int64, values [N, D] float32)."""
    directory = Path(directory)
    names = sorted(p.name[:-len(".npy")] for p in directory.glob("shard-*.npy") if not p.name.endswith(".ids.npy"))
    if not names:
        raise FileNotFoundError(f"{directory} holds no shards")
    ids = np.concatenate([np.load(directory / f"{name}.ids.npy") for name in names])  # [N]
    return ids, np.concatenate([np.load(directory / f"{name}.npy") for name in names])  # [N, D]
