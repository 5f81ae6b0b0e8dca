"""The model behind the server: what it answers, its inputs as token rows, and one model call on rows.

As text-embeddings-inference decides it, from config.json's architectures: a *ForSequenceClassification
model is a classifier (POST /predict), and with one label a reranker too (POST /rerank, a cross-encoder);
any other model is a sentence embedder (POST /embed, /v1/embeddings) read as sentence-transformers reads it.
Texts are tokenized exactly as SentenceEncoder.encode, classify and CrossEncoder tokenize them, so the
server's answers are theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import BertConfig
from ..tasks import CrossEncoder, SentenceEncoder

PIECE = 4096  # characters: a long text is tokenized in pieces of about this size (Backend._head)


class InputTooLong(ValueError):
    """An input longer than the model's window, sent without truncate."""

    def __init__(self, index: int, tokens: int, limit: int) -> None:
        super().__init__(f"input {index} has {tokens} tokens, more than the model's limit of {limit}: shorten it "
                         'or send "truncate": true')


class Backend:
    """A loaded model: kind ("embedding", "classifier" or "reranker"), max_input_length (tokens per text,
    special tokens included), rows for its inputs, and run() for one model call."""

    def __init__(self, name_or_path: str, max_batch_tokens: int) -> None:
        architectures = BertConfig.from_pretrained(name_or_path).extra.get("architectures") or []
        if any(str(a).endswith("ForSequenceClassification") for a in architectures):
            self.cross_encoder = CrossEncoder.from_pretrained(name_or_path)
            self.model, self.tokenizer = self.cross_encoder.model, self.cross_encoder.tokenizer
            self.kind = "reranker" if self.model.config.num_labels == 1 else "classifier"
            self.max_input_length = self.cross_encoder.max_length
        else:
            self.encoder = SentenceEncoder.from_pretrained(name_or_path)
            self.model, self.tokenizer = self.encoder.model, self.encoder.tokenizer
            self.kind = "embedding"
            self.max_input_length = self.encoder.max_seq_length
        if max_batch_tokens < self.max_input_length:
            raise ValueError(f"--max-batch-tokens ({max_batch_tokens}) must be at least the model's longest input "
                             f"({self.max_input_length} tokens)")
        self.max_batch_tokens = max_batch_tokens

    def embedding_rows(self, texts: list[str], truncate: bool,
                       prompt_name: str | None) -> tuple[list[list[int]], list[int]]:
        """Token rows of texts as SentenceEncoder.encode makes them (prompt, lower-casing, max_seq_length), and
        per row the leading tokens the pooling leaves out. A text too long without truncate: InputTooLong."""
        texts, skip = self.encoder.apply_prompt(texts, prompt_name=prompt_name)
        rows = [self._row(i, (text,), truncate)[0] for i, text in enumerate(texts)]
        return rows, [skip] * len(rows)

    def pair_rows(self, inputs: Sequence[tuple[str, ...]], truncate: bool) -> tuple[list[list[int]], list[list[int]]]:
        """Token rows and token type rows of texts or (text, text) pairs, cut longest first to the window."""
        encoded = [self._row(i, texts, truncate) for i, texts in enumerate(inputs)]
        return [ids for ids, _ in encoded], [types for _, types in encoded]

    def _row(self, index: int, texts: tuple[str, ...], truncate: bool) -> tuple[list[int], list[int]]:
        limit = self.max_input_length
        if len(texts) == 1 and len(texts[0]) > PIECE:
            texts = (self._head(index, texts[0], truncate),)
        encoding = self.tokenizer(*texts, truncation=True, max_length=limit)
        if len(encoding["input_ids"]) == limit and not truncate:  # at the limit: was anything cut?
            tokens = len(self.tokenizer(*texts, verbose=False)["input_ids"])  # measured: no too-long warning
            if tokens > limit:
                raise InputTooLong(index, tokens, limit)
        return encoding["input_ids"], encoding["token_type_ids"]

    def _head(self, index: int, text: str, truncate: bool) -> str:
        """The start of a long text that tokenizes, truncated, as the whole text does, read piece by piece
        (pieces end at a space, where BERT's tokenizer always splits, so their tokens add up to the text's):
        a 2 MB text costs a window's worth of tokenizing, not half a million tokens' worth of memory. Without
        truncate, every piece is counted, for the error's token count."""
        limit, start, head, tokens = self.max_input_length, 0, [], self.tokenizer.num_special_tokens_to_add()
        while start < len(text) and (tokens < limit or not truncate):
            end = text.find(" ", start + PIECE) + 1 or len(text)
            if tokens < limit:
                head.append(text[start:end])
            tokens += len(self.tokenizer(text[start:end], add_special_tokens=False, verbose=False)["input_ids"])
            start = end
        if tokens > limit and not truncate:
            raise InputTooLong(index, tokens, limit)
        return "".join(head)

    def run(self, rows: list[list[int]], extras: list[Any]) -> np.ndarray:
        """Pooled vectors [N, D] (float64, before SentenceEncoder.finish) or logits [N, num_labels] of rows;
        extras: per row, the tokens the pooling skips (embedder) or the token types (classifier). Rows are
        run longest first in calls whose padded size (rows x longest) stays within max_batch_tokens: the
        fast path computes on the real tokens only, but its outputs come back padded."""
        order = sorted(range(len(rows)), key=lambda k: -len(rows[k]))
        out: np.ndarray | None = None
        start = 0
        while start < len(order):
            count = max(1, self.max_batch_tokens // len(rows[order[start]]))  # the first is the longest
            chunk = order[start:start + count]
            ids = [rows[k] for k in chunk]
            if self.kind == "embedding":
                values = self.encoder.embed_rows(ids, [extras[k] for k in chunk]).astype(np.float64)  # [n, D]
            else:
                batch = self.tokenizer.pad({"input_ids": ids, "token_type_ids": [extras[k] for k in chunk]},
                                           return_tensors="np")
                values = self.model(**batch).logits  # [n, num_labels]
            if out is None:
                out = np.empty((len(rows), values.shape[1]), dtype=values.dtype)
            out[chunk] = values
            start += len(chunk)
        return out
