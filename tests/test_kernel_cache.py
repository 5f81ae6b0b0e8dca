"""Where Numba caches minibert's kernels (minibert/kernel_cache.py) when its own choices are read-only."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from minibert import kernel_cache

UNWRITABLE = Path("/dev/null/cache")  # under a file: no one, root included, can make it


@pytest.fixture
def read_only(monkeypatch, tmp_path):
    """Numba's own choices unwritable, as in a read-only install whose home is read-only; NUMBA_CACHE_DIR unset.
    Returns the fallback directory use() may choose."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(kernel_cache, "module_directories", lambda: {UNWRITABLE})
    monkeypatch.setattr(kernel_cache, "AppDirs", lambda **_: type("Dirs", (), {"user_cache_dir": str(UNWRITABLE)}))
    fallback = tmp_path / "fallback"
    monkeypatch.setattr(kernel_cache, "fallback_directory", lambda: fallback)
    return fallback


def test_a_read_only_install_caches_in_the_temporary_directory(read_only):
    with pytest.warns(UserWarning, match=f"Numba caches compiled kernels in {read_only}, as .* are read-only"):
        kernel_cache.use()
    assert numba.config.CACHE_DIR == str(read_only) and read_only.is_dir()


def test_no_writable_directory_is_one_clear_error(read_only, monkeypatch):
    monkeypatch.setattr(kernel_cache, "fallback_directory", lambda: UNWRITABLE / "fallback")
    with pytest.raises(ImportError, match="no writable directory for Numba's compiled kernels .* set NUMBA_CACHE_DIR"):
        kernel_cache.use()
    assert numba.config.CACHE_DIR == ""


def test_writable_choices_are_left_to_numba(monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    kernel_cache.use()  # the package's __pycache__ is writable here
    assert numba.config.CACHE_DIR == ""


def test_import_and_compile_from_a_read_only_install(tmp_path):
    """The whole path, in a fresh process: a copy of the package whose __pycache__ directories cannot be made
    (a file of that name in each), a home that cannot be written, a writable temporary directory. `import
    minibert` warns once, and a kernel compiles and is cached in the fallback directory."""
    site = tmp_path / "site"
    shutil.copytree(kernel_cache.PACKAGE, site / "minibert", ignore=shutil.ignore_patterns("__pycache__"))
    for directory in kernel_cache.module_directories():
        (site / "minibert" / directory.relative_to(kernel_cache.PACKAGE) / "__pycache__").write_text("")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env |= {"PYTHONPATH": str(site), "HOME": str(UNWRITABLE), "XDG_CACHE_HOME": str(UNWRITABLE),
            "TMPDIR": str(tmp_path / "tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    code = ("import numpy as np, minibert, numba; from minibert.inputs import bounds; "
            "print(minibert.__file__, numba.config.CACHE_DIR, bounds(np.arange(3)))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    print(run.stdout, run.stderr)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("UserWarning: minibert: Numba caches compiled kernels in") == 1
    fallback = kernel_cache.fallback_directory().name
    assert run.stdout.startswith(str(site / "minibert")) and f"{tmp_path / 'tmp' / fallback}" in run.stdout
    assert list((tmp_path / "tmp" / fallback).rglob("*.nbi"))  # the kernel's cache index
