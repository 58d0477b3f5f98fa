"""What retrieval reads about each indexed post, kept in memory as arrays addressed by rowid.

The SQLite store stays the source of truth; this is a derived copy so that turning a batch's FAISS
hits into neighbour places, coordinates and tags is array indexing, not one SQL row and one JSON
parse per neighbour (the hot path of enrichment and suggestions). It is rebuilt from the store when
the store changed behind its back (its generation moved) and updated in place by the model's own
writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tagatlas.index import PostStore

ClassOf = Callable[[list, np.ndarray, np.ndarray], np.ndarray]


class NeighbourTable:
    """rowid → post id, lat, lon, place class and hashtags (as ids into a vocabulary that only grows);
    `has_extra` marks rows carrying a tag outside the classifier's vocabulary (the first `n_vocab` ids)."""

    def __init__(self, class_of: ClassOf, vocabulary: Sequence[str]):
        self._class_of = class_of
        self.tags: list[str] = list(vocabulary)  # the classifier's vocabulary first: its tag ids are the head's columns
        self.tag_id: dict[str, int] = {t: i for i, t in enumerate(self.tags)}
        self.n_vocab = len(self.tags)
        self.generation = -1
        self._grow(0)

    # column → (dtype, value of an empty row)
    _COLUMNS = {"valid": (bool, False), "post_ids": (object, None), "lat": (np.float64, np.nan), "lon": (np.float64, np.nan),
                "cls": (np.int64, -1), "row_tags": (object, ()),
                "has_extra": (bool, False)}

    def _grow(self, size: int) -> None:
        """Make room for rowids below `size` (capacity doubles, so appends stay amortised O(1))."""
        old = len(getattr(self, "valid", ()))
        if old and size <= old:
            return
        cap = max(size, 2 * old, 1024)
        for name, (dtype, empty) in self._COLUMNS.items():
            column = np.empty(cap, dtype=dtype)
            column.fill(empty)
            if old:
                column[:old] = getattr(self, name)
            setattr(self, name, column)

    def ids_of(self, tags: Sequence[str]) -> tuple[int, ...]:
        out = []
        for t in tags:
            if t not in self.tag_id:
                self.tag_id[t] = len(self.tags)
                self.tags.append(t)
            out.append(self.tag_id[t])
        return tuple(out)

    def add(self, rowids: Sequence[int], post_ids: Sequence[str], lat, lon, places: Sequence[str | None],
            hashtags: Sequence[Sequence[str]]) -> None:
        if not len(rowids):
            return
        rowids = np.asarray(rowids, dtype=np.int64)
        self._grow(int(rowids.max()) + 1)
        lat = np.array([np.nan if v is None else v for v in lat], dtype=float)
        lon = np.array([np.nan if v is None else v for v in lon], dtype=float)
        self.valid[rowids] = True
        self.post_ids[rowids] = np.array(list(post_ids), dtype=object)
        self.lat[rowids], self.lon[rowids] = lat, lon
        self.cls[rowids] = self._class_of(list(places), lat, lon)
        tag_ids = np.empty(len(rowids), dtype=object)
        tag_ids[:] = [self.ids_of(tags) for tags in hashtags]
        self.row_tags[rowids] = tag_ids
        self.has_extra[rowids] = [any(g >= self.n_vocab for g in ids) for ids in tag_ids]

    def delete(self, rowids: Sequence[int]) -> None:
        rowids = np.asarray([r for r in rowids if 0 <= r < len(self.valid)], dtype=np.int64)
        self.valid[rowids] = False
        self.post_ids[rowids] = None
        self.lat[rowids] = self.lon[rowids] = np.nan
        self.cls[rowids] = -1
        for r in rowids.tolist():  # one by one: assigning () to a slice would broadcast an empty sequence
            self.row_tags[r] = ()
        self.has_extra[rowids] = False

    def load(self, store: PostStore) -> "NeighbourTable":
        """Fill from every post in the store (rowid order, in batches)."""
        self.generation = store.generation()
        for rowids, stored in store.iter_meta():
            self.add(rowids, [s.id for s in stored], [s.lat for s in stored], [s.lon for s in stored],
                     [s.place for s in stored], [s.hashtags for s in stored])
        return self

    def lookup(self, rowids: np.ndarray) -> np.ndarray:
        """Which of these FAISS ids (any shape, -1 for none) are known rows."""
        inside = (rowids >= 0) & (rowids < len(self.valid))
        return inside & self.valid[np.where(inside, rowids, 0)]
