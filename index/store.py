"""SQLite store of post metadata and vectors: the source of truth the FAISS index is rebuilt from.

Rows are addressed by an integer `rowid` that is also the post's FAISS id. WAL journaling with
`synchronous=FULL` makes every committed write survive a crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagatlas.data import Post

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_key TEXT NOT NULL,
    user_id TEXT,
    created_at REAL,
    lat REAL,
    lon REAL,
    place TEXT,
    hashtags TEXT NOT NULL,
    text TEXT,
    image TEXT,
    role TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_user ON posts(user_key, created_at);
CREATE TABLE IF NOT EXISTS post_tags (rowid_ INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (rowid_, tag)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS post_tags_tag ON post_tags(tag);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clusters (rowid_ INTEGER PRIMARY KEY, cluster INTEGER NOT NULL, contributions TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS clusters_cluster ON clusters(cluster);
CREATE TABLE IF NOT EXISTS image_vectors (rowid_ INTEGER PRIMARY KEY, vector BLOB NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""
_BUMP = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"


@dataclass
class StoredPost:
    """One stored post as the recommender needs it."""

    rowid: int
    id: str
    user_key: str
    created_at: float
    lat: float | None
    lon: float | None
    place: str | None
    hashtags: list[str]
    text: str | None
    role: str


_COLUMNS = "rowid, id, user_key, created_at, lat, lon, place, hashtags, text, role"


def _row(r) -> StoredPost:
    return StoredPost(r[0], r[1], r[2], r[3] or 0.0, r[4], r[5], r[6], json.loads(r[7]), r[8], r[9])


class StoreError(ValueError):
    """A store file that SQLite cannot read or write (damaged, not a database, or read-only)."""


def _store_error(path: str, exc: sqlite3.Error) -> StoreError:
    return StoreError(f"{path}: the post store cannot be opened ({exc}); restore the model folder from a copy or retrain it")


class PostStore:
    """Add, fetch, delete and list posts; `role` records why a post is there (fit, val, online)."""

    def __init__(self, path: str | os.PathLike = ":memory:", dim: int | None = None):
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL" if self.path != ":memory:" else "PRAGMA journal_mode=MEMORY")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from exc
        self.clusters = StoredClusters(self._db)  # each post's graph cluster, in the same file and transactions
        self.tags = StoredTags(self._db)  # which posts carry which hashtag
        if dim is not None:
            self.set_meta("dim", str(dim))
        stored = self.get_meta("dim")
        self.dim = int(stored) if stored is not None else None

    @classmethod
    def open_copy(cls, path: str | os.PathLike) -> "PostStore":
        """An in-memory copy of a store file, for work that must not change the saved model (evaluation)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no store file")
        copy = cls(":memory:")
        try:
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            source.backup(copy._db)
            source.close()
        except sqlite3.Error as exc:
            raise _store_error(str(path), exc) from exc
        copy._db.executescript(SCHEMA)  # a store written by an older version gains the tables added since (e.g. clusters)
        copy.dim = int(copy.get_meta("dim")) if copy.get_meta("dim") else None
        return copy

    def save_copy(self, path: str | os.PathLike) -> None:
        """Write the whole store to a new file (used when a model folder is written)."""
        target = sqlite3.connect(str(path))
        self._db.backup(target)
        target.close()

    def close(self) -> None:
        self._db.close()

    # -- meta ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- writes -------------------------------------------------------------------------------
    def add(self, posts: Sequence[Post], vectors: np.ndarray, places: Sequence[str | None], role: str,
            image_vectors: np.ndarray | None = None) -> list[int]:
        """Insert posts (ids must be new) in one transaction; returns their rowids. `image_vectors`: the image
        backbone's features per post (a zero row: no image), kept as float16 for image retrieval."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.dim is not None and len(posts) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the store holds {self.dim}")
        rows = [
            (p.id, p.user_key, p.user_id, p.timestamp, p.lat, p.lon, place, json.dumps(p.hashtags, ensure_ascii=False),
             p.text, p.image, role, vectors[i].tobytes())
            for i, (p, place) in enumerate(zip(posts, places, strict=True))
        ]
        with self._db:
            try:
                self._db.executemany(
                    "INSERT INTO posts(id, user_key, user_id, created_at, lat, lon, place, hashtags, text, image, role, vector)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                found = self.rowids([p.id for p in posts])
                self._db.executemany("INSERT OR IGNORE INTO post_tags(rowid_, tag) VALUES (?, ?)",
                                     [(found[p.id], t) for p in posts for t in p.hashtags])
                if image_vectors is not None:
                    image_vectors = np.asarray(image_vectors, np.float16)
                    self._db.executemany("INSERT INTO image_vectors(rowid_, vector) VALUES (?, ?)",
                                         [(found[p.id], image_vectors[i].tobytes()) for i, p in enumerate(posts) if image_vectors[i].any()])
                self._db.execute(_BUMP)
                return [found[p.id] for p in posts]
            except sqlite3.IntegrityError as exc:
                known = self.rowids([p.id for p in posts])
                raise ValueError(f"post ids already stored: {sorted(known)[:5]}") from exc

    def update_vectors(self, rowids: Sequence[int], vectors: np.ndarray) -> None:
        """Replace stored vectors (after the model that makes them was retrained)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._db:
            self._db.executemany("UPDATE posts SET vector = ? WHERE rowid = ?", [(v.tobytes(), int(r)) for r, v in zip(rowids, vectors)])
            self._db.execute(_BUMP)

    def delete(self, ids: Iterable[str]) -> list[int]:
        """Delete posts by id; returns the rowids that were removed (unknown ids are ignored)."""
        found = self.rowids(list(ids))
        with self._db:
            self._db.executemany("DELETE FROM posts WHERE rowid = ?", [(r,) for r in found.values()])
            self._db.executemany("DELETE FROM post_tags WHERE rowid_ = ?", [(r,) for r in found.values()])
            self._db.executemany("DELETE FROM clusters WHERE rowid_ = ?", [(r,) for r in found.values()])
            self._db.executemany("DELETE FROM image_vectors WHERE rowid_ = ?", [(r,) for r in found.values()])
            if found:
                self._db.execute(_BUMP)
        return list(found.values())

    # -- reads --------------------------------------------------------------------------------
    def generation(self) -> int:
        """Incremented by every committed write: an index saved at another generation is stale."""
        return int(self.get_meta("generation") or 0)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM posts").fetchone()[0])

    def rowids(self, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self._db.execute(f"SELECT id, rowid FROM posts WHERE id IN ({marks})", chunk).fetchall())
        return out

    def get(self, rowids: Sequence[int]) -> dict[int, StoredPost]:
        out: dict[int, StoredPost] = {}
        wanted = sorted({int(r) for r in rowids if r >= 0})
        for chunk in _chunks(wanted, 900):
            marks = ",".join("?" * len(chunk))
            for r in self._db.execute(f"SELECT {_COLUMNS} FROM posts WHERE rowid IN ({marks})", chunk):
                out[r[0]] = _row(r)
        return out

    def by_user(self, user_key: str, limit: int = 500) -> list[StoredPost]:
        """A user's most recent posts, newest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM posts WHERE user_key = ? ORDER BY created_at DESC LIMIT ?", (user_key, limit))
        return [_row(r) for r in rows]

    def vectors(self, rowids: Sequence[int]) -> np.ndarray:
        """The vectors of these rowids, in their order (KeyError for one not stored)."""
        if not len(rowids):
            return np.zeros((0, self.dim or 0), np.float32)
        found, vectors = self.vectors_found(rowids)
        position = dict(zip(found.tolist(), range(len(found))))
        return vectors[[position[int(r)] for r in rowids]]

    def vectors_found(self, rowids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(rowids still stored, their vectors): what exact re-ranking reads (`tagatlas.index.rerank`)."""
        found: list[tuple[int, bytes]] = []
        for chunk in _chunks([int(r) for r in rowids], 900):
            marks = ",".join("?" * len(chunk))
            found.extend(self._db.execute(f"SELECT rowid, vector FROM posts WHERE rowid IN ({marks})", chunk).fetchall())
        if not found:
            return np.zeros(0, np.int64), np.zeros((0, self.dim or 0), np.float32)
        ids = np.fromiter((r for r, _ in found), np.int64, len(found))
        return ids, np.frombuffer(b"".join(v for _, v in found), np.float32).reshape(len(found), -1)

    def iter_all(self, roles: Sequence[str] | None = None, batch: int = 10_000):
        """All posts with their vectors, in rowid order, in batches of (rowids, StoredPosts, vectors)."""
        where = f"WHERE role IN ({','.join('?' * len(roles))})" if roles else ""
        cursor = self._db.execute(f"SELECT {_COLUMNS}, vector FROM posts {where} ORDER BY rowid", tuple(roles or ()))
        while rows := cursor.fetchmany(batch):
            yield [r[0] for r in rows], [_row(r) for r in rows], np.stack([np.frombuffer(r[10], np.float32) for r in rows])

    def iter_meta(self, batch: int = 50_000):
        """All posts without their vectors, in rowid order, in batches of (rowids, StoredPosts)."""
        cursor = self._db.execute(f"SELECT {_COLUMNS} FROM posts ORDER BY rowid")
        while rows := cursor.fetchmany(batch):
            yield [r[0] for r in rows], [_row(r) for r in rows]

    def image_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, float32 image features) of every stored post that has them, in rowid order."""
        rows = self._db.execute("SELECT rowid_, vector FROM image_vectors ORDER BY rowid_").fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r for r, _ in rows), np.int64, len(rows))
        return ids, np.frombuffer(b"".join(v for _, v in rows), np.float16).reshape(len(rows), -1).astype(np.float32)

    def user_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT DISTINCT user_key FROM posts")}

    def post_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT id FROM posts")}


class StoredTags:
    """The posts' hashtags (the `post_tags` table of a store, written by `PostStore.add`, rows going with their post):
    how popular each tag is and which posts carry it, for the tag-place evidence and the new-tag vocabulary."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def counts(self) -> dict[str, int]:
        """How many stored posts carry each hashtag (new tags included the moment they are added)."""
        return dict(self._db.execute("SELECT tag, COUNT(*) FROM post_tags GROUP BY tag"))

    def rows_with(self, tags: Iterable[str]) -> dict[str, list[int]]:
        """Tag → rowids of the stored posts carrying it, for the tags given (those no post carries are absent)."""
        out: dict[str, list[int]] = {}
        for chunk in _chunks(sorted(set(tags)), 900):
            marks = ",".join("?" * len(chunk))
            for tag, rowid in self._db.execute(f"SELECT tag, rowid_ FROM post_tags WHERE tag IN ({marks})", chunk):
                out.setdefault(tag, []).append(rowid)
        return out


class StoredClusters:
    """The posts' graph clusters (the `clusters` table of a store): each post's cluster and each modality's share in
    placing it, recorded by the graph module and read by search, ingest and the cluster profiles. A post's row goes
    when the post is deleted (`PostStore.delete`)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def record(self, rowids: Sequence[int], clusters: Sequence[int], contributions: Sequence[dict], replace_all: bool = False) -> None:
        """Record posts' clusters and each modality's share in placing them, in one transaction; `replace_all`: a
        new clustering, so every earlier row goes."""
        with self._db:
            if replace_all:
                self._db.execute("DELETE FROM clusters")
            self._db.executemany("INSERT OR REPLACE INTO clusters(rowid_, cluster, contributions) VALUES (?, ?, ?)",
                                 [(int(r), int(c), json.dumps(w)) for r, c, w in zip(rowids, clusters, contributions, strict=True)])

    def of(self, rowids: Sequence[int]) -> dict[int, tuple[int, dict]]:
        """rowid → (cluster, contributions) for the posts that have one."""
        out: dict[int, tuple[int, dict]] = {}
        for chunk in _chunks([int(r) for r in rowids], 900):
            marks = ",".join("?" * len(chunk))
            for r, c, w in self._db.execute(f"SELECT rowid_, cluster, contributions FROM clusters WHERE rowid_ IN ({marks})", chunk):
                out[r] = (c, json.loads(w))
        return out

    def members(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rowids, clusters, created_at) of every clustered post, for profiles and trend detection."""
        rows = self._db.execute("SELECT p.rowid, c.cluster, COALESCE(p.created_at, 0) FROM posts p JOIN clusters c ON c.rowid_ = p.rowid").fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        a = np.array(rows, dtype=float)
        return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2]

    def sizes(self) -> dict[int, int]:
        """Cluster → how many stored posts it holds."""
        return dict(self._db.execute("SELECT cluster, COUNT(*) FROM clusters GROUP BY cluster"))


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
