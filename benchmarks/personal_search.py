"""What clusters serve in personalised search, on held-out photographers (seed 002's Tumblr search).

A model is trained on the dataset with a share of its users held out (`tagatlas train --test-fraction`,
the same salted split `evaluate` uses; trained here when `--model` does not exist yet). For each held-out
user with at least `--min-posts` posts, sorted by time, the earlier half is their history and is indexed
under their id (clusters assigned incrementally, as any new post is); the later half is indexed too, but
without owner, so the profile `search` builds for the user reads the history only. Each later post then
queries the index by example (its caption and photo, hashtags masked: `TagAtlas.embed`), the query post
itself left out of the hits; the user's other later posts are the relevant results.

Rankings compared, all through `tagatlas.recommender.search.search` with 200 candidates:
- plain similarity (no user);
- the cluster profile alone (share of the user's history in each hit's cluster, the shipped cluster weight);
- the shipped profile (tags, places and clusters) and the same without its cluster term.
Metrics per query: reciprocal rank of the first relevant post, recall@10, nDCG@10; averaged per user, then
over users. Each effect is a paired difference per user with a 95 % bootstrap interval over users.

    .venv/bin/python benchmarks/personal_search.py --data ../shared/data/im2gps3k/posts.jsonl \
        --model runs/personal-im2gps3k [--test-fraction 0.3] [--min-posts 4]
"""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, shown, write_block  # noqa: E402

from tagatlas.data import history_and_queries  # noqa: E402
from tagatlas.evaluation.split import training_split  # noqa: E402
from tagatlas.recommender import TagAtlas  # noqa: E402
from tagatlas.recommender.search import search  # noqa: E402

SHIPPED = {name: inspect.signature(search).parameters[name].default for name in ("tag_weight", "place_weight", "cluster_weight")}
RANKINGS = {
    "plain similarity": None,
    "cluster profile only": {"tag_weight": 0.0, "place_weight": 0.0, "cluster_weight": SHIPPED["cluster_weight"]},
    "profile without clusters": {**SHIPPED, "cluster_weight": 0.0},
    "shipped profile (tags, places, clusters)": SHIPPED,
}
EFFECTS = [("cluster profile only", "plain similarity"), ("shipped profile (tags, places, clusters)", "profile without clusters"),
           ("shipped profile (tags, places, clusters)", "plain similarity")]
METRICS = ("MRR", "recall@10", "nDCG@10")


def query_metrics(hit_ids: list[str], relevant: set[str], k: int = 10) -> dict[str, float]:
    """Reciprocal rank of the first relevant hit (0 when none is found), recall@k and nDCG@k."""
    ranks = [i for i, h in enumerate(hit_ids) if h in relevant]
    gains = sum(1 / np.log2(r + 2) for r in ranks if r < k)
    ideal = sum(1 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return {"MRR": 1 / (ranks[0] + 1) if ranks else 0.0, f"recall@{k}": sum(r < k for r in ranks) / len(relevant),
            f"nDCG@{k}": gains / ideal if ideal else 0.0}


def bootstrap(differences: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of per-user differences, users resampled with replacement."""
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (reps, len(differences)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ensure_model(data: Path, model: Path, test_fraction: float) -> None:
    if (model / "model.json").exists():
        return
    subprocess.run([str(Path(sys.executable).parent / "tagatlas"), "train", "--data", str(data), "--out", str(model),
                    "--test-fraction", str(test_fraction)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "im2gps3k" / "posts.jsonl")
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "personal-im2gps3k",
                    help="model folder trained on --data with --test-fraction (trained here when absent)")
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--min-posts", type=int, default=4, help="held-out users with fewer posts are left out")
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    if not args.data.exists():
        args.data = args.data.with_suffix(".jsonl.gz")
    ensure_model(args.data, args.model, args.test_fraction)
    split = training_split([args.data], test_fraction=args.test_fraction)
    model = TagAtlas.load(args.model)
    if model.posts_.store.rowids([p.id for p in split.test]):
        raise SystemExit(f"{args.model} holds held-out posts: train it with --test-fraction {args.test_fraction}")
    counts = Counter(p.user_key for p in split.test)
    history, queries = history_and_queries([p for p in split.test if counts[p.user_key] >= args.min_posts])
    if not queries:
        raise SystemExit(f"no held-out user of {args.data} has {args.min_posts} posts or more: lower --min-posts")
    later = defaultdict(list)
    for p in queries:
        later[p.user_key].append(p)
    model.add(history, progress=True)
    model.add([p.model_copy(update={"user_id": None}) for ps in later.values() for p in ps], progress=True)

    per_user: dict[str, dict[str, dict[str, list[float]]]] = {name: defaultdict(lambda: defaultdict(list)) for name in RANKINGS}
    queries = [(u, q) for u, ps in later.items() for q in ps]
    vectors = model.embed([q.model_copy(update={"hashtags": []}) for _, q in queries])
    for (u, q), vector in tqdm(list(zip(queries, vectors)), desc="queries", unit="query"):
        relevant = {p.id for p in later[u] if p.id != q.id}
        if not relevant:
            continue
        for name, weights in RANKINGS.items():
            result = search(model, q.text or "", user_id=None if weights is None else u.removeprefix("u:"),
                            k=args.candidates, candidates=args.candidates, query_vector=vector, **(weights or {}))
            hits = [h.id for h in result.hits if h.id != q.id]
            for metric, value in query_metrics(hits, relevant).items():
                per_user[name][u][metric].append(value)
    scored = sorted(per_user["plain similarity"])
    means = {name: {m: np.array([np.mean(per_user[name][u][m]) for u in scored]) for m in METRICS} for name in RANKINGS}
    n_queries = sum(len(per_user["plain similarity"][u]["MRR"]) for u in scored)
    lines = ["| ranking | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for name in RANKINGS:
        lines.append(f"| {name} | " + " | ".join(f"{means[name][m].mean():.3f}" for m in METRICS) + " |")
    effects = ["| effect (paired per user) | " + " | ".join(f"{m} difference [95 % CI]" for m in METRICS) + " |",
               "|---|" + "---|" * len(METRICS)]
    for a, b in EFFECTS:
        cells = []
        for m in METRICS:
            diff = means[a][m] - means[b][m]
            low, high = bootstrap(diff)
            cells.append(f"{diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]")
        effects.append(f"| {a} − {b} | " + " | ".join(cells) + " |")
    command = (f".venv/bin/python benchmarks/personal_search.py --data {shown(args.data)} --model {shown(args.model)} "
               f"--test-fraction {args.test_fraction} --min-posts {args.min_posts}")
    body = (provenance(command) + "\n\n"
            f"Held-out users (salted split, {args.test_fraction:.0%} of users; never seen in training): {len(scored)} with at least "
            f"{args.min_posts} posts and a relevant later post, {n_queries} queries, {len(history)} history posts indexed; "
            f"index: {model.posts_.store.count():,} posts. Means over users of per-query means.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(effects))
    print(write_block(f"personal_search-{args.data.parent.name}", body, args.doc,
                      heading=f"### Personalised search on {args.data.parent.name}'s held-out users"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
