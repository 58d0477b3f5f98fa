"""Multi-task geolocation: coordinate regression, temperature scaling, ECE and hedged coordinates.

All data here is synthetic (generated in the tests) and only pins behaviour down.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from tagatlas.data import distance_km
from tagatlas.recommender.fusion import (Evidence, FusionParams, calibrate, expected_distance_points, fit_temperature,
                                         hedge_coordinates)
from tagatlas.recommender.head import HeadConfig, HeadTrainer, from_unit, to_unit
from tagatlas.recommender.metrics import expected_calibration_error

# Synthetic places: four cities far apart.
CITIES = np.array([[48.85, 2.35], [40.71, -74.00], [35.68, 139.69], [-33.87, 151.21]])


def synthetic_posts(n: int, seed: int):
    """Dense features that encode a city (plus noise) and coordinates jittered around it."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, len(CITIES), n)
    dense = (np.eye(len(CITIES))[city] + 0.3 * rng.normal(size=(n, len(CITIES)))).astype(np.float32)
    dense = np.hstack([dense, rng.normal(size=(n, 4)).astype(np.float32)])
    coords = CITIES[city] + rng.normal(scale=0.2, size=(n, 2))
    x = sp.csr_matrix((n, 16), dtype=np.float32)
    return x, dense, city, coords


def train(seed=0, coord_loss_weight=1.0, epochs=25):
    x, dense, city, coords = synthetic_posts(600, seed=1)
    cfg = HeadConfig(bag_dim=8, hidden=32, dropout=0.0, lr=1e-2, seed=seed, coord_loss_weight=coord_loss_weight)
    return HeadTrainer(cfg).fit(x, dense, city, [[] for _ in city], len(CITIES), 0, epochs=epochs, progress=False, coords=coords)


def test_unit_vectors_round_trip_including_the_date_line():
    pts = np.array([[0.0, 179.9], [0.0, -179.9], [89.0, 10.0], [-45.5, -120.25]])
    assert np.allclose(from_unit(to_unit(pts[:, 0], pts[:, 1])), pts, atol=1e-4)
    # Across the date line the two points are neighbours, not 360 degrees apart.
    a, b = to_unit([0.0], [179.9]), to_unit([0.0], [-179.9])
    assert np.linalg.norm(a - b) < 0.01


def test_the_regression_head_learns_coordinates():
    head = train(epochs=60)
    x, dense, city, coords = synthetic_posts(200, seed=2)
    out = head.predict(x, dense)
    assert out.coords.shape == (200, 2) and out.place_probs.shape == (200, 4)
    err = distance_km(out.coords[:, 0], out.coords[:, 1], coords[:, 0], coords[:, 1])
    mean_point = np.tile(coords.mean(axis=0), (200, 1))
    baseline = distance_km(mean_point[:, 0], mean_point[:, 1], coords[:, 0], coords[:, 1])
    assert np.median(err) < 0.15 * np.median(baseline)
    assert np.median(err) < np.median(distance_km(*train(epochs=2).predict(x, dense).coords.T, coords[:, 0], coords[:, 1]))


def test_without_regression_the_head_has_no_coordinates_and_round_trips():
    head = train(coord_loss_weight=0.0, epochs=2)
    x, dense, *_ = synthetic_posts(10, seed=3)
    assert head.predict(x, dense).coords is None
    again = HeadTrainer.from_state_dict(head.state_dict())
    assert again.predict(x, dense).coords is None
    assert np.array_equal(again.predict(x, dense).place_probs, head.predict(x, dense).place_probs)


def test_head_save_load_round_trip_and_seeded_determinism():
    a, b = train(seed=3, epochs=3), train(seed=3, epochs=3)
    x, dense, *_ = synthetic_posts(20, seed=4)
    pa, pb = a.predict(x, dense), b.predict(x, dense)
    assert np.array_equal(pa.coords, pb.coords) and np.array_equal(pa.place_probs, pb.place_probs)
    loaded = HeadTrainer.from_state_dict(a.state_dict()).predict(x, dense)
    assert np.array_equal(loaded.coords, pa.coords) and np.array_equal(loaded.z, pa.z)
    assert not np.array_equal(train(seed=4, epochs=3).predict(x, dense).coords, pa.coords)


def test_temperature_scaling_recovers_overconfidence_and_lowers_ece():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 6))
    true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(6, p=p) for p in true_p])
    overconfident = calibrate(true_p, 0.5)  # what a model twice as sure as it should be reports
    t = fit_temperature(overconfident, truth)
    assert t == pytest.approx(2.0, rel=0.1)
    fixed = calibrate(overconfident, t)
    assert np.array_equal(fixed.argmax(axis=1), overconfident.argmax(axis=1)) and np.allclose(fixed.sum(axis=1), 1.0)
    ece = lambda p: expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == truth)  # noqa: E731
    assert ece(fixed) < 0.03 < ece(overconfident)
    assert fit_temperature(overconfident[:5], truth[:5]) == 1.0  # too few to fit: unchanged


def test_ece_of_known_cases():
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)
    assert expected_calibration_error([], []) is None


def test_expected_distance_hedges_between_two_far_bets():
    # Paris and New York equally likely, Reykjavik (between them) less so: the least expected distance is Reykjavik.
    coords = np.array([[48.85, 2.35], [40.71, -74.00], [64.15, -21.94]])
    point = expected_distance_points(np.array([[0.40, 0.40, 0.20]]), coords)
    assert np.allclose(point, coords[[2]])
    # One sure bet stays where it is.
    assert np.allclose(expected_distance_points(np.array([[0.9, 0.05, 0.05]]), coords), coords[[0]])


def test_only_unsure_posts_are_hedged():
    coords = np.array([[48.85, 2.35], [40.71, -74.00], [64.15, -21.94]])
    probs = np.array([[0.40, 0.40, 0.20], [0.90, 0.05, 0.05]])
    chosen = np.array([[48.85, 2.35], [48.85, 2.35]])
    ev = Evidence(probs, np.zeros((2, 1)), np.zeros((2, 0)), np.zeros((2, 0), int), np.zeros((2, 0)), np.zeros((2, 0)), [[], []], [[], []],
                  [np.zeros(0)] * 2, [[]] * 2, [[]] * 2, ["t"], 1, reg_coords=np.array([[0.0, 0.0], [1.0, 1.0]]))
    conf = probs.max(axis=1)
    out, hedged = hedge_coordinates(chosen, conf, ev, probs, FusionParams(hedge="expected", hedge_below=0.5), coords)
    assert hedged.tolist() == [True, False] and np.allclose(out, [coords[2], chosen[1]])
    out, hedged = hedge_coordinates(chosen, conf, ev, probs, FusionParams(hedge="regression", hedge_below=0.5), coords)
    assert np.allclose(out, [[0.0, 0.0], chosen[1]])
    out, hedged = hedge_coordinates(chosen, conf, ev, probs, FusionParams(hedge="none", hedge_below=0.5), coords)
    assert not hedged.any() and np.array_equal(out, chosen)
    with pytest.raises(ValueError, match="hedge="):
        hedge_coordinates(chosen, conf, ev, probs, FusionParams(hedge="median", hedge_below=0.5), coords)
