"""Tags matched to posts in the text encoder's space, so a tag that reached the index after training is
recommendable even when no neighbour carries it (MaCon/RIGHT's generation of unseen tags, as a match).

Each indexed tag is embedded once as words ('#MarchMadness' → 'march madness') with the model's own
text encoder; a post's vector is compared with all of them. New tags are embedded when they are indexed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tagatlas.data import hashtag_words
from tagatlas.encoders import TextEncoder
from tagatlas.core import atomic_path, write_text_atomic


class TagMatcher:
    """fit / extend / match / save / load over a growing tag vocabulary."""

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self.tags_: list[str] = []
        self.vectors_ = np.zeros((0, 0), np.float32)
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.tags_)

    def __contains__(self, tag: str) -> bool:
        return tag in self._row

    def fit(self, tags: Iterable[str], encoder: TextEncoder) -> "TagMatcher":
        self.tags_, self.vectors_, self._row = [], np.zeros((0, encoder.dim), np.float32), {}
        self.extend(tags, encoder)
        return self

    def extend(self, tags: Iterable[str], encoder: TextEncoder) -> int:
        """Embed the tags not embedded yet; returns how many were added."""
        return self.add_embedded(*self.embed_new(tags, encoder))

    def embed_new(self, tags: Iterable[str], encoder: TextEncoder) -> tuple[list[str], np.ndarray | None]:
        """(tags not embedded yet, their vectors) without changing the matcher: a service encodes them beside
        its readers and adds them (`add_embedded`) under its write lock."""
        new = sorted({t for t in tags if t and t not in self._row})
        if not new:
            return [], None
        return new, encoder.encode([hashtag_words(t) or t for t in new], batch_size=self.batch_size)

    def add_embedded(self, tags: list[str], vectors: np.ndarray | None) -> int:
        """Add tags embedded by `embed_new`; those added meanwhile (by a concurrent add) are skipped."""
        first: dict[str, int] = {}
        for i, t in enumerate(tags):
            first.setdefault(t, i)  # each tag once, in the given order
        keep = [i for t, i in first.items() if t not in self._row]
        if not keep or vectors is None:
            return 0
        new, vectors = [tags[i] for i in keep], np.asarray(vectors)[keep]
        if self.vectors_.shape[1] != vectors.shape[1]:
            if len(self.tags_):
                raise ValueError(f"tag vectors have dim {self.vectors_.shape[1]}, the encoder gives {vectors.shape[1]}")
            self.vectors_ = np.zeros((0, vectors.shape[1]), np.float32)
        self._row.update(zip(new, range(len(self.tags_), len(self.tags_) + len(new))))
        self.tags_.extend(new)
        self.vectors_ = np.concatenate([self.vectors_, vectors.astype(np.float32)])
        return len(new)

    def match(self, queries: np.ndarray, k: int, allowed: set[str] | dict | np.ndarray | None = None) -> tuple[list[list[str]], list[np.ndarray]]:
        """The `k` tags most similar to each query vector (cosine; zero queries match nothing), restricted to
        `allowed` (tag names, or a boolean mask over `tags_`; e.g. tags still in the index) when given.
        Ties are broken by tag name."""
        n = len(queries)
        if not len(self.tags_) or k <= 0:
            return [[] for _ in range(n)], [np.zeros(0) for _ in range(n)]
        sims = np.asarray(queries, np.float32) @ self.vectors_.T
        if allowed is not None:
            mask = allowed if isinstance(allowed, np.ndarray) else np.fromiter((t in allowed for t in self.tags_), bool, len(self.tags_))
            sims[:, ~mask] = -np.inf
        m = min(k, sims.shape[1])
        top = np.argpartition(-sims, m - 1, axis=1)[:, :m] if m < sims.shape[1] else np.tile(np.arange(m), (n, 1))
        top_s = np.take_along_axis(sims, top, 1)
        names = np.array(self.tags_, dtype=object)[top]
        order = np.lexsort((names, -np.round(top_s, 6)), axis=-1)
        top, top_s = np.take_along_axis(top, order, 1), np.take_along_axis(top_s, order, 1)
        present = np.linalg.norm(queries, axis=1) > 0
        out_tags, out_sims = [], []
        for i in range(n):
            ok = np.isfinite(top_s[i]) & present[i]
            out_tags.append([self.tags_[j] for j in top[i][ok]])
            out_sims.append(top_s[i][ok].astype(np.float64))
        return out_tags, out_sims

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "tag_vectors.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, self.vectors_, allow_pickle=False)
        write_text_atomic(folder / "tags.json", json.dumps({"tags": self.tags_, "batch_size": self.batch_size}, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TagMatcher":
        folder = Path(folder)
        state = json.loads((folder / "tags.json").read_text(encoding="utf-8"))
        self = cls(batch_size=int(state.get("batch_size", 256)))
        self.vectors_ = np.load(folder / "tag_vectors.npy", allow_pickle=False).astype(np.float32)
        self.tags_ = list(state["tags"])
        if len(self.tags_) != len(self.vectors_):
            raise ValueError(f"{folder}: {len(self.tags_)} tags but {len(self.vectors_)} tag vectors")
        self._row = {t: i for i, t in enumerate(self.tags_)}
        return self
