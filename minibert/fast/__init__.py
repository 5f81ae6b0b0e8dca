"""The fast paths, over packed (padding-free) tokens: for inference (encoder.py: Numba kernels and minibert's
own GEMMs, no BLAS call in float32 or int8) and for training (training.py: Numba kernels around BLAS GEMMs;
the forward keeps its activations for the backward).

Same contracts as the reference blocks in minibert/nn, checked equal to them by tests/test_fast.py and
tests/test_train.py.
"""

import os

import numba

# Numba's default OpenMP pool and OpenBLAS's both spin-wait; on few cores each then waits out the other's
# spinning (docs/fast.md has the cost). The workqueue pool does not spin.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from . import compiling  # noqa: E402, F401  (logs the first compilation: fast/compiling.py)
from .encoder import FastEncoder  # noqa: E402
from .threads import set_num_threads  # noqa: E402

__all__ = ["FastEncoder", "set_num_threads"]
