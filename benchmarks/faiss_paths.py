"""Micro-measurements behind two hot-path choices (issue: performance): FAISS's BLAS threshold and the tag ranking.

1. Exact FAISS search per query on one thread, with the BLAS threshold forcing the per-query SIMD path or BLAS,
   for 1..64 queries over 15k and 100k vectors of 512 dimensions and 256 queries of 3 dimensions (the
   vectors: the model's real post vectors, replicated with jitter beyond 15k; scale only).
2. On one real enrichment batch (the first `--batch` posts of the data file): `tag_scores`, the full
   lexsort ranking against `ranked_columns`, each timed over repeats. Run it twice, once with
   `MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TOP_PAD_=268435456` in the environment, to see what page faults
   on fresh arrays cost `tag_scores`. Prints only.

    .venv/bin/python benchmarks/faiss_paths.py
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import faiss
import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402
from index_scale import replicate  # noqa: E402


def per_query_ms(index: faiss.Index, queries: np.ndarray, nq: int, threshold: int, reps: int) -> float:
    faiss.cvar.distance_compute_blas_threshold = threshold
    index.search(queries[:nq], 51)
    started = time.perf_counter()
    for r in range(reps):
        start = (r * nq) % (len(queries) - nq)
        index.search(queries[start : start + nq], 51)
    return (time.perf_counter() - started) / reps / nq * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs/tweets2015/model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tweets2015/posts.jsonl.gz")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    from tagatlas.data import read_posts
    from tagatlas.index import PostStore
    from tagatlas.recommender import TagAtlas
    import tagatlas.recommender.model as model_module
    from tagatlas.recommender.tag_fusion import ranked_columns, tag_scores

    print(f"machine: {machine()}")
    base = np.concatenate([v for _, _, v in PostStore.open_copy(args.model / "store.sqlite").iter_all()])
    faiss.omp_set_num_threads(1)
    queries = replicate(base, 1000, 0.01, seed=7)
    never, always = 2**31 - 1, 1
    for n in (15_000, 100_000):
        index = faiss.IndexFlatIP(base.shape[1])
        index.add(replicate(base, n, 0.01))
        for nq in (1, 2, 4, 5, 8, 64):
            reps = max(5, 200 // nq)
            print(f"{n:,} x {base.shape[1]}, {nq} queries: per-query path {per_query_ms(index, queries, nq, never, reps):.2f} ms/query, "
                  f"BLAS {per_query_ms(index, queries, nq, always, reps):.2f} ms/query")
    low = np.random.default_rng(0).normal(size=(15_000, 3)).astype(np.float32)
    low /= np.linalg.norm(low, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(3)
    index.add(low)
    print(f"15,000 x 3, 256 queries: per-query path {per_query_ms(index, low, 256, never, 5) * 256:.1f} ms, "
          f"BLAS {per_query_ms(index, low, 256, always, 5) * 256:.1f} ms")

    captured = {}
    original = model_module.tag_scores

    def spy(ev, p):
        captured["ev"], captured["p"] = ev, p
        return original(ev, p)

    model_module.tag_scores = spy
    model = TagAtlas.load(args.model)
    list(model.predictor.stream(iter([list(itertools.islice(read_posts(args.data), args.batch))]), columnar=True))
    model_module.tag_scores = original
    ev, p = captured["ev"], captured["p"]

    def timed(fn, reps: int = 30) -> float:
        fn()
        started = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - started) / reps * 1000

    scores, _ = tag_scores(ev, p)
    names = np.broadcast_to(np.argsort(np.argsort(np.array(ev.tags, dtype=object))), scores.shape)
    full = np.lexsort((names, -np.round(scores, 6)), axis=-1)[:, :20]
    print(f"real batch: {scores.shape[0]} posts x {scores.shape[1]} tags; tag_scores {timed(lambda: tag_scores(ev, p)):.1f} ms; "
          f"top 20 by full lexsort {timed(lambda: np.lexsort((names, -np.round(scores, 6)), axis=-1)[:, :20]):.1f} ms, "
          f"by ranked_columns {timed(lambda: ranked_columns(scores, names, 20)):.1f} ms "
          f"(same order: {np.array_equal(full, ranked_columns(scores, names, 20))})")


if __name__ == "__main__":
    main()
