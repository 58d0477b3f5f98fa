"""How sure a lead over the best baseline is: a bootstrap over held-out users.

A held-out set holds few users (im2gps3k: 13 photographers), and one user's queries succeed or fail together
(same places, same habits), so the draws resample users, each with all of their queries, not single queries.
Each draw recomputes TagAtlas's figure and every baseline's on the same queries and takes the ratio to the best
baseline of that draw, as the figure reported does on the whole set. Percentile intervals; a fixed seed, so an
evaluation file is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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


def interval(full: float | None, per_draw: np.ndarray, level: float = LEVEL, key: str = "ratio") -> dict:
    """{key, "low", "high"}: the whole set's figure and the percentile interval of the draws' (None where a ratio is
    undefined: a best baseline at zero in every draw, or in the whole set)."""
    if full is None or not np.isfinite(full):
        return {key: None, "low": None, "high": None}
    finite = per_draw[np.isfinite(per_draw)]
    if not finite.size:
        return {key: float(full), "low": None, "high": None}
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return {key: float(full), "low": float(low), "high": float(high)}


def _per_pick(columns: Sequence[np.ndarray], draws: list[np.ndarray], statistic: Callable[[np.ndarray], float]) -> np.ndarray:
    """(1 + draws, columns): the statistic of each column on the whole set (first row) and on each draw."""
    picks = [np.arange(len(columns[0]))] + draws
    return np.array([[statistic(c[p]) for c in columns] for p in picks])


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def mean_lead(mine: np.ndarray, others: Sequence[np.ndarray], draws: list[np.ndarray]) -> dict:
    """The mean of `mine` (per-query scores: hits, F1) over the highest mean among `others`, with its interval."""
    means = _per_pick([np.asarray(mine, float)] + [np.asarray(o, float) for o in others], draws, np.mean)
    ratios = _ratio(means[:, 0], means[:, 1:].max(axis=1))
    return interval(ratios[0], ratios[1:])


def median_lead(mine: np.ndarray, others: Sequence[np.ndarray], draws: list[np.ndarray]) -> dict:
    """The median of `mine` (km errors) over the lowest median among `others`, with its interval."""
    medians = _per_pick([np.asarray(mine, float)] + [np.asarray(o, float) for o in others], draws, np.median)
    ratios = _ratio(medians[:, 0], medians[:, 1:].min(axis=1))
    return interval(ratios[0], ratios[1:])


def lead_over_baselines(errors: np.ndarray, baselines: Mapping[str, np.ndarray], draws: list[np.ndarray]) -> dict:
    """TagAtlas's Acc@25, Acc@161 and median-km ratios to the best baseline (the highest accuracy, the lowest
    median), with their intervals over `draws`. `errors` and each baseline's: km errors of the same queries."""
    errors = np.asarray(errors, float)
    if not errors.size or not baselines:
        return {}
    others = [np.asarray(b, float) for b in baselines.values()]
    out = {f"acc_{km}": mean_lead(errors <= float(km), [o <= float(km) for o in others], draws) for km in ACC_KM}
    out["median_km"] = median_lead(errors, others, draws)
    return out


def figures(errors: np.ndarray, draws: list[np.ndarray]) -> dict:
    """TagAtlas's own Acc@161 and median km (targets set as absolute figures), with their intervals over `draws`."""
    errors = np.asarray(errors, float)
    if not errors.size:
        return {}
    acc = _per_pick([errors <= 161.0], draws, np.mean)[:, 0]
    median = _per_pick([errors], draws, np.median)[:, 0]
    return {"acc_161": interval(acc[0], acc[1:], key="value"), "median_km": interval(median[0], median[1:], key="value")}


def value_figure(columns: Sequence[np.ndarray], draws: list[np.ndarray], statistic: Callable[..., float | None]) -> dict:
    """One of TagAtlas's own figures that a target sets absolutely (place ECE, new-tag HR@10): `statistic` of the
    per-query `columns` (each indexed alike) on the whole set, with its interval over `draws`; {} without queries."""
    cols = [np.asarray(c, float) for c in columns]
    if not cols or not len(cols[0]):
        return {}
    per_draw = np.array([statistic(*(c[d] for c in cols)) for d in draws], dtype=float)
    return interval(statistic(*cols), per_draw, key="value")


def modality_gain(fused: np.ndarray, singles: Sequence[np.ndarray], draws: list[np.ndarray], km: float = 161.0) -> dict:
    """Fused Acc@161 over the better single-modality row (Galaxy's gain), with its interval over `draws`."""
    return mean_lead(np.asarray(fused, float) <= km, [np.asarray(s, float) <= km for s in singles], draws)
