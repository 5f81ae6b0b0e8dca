"""A note, once per process, when Numba starts compiling minibert's kernels rather than loading them.

The first call on a CPU compiles the fast path for about a minute (docs/fast.md, cold start); later processes
load it from Numba's disk cache in a fraction of a second. So that the first wait is not a silent one, the
first compilation of a minibert function logs one INFO line (logger "minibert.fast.compiling"). Libraries leave
logging to the application: nothing shows unless it is configured (the `minibert` command shows it on a
terminal). Numba's compile events fire only for a real compilation, never for a load from the cache.
"""

from __future__ import annotations

import logging

from numba.core import event

MESSAGE = ("compiling the fast path for this CPU: about a minute, once per installation (Numba's disk "
           "cache keeps it)")


class CompileNotice(event.Listener):
    """Logs MESSAGE at the start of the first compilation of a function of minibert's own."""

    def __init__(self) -> None:
        self.said = False

    def on_start(self, ev: event.Event) -> None:
        dispatcher = ev.data.get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if not self.said and module.startswith("minibert."):
            self.said = True
            logging.getLogger(__name__).info(MESSAGE)

    def on_end(self, ev: event.Event) -> None:
        pass


event.register("numba:compile", CompileNotice())
