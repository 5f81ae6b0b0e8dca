"""`minibert serve` under load, on 127.0.0.1 only, with all-MiniLM-L6-v2: throughput, latency, overload, bad requests.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_serve.py [--rounds 2] [--threads N]

1. Throughput: 1, 8 and 64 concurrent clients, each sending one sentence per request (a fixed number of
   requests per level, at most --seconds each), against SentenceEncoder.encode on the same sentences in
   this process; the two interleaved, --rounds times. Texts/s, their ratio, client-side p50 / p99 latency;
   every answer is checked against encode's.
2. Past capacity: a server admitting 8 requests at once, 64 clients: every answer is 200 or 429, never an
   error, and the server's resident memory (RSS) stays flat.
3. Robustness: a fixed corpus of bad requests (malformed JSON, wrong types, bodies over the limit with and
   without Content-Length, a 10 MB string, invalid UTF-8, deep nesting, empty lists, clients that leave
   mid-body or while queued) sent while 8 clients load the server: each gets its 4xx (or, for those that
   leave, nothing), each good request its right answer, and the RSS is back to its baseline afterwards.

The server runs in its own process (python -m minibert serve), the clients in threads of this one.
--threads N gives the server and the in-process baseline the same thread count (default: all cores).
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minibert.fast import set_num_threads  # noqa: E402
from minibert.tasks import SentenceEncoder  # noqa: E402
from tests.fixtures.cases import minilm_dir  # noqa: E402

SUBJECTS = ["the weather", "a football match", "the stock market", "a new phone", "the river", "an old song",
            "the city council", "a mountain trail"]
TEXTS = [f"Sentence {i} says something short about {SUBJECTS[i % 8]}{' and why it matters' * (i % 3)}."
         for i in range(512)]
LEVELS = {1: 64, 8: 192, 64: 384}  # concurrent clients: requests sent


def proc_field(path: str, name: str) -> str:
    """The value of `name:` in a /proc file."""
    with open(path) as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith(name)), "unknown")


def rss_mb(pid: int) -> float:
    return int(proc_field(f"/proc/{pid}/status", "VmRSS").split()[0]) / 1024


class Server:
    """python -m minibert serve in a child process, on a free port of 127.0.0.1."""

    def __init__(self, model: str, *options: str) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.process = subprocess.Popen([sys.executable, "-m", "minibert", "serve", "--model", model,
                                         "--port", str(self.port), *options], cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                if request(self.port, "GET", "/health", None)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)

    def rss(self) -> float:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def request(port: int, method: str, path: str, body, connection=None, headers=None):
    """(status, parsed answer) of one request; body: bytes as they are, else JSON."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    raw = response.read()
    if own:
        connection.close()
    is_json = response.getheader("content-type", "").startswith("application/json")
    return response.status, json.loads(raw) if raw and is_json else raw


def load(port: int, texts: list[str], clients: int, seconds: float):
    """clients threads, each on its own keep-alive connection, sending the texts one per request (shared,
    in order) for at most `seconds`: (statuses, latencies of the 200s, {index: embedding}, elapsed)."""
    lock, cursor = threading.Lock(), iter(range(len(texts)))
    statuses, latencies, answers = Counter(), [], {}
    stop_at = time.perf_counter() + seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop_at:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            began = time.perf_counter()
            try:
                status, answer = request(port, "POST", "/embed", {"inputs": texts[i]}, connection)
            except (OSError, http.client.HTTPException):
                status, answer = "connection error", None
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(time.perf_counter() - began)
                    answers[i] = answer[0]
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, latencies, answers, time.perf_counter() - began


def wrong_answers(answers: dict, expected: np.ndarray) -> int:
    return sum(float(np.abs(np.asarray(v) - expected[i]).max()) > 1e-6 for i, v in answers.items())


def throughput(server: Server, encoder: SentenceEncoder, rounds: int, seconds: float) -> None:
    expected = encoder.encode(TEXTS, normalize_embeddings=True)
    print(f"{'clients':>7} {'requests':>8} {'server texts/s':>15} {'encode texts/s':>15} {'ratio':>6} "
          f"{'p50 ms':>8} {'p99 ms':>8}  wrong answers / errors")
    for r in range(rounds):
        for clients, count in LEVELS.items():
            texts = TEXTS[:count]
            began = time.perf_counter()
            encoder.encode(texts)  # the baseline: one process, encode's own batching (32, longest first)
            direct = count / (time.perf_counter() - began)
            statuses, latencies, answers, elapsed = load(server.port, texts, clients, seconds)
            served = len(answers) / elapsed
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            errors = sum(n for status, n in statuses.items() if status != 200)
            print(f"{clients:>7} {len(answers):>8} {served:>15.1f} {direct:>15.1f} {served / direct:>6.2f} "
                  f"{p50:>8.1f} {p99:>8.1f}  {wrong_answers(answers, expected)} / {errors}   (round {r + 1})")


def past_capacity(model: str, seconds: float, options: tuple[str, ...]) -> None:
    server = Server(model, "--max-concurrent-requests", "8", *options)
    try:
        load(server.port, TEXTS[:32], 8, seconds)  # warm up
        before, peak, done = server.rss(), [0.0], threading.Event()

        def sample():
            while not done.wait(0.1):
                peak[0] = max(peak[0], server.rss())

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses, latencies, answers, elapsed = load(server.port, TEXTS[:384], 64, seconds)
        done.set()
        sampler.join()
        print(f"64 clients, --max-concurrent-requests 8: {dict(statuses)} in {elapsed:.1f} s "
              f"({len(answers) / elapsed:.1f} texts/s answered, p50 {np.percentile(latencies, 50) * 1000:.0f} ms); "
              f"RSS {before:.0f} MB before, {peak[0]:.0f} MB at most, {server.rss():.0f} MB after")
    finally:
        server.stop()


def raw_exchange(port: int, head: bytes, chunks, close_early: bool = False) -> bytes:
    """Send a request by hand (head, then chunks); return the answer's first bytes (b"" if the server sent
    none, or close_early: leave after sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        if close_early:
            return b""
        try:
            return sock.recv(256)
        except ConnectionResetError:
            return b""


def chunked(total: int, size: int = 1 << 16):
    for _ in range(total // size):
        yield b"%x\r\n%s\r\n" % (size, b"x" * size)
    yield b"0\r\n\r\n"


def bad_requests(port: int) -> list[tuple[str, object, object]]:
    """(what, expected status, got) for each bad request of the corpus, sent one after another."""
    def post(body):
        return request(port, "POST", "/embed", body)[0]

    head = b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    cases = [
        ("malformed JSON", 422, lambda: post(b'{"inputs": ["a",')),
        ("wrong type", 422, lambda: post({"inputs": 5})),
        ("wrong field type", 422, lambda: post({"inputs": "a", "normalize": "yes"})),
        ("not an object", 422, lambda: post(b'"just a string"')),
        ("invalid UTF-8", 422, lambda: post(b'{"inputs": "\xc3\x28\xff"}')),
        ("deep nesting, 1 MB", 422, lambda: post(b"[" * 1_000_000)),
        ("empty list", 400, lambda: post({"inputs": []})),
        ("33 inputs", 422, lambda: post({"inputs": ["a"] * 33})),
        ("input past the window", 422, lambda: post({"inputs": "word " * 300})),
        ("10 MB string (Content-Length)", b"HTTP/1.1 413", lambda: raw_exchange(
            port, head + b"Content-Length: 10000013\r\n\r\n", [b'{"inputs": "' + b"x" * 10_000_000 + b'"}'])[:12]),
        ("3 MB chunked, no Content-Length", b"HTTP/1.1 413",
         lambda: raw_exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n", chunked(3_000_000))[:12]),
        ("leaves mid-body", b"", lambda: raw_exchange(port, head + b"Content-Length: 100000\r\n\r\n", [b'{"inputs": '],
                                                      close_early=True)),
        ("leaves while queued", b"", lambda: raw_exchange(port, head + b"Content-Length: 21\r\n\r\n",
                                                          [b'{"inputs": "a b c d"}'], close_early=True)),
        ("unknown route", 404, lambda: request(port, "POST", "/embeddings", {"inputs": "a"})[0]),
        ("lone surrogate, NUL (valid)", 200, lambda: post(b'{"inputs": ["\\ud800 x \\u0000 y"]}')),
        ("1.9 MB string, truncate (valid)", 200, lambda: post({"inputs": "word " * 380_000, "truncate": True})),
    ]
    return [(what, expected, run()) for what, expected, run in cases]


def robustness(server: Server, encoder: SentenceEncoder, seconds: float, repeats: int = 3) -> None:
    expected = encoder.encode(TEXTS, normalize_embeddings=True)
    time.sleep(1)
    baseline = server.rss()
    results, finished = [], threading.Event()

    def bad():
        for _ in range(repeats):
            results.extend(bad_requests(server.port))
        finished.set()

    sender = threading.Thread(target=bad)
    sender.start()
    statuses, _, answers, _ = load(server.port, TEXTS, 8, seconds)
    sender.join()
    failures = [(what, want, got) for what, want, got in results if want != got]
    print(f"{len(results)} bad requests ({len(results) // repeats} kinds x {repeats}) during a load of 8 clients: "
          f"{len(results) - len(failures)} answered as expected" + (f"; NOT: {failures}" if failures else ""))
    print(f"good requests: {dict(statuses)}, {wrong_answers(answers, expected)} wrong answers of {len(answers)}")
    time.sleep(2)
    health = request(server.port, "GET", "/health", None)[0]
    print(f"health afterwards: {health}; RSS {baseline:.0f} MB before, {server.rss():.0f} MB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (default 2)")
    parser.add_argument("--seconds", type=float, default=60, help="time limit of each load (default 60)")
    parser.add_argument("--threads", type=int, help="the model's threads, server and baseline (default: all cores)")
    args = parser.parse_args()
    options = () if args.threads is None else ("--threads", str(args.threads))
    if args.threads is not None:
        set_num_threads(args.threads)
    model = str(minilm_dir())
    print(f"CPU: {proc_field('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores; model threads: "
          f"{args.threads or 'all cores'}; all-MiniLM-L6-v2; single-sentence requests to /embed")
    encoder = SentenceEncoder.from_pretrained(model)
    encoder.encode(TEXTS[:64])  # warm up
    server = Server(model, *options)
    try:
        load(server.port, TEXTS[:64], 8, args.seconds)  # warm up
        print("\n1. throughput (texts/s) and latency, server vs SentenceEncoder.encode in one process")
        throughput(server, encoder, args.rounds, args.seconds)
        print("\n2. past capacity")
        past_capacity(model, args.seconds, options)
        print("\n3. robustness: bad requests during a load")
        robustness(server, encoder, args.seconds)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
