"""Post vectors cached by content hash, so enriching the same posts again skips the encoders.

The key is a SHA-256 of the encoder's identity, the post's prepared text and its image's bytes (or
reference, when the image cannot be read here): a post whose content did not change maps to the
same vector, whatever its id. Vectors are stored as float32, bit-identical to a fresh encoding, in a
SQLite file (WAL; one transaction per batch) so the cache survives restarts and is shared by runs.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"


def default_cache_path() -> Path:
    """$TAGATLAS_CACHE_DIR/embeddings.sqlite, else the user's cache folder (XDG)."""
    from tagatlas.core.settings import load_settings

    root = load_settings().cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tagatlas"
    return Path(root) / "embeddings.sqlite"


def image_fingerprint(image) -> bytes:
    """What identifies an image's content: its bytes when we can read them, else its reference."""
    if image is None:
        return b""
    if isinstance(image, (bytes, bytearray)):
        return hashlib.sha256(image).digest()
    if isinstance(image, (str, os.PathLike)) and "://" not in str(image):
        try:
            with open(image, "rb") as handle:
                return hashlib.sha256(handle.read()).digest()
        except OSError:
            pass
    return str(image).encode("utf-8", "surrogatepass")


class EmbeddingCache:
    """get / put of vectors by content key; `hits` and `misses` count posts looked up since it was opened."""

    def __init__(self, path: str | os.PathLike, dim: int):
        self.path = Path(path)
        self.dim = dim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(encoder_id: str, text: str, image) -> bytes:
        digest = hashlib.sha256(encoder_id.encode("utf-8"))
        for part in (text.encode("utf-8", "surrogatepass"), image_fingerprint(image)):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        return digest.digest()

    def get(self, keys: Sequence[bytes]) -> dict[bytes, tuple[np.ndarray, bool]]:
        """key → (vector, whether an image went into it) for the keys present."""
        found: dict[bytes, tuple[np.ndarray, bool]] = {}
        with self._lock:
            for start in range(0, len(keys), 900):
                chunk = list(keys[start : start + 900])
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    if len(blob) == 4 * self.dim + 1:
                        found[key] = (np.frombuffer(blob, dtype=np.float32, count=self.dim), blob[-1] == 1)
            served = sum(k in found for k in keys)  # per post: a batch may hold the same content twice
            self.hits += served
            self.misses += len(keys) - served
        return found

    def put(self, keys: Sequence[bytes], vectors: np.ndarray, has_image: Sequence[bool]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors(key, vector) VALUES (?, ?)",
                                 [(k, v.tobytes() + (b"\x01" if img else b"\x00"))
                                  for k, v, img in zip(keys, vectors, has_image, strict=True)])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
