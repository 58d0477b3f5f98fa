"""A FAISS vector index addressed by integer ids, configured by an `index_factory` string."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import faiss
import numpy as np

from tagatlas.core.native import blas_threads_sleep
from tagatlas.core.atomic import atomic_path

log = logging.getLogger(__name__)

# A search of fewer than PARALLEL_FROM_QUERIES queries runs on one OpenMP thread: waking FAISS's thread team
# costs more than it saves for a server's single queries and micro-batches (benchmarks/load.py). Larger batches
# (enrichment) use every core, but only when numpy's BLAS workers sleep after a call (`tagatlas.core.native`):
# spinning workers would compete with the second FAISS thread (benchmarks/throughput.py). omp_set_num_threads
# sets the calling thread's value only, so concurrent searches from a server's threads do not interfere.
PARALLEL_FROM_QUERIES = 64
_MAX_THREADS = faiss.omp_get_max_threads()

# FAISS runs an exact search through BLAS (one matrix product) when the query block holds at least
# `distance_compute_blas_threshold` floats (queries x dimension). Its default kept enrichment batches on the slower
# per-query SIMD path, while a small constant sent single queries through BLAS, slower for them; BLAS wins from a
# handful of queries at any dimension (benchmarks/faiss_paths.py), so the threshold is set for the index at hand
# before each search.
BLAS_FROM_QUERIES = 5


def use_blas_for(dim: int) -> None:
    """Exact searches of BLAS_FROM_QUERIES or more vectors of dimension `dim` go through BLAS, fewer one by one
    (FAISS's threshold is process-wide: a concurrent search of another dimension may get the other path, slower,
    never wrong)."""
    faiss.cvar.distance_compute_blas_threshold = BLAS_FROM_QUERIES * dim


use_blas_for(512)


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees a GPU (the `gpu` extra on a GPU machine)."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def factory_for(n_vectors: int) -> str:
    """Index parameters derived from the data size: exact search while it is cheap, IVF beyond.

    ~2·√n inverted lists (a power of two), fp32 lists up to 500k vectors and 8-bit codes beyond (a quarter
    of the memory; the recommender re-ranks their candidates with the exact vectors of its store, see
    `tagatlas.index.rerank`). Chosen from the recall / memory / latency table of benchmarks/index_scale.py."""
    if n_vectors < 50_000:
        return "Flat"
    lists = ivf_lists_for(n_vectors)
    return f"IVF{lists},Flat" if n_vectors < 500_000 else f"IVF{lists},SQ8"


def ivf_lists_for(n_vectors: int) -> int:
    """Inverted lists for n vectors: the power of two nearest 2·√n."""
    return 2 ** round(math.log2(2 * math.sqrt(max(n_vectors, 1))))


def nprobe_for(nlist: int) -> int:
    """Inverted lists searched per query when not set: 4·√(2·nlist) (at least 16), i.e. a quarter of 512 lists and an
    eighth of 2048 — the shares that reached recall@10 >= 0.95 after exact re-ranking at 100k (0.959) and 1M (0.961)
    posts in benchmarks/index_scale.py (an eighth at 100k: 0.932)."""
    return min(nlist, max(16, round(4 * math.sqrt(2 * nlist))))


# k-means of the coarse quantiser runs on at most this many vectors (per list: FAISS warns below 39)
TRAIN_PER_LIST, TRAIN_MIN = 64, 100_000


class FaissIndex:
    """Inner-product search over L2-normalised vectors (cosine), with add/delete by id and atomic save.

    `factory` is a FAISS `index_factory` string ("Flat", "HNSW32", "IVF1024,PQ32", …) or "auto".
    `nprobe` (IVF only): lists searched per query; None derives it from the number of lists (`nprobe_for`).
    On a GPU machine the index is searched on the GPU (`use_gpu="auto"`); it is always saved as CPU.
    """

    def __init__(self, dim: int, factory: str = "auto", use_gpu: str | bool = "auto", nprobe: int | None = None):
        self.dim = dim
        self.factory = factory
        self.use_gpu = use_gpu
        self.nprobe = nprobe
        self._index: faiss.Index | None = None
        self._gpu_index = None

    # -- construction -------------------------------------------------------------------------
    def _build(self, training: np.ndarray) -> faiss.Index:
        spec = factory_for(len(training)) if self.factory == "auto" else self.factory
        try:
            inner = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(f"index factory {spec!r} is not a valid FAISS index_factory string: {exc}") from exc
        if not inner.is_trained:
            if len(training) < 1:
                raise ValueError(f"index {spec!r} needs training vectors")
            ivf = _ivf(inner)
            cap = max(TRAIN_MIN, TRAIN_PER_LIST * ivf.nlist) if ivf is not None else len(training)
            if len(training) > cap:  # a seeded sample: k-means on all of 1M vectors costs minutes for no recall
                training = training[np.sort(np.random.default_rng(0).choice(len(training), cap, replace=False))]
            inner.train(training)
        # IVF indexes carry ids themselves; a flat one needs the id map (IDMap2 also keeps a reverse hash map
        # in RAM, which an IVF index would not use)
        index = inner if _ivf(inner) is not None or spec == "IDMap2" else faiss.IndexIDMap2(inner)
        return index

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> "FaissIndex":
        """Build a fresh index from these vectors (trained on them when the factory needs it)."""
        vectors = self._check(vectors)
        self._index = self._build(vectors)
        self._gpu_index = None
        self.add(ids, vectors)
        return self

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        return vectors

    # -- updates ------------------------------------------------------------------------------
    def add(self, ids, vectors: np.ndarray) -> None:
        """Add vectors online; they are searchable at once."""
        vectors = self._check(vectors)
        if self._index is None:
            self.index(ids, vectors)
            return
        if len(vectors):
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            self._gpu_index = None

    def delete(self, ids) -> int:
        if self._index is None:
            return 0
        removed = int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))
        self._gpu_index = None
        return removed

    def count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def exact(self) -> bool:
        """True when search scores are exact inner products over every vector (a flat fp32 index)."""
        if self._index is None:
            return True
        inner = faiss.downcast_index(self._index.index) if isinstance(self._index, faiss.IndexIDMap2) else self._index
        return isinstance(inner, faiss.IndexFlat)

    # -- search -------------------------------------------------------------------------------
    def _searcher(self):
        wants_gpu = self.use_gpu is True or (self.use_gpu == "auto" and gpu_available())
        if not wants_gpu:
            return self._index
        if self._gpu_index is None:
            self._resources = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._resources, 0, self._index)
        return self._gpu_index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; missing slots have id -1 and score -inf."""
        queries = self._check(queries)
        if self._index is None or self.count() == 0 or len(queries) == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        ivf = _ivf(self._index)
        if ivf is not None:
            ivf.nprobe = self.nprobe if self.nprobe is not None else nprobe_for(ivf.nlist)
        parallel = len(queries) >= PARALLEL_FROM_QUERIES and blas_threads_sleep()
        faiss.omp_set_num_threads(_MAX_THREADS if parallel else 1)
        use_blas_for(self.dim)
        scores, ids = self._searcher().search(queries, k)
        scores[ids < 0] = -np.inf
        return scores, ids

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: readers see the previous file or the new one, never a torn one."""
        if self._index is None:
            raise ValueError("nothing to save: the index is empty and was never built")
        with atomic_path(path) as tmp:
            faiss.write_index(self._index, str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike, use_gpu: str | bool = "auto", nprobe: int | None = None) -> "FaissIndex":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no index file")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ValueError(f"{path}: not a readable FAISS index ({exc})") from exc
        self = cls(index.d, factory="loaded", use_gpu=use_gpu, nprobe=nprobe)
        self._index = index
        return self


def _ivf(index: faiss.Index):
    """The IVF part of an index (through an id map or a pre-transform), or None."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
