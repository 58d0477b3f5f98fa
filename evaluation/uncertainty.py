"""How sure a lead over the best baseline is: a bootstrap over held-out users.

A held-out set holds few users (im2gps3k: 13 photographers), and one user's queries succeed or fail together
(same places, same habits), so the draws resample users, each with all of their queries, not single queries.
Each draw recomputes TagAtlas's figure and every baseline's on the same queries and takes the ratio to the best
baseline of that draw, as the figure reported does on the whole set. Percentile intervals; a fixed seed, so an
evaluation file is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DRAWS = 1000
LEVEL = 0.95
ACC_KM = ("25", "161")  # the thresholds the models issue sets targets on


def user_draws(users: Sequence[str], draws: int = DRAWS, seed: int = 0) -> list[np.ndarray]:
    """Query positions of each draw: as many users as there are, drawn with replacement, each with all its queries."""
    groups: dict[str, list[int]] = {}
    for i, user in enumerate(users):
        groups.setdefault(user, []).append(i)
    members = [np.array(g, np.int64) for g in groups.values()]
    if not members:
        return []
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[u] for u in rng.integers(0, len(members), len(members))]) for _ in range(draws)]


def interval(full: float | None, per_draw: np.ndarray, level: float = LEVEL) -> dict:
    """{"ratio", "low", "high"}: the whole set's ratio and the percentile interval of the draws' (None where a ratio
    is undefined: a best baseline at zero in every draw, or in the whole set)."""
    finite = per_draw[np.isfinite(per_draw)]
    if not finite.size or full is None or not np.isfinite(full):
        return {"ratio": None if full is None or not np.isfinite(full) else float(full), "low": None, "high": None}
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return {"ratio": float(full), "low": float(low), "high": float(high)}


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def lead_over_baselines(errors: np.ndarray, baselines: Mapping[str, np.ndarray], draws: list[np.ndarray]) -> dict:
    """TagAtlas's Acc@25, Acc@161 and median-km ratios to the best baseline (the highest accuracy, the lowest
    median), with their intervals over `draws`. `errors` and each baseline's: km errors of the same queries."""
    every = [np.asarray(errors, float)] + [np.asarray(b, float) for b in baselines.values()]
    if not every[0].size or not baselines:
        return {}
    picks = [np.arange(every[0].size)] + draws  # the whole set first
    out = {}
    for km in ACC_KM:
        acc = np.array([[np.mean(e[p] <= float(km)) for e in every] for p in picks])  # (1 + draws, methods)
        ratios = _ratio(acc[:, 0], acc[:, 1:].max(axis=1))
        out[f"acc_{km}"] = interval(ratios[0], ratios[1:])
    medians = np.array([[np.median(e[p]) for e in every] for p in picks])
    ratios = _ratio(medians[:, 0], medians[:, 1:].min(axis=1))
    out["median_km"] = interval(ratios[0], ratios[1:])
    return out


def modality_gain(fused: np.ndarray, singles: Sequence[np.ndarray], draws: list[np.ndarray], km: float = 161.0) -> dict:
    """Fused Acc@161 over the better single-modality row (Galaxy's gain), with its interval over `draws`."""
    every = [np.asarray(fused, float)] + [np.asarray(s, float) for s in singles]
    picks = [np.arange(every[0].size)] + draws
    acc = np.array([[np.mean(e[p] <= km) for e in every] for p in picks])
    ratios = _ratio(acc[:, 0], acc[:, 1:].max(axis=1))
    return interval(ratios[0], ratios[1:])
