"""Image retrieval over the indexed photos: an inner-product FAISS index of their L2-normalised backbone features,
derived from the store (its `image_vectors` table is the source of truth) and rebuilt when the store moved on."""

from __future__ import annotations

import numpy as np

from tagatlas.index.faiss_index import FaissIndex
from tagatlas.index.store import PostStore


def normalized(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero: no image)."""
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.where(norms > 0, features / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


class ImageGallery:
    """Search the indexed photos by image features; `generation` is the store generation it reflects."""

    def __init__(self, factory: str = "auto"):
        self.factory = factory
        self.index: FaissIndex | None = None
        self.generation = -1

    def load(self, store: PostStore) -> "ImageGallery":
        rowids, features = store.image_vectors()
        self.index = FaissIndex(features.shape[1], factory=self.factory).index(rowids, normalized(features)) if len(rowids) else None
        self.generation = store.generation()
        return self

    def __len__(self) -> int:
        return 0 if self.index is None else self.index.count()

    def add(self, rowids: list[int], features: np.ndarray) -> None:
        """Follow a write: the posts at `rowids` whose feature row is not zero become searchable."""
        keep = np.flatnonzero(np.abs(features).sum(axis=1) > 0)
        if not len(keep):
            return
        vectors = normalized(features[keep])
        ids = np.asarray(rowids, np.int64)[keep]
        if self.index is None:
            self.index = FaissIndex(vectors.shape[1], factory=self.factory).index(ids, vectors)
        else:
            self.index.add(ids, vectors)

    def delete(self, rowids: list[int]) -> None:
        if self.index is not None and rowids:
            self.index.delete(np.asarray(rowids, np.int64))

    def search(self, features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (cosine similarities, rowids) per query row; a zero row (no image) or an empty gallery finds nothing
        (rowid -1)."""
        n = len(features)
        if self.index is None or not n or features.shape[1] != self.index.dim:
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        queries = normalized(features)
        sims, ids = self.index.search(queries, k)
        empty = ~queries.any(axis=1)
        sims[empty], ids[empty] = -np.inf, -1
        return sims, ids
