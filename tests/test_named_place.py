"""A city the post names outside the decided area, reported first instead of a place class (recommender/named_place.py),
chosen on validation per setting. Places, points and posts here are synthetic, named so."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tagatlas.data import Post, distance_km
from tagatlas.data.toponyms import gazetteer
from tagatlas.recommender import Geolocator
from tagatlas.recommender.decisions import to_predictions
from tagatlas.recommender.evidence import SourceEvidence
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas
from tagatlas.recommender.geolocator import decide_places
from tagatlas.recommender.evidence.place_names import NEAR_KM
from tagatlas.recommender.named_place import area_km, hit_rate, named_places, named_sources, pointing, tune_named_place
from tagatlas.recommender.schema import Decisions, PlaceScore
from tagatlas.evaluation.runner import first_place_hits

# Synthetic place classes: a Paris-like centre R, a town T 120 km from it, a far place F (New York-like).
R, T, F = (48.86, 2.35), (49.9, 2.3), (40.7, -74.0)
PLACES = np.array([R, T, F])
AREAS = PlaceAreas(PLACES)
_GAZ = gazetteer()
_LYON = next(i for i in range(len(_GAZ)) if _GAZ.names[i] == "Lyon" and _GAZ.country[i] == "FR")
LYON = (float(_GAZ.lat[_LYON]), float(_GAZ.lon[_LYON]))  # a real city (GeoNames) 390 km from R: no class covers it
BASE = dict(geo_alpha=1.0, decision_km=50.0, neighbour_coords=False)


def _evidence(probs, points, tagged=None, user_points=None) -> Evidence:
    n = len(probs)
    sources = {"place_names": SourceEvidence(place=np.zeros((n, 3)), position=np.asarray(points, float))}
    if user_points is not None:
        sources["user_places"] = SourceEvidence(place=np.zeros((n, 3)), position=np.asarray(user_points, float))
    return Evidence(np.asarray(probs, float), np.zeros((n, 1)), np.zeros((n, 0)), np.zeros((n, 0), int), np.zeros((n, 0)),
                    np.zeros((n, 0)), [[] for _ in range(n)], [[] for _ in range(n)], [np.zeros(0)] * n, [[]] * n, [[]] * n, ["t"], 1,
                    sources=sources, tagged=None if tagged is None else np.asarray(tagged, bool))


def test_an_unsure_decision_gives_way_to_a_city_named_outside_its_area_and_a_sure_one_does_not():
    ev = _evidence([[0.4, 0.3, 0.3], [0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.4, 0.3, 0.3]],
                   [LYON, LYON, (48.80, 2.13), (np.nan, np.nan)])  # the third names a town inside R's area
    p = FusionParams(named_place_below=0.6, named_place_prob=0.7, **BASE)
    at, points, prob, origin = named_places(ev, p, np.zeros(4, int), np.array([0.4, 0.9, 0.4, 0.4]), AREAS)
    assert at.tolist() == [True, False, False, False]
    assert np.allclose(points[0], LYON) and np.allclose(prob, 0.7) and origin[0] == "place_name"
    off = replace(p, named_place_below=0.0)
    assert not named_places(ev, off, np.zeros(4, int), np.array([0.4, 0.9, 0.4, 0.4]), AREAS)[0].any()


def test_a_city_is_never_reported_where_the_first_class_would_still_outrank_it():
    """prob 0.3: the first class, scaled by 0.7, outranks the city once its area probability passes 0.3 / 0.7."""
    ev = _evidence([[0.5, 0.3, 0.2]] * 2, [LYON, LYON])
    p = FusionParams(named_place_below=1.01, named_place_prob=0.3, **BASE)
    at = named_places(ev, p, np.zeros(2, int), np.array([0.40, 0.45]), AREAS)[0]
    assert at.tolist() == [True, False]  # 0.40 < 0.3 / 0.7 = 0.43 < 0.45


def test_posts_arriving_with_hashtags_follow_the_ingest_settings_threshold():
    ev = _evidence([[0.4, 0.3, 0.3]] * 2, [LYON, LYON], tagged=[False, True])
    p = FusionParams(named_place_below=0.0, named_place_below_tagged=0.7, named_place_prob_tagged=0.6, **BASE)
    at, _, prob, _ = named_places(ev, p, np.zeros(2, int), np.array([0.4, 0.4]), AREAS)
    assert at.tolist() == [False, True] and prob[1] == 0.6


def test_the_prediction_lists_the_named_city_first_with_its_coordinates_and_the_classes_after_it():
    geo = Geolocator.of_classes(["R", "T", "F"], ["R", "T", "F"], PLACES)
    p = FusionParams(named_place_below=1.01, named_place_prob=0.6, **BASE)
    ev = _evidence([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]], [LYON, (np.nan, np.nan)])
    where = geo.decide(ev, p)
    assert where.source.tolist() == ["place_name", "place"]
    assert np.allclose(where.coords[0], LYON) and np.allclose(where.coords[1], R)
    assert where.named_city[0].name == "Lyon" and where.named_city[1] is None
    posts = [Post(id=f"synthetic-{i}", text="x") for i in range(2)]
    d = Decisions(label=where.label, probs=where.probs, listed=where.listed, listed_prob=where.listed_prob, coords=where.coords,
                  radius=where.radius, source=where.source, order=np.zeros((2, 0), int), scores=np.zeros((2, 0)), n_keep=np.zeros(2, int),
                  parts={}, tags=["t"], places=geo.places_, place_names=geo.place_names_, photo_gps=None, clusters=np.full(2, -1),
                  area_km=p.decision_km, named_city=where.named_city, named_prob=where.named_prob, named_area_km=area_km(p))
    preds = to_predictions(posts, ev, d, geo.place_coords_list_)
    first = preds[0].places
    assert first[0].name.startswith("Lyon") and first[0].prob == pytest.approx(0.6)
    assert np.allclose((first[0].lat, first[0].lon), LYON) and first[0].area_km == area_km(p)
    assert [pl.place for pl in first[1:]] == ["R", "T", "F"][: len(first) - 1]
    assert all(first[0].prob >= pl.prob for pl in first[1:]) and sum(pl.prob for pl in first) <= 1.0 + 1e-9
    assert preds[1].places[0].place == "R"
    # what bulk enrichment writes from the arrays says the same
    rec = d.records()
    assert rec[0]["pred_place_name"] == first[0].name and rec[0]["pred_place_prob"] == first[0].prob
    assert rec[1]["pred_place"] == "R"


def test_validation_reports_named_cities_only_where_they_help():
    """40 synthetic posts decided unsurely at R. Where each names the far city it was written in, the cities are
    taken (probability: how often they were right); where each names a city 300 km from where it was written, not."""
    rng = np.random.default_rng(0)
    cities = np.column_stack([rng.uniform(35, 60, 40), rng.uniform(-5, 25, 40)])
    cities = cities[distance_km(cities[:, 0], cities[:, 1], np.full(40, R[0]), np.full(40, R[1])) > 400][:30]
    n = len(cities)
    probs = np.tile([0.4, 0.35, 0.25], (n, 1))
    for offset, expected in ((0.0, True), (3.0, False)):
        ev = _evidence(probs, cities + [offset, 0.0])
        params = FusionParams(**BASE)

        def decide(cand, ev=ev):
            out = decide_places(ev, cand, AREAS, PLACES)
            return out.coords, np.isfinite(out.named_point[:, 0]), out.named_point

        chosen, report = tune_named_place(decide, cities[:, 0], cities[:, 1], params, tagged=False)
        assert (chosen.named_place_below > 0) == expected, report
        if expected:
            assert chosen.named_place_prob == pytest.approx(hit_rate(np.ones(n, bool)))
        assert chosen.named_place_below_tagged == 0.0  # the other setting untouched


def test_named_place_settings_survive_a_save_and_load_and_old_models_load_without_them():
    p = FusionParams(named_place_below=0.5, named_place_below_tagged=0.7, named_place_prob=0.55, named_place_prob_tagged=0.62)
    again = FusionParams(**json.loads(json.dumps(p.to_dict())))
    assert again == p
    old = {k: v for k, v in p.to_dict().items() if not k.startswith("named_place")}
    assert FusionParams(**old).named_place_below == 0.0  # a model saved before: never reports a named city


def test_evaluation_scores_a_named_city_by_its_own_area_and_a_class_by_the_class_areas():
    geo = Geolocator.of_classes(["R", "T", "F"], ["R", "T", "F"], PLACES)
    cls = PlaceScore(place="R", name="R", prob=0.5, lat=R[0], lon=R[1], area_km=50.0)
    city = PlaceScore(place="lyon", name="Lyon, FR", prob=0.6, lat=LYON[0], lon=LYON[1], area_km=161.0)
    truth = np.array([(48.9, 2.4), (LYON[0] + 0.9, LYON[1]), (LYON[0] + 2.0, LYON[1]), (40.8, -73.9)])  # Lyon +100 km, +222 km
    hits = first_place_hits([cls, city, city, cls], geo, 50.0, ["R", "", "R", ""], truth[:, 0], truth[:, 1])
    assert hits.tolist() == [True, True, False, False]


def test_a_city_near_another_class_is_left_to_the_vote_and_one_beyond_every_class_is_reported():
    """Near T (a class 120 km from R, outside R's area) `place_names` already votes for T: with the tuned distance the
    city is not reported over the decision; Lyon, beyond every class, still is. 0 (old models): both are."""
    near_t = (49.95, 2.4)
    ev = _evidence([[0.4, 0.3, 0.3]] * 2, [near_t, LYON])
    p = FusionParams(named_place_below=1.01, named_place_prob=0.7, **BASE)
    conf = np.array([0.4, 0.4])
    assert named_places(ev, p, np.zeros(2, int), conf, AREAS)[0].tolist() == [True, True]
    beyond = replace(p, named_place_beyond_km=NEAR_KM)
    assert named_places(ev, beyond, np.zeros(2, int), conf, AREAS)[0].tolist() == [False, True]


def test_validation_prefers_cities_beyond_the_classes_and_takes_any_city_only_where_that_does_better():
    """Synthetic: 20 posts decided unsurely at R. Half name a far city they were written in (right); the other half
    name a town 30 km from the class F. Where those were written at R (the town is wrong), tuning reports cities beyond
    every class only; where they were written in the town, it reports any city outside the decided area."""
    rng = np.random.default_rng(1)
    far = np.column_stack([rng.uniform(40, 45, 10), rng.uniform(10, 20, 10)])  # > 500 km from every class
    town = np.tile([F[0] + 0.27, F[1]], (10, 1))  # 30 km north of F
    points = np.vstack([far, town])
    ev = _evidence(np.tile([0.4, 0.35, 0.25], (20, 1)), points, tagged=np.ones(20, bool))

    def decide(cand):
        out = decide_places(ev, cand, AREAS, PLACES)
        return out.coords, np.isfinite(out.named_point[:, 0]), out.named_point

    for town_truth, expected_beyond in ((R, NEAR_KM), (town[0], 0.0)):
        truth = np.vstack([far, np.tile(town_truth, (10, 1))])
        chosen, report = tune_named_place(decide, truth[:, 0], truth[:, 1], FusionParams(**BASE), tagged=True)
        assert chosen.named_place_below_tagged > 0 and chosen.named_place_beyond_km_tagged == expected_beyond, report
        assert chosen.named_place_below == 0.0 and chosen.named_place_beyond_km == 0.0  # the posting form untouched
        assert report["chosen_beyond_km"] == expected_beyond


def test_each_setting_keeps_its_own_distance_from_the_classes():
    near_t = (49.95, 2.4)
    ev = _evidence([[0.4, 0.3, 0.3]] * 2, [near_t, near_t], tagged=[False, True])
    p = FusionParams(named_place_below=1.01, named_place_prob=0.7, named_place_below_tagged=1.01, named_place_prob_tagged=0.7,
                     named_place_beyond_km=NEAR_KM, named_place_beyond_km_tagged=0.0, **BASE)
    assert named_places(ev, p, np.zeros(2, int), np.array([0.4, 0.4]), AREAS)[0].tolist() == [False, True]


NOWHERE = (np.nan, np.nan)


def test_the_users_past_post_is_reported_only_where_its_setting_lists_user_places_and_says_so():
    """Synthetic: the first post names no city but its user posted from Lyon hours before; the second names Lyon and
    its user has no trusted past post."""
    geo = Geolocator.of_classes(["R", "T", "F"], ["R", "T", "F"], PLACES)
    ev = _evidence([[0.4, 0.35, 0.25]] * 2, [NOWHERE, LYON], user_points=[LYON, NOWHERE])
    default = FusionParams(named_place_below=1.01, named_place_prob=0.6, **BASE)
    assert default.named_place_sources == ["place_names"]
    assert geo.decide(ev, default).source.tolist() == ["place", "place_name"]
    both = replace(default, named_place_sources=["user_places", "place_names"])
    where = geo.decide(ev, both)
    assert where.source.tolist() == ["user_history", "place_name"]
    assert np.allclose(where.coords, [LYON, LYON]) and where.named_city[0].name == "Lyon"
    assert where.named_prob[0] == pytest.approx(0.6) and where.listed_prob[0, 0] <= 0.4 * 0.4 + 1e-9
    tagged_only = replace(default, named_place_below=0.0, named_place_below_tagged=1.01, named_place_prob_tagged=0.6,
                          named_place_sources_tagged=["user_places"])
    ev_tagged = _evidence([[0.4, 0.35, 0.25]] * 2, [LYON, LYON], tagged=[False, True], user_points=[LYON, LYON])
    assert geo.decide(ev_tagged, tagged_only).source.tolist() == ["place", "user_history"]


def test_the_sources_that_may_be_reported_are_gathered():
    off = FusionParams(named_place_sources=["user_places"])
    assert named_sources(off) == set()  # never reported: nothing to gather for it
    assert named_sources(replace(off, named_place_below=0.5)) == {"user_places"}
    assert named_sources(FusionParams(named_place_below_tagged=0.5)) == {"place_names"}
    ev = _evidence([[0.4, 0.35, 0.25]] * 2, [NOWHERE, NOWHERE], user_points=[LYON, NOWHERE])
    assert pointing(ev) == ["user_places"]


def test_validation_reports_the_users_past_post_only_where_it_helps_and_it_names_a_point():
    """Synthetic: 30 posts decided unsurely at R, written in far cities; none names a city, but each user's trusted past
    post lies 5 km from where the post was written (right) or 300 km from it (wrong)."""
    rng = np.random.default_rng(2)
    cities = np.column_stack([rng.uniform(35, 60, 60), rng.uniform(-5, 25, 60)])
    cities = cities[distance_km(cities[:, 0], cities[:, 1], np.full(60, R[0]), np.full(60, R[1])) > 500][:30]
    n = len(cities)
    for offset, expected in ((0.045, ["user_places"]), (2.7, ["place_names"])):
        ev = _evidence(np.tile([0.4, 0.35, 0.25], (n, 1)), np.full((n, 2), np.nan), user_points=cities + [offset, 0.0])

        def decide(cand, ev=ev):
            out = decide_places(ev, cand, AREAS, PLACES)
            return out.coords, np.isfinite(out.named_point[:, 0]), out.named_point

        chosen, report = tune_named_place(decide, cities[:, 0], cities[:, 1], FusionParams(**BASE), tagged=False, with_points=pointing(ev))
        assert chosen.named_place_sources == expected and (chosen.named_place_below > 0) == (expected == ["user_places"]), report
        assert report["chosen_sources"] == expected
        if expected == ["user_places"]:
            assert chosen.named_place_prob == pytest.approx(hit_rate(np.ones(n, bool)))
        # without user_places among the sources that point, it is never tried
        plain, _ = tune_named_place(decide, cities[:, 0], cities[:, 1], FusionParams(**BASE), tagged=False)
        assert plain.named_place_below == 0.0 and plain.named_place_sources == ["place_names"]


def test_named_place_sources_survive_a_save_and_load_and_older_models_keep_place_names():
    p = FusionParams(named_place_below=0.5, named_place_sources=["user_places", "place_names"], named_place_sources_tagged=["user_places"])
    assert FusionParams(**json.loads(json.dumps(p.to_dict()))) == p
    old = {k: v for k, v in p.to_dict().items() if not k.startswith("named_place_sources")}
    assert FusionParams(**old).named_place_sources == FusionParams(**old).named_place_sources_tagged == ["place_names"]
