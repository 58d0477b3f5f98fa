"""Fusion rules on small synthetic evidence (made up here to pin the arithmetic down)."""

import numpy as np

from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, coordinates, decide_place, decision_confidence, label_in_area,
                                         place_distribution)
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.metrics import geo_metrics, tag_metrics

# Three synthetic places: two 20 km apart (a metro split in two), one far away.
COORDS = np.array([[34.05, -118.25], [33.95, -118.40], [40.71, -74.00]])
AREAS = PlaceAreas(COORDS)


def synthetic_evidence(place_probs, nb_class, nb_sims, nb_tags=None, habit=None, text=None):
    n, k = np.asarray(nb_class).shape
    tags = ["clf0", "clf1", "fresh", "mine", "word"]
    return Evidence(
        place_probs=np.asarray(place_probs, float), tag_probs=np.tile([[0.6, 0.1]], (n, 1)),
        nb_sims=np.asarray(nb_sims, float), nb_class=np.asarray(nb_class), nb_lat=COORDS[np.maximum(nb_class, 0), 0],
        nb_lon=COORDS[np.maximum(nb_class, 0), 1], nb_ids=[[f"n{j}" for j in range(k)] for _ in range(n)],
        nb_tags=nb_tags or [[[] for _ in range(k)] for _ in range(n)],
        habit_sims=[np.asarray(h[0]) for h in habit] if habit else [np.zeros(0)] * n,
        habit_tags=[h[1] for h in habit] if habit else [[]] * n, habit_ids=[["h"] * len(h[1]) for h in habit] if habit else [[]] * n,
        tags=tags, n_vocab=2, text_tags=text or [[] for _ in range(n)],
        text_prior=[np.ones(len(t)) for t in text] if text else [np.zeros(0) for _ in range(n)])


def test_alpha_blends_classifier_and_neighbour_vote():
    ev = synthetic_evidence([[0.1, 0.1, 0.8]], nb_class=[[0, 0, -1]], nb_sims=[[0.9, 0.9, -np.inf]])
    only_clf = place_distribution(ev, FusionParams(geo_alpha=1.0, geo_k=3))
    only_knn = place_distribution(ev, FusionParams(geo_alpha=0.0, geo_k=3))
    assert only_clf.argmax() == 2 and only_knn.argmax() == 0
    assert np.allclose(only_knn.sum(), 1.0) and np.allclose(place_distribution(ev, FusionParams(geo_alpha=0.5, geo_k=3)).sum(), 1.0)


def test_no_neighbours_falls_back_to_the_classifier():
    ev = synthetic_evidence([[0.2, 0.3, 0.5]], nb_class=[[-1, -1]], nb_sims=[[-np.inf, -np.inf]])
    assert np.allclose(place_distribution(ev, FusionParams(geo_alpha=0.0)), [[0.2, 0.3, 0.5]])


def test_bayes_decision_prefers_a_split_metro_over_a_lone_argmax():
    probs = np.array([[0.3, 0.3, 0.4]])
    assert decide_place(probs, FusionParams(decision_km=0), AREAS)[0] == 2
    chosen = decide_place(probs, FusionParams(decision_km=161), AREAS)
    assert chosen[0] in (0, 1)
    assert np.isclose(decision_confidence(probs, chosen, FusionParams(decision_km=161), AREAS)[0], 0.6)
    assert AREAS.near(161).toarray().astype(int).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert label_in_area(np.array([[0.25, 0.35, 0.4]]), np.array([0]), FusionParams(decision_km=161), AREAS)[0] == 1


def test_coordinates_come_from_neighbours_in_the_chosen_place():
    ev = synthetic_evidence([[0.9, 0.05, 0.05]], nb_class=[[0, 0, 2]], nb_sims=[[0.9, 0.8, 0.7]])
    ev.nb_lat[0, :2] = [34.10, 34.00]
    coords = coordinates(ev, FusionParams(geo_k=3), np.array([[0.9, 0.05, 0.05]]), COORDS)
    assert coords[0, 0] in (34.10, 34.00) and coords[0, 1] == COORDS[0, 1]


def test_tag_sources_add_up_and_new_tags_come_through_neighbours():
    ev = synthetic_evidence([[1, 0, 0]], nb_class=[[0, 0]], nb_sims=[[0.9, 0.9]], nb_tags=[[[2], [2]]],
                            habit=[([0.5], [[3]])], text=[[4]])
    p = FusionParams(tag_beta=0.5, habit_gamma=1.0, text_gamma=0.2, tag_k=2)
    scores, parts = tag_scores(ev, p)
    assert np.allclose(scores, sum(parts.values()))
    assert np.isclose(parts["neighbours"][0, 2], 0.5)  # a tag the classifier never saw
    assert np.isclose(parts["habits"][0, 3], 1.0) and np.isclose(parts["text"][0, 4], 0.2)
    assert np.isclose(parts["classifier"][0, 0], 0.3)
    order, keep = select_tags(scores, p)
    assert order[0, 0] == 3 and keep[0] == 5  # all positive scores kept (threshold 0)
    _, keep = select_tags(scores, FusionParams(tag_threshold=0.6))
    assert keep[0] == 1


def test_metrics_on_hand_checked_cases():
    m = tag_metrics([["a", "x"]], [["a", "x", "b"]], [["a", "b"]], [{"b"}])
    assert m["n"] == 1 and np.isclose(m["precision_at_5"], 0.5) and np.isclose(m["recall_at_5"], 0.5)
    assert np.isclose(m["f1_at_5"], 0.5) and m["hr_at_5"] == 1.0 and m["mrr"] == 1.0 and m["new_tag_hr_at_10"] == 1.0
    assert tag_metrics([["a"]], [["a"]], [[]])["n"] == 0
    g = geo_metrics([34.05, 40.71], [-118.25, -74.0], [34.05, 34.05], [-118.25, -118.25], ["la", "ny"], ["la", "la"])
    assert g["acc_place"] == 0.5 and g["acc_at_km"]["1"] == 0.5 and g["acc_at_km"]["2500"] == 0.5
    assert 3900 < g["mean_km"] / 0.5 < 4000


def test_habit_recency_decay_prefers_the_users_recent_tags():
    # Two equally similar past posts of the user: tag "mine" (id 3) a year ago, tag "word" (id 4) yesterday.
    ev = synthetic_evidence([[1.0, 0.0, 0.0]], nb_class=[[-1]], nb_sims=[[-np.inf]], habit=[([0.5, 0.5], [[3], [4]])])
    ev.habit_ages = [np.array([365.0, 1.0])]
    p = FusionParams(tag_beta=0.0, habit_gamma=1.0)
    flat = tag_scores(ev, p)[1]["habits"][0]
    assert flat[3] == flat[4] == 0.5  # no decay: similarity alone
    decayed = tag_scores(ev, FusionParams(tag_beta=0.0, habit_gamma=1.0, habit_half_life_days=30.0))[1]["habits"][0]
    assert decayed[4] > 0.99 and decayed[3] < 0.01 and np.isclose(decayed.sum(), 1.0)
    ev.habit_ages = [np.array([0.0, 0.0])]  # unknown times: no decay either way
    assert np.allclose(tag_scores(ev, FusionParams(tag_beta=0.0, habit_gamma=1.0, habit_half_life_days=30.0))[1]["habits"][0], flat)


def test_ranked_columns_equals_a_full_sort_with_ties_by_name():
    """Synthetic scores with many exact ties (and ties after rounding to 6 decimals): the partial ranking
    must give the first m columns of the full lexsort, row by row."""
    from tagatlas.recommender.tag_fusion import ranked_columns

    rng = np.random.default_rng(3)
    scores = np.round(rng.random((40, 600)) ** 4, 3)  # many equal values, many near 0
    scores[:5] = 0.0  # rows with no positive score at all
    scores[5:10, :15] = 0.5 + 1e-8 * rng.random((5, 15))  # equal after rounding to 6 decimals
    name_rank = np.broadcast_to(rng.permutation(600), scores.shape)
    for m in (1, 5, 20, 200):
        full = np.lexsort((name_rank, -np.round(scores, 6)), axis=-1)[:, :m]
        assert np.array_equal(ranked_columns(scores, name_rank, m), full)


def test_a_zero_weight_source_is_all_zeros_and_the_rest_unchanged():
    ev = synthetic_evidence([[1, 0, 0]], nb_class=[[0, 0]], nb_sims=[[0.9, 0.9]], nb_tags=[[[2], [2, 4]]],
                            habit=[([0.5], [[3]])], text=[[4]])
    on = FusionParams(tag_beta=0.5, habit_gamma=1.0, text_gamma=0.2, tag_k=2)
    off = FusionParams(tag_beta=0.5, habit_gamma=1.0, text_gamma=0.0, tag_k=2)
    scores_on, parts_on = tag_scores(ev, on)
    scores_off, parts_off = tag_scores(ev, off)
    assert parts_off["text"].shape == scores_off.shape and not parts_off["text"].any()
    assert np.allclose(scores_on - parts_on["text"], scores_off)
    assert np.isclose(parts_on["neighbours"][0, 2], 0.5) and np.isclose(parts_on["neighbours"][0, 4], 0.25)  # tag lists vote, duplicates add


def test_coordinates_lie_at_the_place_named_first_not_at_the_centre_of_the_area_decided():
    """Synthetic line of places 44 km apart: the area around B holds the most mass, A is its most probable place.
    The answer names A and its coordinates are A's (they used to be B's: a caption named New Orleans was placed
    near Baton Rouge)."""
    from tagatlas.recommender import Geolocator

    coords = np.array([[30.0, -90.0], [30.4, -90.0], [30.8, -90.0], [45.0, 10.0]])  # A, B, D on a line; C far away
    geo = Geolocator.of_classes(["A", "B", "D", "C"], ["A", "B", "D", "C"], coords)
    ev = synthetic_evidence([[0.35, 0.10, 0.30, 0.25]], nb_class=[[-1]], nb_sims=[[-np.inf]])
    decided = geo.decide(ev, FusionParams(geo_alpha=1.0, decision_km=50.0, neighbour_coords=False))
    assert decided.label.tolist() == [0]  # A: the most probable place within 50 km of B, the area with most mass
    assert decided.coords[0].tolist() == coords[0].tolist()


def test_plug_in_sources_mix_in_their_order_and_the_last_one_has_the_final_say():
    """Each source in turn takes its share of what the sources before it left (the order is the model's `evidence`
    list, which tuning follows too): with shares a then b, the base keeps (1 - a)(1 - b), the first source a(1 - b),
    the last b; a source with share 1 replaces all before it. A source with no opinion on a post leaves it alone."""
    from tagatlas.recommender.evidence import SourceEvidence

    ev = synthetic_evidence([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], nb_class=[[-1], [-1]], nb_sims=[[-np.inf], [-np.inf]])
    first = SourceEvidence(place=np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    last = SourceEvidence(place=np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))  # no opinion on the second post
    ev.sources = {"first": first, "last": last}
    mixed = place_distribution(ev, FusionParams(source_place={"first": 0.5, "last": 0.4}))
    assert np.allclose(mixed, [[0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
    ev.sources = {"last": last, "first": first}  # the other order: the same shares, another mixture
    assert np.allclose(place_distribution(ev, FusionParams(source_place={"first": 0.5, "last": 0.4})), [[0.3, 0.5, 0.2], [0.5, 0.5, 0.0]])
    ev.sources = {"first": first, "last": last}
    assert np.allclose(place_distribution(ev, FusionParams(source_place={"first": 0.5, "last": 1.0}))[0], [0.0, 0.0, 1.0])
