"""`minibert serve`: an HTTP server for embeddings, classification and reranking (docs/serve.md).

It speaks text-embeddings-inference's API (POST /embed, /predict, /rerank; GET /health, /info) and
OpenAI's POST /v1/embeddings, and reports GET /metrics in Prometheus' format. Concurrent requests are
queued and run together by a token budget through the padding-free fast path (batching.py); app.py holds
the routes, the validation and the limits, backend.py the model, metrics.py the counters.

This module needs nothing beyond the core install, so the command line can describe the command and name
the extra it needs (Starlette and uvicorn: pip install "bert-miniatures-numpy[serve]").
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

INSTALL = 'pip install "bert-miniatures-numpy[serve]"'


@dataclass
class Settings:
    """What a server was started with; the defaults are text-embeddings-inference's."""

    model: str
    max_batch_tokens: int = 16384  # tokens per model call
    max_client_batch_size: int = 32  # inputs per request
    max_concurrent_requests: int = 512  # requests admitted at once (read, queued or running); past it: 429
    max_body_bytes: int = 2_000_000  # request body size; past it: 413
    auto_truncate: bool = False  # cut long inputs when a request does not say "truncate"
    threads: int | None = None  # the model's threads (BLAS and Numba); None: all cores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `minibert serve` (besides --model)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                        "computer only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8080, help="default 8080")
    limits = {"max_batch_tokens": "tokens per model call", "max_client_batch_size": "inputs per request; more: 422",
              "max_concurrent_requests": "requests admitted at once; more: 429",
              "max_body_bytes": "request body size; larger: 413"}
    for field in dataclasses.fields(Settings):
        if field.name in limits:
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default,
                                help=f"{limits[field.name]} (default {field.default})")
    parser.add_argument("--threads", type=int, help="threads the model computes with (BLAS and the Numba kernels; "
                        "default: all cores). On a CPU shared with other busy processes, 1 can be much faster")
    parser.add_argument("--auto-truncate", action="store_true",
                        help='cut inputs longer than the model\'s window unless a request sends "truncate": false '
                        "(default: such inputs are an error unless it sends true)")


def settings_from(args: argparse.Namespace) -> Settings:
    for name in ("port", "max_batch_tokens", "max_client_batch_size", "max_concurrent_requests", "max_body_bytes"):
        if getattr(args, name) < (0 if name == "port" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be {'0 or more' if name == 'port' else 'positive'}, "
                             f"got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be positive, got {args.threads}")
    return Settings(args.model, args.max_batch_tokens, args.max_client_batch_size, args.max_concurrent_requests,
                    args.max_body_bytes, args.auto_truncate, args.threads)
