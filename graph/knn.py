"""Per-modality kNN graphs: one FAISS search per batch of posts, posts missing the modality get no edges."""

from __future__ import annotations

import faiss
import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from tagatlas.index import use_blas_for

EXACT_UP_TO = 50_000  # above this many posts the neighbours come from an HNSW graph (approximate, far faster)


def neighbour_index(x: np.ndarray) -> faiss.Index:
    """Exact inner-product search while it is cheap; HNSW (M=32, efSearch=128) beyond EXACT_UP_TO vectors."""
    if len(x) <= EXACT_UP_TO:
        index = faiss.IndexFlatIP(x.shape[1])
    else:
        index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    index.add(x)
    return index


def knn_graph(vectors: np.ndarray, present: np.ndarray | None = None, k: int = 10, batch_size: int = 4096,
              min_similarity: float = 0.0, progress: bool = False, name: str = "") -> sp.csr_matrix:
    """Symmetric (n, n) graph joining each post to its `k` most cosine-similar posts of the same modality.

    Edge weight = cosine similarity (edges under `min_similarity` dropped); the graph is made symmetric
    with max(w_ij, w_ji). Rows where `present` is False (the post lacks this modality) have no edges.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    present = np.ones(n, bool) if present is None else np.asarray(present, bool)
    if len(present) != n:
        raise ValueError(f"present has {len(present)} entries for {n} vectors")
    idx = np.flatnonzero(present)
    if len(idx) < 2:
        return sp.csr_matrix((n, n), dtype=np.float32)
    x = vectors[idx].copy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x /= np.maximum(norms, 1e-12)
    index = neighbour_index(x)
    kk = min(k + 1, len(idx))  # +1: a post finds itself
    rows, cols, vals = [], [], []
    starts = range(0, len(idx), batch_size)
    for start in tqdm(starts, desc=f"kNN graph {name}".strip(), unit="batch", disable=not progress):
        use_blas_for(x.shape[1])  # per batch: the threshold is process-wide and a concurrent search may have moved it
        sims, nbrs = index.search(x[start:start + batch_size], kk)
        local = np.arange(start, start + len(sims))[:, None].repeat(kk, axis=1)
        keep = (nbrs >= 0) & (nbrs != local) & (sims > min_similarity)
        rows.append(idx[local[keep]])
        cols.append(idx[nbrs[keep]])
        vals.append(sims[keep])
    g = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32)
    return g.maximum(g.T).tocsr()
