"""BertTokenizer: the API of transformers' BertTokenizer over minibert's own WordPiece (minibert/wordpiece.py).

Swapping ``from transformers import BertTokenizer`` for ``from minibert import BertTokenizer`` gives the same
ids, token type ids, attention masks and offsets; no Rust, no torch.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from .errors import check_positive_int
from .hub import model_directory
from .wordpiece import WordPieceEncoder

# transformers' stand-in for "no limit" when a tokenizer has no model_max_length.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)
PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
              "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}
SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
SIDES = ("right", "left")  # padding_side / truncation_side


class BatchEncoding(dict):
    """The tokenizer's output: a dict (so ``model(**encoding)`` works) whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class BertTokenizer:
    """BERT's WordPiece tokenizer.

    vocab_file: a vocab.txt, one token per line, the line number being the id. strip_accents=None follows
    do_lower_case, as in BERT. model_max_length: the longest input the model takes (None: no limit).
    padding_side and truncation_side: "right" (BERT's) or "left", where padding goes and which end
    truncation cuts.
    """

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int | None = None,
        clean_up_tokenization_spaces: bool = False,
        padding_side: str = "right",
        truncation_side: str = "right",
    ) -> None:
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars", tokenize_chinese_chars),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces),
                            *([("strip_accents", strip_accents)] if strip_accents is not None else [])):
            if not isinstance(value, bool):  # the string "false" would count as true
                raise TypeError(f"{name} must be true or false, got {value!r}")
        if isinstance(model_max_length, float) and model_max_length.is_integer():
            model_max_length = int(model_max_length)  # some configs write 1e30
        if model_max_length is not None:
            check_positive_int("model_max_length", model_max_length)
        _check_sides(padding_side, truncation_side)
        self.padding_side, self.truncation_side = padding_side, truncation_side  # checked again by each call
        lines = load_vocab(vocab_file)
        self.vocab = {token: i for i, token in enumerate(lines)}  # a token listed twice takes its last line, as in transformers
        self.ids_to_tokens = dict(enumerate(lines))  # every line, so that saving writes the file back as it was
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        for name in SPECIAL_TOKEN_NAMES:
            if getattr(self, name) not in self.vocab:
                raise ValueError(f"{name} {getattr(self, name)!r} is not in the vocabulary {os.fspath(vocab_file)!r}")
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.encoder = WordPieceEncoder(
            self.vocab, unk_token, self.all_special_tokens, lowercase=do_lower_case,
            strip_accents=do_lower_case if strip_accents is None else strip_accents,
            split_cjk=tokenize_chinese_chars,
        )

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, revision: str | None = None, local_files_only: bool = False,
        token: str | bool | None = None, cache_dir: str | os.PathLike | None = None, **kwargs: Any,
    ) -> BertTokenizer:
        """Load vocab.txt from a model directory, a Hugging Face cache folder, a hub id or a miniature's
        name, honouring tokenizer_config.json when present (do_lower_case, strip_accents,
        tokenize_chinese_chars, model_max_length, special tokens). Keyword arguments override the file."""
        path = os.fspath(model_directory(name_or_path, need=("vocab.txt",), want=("tokenizer_config.json",),
                                         revision=revision, local_files_only=local_files_only, token=token,
                                         cache_dir=cache_dir))
        vocab_file = os.path.join(path, "vocab.txt")
        if not os.path.isfile(vocab_file):
            raise FileNotFoundError(f"no vocab.txt in {path!r}")
        settings = {}
        config_file = os.path.join(path, "tokenizer_config.json")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as f:
                try:
                    config = json.load(f)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{config_file!r} is not valid JSON: {e}") from None
            if not isinstance(config, dict):
                raise ValueError(f"{config_file!r} must hold a JSON object, not a {type(config).__name__}")
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length",
                        "clean_up_tokenization_spaces", "padding_side", "truncation_side", *SPECIAL_TOKEN_NAMES):
                if config.get(key) is not None:
                    value = config[key]
                    settings[key] = value["content"] if isinstance(value, dict) else value  # AddedToken form
        return cls(vocab_file, **{**settings, **kwargs})

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write vocab.txt and tokenizer_config.json, readable by this class and by transformers."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.writelines(token + "\n" for token in self.ids_to_tokens.values())
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": self.do_lower_case,
                  "strip_accents": self.strip_accents, "tokenize_chinese_chars": self.tokenize_chinese_chars,
                  "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                  "padding_side": self.padding_side, "truncation_side": self.truncation_side,
                  **{name: getattr(self, name) for name in SPECIAL_TOKEN_NAMES}}
        if self.model_max_length < LARGE_INTEGER:
            config["model_max_length"] = self.model_max_length
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)

    # ---- vocabulary -------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    @property
    def all_special_tokens(self) -> list[str]:
        return list(dict.fromkeys(getattr(self, name) for name in SPECIAL_TOKEN_NAMES))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        return self.vocab[self.mask_token]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token string(s) -> id(s); a token not in the vocabulary gives the [UNK] id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if np.ndim(ids) == 0:  # one id
            return self._id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = [self._id_to_token(i) for i in ids]  # checks every id, the skipped ones too
        return [token for i, token in zip(ids, tokens) if int(i) not in special]

    def _id_to_token(self, token_id: int) -> str:
        if not isinstance(token_id, (int, np.integer)):  # int() would turn 1.5 into 1 silently
            raise TypeError(f"token ids must be integers, got {token_id!r}")
        try:
            return self.ids_to_tokens[int(token_id)]
        except KeyError:
            raise ValueError(f"token id {token_id} is outside the vocabulary [0, {len(self.ids_to_tokens)})") from None

    # ---- text -> tokens ---------------------------------------------------------------------------------

    def tokenize(self, text: str, text_pair: str | None = None) -> list[str]:
        """Text -> WordPiece token strings, without [CLS]/[SEP] ("unaffable" -> ["una", "##ffa", "##ble"])."""
        ids = self._encode_text(text)[0] + (self._encode_text(text_pair)[0] if text_pair is not None else [])
        return [self.ids_to_tokens[i] for i in ids]

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               truncation: bool | str | None = None, max_length: int | None = None,
               padding: bool | str = False, return_tensors: str | None = None) -> list[int] | np.ndarray:
        """Text (and optional pair) -> input ids."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                    max_length=max_length, padding=padding, return_tensors=return_tensors)["input_ids"]

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]],
        text_pair: str | Sequence[str] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_offsets_mapping: bool = False,
        padding_side: str | None = None,
    ) -> BatchEncoding:
        """Encode one text, a pair, or a batch of either, ready for ``model(**encoding)``.

        padding: False | True / "longest" | "max_length"; truncation: None (on when max_length is given and
        padding is off) | False | True / "longest_first" | "only_first" | "only_second".
        return_tensors=None gives lists; "np" gives int64 arrays [batch, seq] (a batch of one for single
        inputs), offsets [batch, seq, 2]. Offsets are character spans in the original text; (0, 0) for
        [CLS], [SEP] and padding. padding_side: "right" or "left" for this call (default: the tokenizer's).
        """
        padding_side = self.padding_side if padding_side is None else padding_side
        _check_sides(padding_side, self.truncation_side)  # the attributes may have been set since __init__
        examples, batched = _examples(text, text_pair)
        padding_strategy, truncation_strategy, max_length = self._strategies(padding, truncation, max_length)
        if return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported: use None (lists) or 'np'")

        rows = []
        for first, second in examples:
            a, a_offsets = self._encode_text(first)
            b, b_offsets = self._encode_text(second) if second is not None else (None, None)
            if truncation_strategy is not None:
                specials = (3 if b is not None else 2) if add_special_tokens else 0
                if max_length < specials:  # transformers silently skips truncation here (an unsigned underflow)
                    raise ValueError(f"max_length={max_length} cannot hold the {specials} special tokens of "
                                     f"{'a pair' if b is not None else 'a sequence'}")
                a, a_offsets, b, b_offsets = _truncate(a, a_offsets, b, b_offsets, max_length - specials,
                                                       truncation_strategy, self.truncation_side)
            rows.append(self._with_special_tokens(a, a_offsets, b, b_offsets, add_special_tokens))

        if padding_strategy is not None:
            target = max(len(r["input_ids"]) for r in rows) if padding_strategy == "longest" else max_length
            for row in rows:
                missing = max(0, target - len(row["input_ids"]))
                for key, pad in (("input_ids", self.pad_token_id), ("token_type_ids", 0), ("attention_mask", 0),
                                 ("offset_mapping", (0, 0))):
                    row[key] = row[key] + [pad] * missing if padding_side == "right" else [pad] * missing + row[key]

        keys = ["input_ids"] + ["token_type_ids"] * return_token_type_ids + ["attention_mask"] * return_attention_mask
        keys += ["offset_mapping"] * return_offsets_mapping
        encoding = BatchEncoding({k: [row[k] for row in rows] for k in keys})
        if return_tensors == "np":
            lengths = {len(row["input_ids"]) for row in rows}
            if len(lengths) > 1:
                raise ValueError(f"the encoded sequences have different lengths {sorted(lengths)}; pass "
                                 "padding=True to return arrays")
            return BatchEncoding({k: np.array(v, dtype=np.int64).reshape(len(rows), -1, *([2] if k == "offset_mapping" else []))
                                  for k, v in encoding.items()})
        return encoding if batched else BatchEncoding({k: v[0] for k, v in encoding.items()})

    def _encode_text(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.encoder.encode(text)

    def _strategies(self, padding, truncation, max_length) -> tuple[str | None, str | None, int | None]:
        """Resolve padding / truncation / max_length as transformers does."""
        if padding not in PADDING:
            raise ValueError(f"padding={padding!r}: use False, True, 'longest' or 'max_length'")
        if truncation not in TRUNCATION:
            raise ValueError(f"truncation={truncation!r}: use None, False, True, 'longest_first', 'only_first' or 'only_second'")
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

    def _with_special_tokens(self, a, a_offsets, b, b_offsets, add_special_tokens: bool) -> dict[str, list]:
        """[CLS] A [SEP] (B [SEP]): token type 0 up to the first [SEP], 1 after it."""
        if add_special_tokens:
            cls, sep = self.cls_token_id, self.sep_token_id
            ids, offsets, types = [cls, *a, sep], [(0, 0), *a_offsets, (0, 0)], [0] * (len(a) + 2)
            if b is not None:
                ids += [*b, sep]
                offsets += [*b_offsets, (0, 0)]
                types += [1] * (len(b) + 1)
        else:
            ids, offsets, types = list(a), list(a_offsets), [0] * len(a)
            if b is not None:
                ids += b
                offsets += b_offsets
                types += [1] * len(b)
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids), "offset_mapping": offsets}

    # ---- ids -> text ------------------------------------------------------------------------------------

    def decode(self, ids: Any, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        """Ids -> text: "##" pieces glued to the previous token, a space before every other token, and
        the reference decoder's per-token clean-up (no space before . ? ! ,)."""
        array = np.asarray(ids)
        if array.ndim > 1:
            raise ValueError(f"decode takes one sequence of ids, got an array of shape {array.shape}; use batch_decode "
                             "for a batch")
        if array.size and array.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got {array.dtype} values")
        tokens = self.convert_ids_to_tokens(array.reshape(-1).tolist(), skip_special_tokens=skip_special_tokens)
        pieces = []
        for i, token in enumerate(tokens):
            if i > 0:
                token = token[2:] if token.startswith("##") else " " + token
            pieces.append(_replace_all(token, DECODER_CLEANUP))
        text = "".join(pieces)
        if self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces:
            text = _replace_all(text, TEXT_CLEANUP)
        return text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in sequences]


def _check_sides(padding_side: str, truncation_side: str) -> None:
    for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
        if side not in SIDES:
            raise ValueError(f"{name}={side!r}: use 'right' or 'left'")


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


def _examples(text: Any, text_pair: Any) -> tuple[list[tuple[str, str | None]], bool]:
    """Normalise the accepted input forms to [(first, second or None)] and whether the input was a batch."""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(f"text_pair must be a str when text is a str, got {type(text_pair).__name__}")
        return [(text, text_pair)], False
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str, a list of str or a list of (str, str) pairs, got {type(text).__name__}")
    if text_pair is not None:
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError("text_pair must be a list as long as the batch of texts")
        items = list(zip(text, text_pair))
    else:
        items = list(text)
    examples = []
    for i, item in enumerate(items):
        example = tuple(item) if isinstance(item, (list, tuple)) else (item, None)
        if len(example) != 2 or not isinstance(example[0], str) or not isinstance(example[1], (str, type(None))):
            raise TypeError(f"batch item {i} is {item!r}: expected a str or a (str, str) pair")
        examples.append(example)
    if not examples:
        raise ValueError("the batch of texts is empty")
    return examples, True


def _truncate(a, a_offsets, b, b_offsets, budget: int, strategy: str, side: str = "right"):
    """Cut tokens from the right (side="left": from the left) so that len(a) + len(b) <= budget, as the
    reference does.

    longest_first: if the shorter sequence fits beside the longer, only the longer is cut; otherwise both are
    cut to half the budget, the *second* sequence getting the odd token on a tie or overflow
    (the reference's rule; the old Python tokenizer removed one token at a time from the longer).
    """
    n_a, n_b = len(a), len(b) if b is not None else 0
    if n_a + n_b <= budget:
        return a, a_offsets, b, b_offsets
    if budget == 0:  # the reference empties both sequences, whatever the strategy
        keep_a = keep_b = 0
    elif strategy == "longest_first":
        if b is None:
            keep_a, keep_b = budget, 0
        else:
            short, long = sorted((n_a, n_b))
            keep_short, keep_long = short, (short if short > budget else max(short, budget - short))
            if keep_short + keep_long > budget:
                keep_short, keep_long = budget // 2, budget // 2 + budget % 2
            keep_a, keep_b = (keep_long, keep_short) if n_a > n_b else (keep_short, keep_long)
    elif strategy == "only_second" and b is None:
        raise ValueError("Truncation error: Second sequence not provided")
    else:
        target = n_a if strategy == "only_first" else n_b
        excess = n_a + n_b - budget
        if target <= excess:
            raise ValueError("Truncation error: Sequence to truncate too short to respect the provided max_length")
        keep_a, keep_b = (n_a - excess, n_b) if strategy == "only_first" else (n_a, n_b - excess)
    a_kept = slice(0, keep_a) if side == "right" else slice(n_a - keep_a, n_a)
    if b is None:
        return a[a_kept], a_offsets[a_kept], None, None
    b_kept = slice(0, keep_b) if side == "right" else slice(n_b - keep_b, n_b)
    return a[a_kept], a_offsets[a_kept], b[b_kept], b_offsets[b_kept]


# The reference WordPiece decoder's clean-up, applied to each token with its leading space ...
DECODER_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                   (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
# ... and transformers' clean_up_tokenization_spaces, applied to the whole text when enabled.
TEXT_CLEANUP = tuple(pair for pair in DECODER_CLEANUP if pair[0] != " do not")


def _replace_all(text: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for dirty, clean in replacements:
        text = text.replace(dirty, clean)
    return text
