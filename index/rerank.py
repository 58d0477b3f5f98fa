"""Exact re-ranking of a compressed index's candidates with the full vectors kept elsewhere (the store).

A quantised index (IVF-SQ8, IVF-PQ, …) is small enough for RAM but orders near-equal neighbours by
approximate scores; the exact fp32 vectors already live on disk in the post store. Searching
`factor × k` candidates and re-scoring only those with their exact vectors restores the exact order
among what the index found, for the cost of reading `factor × k` vectors per query (page cache when hot).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tagatlas.index.faiss_index import FaissIndex

# ids -> (found ids, their vectors): ids no longer stored (deleted since the search) are simply not returned.
VectorSource = Callable[[Sequence[int]], tuple[np.ndarray, np.ndarray]]


def reranked_search(index: FaissIndex, queries: np.ndarray, k: int, vectors: VectorSource, factor: int = 4
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) per query: `factor × k` candidates from `index`, re-scored by exact inner product.

    Same contract as `FaissIndex.search`: missing slots have id -1 and score -inf."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    _, candidates = index.search(queries, k * factor)
    out_scores = np.full((len(queries), k), -np.inf, np.float32)
    out_ids = np.full((len(queries), k), -1, np.int64)
    wanted = np.unique(candidates[candidates >= 0])
    if wanted.size == 0:
        return out_scores, out_ids
    found, found_vectors = vectors(wanted.tolist())
    found = np.asarray(found, dtype=np.int64)
    if found.size == 0:
        return out_scores, out_ids
    order = np.argsort(found)
    found, found_vectors = found[order], np.asarray(found_vectors, dtype=np.float32)[order]
    slot = np.clip(np.searchsorted(found, candidates), 0, len(found) - 1)
    present = (candidates >= 0) & (found[slot] == candidates)
    # exact scores of each query's own candidates only: (n, factor*k) gathers, one dot product each
    exact = np.einsum("nd,ncd->nc", queries, found_vectors[slot]).astype(np.float32)
    exact[~present] = -np.inf
    # best first; equal scores by id so the result does not depend on the order the index returned them in
    rank = np.lexsort((np.where(present, candidates, np.iinfo(np.int64).max), -exact), axis=-1)[:, :k]
    top_scores, top_ids = np.take_along_axis(exact, rank, 1), np.take_along_axis(candidates, rank, 1)
    filled = np.isfinite(top_scores)
    out_scores[:, : rank.shape[1]] = np.where(filled, top_scores, -np.inf)
    out_ids[:, : rank.shape[1]] = np.where(filled, top_ids, -1)
    return out_scores, out_ids
