"""Corpus throughput on one machine: the same cores as 1 worker x C threads or C workers x 1 thread.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_corpus.py [--texts 1024] [--rounds 3] [--ray]

Local: worker processes (minibert.corpus.Embedder) load and warm up first, then each round hands every layout
the same texts split evenly between its workers, layouts interleaved, and times from the common start to the
last worker's end. Ray (--ray, needs the ray extra): a local cluster of C CPUs runs Dataset.map_batches with
the same layouts; each batch records when it ran, so texts/s counts computing, not the actors' start.
Memory: each worker's peak resident set after its first batches, and what one more worker adds.
Prints texts/s per round, texts per CPU second of the workers (what a core-hour buys, less sensitive to
other processes on the machine), and the ratio C x 1 over 1 x C per round (paired: the same round, the same load).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time

import numpy as np

from minibert.corpus import Embedder
from minibert.tools.bench import cpu_description

WORDS = [
    "the", "of", "and", "to", "in", "is", "was", "for", "that", "with", "as", "on", "by", "at", "from", "his",
    "an", "were", "are", "which", "this", "be", "or", "has", "had", "not", "but", "first", "one", "their", "its",
    "new", "after", "who", "they", "have", "her", "she", "two", "been", "other", "when", "there", "all", "during",
    "into", "school", "time", "may", "years", "more", "most", "only", "over", "city", "some", "world", "would",
    "where", "later", "up", "such", "used", "many", "can", "state", "about", "national", "out", "known",
    "university", "united", "then", "made", "team", "game", "season", "film", "music", "album", "river",
    "village", "church", "war", "government", "north", "south", "early", "part", "population", "county", "while",
    "three", "both", "between"
]


def sentences(n: int, seed: int = 0) -> list[str]:
    """n sentences of 8 to 40 words (12 to 60 tokens), the length of a typical corpus line."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(8, 41))).capitalize() + "." for _ in range(n)]


def memory_mib() -> tuple[float, float]:
    """(peak resident set, private memory now): the second is what this process adds to the machine, the
    first also counts the shared libraries' pages every process maps."""
    with open("/proc/self/smaps_rollup") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    private = sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024  # KiB -> MiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, private


def local_worker(model: str, threads: int, inbox, outbox) -> None:
    """A worker process: load, warm up, report memory, then time each chunk of texts it is sent."""
    embedder = Embedder(model, threads=threads)
    embedder(sentences(64, seed=99))  # warm: the kernels compiled or read from Numba's cache
    outbox.put(memory_mib())
    while (message := inbox.get()) is not None:
        start_at, texts = message
        while time.time() < start_at:  # every worker of the layout starts together
            time.sleep(0.001)
        cpu = time.process_time()
        embedder(texts)
        outbox.put((time.time() - start_at, time.process_time() - cpu))


class Layout:
    """`workers` local worker processes of `threads` threads each."""

    def __init__(self, model: str, workers: int, threads: int) -> None:
        context = mp.get_context("spawn")  # a fresh interpreter: no Numba or BLAS threads inherited
        self.name, self.pipes = f"{workers} x {threads}", []
        for _ in range(workers):
            inbox, outbox = context.Queue(), context.Queue()
            context.Process(target=local_worker, args=(model, threads, inbox, outbox), daemon=True).start()
            self.pipes.append((inbox, outbox))
        self.rss = [outbox.get() for _, outbox in self.pipes]

    def run(self, texts: list[str]) -> tuple[float, float]:
        """(texts/s, texts per CPU second of the workers' processes) for one round."""
        start_at = time.time() + 0.5
        for (inbox, _), chunk in zip(self.pipes, np.array_split(np.array(texts, dtype=object), len(self.pipes))):
            inbox.put((start_at, chunk.tolist()))
        wall, cpu = zip(*(outbox.get() for _, outbox in self.pipes))
        return len(texts) / max(wall), len(texts) / sum(cpu)

    def close(self) -> None:
        for inbox, _ in self.pipes:
            inbox.put(None)


class TimedEmbedder(Embedder):
    """Embedder that also returns when each batch ran and its process's private memory (Ray layouts)."""

    def __call__(self, batch):
        started, cpu = time.time(), time.process_time()
        out = super().__call__(batch)
        n = len(batch["text"])
        return {**out, "started": np.full(n, started), "ended": np.full(n, time.time()),
                "cpu": np.full(n, (time.process_time() - cpu) / n),
                "private": np.full(n, memory_mib()[1]), "pid": np.full(n, os.getpid())}


def ray_run(ray, model: str, texts: list[str], workers: int, threads: int) -> tuple[tuple[float, float], list[float]]:
    """((texts/s once every actor is up, texts per CPU second), each actor's private memory)."""
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=4 * workers)
    out = ds.map_batches(TimedEmbedder, fn_constructor_kwargs={"model": model, "threads": threads}, batch_size=64,
                         compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads).select_columns(
        ["started", "ended", "cpu", "private", "pid"]).to_pandas()
    first = out.groupby("pid")["started"].min().max()  # the last actor's first batch: all are up by then
    late = out[out["started"] >= first]
    rates = len(late) / (late["ended"].max() - first), len(out) / out["cpu"].sum()
    return rates, out.groupby("pid")["private"].max().tolist()


def report(name: str, rates: dict[str, list[tuple[float, float]]], wide: str, narrow: str) -> None:
    """Per layout, texts/s and texts per CPU second in each round; the layouts' ratio per round."""
    for layout, values in rates.items():
        print(f"  {name} {layout:>6}: texts/s per round {', '.join(f'{w:.0f}' for w, _ in values)}; "
              f"texts per CPU second {', '.join(f'{c:.0f}' for _, c in values)}")
    for k, what in enumerate(("texts/s", "texts per CPU second")):
        ratios = [w[k] / n[k] for w, n in zip(rates[wide], rates[narrow])]
        print(f"  {name} {wide} over {narrow}, {what}, per round: {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--texts", type=int, default=1024, help="texts per round (default 1024)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also on a local Ray cluster")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    texts = sentences(args.texts)
    print(f"{args.model}, {args.texts} texts of 8-40 words per round, {args.rounds} rounds, {cores} cores: "
          + cpu_description())
    wide, narrow = f"{cores} x 1", f"1 x {cores}"
    layouts = {narrow: Layout(args.model, 1, cores), wide: Layout(args.model, cores, 1)}
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(args.rounds):
        for name, layout in layouts.items():
            rates[name].append(layout.run(texts))
    report("local", rates, wide, narrow)
    for name, layout in layouts.items():
        memory = ", ".join(f"peak resident {peak:.0f} MiB, private {private:.0f} MiB" for peak, private in layout.rss)
        print(f"  local memory per worker, {name}: {memory}")
    per_cpu_second = statistics.median(c for _, c in rates[wide])
    print(f"  per core: {per_cpu_second:.0f} texts per CPU second ({wide}, median): "
          f"{1e8 / per_cpu_second / 3600:.0f} core-hours for 100 M texts")
    for layout in layouts.values():
        layout.close()
    if args.ray:
        import logging

        import ray

        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        shapes = {narrow: (1, cores), wide: (cores, 1)}
        rates, memory = {name: [] for name in shapes}, {}
        for _ in range(args.rounds):
            for name, (workers, threads) in shapes.items():
                rate, memory[name] = ray_run(ray, args.model, texts, workers, threads)
                rates[name].append(rate)
        report("ray", rates, wide, narrow)
        print("  ray private memory per actor: " + "; ".join(
            f"{name} {', '.join(f'{r:.0f}' for r in values)} MiB" for name, values in memory.items()))
        ray.shutdown()


if __name__ == "__main__":
    main()
