"""minibert serve: a real server on 127.0.0.1 (uvicorn in a thread, a free port), asked with a real HTTP client.

Every endpoint's answer is compared with the direct call it stands for (SentenceEncoder.encode, classify,
CrossEncoder.rank), and every limit and error gets its status code. Queue behaviour (429, a client that goes
away, requests batched together and split) is checked deterministically with a gate in front of the model.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason='needs the serve extra: pip install "bert-miniatures-numpy[serve]"')
uvicorn = pytest.importorskip("uvicorn", reason='needs the serve extra: pip install "bert-miniatures-numpy[serve]"')

from minibert.serve import Settings  # noqa: E402 (after the importorskip)
from minibert.serve.app import create_app  # noqa: E402 (after the importorskip)
from minibert.serve.backend import Backend  # noqa: E402 (after the importorskip)
from minibert.tasks import CrossEncoder, classify  # noqa: E402 (after the importorskip)
from tests.fixtures.cases import FIXTURES  # noqa: E402 (after the importorskip)


class Running:
    """A server for `backend` in a thread, on a socket bound here (so the port is free and ours)."""

    def __init__(self, backend: Backend, **settings) -> None:
        self.app = create_app(backend, Settings(model="test-model", **settings))
        self.state = self.app.state.server
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def call(self, path: str, body=None, method: str = "POST", headers: dict | None = None):
        """(status, parsed JSON or text) of one request; body: bytes as they are, anything else as JSON."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        kind = response.getheader("content-type", "")
        return response.status, json.loads(raw) if kind.startswith("application/json") and raw else raw.decode()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def head_fixture(tmp_path_factory, name):
    directory = tmp_path_factory.mktemp(name)
    shutil.copytree(FIXTURES / "heads" / name, directory, dirs_exist_ok=True)
    shutil.copy(FIXTURES / "checkpoints" / "zip" / "vocab.txt", directory)
    return directory


@pytest.fixture(scope="module")
def embedder(minilm_path):
    running = Running(Backend(str(minilm_path), 16384))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    return head_fixture(tmp_path_factory, "sequence-single")  # 3 labels, a window of 16 tokens


@pytest.fixture(scope="module")
def classifier(classifier_path):
    running = Running(Backend(str(classifier_path), 64), max_client_batch_size=8)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reranker(tmp_path_factory):
    running = Running(Backend(str(head_fixture(tmp_path_factory, "sequence-regression")), 64))  # one label
    yield running
    running.stop()


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# ---- answers equal to direct calls ----------------------------------------------------------------------

TEXTS = ["The cat sits on the mat.", "Stock markets fell sharply today.", "¿Dónde está la biblioteca?", "",
         "BERT " * 300,  # longer than all-MiniLM-L6-v2's 256 tokens
         "Ünïcode\twords,\u3000spaces\x1c and\u00a0more: " * 400,  # long enough to be tokenized in pieces
         ("word" + " " * 1000) * 300]  # 4 words a piece: the window's tokens come from some 60 pieces


def test_embed_equals_encode(embedder):
    encoder = embedder.state.backend.encoder
    status, answer = embedder.call("/embed", {"inputs": TEXTS, "truncate": True})
    assert status == 200
    diff = max_diff(answer, encoder.encode(TEXTS, normalize_embeddings=True))
    print(f"/embed vs SentenceEncoder.encode, {len(TEXTS)} texts: max abs diff {diff:.1e}")
    assert diff <= 1e-6
    status, answer = embedder.call("/embed",
                                   {"inputs": TEXTS[0], "normalize": False, "dimensions": 64, "prompt_name": "query"})
    assert status == 200 and len(answer) == 1 and len(answer[0]) == 64
    assert max_diff(answer[0], encoder.encode(TEXTS[0], truncate_dim=64, prompt_name="query")) <= 1e-6


def test_openai_embeddings_equal_encode(embedder):
    encoder = embedder.state.backend.encoder
    expected = encoder.encode(TEXTS[:4], normalize_embeddings=True)
    status, floats = embedder.call("/v1/embeddings", {"input": TEXTS[:4], "model": "anything"})
    assert status == 200 and floats["object"] == "list" and floats["model"] == "test-model"
    assert [d["index"] for d in floats["data"]] == [0, 1, 2, 3] and floats["data"][0]["object"] == "embedding"
    assert max_diff([d["embedding"] for d in floats["data"]], expected) <= 1e-6
    tokens = sum(len(encoder.tokenizer(t)["input_ids"]) for t in TEXTS[:4])
    assert floats["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    status, packed = embedder.call("/v1/embeddings", {"input": TEXTS[:4], "encoding_format": "base64"})
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in packed["data"]]
    assert status == 200 and np.array_equal(decoded, np.array([d["embedding"] for d in floats["data"]], np.float32))


def test_predict_equals_classify(classifier):
    model, tokenizer = classifier.state.backend.model, classifier.state.backend.tokenizer
    expected = classify(model, tokenizer, ["w1 w2 w3", "w4", "w5 w6"])
    status, single = classifier.call("/predict", {"inputs": "w1 w2 w3"})
    assert status == 200 and [p["label"] for p in single] == sorted(expected[0]["scores"],
                                                                    key=lambda k: -expected[0]["scores"][k])
    assert max(abs(p["score"] - expected[0]["scores"][p["label"]]) for p in single) <= 1e-6
    pair = classify(model, tokenizer, ["w4"], ["w7 w8"])[0]["scores"]
    status, answer = classifier.call("/predict", {"inputs": [["w1 w2 w3"], ["w4", "w7 w8"], ["w5 w6"]]})
    assert status == 200 and len(answer) == 3
    for predictions, scores in zip(answer, [expected[0]["scores"], pair, expected[2]["scores"]]):
        assert {p["label"]: p["score"] for p in predictions} == pytest.approx(scores, abs=1e-6)
        assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
    status, as_pair = classifier.call("/predict", {"inputs": ["w4", "w7 w8"]})  # one pair, not a batch
    assert status == 200 and {p["label"]: p["score"] for p in as_pair} == pytest.approx(pair, abs=1e-6)
    status, raw = classifier.call("/predict", {"inputs": "w4", "raw_scores": True})
    logits = model(**tokenizer("w4", return_tensors="np")).logits[0]
    assert status == 200 and {p["label"]: p["score"] for p in raw} == pytest.approx(
        dict(zip(model.config.id2label.values(), logits.tolist())), abs=1e-6)


def test_rerank_equals_cross_encoder(reranker):
    backend = reranker.state.backend
    cross_encoder = CrossEncoder(backend.model, backend.tokenizer)
    texts = ["w1 w2 w3", "w4", "w5 w6 w7 w8", "w9 w10", "w1 w2 w3"]
    expected = cross_encoder.rank("w11 w12", texts)
    status, answer = reranker.call("/rerank", {"query": "w11 w12", "texts": texts, "return_text": True})
    assert status == 200 and [r["index"] for r in answer] == [r["corpus_id"] for r in expected]
    assert max_diff([r["score"] for r in answer], [r["score"] for r in expected]) <= 1e-6
    assert [r["text"] for r in answer] == [texts[r["index"]] for r in answer]
    status, raw = reranker.call("/rerank", {"query": "w11 w12", "texts": texts[:2], "raw_scores": True})
    logits = backend.model(**backend.tokenizer(["w11 w12"] * 2, texts[:2], padding=True, return_tensors="np")).logits[:,
                                                                                                                      0]
    assert status == 200 and "text" not in raw[0] and max_diff([r["score"]
                                                                for r in sorted(raw, key=lambda r: r["index"])],
                                                               logits) <= 1e-6
    status, predicted = reranker.call("/predict", {"inputs": ["w11 w12", "w4"]})  # a reranker classifies too
    assert status == 200 and predicted[0]["label"] == "LABEL_0"


def test_health_info_and_metrics(classifier):
    assert classifier.call("/health", method="GET") == (200, "")
    status, info = classifier.call("/info", method="GET")
    assert status == 200 and info["model_type"] == {"classifier": {
        "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
        "label2id": {"negative": 0, "neutral": 1, "positive": 2}}}
    assert info["max_input_length"] == 16 and info["max_client_batch_size"] == 8 and info["max_batch_tokens"] == 64
    classifier.call("/predict", {"inputs": "w1"})
    classifier.call("/predict", {"inputs": 1})
    status, text = classifier.call("/metrics", method="GET")
    assert status == 200
    for line in ('minibert_requests_total{endpoint="/predict",status="200"}',
                 'minibert_requests_total{endpoint="/predict",status="422"}',
                 'minibert_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"}', "minibert_batch_size_count",
                 "minibert_batch_tokens_bucket", "minibert_queue_size 0", "minibert_requests_in_flight 0"):
        assert line in text, line


# ---- limits and errors ----------------------------------------------------------------------------------

ERRORS = [  # path, body (bytes as sent), status, error_type, what the message says
    ("/embed", {"inputs": ["a"] * 33}, 422, "validation", "batch size 33 > maximum allowed batch size 32"),
    ("/embed", {"inputs": ["short", "BERT " * 300]}, 422, "validation",
     "input 1 has 302 tokens, more than the model's limit of 256"),
    ("/embed", {"inputs": TEXTS[-2]}, 422, "validation", "input 0 has 2802 tokens, more than the model's limit of 256"),
    ("/embed", b'{"inputs": ["a",', 422, "validation", "the body is not valid JSON"),
    ("/embed", b'{"inputs": "\xff\xfe"}', 422, "validation", "the body is not valid JSON"),
    ("/embed", b"[" * 100_000, 422, "validation", "the body is not valid JSON"),
    ("/embed", [1, 2], 422, "validation", "the body must be a JSON object, got array"),
    ("/embed", {"inputs": {"text": "a"}}, 422, "validation",
     "`inputs` must be a string or a list of strings, got object"),
    ("/embed", {"input": "a"}, 422, "validation", "`inputs` must be a string or a list of strings, got null"),
    ("/embed", {"inputs": ["a", 3]}, 422, "validation", "`inputs[1]` must be a string, got number"),
    ("/embed", {"inputs": "a", "normalize": "yes"}, 422, "validation", "`normalize` must be boolean, got string"),
    ("/embed", {"inputs": "a", "truncate": 1}, 422, "validation", "`truncate` must be boolean, got number"),
    ("/embed", {"inputs": "a", "dimensions": 0}, 422, "validation", "`dimensions` must be positive, got 0"),
    ("/embed", {"inputs": "a", "prompt_name": "nope"}, 422, "validation",
     "prompt_name 'nope' is not among the prompts"),
    ("/embed", {"inputs": []}, 400, "empty", "`inputs` cannot be empty"),
    ("/embed", b'{"inputs": "' + b"x" * 2_000_000 + b'"}', 413, "validation", "larger than the limit of 2000000 bytes"),
    ("/predict", {"inputs": "a"}, 424, "backend", "model is not a classifier model"),
    ("/rerank", {"query": "a", "texts": ["b"]}, 424, "backend", "model is not a re-ranker model"),
]


@pytest.mark.parametrize("path, body, status, error_type, message", ERRORS)
def test_errors_are_named_with_their_status(embedder, path, body, status, error_type, message):
    got, answer = embedder.call(path, body)
    assert (got, answer["error_type"]) == (status, error_type) and message in answer["error"], answer


def test_errors_of_the_other_routes(embedder, classifier, reranker):
    status, answer = embedder.call("/v1/embeddings", {"input": "a", "encoding_format": "int8"})  # OpenAI's error shape
    assert status == 422 and answer == {"message": '`encoding_format` must be "float" or "base64", got \'int8\'',
                                        "code": 422, "type": "validation"}
    assert embedder.call("/v1/embeddings",
                         {"input": [[1, 2]]})[1]["message"] == "`input[0]` must be a string, got array"
    for body, message in (({"inputs": [["a", "b", "c"]]}, "`inputs[0]` must be a string, a pair"),
                          ({"inputs": ["a", 2]}, "`inputs` must be a string, a pair"),
                          ({"inputs": [["a"]] * 9}, "batch size 9 > maximum allowed batch size 8"),
                          ({"inputs": "w1 " * 20}, "input 0 has 22 tokens, more than the model's limit of 16")):
        status, answer = classifier.call("/predict", body)
        assert status == 422 and message in answer["error"], answer
    assert classifier.call("/predict", {"inputs": "w1 " * 20, "truncate": True})[0] == 200
    for body, status, message in (({"query": "a", "texts": []}, 400, "`texts` cannot be empty"),
                                  ({"query": 1, "texts": ["a"]}, 422, "`query` must be a string, got number"),
                                  ({"query": "a", "texts": "b"}, 422, "`texts` must be a list of strings, got string"),
                                  ({"query": "a", "texts": ["w1 " * 20]}, 422, "input 0 has 24 tokens")):
        got, answer = reranker.call("/rerank", body)
        assert got == status and message in answer["error"], answer
    assert embedder.call("/embed", method="GET")[0] == 405


def test_a_body_over_the_limit_is_refused_while_it_is_read(embedder):
    """Chunked (no Content-Length): the server answers 413 once 2 MB have come, without waiting for the rest."""
    with socket.create_connection(("127.0.0.1", embedder.port), timeout=30) as sock:
        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < 50_000_000:  # far more than the limit; the server stops reading long before
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                sock.settimeout(0.0)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                sock.settimeout(30)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(30)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413") and sent < 10_000_000, (answer[:100], sent)
    assert embedder.call("/health", method="GET")[0] == 200


def test_inputs_that_could_hurt_the_server_get_answers(embedder):
    """Lone surrogates, control characters, a string of 500 kB: answers, and the server stays up."""
    status, answer = embedder.call("/embed", b'{"inputs": ["\\ud800 a \\u0000 b", "\\u200b"]}')
    assert status == 200 and len(answer) == 2
    status, answer = embedder.call("/embed", {"inputs": "word " * 100_000, "truncate": True})
    assert status == 200 and len(answer[0]) == 384
    assert embedder.call("/health", method="GET")[0] == 200


# ---- the queue ------------------------------------------------------------------------------------------

class Gate:
    """Stands in front of a backend's run: records each call's rows and holds it until opened."""

    def __init__(self, backend: Backend) -> None:
        self.run, self.calls, self.opened, self.entered = backend.run, [], threading.Event(), threading.Semaphore(0)
        backend.run = self

    def __call__(self, rows, extras):
        self.calls.append(rows)
        self.entered.release()
        self.opened.wait(30)
        return self.run(rows, extras)


def post_in_thread(running: Running, path: str, body) -> dict:
    result = {}
    thread = threading.Thread(target=lambda: result.update(answer=running.call(path, body)), daemon=True)
    thread.start()
    result["thread"] = thread
    return result


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture
def gated(classifier_path):
    backend = Backend(str(classifier_path), 40)
    gate = Gate(backend)
    running = Running(backend, max_concurrent_requests=3)
    yield running, gate
    gate.opened.set()
    running.stop()


def test_full_queue_answers_429_and_batches_run_together(gated):
    running, gate = gated
    first = post_in_thread(running, "/predict", {"inputs": "w1 w2"})
    assert gate.entered.acquire(timeout=10)  # the model holds the first request
    waiting = [post_in_thread(running, "/predict", {"inputs": [[f"w{i}"], [f"w{i} w3"]]}) for i in (4, 5)]
    wait_until(lambda: running.state.batcher.waiting == 4)
    status, answer = running.call("/predict", {"inputs": "w6"})  # a fourth request: past max_concurrent_requests
    assert (status, answer) == (429, {"error": "Model is overloaded", "error_type": "overloaded"})
    gate.opened.set()
    for request in (first, *waiting):
        request["thread"].join(10)
        assert request["answer"][0] == 200
    assert [len(rows) for rows in gate.calls] == [1, 4]  # the two waiting requests ran in one call
    assert running.call("/predict", {"inputs": "w6"})[0] == 200


def test_a_request_is_split_across_calls_and_reassembled_in_order(gated):
    running, gate = gated
    gate.opened.set()
    inputs = [[" ".join(f"w{j}" for j in range(1, 2 + i % 9))] for i in range(8)]  # rows of 3 to 11 tokens
    status, answer = running.call("/predict", {"inputs": inputs})
    assert status == 200 and len(gate.calls) > 1 and all(sum(map(len, rows)) <= 40 for rows in gate.calls)
    backend = running.state.backend
    expected = classify(backend.model, backend.tokenizer, [text for text, in inputs])
    for predictions, result in zip(answer, expected):
        assert {p["label"]: p["score"] for p in predictions} == pytest.approx(result["scores"], abs=1e-6)


def test_a_client_that_went_away_is_dropped_from_the_queue(gated):
    running, gate = gated
    first = post_in_thread(running, "/predict", {"inputs": "w1 w2"})
    assert gate.entered.acquire(timeout=10)
    gone = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    gone.request("POST", "/predict", body=json.dumps({"inputs": [["w7"], ["w8"], ["w9"]]}).encode(),
                 headers={"Content-Type": "application/json"})
    wait_until(lambda: running.state.batcher.waiting == 3)
    gone.sock.close()  # the client leaves before its answer
    wait_until(lambda: running.state.batcher.waiting == 0 and running.state.in_flight == 1)
    gate.opened.set()
    first["thread"].join(10)
    assert first["answer"][0] == 200 and [len(rows) for rows in gate.calls] == [1]  # its rows never ran
    _, metrics = running.call("/metrics", method="GET")
    assert 'minibert_requests_total{endpoint="/predict",status="499"} 1' in metrics


def test_serve_refuses_settings_it_cannot_keep(classifier_path, capsys):
    from minibert.cli import main

    assert main(["serve", "--model", str(classifier_path), "--max-body-bytes", "0"]) == 1
    assert capsys.readouterr().err.strip() == "minibert serve: error: --max-body-bytes must be positive, got 0"
    assert main(["serve", "--model", str(classifier_path), "--max-batch-tokens", "8"]) == 1
    assert capsys.readouterr().err.strip() == ("minibert serve: error: --max-batch-tokens (8) must be at least the "
                                               "model's longest input (16 tokens)")


def test_serve_without_the_extra_names_the_install_command():
    code = ("import sys; sys.modules['uvicorn'] = None; from minibert.cli import main; "
            "sys.exit(main(['serve', '--model', 'any']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stderr.strip() == (
        'minibert serve: error: needs uvicorn, from the serve extra: pip install "bert-miniatures-numpy[serve]"')


# ---- slow: the command line, and a load ----------------------------------------------------------------

@pytest.mark.slow
def test_the_command_starts_a_server(classifier_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen([sys.executable, "-m", "minibert", "serve", "--model", str(classifier_path), "--port",
                                str(port), "--max-batch-tokens", "64"], stdout=subprocess.PIPE, text=True)
    try:
        assert "on http://127.0.0.1:" in process.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("POST", "/predict", body=b'{"inputs": "w1 w2"}')
                response = connection.getresponse()
                break
            except ConnectionRefusedError:  # uvicorn is not listening yet
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status == 200 and len(json.loads(response.read())) == 3
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_concurrent_clients_get_their_own_answers(embedder):
    """64 clients, 4 requests each of one sentence (bounded: 256 requests): every answer is encode's."""
    texts = [f"Sentence number {i} is about {['cats', 'stocks', 'rivers', 'music'][i % 4]}." for i in range(256)]
    expected = embedder.state.backend.encoder.encode(texts, normalize_embeddings=True)
    answers = [None] * len(texts)

    def client(k):
        for i in range(k, len(texts), 64):
            answers[i] = embedder.call("/embed", {"inputs": texts[i]})

    threads = [threading.Thread(target=client, args=(k,)) for k in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert all(status == 200 for status, _ in answers)
    diff = max_diff([answer[0] for _, answer in answers], expected)
    print(f"64 concurrent clients, 256 sentences: max abs diff to encode {diff:.1e}")
    assert diff <= 1e-6
