"""Neighbour votes (RIGHT / retrieval augmentation): the indexed posts nearest a post, with their places and tags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NEIGHBOUR_SPARE = 10  # extra candidates searched, so dropping the post itself and unknown rows still leaves k
TIE_DECIMALS = 5  # similarities equal to this many decimals are ties, broken by rowid
MAX_TIE_WIDTH = 2048  # the widest search a tie group may ask for (FAISS's GPU search takes k ≤ 2048)
TIE_WIDENING = 8  # each wider search is this many times wider: every search scans the whole index, so few and wide


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
    sims, ids, rows, keep = search_ties_whole(search, table, vectors, post_ids, k)
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


def _tie_order(sims: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by similarity (to TIE_DECIMALS), ties by rowid, missing slots (-1) last."""
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -np.round(sims, TIE_DECIMALS)), axis=-1)
    return np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)


def _kept(table, ids: np.ndarray, post_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, keep): the candidates' rowids (0 where unknown) and which of them are neighbours: known to the table,
    not the post itself, the first k of each row."""
    known = table.lookup(ids)
    rows = np.where(known, ids, 0)
    keep = known & (table.post_ids[rows] != np.array(list(post_ids), dtype=object)[:, None])  # never itself
    return rows, keep & (np.cumsum(keep, axis=1) <= k)


def _cut_ties(sims: np.ndarray, ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Rows whose window is full and ends inside the tie group of their last kept neighbour: posts that FAISS left
    out of the window may tie with that neighbour and have a lower rowid."""
    last = np.where(keep.any(axis=1), keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1), keep.shape[1] - 1)
    rounded = np.round(sims, TIE_DECIMALS)
    return (ids[:, -1] >= 0) & (rounded[:, -1] == rounded[np.arange(len(ids)), last])


def search_ties_whole(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], table, vectors: np.ndarray,
                      post_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sims, ids, rows, keep) of the k + 1 + NEIGHBOUR_SPARE nearest indexed posts of each vector, in `_tie_order`,
    with `_kept`'s rows and keep. Where a tie group (e.g. hundreds of posts with the same empty text) runs past the
    window and holds a kept neighbour, that row is searched again, TIE_WIDENING times wider each time (up to
    MAX_TIE_WIDTH), and keeps the tied posts of lowest rowid, whichever subset of the group FAISS returned first:
    float noise in a query vector cannot change which tied posts it gets."""
    width = k + 1 + NEIGHBOUR_SPARE
    post_ids = np.array(list(post_ids), dtype=object)
    sims, ids = _tie_order(*search(vectors, width))
    rows, keep = _kept(table, ids, post_ids, k)
    cut, wider = np.flatnonzero(_cut_ties(sims, ids, keep)), width
    while len(cut) and wider < MAX_TIE_WIDTH:
        wider = min(TIE_WIDENING * wider, MAX_TIE_WIDTH)
        more_sims, more_ids = _tie_order(*search(vectors[cut], wider))
        more_rows, more_keep = _kept(table, more_ids, post_ids[cut], k)  # a window's prefix keeps what the prefix alone would
        sims[cut], ids[cut], rows[cut], keep[cut] = (a[:, :width] for a in (more_sims, more_ids, more_rows, more_keep))
        cut = cut[_cut_ties(more_sims, more_ids, more_keep)]
    return sims, ids, rows, keep
