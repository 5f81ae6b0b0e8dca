"""One knob for the two thread pools the fast path uses: BLAS (the GEMMs) and Numba (the kernels)."""

from __future__ import annotations

import threading

import numba

MAX_THREADS = 4096  # far beyond any CPU here; BLAS takes the count as a C int


class _Count(threading.local):
    """The count set_num_threads last set in a thread (Numba's is per thread too); Numba's default at first."""

    def __init__(self) -> None:
        self.count = numba.config.NUMBA_NUM_THREADS


_this_thread = _Count()


def set_num_threads(n: int) -> None:
    """Use `n` threads for both BLAS and the Numba kernels (default: all cores, as both libraries choose).

    BLAS threads are set through threadpoolctl when it is installed; without it, set OPENBLAS_NUM_THREADS
    (or OMP_NUM_THREADS / MKL_NUM_THREADS) in the environment before starting Python.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"the thread count must be a positive integer (at most {MAX_THREADS}), got {n!r}")
    _this_thread.count = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(_this_thread.count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import warnings

        warnings.warn("threadpoolctl is not installed: only the Numba kernels follow set_num_threads; set "
                      "OPENBLAS_NUM_THREADS before starting Python for BLAS", stacklevel=2)
        return
    threadpool_limits(limits=n, user_api="blas")


def num_threads() -> int:
    """The Numba thread count of the calling thread, as set by set_num_threads (else Numba's default, all
    cores), which a forward plans its work for. Kept here, as numba.get_num_threads() takes two locks at
    every call, a few microseconds of a small forward's. A count set by numba.set_num_threads directly is
    not seen; Numba still runs no more threads than that, and the forward's threads claim its items rather
    than being assigned them (fast/tasks.py), so its outputs are the same."""
    return _this_thread.count
