"""The fast inference path: Numba kernels around BLAS GEMMs, over packed (padding-free) tokens.

Same contract as the reference blocks in minibert/nn, checked equal to them by tests/test_fast.py.
"""

import os

import numba

# Numba's default OpenMP pool and OpenBLAS's both spin-wait; on few cores each then waits out the other's
# spinning (measured here: ~5 ms per kernel call). The workqueue pool does not spin.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from .encoder import FastEncoder  # noqa: E402
from .threads import set_num_threads  # noqa: E402

__all__ = ["FastEncoder", "set_num_threads"]
