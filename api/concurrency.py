"""Concurrency for the service: many readers or one writer over the model, and the micro-batchers' neighbour."""

from __future__ import annotations

import threading
from contextlib import contextmanager


class ReadWriteLock:
    """Many readers (suggest, search) or one writer (ingest, delete); a waiting writer blocks new readers.

    FAISS and the SQLite connection are safe for concurrent reads but not for a read during an add.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
