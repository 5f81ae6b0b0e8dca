"""The Ray engine: the same job on Ray Data, one actor per worker, the shards spread over the cluster.

The driver reads the input once to cut it into shards (byte ranges) and count its lines; each pending
shard is one row of a Ray dataset, mapped by ShardWriter actors that read the shard's lines, compute them
with the job's worker (Embedder or Classifier) and write its files as the local engine does. So the
input file and the output directory must be at the same path on every node (a shared file system), as
for Ray's own file readers and writers; the results are the local engine's, bit for bit.

Ray Data restarts an actor that dies and retries its task, and a shard is renamed into place only when
complete, so a worker killed mid-shard costs that shard's work and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .job import Job, finish, start
from .local import Totals, progress_bar
from .shards import Shard, is_written, parse, read_lines, scan, write_shard


class ShardWriter:
    """A Ray actor: builds the job's worker once, then computes and writes each shard it is handed."""

    def __init__(self, job: dict[str, Any], threads: int) -> None:
        self.job = Job(**job)
        self.directory = Path(self.job.output)
        self.worker = self.job.worker(threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        lines = []
        for fields in zip(*(batch[name] for name in Shard._fields)):
            shard = Shard(*map(int, fields))
            raw = read_lines(self.job.input, shard)
            if not is_written(self.directory, shard.index):  # a retry after the rename: done already
                write_shard(self.directory, shard, raw, self.worker)
            lines.append(len(raw))
        return {"index": batch["index"], "lines": lines}


def run_ray(job: Job, address: str | None = None, workers: int | None = None, threads: int = 1,
            progress: bool = True) -> dict:
    """Compute every shard of `job` not yet written on Ray Data: `workers` actors (default: the cluster's
    CPUs / threads) of `threads` threads each. Joins the cluster at `address` ("host:port"), or the Ray
    already initialised in this process, or starts a local one. Returns the manifest, as run_local."""
    try:
        import ray
    except ImportError:
        raise ImportError("the ray engine needs Ray Data: pip install 'bert-miniatures-numpy[ray]'") from None
    directory = start(job)
    totals, pending = Totals(), []
    for shard, lines in scan(job.input, job.shard_size):
        totals.add(parse(lines, shard.first_line))
        if not is_written(directory, shard.index):
            pending.append(shard._asdict())
    if pending:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts texts
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        shards = ray.data.from_items(pending, override_num_blocks=len(pending))  # one block per shard
        results = shards.map_batches(ShardWriter, fn_constructor_kwargs={"job": job.__dict__, "threads": threads},
                                     batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads)
        with progress_bar(job, progress) as bar:
            for batch in results.iter_batches(batch_size=None):
                bar.update(int(sum(batch["lines"])))
    return finish(job, totals.lines, totals.rows, totals.skipped, totals.shards)
