"""Work shared by threads inside one parallel region: items claimed from atomic counters, phases that wait.

A forward runs as one parallel region (fast/layers.py) rather than one per GEMM or kernel: waking Numba's
thread pool costs tens of microseconds each time, more than a small GEMM takes. Inside the region each
phase (a GEMM, the attention, a LayerNorm) is a list of items. Threads claim items with an atomic
fetch-and-add until none is left, then wait until every claimed item is finished before the next phase
reads its results:

    counters[2·phase]       items claimed so far (fetch-and-add; a value ≥ n means "none left")
    counters[2·phase + 1]   items finished

A thread waits only for items another thread has claimed and is computing, never for a thread to arrive,
so the region finishes whatever number of threads the pool actually runs (one thread does every item).
"""

from __future__ import annotations

import numba
from numba import types as nbtypes
from numba.core import cgutils
from numba.core.extending import intrinsic


@intrinsic
def atomic_add(typingctx, counters, index, value):
    """counters[index] += value as one atomic step (sequentially consistent); returns the old value.
    counters: int64 array."""
    def codegen(context, builder, sig, args):
        array, i, v = args
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0],
                                           context.make_array(sig.args[0])(context, builder, array), [i])
        return builder.atomic_rmw("add", pointer, context.cast(builder, v, sig.args[2], nbtypes.int64), "seq_cst")

    return nbtypes.int64(counters, index, value), codegen


@intrinsic
def atomic_load(typingctx, counters, index):
    """counters[index], read atomically (acquire: what its writer wrote before is visible after)."""
    def codegen(context, builder, sig, args):
        array, i = args
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0],
                                           context.make_array(sig.args[0])(context, builder, array), [i])
        return builder.load_atomic(pointer, "acquire", 8)

    return nbtypes.int64(counters, index), codegen


@numba.njit(cache=True, inline="always")
def claim(counters, phase):
    """The next unclaimed item of `phase` (≥ its item count when none is left)."""
    return atomic_add(counters, 2 * phase, 1)


@numba.njit(cache=True, inline="always")
def finish(counters, phase):
    """Mark one item of `phase` finished (after its results are written)."""
    atomic_add(counters, 2 * phase + 1, 1)


@numba.njit(cache=True, inline="always")
def wait(counters, phase, items):
    """Return once all `items` items of `phase` are finished (spinning: the wait is one item's length)."""
    while atomic_load(counters, 2 * phase + 1) < items:
        pass
