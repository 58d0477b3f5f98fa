"""The GeoCLIP-map benchmark's parts on synthetic data (named so): the retrieval vote as a point, the constant
answer, the map's training and its answers. GeoCLIP's own location encoder is checked only where the optional
`geoclip` package is installed."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import geoclip_map  # noqa: E402

TOKYO, OSAKA, PARIS = (35.68, 139.69), (34.69, 135.50), (48.86, 2.35)


def unit(rows) -> np.ndarray:
    x = np.asarray(rows, dtype=float)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_point_row_counts_errors_within_each_radius():
    truth = np.array([TOKYO, TOKYO, TOKYO])
    pred = np.array([TOKYO, OSAKA, PARIS])  # 0 km, about 400 km, about 9,700 km
    row = geoclip_map.point_row(pred, truth)
    assert row["acc_25"] == pytest.approx(1 / 3) and row["acc_161"] == pytest.approx(1 / 3)
    assert row["acc_750"] == pytest.approx(2 / 3)
    assert 350 < row["median_km"] < 450


def test_retrieval_answer_lets_agreeing_neighbours_outvote_one_closer_look_alike():
    gallery = unit([[1.0, 0.0, 0.0], [0.98, 0.2, 0.0], [0.98, 0.0, 0.2], [0.98, -0.2, 0.0], [0.98, 0.0, -0.2]])
    coords = np.array([PARIS, TOKYO, TOKYO, TOKYO, TOKYO])
    query = unit([[1.0, 0.0, 0.0]])  # the Paris photo is the nearest single look-alike
    assert tuple(geoclip_map.retrieval_answer(query, gallery, coords, k=1)[0]) == PARIS
    assert tuple(geoclip_map.retrieval_answer(query, gallery, coords, k=5)[0]) == TOKYO


def test_densest_point_is_inside_the_largest_group():
    coords = np.array([PARIS, TOKYO, (35.7, 139.7), (35.6, 139.8)])
    assert geoclip_map.densest_point(coords)[0] == pytest.approx(35.6, abs=0.2)


def test_normalized_centres_on_the_given_mean_and_scales_to_unit_length():
    x = np.array([[2.0, 0.0], [0.0, 2.0]])
    out = geoclip_map.normalized(x, x.mean(axis=0))
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert out[0] @ out[1] == pytest.approx(-1.0)


@pytest.mark.parametrize("setting", [geoclip_map.MapSetting(0, 40, 1e-4), geoclip_map.MapSetting(16, 40, 1e-4)])
def test_trained_map_sends_unseen_photos_to_their_own_places_embedding(setting):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    places = np.array([TOKYO, OSAKA, PARIS])
    place_embedding = torch.nn.functional.normalize(torch.as_tensor(rng.normal(size=(3, 8)), dtype=torch.float32), dim=1)
    centres = rng.normal(size=(3, 12))
    labels = np.repeat(np.arange(3), 30)
    features = unit(centres[labels] + 0.3 * rng.normal(size=(len(labels), 12)))
    net = geoclip_map.train_map(features, place_embedding[labels], place_embedding, setting, batch=32, n_negatives=16)
    unseen = np.repeat(np.arange(3), 10)
    answers = geoclip_map.map_answer(net, unit(centres[unseen] + 0.3 * rng.normal(size=(len(unseen), 12))), place_embedding, places)
    assert np.mean(np.all(answers == places[unseen], axis=1)) >= 0.9


def test_geoclip_location_space_encodes_nearby_points_alike():
    pytest.importorskip("geoclip")
    encode, gallery = geoclip_map.location_space()
    assert gallery.shape == (100_000, 2)
    z = encode(np.array([TOKYO, (35.69, 139.70), PARIS])).numpy()
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert z[0] @ z[1] > z[0] @ z[2]
