"""Vector index at scale (issue: performance, targets 2 and 3): recall, memory, latency and build time.

Index vectors are the model's own vectors of real posts (its store), replicated to N with a small
Gaussian jitter (sigma --jitter, then re-normalised) so that copies are not identical: this is for
scale only and says nothing about quality. Queries are the vectors of held-out real posts (not in
the store). Recall@10 is against exact search on the same N vectors; latency is single-query search
(one query per call, as a live suggestion makes it), excluding the encoder.

Rows marked "+ exact re-rank" are what the recommender runs for an approximate index (`PostIndex.search`,
`tagatlas.index.reranked_search`): 4 × k candidates from the 8-bit index, re-scored with the exact vectors read
from a real `PostStore` SQLite file holding the N vectors (the model folder's store.sqlite, which every
configuration keeps on disk anyway). Their latency includes that read, with the file in the page cache
("hot") and, for one row per size, with the store file evicted from the page cache before every query
("cold": `posix_fadvise(DONTNEED)`), so each query reads its pages from disk.

    .venv/bin/python benchmarks/index_scale.py [--sizes 10000,100000,1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, provenance, shown, write_block  # noqa: E402
from opensearch import heldout_posts  # noqa: E402

from tagatlas.index.faiss_index import nprobe_for  # noqa: E402

# (name in the table, index_factory string, nprobe or efSearch values: one build, one row per value)
CANDIDATES = [
    ("exact (Flat)", "Flat", [None]),
    ("IVF-Flat fp32", "IVF{lists},Flat", [16, 64]),
    ("IVF-SQ8", "IVF{lists},SQ8", [16, 32, 64, 128]),
    ("IVF-SQfp16", "IVF{lists},SQfp16", [64]),
    ("HNSW32-SQ8", "HNSW32,SQ8", [64, 128]),
]
# The recommender's choice beyond 500k vectors (`factory_for`: ~2·sqrt(n) lists, 8-bit codes) with its exact re-ranking
# (factor 4), at nprobe = lists/16 and `nprobe_for(lists)` (the default: 4·sqrt(2·lists)).
RERANKED = ("IVF-SQ8 + exact re-rank", "IVF{auto_lists},SQ8", "rerank")
RERANK_FACTOR = 4
# Not in the table: coarser codes and HNSW over codes, tried on the same 1M vectors with the same re-ranking by
# benchmarks/index_alternatives.py (SQ6, SQ4, PQ64x4fs, HNSW16_SQ4; results in docs/benchmarks.md): all below SQ8 + re-ranking.
MEMORY_BUDGET = 0.5 * 2**30  # bytes: "index memory <= 0.5 GB"


def replicate(base: np.ndarray, n: int, jitter: float, seed: int = 0) -> np.ndarray:
    """n vectors: copies of `base` rows (cycled), each with Gaussian noise, re-normalised (scale only)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = base[np.arange(start, stop) % len(base)] + rng.normal(0, jitter, (stop - start, base.shape[1])).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def lists_for(n: int) -> int:
    return int(max(64, min(4096, 2 ** round(np.log2(np.sqrt(n) * 1.0)))))


def build(spec: str, vectors: np.ndarray) -> tuple[faiss.Index, float]:
    started = time.perf_counter()
    index = faiss.index_factory(vectors.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        sample = vectors[np.random.default_rng(1).choice(len(vectors), min(len(vectors), 100_000), replace=False)]
        index.train(sample)
    for start in range(0, len(vectors), 200_000):
        index.add(vectors[start : start + 200_000])
    return index, time.perf_counter() - started


def set_search_param(index: faiss.Index, value: int | None) -> None:
    if value is None:
        return
    try:
        faiss.extract_index_ivf(index).nprobe = value
    except RuntimeError:
        faiss.downcast_index(index).hnsw.efSearch = value


def single_query_latency(index: faiss.Index, queries: np.ndarray, k: int = 10) -> tuple[float, float]:
    faiss.omp_set_num_threads(1)  # one query per call, as the API searches (see tagatlas.index.faiss_index)
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
    faiss.omp_set_num_threads(faiss.omp_get_max_threads())
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs/tweets2015/model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tweets2015/posts.jsonl.gz")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--jitter", type=float, default=0.01)
    ap.add_argument("--store-dir", type=Path, default=None, help="where the scale-only store files are written (temporary)")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    faiss.omp_set_num_threads(faiss.omp_get_max_threads())

    from tagatlas.data import Post
    from tagatlas.index import PostStore
    from tagatlas.recommender import TagAtlas

    model = TagAtlas.load(args.model)
    base = np.concatenate([v for _, _, v in PostStore.open_copy(args.model / "store.sqlite").iter_all()])
    queries = model.embed([Post.model_validate(r) for r in heldout_posts(args.data, args.model, args.queries)])
    del model
    results = []
    for n in sizes:
        vectors = replicate(base, n, args.jitter)
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        _, truth = exact.search(queries, 10)
        del exact
        for name, spec, params in CANDIDATES:
            spec = spec.format(lists=lists_for(n))
            if spec.startswith("HNSW") and n * (base.shape[1] + 2 * 32 * 4) > MEMORY_BUDGET:
                print(f"skip {name} at {n}: codes + level-0 links alone exceed the memory budget", flush=True)
                continue  # and its build is the slowest here (tens of minutes at 1M on 2 cores)
            index, build_s = build(spec, vectors)
            memory = len(faiss.serialize_index(index))
            for param in params:
                set_search_param(index, param)
                _, found = index.search(queries, 10)
                p50, p99 = single_query_latency(index, queries[: 200 if spec == "Flat" and n > 100_000 else len(queries)])
                row = {"n": n, "name": name, "spec": spec, "param": param, "recall_at_10": recall_at(found, truth),
                       "memory_bytes": memory, "p50_ms": p50, "p99_ms": p99, "build_s": build_s}
                results.append(row)
                print(json.dumps(row), flush=True)
            del index
            gc.collect()
        with tempfile.TemporaryDirectory(dir=args.store_dir) as tmp:
            results.extend(reranked_rows(n, vectors, queries, truth, Path(tmp)))
        del vectors
        gc.collect()

    if args.no_doc:
        return
    out = REPO / "docs" / "index_scale.json"
    out.write_text(json.dumps(results, indent=1))
    plot(results, REPO / "docs" / "index-growth.png")
    write_block("index_scale", doc_body(results, args, base), heading="## Vector index at scale (issue: performance)")


def reranked_rows(n: int, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path) -> list[dict]:
    """The recommender's own path for an approximate index: FaissIndex (auto lists, 8-bit codes) + exact re-ranking
    with vectors read from a real PostStore file of the same n posts (hot page cache, then cold)."""
    from tagatlas.data import Post
    from tagatlas.index import FaissIndex, PostStore, reranked_search
    from tagatlas.index.faiss_index import ivf_lists_for

    started = time.perf_counter()
    store = PostStore(folder / "store.sqlite", dim=vectors.shape[1])
    rowids = []
    for start in range(0, n, 50_000):  # synthetic scale-only posts: an id and a vector each
        stop = min(n, start + 50_000)
        rowids += store.add([Post(id=f"scale-{i}") for i in range(start, stop)], vectors[start:stop], [None] * (stop - start), role="scale")
    store.close()  # the last connection checkpoints the WAL: reads below come from store.sqlite itself
    store = PostStore(folder / "store.sqlite")
    store_s, store_bytes = time.perf_counter() - started, (folder / "store.sqlite").stat().st_size
    rowids = np.asarray(rowids, np.int64)
    name, spec, _ = RERANKED
    lists = ivf_lists_for(n)
    spec = spec.format(auto_lists=lists)
    started = time.perf_counter()
    index = FaissIndex(vectors.shape[1], factory=spec).index(rowids, vectors)
    build_s = time.perf_counter() - started
    memory = len(faiss.serialize_index(index._index))
    truth_rowids = rowids[truth]
    rows = []
    for nprobe in (max(1, lists // 16), nprobe_for(lists)):
        index.nprobe = nprobe
        _, found = reranked_search(index, queries, 10, store.vectors_found, RERANK_FACTOR)
        recall = recall_at(found, truth_rowids)
        for cache in ("hot", "cold") if nprobe == nprobe_for(lists) else ("hot",):
            times = []
            fd = os.open(folder / "store.sqlite", os.O_RDONLY)
            for q in queries:
                if cache == "cold":
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                t0 = time.perf_counter()
                reranked_search(index, q[None, :], 10, store.vectors_found, RERANK_FACTOR)
                times.append(time.perf_counter() - t0)
            os.close(fd)
            ms = np.array(times) * 1000
            row = {"n": n, "name": f"{name} ×{RERANK_FACTOR} ({cache})", "spec": spec, "param": nprobe, "recall_at_10": recall,
                   "memory_bytes": memory, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                   "build_s": build_s, "store_bytes": store_bytes, "store_build_s": store_s}
            rows.append(row)
            print(json.dumps(row), flush=True)
    store.close()
    return rows


def chosen(results: list[dict], n: int) -> dict | None:
    """The fastest configuration at size n that meets recall >= 0.95 and the memory budget."""
    ok = [r for r in results if r["n"] == n and r["recall_at_10"] >= 0.95 and r["memory_bytes"] <= MEMORY_BUDGET]
    return min(ok, key=lambda r: r["p99_ms"]) if ok else None


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sorted({(r["name"], r["param"] or 0) for r in results}, key=str)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, param in series:
        rows = sorted((r for r in results if r["name"] == name and (r["param"] or 0) == param), key=lambda r: r["n"])
        name = f"{name} ({param})" if param else name
        if not rows:
            continue
        ns = [r["n"] for r in rows]
        axes[0].plot(ns, [r["build_s"] for r in rows], marker="o", label=name)
        axes[1].plot(ns, [r["memory_bytes"] / 2**20 for r in rows], marker="o", label=name)
        axes[2].plot(ns, [r["p99_ms"] for r in rows], marker="o", label=name)
    axes[1].axhline(MEMORY_BUDGET / 2**20, color="grey", linestyle="--", linewidth=1)
    axes[2].axhline(50, color="grey", linestyle="--", linewidth=1)
    for ax, title in zip(axes, ["build time (s)", "index memory (MiB)", "single-query p99 (ms)"]):
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("indexed posts"); ax.set_title(title); ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("TagAtlas vector index growth (real post vectors replicated with jitter: scale only)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def doc_body(results: list[dict], args, base: np.ndarray) -> str:
    lines = [provenance(f".venv/bin/python benchmarks/index_scale.py --sizes {args.sizes} --queries {args.queries}") + "\n",
             f"Index vectors: the {len(base):,} vectors of real posts in `{shown(args.model)}`'s "
             f"store (dimension {base.shape[1]}), replicated with Gaussian jitter σ={args.jitter} and re-normalised — **scale only, "
             f"never quality**. Queries: {args.queries} held-out real posts. Recall@10 against exact search over the same vectors; "
             "latency: one query per call on one thread, encoder excluded; memory: the serialised index. Raw rows: "
             "`docs/index_scale.json`; plot: `docs/index-growth.png`.\n",
             "| posts | index | factory | nprobe / efSearch | recall@10 | memory (MiB) | p50 (ms) | p99 (ms) | build (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['name']} | `{r['spec']}` | {r['param'] or '–'} | {r['recall_at_10']:.3f} | "
                     f"{r['memory_bytes'] / 2**20:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['build_s']:.1f} |")
    top = max(r["n"] for r in results)
    pick = chosen(results, top)
    lines.append("")
    if pick:
        lines.append(f"At {top:,} posts the fastest configuration with recall@10 ≥ 0.95 and memory ≤ 0.5 GiB is **{pick['name']}** "
                     f"(`{pick['spec']}`, {pick['param']}): recall {pick['recall_at_10']:.3f}, {pick['memory_bytes'] / 2**20:.0f} MiB, "
                     f"p50 {pick['p50_ms']:.2f} ms / p99 {pick['p99_ms']:.2f} ms, built in {pick['build_s']:.0f} s.")
    else:
        lines.append(f"At {top:,} posts no configuration measured here meets recall@10 ≥ 0.95 within 0.5 GiB.")
    lines.append("")
    lines.append("![index growth](index-growth.png)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
