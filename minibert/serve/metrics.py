"""The server's counters and histograms, written in Prometheus' text exposition format for GET /metrics.

Updated from the event loop (requests) and from the model's thread (batches), so every update and the
rendering take one lock. Gauges (queue depth, requests in flight) are read when rendered.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds
SIZE_BUCKETS = tuple(2 ** k for k in range(11))  # texts per model call: 1 .. 1024
TOKEN_BUCKETS = tuple(2 ** k for k in range(4, 17))  # tokens per model call: 16 .. 65536


class Histogram:
    """Counts of observations at or below each bucket's upper bound, their sum and their number."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        """Prometheus' histogram series: cumulative _bucket{le=...} lines, then _sum and _count."""
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {n}' for bound, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        braces = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{braces} {self.sum:.6f}", f"{name}_count{braces} {self.count}"]


class Metrics:
    """What GET /metrics reports: requests by endpoint and status, their latency, the model's batches (texts
    and tokens per call, time per call), and the queue depth and requests in flight (read from `gauges`)."""

    def __init__(self, gauges: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self.gauges = gauges  # name -> (help, read)
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.batch_size, self.batch_tokens = Histogram(SIZE_BUCKETS), Histogram(TOKEN_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[endpoint, status] += 1
            self.latency[endpoint].observe(seconds)

    def batch(self, texts: int, tokens: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe(texts)
            self.batch_tokens.observe(tokens)
            self.batch_seconds.observe(seconds)

    def render(self) -> str:
        with self._lock:
            out = ["# HELP minibert_requests_total Requests answered, by endpoint and status code.",
                   "# TYPE minibert_requests_total counter"]
            out += [f'minibert_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                    for (e, s), n in sorted(self.requests.items())]
            out += ["# HELP minibert_request_duration_seconds Time from a request's arrival to its answer.",
                    "# TYPE minibert_request_duration_seconds histogram"]
            for endpoint, histogram in sorted(self.latency.items()):
                out += histogram.lines("minibert_request_duration_seconds", f'endpoint="{endpoint}"')
            for name, histogram, text in (("batch_size", self.batch_size, "Texts per model call."),
                                          ("batch_tokens", self.batch_tokens, "Tokens per model call."),
                                          ("batch_duration_seconds", self.batch_seconds, "Time per model call.")):
                out += [f"# HELP minibert_{name} {text}", f"# TYPE minibert_{name} histogram"]
                out += histogram.lines(f"minibert_{name}")
        for name, (text, read) in self.gauges.items():
            out += [f"# HELP minibert_{name} {text}", f"# TYPE minibert_{name} gauge", f"minibert_{name} {read()}"]
        return "\n".join(out) + "\n"
