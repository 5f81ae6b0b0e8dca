"""A one-line progress count on stderr, for long inputs (the command line and SentenceEncoder.encode)."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], label: str, show: bool) -> Iterator[T]:
    """Yield `items`, rewriting "label i/n" on stderr as each one starts when `show`."""
    items = list(items)
    for i, item in enumerate(items):
        if show:
            print(f"\r{label} {i + 1}/{len(items)}", end="", file=sys.stderr, flush=True)
        yield item
    if show and items:
        print(file=sys.stderr)
