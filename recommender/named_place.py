"""Named places beyond the place classes: where a post names a city (`place_names`' most trusted one) lying outside
the decided area, and the decision is unsure enough, that city is the place reported first.

Place classes are where training posts were: a photo of a town no training post came from could only be answered
with the nearest class, however far. Here the city itself is listed first (its GeoNames id and name, at its own
point) with the probability validation measured for such answers; the classes follow, their probabilities scaled
to what is left. How unsure the decision must be (0: never) is tuned on validation users for each setting (posting
form, hashtags as input), and a city is only reported where its probability stays above the first class's scaled
one, so the place named first is always the most probable shown. Tuning first tries cities beyond NEAR_KM of every
class only (nearer, `place_names` already votes for the class there, and fusion has weighed that vote), and lets
a city anywhere outside the decided area be reported only where validation shows that doing better."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from tagatlas.data import distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.recommender.evidence.place_names import NEAR_KM
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas
from tagatlas.recommender.geo_score import GeoScore, one_query
from tagatlas.recommender.named_coords import in_area

SOURCE = "place_names"  # the plug-in whose named city may be reported
BELOW_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.01)  # decided-area probabilities tried; 1.01: whenever the city lies outside


def area_km(p: FusionParams) -> float:
    """The area a reported city stands for: the decision radius, at least the distance at which a name hits."""
    return max(p.decision_km, NEAR_KM)


def named_places_on(p: FusionParams) -> bool:
    """Whether a named city may be reported in either setting (then `SOURCE` is gathered whatever its place share)."""
    return p.named_place_below > 0 or p.named_place_below_tagged > 0


def settings(p: FusionParams, tagged: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n,) each post's threshold, city probability and distance from every class: the ingest setting's for posts
    that came with hashtags."""
    below, prob, beyond = np.full(n, p.named_place_below), np.full(n, p.named_place_prob), np.full(n, p.named_place_beyond_km)
    if tagged is not None:
        rows = np.asarray(tagged, bool)
        below[rows], prob[rows], beyond[rows] = p.named_place_below_tagged, p.named_place_prob_tagged, p.named_place_beyond_km_tagged
    return below, prob, beyond


def named_places(ev: Evidence, p: FusionParams, label: np.ndarray, confidence: np.ndarray,
                 areas: PlaceAreas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(at, points, prob): whether each post's named city is reported instead of its decided place `label` (whose
    calibrated area probability is `confidence`), the cities' points (n, 2; NaN: none) and their probability."""
    n = len(label)
    below, prob, beyond = settings(p, ev.tagged, n)
    source = ev.sources.get(SOURCE)
    if source is None or source.position is None or not (below > 0).any():
        return np.zeros(n, bool), np.full((n, 2), np.nan), prob
    points = source.position
    odds = prob / np.maximum(1.0 - prob, 1e-9)  # above this, the first class (scaled by 1 - prob) would outrank the city
    at = np.isfinite(points[:, 0]) & (confidence < np.minimum(below, odds))
    at[at] = ~in_area(points[at], np.asarray(label)[at], areas, p.decision_km)
    if (beyond[at] > 0).any():
        at[at] = beyond_classes(points[at], areas, beyond[at])
    return at, points, prob


def beyond_classes(points: np.ndarray, areas: PlaceAreas, km) -> np.ndarray:
    """(n,) whether each point lies farther than `km` (one distance, or one per point) from every place class."""
    nearest_km = areas.tree.query(np.radians(points), k=1)[0][:, 0] * EARTH_RADIUS_KM
    km = np.broadcast_to(np.asarray(km, float), nearest_km.shape)
    return (km <= 0) | (nearest_km > km)


def hit_rate(hits: np.ndarray) -> float:
    """A reported city's probability: how often the truth lay in its area, smoothed (Laplace) for small counts."""
    return float((np.sum(hits) + 1.0) / (len(hits) + 2.0))


def tune_named_place(decide: Callable[[FusionParams], tuple[np.ndarray, np.ndarray, np.ndarray]], lat: np.ndarray, lon: np.ndarray,
                     params: FusionParams, tagged: bool) -> tuple[FusionParams, dict]:
    """The threshold (and the city probability it implies) of one setting on its validation queries. `decide(cand)`
    returns (coords, at, points) of the queries under `cand`. A threshold is kept only where it lifts Acc@161 by more
    than one query and leaves Acc@25 and the median no worse; ties go to the smaller one, and to cities beyond
    NEAR_KM of every class over cities anywhere (see the module's docstring)."""
    suffix = "_tagged" if tagged else ""
    below_key, prob_key, beyond_key = (f"named_place_below{suffix}", f"named_place_prob{suffix}", f"named_place_beyond_km{suffix}")
    params = replace(params, **{beyond_key: NEAR_KM})

    def measured(cand: FusionParams) -> tuple[float, float, float]:
        coords = decide(cand)[0]
        score = GeoScore.of(distance_km(coords[:, 0], coords[:, 1], lat, lon))
        return score.acc_161, score.acc_25, score.median_km

    base = measured(replace(params, **{below_key: 0.0}))
    best, best_score, curve = replace(params, **{below_key: 0.0}), base, {}
    for below, beyond in itertools.product(BELOW_GRID[1:], (NEAR_KM, 0.0)):
        trial = replace(params, **{below_key: below, beyond_key: beyond})
        _, at, points = decide(replace(trial, **{prob_key: 1.0}))  # which cities, before the cap
        prob = hit_rate(distance_km(points[at, 0], points[at, 1], lat[at], lon[at]) <= area_km(params)) if at.any() else 0.0
        cand = replace(trial, **{prob_key: prob})
        score = measured(cand)
        curve[str(below) if beyond else f"{below}, anywhere"] = {
            "reported": int(at.sum()), "prob": round(prob, 4), "acc_at_161": round(score[0], 4), "acc_at_25": round(score[1], 4),
            "median_km": round(score[2], 1)}
        if score[0] > best_score[0] and score[0] - base[0] > one_query(len(lat)) and score[1] >= base[1] and score[2] <= base[2]:
            best, best_score = cand, score
    report = {"chosen_below": getattr(best, below_key), "chosen_beyond_km": getattr(best, beyond_key), "prob": getattr(best, prob_key),
              "without": {"acc_at_161": round(base[0], 4), "acc_at_25": round(base[1], 4), "median_km": round(base[2], 1)}, "curve": curve}
    return best, report
