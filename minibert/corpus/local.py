"""The local engine: the input shard by shard, skipping the shards written before, in this process or in
worker processes.

Memory stays at a few shards of lines and results whatever the input's size. Killed at any point, a rerun
finds every shard whose values file is in place complete (see shards.write_shard) and redoes the rest,
so each input line ends up in exactly one shard, with the values an uninterrupted run gives.
"""

from __future__ import annotations

import io
import multiprocessing
import signal
import sys
from pathlib import Path

from tqdm import tqdm  # installed with huggingface-hub

from ..errors import check_positive_int
from .job import Job, finish, start
from .shards import (
    SKIP_REASONS,
    Shard,
    count_lines,
    is_written,
    parse,
    scan,
    write_shard,
)


def run_local(job: Job, workers: int = 1, threads: int = 1, progress: bool = True) -> dict:
    """Compute every shard of `job` not yet written with `workers` workers of `threads` threads each (one
    worker: in this process; more: worker processes, each loading the model once); returns the manifest
    (lines, rows, skipped lines by reason, shards)."""
    check_positive_int("workers", workers)
    directory = start(job)
    totals = Totals()
    with progress_bar(job, progress) as bar:
        pool = Workers(job, workers, threads, bar)
        try:
            for shard, lines in scan(job.input, job.shard_size):
                totals.add(parse(lines, shard.first_line))
                if not is_written(directory, shard.index):
                    pool.submit(shard, lines)
            pool.join()
        finally:
            pool.close()
    return finish(job, totals.lines, totals.rows, totals.skipped, totals.shards)


class Workers:
    """Shards computed and written here (one worker, loaded at the first shard left to compute) or by worker
    processes, at most two shards per worker in flight so that memory stays bounded."""

    def __init__(self, job: Job, workers: int, threads: int, bar: tqdm) -> None:
        self.job, self.workers, self.threads, self.bar = job, workers, threads, bar
        self.worker, self.pool, self.running = None, None, []

    def submit(self, shard: Shard, lines: list[bytes]) -> None:
        if self.workers == 1:
            self.worker = self.worker or self.job.worker(self.threads)
            write_shard(Path(self.job.output), shard, lines, self.worker)
            self.bar.update(len(lines))
            return
        if self.pool is None:  # spawned: a fresh interpreter, no Numba or BLAS threads inherited
            self.pool = multiprocessing.get_context("spawn").Pool(self.workers, _start_worker, (self.job, self.threads))
        while len(self.running) >= 2 * self.workers:
            self.bar.update(self.running.pop(0).get())  # a worker's error is raised here
        self.running.append(self.pool.apply_async(_write_shard, (shard, lines)))

    def join(self) -> None:
        """Wait for the shards still in flight."""
        while self.running:
            self.bar.update(self.running.pop(0).get())

    def close(self) -> None:
        """Stop the worker processes at once; after an interruption, the shards they held are left to a rerun."""
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


_job: Job | None = None
_worker = None


def _start_worker(job: Job, threads: int) -> None:
    """A worker process's start: load the job's model once. Ctrl-C is the parent's to handle: it stops the
    workers, which would otherwise each print a traceback."""
    global _job, _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _job, _worker = job, job.worker(threads)


def _write_shard(shard: Shard, lines: list[bytes]) -> int:
    write_shard(Path(_job.output), shard, lines, _worker)
    return len(lines)


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
    if terminal:
        return tqdm(total=total, initial=done, unit="text", unit_scale=True, disable=not show, smoothing=0.1)
    return tqdm(total=total, initial=done, unit="text", unit_scale=True, disable=not show, file=_Lines(), ncols=0,
                mininterval=0)


class _Lines(io.TextIOBase):
    """stderr for tqdm off a terminal: each of its redraws ("\\r" + status) as a line of its own."""

    def write(self, text: str) -> int:
        status = text.strip("\r\n ")
        if status:
            print(status, file=sys.stderr, flush=True)
        return len(text)
