"""BertConfig: the hyper-parameters of a BERT encoder, read from a Hugging Face ``config.json``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .loading.files import read_json
from .loading.hub import model_directory
from .loading.miniatures import find_miniature

# Activations the feed-forward block implements (see minibert/nn/activations.py).
SUPPORTED_ACTIVATIONS = ("gelu",)
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
# Upper bounds on the sizes a config declares, far above any BERT's (BERT-large: 24 layers, hidden 1024,
# 512 positions) and far below what would make loading allocate or loop without end before a check.
MAX_SIZES = {"vocab_size": 1 << 22, "hidden_size": 1 << 14, "num_hidden_layers": 1 << 8, "num_attention_heads": 1 << 10,
             "intermediate_size": 1 << 16, "max_position_embeddings": 1 << 16, "type_vocab_size": 1 << 10}
MAX_LABELS = 1 << 16
# Flags of config.json that minibert reads: true or false, not a string or number that looks like one.
FLAGS = ("is_decoder", "add_cross_attention", "tie_word_embeddings", "output_hidden_states", "output_attentions",
         "return_dict")
# What a model call returns unless it says otherwise, as in transformers (kept in ``extra`` when set).
OUTPUT_DEFAULTS = {"output_hidden_states": False, "output_attentions": False, "return_dict": True}


def _output_flag(name: str) -> property:
    """A model-call default kept in the config's ``extra`` (as transformers' configs keep it), true or false."""

    def get(config: BertConfig) -> bool:
        return config.extra.get(name, OUTPUT_DEFAULTS[name])

    def set(config: BertConfig, value: bool) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        config.extra[name] = value

    return property(get, set, doc=f"Model calls' default for {name} ({OUTPUT_DEFAULTS[name]} unless set).")


@dataclass
class BertConfig:
    """Shape and numerics of a BERT encoder; field names and defaults are those of transformers.

    Keys of config.json that minibert does not use (``architectures``, ``id2label``, ...) are kept in
    ``extra`` so that ``to_dict()`` writes back what was read. As transformers' configs, it takes them as
    keywords too (``BertConfig(num_labels=3, output_hidden_states=True)``), and has transformers' label
    attributes (``id2label``, ``label2id``, ``num_labels``, each settable) and call defaults
    (``output_hidden_states``, ``output_attentions``, ``return_dict``).
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __init__(self, *args: Any, extra: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """The fields by keyword (or by position, in the order above); other keywords go to ``extra``."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "extra"]
        if len(args) > len(names):
            raise TypeError(f"BertConfig takes at most {len(names)} positional arguments, got {len(args)}")
        values = {**dict(zip(names, args)), **kwargs}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                setattr(self, f.name, values.pop(f.name, f.default))
        self.extra = {**(extra or {}), **values}
        self.__post_init__()
        if "num_labels" in self.extra and "id2label" not in self.extra:
            self.num_labels = self.extra["num_labels"]  # as transformers stores it: LABEL_i names in id2label

    def __post_init__(self) -> None:
        for name, limit in MAX_SIZES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ConfigError(f"{name} must be a whole number in [1, {limit}], got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) is not a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"hidden_act {self.hidden_act!r} is not supported (supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
            )
        if self.position_embedding_type != "absolute":
            raise ConfigError(
                f"position_embedding_type {self.position_embedding_type!r} is not supported (only 'absolute')"
            )
        if not (_number(self.layer_norm_eps) and 0 < self.layer_norm_eps < 1):
            raise ConfigError(f"layer_norm_eps must be a number in (0, 1), got {self.layer_norm_eps!r}")
        dropouts = {"hidden_dropout_prob": self.hidden_dropout_prob,
                    "attention_probs_dropout_prob": self.attention_probs_dropout_prob}
        if self.extra.get("classifier_dropout") is not None:  # None: the hidden dropout
            dropouts["classifier_dropout"] = self.extra["classifier_dropout"]
        for name, p in dropouts.items():
            if not (_number(p) and 0 <= p < 1):  # p = 1 would scale by 1/0
                raise ConfigError(f"{name} must be a probability in [0, 1), got {p!r}")
        if not (_number(self.initializer_range) and 0 <= self.initializer_range <= 1):
            raise ConfigError(f"initializer_range must be a number in [0, 1], got {self.initializer_range!r}")
        if self.pad_token_id is not None and (isinstance(self.pad_token_id, bool)
                                              or not isinstance(self.pad_token_id, int)
                                              or not 0 <= self.pad_token_id < self.vocab_size):
            raise ConfigError(f"pad_token_id must be a token id in [0, {self.vocab_size}), got {self.pad_token_id!r}")
        for flag in FLAGS:
            if not isinstance(self.extra.get(flag, False), bool):
                raise ConfigError(f"{flag} must be true or false, got {self.extra[flag]!r}")
        self._check_labels()
        if self.extra.get("problem_type") not in (None, *PROBLEM_TYPES):
            raise ConfigError(f"problem_type {self.extra['problem_type']!r} is not supported "
                              f"({', '.join(PROBLEM_TYPES)})")
        for flag in ("is_decoder", "add_cross_attention"):
            if self.extra.get(flag):
                raise ConfigError(f"{flag}=true: minibert implements the BERT encoder only")

    def _check_labels(self) -> None:
        """id2label (its keys are strings in JSON) must name the classes 0..n-1; num_labels must be ≥ 1."""
        if "id2label" in self.extra:
            id2label = self.extra["id2label"]
            try:
                indices = sorted(int(i) for i in id2label) if isinstance(id2label, dict) else None
            except (TypeError, ValueError):
                indices = None
            if not indices or indices != list(range(len(indices))) or len(indices) > MAX_LABELS:
                raise ConfigError(f"id2label must map the class indices 0..n-1 (n ≤ {MAX_LABELS}) to names, got "
                                  f"{str(id2label)[:80]}")
        elif "num_labels" in self.extra:
            n = self.extra["num_labels"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_LABELS:
                raise ConfigError(f"num_labels must be a whole number in [1, {MAX_LABELS}], got {n!r}")

    @property
    def head_size(self) -> int:
        """Width of one attention head, d_head = hidden_size / num_attention_heads."""
        return self.hidden_size // self.num_attention_heads

    @property
    def id2label(self) -> dict[int, str]:
        """Class index -> label name, from config.json's id2label (or LABEL_i for num_labels classes).
        Setting it sets label2id to match."""
        if "id2label" in self.extra:
            return {int(i): str(label) for i, label in self.extra["id2label"].items()}
        return {i: f"LABEL_{i}" for i in range(int(self.extra.get("num_labels", 2)))}

    @id2label.setter
    def id2label(self, id2label: dict[int | str, str]) -> None:
        self._set_labels(id2label)

    @property
    def label2id(self) -> dict[str, int]:
        """Label name -> class index: config.json's label2id, else id2label inverted."""
        if "label2id" in self.extra:
            return {str(label): int(i) for label, i in self.extra["label2id"].items()}
        return {label: i for i, label in self.id2label.items()}

    @label2id.setter
    def label2id(self, label2id: dict[str, int]) -> None:
        self.extra["label2id"] = dict(label2id)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        """As in transformers: a new count of classes names them LABEL_0..LABEL_{n-1} (unless it is the count
        id2label already has)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_LABELS:
            raise ConfigError(f"num_labels must be a whole number in [1, {MAX_LABELS}], got {n!r}")
        if n != self.num_labels or "id2label" not in self.extra:
            self._set_labels({i: f"LABEL_{i}" for i in range(n)})

    def _set_labels(self, id2label: Any) -> None:
        """id2label and label2id, checked as config.json's are."""
        old = {key: self.extra.pop(key) for key in ("id2label", "label2id", "num_labels") if key in self.extra}
        self.extra["id2label"] = ({str(i): label for i, label in id2label.items()} if isinstance(id2label, dict)
                                  else id2label)
        try:
            self._check_labels()
        except ConfigError:
            self.extra.pop("id2label")
            self.extra.update(old)
            raise
        self.extra["label2id"] = {label: int(i) for i, label in self.extra["id2label"].items()}

    output_hidden_states = _output_flag("output_hidden_states")
    output_attentions = _output_flag("output_attentions")
    return_dict = _output_flag("return_dict")

    @property
    def use_return_dict(self) -> bool:
        """transformers' older name for return_dict."""
        return self.return_dict

    @property
    def problem_type(self) -> str:
        """single_label_classification, multi_label_classification or regression; when config.json does not
        say, transformers' rule: one label means regression, more mean single-label classification."""
        problem = self.extra.get("problem_type")
        if problem is None:
            return "regression" if self.num_labels == 1 else "single_label_classification"
        return problem

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BertConfig:
        """Build from the keys of a config.json; unknown keys go to ``extra``."""
        if not isinstance(values, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(values).__name__}")
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(f"model_type {model_type!r} is not 'bert'")
        values = dict(values)
        if values.get("position_embedding_type", "absolute") is None:
            del values["position_embedding_type"]
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> BertConfig:
        """Read a config.json (strictly: see minibert.loading.files); its problems name the file."""
        try:
            return cls.from_dict(read_json(path, ConfigError, "config.json"))
        except ConfigError as e:
            raise ConfigError(str(e) if str(e).startswith(os.fspath(path)) else f"{os.fspath(path)}: {e}") from None

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **hub_options: Any) -> BertConfig:
        """Read config.json from a model directory or hub id; a miniature's name ("bert-mini") needs no
        download. hub_options: revision, local_files_only, token, cache_dir (see minibert.loading.hub)."""
        if not os.path.isdir(name_or_path) and (m := find_miniature(os.fspath(name_or_path))) is not None:
            return cls(vocab_size=30522, hidden_size=m.hidden, num_hidden_layers=m.layers, num_attention_heads=m.heads,
                       intermediate_size=m.intermediate)  # every miniature has BERT's uncased vocabulary
        return cls.from_json_file(model_directory(name_or_path, need=("config.json",), **hub_options) / "config.json")

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {"model_type": "bert", **self.extra, **values}

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")


def _number(value: Any) -> bool:
    """A finite int or float, and not a bool (true is not 1.0 here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
