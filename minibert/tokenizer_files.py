"""The tokenizer's files as BertTokenizer reads them: vocab.txt, tokenizer_config.json and tokenizer.json."""

from __future__ import annotations

import json
import os
from typing import Any

from .added_tokens import AddedToken
from .wordpiece import MAX_WORD_CHARS

SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TOKENIZER_FILE = "tokenizer.json"  # the `tokenizers` library's file, which transformers reads first
TOKENIZER_FILES = (TOKENIZER_FILE, "vocab.txt", "tokenizer_config.json")  # what from_pretrained reads, when present


def load_vocab(vocab_file: str | os.PathLike) -> list[str]:
    """vocab.txt -> its tokens, line by line (a token's id is its line number). Only the newline is stripped
    (as transformers does)."""
    try:
        with open(vocab_file, encoding="utf-8") as f:
            tokens = f.read().split("\n")
    except FileNotFoundError:
        raise FileNotFoundError(f"no vocabulary file at {os.fspath(vocab_file)!r}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{os.fspath(vocab_file)!r} is not UTF-8 text: {e}") from None
    if tokens and tokens[-1] == "":
        tokens.pop()  # the final newline ends the last line; it does not start a new token
    if not tokens:
        raise ValueError(f"the vocabulary file {os.fspath(vocab_file)!r} is empty")
    return tokens


def read_tokenizer_config(config_file: str) -> dict[str, Any]:
    """tokenizer_config.json -> the BertTokenizer arguments it sets."""
    config = _json_object(config_file)
    settings = {}
    for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length",
                "clean_up_tokenization_spaces", "padding_side", "truncation_side", *SPECIAL_TOKEN_NAMES):
        if config.get(key) is not None:
            value = config[key]
            settings[key] = value["content"] if isinstance(value, dict) else value  # AddedToken form
    extra = config.get("extra_special_tokens", config.get("additional_special_tokens"))
    if extra:
        if not isinstance(extra, list):
            raise ValueError(f"{config_file!r}: extra_special_tokens must be a list, got {extra!r}")
        settings["extra_special_tokens"] = [AddedToken.from_dict(t, config_file) if isinstance(t, dict) else t
                                            for t in extra]
    decoder = config.get("added_tokens_decoder")
    if decoder:
        if not isinstance(decoder, dict):
            raise ValueError(f"{config_file!r}: added_tokens_decoder must map ids to tokens, got {str(decoder)[:80]}")
        try:
            settings["added_tokens_decoder"] = {int(i): AddedToken.from_dict(t, config_file) for i, t in decoder.items()}
        except ValueError as e:
            raise ValueError(f"{config_file!r}: added_tokens_decoder: {e}") from None
    return settings


def read_tokenizer_json(tokenizer_file: str) -> tuple[dict[str, int], dict[int, AddedToken]]:
    """tokenizer.json -> WordPiece's vocabulary and the added tokens {id: AddedToken}."""
    data = _json_object(tokenizer_file)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type", "WordPiece") != "WordPiece" or "vocab" not in model:
        kind = model.get("type") if isinstance(model, dict) else model
        raise ValueError(f"{tokenizer_file!r} does not describe a WordPiece tokenizer (its model is {kind!r})")
    if model.get("continuing_subword_prefix", "##") != "##" or model.get("max_input_chars_per_word", MAX_WORD_CHARS) != MAX_WORD_CHARS:
        raise ValueError(f"{tokenizer_file!r}: minibert's WordPiece uses the prefix '##' and {MAX_WORD_CHARS} characters "
                         f"per word, the file asks for {model.get('continuing_subword_prefix')!r} and "
                         f"{model.get('max_input_chars_per_word')!r}")
    added = data.get("added_tokens") or []
    if not isinstance(added, list):
        raise ValueError(f"{tokenizer_file!r}: added_tokens must be a list, got {str(added)[:80]}")
    tokens = {}
    for entry in added:
        token = AddedToken.from_dict(entry, tokenizer_file)
        if isinstance(entry.get("id"), bool) or not isinstance(entry.get("id"), int):
            raise ValueError(f"{tokenizer_file!r}: added token {token.content!r} has no integer id")
        tokens[entry["id"]] = token
    return checked_vocab(model["vocab"], tokenizer_file), tokens


def _json_object(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path!r} must hold a JSON object, not a {type(data).__name__}")
    return data


def checked_vocab(vocab: Any, where: str = "the vocabulary") -> dict[str, int]:
    """A {token: id} vocabulary whose ids are distinct integers ≥ 0 (a vocab.txt that lists a token twice
    leaves a gap: the token keeps its last line, as in transformers)."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{where}: the vocabulary must be a non-empty {{token: id}} object")
    ids = list(vocab.values())
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids) or len(set(ids)) < len(ids):
        raise ValueError(f"{where}: the vocabulary's ids must be distinct integers ≥ 0")
    return dict(vocab)
