"""Geolocation tuning buys no figure with another: settings are ranked by their weakest lead over the single-source
reference (Acc@161, Acc@25, median km), so a decision radius that gives up a little Acc@161 for a far smaller median
beats one that wins Acc@161 by sending the rest across an ocean.

All posts and probabilities here are synthetic (generated in the tests) and only pin behaviour down.
"""

from dataclasses import replace

import numpy as np

from tagatlas.data import Post
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas
from tagatlas.recommender.tuning import GeoScore, _GeoTuning, weakest_lead

# Synthetic places: A1..A5 in one region (A2..A5 about 250 km from A1), B and C far away.
A1 = (48.0, 2.0)
REGION = [A1, (50.25, 2.0), (45.75, 2.0), (48.0, 5.35), (48.0, -1.35)]
B, C = (40.7, -74.0), (35.7, 139.7)
COORDS = np.array(REGION + [B, C])
I_B, I_C = 5, 6


def _evidence(probs: np.ndarray) -> Evidence:
    n = len(probs)
    return Evidence(probs, np.zeros((n, 1)), np.zeros((n, 0)), np.zeros((n, 0), int), np.zeros((n, 0)), np.zeros((n, 0)),
                    [[] for _ in range(n)], [[] for _ in range(n)], [np.zeros(0)] * n, [[]] * n, [[]] * n, ["t"], 1)


def _trade_off_queries() -> tuple[Evidence, list[Post]]:
    """35 posts from B that every setting places right; 5 from C that only the most probable place gets right (the
    region holds more mass); 60 from A2 whose most probable single place is B, 6,000 km off, while the region
    around A1 holds most of their mass (A1 is 250 km from A2: wrong at 161 km, but close)."""
    region = np.array([0.28, 0.105, 0.105, 0.105, 0.105])
    rows, truths = [], []
    for _ in range(35):
        rows.append(np.r_[np.full(5, 0.04), 0.8, 0.0]), truths.append(B)
    for _ in range(5):
        rows.append(np.r_[region, 0.0, 0.30]), truths.append(C)
    for _ in range(60):
        rows.append(np.r_[region, 0.30, 0.0]), truths.append(REGION[1])
    probs = np.array(rows)
    posts = [Post(id=f"synthetic-{i}", text="x", lat=lat, lon=lon) for i, (lat, lon) in enumerate(truths)]
    return _evidence(probs / probs.sum(axis=1, keepdims=True)), posts


def test_the_weakest_lead_is_the_smallest_ratio_over_the_reference():
    reference = GeoScore(acc_161=0.20, acc_25=0.10, median_km=1000.0)
    assert np.isclose(weakest_lead(GeoScore(0.30, 0.15, 2000.0), reference, 100), 0.5)  # Acc@161 ×1.5 bought with the median
    assert np.isclose(weakest_lead(GeoScore(0.24, 0.15, 800.0), reference, 100), 1.2)  # every figure leads: the weakest is 1.2
    assert np.isclose(weakest_lead(GeoScore(0.30, 0.11, 500.0), reference, 100), 1.1)  # Acc@25 is a figure too
    # A reference accuracy of 0 counts as one query in 100: the ratio stays finite.
    assert np.isclose(weakest_lead(GeoScore(0.02, 0.05, 500.0), GeoScore(0.0, 0.0, 1000.0), 100), 2.0, atol=1e-6)


def test_the_decision_radius_is_chosen_by_the_weakest_lead_not_by_acc_at_161_alone():
    ev, posts = _trade_off_queries()
    areas = PlaceAreas(COORDS)
    tuning = _GeoTuning(ev, posts, areas, np.full(len(posts), -1), {})
    tuning.reference = GeoScore(acc_161=0.30, acc_25=0.30, median_km=3000.0)
    params = FusionParams(geo_alpha=1.0)
    by_radius = {km: tuning.score(FusionParams(geo_alpha=1.0, decision_km=km)) for km in (0.0, 300.0)}
    # The most probable place wins Acc@161 (B and C posts right: 0.40 against 0.35) but sends the A2 posts to B.
    assert by_radius[0.0][1] > by_radius[300.0][1]
    chosen = tuning.decision(params)
    assert chosen.decision_km == 300.0  # the smallest radius at which the region's mass decides (a tie above it)
    leads = tuning.report["decision"]["weakest_lead"]
    assert leads["300.0"] > 1.0 > leads["0.0"]  # median 250 km against the reference's 3,000; 6,000 km at radius 0


def test_tuning_reports_the_single_source_references():
    ev, posts = _trade_off_queries()
    tuning = _GeoTuning(ev, posts, PlaceAreas(COORDS), np.full(len(posts), -1), {})
    reference = tuning.references(FusionParams())
    # No neighbours here: the neighbour vote names nothing better than the classifier, which names B or C.
    assert np.isclose(reference.acc_161, 0.40)
    assert set(tuning.report["geo_reference"]) == {"classifier", "neighbours", "best"}


def test_neighbour_coordinates_stay_in_the_decided_area():
    """A neighbour of the chosen place lying 470 km from it (labelled with its nearest city) gives no coordinates at
    a decision radius of 300 km; one within it does, and without a radius class membership alone counts."""
    from tagatlas.recommender.fusion import coordinates

    place = np.array([[48.0, 2.0], [40.7, -74.0]])
    ev = _evidence(np.array([[0.9, 0.1]]))
    ev.nb_sims, ev.nb_class = np.array([[0.9, 0.8]]), np.array([[0, 0]])
    ev.nb_lat, ev.nb_lon = np.array([[52.2, 48.0]]), np.array([[2.0, 2.1]])  # 467 km north of the place, then 7 km east
    far_only = _evidence(np.array([[0.9, 0.1]]))
    far_only.nb_sims, far_only.nb_class = np.array([[0.9]]), np.array([[0]])
    far_only.nb_lat, far_only.nb_lon = np.array([[52.2]]), np.array([[2.0]])
    top = np.array([0])
    at_300 = FusionParams(geo_k=2, neighbour_coords=True, decision_km=300.0)
    assert np.allclose(coordinates(far_only, at_300, far_only.place_probs, place, top), place[[0]])  # the place itself
    assert np.allclose(coordinates(ev, at_300, ev.place_probs, place, top), [[48.0, 2.1]])  # the near neighbour
    no_radius = FusionParams(geo_k=1, neighbour_coords=True, decision_km=0.0)
    assert np.allclose(coordinates(far_only, no_radius, far_only.place_probs, place, top), [[52.2, 2.0]])


def _names_setting(n_tagged: int, source_right_when_tagged: bool):
    """40 posts from B. A synthetic name source puts all its mass on B, except, when `source_right_when_tagged` is
    False, for the first `n_tagged` posts (those that came with hashtags), where it names C. The classifier, which
    has read those posts' hashtags, gives B 0.6 for them; for the rest it gives C 0.6, so only the source saves them."""
    from tagatlas.recommender.evidence import SourceEvidence

    n = 40
    probs = np.zeros((n, len(COORDS)))
    probs[:n_tagged, I_B], probs[:n_tagged, I_C] = 0.6, 0.4
    probs[n_tagged:, I_C], probs[n_tagged:, I_B] = 0.6, 0.4
    place = np.zeros_like(probs)
    place[:, I_B] = 1.0
    if not source_right_when_tagged:
        place[:n_tagged] = 0.0
        place[:n_tagged, I_C] = 1.0
    ev = _evidence(probs)
    ev.sources = {"synthetic_names": SourceEvidence(place=place)}
    ev.tagged = np.arange(n) < n_tagged
    posts = [Post(id=f"synthetic-{i}", text="x", lat=B[0], lon=B[1]) for i in range(n)]
    return ev, posts


def test_a_source_gets_its_own_share_for_posts_that_came_with_hashtags():
    """Tuned on the ingest setting, a source that misleads the posts carrying hashtags loses its share for them only;
    one that helps them keeps its posting-form share (no separate share is stored)."""
    from types import SimpleNamespace

    from tagatlas.recommender.fusion import place_distribution

    source = SimpleNamespace(name="synthetic_names", place_weights=(0.0, 0.5, 0.9), needs=frozenset())
    params = FusionParams(geo_alpha=1.0, source_place={"synthetic_names": 0.9})
    for right, expected in ((False, {"synthetic_names": 0.0}), (True, {})):
        ev, posts = _names_setting(20, source_right_when_tagged=right)
        tuning = _GeoTuning(ev, posts, PlaceAreas(COORDS), np.full(len(posts), -1), {})
        tuning.reference = tuning.references(params)
        chosen = tuning.tagged_shares(params, [source])
        assert chosen.source_place == params.source_place and chosen.source_place_tagged == expected
        probs = place_distribution(ev, chosen)
        assert (probs.argmax(axis=1) == I_B).all()  # every post placed right: the tagged by their classifier, the rest by the source
    # Posts without hashtags keep the posting-form share whatever the tagged one is.
    ev, _ = _names_setting(20, source_right_when_tagged=False)
    probs = place_distribution(ev, replace(params, source_place_tagged={"synthetic_names": 0.0}))
    assert np.allclose(probs[:20], ev.place_probs[:20]) and np.allclose(probs[20:, I_B], 0.1 * 0.4 + 0.9)


def test_a_geolocation_tuned_before_is_reused_as_it_was():
    """Training's name-trust search tunes the geolocation for the setting it keeps; fusion tuning then takes that result
    as it is: the same params and report as tuning again, and none of the other evidence's."""
    from tagatlas.recommender.tuning import tune_fusion

    ev, posts = _trade_off_queries()
    areas = PlaceAreas(COORDS)
    first = tune_fusion(ev, posts, areas, progress=False)
    again = tune_fusion(ev, posts, areas, progress=False)
    reused = tune_fusion(ev, posts, areas, progress=False, geo=first)
    assert reused[0] == again[0] == first[0] and reused[1] == again[1]
    flat = _evidence(np.full((len(posts), len(COORDS)), 1.0 / len(COORDS)))
    assert tune_fusion(flat, posts, areas, progress=False)[1]["geo"] != first[1]["geo"]  # other evidence tunes otherwise
    assert tune_fusion(flat, posts, areas, progress=False, geo=first)[1] == first[1]
