"""The one door a model's files come in by: each is checked to be a regular file, and JSON is read strictly
(and written atomically, by write_json).

A model directory comes from anywhere (a download, a colleague, an attacker), so before a file is read it
must be a regular file inside reach: not a directory, not a dangling or looping link, not a device such as
/dev/zero that never ends. JSON is decoded as UTF-8 (a bad byte is named with its file and offset), with
numbers that are finite (JSON has no NaN or Infinity; Python's reader accepts them, and 1e400 overflows to
inf) and nesting that stays within Python's recursion limit. Every problem is one line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 256 << 20  # a tokenizer.json with a large vocabulary is ~10 MB


def regular_file(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "file") -> Path:
    """`path`, after checking that it is (or links to) a regular file; else `error` naming the problem."""
    path = Path(path)
    try:
        info = path.stat()  # follows links: a dangling one or a loop raises here
    except FileNotFoundError:
        dangling = path.is_symlink()
        raise error(f"{path}: {'a symbolic link to a missing file' if dangling else 'no such file'}") from None
    except OSError as e:  # a link loop (ELOOP), a name too long, no permission
        raise error(f"{path}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is not a regular file (a device, pipe or socket), so it is not a {what}")
    return path


def present(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "file") -> bool:
    """Whether an optional file is there: False when nothing has its name, True when a regular file does,
    and `error` when something else does (a directory, a dangling link, a device)."""
    if not os.path.lexists(path):
        return False
    regular_file(path, error, what)
    return True


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "JSON file") -> Any:
    """The value of a JSON file, read strictly (see the module's docstring); problems raise `error`."""
    path = regular_file(path, error, what)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise error(f"{path}: {path.stat().st_size} bytes, more than a model's {what} holds ({MAX_JSON_BYTES})")
    try:
        data = path.read_bytes()
    except OSError as e:  # no permission, an I/O error
        raise error(f"{path}: cannot be read ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None
    try:
        return json.loads(text, parse_constant=_non_finite(path, error), parse_float=_finite_float(path, error))
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to be a model's {what}") from None


def _non_finite(path: Path, error: type[Exception]):
    def refuse(name: str):
        raise error(f"{path}: {name} is not a JSON number (numbers in a model's files must be finite)")
    return refuse


def _finite_float(path: Path, error: type[Exception]):
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise error(f"{path}: the number {text[:40]} overflows to {value} (numbers in a model's "
                        "files must be finite)")
        return value
    return parse


def write_json(path: Path, data: Any) -> None:
    """read_json's counterpart for the files minibert writes (a corpus job's manifest, a trainer's state): through
    a temporary file beside `path`, one per process, and a rename, so a kill leaves the old file or the new."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


def inside(root: Path, relative: Any, error: type[Exception] = ValueError, where: str = "") -> Path:
    """root / relative, for a relative path read from one of the model's files, after checking that it
    stays inside root once links are followed (a module path of '../../etc', '/etc' or a link out is refused)."""
    if not isinstance(relative, str):
        raise error(f"{where}: a path must be a string, got {relative!r}")
    if os.path.isabs(relative) or "\\" in relative or "\0" in relative:
        raise error(f"{where}: the path {relative!r} must be relative to the model directory")
    try:
        resolved, base = (root / relative).resolve(strict=False), root.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # a link loop
        raise error(f"{where}: the path {relative!r} cannot be resolved ({e})") from None
    if resolved != base and base not in resolved.parents:
        raise error(f"{where}: the path {relative!r} leads outside the model directory {root}")
    return root / relative
