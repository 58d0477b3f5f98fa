"""Settings that native thread pools read once, when they load: applied by `import tagatlas`, before numpy.

OpenBLAS (numpy's BLAS, pthreads build) keeps its worker threads spinning for about 2^28 cycles after every
multi-threaded call. On a machine with few cores that spinning thread takes the core the next step needs: the
FAISS search after encoding, a server's event loop (`benchmarks/load.py` reports the server's CPU time per
suggest). With a timeout of 2^4 cycles the workers sleep as soon as a call ends; a value already in the
environment wins.
"""

from __future__ import annotations

import os
import sys

BLAS_THREAD_TIMEOUT = "4"  # OpenBLAS's minimum: 2^4 cycles of spinning before a worker sleeps
_blas_threads_sleep = False


def quiet_blas_threads() -> bool:
    """Set OPENBLAS_THREAD_TIMEOUT unless given; True when numpy's BLAS workers will sleep right after a call
    (False when numpy was imported first: its BLAS has read its settings already)."""
    global _blas_threads_sleep
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        if "numpy" in sys.modules:
            return _blas_threads_sleep
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = BLAS_THREAD_TIMEOUT
    try:
        _blas_threads_sleep = int(os.environ["OPENBLAS_THREAD_TIMEOUT"]) <= 8
    except ValueError:
        _blas_threads_sleep = False
    return _blas_threads_sleep


def blas_threads_sleep() -> bool:
    """Whether numpy's BLAS workers sleep right after each call (so other work may use every core)."""
    return _blas_threads_sleep
