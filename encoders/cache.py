"""Post vectors cached by content hash, so enriching the same posts again skips the encoders.

The key is a SHA-256 of the encoder's identity, the post's prepared text and its image's bytes (or
reference, when the image cannot be read here): a post whose content did not change maps to the
same vector, whatever its id. Vectors are stored as float32, bit-identical to a fresh encoding, in a
SQLite file (WAL; one transaction per batch) so the cache survives restarts and is shared by runs.
A photo's pooled backbone features (what image retrieval compares) are kept beside its vector, in
their own table, so a model that reads them is served from the cache too.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
# Its own table, so a cache written before it existed keeps serving vectors (its photos then miss once).
FEATURES_SCHEMA = "CREATE TABLE IF NOT EXISTS image_features (key BLOB PRIMARY KEY, features BLOB NOT NULL) WITHOUT ROWID"
CHUNK = 900  # keys per SELECT (SQLite's default limit on host parameters is 999)


@dataclass(frozen=True)
class Cached:
    """What the cache holds for one post: its vector, whether an image went into it, the image's pooled features."""

    vector: np.ndarray
    has_image: bool
    image_features: np.ndarray | None = None


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
        self._db.execute(FEATURES_SCHEMA)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(encoder_id: str, text: str, image) -> bytes:
        digest = hashlib.sha256(encoder_id.encode("utf-8"))
        for part in (text.encode("utf-8", "surrogatepass"), image_fingerprint(image)):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        return digest.digest()

    def get(self, keys: Sequence[bytes], *, image_features: bool = False) -> dict[bytes, Cached]:
        """key → `Cached` for the keys present. With `image_features`, a post whose image went into its vector is
        present only with its image's features stored too (the caller encodes it again otherwise)."""
        found: dict[bytes, Cached] = {}
        with self._lock:
            for chunk in _chunks(keys):
                for key, blob in self._select("SELECT key, vector FROM vectors WHERE key IN ({})", chunk):
                    if len(blob) == 4 * self.dim + 1:
                        found[key] = Cached(np.frombuffer(blob, dtype=np.float32, count=self.dim), blob[-1] == 1)
            if image_features:
                photos = [k for k, c in found.items() if c.has_image]
                stored = {key: blob for chunk in _chunks(photos)
                          for key, blob in self._select("SELECT key, features FROM image_features WHERE key IN ({})", chunk)}
                for key in photos:
                    blob = stored.get(key)
                    if not blob or len(blob) % 4:  # absent, or not float32s
                        del found[key]
                    else:
                        found[key] = Cached(found[key].vector, True, np.frombuffer(blob, dtype=np.float32))
            served = sum(k in found for k in keys)  # per post: a batch may hold the same content twice
            self.hits += served
            self.misses += len(keys) - served
        return found

    def _select(self, query: str, chunk: list[bytes]):
        return self._db.execute(query.format(",".join("?" * len(chunk))), chunk)

    def put(self, keys: Sequence[bytes], vectors: np.ndarray, has_image: Sequence[bool], image_features: np.ndarray | None = None) -> None:
        """Store each post's vector and, where an image went into it and `image_features` (n, d) is given, the
        image's features; one transaction, so a batch is stored whole or not at all."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(k, v.tobytes() + (b"\x01" if img else b"\x00")) for k, v, img in zip(keys, vectors, has_image, strict=True)]
        features = [] if image_features is None else [
            (k, np.ascontiguousarray(f, dtype=np.float32).tobytes()) for k, f, img in zip(keys, image_features, has_image, strict=True) if img]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors(key, vector) VALUES (?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO image_features(key, features) VALUES (?, ?)", features)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _chunks(keys: Sequence[bytes]) -> list[list[bytes]]:
    return [list(keys[start : start + CHUNK]) for start in range(0, len(keys), CHUNK)]
