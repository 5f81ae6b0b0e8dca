"""BERT's tokenization algorithm: text -> token ids, each with its character span in the original text.

Three stages, as in the reference (transformers' BertTokenizer, whose backend is the `tokenizers` library):

1. Added tokens written in the text are matched first (minibert/tokenizer/added_tokens.py): special ones ("[MASK]") on
   the raw text, case-sensitively; other added tokens on the text normalised as in stage 2.
2. Normalisation, character by character, in the reference's order: drop control characters, isolate CJK
   ideographs, strip accents (NFD, then drop nonspacing marks), lower-case. Each normalised character
   remembers which original character it came from, so offsets point into the unnormalised text.
3. Pre-tokenization splits on whitespace and isolates punctuation; WordPiece then splits each word greedily
   into the longest vocabulary pieces, continuations prefixed with "##". A word with no split, or longer
   than 100 characters, becomes one [UNK].

Where the reference departs from the original Python BERT tokenizer, we follow the reference:
- accents are stripped *before* lower-casing, and lower-casing is per character, so a capital sigma
  always becomes σ, never the final form ς ("ΣΑΣ" -> "σασ", where str.lower() gives "σας");
- the CJK ranges are the reference's: U+2B820..U+2B91F (CJK Extension E's start) are not isolated,
  because the reference's range for Extension E begins at U+2B920;
- character classes come from the reference's own Unicode tables (minibert/tokenizer/unicode_tables.py), e.g.
  unassigned code points are kept (the old tokenizer dropped them as category Cn), and U+000B, U+000C and
  U+0085 are dropped as control characters rather than treated as spaces.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import lru_cache

from . import unicode_tables
from .added_tokens import WHITESPACE_CLASS, AddedToken, matchers

MAX_WORD_CHARS = 100  # longer words become one [UNK], as in the reference


class CharClass:
    """Membership in a sorted tuple of inclusive code-point ranges."""

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self.starts = [a for a, _ in ranges]
        self.ends = [b for _, b in ranges]

    def __contains__(self, char: str) -> bool:
        i = bisect.bisect_right(self.starts, ord(char)) - 1
        return i >= 0 and ord(char) <= self.ends[i]


REMOVED = CharClass(unicode_tables.REMOVED)
CJK = CharClass(unicode_tables.CJK)
PUNCTUATION = CharClass(unicode_tables.PUNCTUATION)
NONSPACING_MARKS = CharClass(unicode_tables.NONSPACING_MARKS)

CHUNK = re.compile(f"[^{WHITESPACE_CLASS}]+")  # runs of non-whitespace: words never cross them
WHITESPACE = re.compile(f"[{WHITESPACE_CLASS}]")
_PUNCTUATION_CLASS = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in unicode_tables.PUNCTUATION)
# Words of normalised text: runs of neither whitespace nor punctuation, or one punctuation mark.
NORMALIZED_WORD = re.compile(f"[^{WHITESPACE_CLASS}{_PUNCTUATION_CLASS}]+|[{_PUNCTUATION_CLASS}]")
ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ASCII_WORD = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9]")  # in ASCII, every other printable is punctuation


def lowercase(text: str) -> str:
    """Per-character lower-casing, as the reference's normalisers do it (a capital sigma is always σ)."""
    return "".join(unicode_tables.LOWERCASE.get(ord(c), c) for c in text)


class WordPieceEncoder:
    """Text -> (ids, offsets, word starts). Offsets are (start, end) character positions in the text given."""

    def __init__(
        self,
        vocab: dict[str, int],
        unk_token: str,
        added_tokens: dict[int, AddedToken],
        lowercase: bool = True,
        strip_accents: bool = True,
        split_cjk: bool = True,
    ) -> None:
        if unk_token not in vocab:
            raise ValueError(f"the unknown token {unk_token!r} is not in the vocabulary")
        self.vocab = vocab  # WordPiece's own pieces; added tokens are matched before WordPiece sees the text
        self.unk_id = vocab[unk_token]
        self.lowercase, self.strip_accents, self.split_cjk = lowercase, strip_accents, split_cjk
        self.raw_tokens, self.normalized_tokens = matchers(added_tokens, lambda text: self.normalize(text)[0])
        # An added token's string, as the reference gives it for its id: normalised if it is matched so.
        self.token_strings = {i: self.normalize(token.content)[0] if token.normalized else token.content
                              for i, token in added_tokens.items()}
        # What an encoding shows for an id: WordPiece's own string where it has the id (an added token with a
        # WordPiece id has that string as its content), else the added token's.
        self.shown_strings = {i: token.content if vocab.get(token.content) == i else self.token_strings[i]
                              for i, token in added_tokens.items()}
        # Real text repeats its words: each distinct whitespace-free chunk is tokenized once.
        self.encode_chunk = lru_cache(maxsize=1 << 16)(self._encode_chunk)

    def __getstate__(self) -> dict:
        """Pickled without the chunk cache (a data loader's worker processes receive the tokenizer so)."""
        return {key: value for key, value in self.__dict__.items() if key != "encode_chunk"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.encode_chunk = lru_cache(maxsize=1 << 16)(self._encode_chunk)

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int], dict[int, str]]:
        """Token ids of `text`, the (start, end) span in `text` of each, and for each 1 if it starts a word,
        else 0: words as the pre-tokenizer splits them (at whitespace; each punctuation mark, CJK character
        and added token a word of its own). (Flags, not word numbers, so that a cached chunk's flags are
        copied as they are.) Last, {position: matched text} for the added tokens whose match is not their
        own content (a normalised or whitespace-swallowing match), as tokens(i) shows them."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        word_starts: list[int] = []
        surfaces: dict[int, str] = {}
        position = 0
        for token_id, start, end in self.raw_tokens.find(text):
            self._encode_segment(text, position, start, ids, offsets, word_starts, surfaces)
            self._append_added(token_id, text[start:end], (start, end), ids, offsets, word_starts, surfaces)
            position = end
        self._encode_segment(text, position, len(text), ids, offsets, word_starts, surfaces)
        return ids, offsets, word_starts, surfaces

    def _encode_segment(self, text: str, start: int, end: int, ids: list, offsets: list, word_starts: list,
                        surfaces: dict) -> None:
        """Text between raw matches: normalised added tokens, then WordPiece on what lies between them."""
        if self.normalized_tokens.regex is None or start == end:  # no normalised added token: the common case
            self._encode_plain(text, start, end, ids, offsets, word_starts)
            return
        # As in the reference, the text is cut in its normalised form: a match that swallows the space padding a
        # CJK character leaves that character to the next piece, and their offsets overlap.
        normalized, origins = self.normalize(text[start:end])
        origins = [start + o for o in origins]  # normalised positions -> positions in `text`
        position = 0
        for token_id, s, e in self.normalized_tokens.find(normalized):
            self._encode_normalized(normalized, origins, position, s, ids, offsets, word_starts)
            self._append_added(token_id, normalized[s:e], (origins[s], origins[e - 1] + 1), ids, offsets, word_starts,
                               surfaces)
            position = e
        self._encode_normalized(normalized, origins, position, len(normalized), ids, offsets, word_starts)

    def _encode_normalized(self, normalized: str, origins: list[int], start: int, end: int, ids: list, offsets: list,
                           word_starts: list) -> None:
        """Pre-tokenize and WordPiece normalised text (CJK characters already padded with spaces)."""
        for match in NORMALIZED_WORD.finditer(normalized, start, end):
            for token_id, s, e in self.wordpiece(match.group()):
                ids.append(token_id)
                offsets.append((origins[match.start() + s], origins[match.start() + e - 1] + 1))
                word_starts.append(int(s == 0))

    def _append_added(self, token_id: int, matched: str, span: tuple[int, int], ids: list, offsets: list,
                      word_starts: list, surfaces: dict) -> None:
        if matched != self.shown_strings[token_id]:  # tokens(i) shows what was matched: kept where that differs
            surfaces[len(ids)] = matched
        ids.append(token_id)
        offsets.append(span)
        word_starts.append(1)

    def _encode_plain(self, text: str, start: int, end: int, ids: list, offsets: list, word_starts: list) -> None:
        for match in CHUNK.finditer(text, start, end):
            chunk_ids, chunk_spans, chunk_word_starts = self.encode_chunk(match.group())
            ids.extend(chunk_ids)
            base = match.start()
            offsets.extend([(base + s, base + e) for s, e in chunk_spans])
            word_starts.extend(chunk_word_starts)

    def _encode_chunk(self, chunk: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]:
        """One whitespace-free run of text -> its ids, their spans relative to the run, and which of them
        start a word (1) or continue one (0)."""
        ids, spans, word_starts = [], [], []
        for word, origins in self._words(chunk):
            for token_id, s, e in self.wordpiece(word):
                ids.append(token_id)
                spans.append((origins[s], origins[e - 1] + 1))  # normalised positions -> original ones
                word_starts.append(int(s == 0))
        return tuple(ids), tuple(spans), tuple(word_starts)

    def _words(self, chunk: str) -> list[tuple[str, list[int]]]:
        """Normalise and pre-tokenize a chunk: [(word, origin of each of its characters)]."""
        if chunk.isascii() and not ASCII_CONTROL.search(chunk):  # the common case, with identity alignment
            return [
                (m.group().lower() if self.lowercase else m.group(), list(range(m.start(), m.end())))
                for m in ASCII_WORD.finditer(chunk)
            ]
        words: list[tuple[str, list[int]]] = []
        word, origins = [], []

        def close_word():
            if word:
                words.append(("".join(word), origins.copy()))
                word.clear()
                origins.clear()

        for i, char in enumerate(chunk):
            if char in REMOVED:
                continue
            if self.split_cjk and char in CJK:  # isolated before normalising, as in the reference
                close_word()
                normalized = self._normalize(char)
                words.append((normalized, [i] * len(normalized)))
                continue
            for c in self._normalize(char):
                if c in PUNCTUATION:  # tested on normalised characters, as the reference's pre-tokenizer does
                    close_word()
                    words.append((c, [i]))
                else:
                    word.append(c)
                    origins.append(i)
        close_word()
        return words

    def _normalize(self, char: str) -> str:
        """Accent stripping (NFD, drop nonspacing marks), then per-character lower-casing."""
        if self.strip_accents:
            char = "".join(c for c in unicodedata.normalize("NFD", char) if c not in NONSPACING_MARKS)
        return lowercase(char) if self.lowercase else char

    def normalize(self, text: str) -> tuple[str, list[int]]:
        """The reference's whole normaliser on a string, for matching normalised added tokens: control
        characters dropped, whitespace made " ", CJK ideographs padded with spaces, accents stripped,
        lower-cased. Returns the normalised string and, for each of its characters, its position in `text`."""
        chars: list[str] = []
        origins: list[int] = []
        for i, char in enumerate(text):
            if char in REMOVED:
                continue
            if WHITESPACE.match(char):
                normalized = " "
            elif self.split_cjk and char in CJK:
                normalized = " " + self._normalize(char) + " "
            else:
                normalized = self._normalize(char)
            chars.append(normalized)
            origins += [i] * len(normalized)
        return "".join(chars), origins

    def wordpiece(self, word: str) -> list[tuple[int, int, int]]:
        """Greedy longest-match-first split of one normalised word: [(id, start, end)] in the word's characters.

        "unaffable" -> "una", "##ffa", "##ble". No split, or more than 100 characters: one [UNK] for the word.
        """
        if len(word) > MAX_WORD_CHARS:
            return [(self.unk_id, 0, len(word))]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append((self.vocab[piece], start, end))
                    start = end
                    break
            else:
                return [(self.unk_id, 0, len(word))]
        return pieces
