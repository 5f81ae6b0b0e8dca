"""Requests queued and run together: one model thread takes rows from the queue by a token budget.

A request (a Job) is a list of token rows. The model thread takes rows first come, first served, from the
oldest job on, until the next row would pass max_batch_tokens (it always takes at least one row), so a job's
rows may be split across model calls; each call's outputs are written into the job's result at the rows'
positions, and the job's future is resolved when its last row is done. The padding-free fast path costs
about the same per token however the tokens are grouped, so a budget in tokens, not in texts, bounds the
time and memory of one call.

The event loop only appends and cancels (under the lock) and awaits futures; the model runs in its own
thread (the fast path's calls on one model take turns anyway, and NumPy, BLAS and the tokenizer release the
event loop's thread to answer other requests meanwhile). A job whose client went away is cancelled: its
rows not yet taken are dropped from the queue.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

# run(rows, extras) -> outputs [len(rows), D] in the rows' order; extras: one per row (what run needs beside the ids)
Run = Callable[[list[list[int]], list[Any]], np.ndarray]


class Job:
    """One request's rows and where its results go."""

    def __init__(self, rows: list[list[int]], extras: list[Any], future: asyncio.Future) -> None:
        self.rows, self.extras, self.future = rows, extras, future
        self.loop = future.get_loop()
        self.taken = 0  # rows handed to the model so far
        self.done = 0  # rows whose outputs are in `results`
        self.results: np.ndarray | None = None
        self.cancelled = False

    def deliver(self, start: int, outputs: np.ndarray) -> None:
        """Outputs [n, D] of rows start .. start + n (model thread); resolves the future after the last row."""
        if self.results is None:
            self.results = np.empty((len(self.rows), *outputs.shape[1:]), dtype=outputs.dtype)
        self.results[start:start + len(outputs)] = outputs
        self.done += len(outputs)
        if self.done == len(self.rows):
            self.loop.call_soon_threadsafe(_resolve, self.future, self.results, None)

    def fail(self, error: BaseException) -> None:
        self.loop.call_soon_threadsafe(_resolve, self.future, None, error)


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile: its client went away
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Batcher:
    """The queue of jobs and the thread that runs the model on them. run: see Run. max_batch_tokens: the
    budget of one call. on_batch(texts, tokens, seconds): called after each model call (metrics).
    initializer: called first in the model thread (Numba's thread count is set per calling thread)."""

    def __init__(self, run: Run, max_batch_tokens: int, on_batch: Callable[[int, int, float], None],
                 initializer: Callable[[], None] | None = None) -> None:
        self.run, self.max_batch_tokens, self.on_batch, self.initializer = run, max_batch_tokens, on_batch, initializer
        self.queue: deque[Job] = deque()
        self.waiting = 0  # rows queued and not yet taken
        self._ready = threading.Condition()
        self._closing = False
        self.thread = threading.Thread(target=self._work, name="minibert-model", daemon=True)
        self.thread.start()

    async def submit(self, rows: list[list[int]], extras: list[Any]) -> np.ndarray:
        """The model's outputs [len(rows), D] for these rows, in order. Cancelling the awaiting task (the
        client went away) drops the rows not yet taken."""
        job = Job(rows, extras, asyncio.get_running_loop().create_future())
        with self._ready:
            self.queue.append(job)
            self.waiting += len(rows)
            self._ready.notify()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    def _cancel(self, job: Job) -> None:
        with self._ready:
            if not job.cancelled and job.taken < len(job.rows):
                self.waiting -= len(job.rows) - job.taken
                if job in self.queue:
                    self.queue.remove(job)
            job.cancelled = True

    def close(self) -> None:
        """Stop the model thread after the call it is running."""
        with self._ready:
            self._closing = True
            self._ready.notify()

    def _take(self) -> list[tuple[Job, int, int]]:
        """The next call's rows, as (job, first row, end row) pieces, oldest job first, within the budget.
        Called with the lock held and the queue not empty."""
        pieces, tokens = [], 0
        while self.queue:
            job = self.queue[0]
            start = job.taken
            while job.taken < len(job.rows) and (tokens == 0
                                                 or tokens + len(job.rows[job.taken]) <= self.max_batch_tokens):
                tokens += len(job.rows[job.taken])
                job.taken += 1
            if job.taken > start:
                pieces.append((job, start, job.taken))
                self.waiting -= job.taken - start
            if job.taken < len(job.rows):
                break  # the budget is spent
            self.queue.popleft()
        return pieces

    def _work(self) -> None:
        if self.initializer is not None:
            self.initializer()
        while True:
            with self._ready:
                while not self.queue and not self._closing:
                    self._ready.wait()
                if self._closing:
                    return
                pieces = self._take()
            rows = [row for job, start, end in pieces for row in job.rows[start:end]]
            extras = [extra for job, start, end in pieces for extra in job.extras[start:end]]
            began = time.perf_counter()
            try:
                outputs = self.run(rows, extras)  # [len(rows), D]
            except Exception as error:  # noqa: BLE001  (answered to the requests; the thread lives on)
                for job in {job for job, _, _ in pieces}:
                    self._cancel(job)  # its other rows need not run
                    job.fail(error)
                continue
            self.on_batch(len(rows), sum(map(len, rows)), time.perf_counter() - began)
            offset = 0
            for job, start, end in pieces:
                job.deliver(start, outputs[offset:offset + end - start])
                offset += end - start
