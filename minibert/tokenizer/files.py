"""The tokenizer's files, as BertTokenizer reads and writes them: vocab.txt, tokenizer_config.json and
tokenizer.json."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ..loading.files import read_json, regular_file
from .added_tokens import AddedToken
from .wordpiece import MAX_WORD_CHARS

if TYPE_CHECKING:
    from .tokenizer import BertTokenizer

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# Either of the first two holds the vocabulary: tokenizer.json (the `tokenizers` library's file, which
# transformers reads first) or vocab.txt. What from_pretrained reads, when present, in this order.
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt")
TOKENIZER_FILES = (*VOCABULARY_FILES, "tokenizer_config.json")
# Token ids beyond this would make the id tables (and a saved vocab.txt, a line per id) absurdly large.
MAX_TOKEN_ID = 1 << 22
# transformers' stand-in for "no limit" when a tokenizer has no model_max_length.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)


def load_vocab(vocab_file: str | os.PathLike) -> list[str]:
    """vocab.txt -> its tokens, line by line (a token's id is its line number). Only the newline is stripped
    (as transformers does)."""
    data = regular_file(vocab_file, what="vocabulary file").read_bytes()
    try:
        tokens = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"{os.fspath(vocab_file)}: not UTF-8 text (byte {data[e.start]:#04x} at "
                         f"offset {e.start})") from None
    if tokens and tokens[-1] == "":
        tokens.pop()  # the final newline ends the last line; it does not start a new token
    if not tokens:
        raise ValueError(f"the vocabulary file {os.fspath(vocab_file)!r} is empty")
    return tokens


def read_tokenizer_config(config_file: str) -> dict[str, Any]:
    """tokenizer_config.json -> the BertTokenizer arguments it sets. Keys BertTokenizer does not use are
    passed on too (it keeps them in init_kwargs, as transformers does); keys set to null are left out."""
    config = _json_object(config_file)
    read_elsewhere = ("extra_special_tokens", "additional_special_tokens", "added_tokens_decoder", "max_len",
                      "name_or_path", "vocab_file", "vocab", "tokenizer_file")  # the last four: from_pretrained's
    settings = {key: value for key, value in config.items() if value is not None and key not in read_elsewhere}
    for key in SPECIAL_TOKEN_NAMES:
        if isinstance(settings.get(key), dict):
            settings[key] = settings[key].get("content")  # the AddedToken form
        if key in settings and not isinstance(settings[key], str):
            raise ValueError(f"{config_file}: {key} must be a string (or an AddedToken object), got "
                             f"{json.dumps(settings[key])[:60]}")
    if config.get("model_max_length") is None and config.get("max_len") is not None:
        settings["model_max_length"] = config["max_len"]  # the name older files use
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
            settings["added_tokens_decoder"] = {int(i): AddedToken.from_dict(t, config_file)
                                                for i, t in decoder.items()}
            if not all(0 <= i < MAX_TOKEN_ID for i in settings["added_tokens_decoder"]):
                raise ValueError(f"ids must lie in [0, {MAX_TOKEN_ID})")
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
    if (model.get("continuing_subword_prefix", "##") != "##"
            or model.get("max_input_chars_per_word", MAX_WORD_CHARS) != MAX_WORD_CHARS):
        raise ValueError(f"{tokenizer_file!r}: minibert's WordPiece uses the prefix '##' and "
                         f"{MAX_WORD_CHARS} characters per word, the file asks for "
                         f"{model.get('continuing_subword_prefix')!r} and {model.get('max_input_chars_per_word')!r}")
    added = data.get("added_tokens") or []
    if not isinstance(added, list):
        raise ValueError(f"{tokenizer_file!r}: added_tokens must be a list, got {str(added)[:80]}")
    tokens = {}
    for entry in added:
        token = AddedToken.from_dict(entry, tokenizer_file)
        if (isinstance(entry.get("id"), bool) or not isinstance(entry.get("id"), int)
                or not 0 <= entry["id"] < MAX_TOKEN_ID):
            raise ValueError(f"{tokenizer_file!r}: added token {token.content!r} has no integer id in "
                             f"[0, {MAX_TOKEN_ID})")
        tokens[entry["id"]] = token
    return checked_vocab(model["vocab"], tokenizer_file), tokens


def _json_object(path: str) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object, not a {type(data).__name__}")
    return data


def checked_vocab(vocab: Any, where: str = "the vocabulary") -> dict[str, int]:
    """A {token: id} vocabulary whose ids are distinct integers ≥ 0 (a vocab.txt that lists a token twice
    leaves a gap: the token keeps its last line, as in transformers)."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{where}: the vocabulary must be a non-empty {{token: id}} object")
    ids = list(vocab.values())
    if any(isinstance(i, bool) or not isinstance(i, int)
           or not 0 <= i < MAX_TOKEN_ID for i in ids) or len(set(ids)) < len(ids):
        raise ValueError(f"{where}: the vocabulary's ids must be distinct integers in [0, {MAX_TOKEN_ID})")
    return dict(vocab)


def write_tokenizer_files(tokenizer: BertTokenizer, directory: str | os.PathLike) -> tuple[str, str, str]:
    """Write tokenizer_config.json, vocab.txt and tokenizer.json for `tokenizer` into `directory` (made if
    missing); returns their paths."""
    t = tokenizer
    os.makedirs(directory, exist_ok=True)
    tokenizer_file, vocab_file, config_file = (os.path.join(directory, name) for name in TOKENIZER_FILES)
    write_vocab(t, vocab_file)
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": t.do_lower_case, "strip_accents": t.strip_accents,
              "tokenize_chinese_chars": t.tokenize_chinese_chars,
              "clean_up_tokenization_spaces": t.clean_up_tokenization_spaces,
              "padding_side": t.padding_side, "truncation_side": t.truncation_side,
              "model_input_names": list(t.model_input_names), "split_special_tokens": t.split_special_tokens,
              **{name: getattr(t, name) for name in SPECIAL_TOKEN_NAMES if getattr(t, name) is not None},
              "extra_special_tokens": list(t.extra_special_tokens),
              "added_tokens_decoder": {str(i): token.as_dict() for i, token in t.added_tokens_decoder.items()}}
    if t.model_max_length < LARGE_INTEGER:
        config["model_max_length"] = t.model_max_length
    for path, data in ((config_file, config), (tokenizer_file, tokenizer_json(t))):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
    return config_file, vocab_file, tokenizer_file


def write_vocab(tokenizer: BertTokenizer, vocab_file: str) -> None:
    """vocab.txt: WordPiece's vocabulary, one token a line, the line number being the id; an id the
    vocabulary lacks (possible in a tokenizer.json) gets an empty line."""
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.writelines(tokenizer.wordpiece_tokens.get(i, "") + "\n" for i in range(tokenizer.wordpiece_size))


def tokenizer_json(tokenizer: BertTokenizer) -> dict[str, Any]:
    """The `tokenizers` library's description of a BertTokenizer (what transformers loads first)."""
    t = tokenizer
    cls, sep = t.cls_token, t.sep_token
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [t.added_tokens_decoder[i].as_dict(i) for i in sorted(t.added_tokens_decoder)],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": t.tokenize_chinese_chars,
                       "strip_accents": t.strip_accents, "lowercase": t.do_lower_case},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep, "type_id": 1}}],
            "special_tokens": {token: {"id": token, "ids": [t.convert_tokens_to_ids(token)], "tokens": [token]}
                               for token in dict.fromkeys((cls, sep))},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": t.wordpiece_unk_token, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": MAX_WORD_CHARS, "vocab": t.vocab},
    }
