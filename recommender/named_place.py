"""Named places beyond the place classes: where a post names a city (`place_names`' most trusted one) lying outside
the decided area, and the decision is unsure enough, that city is the place reported first. The user's most
trusted past post (`user_places`: one taken hours before, say) names a point the same way, and may be reported
likewise (as the city nearest it), where validation shows that helping; which sources may, and in which order, is
chosen per setting (`FusionParams.named_place_sources`).

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
from collections.abc import Callable, Collection
from dataclasses import replace

import numpy as np

from tagatlas.data import distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.recommender.evidence.place_names import NEAR_KM
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas
from tagatlas.recommender.geo_score import GeoScore, one_query
from tagatlas.recommender.named_coords import LOCATION_SOURCE, in_area, named_points

SOURCE = "place_names"  # the plug-in whose named city is reported by default
# The lists of plug-ins whose points validation tries, in order: the first with a point for a post names it.
SOURCE_CHOICES = (("place_names",), ("user_places",), ("place_names", "user_places"), ("user_places", "place_names"))
BELOW_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.01)  # decided-area probabilities tried; 1.01: whenever the city lies outside


def area_km(p: FusionParams) -> float:
    """The area a reported city stands for: the decision radius, at least the distance at which a name hits."""
    return max(p.decision_km, NEAR_KM)


def named_sources(p: FusionParams) -> set[str]:
    """The plug-ins whose point may be reported in either setting (they are gathered whatever their place share)."""
    return ({*p.named_place_sources} if p.named_place_below > 0 else set()) | (
        {*p.named_place_sources_tagged} if p.named_place_below_tagged > 0 else set())


def settings(p: FusionParams, tagged: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n,) each post's threshold, city probability and distance from every class: the ingest setting's for posts
    that came with hashtags."""
    below, prob, beyond = np.full(n, p.named_place_below), np.full(n, p.named_place_prob), np.full(n, p.named_place_beyond_km)
    if tagged is not None:
        rows = np.asarray(tagged, bool)
        below[rows], prob[rows], beyond[rows] = p.named_place_below_tagged, p.named_place_prob_tagged, p.named_place_beyond_km_tagged
    return below, prob, beyond


def setting_points(ev: Evidence, p: FusionParams) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) each post's point its setting's sources name (NaN: none) and (n,) what `location_source` says of it."""
    points, origin = named_points(ev, p.named_place_sources)
    if ev.tagged is not None and np.any(ev.tagged) and p.named_place_sources_tagged != p.named_place_sources:
        rows = np.asarray(ev.tagged, bool)
        tagged_points, tagged_origin = named_points(ev, p.named_place_sources_tagged)
        points, origin = np.where(rows[:, None], tagged_points, points), np.where(rows, tagged_origin, origin)
    return points, np.array([LOCATION_SOURCE.get(o, o) for o in origin], dtype=object)


def named_places(ev: Evidence, p: FusionParams, label: np.ndarray, confidence: np.ndarray,
                 areas: PlaceAreas) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(at, points, prob, origin): whether each post's named point is reported instead of its decided place `label`
    (whose calibrated area probability is `confidence`), the points (n, 2; NaN: none), their probability and what
    `location_source` says of each ("place_name", "user_history")."""
    n = len(label)
    below, prob, beyond = settings(p, ev.tagged, n)
    if not (below > 0).any():
        return np.zeros(n, bool), np.full((n, 2), np.nan), prob, np.full(n, "", dtype=object)
    points, origin = setting_points(ev, p)
    odds = prob / np.maximum(1.0 - prob, 1e-9)  # above this, the first class (scaled by 1 - prob) would outrank the city
    at = np.isfinite(points[:, 0]) & (confidence < np.minimum(below, odds))
    at[at] = ~in_area(points[at], np.asarray(label)[at], areas, p.decision_km)
    if (beyond[at] > 0).any():
        at[at] = beyond_classes(points[at], areas, beyond[at])
    return at, points, prob, origin


def beyond_classes(points: np.ndarray, areas: PlaceAreas, km) -> np.ndarray:
    """(n,) whether each point lies farther than `km` (one distance, or one per point) from every place class."""
    nearest_km = areas.tree.query(np.radians(points), k=1)[0][:, 0] * EARTH_RADIUS_KM
    km = np.broadcast_to(np.asarray(km, float), nearest_km.shape)
    return (km <= 0) | (nearest_km > km)


def pointing(ev: Evidence) -> list[str]:
    """The plug-ins of SOURCE_CHOICES that name a point for at least one post of `ev`."""
    names = {name for choice in SOURCE_CHOICES for name in choice}
    return sorted(name for name in names if (src := ev.sources.get(name)) is not None and src.position is not None
                  and np.isfinite(src.position[:, 0]).any())


def hit_rate(hits: np.ndarray) -> float:
    """A reported city's probability: how often the truth lay in its area, smoothed (Laplace) for small counts."""
    return float((np.sum(hits) + 1.0) / (len(hits) + 2.0))


def tune_named_place(decide: Callable[[FusionParams], tuple[np.ndarray, np.ndarray, np.ndarray]], lat: np.ndarray, lon: np.ndarray,
                     params: FusionParams, tagged: bool, with_points: Collection[str] = (SOURCE,)) -> tuple[FusionParams, dict]:
    """The threshold (and the city probability it implies) of one setting on its validation queries. `decide(cand)`
    returns (coords, at, points) of the queries under `cand`; `with_points` names the plug-ins that name a point for some
    of them (the source lists of SOURCE_CHOICES tried are those made of them). A threshold is kept only where it
    lifts Acc@161 by more than one query and leaves Acc@25 and the median no worse; ties go to the smaller one, to
    cities beyond NEAR_KM of every class over cities anywhere (see the module's docstring), and to `place_names`
    alone over lists with the user's past post."""
    suffix = "_tagged" if tagged else ""
    below_key, prob_key, beyond_key, sources_key = (f"named_place_below{suffix}", f"named_place_prob{suffix}",
                                                    f"named_place_beyond_km{suffix}", f"named_place_sources{suffix}")
    params = replace(params, **{beyond_key: NEAR_KM, sources_key: [SOURCE]})

    def measured(cand: FusionParams) -> tuple[float, float, float]:
        coords = decide(cand)[0]
        score = GeoScore.of(distance_km(coords[:, 0], coords[:, 1], lat, lon))
        return score.acc_161, score.acc_25, score.median_km

    base = measured(replace(params, **{below_key: 0.0}))
    best, best_score, curve = replace(params, **{below_key: 0.0}), base, {}
    choices = [list(c) for c in SOURCE_CHOICES if set(c) <= set(with_points)]
    for sources, below, beyond in itertools.product(choices, BELOW_GRID[1:], (NEAR_KM, 0.0)):
        trial = replace(params, **{below_key: below, beyond_key: beyond, sources_key: sources})
        _, at, points = decide(replace(trial, **{prob_key: 1.0}))  # which cities, before the cap
        prob = hit_rate(distance_km(points[at, 0], points[at, 1], lat[at], lon[at]) <= area_km(params)) if at.any() else 0.0
        cand = replace(trial, **{prob_key: prob})
        score = measured(cand)
        key = (str(below) if beyond else f"{below}, anywhere") + ("" if sources == [SOURCE] else f", from {' then '.join(sources)}")
        curve[key] = {"reported": int(at.sum()), "prob": round(prob, 4), "acc_at_161": round(score[0], 4), "acc_at_25": round(score[1], 4),
                      "median_km": round(score[2], 1)}
        if score[0] > best_score[0] and score[0] - base[0] > one_query(len(lat)) and score[1] >= base[1] and score[2] <= base[2]:
            best, best_score = cand, score
    report = {"chosen_below": getattr(best, below_key), "chosen_beyond_km": getattr(best, beyond_key), "prob": getattr(best, prob_key),
              "chosen_sources": getattr(best, sources_key),
              "without": {"acc_at_161": round(base[0], 4), "acc_at_25": round(base[1], 4), "median_km": round(base[2], 1)}, "curve": curve}
    return best, report
