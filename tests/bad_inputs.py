"""The bad-input corpus: generates files, configs, arguments and texts that a careless user or an attacker
would give minibert, each with the result it must have: a named error (its class and a regex of its
message) or "works" (error None).

    cases(root)        every case, its files written under root (a temporary directory)
    bomb_cases(root)   the memory bombs: small inputs that would allocate gigabytes if sizes were not checked
                       first; tests/test_bad_inputs.py runs them in a child process under a memory limit

Each family below is one class of fault, with many inputs each, so that a mend made case by case instead of
at the boundary where the input comes in fails the family's other members.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.fixtures.cases import FIXTURES, minilm_dir

TINY = FIXTURES / "checkpoints" / "safetensors"  # L=2 H=16 A=2 I=24, 60 tokens, 16 positions
HEADS = FIXTURES / "heads"
LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


@dataclass
class Case:
    name: str
    call: Callable[[], Any]
    error: type[BaseException] | None  # None: it must work
    message: str = ""  # a regex the error's message must contain


class CommandFailed(Exception):
    """A `minibert` command that exited non-zero with one line on stderr (the line is the message)."""


def run_cli(*argv: str) -> str:
    """main(argv) in this process: its stdout when it succeeds; CommandFailed(stderr's one line) when not.
    More than one line on stderr, or an exception out of main, is a defect the case then reports."""
    from minibert.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit:  # argparse's own refusals: its usage line, then the error
            raise CommandFailed(err.getvalue().strip().split("\n")[-1]) from None
    lines = err.getvalue().strip().split("\n")
    if status:
        if len(lines) != 1:
            raise AssertionError(f"not a one-line error: {err.getvalue()!r}")
        raise CommandFailed(lines[0])
    return out.getvalue()


# ---- writing model directories ---------------------------------------------------------------------------

def tiny_state() -> dict[str, np.ndarray]:
    from minibert.loading.weights import read_safetensors

    return read_safetensors(TINY / "model.safetensors")


def model_dir(root: Path, name: str, config: dict | str | bytes | None = None, state: dict | None = None,
              source: Path = TINY) -> Path:
    """A copy of the tiny model (or `source`) in root/name, its config.json's values updated by `config`
    (a dict), or replaced by `config` (str or bytes); its weights replaced by `state`."""
    directory = root / name
    shutil.copytree(source, directory)
    if not (directory / "vocab.txt").exists():
        shutil.copy(TINY / "vocab.txt", directory / "vocab.txt")
    if isinstance(config, dict):
        values = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**values, **config}))
    elif isinstance(config, (str, bytes)):
        (directory / "config.json").write_bytes(config.encode() if isinstance(config, str) else config)
    if state is not None:
        from safetensors.numpy import save_file

        save_file(state, str(directory / "model.safetensors"))
    return directory


def load_model(directory: Path, kind: str = "BertModel"):
    import minibert

    return lambda: getattr(minibert, kind).from_pretrained(directory)


# ---- torch .bin files, written opcode by opcode (no torch needed) -----------------------------------------

def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _int(n: int) -> bytes:
    if 0 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _str(s: str) -> bytes:
    return b"X" + struct.pack("<I", len(s.encode())) + s.encode()


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


@dataclass
class View:
    """A tensor in a crafted state dict: a view (offset, shape, stride) of storage `key` of `numel` floats."""

    key: str
    numel: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0


def state_pickle(views: dict[str, View]) -> bytes:
    """A state dict pickle as torch writes it: {name: _rebuild_tensor_v2(storage, offset, shape, stride, ...)}."""
    body = b""
    for name, v in views.items():
        storage = _tuple([_str("storage"), _global("torch", "FloatStorage"), _str(v.key),
                          _str("cpu"), _int(v.numel)]) + b"Q"
        body += _str(name) + _global("torch._utils", "_rebuild_tensor_v2") + _tuple([
            storage, _int(v.offset), _tuple([_int(n) for n in v.shape]), _tuple([_int(s) for s in v.stride]),
            b"\x89", _global("collections", "OrderedDict") + b")R"]) + b"R"
    return b"\x80\x02}(" + body + b"u."


def zip_bin(path: Path, views: dict[str, View], storages: dict[str, bytes], deflate: bool = False) -> Path:
    """A zip-layout .bin holding the state dict of `views` and the storages' bytes (deflated when asked)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", state_pickle(views))
        z.writestr("archive/version", "3\n")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
    return path


def legacy_bin(path: Path, views: dict[str, View], storages: dict[str, tuple[int, bytes]]) -> Path:
    """A legacy-layout .bin: the header pickles, the state dict, the storage keys, then each storage's
    declared element count and bytes."""
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": LEGACY_PROTOCOL, "little_endian": True}):
            f.write(pickle.dumps(header, protocol=2))
        f.write(state_pickle(views))
        f.write(pickle.dumps(list(storages), protocol=2))
        for numel, data in storages.values():
            f.write(struct.pack("<q", numel) + data)
    return path


def bin_dir(root: Path, name: str, write: Callable[[Path], Any]) -> Path:
    """The tiny model's config and vocabulary with a pytorch_model.bin made by `write`."""
    directory = root / name
    directory.mkdir()
    for file in ("config.json", "vocab.txt"):
        shutil.copy(TINY / file, directory / file)
    write(directory / "pytorch_model.bin")
    return directory


# ---- the families ---------------------------------------------------------------------------------------

def config_value_cases(root: Path) -> list[Case]:
    """Each value config.json may hold, wrong in every way: not a number, a bool, out of range, absurd."""
    from minibert import ConfigError

    cases = []
    sizes = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "type_vocab_size"]
    for field in sizes:
        for value in (0, -1, 10**9, 2**63, 1.5, 16.0, "16", True, False, None, [16], {"n": 16}):
            cases.append(Case(f"config {field}={value!r}", lambda f=field, v=value: _config({f: v}), ConfigError,
                              f"{field} must be a whole number"))
    for field, rule in (("layer_norm_eps", r"layer_norm_eps must be a number in \(0, 1\)"),
                        ("initializer_range", r"initializer_range must be a number in \[0, 1\]")):
        for value in (float("inf"), float("-inf"), float("nan"), 1e300, -1, True, False, "1e-12", None, [1e-12], 2):
            cases.append(Case(f"config {field}={value!r}", lambda f=field, v=value: _config({f: v}), ConfigError, rule))
    for field in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        for value in (1.0, -0.1, float("nan"), float("inf"), "0.1", True, [0.1]):
            cases.append(Case(f"config {field}={value!r}", lambda f=field, v=value: _config({f: v}), ConfigError,
                              f"{field} must be a probability"))
    for flag in ("tie_word_embeddings", "is_decoder", "add_cross_attention"):
        for value in ("yes", "false", 1, 0, [True]):
            cases.append(Case(f"config {flag}={value!r}", lambda f=flag, v=value: _config({f: v}), ConfigError,
                              f"{flag} must be true or false"))
    for value in (0, -1, 10**9, 1.5, "2", True, None, [2]):
        cases.append(Case(f"config num_labels={value!r}", lambda v=value: _config({"num_labels": v}), ConfigError,
                          "num_labels must be a whole number"))
    for value in ({"0": "a", "2": "b"}, {"x": "a"}, {}, ["a", "b"], "ab", {str(i): "x" for i in range(70000)}, 3):
        cases.append(Case(f"config id2label={str(value)[:30]}", lambda v=value: _config({"id2label": v}), ConfigError,
                          "id2label must map the class indices"))
    for value in (-1, 60, 10**9, "0", 1.5, True):
        cases.append(Case(f"config pad_token_id={value!r}", lambda v=value: _config({"pad_token_id": v}), ConfigError,
                          "pad_token_id must be a token id"))
    for field, value, message in (("hidden_act", "relu", "hidden_act 'relu' is not supported"),
                                  ("hidden_act", ["gelu"], "hidden_act .* is not supported"),
                                  ("position_embedding_type", "relative_key", "position_embedding_type"),
                                  ("model_type", "roberta", "model_type 'roberta' is not 'bert'"),
                                  ("problem_type", "ranking", "problem_type 'ranking' is not supported"),
                                  ("num_attention_heads", 3, r"hidden_size \(16\) is not a multiple")):
        cases.append(Case(f"config {field}={value!r}", lambda f=field, v=value: _config({f: v}), ConfigError, message))
    for field, value in (("layer_norm_eps", 1e-5), ("initializer_range", 0.0), ("classifier_dropout", None),
                         ("pad_token_id", None), ("num_labels", 3), ("tie_word_embeddings", False)):
        cases.append(Case(f"config {field}={value!r} works", lambda f=field, v=value: _config({f: v}), None))
    return cases


def _config(values: dict):
    from minibert import BertConfig

    base = json.loads((TINY / "config.json").read_text())
    return BertConfig.from_dict({**base, **values})


def file_form_cases(root: Path) -> list[Case]:
    """A model's files that are not what they claim: directories, links to nothing, to themselves, to a
    device, bytes that are not UTF-8, JSON that is not JSON, numbers JSON lacks, nesting without end."""
    from minibert import BertModel, BertTokenizer, ConfigError, WeightsError

    cases = []
    texts = {"not UTF-8": b'{"vocab_size": 60\xff}', "Latin-1": '{"hidden_act": "g\xe9lu"}'.encode("latin-1"),
             "UTF-16": '{"vocab_size": 60}'.encode("utf-16"), "empty": b"", "a list": b"[1, 2]",
             "a string": b'"bert"', "truncated": b'{"vocab_size": 6', "NaN": b'{"layer_norm_eps": NaN}',
             "Infinity": b'{"layer_norm_eps": Infinity}', "-Infinity": b'{"initializer_range": -Infinity}',
             "overflowing number": b'{"layer_norm_eps": 1e400}', "nested 100000 deep": b"[" * 100000 + b"]" * 100000,
             "nested objects": b'{"a":' * 50000 + b"1" + b"}" * 50000, "UTF-8 BOM": b'\xef\xbb\xbf{"vocab_size": 60}',
             "NUL bytes": b"\x00" * 64}
    for label, data in texts.items():
        directory = model_dir(root, f"config-{label}", config=data)
        cases.append(Case(f"config.json {label}", load_model(directory), ConfigError, "config.json: "))
    for name, error in (("config.json", ConfigError), ("model.safetensors", WeightsError)):
        for form in ("directory", "dangling link", "link loop", "link to /dev/zero", "fifo"):
            directory = model_dir(root, f"{name}-{form}")
            target = directory / name
            target.unlink()
            if form == "directory":
                target.mkdir()
            elif form == "dangling link":
                target.symlink_to(directory / "missing")
            elif form == "link loop":
                target.symlink_to(target)
            elif form == "fifo":
                os.mkfifo(target)
            else:
                target.symlink_to("/dev/zero")
            message = {"directory": "is a directory", "dangling link": "a symbolic link to a missing file",
                       "link loop": "cannot be read", "link to /dev/zero": "is not a regular file",
                       "fifo": "is not a regular file"}[form]
            cases.append(Case(f"{name} is a {form}", load_model(directory), error, f"{name}: {message}"))
    for form, data, message in (("empty", b"", "not a readable safetensors file"),
                                ("garbage", os.urandom(256), "not a readable safetensors file"),
                                ("header beyond the file", struct.pack("<Q", 10**12) + b"{}",
                                 "not a readable safetensors"),
                                ("a JSON header only", struct.pack("<Q", 2) + b"{}", "holds no tensors"),
                                ("HTML", b"<html>Entry not found</html>", "not a readable safetensors file")):
        directory = model_dir(root, f"weights-{form}")
        (directory / "model.safetensors").write_bytes(data)
        cases.append(Case(f"model.safetensors {form}", load_model(directory), WeightsError, message))
    for label, data, message in (("not UTF-8", b"[PAD]\n\xff\xfe\n", "vocab.txt: not UTF-8 text"),
                                 ("empty", b"", "vocabulary file .* is empty"),
                                 ("no [UNK]", b"[PAD]\nw0\n", r"unk_token '\[UNK\]' is not in the vocabulary")):
        directory = model_dir(root, f"vocab-{label}")
        (directory / "vocab.txt").write_bytes(data)
        cases.append(Case(f"vocab.txt {label}", lambda d=directory: BertTokenizer.from_pretrained(d),
                          ValueError, message))
    for form in ("directory", "dangling link", "link loop"):
        for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json"):
            directory = model_dir(root, f"tok-{name}-{form}")
            target = directory / name
            if target.exists():
                target.unlink()
            if form == "directory":
                target.mkdir()
            elif form == "dangling link":
                target.symlink_to(directory / "missing")
            else:
                target.symlink_to(target)
            cases.append(Case(f"{name} is a {form}", lambda d=directory: BertTokenizer.from_pretrained(d), ValueError,
                              f"{name}: "))
    for label, data in (("nested", b"[" * 100000), ("NaN", b'{"model_max_length": NaN}'),
                        ("not UTF-8", b'{"a": "\xff"}'), ("a list", b"[]"), ("truncated", b'{"do_lower_case": tr')):
        directory = model_dir(root, f"tokcfg-{label}")
        (directory / "tokenizer_config.json").write_bytes(data)
        cases.append(Case(f"tokenizer_config.json {label}", lambda d=directory: BertTokenizer.from_pretrained(d),
                          ValueError, "tokenizer_config.json: "))
    for label, tokenizer_json, message in (
            ("a vocabulary id of 10**12", {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "w": 10**12}}},
             r"ids must be distinct integers in \[0, 4194304\)"),
            ("an added token id of 10**12", {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}},
                                             "added_tokens": [{"id": 10**12, "content": "x"}]}, "has no integer id in"),
            ("a negative added token id", {"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}},
                                           "added_tokens": [{"id": -1, "content": "x"}]}, "has no integer id in"),
            ("a BPE model", {"model": {"type": "BPE", "vocab": {}}}, "does not describe a WordPiece tokenizer")):
        directory = model_dir(root, f"tokjson-{label}")
        (directory / "tokenizer.json").write_text(json.dumps(tokenizer_json))
        cases.append(Case(f"tokenizer.json {label}", lambda d=directory: BertTokenizer.from_pretrained(d),
                          ValueError, message))
    for key, values in (("do_lower_case", ("yes", 1, "false", [True])), ("strip_accents", ("no", 0)),
                        ("tokenize_chinese_chars", ("true", 1)), ("model_max_length", ("512", -1, 0, True, 1.5)),
                        ("padding_side", ("middle", 1)), ("truncation_side", ("both", None.__class__.__name__)),
                        ("unk_token", (5, "[NOPE]")), ("mask_token", ([1],))):
        for value in values:
            directory = model_dir(root, f"tokcfg-{key}-{value}")
            (directory / "tokenizer_config.json").write_text(json.dumps({key: value}))
            cases.append(Case(f"tokenizer_config.json {key}={value!r}",
                              lambda d=directory: BertTokenizer.from_pretrained(d),
                              (ValueError, TypeError), f"tokenizer_config.json: {key}"))
    directory = model_dir(root, "tokcfg-decoder-id")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"added_tokens_decoder": {str(10**12): {"content": "x"}}}))
    cases.append(Case("tokenizer_config.json added_tokens_decoder id 10**12",
                      lambda d=directory: BertTokenizer.from_pretrained(d), ValueError,
                      r"ids must lie in \[0, 4194304\)"))
    directory = model_dir(root, "fine")
    cases.append(Case("the tiny model loads", lambda: BertModel.from_pretrained(directory), None))
    linked = root / "linked"
    linked.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        (linked / name).symlink_to(TINY / name)  # as the hub's cache lays files out: links to blobs
    cases.append(Case("a directory of links to the files loads", lambda: BertModel.from_pretrained(linked), None))
    return cases


def weights_value_cases(root: Path) -> list[Case]:
    """Poisoned weights: one NaN, a table of inf, a value beyond float32, in every kind of tensor; and
    checkpoints with nothing in them."""
    from minibert import WeightsError

    cases = []
    state = tiny_state()
    names = [n for n in state if not n.startswith("cls.")]
    poisons = {"NaN": np.nan, "inf": np.inf, "-inf": -np.inf}
    for i, name in enumerate(names):
        for label, value in poisons.items():
            poisoned = dict(state)
            array = poisoned[name].copy()
            array.reshape(-1)[(i * 7) % array.size] = value
            poisoned[name] = array
            directory = model_dir(root, f"poison-{i}-{label}", state=poisoned)
            cases.append(Case(f"{label} in {name}", load_model(directory), WeightsError,
                              f"checkpoint tensor .*{name.split('.')[-2]}.* holds 1 non-finite value"))
    key = next(n for n in state if n.endswith("word_embeddings.weight"))
    whole = dict(state, **{key: np.full(state[key].shape, np.nan, np.float32)})
    cases.append(Case("a whole table of NaN", load_model(model_dir(root, "poison-table", state=whole)), WeightsError,
                      "holds 960 non-finite values"))
    big = dict(state, **{key: np.full(state[key].shape, 1e300, np.float64)})
    cases.append(Case("float64 weights beyond float32's range", load_model(model_dir(root, "poison-big", state=big)),
                      WeightsError, "non-finite"))
    for name, writer, message in (
            ("an empty zip state dict", lambda p: zip_bin(p, {}, {}), "holds no tensors"),
            ("an empty legacy state dict", lambda p: legacy_bin(p, {}, {}), "holds no tensors"),
            ("a state dict of a string", lambda p: _zip_raw(p, b"\x80\x02}(X\x01\x00\x00\x00aX\x01\x00\x00\x00bu."),
             "entry 'a' is a str, not a tensor"),
            ("a pickle that runs code", lambda p: _zip_raw(p, b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."),
             r"refusing to load os\.system"),
            ("a pickle naming builtins.eval", lambda p: _zip_raw(p, b"\x80\x02cbuiltins\neval\n."),
             r"refusing to load builtins\.eval"),
            ("two data.pkl", lambda p: _zip_two_pickles(p), "exactly one data.pkl"),
            ("a storage shorter than declared", lambda p: zip_bin(p, {"w": View("0", 100, (100,), (1,))},
                                                                  {"0": b"\0" * 40}), "holds 40 bytes, its tensor's"),
            ("a view outside its storage", lambda p: zip_bin(p, {"w": View("0", 10, (10,), (2,))}, {"0": b"\0" * 40}),
             "reaches outside its storage"),
            ("a negative offset", lambda p: zip_bin(p, {"w": View("0", 10, (5,), (1,), -1)}, {"0": b"\0" * 40}),
             "reaches outside its storage"),
            ("a negative stride", lambda p: zip_bin(p, {"w": View("0", 10, (5,), (-1,), 9)}, {"0": b"\0" * 40}),
             "reaches outside its storage"),
            ("a tensor of 100 dimensions",
             lambda p: zip_bin(p, {"w": View("0", 1, (1,) * 100, (1,) * 100)}, {"0": b"\0" * 4}), "w: .*dimension"),
            ("a storage of a negative count", lambda p: zip_bin(p, {"w": View("0", -4, (1,), (1,))}, {"0": b""}),
             "invalid element count -4"),
            ("a storage count that is a string",
             lambda p: _zip_raw(p, state_pickle({"w": View("0", 1, (1,), (1,))}).replace(
                b"J\x01\x00\x00\x00t", b"X\x01\x00\x00\x00at", 1)), "invalid element count 'a'"),
            ("a legacy file cut after its header", lambda p: p.write_bytes(pickle.dumps(LEGACY_MAGIC, protocol=2)),
             "not a readable torch checkpoint"),
            ("a .bin that is a directory", lambda p: p.mkdir(), "pytorch_model.bin: is a directory")):
        directory = bin_dir(root, f"bin-{name}", writer)
        cases.append(Case(name, load_model(directory), WeightsError, message))
    return cases


def _zip_raw(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)


def _zip_two_pickles(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a/data.pkl", state_pickle({}))
        z.writestr("b/data.pkl", state_pickle({}))


def sentence_transformers_cases(root: Path) -> list[Case]:
    """sentence-transformers' own files: types that only look right, module paths that leave the model,
    modules.json in shapes it never has, Dense layers with wrong sizes or poisoned weights."""
    from minibert import WeightsError
    from minibert.tasks import SentenceEncoder

    def st_dir(name: str, files: dict[str, Any], links: dict[str, str] = {}) -> Path:  # noqa: B006
        directory = model_dir(root, f"st-{name}")
        base = {"modules.json": [{"idx": 0, "name": "0", "path": "",
                                  "type": "sentence_transformers.models.Transformer"},
                                 {"idx": 1, "name": "1", "path": "1_Pooling",
                                  "type": "sentence_transformers.models.Pooling"}],
                "1_Pooling/config.json": {"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True}}
        for file, content in {**base, **files}.items():
            if content is None:
                continue
            (directory / file).parent.mkdir(parents=True, exist_ok=True)
            (directory / file).write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        for link, target in links.items():
            (directory / link).symlink_to(target)
        return directory

    def encoder(directory):
        return lambda: SentenceEncoder.from_pretrained(directory).encode("w1 w2")

    cases = []
    for flag in ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens", "include_prompt"):
        for value in ("yes", "true", 1, 0, [True], {"on": True}):
            directory = st_dir(f"{flag}-{value}", {"1_Pooling/config.json": {flag: value}})
            cases.append(Case(f"pooling {flag}={value!r}", encoder(directory), ValueError,
                              f"1_Pooling/config.json: {flag} must be true or false"))
    for value in (3, True, {"mode": "mean"}):
        directory = st_dir(f"pooling_mode-{value}", {"1_Pooling/config.json": {"pooling_mode": value}})
        cases.append(Case(f"pooling_mode={value!r}", encoder(directory), ValueError, "pooling_mode must be"))
    for key, values in (("max_seq_length", ("128", 1.5, -1, 0, 10**12, True)), ("do_lower_case", ("yes", 1, "false"))):
        for value in values:
            directory = st_dir(f"{key}-{value}", {"sentence_bert_config.json": {key: value}})
            cases.append(Case(f"sentence_bert_config {key}={value!r}", encoder(directory), ValueError,
                              f"sentence_bert_config.json: {key} must"))
    for key, value in (("prompts", ["query: "]), ("default_prompt_name", 1), ("similarity_fn_name", True)):
        directory = st_dir(f"{key}-{value}", {"config_sentence_transformers.json": {key: value}})
        cases.append(Case(f"config_sentence_transformers {key}={value!r}", encoder(directory), ValueError,
                          f"config_sentence_transformers.json: {key} must"))
    for label, modules in (("an object", {"a": 1}), ("a number", 3), ("a list of numbers", [1, 2]),
                           ("a list of strings", ["Transformer"]),
                           ("a type that is a number", [{"type": 3, "path": ""}]),
                           ("a path that is a number", [{"type": "Pooling", "path": 1}]), ("null", None)):
        directory = st_dir(f"modules-{label}", {"modules.json": json.dumps(modules).encode()})
        cases.append(Case(f"modules.json {label}", encoder(directory), ValueError, "modules.json: "))
    for label, path in (("../", ".."), ("../../../../../etc", "../../../../../etc"), ("/etc", "/etc"),
                        ("1_Pooling/../../x", "1_Pooling/../../x"), ("a backslash", "..\\x"), ("~", "~/x")):
        modules = [{"type": "sentence_transformers.models.Transformer", "path": ""},
                   {"type": "sentence_transformers.models.Pooling", "path": path}]
        directory = st_dir(f"path-{label.replace('/', '_')}", {"modules.json": modules})
        cases.append(Case(f"module path {label}", encoder(directory), ValueError, "modules.json"))
    for label, target in (("out of the model", "/etc"), ("to itself", "loop"), ("dangling", "/nonexistent/x")):
        modules = [{"type": "sentence_transformers.models.Transformer", "path": ""},
                   {"type": "sentence_transformers.models.Pooling", "path": "loop" if target == "loop" else "pool"}]
        name = "loop" if target == "loop" else "pool"
        directory = st_dir(f"link-{label.replace(' ', '_')}", {"modules.json": modules},
                           links={name: target if target != "loop" else "loop"})
        cases.append(Case(f"module folder a link {label}", encoder(directory), ValueError, "modules.json: |pool"))
    for label, config, message in (("without sizes", {}, "must give a Dense module's in_features"),
                                   ("sizes as strings", {"in_features": "16", "out_features": 4},
                                    "in_features must be"),
                                   ("a huge width", {"in_features": 16, "out_features": 10**9},
                                    "out_features must lie in"),
                                   ("bias 'yes'", {"in_features": 16, "out_features": 4, "bias": "yes"},
                                    "bias must be"),
                                   ("an unknown activation", {"in_features": 16, "out_features": 4,
                                                              "activation_function": "torch.nn.Softmax"},
                                    "activation Softmax"),
                                   ("the wrong input width", {"in_features": 8, "out_features": 4},
                                    "takes 8 features, but gets 16")):
        directory = _dense_dir(st_dir, f"dense-{label}", config, np.ones((4, config.get("in_features", 16)
                                                                          if isinstance(config.get("in_features"), int)
                                                                          else 16)))
        cases.append(Case(f"Dense module {label}", encoder(directory), (ValueError, WeightsError), message))
    for label, value in (("NaN", np.nan), ("inf", np.inf)):
        weight = np.ones((4, 16), np.float32)
        weight[1, 2] = value
        directory = _dense_dir(st_dir, f"dense-{label}", {"in_features": 16, "out_features": 4}, weight)
        cases.append(Case(f"Dense weights with {label}", encoder(directory), WeightsError,
                          "linear.weight holds 1 non-finite"))
    directory = st_dir("fine", {"1_Pooling/config.json": {"pooling_mode_cls_token": True}})
    cases.append(Case("a well-formed sentence-transformers model works", encoder(directory), None))
    directory = st_dir("link-inside",
                       {"modules.json": [{"type": "Transformer", "path": ""}, {"type": "Pooling", "path": "p"}]},
                       links={"p": "1_Pooling"})
    cases.append(Case("a module folder linked inside the model works", encoder(directory), None))
    return cases


def _dense_dir(st_dir, name: str, config: dict, weight: np.ndarray) -> Path:
    from safetensors.numpy import save_file

    modules = [{"type": "sentence_transformers.models.Transformer", "path": ""},
               {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
               {"type": "sentence_transformers.models.Dense", "path": "2_Dense"}]
    directory = st_dir(name, {"modules.json": modules, "2_Dense/config.json": config})
    save_file({"linear.weight": weight.astype(np.float32), "linear.bias": np.zeros(len(weight), np.float32)},
              str(directory / "2_Dense" / "model.safetensors"))
    return directory


def input_cases(root: Path) -> list[Case]:
    """What a call passes in: ids out of range or of the wrong type or shape, non-finite embeddings,
    lengths beyond the model's window or any padding limit."""
    from minibert import BertModel, BertTokenizer

    model = BertModel.from_pretrained(TINY)
    tokenizer = BertTokenizer.from_pretrained(TINY)
    cases = []
    for label, ids, error, message in (
            ("a negative id", [[2, -1, 3]], ValueError, r"input_ids holds -1 at position \[0, 1\]"),
            ("an id beyond the vocabulary", [[2, 60, 3]], ValueError, r"values must lie in \[0, 60\)"),
            ("an id of 2**63", np.array([[2, 2**63]], np.uint64), ValueError, "values must lie in"),
            ("float ids", [[2.0, 5.0]], TypeError, "input_ids must hold integers"),
            ("string ids", [["2", "5"]], TypeError, "input_ids must hold integers"),
            ("ragged ids", [[2, 5], [2]], ValueError, "must be a rectangular"),
            ("no ids", [], ValueError, "non-empty"),
            ("3-D ids", [[[2, 5]]], ValueError, "non-empty .batch, seq. array"),
            ("17 tokens in a 16-position model", [list(range(17))], ValueError, "exceeds max_position_embeddings"),
            ("None", None, ValueError, "give input_ids")):
        cases.append(Case(f"input_ids: {label}", lambda i=ids: model(i), error, message))
    for label, kwargs, message in (
            ("a mask of 2", {"attention_mask": [[1, 2, 1]]}, "attention_mask"),
            ("a mask of NaN", {"attention_mask": [[1.0, np.nan, 1.0]]}, "attention_mask holds nan"),
            ("a token type of 2", {"token_type_ids": [[0, 2, 0]]}, r"token_type_ids holds 2"),
            ("a position of 16", {"position_ids": [[0, 1, 16]]}, "position_ids holds 16"),
            ("a mask of the wrong shape", {"attention_mask": [[1, 1]]}, "attention_mask has shape")):
        cases.append(Case(f"inputs: {label}", lambda k=kwargs: model([[2, 5, 3]], **k), ValueError, message))
    for label, value in (("NaN", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("1e39 (inf in float32)", 1e39)):
        embeds = np.zeros((1, 3, 16))
        embeds[0, 1, 5] = value
        cases.append(Case(f"inputs_embeds with {label}", lambda e=embeds: model(inputs_embeds=e), ValueError,
                          r"inputs_embeds holds -?inf|nan at position \[0, 1, 5\]; values must be finite in float32"))
    cases.append(Case("inputs_embeds of the wrong width", lambda: model(inputs_embeds=np.zeros((1, 3, 8))), ValueError,
                      r"inputs_embeds must be a non-empty \[batch, seq, 16\] array"))
    for label, kwargs in (("max_length=10**9", {"padding": "max_length", "max_length": 10**9}),
                          ("max_length=2**20", {"padding": "max_length", "max_length": 2**20}),
                          ("pad_to_multiple_of=10**9", {"padding": True, "pad_to_multiple_of": 10**9}),
                          ("model_max_length=10**9", {"padding": "max_length"})):
        tok = BertTokenizer.from_pretrained(TINY, model_max_length=10**9) if "model_max" in label else tokenizer
        cases.append(Case(f"tokenizer padding {label}", lambda t=tok, k=kwargs: t("w1", **k), ValueError,
                          "padding to .* tokens is beyond what any BERT takes .*65536"))
    for label, kwargs, message in (("max_length=0", {"max_length": 0}, "max_length must be a positive integer"),
                                   ("max_length=-1", {"max_length": -1}, "max_length must be"),
                                   ("max_length='8'", {"max_length": "8"}, "max_length must be"),
                                   ("padding='yes'", {"padding": "yes"}, "padding='yes'"),
                                   ("truncation='yes'", {"truncation": "yes"}, "truncation='yes'")):
        cases.append(Case(f"tokenizer {label}", lambda k=kwargs: tokenizer("w1 w2", **k), ValueError, message))
    for label, text in (("bytes", b"w1"), ("a number", 5), ("None", None)):
        cases.append(Case(f"tokenizer text {label}", lambda t=text: tokenizer(t), (TypeError, ValueError), ""))
    for label, tokens in (("an int", 5), ("None", None), ("a float", 1.5)):
        cases.append(Case(f"tokenizer.add_tokens({label})",
                          lambda t=tokens: BertTokenizer.from_pretrained(TINY).add_tokens(t),
                          TypeError, "new_tokens must be a str, an AddedToken or a list of them"))
    cases.append(Case("input_ids beyond 64 bits", lambda: model([[2, 10**30]]), ValueError,
                      "integers must fit in 64 bits"))
    from minibert.tasks import SentenceEncoder

    encoder = SentenceEncoder(model, tokenizer)
    for label, value in (("NaN", np.nan), ("inf", np.inf)):
        a = np.ones((2, 16))
        a[1, 3] = value
        cases.append(Case(f"similarity of embeddings with {label}", lambda x=a: encoder.similarity(x, np.ones(16)),
                          ValueError, "similarity takes finite embeddings"))
    cases.append(Case("padding to 512 works", lambda: tokenizer("w1", padding="max_length", max_length=512), None))
    from minibert import BertForMaskedLM

    masked_lm = BertForMaskedLM.from_pretrained(TINY)
    for label, kwargs in (("10**9", {"new_num_tokens": 10**9}), ("2**22 + 1", {"new_num_tokens": 2**22 + 1}),
                          ("rounded up past the bound",
                           {"new_num_tokens": 2**22 - 1, "pad_to_multiple_of": 2**21 + 1})):
        cases.append(Case(f"resize_token_embeddings {label}", lambda k=kwargs: masked_lm.resize_token_embeddings(**k),
                          ValueError, "word embeddings, more than 4194304"))
    cases.append(Case("a normal call works", lambda: model([[2, 5, 3]], attention_mask=[[1, 1, 0]]), None))
    return cases


def cli_cases(root: Path) -> list[Case]:
    """The command line's edges: arguments out of range, files in the wrong place, texts that are not
    UTF-8, models without the head or training a command needs."""
    classifier = model_dir(root, "cli-classifier", source=HEADS / "sequence-single")
    masked_lm = model_dir(root, "cli-masked-lm", source=HEADS / "masked-lm")
    bare = model_dir(root, "cli-bare", state={k: v for k, v in tiny_state().items() if not k.startswith("cls.")})
    (root / "a-file").write_text("x")
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (root / "utf16.txt").write_bytes("w1\n".encode("utf-16"))
    (root / "long.txt").write_text(" ".join(["w1"] * 40) + "\n")
    (root / "long-mask.txt").write_text(" ".join(["[MASK]"] + ["w1"] * 39) + "\n")
    (root / "mixed.txt").write_bytes(b"w1\nw2 \xff\n")
    (root / "texts-dir").mkdir()
    (root / "one-long-line.txt").write_bytes(b"w1 " * (6 << 20))
    (root / "one-class.tsv").write_text("sentence\tlabel\nw1\t1\nw2\t1\nw3\t1\n")
    (root / "same-score.tsv").write_text("sentence\tlabel\nw1\t0.5\nw2\t0.5\n")
    (root / "bad-label.tsv").write_text("sentence\tlabel\nw1\tx\nw2\t1\n")
    (root / "neg-label.tsv").write_text("sentence\tlabel\nw1\t-1\nw2\t1\n")
    (root / "columns.tsv").write_text("sentence\tlabel\nw1\t0\textra\n")
    (root / "latin1.tsv").write_bytes("sentence\tlabel\ncaf\xe9\t0\nw2\t1\n".encode("latin-1"))
    (root / "train.tsv").write_text("sentence\tlabel\nw1\t0\nw2\t1\nw3\t2\n")
    (root / "pairs.tsv").write_text("a\tb\tlabel\nw1\tw2\t0\nw2\tw3\t1\n")
    (root / "huge-label.tsv").write_text("sentence\tlabel\nw1\t0\nw2\t1000000000\n")
    (root / "save-dir").mkdir()
    too_many_tokens = model_dir(root, "cli-too-many-tokens", source=HEADS / "masked-lm")
    (too_many_tokens / "vocab.txt").write_text((TINY / "vocab.txt").read_text() + "x1\nx2\n")
    classifier_too_many = model_dir(root, "cli-classifier-too-many", source=HEADS / "sequence-single")
    shutil.copy(too_many_tokens / "vocab.txt", classifier_too_many / "vocab.txt")
    other_vocab = model_dir(root, "cli-other-vocab")
    (other_vocab / "vocab.txt").write_text((TINY / "vocab.txt").read_text().replace("w7\n", "x7\n"))
    cases = []
    fail = CommandFailed
    for argv, message in (
            (["check", "--model", bare, "--tolerance", "-1"], "--tolerance must be a finite number ≥ 0, got -1"),
            (["check", "--model", bare, "--tolerance", "nan"], "--tolerance must be a finite number"),
            (["check", "--model", bare, "--tolerance", "inf"], "--tolerance must be a finite number"),
            (["check", "--model", bare, "--tolerance-float64=-1e-9"], "--tolerance-float64 must be"),
            (["fill-mask", "--model", masked_lm, "--top-k", "0", "w1 [MASK]"], "top_k must be a positive integer"),
            (["fill-mask", "--model", masked_lm, "--top-k", "-3", "w1 [MASK]"], "top_k must be a positive integer"),
            (["fill-mask", "--model", bare, "w1 [MASK]"], "this model has no masked-LM head"),
            (["fill-mask", "--model", classifier, "w1 [MASK]"], "this model has no masked-LM head"),
            (["fill-mask", "--model", masked_lm, "w1 w2"], r"text 1 has no \[MASK\]"),
            (["fill-mask", "--model", masked_lm, "--input", root / "long-mask.txt"],
             "text 1 has 42 tokens, more than the model's 16"),
            (["classify", "--model", bare, "w1"], "has no trained classifier"),
            (["classify", "--model", masked_lm, "w1"], "has no trained classifier"),
            (["classify", "--model", classifier, "--input", root / "long.txt"], "text 1 has 42 tokens, more than"),
            (["trace", "--model", classifier, " ".join(["w1"] * 40)], "text 1 has 42 tokens, more than"),
            (["tokenize", "--model", bare, "--input", root / "latin1.txt"],
             r"latin1.txt, line 1: byte 0xe9 is not UTF-8"),
            (["tokenize", "--model", bare, "--input", root / "utf16.txt"],
             r"utf16.txt, line 1: byte 0xff is not UTF-8"),
            (["tokenize", "--model", bare, "--input", root / "mixed.txt"], r"mixed.txt, line 2: byte 0xff"),
            (["tokenize", "--model", bare, "--input", root / "missing.txt"], "cannot read .*missing.txt"),
            (["tokenize", "--model", bare, "--input", root / "texts-dir"], "cannot read .*texts-dir"),
            (["tokenize", "--model", bare, "--input", "/dev/zero"], "/dev/zero, line 1: longer than 16777216 bytes"),
            (["embed", "--model", bare, "--input", root / "one-long-line.txt"], "line 1: longer than 16777216 bytes"),
            (["tokenize", "--model", bare], "no text given"),
            (["tokenize", "--model", root / "nowhere", "w1"],
             "is neither a local directory nor a Hugging Face model id"),
            (["tokenize", "--model", "", "w1"], "the model name is empty"),
            (["tokenize", "--model", "a/b/c", "w1"], "is neither a local directory"),
            (["convert", bare, root / "a-file"], "a-file: exists and is not a directory"),
            (["convert", root / "nowhere.bin", root / "out"], "nowhere.bin"),
            (["convert", bare / "config.json", root / "out2"], "unknown weights format '.json'"),
            (["finetune", root / "train.tsv", "--model", bare, "--output", root / "a-file"],
             "a-file: exists and is not a directory"),
            (["finetune", root / "one-class.tsv", "--model", bare, "--output", root / "o1"], "every label is 1"),
            (["finetune", root / "same-score.tsv", "--regression", "--model", bare, "--output", root / "o2"],
             "every label is 0.5"),
            (["finetune", root / "bad-label.tsv", "--model", bare, "--output", root / "o3"], "label 'x' is not"),
            (["finetune", root / "neg-label.tsv", "--model", bare, "--output", root / "o4"], "label '-1' is not"),
            (["finetune", root / "columns.tsv", "--model", bare, "--output", root / "o5"],
             "3 columns, the header has 2"),
            (["finetune", root / "latin1.tsv", "--model", bare, "--output", root / "o6"], "latin1.tsv: not UTF-8 text"),
            (["finetune", root / "missing.tsv", "--model", bare, "--output", root / "o7"], "cannot read .*missing.tsv"),
            (["finetune", root / "train.tsv", "--model", bare, "--output", root / "o8", "--epochs", "0"],
             "epochs must be a positive integer"),
            (["distill", root / "train.tsv", "--teacher", bare, "--student", bare, "--output", root / "o9"],
             "the teacher .* has no trained classifier"),
            (["distill", root / "train.tsv", "--teacher", classifier, "--student", other_vocab,
              "--output", root / "o10"],
             r"the student's vocabulary .* differs from the teacher's .*'(w7|x7)'"),
            (["distill", root / "train.tsv", "--teacher", classifier, "--student", "bert-mini",
              "--output", root / "o11"],
             r"the student's vocabulary \(30522\) differs from the teacher's \(60\)"),
            (["distill", root / "train.tsv", "--teacher", classifier, "--student", bare, "--output", root / "o12",
              "--alpha", "2"], "alpha must be a finite number in"),
            (["distill", root / "train.tsv", "--teacher", classifier, "--student", bare, "--output", root / "o13",
              "--temperature", "0"], "temperature must be a finite number > 0"),
            (["trace", "--model", bare, "--save", root / "no-such-dir" / "a.png", "w1"], "no-such-dir"),
            *[(["finetune", root / "train.tsv", "--model", bare, "--output", root / f"o-{flag}-{value}",
                f"--{flag}={value}"],
               f"{flag.replace('-', '_')} must be a finite number|--{flag} must be positive")
              for flag in ("lr", "warmup-ratio", "weight-decay", "max-grad-norm") for value in ("inf", "nan", "-1")],
            *[(["finetune", root / "train.tsv", "--model", bare, "--output", root / f"o-{flag}-{value}",
                f"--{flag}={value}"],
               f"{flag.replace('-', '_')} must be a positive integer|--{flag} must be positive")
              for flag in ("epochs", "max-length", "accumulation-steps", "batch-size") for value in ("0", "-2")],
            (["bench", "--shapes", "100000x8"], r"batch ≤ 4096"),
            *[(["bench", "--threads", value, "--shapes", "1x8", "--rounds", "1"],
               "the thread count must be a positive integer")
              for value in ("0", "-3", "999999999999999999999", "5000")],
            (["finetune", root / "huge-label.tsv", "--model", bare, "--output", root / "o-huge"],
             r"huge-label.tsv:3: label '1000000000' is not an integer class id in \[0, 65536\)"),
            (["finetune", root / "train.tsv", "--dev", root / "pairs.tsv", "--model", bare, "--output",
              root / "o-pairs"],
             "pairs.tsv holds text pairs but .*train.tsv single texts"),
            (["finetune", root / "pairs.tsv", "--dev", root / "train.tsv", "--model", bare, "--output",
              root / "o-single"],
             "train.tsv holds single texts but .*pairs.tsv text pairs"),
            (["finetune", root / "train.tsv", "--model", bare, "--output", root / "o-n", "--num-labels", "100000"],
             r"num_labels must be a whole number in \[1, 65536\]"),
            (["bench", "--shapes", "1x1024"], "at most 512 tokens"),
            (["fill-mask", "--model", too_many_tokens, "w1 [MASK]"],
             "the tokenizer has 62 tokens but the model's vocabulary only 60"),
            (["embed", "--model", too_many_tokens, "w1"],
             "the tokenizer has 62 tokens but the model's vocabulary only 60"),
            (["classify", "--model", classifier_too_many, "w1"], "the tokenizer has 62 tokens")):
        cases.append(Case(f"minibert {' '.join(str(a).replace(str(root), '') for a in argv)[:90]}",
                          lambda a=argv: run_cli(*a), fail, message))
    for argv, expected in ((["tokenize", "--model", bare, "w1", "w2 w3"], r"text 1 of 2: 'w1'.*text 2 of 2: 'w2 w3'"),
                           (["trace", "--model", bare, "w1 w2"], r"tokens \(4\): \[CLS\] w1 w2 \[SEP\]"),
                           (["classify", "--model", classifier, "--truncate", "--input", root / "long.txt"], "w1 w1"),
                           (["trace", "--model", bare, "--save", root / "save-dir", "w1"], "save-dir/attention.png"),
                           (["convert", bare, root / "converted"], "converted/model.safetensors")):
        cases.append(Case(f"minibert {' '.join(str(a).replace(str(root), '') for a in argv)[:90]} works",
                          lambda a=argv, e=expected: _expect_output(run_cli(*a), e), None))
    return cases


def _expect_output(output: str, pattern: str) -> None:
    import re

    if not re.search(pattern, output, re.DOTALL):
        raise AssertionError(f"{pattern!r} not in {output[:300]!r}")


def cases(root: Path) -> list[Case]:
    """Every case but the memory bombs, files written under root."""
    root = Path(root)
    return [*config_value_cases(root), *file_form_cases(root), *weights_value_cases(root),
            *sentence_transformers_cases(root), *input_cases(root), *cli_cases(root)]


# ---- memory bombs ---------------------------------------------------------------------------------------

def bomb_cases(root: Path) -> list[Case]:
    """Small inputs that ask for gigabytes: each must be refused, by name, before the allocation."""
    from minibert import BertModel, BertTokenizer, CheckpointError, ConfigError, WeightsError

    root = Path(root)
    cases = []
    for label, views, storages in (
            ("a stride-0 view of 3 * 2^30 floats", {"w": View("0", 1, (3 << 30,), (0,))}, {"0": b"\0" * 4}),
            ("a stride-0 view of (30522, 2^20)", {"w": View("0", 1, (30522, 1 << 20), (0, 0))}, {"0": b"\0" * 4}),
            ("rows aliasing each other", {"w": View("0", 1024, (1 << 20, 1024), (1, 1))}, {"0": b"\0" * 4096}),
            ("a stride-0 column of a real table", {"w": View("0", 16, (1 << 26, 16), (0, 1))}, {"0": b"\0" * 64}),
            ("one storage viewed 3000 times", {f"w{i}": View("0", 1 << 16, (1 << 16,), (1,)) for i in range(3000)},
             {"0": b"\0" * (4 << 16)}),
            ("a storage declaring 2^40 floats", {"w": View("0", 1 << 40, (4,), (1,))}, {"0": b"\0" * 16})):
        path = root / f"bomb-{len(cases)}.bin"
        zip_bin(path, views, storages)
        cases.append(Case(f"zip .bin: {label}", lambda p=path: _read_bin(p), CheckpointError,
                          "repeat its storage's elements|reaches outside its storage|would take|holds .* bytes"))
    path = root / "bomb-inflate.bin"
    zip_bin(path, {"w": View("0", 64 << 20, (64 << 20,), (1,))}, {"0": b"\0" * (256 << 20)}, deflate=True)
    cases.append(Case("zip .bin: an entry inflating 1000 times", lambda p=path: _read_bin(p), CheckpointError,
                      "would inflate from .* bytes"))
    for label, numel in (("2^40", 1 << 40), ("2^33", 1 << 33), ("2^62", 1 << 62)):
        path = root / f"bomb-legacy-{label}.bin"
        legacy_bin(path, {"w": View("0", numel, (4,), (1,))}, {"0": (numel, b"\0" * 16)})
        cases.append(Case(f"legacy .bin: a storage of {label} floats", lambda p=path: _read_bin(p), CheckpointError,
                          "declares .* bytes, but only .* remain"))
    for label, payload, message in (
            ("a memo index of 2^28 (PUT)", b"\x80\x02}r\xff\xff\xff\x0f.", "holds no tensors"),
            ("a byte array of 2^33 bytes", b"\x80\x05\x96" + struct.pack("<Q", 1 << 33) + b".",
             "a byte array in the pickle"),
            ("bytes of 2^33 declared", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 33) + b".",
             "not a readable torch checkpoint"),
            ("a string of 2^33 declared", b"\x80\x04\x8d" + struct.pack("<Q", 1 << 33) + b".",
             "not a readable torch checkpoint")):
        for layout in ("zip", "legacy"):
            path = root / f"bomb-pickle-{len(cases)}.bin"
            if layout == "zip":
                _zip_raw(path, payload)
            else:
                path.write_bytes(b"".join(pickle.dumps(h, protocol=2) for h in (
                    LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": LEGACY_PROTOCOL, "little_endian": True}))
                    + payload + pickle.dumps([], protocol=2))
            cases.append(Case(f"{layout} .bin: {label}", lambda p=path: _read_bin(p),
                              (CheckpointError, WeightsError), message))
    for field, value in (("num_hidden_layers", 10**9), ("vocab_size", 10**10), ("hidden_size", 2**20),
                         ("intermediate_size", 10**9), ("max_position_embeddings", 10**9), ("num_labels", 10**9)):
        directory = model_dir(root, f"bomb-config-{field}", config={field: value})
        cases.append(Case(f"config.json {field}={value}", load_model(directory), ConfigError, f"{field} must be"))
    models = [("the tiny model", BertModel.from_pretrained(TINY), [(200000, 16, False), (1000000, 16, False),
                                                                     (100000, 16, True)])]
    if minilm_dir() is not None:  # batches that would need gigabytes, on the real model
        models.append(("all-MiniLM-L6-v2", BertModel.from_pretrained(minilm_dir()),
                       [(200000, 64, False), (20000, 128, True)]))
    for name, model, shapes in models:
        model([[2, 5, 3]])  # compiled before the memory limit is set
        for batch, seq, attentions in shapes:
            ids = np.full((batch, seq), 5, np.int32)
            cases.append(Case(f"{name}(ids) of ({batch}, {seq}){' with attentions' if attentions else ''}",
                              lambda m=model, i=ids, a=attentions: m(i, output_attentions=a), ValueError,
                              r"a batch of .* tokens would need about .* GiB .* more than the .* GiB available"))
    for field, value in (("vocab_size", 1 << 22), ("hidden_size", 1 << 14), ("intermediate_size", 1 << 16)):
        directory = model_dir(root, f"bomb-init-{field}",
                              config={"hidden_size": 256, field: value, "num_hidden_layers": 256})
        cases.append(Case(f"fresh weights for {field}={value} and 256 layers", lambda d=directory: _init(d),
                          ConfigError, "a model of this config holds .* GiB of weights"))
    for value in (10**9, 10**12, 2**63):
        cases.append(Case(f"a classifier of {value} labels", lambda v=value: _classifier(v), ConfigError,
                          r"num_labels must be a whole number in \[1, 65536\]"))
    tokenizer = BertTokenizer.from_pretrained(TINY)
    cases.append(Case("tokenizer padding to 10**9",
                      lambda: tokenizer(["w1"] * 4, padding="max_length", max_length=10**9),
                      ValueError, "beyond what any BERT takes"))
    return cases


def _read_bin(path: Path) -> None:
    from minibert.loading.weights import read_weights

    read_weights(path)


def _init(directory: Path) -> None:
    from minibert import BertConfig, init_weights

    init_weights(BertConfig.from_json_file(directory / "config.json"))


def _classifier(num_labels: int) -> None:
    from minibert import BertForSequenceClassification

    BertForSequenceClassification.from_pretrained(TINY, num_labels=num_labels)
