"""Neighbour votes (RIGHT / retrieval augmentation): the indexed posts nearest a post, with their places and tags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NEIGHBOUR_SPARE = 10  # extra candidates searched, so dropping the post itself and unknown rows still leaves k


@dataclass
class Neighbours:
    """Each post's kept neighbours, best first, padded with -inf / NaN / -1 to (n, k)."""

    sims: np.ndarray
    cls: np.ndarray  # place class of each neighbour (-1: none)
    lat: np.ndarray
    lon: np.ndarray
    ids: list[list[str]]
    tags: list[list[tuple[int, ...]]]  # per post, per neighbour: tag ids of the table
    found: tuple[np.ndarray, np.ndarray]  # the raw search (similarities, rowids), ties ordered: other steps reuse it
    kept_extra: np.ndarray  # flat (post * k + slot) positions of kept neighbours carrying a tag outside the classifier's


def retrieve(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], table, vectors: np.ndarray,
             post_ids: Sequence[str], k: int) -> Neighbours:
    """The `k` nearest indexed posts of each query vector, never the post itself. Ties (equal similarity to 5
    decimals, e.g. duplicate posts) are broken by rowid: FAISS's BLAS path can order near-equal scores differently
    with the batch, and predictions must not depend on which other posts share the batch."""
    sims, ids = search(vectors, k + 1 + NEIGHBOUR_SPARE)
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -np.round(sims, 5)), axis=-1)
    sims, ids = np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)
    known = table.lookup(ids)
    rows = np.where(known, ids, 0)
    keep = known & (table.post_ids[rows] != np.array(list(post_ids), dtype=object)[:, None])  # never itself
    keep &= np.cumsum(keep, axis=1) <= k
    first = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept neighbours first, in similarity order
    kept = np.take_along_axis(keep, first, 1)
    rows = np.take_along_axis(rows, first, 1)
    counts = kept.sum(axis=1).tolist()
    return Neighbours(
        sims=np.where(kept, np.take_along_axis(sims, first, 1).astype(np.float64), -np.inf),
        cls=np.where(kept, table.cls[rows], -1), lat=np.where(kept, table.lat[rows], np.nan), lon=np.where(kept, table.lon[rows], np.nan),
        ids=[r[:c] for r, c in zip(table.post_ids[rows].tolist(), counts)],
        tags=[r[:c] for r, c in zip(table.row_tags[rows].tolist(), counts)],
        found=(sims, ids), kept_extra=np.flatnonzero((kept & table.has_extra[rows]).ravel()))
