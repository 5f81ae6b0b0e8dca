"""BatchEncoding: what a BertTokenizer call returns, and the lookups between its characters, words and tokens."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np


class BatchEncoding(dict):
    """The tokenizer's output: a dict (so ``model(**encoding)`` works) whose keys are also attributes. For
    each row it also knows, as transformers' fast tokenizers do, the word and the sequence every token comes
    from (``word_ids``, ``sequence_ids``), the token strings (``tokens``), and the links between characters,
    words and tokens (``char_to_token``, ``char_to_word``, ``token_to_chars``, ``token_to_word``,
    ``token_to_sequence``, ``word_to_tokens``, ``word_to_chars``).

    The constructor takes transformers' arguments: ``BatchEncoding(data, tensor_type="np")`` converts the
    values as ``convert_to_tensors`` does. ``encoding`` must be None: there are no `tokenizers` Encoding
    objects here (``encodings`` is None); the lookups read ``rows``, which BertTokenizer passes.
    """

    def __init__(self, data: dict | None = None, encoding: None = None, tensor_type: str | None = None,
                 prepend_batch_axis: bool = False, n_sequences: int | None = None, *, rows: list[dict] | None = None,
                 id_to_token: dict[int, str] | None = None) -> None:
        if encoding is not None:
            raise TypeError("BatchEncoding keeps no `tokenizers` Encoding objects: pass encoding=None")
        super().__init__(data or {})
        self._rows, self._id_to_token = rows, id_to_token
        if n_sequences is None and rows:
            n_sequences = 2 if rows[0]["pair"] else 1
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type, prepend_batch_axis)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str | slice) -> Any:
        """A key's values, or with a slice, every key's values for those rows (as in transformers)."""
        if isinstance(key, slice):
            return {name: values[key] for name, values in self.items()}
        if not isinstance(key, str):
            raise KeyError(f"BatchEncoding takes a key (str) or a slice of rows, got {key!r}; there are no "
                           "`tokenizers` Encoding objects to index (use word_ids(i), tokens(i), ... for row i)")
        return super().__getitem__(key)

    @property
    def data(self) -> dict:
        """The encoding itself (a dict of key -> values), as transformers' BatchEncoding.data."""
        return self

    @property
    def encodings(self) -> None:
        """None: the rows come from minibert's tokenizer, not from `tokenizers` Encoding objects."""
        return None

    @property
    def is_fast(self) -> bool:
        """Whether the per-token lookups (word_ids(), tokens(), char_to_token(), ...) are available: True for
        a tokenizer call's result, as for transformers' fast tokenizers; False after pad() or for a hand-made dict."""
        return self._rows is not None

    @property
    def n_sequences(self) -> int | None:
        """1 for single texts, 2 for pairs, None when unknown (pad() and hand-made dicts)."""
        return self._n_sequences

    def convert_to_tensors(self, tensor_type: str | None = None, prepend_batch_axis: bool = False) -> BatchEncoding:
        """Convert every value in place: "np" to NumPy arrays (integer lists become int64), "pt" to torch
        tensors (torch is imported only here), None leaves them as they are. prepend_batch_axis: one more axis
        in front (a single example as a batch of one). Returns self."""
        if tensor_type is None:
            return self
        if tensor_type not in ("np", "pt"):
            raise ValueError(f"return_tensors={tensor_type!r} is not supported: use None (lists), 'np' or 'pt'")
        for key, value in self.items():
            array = _as_array(key, [value] if prepend_batch_axis else value)
            self[key] = array if tensor_type == "np" else _torch().from_numpy(array)
        return self

    def to(self, device: Any, *, non_blocking: bool = False) -> BatchEncoding:
        """Move torch tensors to `device` (return_tensors="pt"); NumPy arrays and lists stay where they are.
        Returns self, as in transformers."""
        for key, value in self.items():
            if callable(getattr(value, "to", None)):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self

    def __getstate__(self) -> dict:
        """Pickled (as a data loader's workers send batches) with the vocabulary entries its rows use, not
        the whole vocabulary."""
        state = dict(self.__dict__)
        if self._rows is not None:
            used = {i for row in self._rows for i in row["input_ids"]}
            state["_id_to_token"] = {i: self._id_to_token[i] for i in used}
        return state

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row `batch_index`, the index of the word it comes from; None for [CLS], [SEP] and
        padding. Each sequence of a pair counts its words from 0. With is_split_into_words, a word is an
        item of the given list (which the tokenizer may split further)."""
        return list(self._row(batch_index)["word_ids"])

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row `batch_index`: 0 (first text), 1 (second text of a pair) or None (added
        special tokens and padding)."""
        row = self._row(batch_index)
        return [None if word is None else sequence for word, sequence in zip(row["word_ids"], row["token_type_ids"])]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row `batch_index`, special tokens and padding included; an added token shows
        the text it matched, as in transformers (normalised, with any whitespace it swallowed)."""
        row = self._row(batch_index)
        surfaces = row.get("surface") or itertools.repeat(None)
        return [surface or self._id_to_token[i] for i, surface in zip(row["input_ids"], surfaces)]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        """The characters (start, end) a token covers in its text; None for [CLS], [SEP], padding and a token
        past the row's end (as in transformers). One index means a token of row 0, two mean (row, token)."""
        batch_index, token_index = _row_and_index(batch_or_token_index, token_index)
        row = self._row(batch_index)
        if self._past_end(batch_index, token_index) or row["word_ids"][token_index] is None:
            return None
        return CharSpan(*row["offset_mapping"][token_index])

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index: int = 0) -> int | None:
        """The token that covers a character of text `sequence_index` (0, or 1 for a pair's second text);
        None where no token does (whitespace, a dropped character, a truncated part)."""
        batch_index, char_index = _row_and_index(batch_or_char_index, char_index)
        wanted, offsets = self._sequence(batch_index, sequence_index), self._row(batch_index)["offset_mapping"]
        for k, ((start, end), sequence) in enumerate(zip(offsets, self.sequence_ids(batch_index))):
            if sequence == wanted and start <= char_index < end:
                return k
        return None

    def char_to_word(self, batch_or_char_index: int, char_index: int | None = None,
                     sequence_index: int = 0) -> int | None:
        """The word whose token covers a character of text `sequence_index`; None where no token does."""
        batch_index, char_index = _row_and_index(batch_or_char_index, char_index)
        token = self.char_to_token(batch_index, char_index, sequence_index)
        return None if token is None else self._row(batch_index)["word_ids"][token]

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """word_ids() of one token; None past the row's end."""
        batch_index, token_index = _row_and_index(batch_or_token_index, token_index)
        return None if self._past_end(batch_index, token_index) else self.word_ids(batch_index)[token_index]

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """sequence_ids() of one token; None past the row's end."""
        batch_index, token_index = _row_and_index(batch_or_token_index, token_index)
        return None if self._past_end(batch_index, token_index) else self.sequence_ids(batch_index)[token_index]

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0) -> TokenSpan | None:
        """The tokens (start, end) of a word of text `sequence_index`; None if the row has none of them."""
        batch_index, word_index = _row_and_index(batch_or_word_index, word_index)
        wanted, words = self._sequence(batch_index, sequence_index), self._row(batch_index)["word_ids"]
        tokens = [k for k, (word, sequence) in enumerate(zip(words, self.sequence_ids(batch_index)))
                  if word == word_index and sequence == wanted]
        return TokenSpan(tokens[0], tokens[-1] + 1) if tokens else None

    def word_to_chars(self, batch_or_word_index: int, word_index: int | None = None,
                      sequence_index: int = 0) -> CharSpan:
        """The characters (start, end) a word's tokens cover in text `sequence_index`."""
        batch_index, word_index = _row_and_index(batch_or_word_index, word_index)
        tokens = self.word_to_tokens(batch_index, word_index, sequence_index)
        if tokens is None:
            raise ValueError(f"word {word_index!r} of sequence {sequence_index} has no token in row {batch_index}")
        offsets = self._row(batch_index)["offset_mapping"]
        return CharSpan(offsets[tokens.start][0], offsets[tokens.end - 1][1])

    def _past_end(self, batch_index: int, token_index: int) -> bool:
        """Whether a token index lies past the row's last token (the lookups answer None there, as in
        transformers); a negative index is an error (transformers raises an unrelated AttributeError)."""
        if token_index < 0:
            raise IndexError(f"token index {token_index} is negative; tokens count from 0")
        return token_index >= len(self._row(batch_index)["input_ids"])

    def _sequence(self, batch_index: int, sequence_index: int) -> int:
        """The sequence a lookup reads: sequence_index in a pair's row; in a single text's, that text whatever
        sequence_index says (as in the reference)."""
        if sequence_index not in (0, 1) or isinstance(sequence_index, bool):
            raise ValueError("sequence_index must be 0 (the first text) or 1 (a pair's second), got "
                             f"{sequence_index!r}")
        return sequence_index if self._row(batch_index)["pair"] else 0

    def _row(self, batch_index: int) -> dict:
        if self._rows is None:
            raise ValueError("the per-token lookups (word_ids(), tokens(), char_to_token(), ...) need an "
                             "encoding made by calling BertTokenizer; pad() and hand-made dicts keep no rows")
        if not isinstance(batch_index, (int, np.integer)) or not -len(self._rows) <= batch_index < len(self._rows):
            raise IndexError(f"batch_index {batch_index!r} is not a row of this encoding, which has {len(self._rows)}")
        return self._rows[batch_index]


class CharSpan(NamedTuple):
    start: int
    end: int


class TokenSpan(NamedTuple):
    start: int
    end: int


def _as_array(key: str, value: Any) -> np.ndarray:
    """A value as an array: integer lists become int64, ragged rows are a clear error."""
    try:
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError
    except ValueError:
        raise ValueError(f"{key} has rows of different lengths, so it cannot become an array: pass padding=True (and "
                         "truncation=True for texts longer than max_length)") from None
    return array.astype(np.int64) if array.dtype.kind in "iu" or array.size == 0 else array


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("return_tensors='pt' needs torch, which is not installed; use return_tensors='np'") from None
    return torch


def _row_and_index(batch_or_index: int, index: int | None) -> tuple[int, int]:
    """transformers' convention for the encoding's lookups: f(i) is item i of row 0, f(b, i) item i of row b."""
    pair = (0, batch_or_index) if index is None else (batch_or_index, index)
    for value in pair:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"indices must be integers, got {value!r}")
    return pair
