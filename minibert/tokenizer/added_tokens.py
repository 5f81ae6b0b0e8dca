"""Added tokens: whole strings the tokenizer matches before WordPiece runs ([CLS], [MASK], "[E1]", "covid19").

As in the reference (the `tokenizers` library's AddedVocabulary), an added token is matched anywhere in the
text, leftmost first and longest first, and each match becomes one token, a word of its own:
- a token with normalized=False (special tokens, by default) is matched on the raw text, case included;
- a token with normalized=True (other added tokens, by default) is matched on the normalised text (lower-cased,
  accents stripped, whitespace made " "), against its own content normalised the same way;
- single_word: only where no word character touches the match; lstrip / rstrip: the match swallows the
  whitespace to its left / right.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import unicode_tables

WHITESPACE_CLASS = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in unicode_tables.WHITESPACE)
SPACES_AT_END = re.compile(f"[{WHITESPACE_CLASS}]*$")
SPACES_AT_START = re.compile(f"[{WHITESPACE_CLASS}]*")
WORD_CATEGORIES = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc"}  # with the joiners: \w
FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")


@dataclass(frozen=True)
class AddedToken:
    """A token added to the vocabulary (transformers' and tokenizers' AddedToken, same fields and defaults).
    normalized=None means "not special", decided when the token is added: True for a plain added token,
    False for a special one."""

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool | None = None
    special: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.content, str):
            raise TypeError(f"an added token's content must be a str, got {self.content!r}")
        for name in FLAGS:
            value = getattr(self, name)
            if not (isinstance(value, bool) or (name == "normalized" and value is None)):
                raise TypeError(f"AddedToken {self.content!r}: {name} must be true or false, got {value!r}")

    def __str__(self) -> str:
        return self.content

    def as_dict(self, token_id: int | None = None) -> dict[str, Any]:
        """The token as tokenizer.json lists it (with its id) or tokenizer_config.json's added_tokens_decoder."""
        return {**({"id": token_id} if token_id is not None else {}), "content": self.content,
                **{name: getattr(self, name) for name in FLAGS}}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> AddedToken:
        if not isinstance(data, dict) or not isinstance(data.get("content"), str):
            raise ValueError(f"{where}: an added token must be an object with a string 'content', got {str(data)[:80]}")
        flags = {name: data[name] for name in FLAGS if name in data}
        try:
            return as_added_token(cls(data["content"], **flags), special=False)
        except TypeError as e:
            raise ValueError(f"{where}: {e}") from None


def as_added_token(token: Any, special: bool) -> AddedToken:
    """A str, or an AddedToken (minibert's, or transformers' / tokenizers' own), as the AddedToken a
    vocabulary keeps: special=True makes it special, as transformers' add_tokens(..., special_tokens=True)
    does, and an unset `normalized` becomes "not special"."""
    if isinstance(token, str):
        token = AddedToken(token)
    elif not all(hasattr(token, name) for name in ("content", *FLAGS)):
        raise TypeError(f"added tokens are strings or AddedToken, got {token!r}")
    flags = {name: getattr(token, name) for name in FLAGS}
    flags["special"] = flags["special"] or special
    if flags["normalized"] is None:
        flags["normalized"] = not flags["special"]
    return AddedToken(token.content, **flags)


def is_word_char(char: str) -> bool:
    """The reference's regex class \\w (Rust, Unicode): letters, marks, decimal and letter numbers, connector
    punctuation, and the zero-width joiners."""
    return unicodedata.category(char) in WORD_CATEGORIES or char in "\u200c\u200d"


class AddedTokenMatcher:
    """Finds added tokens in a string. patterns: (token id, the string to match, its AddedToken); when two
    tokens match the same string, the first listed wins."""

    def __init__(self, patterns: Iterable[tuple[int, str, AddedToken]]) -> None:
        self.by_string: dict[str, tuple[int, AddedToken]] = {}
        for token_id, string, token in patterns:
            if string:  # a token that normalises to nothing can never match
                self.by_string.setdefault(string, (token_id, token))
        # Longest first, so that at each position the longest token wins, as with the reference's matcher.
        alternatives = sorted(self.by_string, key=len, reverse=True)
        self.regex = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def find(self, sentence: str) -> list[tuple[int, int, int]]:
        """[(token id, start, end)] of the matches in `sentence`, in order. lstrip / rstrip widen a match over
        whitespace: lstrip never into the previous match, rstrip even into the next one (as the reference's
        does: their spans then overlap)."""
        matches: list[tuple[int, int, int]] = []
        previous_end = 0
        for match in self.regex.finditer(sentence) if self.regex else ():
            start, end = match.span()
            token_id, token = self.by_string[match.group()]
            if token.single_word and ((start > 0 and is_word_char(sentence[start - 1]))
                                      or (end < len(sentence) and is_word_char(sentence[end]))):
                continue
            if token.lstrip:
                start = max(SPACES_AT_END.search(sentence, 0, start).start(), previous_end)
            if token.rstrip:
                end = SPACES_AT_START.match(sentence, end).end()
            matches.append((token_id, start, end))
            previous_end = end
        return matches


def matchers(tokens: dict[int, AddedToken],
             normalize: Callable[[str], str]) -> tuple[AddedTokenMatcher, AddedTokenMatcher]:
    """The two matchers of a vocabulary's added tokens, in the order they were added: raw (normalized=False,
    on the text as given) and normalised (normalized=True, their content normalised as the text will be)."""
    ordered = list(tokens.items())
    raw = AddedTokenMatcher((i, t.content, t) for i, t in ordered if not t.normalized)
    normalized = AddedTokenMatcher((i, normalize(t.content), t) for i, t in ordered if t.normalized)
    return raw, normalized
