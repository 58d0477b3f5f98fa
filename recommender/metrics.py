"""Geolocation and hashtag metrics, shared by validation tuning and `tagatlas evaluate`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tagatlas.data import distance_km

KM_THRESHOLDS = (1, 25, 161, 750, 2500)


def geo_metrics(pred_lat, pred_lon, true_lat, true_lon, pred_place=None, true_place=None) -> dict:
    """acc_place, acc_at_km (share within 1/25/161/750/2500 km), median_km, mean_km."""
    err = distance_km(pred_lat, pred_lon, true_lat, true_lon) if len(true_lat) else np.zeros(0)
    n = max(len(err), 1)
    acc_place = (float(np.mean([a == b for a, b in zip(pred_place, true_place)])) if pred_place is not None and len(err) else 0.0)
    return {
        "acc_place": acc_place,
        "acc_at_km": {str(k): float(np.sum(err <= k) / n) for k in KM_THRESHOLDS},
        "median_km": float(np.median(err)) if len(err) else 0.0,
        "mean_km": float(np.mean(err)) if len(err) else 0.0,
    }


def tag_metrics(recommended: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]], truth: Sequence[Sequence[str]],
                new_tags: Sequence[set[str]] | None = None) -> dict:
    """Hashtag metrics over queries that have at least one true tag.

    `recommended`: the tags a method outputs (at most 5 are read) → precision, recall, F1, HR at 5.
    Precision divides by the number recommended (≤ 5), so a method that recommends fewer, surer tags is
    not forced to pad. `ranked`: its full ranking → MRR and, for queries with a new tag, HR@10 on those tags.
    """
    rows = [(rec, rank, set(tr), (new_tags[i] if new_tags else set())) for i, (rec, rank, tr) in enumerate(zip(recommended, ranked, truth)) if tr]
    if not rows:
        return {"n": 0, "f1_at_5": None, "precision_at_5": None, "recall_at_5": None, "hr_at_5": None, "mrr": None,
                "new_tag_hr_at_10": None}
    p, r, f, hr, rr = [], [], [], [], []
    for rec, rank, tr, _ in rows:
        prec, rec_, f1, hits = scores_at_5(rec, tr)
        p.append(prec); r.append(rec_); f.append(f1); hr.append(float(hits > 0))
        first = next((i for i, t in enumerate(rank) if t in tr), None)
        rr.append(1.0 / (first + 1) if first is not None else 0.0)
    new_hits = new_tag_hits([rank for _, rank, _, _ in rows], [new for _, _, _, new in rows])
    return {"n": len(rows), "f1_at_5": float(np.mean(f)), "precision_at_5": float(np.mean(p)), "recall_at_5": float(np.mean(r)),
            "hr_at_5": float(np.mean(hr)), "mrr": float(np.mean(rr)), "new_tag_hr_at_10": float(np.mean(new_hits)) if len(new_hits) else None}


def new_tag_hits(ranked: Sequence[Sequence[str]], new_tags: Sequence[set[str]]) -> np.ndarray:
    """Per query that has a new tag (born after training), in order: 1 when one of them is in its first 10 ranked
    tags, else 0 (`tag_metrics`' new_tag_hr_at_10 is their mean)."""
    return np.array([float(bool(set(list(rank)[:10]) & new)) for rank, new in zip(ranked, new_tags) if new], dtype=float)


def scores_at_5(recommended: Sequence[str], truth: set[str]) -> tuple[float, float, float, int]:
    """(precision, recall, F1, hits) of one query's first 5 recommended tags against its true tags (not empty)."""
    rec = list(recommended)[:5]
    hits = len(set(rec) & truth)
    precision = hits / len(rec) if rec else 0.0
    recall = hits / len(truth)
    return precision, recall, (2 * precision * recall / (precision + recall) if hits else 0.0), hits


def f1_per_query(recommended: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> np.ndarray:
    """F1@5 of each query that has a true tag, in order: `tag_metrics`' f1_at_5 is their mean."""
    return np.array([scores_at_5(rec, set(tr))[2] for rec, tr in zip(recommended, truth) if tr], dtype=float)


def expected_calibration_error(confidence, correct, n_bins: int = 15) -> float | None:
    """ECE: the |accuracy − confidence| gap of equal-width confidence bins, weighted by their share of posts."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return None
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gap = 0.0
    for b in np.unique(bins):
        sel = bins == b
        gap += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return float(gap)
