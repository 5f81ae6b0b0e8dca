"""The local engine: one process works through the input shard by shard, skipping the shards written before.

Memory stays at one shard of lines and results whatever the input's size. Killed at any point, a rerun
finds every shard whose values file is in place complete (see shards.write_shard) and redoes the rest,
so each input line ends up in exactly one shard, with the values an uninterrupted run gives.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from tqdm import tqdm  # installed with huggingface-hub

from .job import Job, finish, start
from .shards import SKIP_REASONS, count_lines, is_written, parse, scan, write_shard


def run_local(job: Job, threads: int = 1, progress: bool = True) -> dict:
    """Compute every shard of `job` not yet written, with one worker of `threads` threads; returns the
    manifest (lines, rows, skipped lines by reason, shards)."""
    directory = start(job)
    totals = Totals()
    worker = None  # loaded only if a shard is left to compute
    with progress_bar(job, progress) as bar:
        for shard, lines in scan(job.input, job.shard_size):
            totals.add(parse(lines, shard.first_line))
            if not is_written(directory, shard.index):
                worker = worker or job.worker(threads)
                write_shard(directory, shard, lines, worker)
                bar.update(len(lines))
    return finish(job, totals.lines, totals.rows, totals.skipped, totals.shards)


class Totals:
    """Lines, rows and skipped lines over the shards parsed so far (written now or before)."""

    def __init__(self) -> None:
        self.lines = self.rows = self.shards = 0
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)

    def add(self, parsed) -> None:
        ids, _, skipped = parsed
        self.lines += len(ids) + sum(skipped.values())
        self.rows += len(ids)
        self.shards += 1
        for reason, n in skipped.items():
            self.skipped[reason] += n


def progress_bar(job: Job, show: bool) -> tqdm:
    """A tqdm bar over the input's lines (texts/s, ETA), starting at the lines of the shards written
    before; off a terminal, the same figures as a plain line per shard."""
    total = count_lines(job.input)
    done = sum(min(job.shard_size, total - k * job.shard_size) for k in range(-(-total // job.shard_size))
               if is_written(Path(job.output), k))
    terminal = sys.stderr.isatty()
    return tqdm(total=total, initial=done, unit="text", unit_scale=True, disable=not show, smoothing=0.1,
                file=sys.stderr if terminal else _Lines(), ncols=None if terminal else 0, mininterval=0.1 if terminal else 0)


class _Lines(io.TextIOBase):
    """stderr for tqdm off a terminal: each of its redraws ("\\r" + status) as a line of its own."""

    def write(self, text: str) -> int:
        status = text.strip("\r\n ")
        if status:
            print(status, file=sys.stderr, flush=True)
        return len(text)
