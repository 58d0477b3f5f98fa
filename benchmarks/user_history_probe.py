"""What a user's own located history says about where their next post is, on the validation users training tunes
on (never the held-out users): how often two posts of one user lie within 161 km by their time gap, and the
`user_last_place` baseline's Acc@25 / Acc@161 there. No model is trained; the figures back the notes on
`user_places` (recommender/evidence/user_places.py).

    .venv/bin/python benchmarks/user_history_probe.py ../shared/data/im2gps3k/posts.jsonl [more files]
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from tagatlas.data import distance_km, history_and_queries
from tagatlas.evaluation import training_split
from tagatlas.evaluation.baselines import user_last_place
from tagatlas.recommender.evidence.user_places import GAP_EDGES_DAYS
from tagatlas.recommender.training import validation_split


def validation_users(path: str):
    """The validation split `tagatlas train` uses with its defaults (seed 0, 10 % test users, the same val fraction)."""
    return validation_split(training_split([path]).train)["val"]


def probe(path: str) -> None:
    history, queries = history_and_queries(validation_users(path))
    queries = [q for q in queries if q.has_location]
    edges = (0.0, *GAP_EDGES_DAYS, np.inf)
    hits, seen = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    located_history = defaultdict(list)  # user → their located history posts (read once, not once per query)
    for h in history:
        if h.has_location:
            located_history[h.user_key].append(h)
    for q in queries:
        for h in located_history[q.user_key] if q.user_id else []:
            gap = abs(q.timestamp - h.timestamp) / 86400.0
            b = np.searchsorted(edges, gap, side="right") - 1
            seen[b] += 1
            hits[b] += distance_km([h.lat], [h.lon], [q.lat], [q.lon])[0] <= 161
    points = user_last_place(history, queries)
    err = np.array([distance_km([p[0]], [p[1]], [q.lat], [q.lon])[0] if p else np.inf for p, q in zip(points, queries)])
    print(f"{path}: {len(queries)} located validation queries, {int(np.isfinite(err).sum())} with a located history post")
    for lo, hi, h, n in zip(edges[:-1], edges[1:], hits, seen):
        print(f"  history post {lo:g}-{hi:g} days apart: within 161 km {h / n if n else float('nan'):.2f} of {int(n)} pairs")
    n = max(len(queries), 1)
    print(f"  user_last_place on validation (no history: a miss): Acc@25 {np.sum(err <= 25) / n:.3f}, Acc@161 {np.sum(err <= 161) / n:.3f}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        probe(arg)
