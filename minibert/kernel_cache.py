"""Where Numba keeps minibert's compiled kernels.

Every kernel is compiled with `cache=True`, and Numba picks the cache directory when a kernel is defined, at
import: NUMBA_CACHE_DIR if set, else the `__pycache__` beside the kernel's source, else its user cache
(~/.cache/numba). When none of them can be written (a read-only install in a container whose home is
read-only too), Numba refuses to define the kernel and `import minibert` fails deep inside it. use() runs
when this module is imported, first of all minibert's (minibert/__init__.py), before any kernel is defined.
In that case it points Numba at a directory under the system's temporary one, with a warning (the kernels
then compile again in each fresh container), or, when that cannot be written either, raises an ImportError
that says what to set.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numba
from numba.misc.appdirs import AppDirs

PACKAGE = Path(__file__).resolve().parent


def writable(directory: Path) -> bool:
    """Whether `directory` exists or can be made, and takes a new file: Numba's own test of a cache directory."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def module_directories() -> set[Path]:
    """The directories of minibert's modules: the package's and its subpackages'. The __pycache__ directories,
    whose files grow with every kernel Numba caches, are not walked."""
    directories = set()
    for root, subdirectories, files in os.walk(PACKAGE):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        if any(name.endswith(".py") for name in files):
            directories.add(Path(root))
    return directories


def fallback_directory() -> Path:
    """The cache directory use() gives Numba when its own choices cannot be written: one per user."""
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""  # elsewhere the temporary directory is the user's
    return Path(tempfile.gettempdir()) / f"minibert-numba-cache{user}"


def use() -> None:
    """Leave Numba's choice of cache directory alone when it can write one; else set the fallback and warn.
    ImportError when no candidate is writable."""
    if numba.config.CACHE_DIR:
        return  # NUMBA_CACHE_DIR: the user's choice
    # Numba takes the directory of the module that defines each kernel (fast.kernels.kernel compiles those of
    # other subpackages): every module's directory, then.
    if all(writable(d / "__pycache__") for d in module_directories()):
        return
    user = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    if writable(user):
        return
    try:
        fallback = fallback_directory()
    except OSError:  # tempfile found no usable temporary directory
        fallback = None
    if fallback is None or not writable(fallback):
        places = f"{PACKAGE}, {user} and {fallback or 'every temporary directory'}"
        raise ImportError(f"minibert: no writable directory for Numba's compiled kernels ({places} are read-only): "
                          "set NUMBA_CACHE_DIR to one")
    numba.config.CACHE_DIR = str(fallback)  # process-wide, read by Numba as each cached kernel is defined
    warnings.warn(f"minibert: Numba caches compiled kernels in {fallback}, as {PACKAGE} and {user} are read-only; "
                  "set NUMBA_CACHE_DIR to keep them elsewhere", stacklevel=2)


use()
