"""BertTokenizer: the API of transformers' BertTokenizer over minibert's own WordPiece (wordpiece.py).

Swapping ``from transformers import BertTokenizer`` for ``from minibert import BertTokenizer`` gives the same
ids, token type ids, attention masks and offsets; no Rust, no torch.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..errors import check_positive_int
from ..loading.files import present
from ..loading.hub import model_directory
from .added_tokens import AddedToken, as_added_token
from .encoding import BatchEncoding
from .files import (
    LARGE_INTEGER, SPECIAL_TOKEN_NAMES, TOKENIZER_FILES, VERY_LARGE_INTEGER, checked_vocab, load_vocab,
    read_tokenizer_config, read_tokenizer_json, write_tokenizer_files, write_vocab,
)
from .wordpiece import WordPieceEncoder

logger = logging.getLogger(__name__)

PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
              "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}
SIDES = ("right", "left")  # padding_side / truncation_side
# What padding adds to each per-token list, besides the [PAD] id.
PAD_VALUES = {"token_type_ids": 0, "attention_mask": 0, "special_tokens_mask": 1, "offset_mapping": (0, 0),
              "word_ids": None, "surface": None}
PADDED_BY_PAD = ("token_type_ids", "attention_mask", "special_tokens_mask")  # what pad() pads besides input_ids
# The longest row padding may make: far beyond any BERT's window (512), far below a length whose padding
# alone would fill the memory (padding="max_length", max_length=10**9 asked for gigabytes).
MAX_PADDED_LENGTH = 1 << 16


class Tokens(NamedTuple):
    """One text's tokens: their ids, (start, end) character spans, the word each comes from, and for the
    added tokens whose matched text is not their content, {position: matched text}."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    words: list[int]
    surfaces: dict[int, str]

    def cut(self, span: tuple[int, int]) -> Tokens:
        start, stop = span
        surfaces = {k - start: v for k, v in self.surfaces.items() if start <= k < stop}
        return Tokens(self.ids[start:stop], self.offsets[start:stop], self.words[start:stop], surfaces)


def _named_id_property(name: str) -> property:
    """tokenizer.pad_token_id and the like: the named special token's id (None when the token is unset);
    setting an id sets the token to that id's token (None unsets it), as in transformers."""

    def get(tokenizer: BertTokenizer) -> int | None:
        token = getattr(tokenizer, name)
        return None if token is None else tokenizer.convert_tokens_to_ids(token)

    def set(tokenizer: BertTokenizer, token_id: int | None) -> None:
        setattr(tokenizer, name, None if token_id is None else tokenizer._id_to_token(token_id))

    return property(get, set)


class BertTokenizer:
    """BERT's WordPiece tokenizer.

    vocab_file: a vocab.txt (one token per line, the line number being the id), or the vocabulary as a dict
    {token: id}; ``vocab`` is transformers 5's name for it. strip_accents=None follows do_lower_case, as in
    BERT. model_max_length: the longest input the model takes (None: no limit). padding_side and
    truncation_side: "right" (BERT's) or "left", where padding goes and which end truncation cuts.
    added_tokens_decoder: {id: AddedToken} for tokens beyond WordPiece's own (tokenizer.json's
    "added_tokens"); extra_special_tokens (or its transformers 4 name additional_special_tokens): the added
    special tokens that count among all_special_tokens besides the named ones (bos_token and eos_token, which
    BERT does not use, are None unless given). model_input_names: what a call returns by default
    (token_type_ids and attention_mask are left out when not listed). split_special_tokens: special tokens
    written in the text are tokenized as text, not matched.

    As in transformers, other keyword arguments are accepted and kept in ``init_kwargs`` (tokenizer_config.json
    holds many); do_basic_tokenize and never_split, which transformers 5's BertTokenizer also ignores, are
    kept there too, with a logged warning when they ask for something other than BERT's basic tokenizer.
    """

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")  # each tokenizer keeps a list of its own
    pad_token_type_id = 0  # the token type padding gets

    def __init__(
        self,
        vocab_file: str | os.PathLike | dict[str, int] | None = None,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        bos_token: str | None = None,
        eos_token: str | None = None,
        model_max_length: int | None = None,
        clean_up_tokenization_spaces: bool = False,
        padding_side: str = "right",
        truncation_side: str = "right",
        added_tokens_decoder: dict[int, AddedToken] | None = None,
        extra_special_tokens: Sequence[str | AddedToken] = (),
        additional_special_tokens: Sequence[str | AddedToken] | None = None,
        model_input_names: Sequence[str] | None = None,
        split_special_tokens: bool = False,
        name_or_path: str = "",
        vocab: str | os.PathLike | dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.init_kwargs = {name: value for name, value in locals().items() if name not in ("self", "kwargs")
                            and not (name in ("vocab_file", "vocab") and isinstance(value, dict))}  # paths only
        self.init_kwargs.update(kwargs)
        for key in kwargs:
            if callable(getattr(type(self), key, None)):
                raise AttributeError(f"{key} conflicts with the method {key} in {type(self).__name__}")
        _warn_if_ignored(kwargs)
        if (vocab_file is None) == (vocab is None):
            raise TypeError("give the vocabulary once: vocab_file (or vocab, transformers 5's name for it)")
        vocab_file = vocab_file if vocab is None else vocab
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars", tokenize_chinese_chars),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces),
                            ("split_special_tokens", split_special_tokens),
                            *([("strip_accents", strip_accents)] if strip_accents is not None else [])):
            if not isinstance(value, bool):  # the string "false" would count as true
                raise TypeError(f"{name} must be true or false, got {value!r}")
        if isinstance(model_max_length, float) and model_max_length.is_integer():
            model_max_length = int(model_max_length)  # some configs write 1e30
        if model_max_length is not None:
            check_positive_int("model_max_length", model_max_length)
        _check_sides(padding_side, truncation_side)
        self.padding_side, self.truncation_side = padding_side, truncation_side  # checked again by each call
        model_input_names = type(self).model_input_names if model_input_names is None else model_input_names
        if isinstance(model_input_names, str) or not isinstance(model_input_names, (list, tuple)):
            raise TypeError(f"model_input_names must be a list of names, got {model_input_names!r}")
        if not model_input_names or model_input_names[0] != "input_ids":
            raise ValueError(f"model_input_names must start with 'input_ids', got {model_input_names!r}")
        self.model_input_names = list(model_input_names)
        self.split_special_tokens, self.name_or_path = split_special_tokens, str(name_or_path)
        self.deprecation_warnings: dict[str, bool] = {}  # warnings given once, by transformers' key
        if isinstance(vocab_file, dict):
            self.vocab = checked_vocab(vocab_file)
            self.wordpiece_tokens = {i: token for token, i in self.vocab.items()}
        else:
            lines = load_vocab(vocab_file)
            # a token listed twice takes its last line, as in transformers
            self.vocab = {token: i for i, token in enumerate(lines)}
            self.wordpiece_tokens = dict(enumerate(lines))  # every line, so that saving writes the file back as it was
        self.wordpiece_size = max(self.wordpiece_tokens) + 1  # the ids WordPiece knows; new added tokens come after
        self.ids_to_tokens = dict(self.wordpiece_tokens)  # what ids decode to: added tokens' strings replace these
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        if unk_token not in self.vocab:
            raise ValueError(f"unk_token {unk_token!r} is not in the vocabulary")
        # What WordPiece writes for a word it cannot split; fixed here, as transformers' backend model fixes it.
        self.wordpiece_unk_token = str(unk_token)
        self.added_tokens_decoder: dict[int, AddedToken] = {}  # in the order they were added
        self.added_tokens_encoder: dict[str, int] = {}
        for token_id, token in (added_tokens_decoder or {}).items():
            self._add_with_id(token_id, token)
        self.extra_special_tokens: list[str] = []
        named = dict(zip(SPECIAL_TOKEN_NAMES,
                         (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token)))
        extra = list(extra_special_tokens) if additional_special_tokens is None else list(additional_special_tokens)
        self.bos_token = self.eos_token = None
        self.add_special_tokens({**{k: v for k, v in named.items() if v is not None}, "extra_special_tokens": extra})

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, revision: str | None = None,
        local_files_only: bool = False, token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> BertTokenizer:
        """Load a tokenizer from a model directory, a Hugging Face cache folder, a hub id or a miniature's
        name: the vocabulary and added tokens from tokenizer.json when the model has one, else from vocab.txt
        and tokenizer_config.json's added_tokens_decoder; the settings from tokenizer_config.json when present
        (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length, special tokens,
        extra_special_tokens, ...). As in transformers' BertTokenizer, tokenizer.json's normaliser and other
        stages are not read: BERT's are rebuilt from the settings. Keyword arguments override the files."""
        path = model_directory(pretrained_model_name_or_path, want=TOKENIZER_FILES, revision=revision,
                               local_files_only=local_files_only, token=token, cache_dir=cache_dir)
        return cls._from_directory(path, os.fspath(pretrained_model_name_or_path), **kwargs)

    @classmethod
    def _from_directory(cls, path: str | os.PathLike, name_or_path: str, **kwargs: Any) -> BertTokenizer:
        """from_pretrained's reading, from a local directory (a name already resolved to it)."""
        path = os.fspath(path)
        tokenizer_file, vocab_file, config_file = (os.path.join(path, name) for name in TOKENIZER_FILES)
        settings = read_tokenizer_config(config_file) if present(config_file) else {}
        if present(tokenizer_file):
            vocab, settings["added_tokens_decoder"] = read_tokenizer_json(tokenizer_file)
        elif present(vocab_file):
            vocab = vocab_file
        else:
            raise FileNotFoundError(f"no tokenizer.json or vocab.txt in {path!r}")
        try:
            return cls(vocab, **{**settings, "name_or_path": name_or_path, **kwargs})
        except (ValueError, TypeError) as e:  # a setting of tokenizer_config.json: the message names the file
            if not any(str(e).startswith(key) for key in settings if key not in kwargs):
                raise
            raise type(e)(f"{config_file}: {e}") from None

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, str, str]:
        """Write tokenizer_config.json, vocab.txt (WordPiece's vocabulary) and tokenizer.json (everything,
        added tokens included), readable by this class and by transformers; returns their paths."""
        return write_tokenizer_files(self, save_directory)

    def save_vocabulary(self, save_directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str]:
        """Write WordPiece's vocabulary as vocab.txt ("{filename_prefix}-vocab.txt") in save_directory, as
        transformers 4's BertTokenizer does; returns its path. (transformers 5 copies the file it was loaded
        from under the name tokenizer.model.)"""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_vocabulary writes into a directory; {os.fspath(save_directory)!r} is none")
        path = os.path.join(save_directory, (f"{filename_prefix}-" if filename_prefix else "") + "vocab.txt")
        write_vocab(self, path)
        return (path,)

    # ---- vocabulary -------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """WordPiece's vocabulary, without the added tokens (as in transformers)."""
        return len(self.vocab)

    def __len__(self) -> int:
        """The whole vocabulary, added tokens included."""
        return len(self.get_vocab())

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self.get_added_vocab()}

    def get_added_vocab(self) -> dict[str, int]:
        """{content: id} of the added tokens, the five named special tokens included."""
        return dict(self.added_tokens_encoder)

    def add_tokens(self, new_tokens: str | AddedToken | Sequence[str | AddedToken],
                   special_tokens: bool = False) -> int:
        """Add tokens that the tokenizer matches as a whole wherever they occur in the text, before WordPiece
        (a plain one on the lower-cased, accent-stripped text; a special one as written). A token WordPiece
        knows keeps its id; a new one takes the next free id. Returns how many were added (tokens already
        added, and empty strings, are skipped), as transformers does. A model reading the new ids needs
        model.resize_token_embeddings(len(tokenizer))."""
        if isinstance(new_tokens, (str, AddedToken)) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        try:
            new_tokens = list(new_tokens)
        except TypeError:
            raise TypeError("new_tokens must be a str, an AddedToken or a list of them, got "
                            f"{type(new_tokens).__name__}") from None
        added = self._add([as_added_token(token, special_tokens) for token in new_tokens])
        self._build_encoder()
        return added

    def add_special_tokens(self, special_tokens_dict: dict[str, Any], replace_extra_special_tokens: bool = True,
                           replace_additional_special_tokens: bool | None = None) -> int:
        """Set named special tokens ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
        "cls_token", "mask_token") and the list of further ones ("extra_special_tokens", or its former name
        "additional_special_tokens"), which replaces the old list unless replace_extra_special_tokens is False
        (then the new ones are appended); each is added as a special token. Returns how many tokens were added.
        replace_additional_special_tokens: transformers 4's name for replace_extra_special_tokens."""
        if not isinstance(special_tokens_dict, dict):
            raise TypeError(f"add_special_tokens takes a dict, got {type(special_tokens_dict).__name__}")
        if replace_additional_special_tokens is not None:
            replace_extra_special_tokens = replace_additional_special_tokens
        added = 0
        for key, value in special_tokens_dict.items():
            if key in SPECIAL_TOKEN_NAMES:
                token = as_added_token(value, special=True)
                added += self._add([token])
                setattr(self, key, token.content)
            elif key in ("extra_special_tokens", "additional_special_tokens"):
                if isinstance(value, (str, AddedToken)) or not isinstance(value, (list, tuple)):
                    raise TypeError(f"{key} must be a list of tokens, got {value!r}")
                tokens = [as_added_token(token, special=True) for token in value]
                added += self._add(tokens)
                kept = [] if replace_extra_special_tokens else self.extra_special_tokens
                self.extra_special_tokens = list(dict.fromkeys([*kept, *(token.content for token in tokens)]))
            else:
                raise ValueError(f"add_special_tokens: unknown key {key!r}; use {', '.join(SPECIAL_TOKEN_NAMES)} "
                                 "or extra_special_tokens")
        self._build_encoder()
        return added

    def _add(self, tokens: list[AddedToken]) -> int:
        """Register tokens not yet added, in order; returns how many."""
        added, next_id = 0, max([self.wordpiece_size - 1, *self.added_tokens_decoder]) + 1
        for token in tokens:
            if token.content and token.content not in self.added_tokens_encoder:
                token_id = self.vocab.get(token.content, next_id)
                self._add_with_id(token_id, token)
                next_id += token_id == next_id
                added += 1
        return added

    def _add_with_id(self, token_id: int, token: AddedToken | dict) -> None:
        token = (AddedToken.from_dict(token, f"added token {token_id}") if isinstance(token, dict)
                 else as_added_token(token, special=False))
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
            raise ValueError(f"added token {token.content!r}: its id must be an integer ≥ 0, got {token_id!r}")
        wordpiece_token = self.wordpiece_tokens.get(token_id)
        if wordpiece_token is not None and wordpiece_token != token.content:
            raise ValueError(f"added token {token.content!r} has id {token_id}, which is {wordpiece_token!r} "
                             "in the vocabulary")
        if token_id in self.added_tokens_decoder or token.content in self.added_tokens_encoder:
            raise ValueError(f"added token {token.content!r} (id {token_id}) is listed twice")
        self.added_tokens_decoder[token_id] = token
        self.added_tokens_encoder[token.content] = token_id

    def _build_encoder(self) -> None:
        self.encoder = self._encoder(self.added_tokens_decoder)
        self._split_encoder = None  # the encoder for split_special_tokens, built when first asked for
        # As the reference, an added token's id decodes to the token's string, even where WordPiece has the id: a
        # normalised token's string is its normalised content ("中" -> " 中 "). An encoding's tokens() shows
        # WordPiece's own string for the tokens WordPiece made, and the matched text for added tokens.
        self.ids_to_tokens.update(self.encoder.token_strings)
        self.shown_tokens = {**self.encoder.shown_strings, **self.wordpiece_tokens}

    def _encoder(self, added_tokens: dict[int, AddedToken]) -> WordPieceEncoder:
        return WordPieceEncoder(
            self.vocab, self.wordpiece_unk_token, added_tokens, lowercase=self.do_lower_case,
            strip_accents=self.do_lower_case if self.strip_accents is None else self.strip_accents,
            split_cjk=self.tokenize_chinese_chars,
        )

    def _encoder_for(self, split_special_tokens: bool | None) -> WordPieceEncoder:
        """The encoder of a call: with split_special_tokens (None: the tokenizer's setting), special tokens
        written in the text are not matched (tokenized as text); other added tokens still are, as in the
        reference."""
        if not (self.split_special_tokens if split_special_tokens is None else split_special_tokens):
            return self.encoder
        if self._split_encoder is None:
            self._split_encoder = self._encoder({i: t for i, t in self.added_tokens_decoder.items() if not t.special})
        return self._split_encoder

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """The named special tokens that are set, as transformers 5 gives them (the extra ones are in
        extra_special_tokens)."""
        return {name: getattr(self, name) for name in SPECIAL_TOKEN_NAMES if getattr(self, name) is not None}

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many tokens encoding adds: [CLS] and [SEP], and a second [SEP] for a pair."""
        return 3 if pair else 2

    @property
    def max_len_single_sentence(self) -> int:
        """The most tokens a single text may have for the model: model_max_length less [CLS] and [SEP]."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """The most tokens a pair's two texts may have together: model_max_length less [CLS] and two [SEP]."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    @property
    def is_fast(self) -> bool:
        """True: offsets, word_ids() and the other lookups of transformers' fast tokenizers are all here."""
        return True

    @property
    def all_special_tokens(self) -> list[str]:
        """The named special tokens that are set (transformers' order: bos, eos, unk, sep, pad, cls, mask), then
        extra_special_tokens."""
        return list(dict.fromkeys([*self.special_tokens_map.values(), *self.extra_special_tokens]))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    @property
    def extra_special_tokens_ids(self) -> list[int]:
        return [self.convert_tokens_to_ids(t) for t in self.extra_special_tokens]

    @extra_special_tokens_ids.setter
    def extra_special_tokens_ids(self, ids: Sequence[int]) -> None:
        self.extra_special_tokens = [self._id_to_token(i) for i in ids]

    # transformers 4's names for the extra special tokens
    additional_special_tokens = property(lambda self: self.extra_special_tokens,
                                         lambda self, tokens: setattr(self, "extra_special_tokens", list(tokens)))
    additional_special_tokens_ids = extra_special_tokens_ids

    bos_token_id = _named_id_property("bos_token")
    eos_token_id = _named_id_property("eos_token")
    unk_token_id = _named_id_property("unk_token")
    sep_token_id = _named_id_property("sep_token")
    pad_token_id = _named_id_property("pad_token")
    cls_token_id = _named_id_property("cls_token")
    mask_token_id = _named_id_property("mask_token")

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token string(s) -> id(s): added tokens first, then WordPiece's; a token in neither gives the [UNK] id."""
        if tokens is None or isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str | None) -> int | None:
        """None for None (an unset special token), as in transformers."""
        if token is None:
            return None
        token_id = self.added_tokens_encoder.get(token, self.vocab.get(token))
        if token_id is None:  # unknown: the [UNK] id
            token_id = self.added_tokens_encoder.get(self.unk_token, self.vocab.get(self.unk_token))
        return token_id

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        """Id(s) -> token string(s); skip_special_tokens drops the special added tokens ([CLS], [SEP], [PAD],
        ..., and those added as special). As in the reference, a token is dropped when its string is a special
        token's content, so a special token matched on normalised text whose string normalisation changed
        ("ZÖRG" -> "zorg") is kept."""
        if np.ndim(ids) == 0:  # one id
            return self._id_to_token(ids)
        tokens = [self._id_to_token(i) for i in ids]  # checks every id, the skipped ones too
        if not skip_special_tokens:
            return tokens
        special = {t.content for t in self.added_tokens_decoder.values() if t.special}
        return [token for token in tokens if token not in special]

    def _id_to_token(self, token_id: int) -> str:
        if not isinstance(token_id, (int, np.integer)):  # int() would turn 1.5 into 1 silently
            raise TypeError(f"token ids must be integers, got {token_id!r}")
        try:
            return self.ids_to_tokens[int(token_id)]
        except KeyError:
            raise ValueError(f"token id {token_id} is outside the vocabulary [0, "
                             f"{max(self.ids_to_tokens) + 1})") from None

    # ---- text -> tokens ---------------------------------------------------------------------------------

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False,
                 **kwargs: Any) -> list[str]:
        """Text (and optional pair) -> token strings, by default without [CLS]/[SEP] ("unaffable" -> ["una",
        "##ffa", "##ble"]); kwargs are the call's (is_split_into_words, split_special_tokens, ...)."""
        return self(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               padding: bool | str = False, truncation: bool | str | None = None, max_length: int | None = None,
               stride: int = 0, padding_side: str | None = None, return_tensors: str | None = None,
               **kwargs: Any) -> list[int] | np.ndarray:
        """Text (and optional pair) -> input ids; kwargs are the call's."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                    max_length=max_length, stride=stride, padding_side=padding_side, return_tensors=return_tensors,
                    **kwargs)["input_ids"]

    def encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        """Kept for code written for transformers 4 (transformers 5 removed it): the call, for one example."""
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs: Sequence[Any], **kwargs: Any) -> BatchEncoding:
        """Kept for code written for transformers 4 (transformers 5 removed it): the call, for a batch of texts
        or (text, pair) tuples."""
        if isinstance(batch_text_or_text_pairs, str) or not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError("batch_encode_plus takes a list of texts or pairs, got "
                            f"{type(batch_text_or_text_pairs).__name__}")
        return self(list(batch_text_or_text_pairs), **kwargs)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int],
                                         token_ids_1: list[int] | None = None) -> list[int]:
        """Kept for code written for transformers 4 (transformers 5 removed it): [CLS] A [SEP] (B [SEP]) on ids."""
        return self._with_special_tokens(_id_tokens(token_ids_0), _id_tokens(token_ids_1), True)["input_ids"]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int],
                                             token_ids_1: list[int] | None = None) -> list[int]:
        """Kept for code written for transformers 4 (transformers 5 removed it): the token type ids of
        build_inputs_with_special_tokens' output (0 through the first [SEP], 1 after)."""
        return self._with_special_tokens(_id_tokens(token_ids_0), _id_tokens(token_ids_1), True)["token_type_ids"]

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for a special token, 0 for a text token. already_has_special_tokens: token_ids_0 is an encoded
        sequence, and each id counts as special if it is one of all_special_ids; otherwise the mask is that of
        build_inputs_with_special_tokens(token_ids_0, token_ids_1) (transformers 4's answer; transformers 5
        raises NotImplementedError)."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("with already_has_special_tokens=True, give one encoded sequence "
                                 "(token_ids_1 must be None)")
            special = set(self.all_special_ids)
            return [int(int(i) in special) for i in token_ids_0]
        row = self._with_special_tokens(_id_tokens(token_ids_0), _id_tokens(token_ids_1), True)
        return [int(word is None) for word in row["word_ids"]]

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool | None = None,
    ) -> BatchEncoding:
        """Encode one text, a pair, or a batch of either, ready for ``model(**encoding)``.

        padding: False | True / "longest" | "max_length", the length then rounded up to a multiple of
        pad_to_multiple_of if given; truncation: None (on when max_length is given and padding is off) |
        False | True / "longest_first" | "only_first" | "only_second". return_overflowing_tokens: what
        truncation cuts comes back as further rows, windows overlapping by `stride` tokens, and
        overflow_to_sample_mapping [rows] says which input each row encodes (the output is then a batch even
        for one input). is_split_into_words: each text is a list of words (a batch, a list of such lists, or
        of (words, pair words) tuples). return_tensors=None gives lists; "np" gives int64 arrays [batch, seq]
        (a batch of one for single inputs), offsets [batch, seq, 2]; "pt" the same as torch tensors (torch
        is imported only then). return_token_type_ids / return_attention_mask: None follows
        model_input_names. Offsets are character spans in the original text (in the word, with
        is_split_into_words); (0, 0) for [CLS], [SEP] and padding. special_tokens_mask: 1 for the added [CLS],
        [SEP] and padding. length: each row's length (a list even for one input, as in transformers).
        padding_side: "right" or "left" for this call (default: the tokenizer's). split_special_tokens: None
        follows the tokenizer's setting. A row longer than model_max_length that nothing truncates is logged
        once per tokenizer, as transformers does (verbose=False silences it). The result's word_ids(i),
        sequence_ids(i) and tokens(i) describe row i.
        """
        padding_side = self._output_options(padding_side, pad_to_multiple_of, return_tensors)
        check_positive_int("stride", stride, minimum=0)
        if not isinstance(is_split_into_words, bool):
            raise TypeError(f"is_split_into_words must be true or false, got {is_split_into_words!r}")
        examples, batched = _examples(text, text_pair, is_split_into_words)
        encoder = self._encoder_for(split_special_tokens)
        padding_strategy, truncation_strategy, max_length = self._strategies(padding, truncation, max_length)
        if padding_strategy and truncation_strategy and pad_to_multiple_of and max_length % pad_to_multiple_of:
            raise ValueError(f"Truncation and padding are both activated but truncation length ({max_length}) is not a "
                             f"multiple of pad_to_multiple_of ({pad_to_multiple_of}).")  # the reference's words

        rows, samples = [], []
        for sample, (first, second) in enumerate(examples):
            a = self._encode_input(first, encoder)
            b = self._encode_input(second, encoder) if second is not None else None
            parts = self._truncated(a, b, truncation_strategy, max_length, stride, add_special_tokens)
            for a_part, b_part in parts if return_overflowing_tokens else parts[:1]:
                rows.append(self._with_special_tokens(a_part, b_part, add_special_tokens))
                samples.append(sample)

        # As in the reference, "longest" is the longest first window of an input: further windows are padded to
        # it, or left as they are (a pair truncated below its special tokens' room gives windows longer than it).
        first_windows = [row for k, row in enumerate(rows) if k == 0 or samples[k] != samples[k - 1]]
        self._pad_rows(rows, padding_strategy, max_length, pad_to_multiple_of, padding_side, first_windows)
        for row in rows:
            row["length"] = len(row["input_ids"])
            if return_special_tokens_mask:
                row["special_tokens_mask"] = [int(word is None) for word in row["word_ids"]]  # added tokens, padding
        if max_length is None and verbose:
            self._warn_if_too_long(max(row["length"] for row in rows))

        wanted = {"token_type_ids": return_token_type_ids, "attention_mask": return_attention_mask,
                  "special_tokens_mask": return_special_tokens_mask, "offset_mapping": return_offsets_mapping,
                  "length": return_length}
        keys = ["input_ids"] + [k for k, on in wanted.items() if on or (on is None and k in self.model_input_names)]
        data = {k: [row[k] for row in rows] for k in keys}
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = samples
        if return_tensors is not None:
            lengths = {len(row["input_ids"]) for row in rows}
            if len(lengths) > 1:
                raise ValueError(f"the encoded sequences have different lengths {sorted(lengths)}; pass "
                                 "padding=True to return arrays")
        elif not batched and not return_overflowing_tokens:
            data = {k: v if k == "length" else v[0] for k, v in data.items()}  # length stays a list, as in transformers
        # Arrays [rows, seq], offsets [rows, seq, 2]
        return BatchEncoding(data, tensor_type=return_tensors, rows=rows, id_to_token=self.shown_tokens)

    def _warn_if_too_long(self, length: int) -> None:
        """transformers' warning, in its words and once per tokenizer, for a row longer than the model's window
        that no truncation cut."""
        key = "sequence-length-is-longer-than-the-specified-maximum"
        if length > self.model_max_length and not self.deprecation_warnings.get(key):
            logger.warning("Token indices sequence length is longer than the specified maximum sequence length for "
                           f"this model ({length} > {self.model_max_length}). Running this sequence through the model "
                           "will result in indexing errors")
            self.deprecation_warnings[key] = True

    def _output_options(self, padding_side: str | None, pad_to_multiple_of: int | None,
                        return_tensors: str | None) -> str:
        """Check the options a call and pad() share; returns the padding side (None: the tokenizer's)."""
        padding_side = self.padding_side if padding_side is None else padding_side
        _check_sides(padding_side, self.truncation_side)  # the attributes may have been set since __init__
        if return_tensors not in (None, "np", "pt"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported: use None (lists), 'np' or 'pt'")
        if pad_to_multiple_of is not None:
            check_positive_int("pad_to_multiple_of", pad_to_multiple_of)
        return padding_side

    def _pad_rows(self, rows: list[dict[str, list]], strategy: str | None, max_length: int | None,
                  pad_to_multiple_of: int | None, side: str, measured: list[dict[str, list]] | None = None) -> None:
        """Pad each row's per-token lists in place, to the longest of the `measured` rows (default: all) or to
        max_length, rounded up to a multiple of pad_to_multiple_of; rows already as long are left alone."""
        if strategy is None:
            return
        if self.pad_token_id is None:
            raise ValueError("Asking to pad but the tokenizer does not have a padding token: set pad_token (e.g. "
                             "tokenizer.pad_token = tokenizer.sep_token) or call without padding")
        target = max(len(row["input_ids"]) for row in measured or rows) if strategy == "longest" else max_length
        if pad_to_multiple_of is not None:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of  # round up
        if target > MAX_PADDED_LENGTH and any(len(row["input_ids"]) < target for row in rows):
            raise ValueError(f"padding to {target} tokens is beyond what any BERT takes (padding stops at "
                             f"{MAX_PADDED_LENGTH}): give a smaller max_length (this model's window is the "
                             "tokenizer's model_max_length)")
        values = {"input_ids": self.pad_token_id, **PAD_VALUES}
        for row in rows:
            missing = max(0, target - len(row["input_ids"]))
            for key in values.keys() & row.keys():
                padding = [values[key]] * missing
                row[key] = row[key] + padding if side == "right" else padding + row[key]

    def pad(self, encoded_inputs: dict | list[dict], padding: bool | str = True, max_length: int | None = None,
            pad_to_multiple_of: int | None = None, padding_side: str | None = None,
            return_attention_mask: bool | None = None, return_tensors: str | None = None) -> BatchEncoding:
        """Pad encodings made without padding, as a data loader's collate step does: a dict of per-row lists
        (or one row's), or a list of such dicts, one per example. input_ids get [PAD], token_type_ids 0,
        special_tokens_mask 1, and the attention_mask 0 (made when missing if return_attention_mask is True,
        or None and model_input_names lists it); other keys (labels, ...) are kept as they are. Never
        truncates: a row longer than max_length stays as it is. return_tensors="np" gives arrays, "pt" torch
        tensors."""
        padding_side = self._output_options(padding_side, pad_to_multiple_of, return_tensors)
        data = _as_columns(encoded_inputs)
        ids = data["input_ids"]
        batched = isinstance(ids, (list, tuple)) and len(ids) > 0 and isinstance(ids[0], (list, tuple))
        columns = [key for key in ("input_ids", *PADDED_BY_PAD) if key in data]
        rows = ([{key: _int_list(data[key][i], key, i) for key in columns} for i in range(len(ids))] if batched
                else [{key: _int_list(data[key], key, 0) for key in columns}])
        wants_mask = return_attention_mask if return_attention_mask is not None else (
            "attention_mask" in self.model_input_names)
        for n, row in enumerate(rows):
            for key in columns:
                if len(row[key]) != len(row["input_ids"]):
                    raise ValueError(f"row {n}: {key} has {len(row[key])} values for {len(row['input_ids'])} input_ids")
            if wants_mask and "attention_mask" not in data:
                row["attention_mask"] = [1] * len(row["input_ids"])
        strategy, _, max_length = self._strategies(padding, False, max_length)
        self._pad_rows(rows, strategy, max_length, pad_to_multiple_of, padding_side)
        padded = {key: [row[key] for row in rows] if batched else rows[0][key] for key in rows[0]}
        result = {**data, **padded}
        if return_tensors is not None:
            result = {key: _array(key, value) for key, value in result.items()}
        return BatchEncoding(result, tensor_type=return_tensors)

    def _encode_input(self, text: str | list[str], encoder: WordPieceEncoder) -> Tokens:
        """A text, or a list of words (is_split_into_words: each word's tokens take its index as their word)."""
        if isinstance(text, str):
            ids, offsets, word_starts, surfaces = encoder.encode(text)
            # word numbers from 0
            return Tokens(ids, offsets, list(itertools.accumulate(word_starts, initial=-1))[1:], surfaces)
        if not isinstance(text, list):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids, offsets, words, surfaces = [], [], [], {}
        for index, word in enumerate(text):
            word_ids, word_offsets, _, word_surfaces = encoder.encode(word)
            surfaces.update({len(ids) + k: v for k, v in word_surfaces.items()})
            ids += word_ids
            offsets += word_offsets
            words += [index] * len(word_ids)
        return Tokens(ids, offsets, words, surfaces)

    def _strategies(self, padding, truncation, max_length) -> tuple[str | None, str | None, int | None]:
        """Resolve padding / truncation / max_length as transformers does."""
        if padding not in PADDING:
            raise ValueError(f"padding={padding!r}: use False, True, 'longest' or 'max_length'")
        if truncation not in TRUNCATION:
            raise ValueError(f"truncation={truncation!r}: use None, False, True, 'longest_first', "
                             "'only_first' or 'only_second'")
        if max_length is not None:
            check_positive_int("max_length", max_length)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers: max_length alone turns truncation on
        padding_strategy, truncation_strategy = PADDING[padding], TRUNCATION[truncation]
        if max_length is None:
            unlimited = self.model_max_length > LARGE_INTEGER
            if padding_strategy == "max_length" and unlimited:
                raise ValueError("padding='max_length' needs max_length: this tokenizer has no model_max_length")
            if truncation_strategy is not None and unlimited:
                truncation_strategy = None  # nothing to truncate to, as in transformers
            if padding_strategy == "max_length" or truncation_strategy is not None:
                max_length = self.model_max_length
        return padding_strategy, truncation_strategy, max_length

    def _truncated(self, a: Tokens, b: Tokens | None, strategy: str | None, max_length: int | None, stride: int,
                   add_special_tokens: bool) -> list[tuple[Tokens, Tokens | None]]:
        """[(a's part, b's part)]: first what truncation keeps, then the overflowing windows (see _spans) in
        the reference's order: each later window of a with b's kept part and then with b's later windows,
        then a's kept part with b's later windows."""
        if strategy is None:
            return [(a, b)]
        specials = self.num_special_tokens_to_add(pair=b is not None) if add_special_tokens else 0
        if max_length < specials:  # transformers silently skips truncation here (an unsigned underflow)
            raise ValueError(f"max_length={max_length} cannot hold the {specials} special tokens of "
                             f"{'a pair' if b is not None else 'a sequence'}")
        keep_a, keep_b = _kept_lengths(len(a.ids), len(b.ids) if b is not None else None,
                                       max_length - specials, strategy)
        a_parts = [a.cut(span) for span in _spans(len(a.ids), keep_a, stride, self.truncation_side)]
        if b is None:
            return [(part, None) for part in a_parts]
        b_parts = [b.cut(span) for span in _spans(len(b.ids), keep_b, stride, self.truncation_side)]
        pairs = [(a_parts[0], b_parts[0])]
        for a_part in a_parts[1:]:
            pairs += [(a_part, b_part) for b_part in b_parts]
        return pairs + [(a_parts[0], b_part) for b_part in b_parts[1:]]

    def _with_special_tokens(self, a: Tokens, b: Tokens | None, add_special_tokens: bool) -> dict[str, list]:
        """[CLS] A [SEP] (B [SEP]): token type 0 up to the first [SEP], 1 after it. Besides the model's inputs,
        a row keeps each token's word: None marks the added tokens (and later the padding)."""
        pair = b is not None
        if add_special_tokens:
            cls, sep = self.cls_token_id, self.sep_token_id
            if cls is None or sep is None:
                raise ValueError("add_special_tokens=True needs cls_token and sep_token, and one of them is None")
            row = {"input_ids": [cls, *a.ids, sep], "offset_mapping": [(0, 0), *a.offsets, (0, 0)],
                   "word_ids": [None, *a.words, None], "token_type_ids": [0] * (len(a.ids) + 2)}
            if b is not None:
                row["input_ids"] += [*b.ids, sep]
                row["offset_mapping"] += [*b.offsets, (0, 0)]
                row["word_ids"] += [*b.words, None]
                row["token_type_ids"] += [1] * (len(b.ids) + 1)
        else:
            b = b or Tokens([], [], [], {})
            row = {"input_ids": a.ids + b.ids, "offset_mapping": a.offsets + b.offsets, "word_ids": a.words + b.words,
                   "token_type_ids": [0] * len(a.ids) + [1] * len(b.ids)}
        if a.surfaces or (b is not None and b.surfaces):  # rare: only added tokens matched by normalised text
            first = int(add_special_tokens)
            row["surface"] = [None] * len(row["input_ids"])
            for k, surface in a.surfaces.items():
                row["surface"][first + k] = surface
            for k, surface in (b.surfaces if b is not None else {}).items():
                row["surface"][2 * first + len(a.ids) + k] = surface
        row["attention_mask"] = [1] * len(row["input_ids"])
        row["pair"] = pair
        return row

    # ---- ids -> text ------------------------------------------------------------------------------------

    def decode(self, token_ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str | list[str]:
        """Ids -> text: the tokens joined by convert_tokens_to_string, then transformers'
        clean_up_tokenization_spaces if it is on (None: the tokenizer's setting). A batch of sequences (a list
        of lists, a 2-D array) gives a list of texts, as in transformers 5."""
        array = np.asarray(token_ids) if not isinstance(token_ids, list) or _flat(token_ids) else None
        if array is None or array.ndim == 2:  # a batch; its rows may differ in length
            return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in token_ids]
        if array.ndim > 2:
            raise ValueError(f"decode takes a sequence of ids or a batch of them, got an array of shape {array.shape}")
        if array.size and array.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got {array.dtype} values")
        tokens = self.convert_ids_to_tokens(array.reshape(-1).tolist(), skip_special_tokens=skip_special_tokens)
        text = self.convert_tokens_to_string(tokens)
        if self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces:
            text = _replace_all(text, TEXT_CLEANUP)
        return text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """decode() of each sequence."""
        return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in sequences]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Token strings -> text, as the reference's WordPiece decoder joins them: "##" pieces glued to the
        previous token, a space before every other, and its per-token clean-up (no space before . ? ! ,)."""
        pieces = []
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                raise TypeError(f"tokens must be strings, got {token!r}")
            if i > 0:
                token = token[2:] if token.startswith("##") else " " + token
            pieces.append(_replace_all(token, DECODER_CLEANUP))
        return "".join(pieces)


def _warn_if_ignored(kwargs: dict[str, Any]) -> None:
    """do_basic_tokenize=False and never_split, transformers 4's Python-tokenizer options, are ignored here as
    in transformers 5's BertTokenizer; say so when they ask for something else than BERT's basic tokenizer."""
    if kwargs.get("do_basic_tokenize", True) is not True or kwargs.get("never_split"):
        logger.warning("do_basic_tokenize=%r and never_split=%r are ignored, as transformers 5's BertTokenizer ignores "
                       "them: the text is always split as BERT's basic tokenizer splits it",
                       kwargs.get("do_basic_tokenize", True), kwargs.get("never_split"))


def _id_tokens(ids: Sequence[int] | None) -> Tokens | None:
    """Token ids as a text's Tokens (no spans, every token a word), for building rows from ids alone."""
    if ids is None:
        return None
    ids = [int(i) for i in ids]
    return Tokens(ids, [(0, 0)] * len(ids), list(range(len(ids))), {})


def _flat(values: list) -> bool:
    """Whether a list holds no lists (one sequence, not a batch of them)."""
    return not any(isinstance(v, (list, tuple, np.ndarray)) for v in values)


def _as_columns(encoded_inputs: Any) -> dict[str, Any]:
    """pad()'s input as one dict of columns: a list of per-example dicts becomes a dict of lists."""
    if isinstance(encoded_inputs, (list, tuple)):
        if not encoded_inputs or not all(isinstance(e, dict) for e in encoded_inputs):
            raise ValueError("pad takes a dict of lists, or a non-empty list of dicts (one per example)")
        keys = list(encoded_inputs[0])
        for i, example in enumerate(encoded_inputs):
            if list(example) != keys:
                raise ValueError(f"example {i} has the keys {list(example)}, example 0 {keys}")
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in keys}
    if not isinstance(encoded_inputs, dict):
        raise TypeError(f"pad takes a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}")
    if "input_ids" not in encoded_inputs:
        raise ValueError(f"pad needs input_ids; the encoding has {list(encoded_inputs)}")
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in encoded_inputs.items()}


def _int_list(values: Any, key: str, row: int) -> list[int]:
    """One row of a column pad() pads, checked: a list of integers."""
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"row {row}: {key} must be a list of integers, got {str(values)[:80]}")
    return list(values)


def _array(key: str, value: Any) -> np.ndarray:
    try:
        return np.array(value, dtype=np.int64 if key in ("input_ids", *PADDED_BY_PAD) else None)
    except ValueError:
        raise ValueError(f"{key} has rows of different lengths, so it cannot become an array: pad() pads only "
                         f"input_ids, {', '.join(PADDED_BY_PAD)}") from None


def _check_sides(padding_side: str, truncation_side: str) -> None:
    for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
        if side not in SIDES:
            raise ValueError(f"{name}={side!r}: use 'right' or 'left'")


def _examples(text: Any, text_pair: Any, split_into_words: bool) -> tuple[list[tuple], bool]:
    """Normalise the accepted input forms to [(first, second or None)] and whether the input was a batch. A
    text is a str, or with split_into_words a list of words."""
    if split_into_words:
        return _word_examples(text, text_pair)
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(f"text_pair must be a str when text is a str, got {type(text_pair).__name__}")
        return [(text, text_pair or None)], False  # as the reference: an empty pair is no pair (not in a batch)
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str, a list of str or a list of (str, str) pairs, got {type(text).__name__}")
    items = _zipped(text, text_pair, "texts")
    examples = []
    for i, item in enumerate(items):
        example = tuple(item) if isinstance(item, (list, tuple)) else (item, None)
        if len(example) != 2 or not isinstance(example[0], str) or not isinstance(example[1], (str, type(None))):
            raise TypeError(f"batch item {i} is {item!r}: expected a str or a (str, str) pair")
        examples.append(example)
    if not examples:
        raise ValueError("the batch of texts is empty")
    return examples, True


def _word_examples(text: Any, text_pair: Any) -> tuple[list[tuple], bool]:
    """is_split_into_words: a list of words is one text; a list whose first item is a list is a batch, each
    item a list of words or a (words, pair words) tuple; pairs may also come through text_pair, in the same
    form as text (transformers' rules)."""
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"with is_split_into_words, text must be a list of words or a list of such lists, got "
                        f"{type(text).__name__}")
    batched = bool(text) and isinstance(text[0], (list, tuple))
    if not batched:
        if text_pair is not None and not isinstance(text_pair, (list, tuple)):
            raise TypeError("with is_split_into_words, text_pair must be a list of words, got "
                            f"{type(text_pair).__name__}")
        examples = [(text, text_pair or None)]  # as the reference: an empty pair is no pair (not in a batch)
    else:
        examples = [item if _is_word_pair(item) else (item, None) for item in _zipped(text, text_pair, "word lists")]
    for words in (words for example in examples for words in example if words is not None):
        if not isinstance(words, (list, tuple)) or not all(isinstance(word, str) for word in words):
            raise TypeError(f"with is_split_into_words, every text must be a list of words (str), got {words!r}")
    return [(list(a), list(b) if b is not None else None) for a, b in examples], batched


def _is_word_pair(item: Any) -> bool:
    """A batch item that is (words, pair words) rather than one list of words."""
    return (isinstance(item, (list, tuple)) and len(item) == 2
            and all(isinstance(part, (list, tuple)) for part in item))


def _zipped(text: Sequence, text_pair: Any, what: str) -> list:
    """A batch's items, each zipped with its pair when text_pair is given."""
    if text_pair is None:
        return list(text)
    if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
        raise ValueError(f"text_pair must be a list as long as the batch of {what}")
    return list(zip(text, text_pair))


def _kept_lengths(n_a: int, n_b: int | None, budget: int, strategy: str) -> tuple[int, int | None]:
    """How many tokens of a and of b (None: no pair) truncation keeps so that they fit `budget`, as the
    reference decides.

    longest_first: if the shorter sequence fits beside the longer, only the longer is cut; otherwise both are
    cut to half the budget, the *second* sequence getting the odd token on a tie or overflow
    (the reference's rule; the old Python tokenizer removed one token at a time from the longer).
    """
    if n_a + (n_b or 0) <= budget:
        return n_a, n_b
    if budget == 0:  # the reference empties both sequences, whatever the strategy
        return 0, (0 if n_b is not None else None)
    if strategy == "longest_first":
        if n_b is None:
            return budget, None
        short, long = sorted((n_a, n_b))
        keep_short, keep_long = short, (short if short > budget else max(short, budget - short))
        if keep_short + keep_long > budget:
            keep_short, keep_long = budget // 2, budget // 2 + budget % 2
        return (keep_long, keep_short) if n_a > n_b else (keep_short, keep_long)
    if strategy == "only_second" and n_b is None:
        raise ValueError("Truncation error: Second sequence not provided")
    target = n_a if strategy == "only_first" else n_b
    excess = n_a + n_b - budget if n_b is not None else n_a - budget
    if target <= excess:
        raise ValueError("Truncation error: Sequence to truncate too short to respect the provided max_length")
    return (n_a - excess, n_b) if strategy == "only_first" else (n_a, n_b - excess)


def _spans(n: int, keep: int, stride: int, side: str) -> list[tuple[int, int]]:
    """Truncating n tokens to `keep`: the (start, stop) span kept (at the start for side="right", at the end
    for "left"), then the windows of what is cut, each overlapping the one before by `stride` tokens, as the
    reference's Encoding.truncate lays them out. keep=0 keeps nothing and overflows everything at once."""
    if keep >= n:
        return [(0, n)]
    if keep == 0:
        return [(0, 0), (0, n)]
    if stride >= keep:
        raise ValueError(f"stride={stride} must be less than the {keep} tokens truncation keeps of this sequence "
                         "(max_length less the special tokens, and for a pair the other sequence's share)")
    step, spans = keep - stride, []
    if side == "right":
        start = 0
        while not spans or spans[-1][1] < n:
            spans.append((start, min(start + keep, n)))
            start += step
    else:
        stop = n
        while not spans or spans[-1][0] > 0:
            spans.append((max(stop - keep, 0), stop))
            stop -= step
    return spans


# The reference WordPiece decoder's clean-up, applied to each token with its leading space ...
DECODER_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                   (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
# ... and transformers' clean_up_tokenization_spaces, applied to the whole text when enabled.
TEXT_CLEANUP = tuple(pair for pair in DECODER_CLEANUP if pair[0] != " do not")


def _replace_all(text: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for dirty, clean in replacements:
        text = text.replace(dirty, clean)
    return text
