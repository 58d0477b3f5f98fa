"""Index configurations tried for the 1M-post target and not kept (issue: performance, target 2): recall after exact re-ranking.

Same vectors and queries as benchmarks/index_scale.py (the model's real post vectors replicated with jitter:
scale only; held-out real posts as queries). Builds one FAISS `index_factory` spec, searches it for the
largest candidate count at each nprobe / efSearch, and prints recall@10 of the raw result and after
re-scoring the first C candidates with the exact vectors (what `tagatlas.index.reranked_search` does).
Prints only; docs/benchmarks.md quotes the commands.

    .venv/bin/python benchmarks/index_alternatives.py --spec IVF1024,SQ6 --search 128,192,256 --candidates 30,50,100
    .venv/bin/python benchmarks/index_alternatives.py --spec HNSW16_SQ4 --search 64,128,256 --candidates 50,100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402
from index_scale import recall_at, replicate, set_search_param  # noqa: E402
from opensearch import heldout_posts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True, help="FAISS index_factory string")
    ap.add_argument("--search", required=True, help="nprobe (IVF) or efSearch (HNSW) values, comma-separated")
    ap.add_argument("--candidates", default="50,100", help="candidates re-ranked exactly, comma-separated")
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--jitter", type=float, default=0.01)
    ap.add_argument("--model", type=Path, default=REPO / "runs/tweets2015/model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tweets2015/posts.jsonl.gz")
    args = ap.parse_args()
    from tagatlas.data import Post
    from tagatlas.index import PostStore
    from tagatlas.recommender import TagAtlas

    model = TagAtlas.load(args.model)
    base = np.concatenate([v for _, _, v in PostStore.open_copy(args.model / "store.sqlite").iter_all()])
    queries = model.embed([Post.model_validate(r) for r in heldout_posts(args.data, args.model, args.queries)])
    del model
    vectors = replicate(base, args.size, args.jitter)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    started = time.perf_counter()
    index = faiss.index_factory(vectors.shape[1], args.spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(vectors[np.sort(np.random.default_rng(1).choice(len(vectors), min(len(vectors), 100_000), replace=False))])
    for start in range(0, len(vectors), 200_000):
        index.add(vectors[start : start + 200_000])
    print(f"machine: {machine()}\n{args.spec} over {args.size:,} vectors: built in {time.perf_counter() - started:.0f} s, "
          f"{len(faiss.serialize_index(index)) / 2**20:.0f} MiB", flush=True)
    counts = sorted(int(c) for c in args.candidates.split(","))
    for value in (int(v) for v in args.search.split(",")):
        set_search_param(index, value)
        _, found = index.search(queries, max(counts))
        line = [f"search {value}: raw recall@10 {recall_at(found[:, :10], truth):.3f}"]
        for c in counts:
            line.append(f"re-ranked from {c}: {recall_at(rerank(found[:, :c], vectors, queries), truth):.3f}")
        print(", ".join(line), flush=True)


def rerank(candidates: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """The k candidates with the largest exact inner product, per query (missing slots -1)."""
    out = np.full((len(candidates), k), -1, np.int64)
    for i, ids in enumerate(candidates):
        ids = ids[ids >= 0]
        best = ids[np.argsort(-(vectors[ids] @ queries[i]))[:k]]
        out[i, : len(best)] = best
    return out


if __name__ == "__main__":
    main()
