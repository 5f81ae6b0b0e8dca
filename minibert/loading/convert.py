"""Making a self-contained, torch-free model directory: model.safetensors + config.json + vocab.txt.

``convert(source, destination)`` reads the weights of a .bin or .safetensors file, a model directory, or a
hub id (downloading it through the Hugging Face cache), and writes them as model.safetensors. The file is
written to a temporary name in the destination and renamed only once it has been read back and found
equal to the source, so an interrupted or failed conversion never leaves a partial model.safetensors.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from .files import inside, present, read_json
from .hub import model_directory
from .weights import read_safetensors, read_weights, weights_file

# Files beside the weights that a model directory needs (config, tokenizer, sentence-transformers' settings);
# copied when present, with the folders modules.json names (a Pooling or Dense module's).
SIDE_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def convert(source: str | os.PathLike, destination: str | os.PathLike, **hub_options) -> Path:
    """Write destination/model.safetensors (and copy the side files) from `source`. Returns the weights path.

    source: a weights file, a model directory, or a hub id / miniature name (hub_options: revision,
    local_files_only, token, cache_dir). bfloat16 weights are stored widened to float32.
    """
    source_path = Path(os.fspath(source)).expanduser()
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a directory, so it cannot hold the model",
                              str(destination))
    if source_path.is_file():
        weights, directory = source_path, source_path.parent
    else:
        directory = model_directory(source, need=("config.json",), want=(*SIDE_FILES[1:], "1_Pooling/config.json"),
                                    weights=True, **hub_options)
        weights = weights_file(directory)
    tensors = read_weights(weights)
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "model.safetensors"
    write_safetensors_atomically(tensors, target)
    for name in SIDE_FILES:
        if present(directory / name) and (directory / name).resolve() != (destination / name).resolve():
            shutil.copyfile(directory / name, destination / name)
    for folder in module_folders(directory):  # sentence-transformers' Pooling, Dense, ... modules
        if (directory / folder).resolve() != (destination / folder).resolve():
            shutil.copytree(directory / folder, destination / folder, dirs_exist_ok=True)
    return target


def module_folders(directory: Path) -> list[str]:
    """The folders modules.json names besides the model's own (its root), each checked to lie inside `directory`."""
    if not present(directory / "modules.json"):
        return []
    modules = read_json(directory / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ValueError(f"{directory / 'modules.json'}: must be a list of modules")
    folders = [m.get("path", "") for m in modules]
    return [f for f in folders if inside(directory, f, ValueError, str(directory / "modules.json")).resolve()
            != directory.resolve() and (directory / f).is_dir()]


def write_safetensors_atomically(tensors: dict[str, np.ndarray], target: Path) -> None:
    """Write to a temporary file beside `target`, read it back, compare every tensor, then rename."""
    from safetensors.numpy import save_file

    fd, temporary = tempfile.mkstemp(prefix=".model.", suffix=".safetensors.partial", dir=target.parent)
    os.close(fd)
    try:
        save_file({name: np.ascontiguousarray(t) for name, t in tensors.items()}, temporary)
        written = read_safetensors(temporary)
        differ = [name for name in tensors if name not in written or written[name].dtype != tensors[name].dtype
                  or not np.array_equal(written[name], tensors[name], equal_nan=True)]
        if differ or set(written) != set(tensors):
            raise WeightsError(f"verification of {target} failed: {', '.join(differ) or 'tensor names differ'}")
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes it private; a model file is an ordinary file
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def current_umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
