"""The HTTP side: routes, request validation, limits and error answers, as text-embeddings-inference gives them.

Every POST goes through Server.post: admission (at most max_concurrent_requests at once, else 429), the
body read in chunks up to max_body_bytes (413 as soon as it passes, whatever Content-Length said), JSON
parsed (422 naming the problem), the fields checked (422 naming the field), the texts tokenized off the
event loop, their rows queued for the model (batching.py) while watching for the client to go away (its
rows are then dropped). Errors are {"error", "error_type"} (OpenAI's route: {"message", "code", "type"});
anything unexpected is a 500 for that request only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..fast import set_num_threads
from ..tasks import label_scores
from . import Settings
from .backend import Backend
from .batching import Batcher
from .metrics import Metrics

log = logging.getLogger("minibert.serve")
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
              type(None): "null"}
NOT_SERVED = {"embedding": "an embedding", "classifier": "a classifier", "reranker": "a re-ranker"}


class ApiError(Exception):
    """An answer other than 200: status, message, and TEI's error_type (validation, empty, overloaded, backend)."""

    def __init__(self, status: int, message: str, error_type: str = "validation") -> None:
        super().__init__(message)
        self.status, self.message, self.error_type = status, message, error_type

    def body(self, openai: bool) -> dict[str, Any]:
        if openai:
            return {"message": self.message, "code": self.status, "type": self.error_type}
        return {"error": self.message, "error_type": self.error_type}


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


def json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


class Server:
    """One model behind the routes of create_app, with its queue, limits and metrics."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend, self.settings = backend, settings
        self.in_flight = 0  # requests admitted and not yet answered
        self.tokenizing = ThreadPoolExecutor(2, thread_name_prefix="minibert-tokenize")
        self.metrics = Metrics({"queue_size": ("Texts waiting for the model.", lambda: self.batcher.waiting),
                                "requests_in_flight": ("Requests admitted and not yet answered.",
                                                       lambda: self.in_flight)})
        threads = None if settings.threads is None else lambda: set_num_threads(settings.threads)
        self.batcher = Batcher(backend.run, backend.max_batch_tokens, self.metrics.batch, threads)

    # ---- the request cycle ----------------------------------------------------------------------------------

    def post(self, handler: Callable[[Request, dict], Awaitable[Any]], openai: bool = False):
        """A POST route around handler(request, body) -> the JSON answer."""

        async def endpoint(request: Request) -> Response:
            began = time.perf_counter()
            try:
                if self.in_flight >= self.settings.max_concurrent_requests:
                    raise ApiError(429, "Model is overloaded", "overloaded")
                self.in_flight += 1
                try:
                    status, answer = 200, await handler(request, await self.read_json(request))
                finally:
                    self.in_flight -= 1
            except ApiError as error:
                status, answer = error.status, error.body(openai)
            except ClientGone:
                status, answer = 499, None  # nginx's code for it; nobody reads this answer
            except Exception as error:  # (a defect: logged, answered, the server stays up)
                log.exception("%s failed", request.url.path)
                status, answer = 500, ApiError(500, f"internal error: {type(error).__name__}", "backend").body(openai)
            try:
                content = json.dumps(answer, separators=(",", ":"), allow_nan=False)
            except ValueError:  # JSON has no NaN: TEI answers a NaN score with 424 too
                status, content = 424, json.dumps(ApiError(424, "the model's output holds NaN", "backend").body(openai))
            self.metrics.request(request.url.path, status, time.perf_counter() - began)
            return Response(content, status, media_type="application/json")

        return endpoint

    async def read_json(self, request: Request) -> dict:
        """The body as a JSON object, read no further than max_body_bytes."""
        limit = self.settings.max_body_bytes
        too_large = ApiError(413, f"the request body is larger than the limit of {limit} bytes")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone from None
        try:
            body = json.loads(b"".join(chunks))  # UTF-8 (or -16/-32, as JSON allows); invalid bytes: ValueError
        except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than the parser goes
            raise ApiError(422, f"the body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise ApiError(422, f"the body must be a JSON object, got {json_type(body)}")
        return body

    async def compute(self, request: Request, rows: list[list[int]], extras: list[Any]) -> np.ndarray:
        """The model's outputs for rows (see Backend.run), or ClientGone if the client leaves first."""
        task = asyncio.ensure_future(self.batcher.submit(rows, extras))
        gone = asyncio.ensure_future(disconnected(request))
        try:
            done, _ = await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not task.done():
                task.cancel()  # the client left (or the server is stopping): its rows leave the queue
        if task not in done:
            raise ClientGone
        try:
            return task.result()
        except Exception as error:  # (the model call failed: TEI's 424)
            log.exception("inference failed")
            raise ApiError(424, f"inference failed: {type(error).__name__}: {error}", "backend") from None

    async def rows(self, make: Callable, *args: Any) -> tuple[list, list]:
        """make(*args) (a Backend tokenizer) in a tokenizing thread: a long text does not hold up the event loop.
        Two threads, not a pool of dozens: tokenizing holds the GIL, and each thread that allocates for a large
        input keeps its own allocator arena (resident memory that would not come back)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.tokenizing, make, *args)
        except ValueError as error:  # an input too long, an unknown prompt name
            raise ApiError(422, str(error)) from None

    # ---- fields -----------------------------------------------------------------------------------------------

    def texts(self, body: dict, name: str) -> list[str]:
        """body[name]: a string or a non-empty list of at most max_client_batch_size strings."""
        value = body.get(name)
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise ApiError(422, f"`{name}` must be a string or a list of strings, got {json_type(value)}")
        self.check_count(name, value)
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise ApiError(422, f"`{name}[{i}]` must be a string, got {json_type(text)}")
        return value

    def check_count(self, name: str, values: list) -> None:
        if not values:
            raise ApiError(400, f"`{name}` cannot be empty", "empty")
        if len(values) > self.settings.max_client_batch_size:
            raise ApiError(422,
                           f"batch size {len(values)} > maximum allowed batch size "
                           f"{self.settings.max_client_batch_size}")

    @staticmethod
    def option(body: dict, name: str, kind: type, default: Any) -> Any:
        """body[name] of JSON type `kind` (bool, str, int), or default when absent or null."""
        value = body.get(name)
        if value is None:
            return default
        if type(value) is not kind:  # type(): true is not a number here
            raise ApiError(422, f"`{name}` must be {JSON_TYPES[kind]}, got {json_type(value)}")
        if kind is int and value < 1:
            raise ApiError(422, f"`{name}` must be positive, got {value}")
        return value

    def expect(self, *kinds: str) -> None:
        """TEI's answer to a route the model does not serve: 424."""
        if self.backend.kind not in kinds:
            raise ApiError(424, f"model is not {NOT_SERVED[kinds[0]]} model", "backend")

    # ---- routes -----------------------------------------------------------------------------------------------

    async def embeddings(self, request: Request, texts: list[str], truncate: bool, prompt_name: str | None,
                         normalize: bool, dimensions: int | None) -> tuple[np.ndarray, int]:
        """Embeddings [N, D] as SentenceEncoder.encode(texts, normalize_embeddings=normalize, prompt_name=...,
        truncate_dim=dimensions) gives them, and the tokens they took."""
        self.expect("embedding")
        rows, skips = await self.rows(self.backend.embedding_rows, texts, truncate, prompt_name)
        pooled = await self.compute(request, rows, skips)
        return self.backend.encoder.finish(pooled, normalize, dimensions), sum(map(len, rows))

    async def embed(self, request: Request, body: dict) -> list:
        """TEI's POST /embed: {"inputs": str | [str], "normalize": true, "truncate", "prompt_name", "dimensions"}
        -> [[float]], one embedding per input."""
        texts = self.texts(body, "inputs")
        vectors, _ = await self.embeddings(
            request, texts, self.option(body, "truncate", bool, self.settings.auto_truncate),
            self.option(body, "prompt_name", str, None), self.option(body, "normalize", bool, True),
            self.option(body, "dimensions", int, None))
        return vectors.tolist()

    async def openai_embeddings(self, request: Request, body: dict) -> dict:
        """OpenAI's POST /v1/embeddings: {"input": str | [str], "model", "encoding_format": "float" | "base64",
        "dimensions"} -> {"object": "list", "data": [{"object": "embedding", "embedding", "index"}], "model",
        "usage"}; base64: the little-endian float32 bytes."""
        texts = self.texts(body, "input")
        self.option(body, "model", str, None)  # any name: the server has one model
        encoding = self.option(body, "encoding_format", str, "float")
        if encoding not in ("float", "base64"):
            raise ApiError(422, f'`encoding_format` must be "float" or "base64", got {encoding!r}')
        vectors, tokens = await self.embeddings(request, texts, self.settings.auto_truncate, None, True,
                                                self.option(body, "dimensions", int, None))
        data = [{"object": "embedding", "index": i, "embedding": v.tolist() if encoding == "float" else
                 base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": self.settings.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def predict_inputs(self, body: dict) -> tuple[list[tuple[str, ...]], bool]:
        """TEI's "inputs" of /predict: a string, a pair [string, string], or a batch of [string] and [string,
        string]; as (texts or pairs, whether it was a batch)."""
        value = body.get("inputs")
        shape = "a string, a pair [string, string] or a list of [string] and [string, string]"
        if isinstance(value, str):
            return [(value,)], False
        if not isinstance(value, list):
            raise ApiError(422, f"`inputs` must be {shape}, got {json_type(value)}")
        self.check_count("inputs", value)
        if not isinstance(value[0], list):  # one input: [text] or [text, text]
            value, batch = [value], False
        else:
            batch = True
        for i, item in enumerate(value):
            if not (isinstance(item, list) and len(item) in (1, 2) and all(isinstance(t, str) for t in item)):
                raise ApiError(422, f"`inputs{f'[{i}]' if batch else ''}` must be {shape}")
        return [tuple(item) for item in value], batch

    async def predict(self, request: Request, body: dict) -> list:
        """TEI's POST /predict: {"inputs", "truncate", "raw_scores": false} -> per input, [{"label", "score"}]
        best first: classify's probabilities (softmax, sigmoid for multi-label, the value for regression),
        or the logits with raw_scores."""
        self.expect("classifier", "reranker")
        inputs, batch = self.predict_inputs(body)
        truncate = self.option(body, "truncate", bool, self.settings.auto_truncate)
        raw = self.option(body, "raw_scores", bool, False)
        logits = await self.compute(request, *await self.rows(self.backend.pair_rows, inputs, truncate))
        config = self.backend.model.config
        answers = []
        for row in logits:  # [num_labels]
            scores = dict(zip(config.id2label.values(), row.tolist())) if raw else label_scores(row, config)
            if "scores" in scores:
                scores = scores["scores"]
            elif "score" in scores:  # regression: one value
                scores = {config.id2label[0]: scores["score"]}
            answers.append(sorted(({"score": s, "label": label} for label, s in scores.items()),
                                  key=lambda p: -p["score"]))
        return answers if batch else answers[0]

    async def rerank(self, request: Request, body: dict) -> list:
        """TEI's POST /rerank: {"query", "texts", "truncate", "raw_scores": false, "return_text": false} ->
        [{"index", "score", ("text")}] best first, scored as CrossEncoder.predict scores the pairs."""
        self.expect("reranker")
        query = body.get("query")
        if not isinstance(query, str):
            raise ApiError(422, f"`query` must be a string, got {json_type(query)}")
        texts = body.get("texts")
        if not isinstance(texts, list):
            raise ApiError(422, f"`texts` must be a list of strings, got {json_type(texts)}")
        texts = self.texts(body, "texts")
        truncate = self.option(body, "truncate", bool, self.settings.auto_truncate)
        raw = self.option(body, "raw_scores", bool, False)
        return_text = self.option(body, "return_text", bool, False)
        pairs = [(query, text) for text in texts]
        logits = await self.compute(request, *await self.rows(self.backend.pair_rows, pairs, truncate))
        scores = (logits[:, 0] if raw else self.backend.cross_encoder.scores(logits)).tolist()  # [N, 1] -> [N]
        order = sorted(range(len(texts)), key=lambda i: -scores[i])  # stable: ties keep their order
        return [{"index": i, **({"text": texts[i]} if return_text else {}), "score": scores[i]} for i in order]

    async def health(self, request: Request) -> Response:
        if self.batcher.thread.is_alive():
            return Response(status_code=200)
        body = ApiError(503, "unhealthy", "unhealthy").body(openai=False)
        return Response(json.dumps(body), 503, media_type="application/json")

    async def info(self, request: Request) -> Response:
        """TEI's GET /info: the model and the limits."""
        config, kind = self.backend.model.config, self.backend.kind
        if kind == "embedding":
            model_type = {"embedding": {"pooling": "+".join(self.backend.encoder.pooling)}}
        else:
            labels = {str(i): label for i, label in config.id2label.items()}
            model_type = {kind: {"id2label": labels, "label2id": {label: int(i) for i, label in labels.items()}}}
        s = self.settings
        info = {"model_id": s.model, "model_sha": None, "model_dtype": np.dtype(self.backend.model.dtype).name,
                "model_type": model_type, "max_concurrent_requests": s.max_concurrent_requests,
                "max_input_length": self.backend.max_input_length, "max_batch_tokens": self.backend.max_batch_tokens,
                "max_batch_requests": None, "max_client_batch_size": s.max_client_batch_size,
                "auto_truncate": s.auto_truncate, "max_body_bytes": s.max_body_bytes, "version": __version__}
        return Response(json.dumps(info), media_type="application/json")

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def disconnected(request: Request) -> None:
    """Returns when the client closes the connection (after its body, the server sees nothing else from it)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(backend: Backend, settings: Settings) -> Starlette:
    """The ASGI application serving `backend`; its model thread stops when the application shuts down."""
    server = Server(backend, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.batcher.close()
        server.tokenizing.shutdown(wait=False)

    app = Starlette(routes=[
        Route("/embed", server.post(server.embed), methods=["POST"]),
        Route("/v1/embeddings", server.post(server.openai_embeddings, openai=True), methods=["POST"]),
        Route("/predict", server.post(server.predict), methods=["POST"]),
        Route("/rerank", server.post(server.rerank), methods=["POST"]),
        Route("/health", server.health), Route("/info", server.info), Route("/metrics", server.prometheus),
    ], lifespan=lifespan)
    app.state.server = server
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Load the model and answer on host:port until interrupted."""
    backend = Backend(settings.model, settings.max_batch_tokens)
    print(f"minibert serve: {settings.model} ({backend.kind}, inputs up to {backend.max_input_length} tokens) "
          f"on http://{host}:{port}", flush=True)
    uvicorn.run(create_app(backend, settings), host=host, port=port, log_level="warning", access_log=False)
