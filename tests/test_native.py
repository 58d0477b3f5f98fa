"""`import tagatlas` tells numpy's BLAS workers to sleep after each call, unless the user set it or numpy came first."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import os; from tagatlas.core.native import blas_threads_sleep; "
         "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), blas_threads_sleep())")


def _probe(code: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"} | env
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_sets_the_timeout_before_numpy_loads():
    assert _probe("import tagatlas; " + PROBE) == ["4", "True"]


def test_a_users_own_setting_wins():
    assert _probe("import tagatlas; " + PROBE, OPENBLAS_THREAD_TIMEOUT="20") == ["20", "False"]
    assert _probe("import tagatlas; " + PROBE, OPENBLAS_THREAD_TIMEOUT="6") == ["6", "True"]


def test_too_late_when_numpy_was_imported_first():
    assert _probe("import numpy, tagatlas; " + PROBE) == ["None", "False"]
