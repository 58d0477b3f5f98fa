"""Coordinates at the city a post names, when it lies in the decided area (recommender/named_coords.py), chosen on
validation like the other coordinate rules. Places, points and posts here are synthetic, named so."""

from __future__ import annotations

import numpy as np

from tagatlas.data import Post, distance_km
from tagatlas.recommender import Geolocator
from tagatlas.recommender.evidence import SourceEvidence
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas
from tagatlas.recommender.named_coords import in_area, named_coordinates, named_points
from tagatlas.recommender.tuning import _GeoTuning

# Synthetic place classes: a region's centre R (Paris-like), a town T 120 km from it, a far place F.
R, T, F = (48.86, 2.35), (49.9, 2.3), (40.7, -74.0)
PLACES = np.array([R, T, F])
AREAS = PlaceAreas(PLACES)


def _evidence(probs, points) -> Evidence:
    n = len(probs)
    return Evidence(np.asarray(probs, float), np.zeros((n, 1)), np.zeros((n, 0)), np.zeros((n, 0), int), np.zeros((n, 0)),
                    np.zeros((n, 0)), [[] for _ in range(n)], [[] for _ in range(n)], [np.zeros(0)] * n, [[]] * n, [[]] * n, ["t"], 1,
                    sources={"place_names": SourceEvidence(place=np.zeros((n, 3)), position=np.asarray(points, float))})


def test_a_named_city_in_the_decided_area_gives_the_coordinates_and_one_outside_does_not():
    versailles, lyon = (48.80, 2.13), (45.76, 4.84)  # 17 km and 390 km from R
    ev = _evidence([[0.8, 0.1, 0.1]] * 3, [versailles, lyon, (np.nan, np.nan)])
    top = np.array([0, 0, 0])
    coords = np.tile(PLACES[0], (3, 1))
    off = FusionParams(decision_km=161.0)
    assert np.array_equal(named_coordinates(ev, off, coords, AREAS, top)[0], coords)  # not chosen: unchanged
    on = FusionParams(decision_km=161.0, coordinate_sources=["place_names"])
    out, used = named_coordinates(ev, on, coords, AREAS, top)
    assert used.tolist() == ["place_names", "", ""]
    assert np.allclose(out[0], versailles) and np.allclose(out[1:], coords[1:])
    # Without a decision radius a named point counts only for the place nearest it (within 161 km).
    assert in_area(np.array([versailles, T]), np.array([0, 0]), AREAS, 0.0).tolist() == [True, False]
    assert in_area(np.array([T]), np.array([1]), AREAS, 0.0).tolist() == [True]


def test_named_points_take_the_sources_in_order_and_skip_posts_without_one():
    ev = _evidence([[1, 0, 0]] * 2, [(np.nan, np.nan), R])
    ev.sources["other"] = SourceEvidence(position=np.array([T, F]))
    points, origin = named_points(ev, ["place_names", "other"])
    assert np.allclose(points, [T, R]) and origin.tolist() == ["other", "place_names"]
    assert np.isnan(named_points(ev, ["missing"])[0]).all()


def test_the_geolocator_reports_where_the_coordinates_came_from():
    geo = Geolocator.of_classes(["R", "T", "F"], ["R", "T", "F"], PLACES)
    ev = _evidence([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]], [(48.80, 2.13), (np.nan, np.nan)])
    decided = geo.decide(ev, FusionParams(geo_alpha=1.0, decision_km=50.0, neighbour_coords=False, coordinate_sources=["place_names"]))
    assert decided.source.tolist() == ["place_name", "place"]
    assert np.allclose(decided.coords, [(48.80, 2.13), R])


def test_validation_turns_named_coordinates_on_only_where_they_help():
    """40 synthetic posts from towns near R, all decided at R: where each names its own town the rule is taken;
    where each names a town 100 km from where it was written it is not."""
    rng = np.random.default_rng(0)
    towns = np.column_stack([R[0] + rng.uniform(-0.6, 0.6, 40), R[1] + rng.uniform(-0.9, 0.9, 40)])
    posts = [Post(id=f"synthetic-{i}", text="x", lat=float(a), lon=float(b)) for i, (a, b) in enumerate(towns)]
    probs = np.tile([0.8, 0.15, 0.05], (40, 1))
    truth = np.zeros(40, int)
    for named, expected in ((towns, ["place_names"]), (towns + [0.9, 0.0], [])):
        assert (distance_km(named[:, 0], named[:, 1], towns[:, 0], towns[:, 1]) > 90).all() or expected
        tuning = _GeoTuning(_evidence(probs, named), posts, AREAS, truth, {})
        params = FusionParams(geo_alpha=1.0, decision_km=161.0)
        tuning.reference = tuning.references(params)
        chosen, err, coords = tuning.coordinate_rule(params, probs, np.zeros(40, int))
        assert chosen.coordinate_sources == expected, (expected, tuning.report["coordinates"])
        assert np.allclose(err, distance_km(coords[:, 0], coords[:, 1], towns[:, 0], towns[:, 1]))
