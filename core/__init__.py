"""Helpers every part shares, with no dependency on any other part: atomic file writes (fsynced) and the
native thread-pool settings that must be applied before numpy loads. Nothing here imports numpy."""

from tagatlas.core.atomic import atomic_path, fsync_dir, write_text_atomic
from tagatlas.core.native import blas_threads_sleep, quiet_blas_threads

__version__ = "0.1.0"
__all__ = ["__version__", "atomic_path", "blas_threads_sleep", "fsync_dir", "quiet_blas_threads", "write_text_atomic"]
