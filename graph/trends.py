"""Trend detection: clusters whose recent growth is abnormal for them (deterministic).

For each cluster, posts are counted in fixed time windows ending at `now`. The last window's count is
compared with a Poisson expectation from the cluster's own earlier windows (plus one pseudo-window at a
typical cluster's rate, so a brand-new cluster is judged against a typical one rather than against zero).
A cluster is trending when its Anscombe-transformed excess z ≥ `z_threshold` and it has at least
`min_posts` recent posts. Same input, same output: no sampling, ties broken by cluster id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trend:
    cluster: int
    recent: int  # posts in the last window
    expected: float  # Poisson expectation for the last window from the cluster's history
    z: float


def detect_trends(clusters: np.ndarray, timestamps: np.ndarray, now: float | None = None, window_s: float = 86_400.0,
                  history_windows: int = 14, min_posts: int = 5, z_threshold: float = 3.0) -> list[Trend]:
    """Trending clusters, strongest first. `clusters` < 0 (unclustered) and posts after `now` are ignored."""
    clusters = np.asarray(clusters, np.int64)
    timestamps = np.asarray(timestamps, float)
    if len(clusters) != len(timestamps):
        raise ValueError(f"{len(clusters)} clusters for {len(timestamps)} timestamps")
    if window_s <= 0 or history_windows < 1:
        raise ValueError("window_s must be > 0 and history_windows >= 1")
    keep = clusters >= 0
    if now is None:
        now = float(timestamps[keep].max()) if keep.any() else 0.0
    age = (now - timestamps) / window_s  # 0 ≤ age < 1: the last window
    window = np.floor(age).astype(np.int64)
    keep &= (age >= 0) & (window <= history_windows)
    clusters, window = clusters[keep], window[keep]
    if not len(clusters):
        return []
    ids, index = np.unique(clusters, return_inverse=True)
    recent = np.bincount(index, weights=window == 0, minlength=len(ids)).astype(np.int64)
    past = np.bincount(index, weights=window > 0, minlength=len(ids)).astype(np.int64)
    # Expected recent count: the cluster's own past rate per window, with one pseudo-window at the average
    # cluster's rate (so a cluster with no history is judged against a typical cluster, not against zero).
    typical = past.sum() / (history_windows * len(ids))
    expected = (past + typical) / (history_windows + 1)
    # Anscombe transform makes Poisson counts ~ N(., 1/4): z = 2 (sqrt(x + 3/8) - sqrt(mu + 3/8)).
    z = 2 * (np.sqrt(recent + 3 / 8) - np.sqrt(expected + 3 / 8))
    found = [Trend(int(c), int(r), float(e), float(s)) for c, r, e, s in zip(ids, recent, expected, z) if r >= min_posts and s >= z_threshold]
    return sorted(found, key=lambda t: (-t.z, t.cluster))
