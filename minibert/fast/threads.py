"""One knob for the two thread pools the fast path uses: BLAS (the GEMMs) and Numba (the kernels)."""

from __future__ import annotations

import numba

MAX_THREADS = 4096  # far beyond any CPU here; BLAS takes the count as a C int


def set_num_threads(n: int) -> None:
    """Use `n` threads for both BLAS and the Numba kernels (default: all cores, as both libraries choose).

    BLAS threads are set through threadpoolctl when it is installed; without it, set OPENBLAS_NUM_THREADS
    (or OMP_NUM_THREADS / MKL_NUM_THREADS) in the environment before starting Python.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"the thread count must be a positive integer (at most {MAX_THREADS}), got {n!r}")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import warnings

        warnings.warn("threadpoolctl is not installed: only the Numba kernels follow set_num_threads; set "
                      "OPENBLAS_NUM_THREADS before starting Python for BLAS", stacklevel=2)
        return
    threadpool_limits(limits=n, user_api="blas")
