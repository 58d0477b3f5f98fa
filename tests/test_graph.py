"""Graph clustering with missing modalities, on synthetic data (named so): planted clusters in two views."""

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score as nmi

from tagatlas.graph import GraphClusterer, Modality, cross_view_agreement, knn_graph, leiden, node_confidence


def synthetic_views(n_per=40, n_clusters=4, dim=16, noise=0.35, seed=0):
    """Two synthetic views of the same planted clusters (cluster centres differ per view)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_clusters), n_per)
    views = []
    for _ in range(2):
        centres = rng.standard_normal((n_clusters, dim))
        views.append(centres[truth] + noise * rng.standard_normal((len(truth), dim)))
    return truth, views


def test_knn_graph_is_symmetric_and_missing_posts_have_no_edges():
    truth, (a, _) = synthetic_views()
    present = np.ones(len(a), bool)
    present[:10] = False
    g = knn_graph(a, present, k=5)
    assert (abs(g - g.T) > 1e-6).nnz == 0
    assert g[:10].nnz == 0 and g[:, :10].nnz == 0
    assert g.diagonal().sum() == 0
    assert (np.diff(g[10:].indptr) >= 5).all()  # every present post has its k neighbours (or more, by symmetry)


def test_leiden_recovers_planted_clusters_and_is_deterministic():
    truth, (a, _) = synthetic_views()
    g = knn_graph(a, k=8)
    labels = leiden(g, seed=3)
    assert nmi(truth, labels) > 0.9
    assert (leiden(g, seed=3) == labels).all()


def test_isolated_nodes_are_singletons_and_confidence_is_zero():
    truth, (a, _) = synthetic_views()
    present = np.ones(len(a), bool)
    present[[0, 5]] = False
    g = knn_graph(a, present, k=8)
    labels = leiden(g)
    assert (labels == labels[0]).sum() == 1 and (labels == labels[5]).sum() == 1
    conf = node_confidence(g, labels)
    assert conf[0] == 0 and conf[5] == 0 and conf[present].mean() > 0.8


@pytest.mark.parametrize("fusion", ["late", "early"])
def test_posts_missing_one_view_are_still_clustered_through_the_other(fusion):
    truth, (a, b) = synthetic_views()
    rng = np.random.default_rng(1)
    no_a = rng.random(len(truth)) < 0.4  # these posts have no "image", say
    no_b = ~no_a & (rng.random(len(truth)) < 0.4)  # these no "text"; none lacks both
    model = GraphClusterer(k=8, fusion=fusion).fit({"a": Modality(a, ~no_a), "b": Modality(b, ~no_b)})
    assert nmi(truth, model.labels_) > 0.85
    assert nmi(truth[no_a], model.labels_[no_a]) > 0.8
    shares = model.contributions()
    if fusion == "late":
        assert (shares["a"][no_a] == 0).all() and np.allclose(shares["b"][no_a], 1)


def test_naive_concatenation_splits_clusters_by_missing_pattern_and_fusion_does_not():
    truth, (a, b) = synthetic_views()
    rng = np.random.default_rng(1)
    no_a = rng.random(len(truth)) < 0.4
    no_b = ~no_a & (rng.random(len(truth)) < 0.4)
    views = {"a": Modality(a, ~no_a), "b": Modality(b, ~no_b)}
    concat = GraphClusterer(k=8, fusion="concat").fit(views).labels_
    late = GraphClusterer(k=8, fusion="late").fit(views).labels_
    early = GraphClusterer(k=8, fusion="early").fit(views).labels_
    assert nmi(truth, late) > nmi(truth, concat) + 0.1 and nmi(truth, early) > nmi(truth, concat) + 0.1


def test_late_fusion_trusts_the_reliable_view_over_a_noisy_one():
    truth, (a, _) = synthetic_views(noise=0.3)
    noise = np.random.default_rng(2).standard_normal(a.shape)  # a view with no cluster structure at all
    late = GraphClusterer(k=8, fusion="late").fit({"good": Modality(a), "noise": Modality(noise)})
    assert late.modality_confidence_["good"] > late.modality_confidence_["noise"]
    assert nmi(truth, late.labels_) > 0.8


def test_agreement_confidence_weighs_a_view_no_other_confirms_least():
    """Synthetic (named so): two views of the same planted clusters and a third with tidy clusters of its own
    that cut across them (photos alike across places). Modularity trusts the tidy third view; cross-view
    agreement does not, and the fused clustering follows the two views that agree."""
    truth, (a, b) = synthetic_views(n_per=50, noise=1.0)
    rng = np.random.default_rng(3)
    other = rng.permutation(truth)  # a different, equally clean partition
    tidy = np.eye(4, 16)[other] * 3 + 0.2 * rng.standard_normal((len(truth), 16))
    views = {"a": Modality(a), "b": Modality(b), "tidy": Modality(tidy)}
    agree = GraphClusterer(k=8, confidence="agreement").fit(views)
    modular = GraphClusterer(k=8).fit(views)
    conf = agree.modality_confidence_
    assert conf["tidy"] < 0.5 * min(conf["a"], conf["b"])
    assert modular.modality_confidence_["tidy"] >= max(modular.modality_confidence_["a"], modular.modality_confidence_["b"])
    assert nmi(truth, agree.labels_) > 0.9 > 0.5 > nmi(truth, modular.labels_)
    assert cross_view_agreement(knn_graph(a, k=8), []) == 1.0


def test_incremental_assignment_agrees_with_the_full_clustering():
    truth, (a, b) = synthetic_views(n_per=50)
    rng = np.random.default_rng(4)
    new = rng.random(len(truth)) < 0.15
    fitted = GraphClusterer(k=8).fit({"a": Modality(a[~new]), "b": Modality(b[~new])})
    assigned = fitted.assign({"a": Modality(a[new]), "b": Modality(b[new])})
    full = GraphClusterer(k=8).fit({"a": Modality(a), "b": Modality(b)}).labels_
    # same partition up to renaming: map each fitted cluster to the full clustering's label of its members
    mapping = {c: np.bincount(full[~new][fitted.labels_ == c]).argmax() for c in np.unique(fitted.labels_)}
    agree = np.mean([mapping[c] == f for c, f in zip(assigned, full[new])])
    assert agree >= 0.95
    # a post with only one view present is still assigned; with none, it is -1
    one_view = fitted.assign({"a": Modality(a[new][:3]), "b": Modality(np.zeros_like(b[new][:3]))})
    assert (one_view >= 0).all()
    none = fitted.assign({"a": Modality(np.zeros_like(a[:2]))})
    assert (none == -1).all()


@pytest.mark.parametrize("fusion", ["late", "early"])
@pytest.mark.parametrize("missing", ["image", "text"])
def test_a_new_post_without_one_view_is_assigned_as_a_full_rebuild_would_cluster_it(fusion, missing):
    """Seed 002's setting on synthetic posts (named so): three views of planted clusters, some fitted posts
    already lack a view; new posts arrive without their photo (or without text). Their incremental
    assignment must agree with the clusters a rebuild on every post (the new ones missing that view) gives."""
    rng = np.random.default_rng(11)
    truth = np.repeat(np.arange(5), 60)
    views = {name: np.eye(5, 24, k=3 * i)[truth] * 2 + 0.45 * rng.standard_normal((len(truth), 24))
             for i, name in enumerate(("text", "image", "hashtags"))}
    present = {name: rng.random(len(truth)) >= 0.3 for name in views}  # 30 % of each view missing already
    new = rng.random(len(truth)) < 0.15
    present[missing][new] = False  # the new posts come without this view
    fitted = GraphClusterer(k=8, fusion=fusion).fit({n: Modality(v[~new], present[n][~new]) for n, v in views.items()})
    assigned = fitted.assign({n: Modality(np.where(present[n][new, None], v[new], 0)) for n, v in views.items()})
    rebuilt = GraphClusterer(k=8, fusion=fusion).fit({n: Modality(v, present[n]) for n, v in views.items()}).labels_
    mapping = {c: np.bincount(rebuilt[~new][fitted.labels_ == c]).argmax() for c in np.unique(fitted.labels_)}
    placeable = np.any(np.stack([present[n][new] for n in views]), axis=0)
    assert (assigned[~placeable] == -1).all()
    agree = np.mean([mapping.get(c, -2) == r for c, r in zip(assigned[placeable], rebuilt[new][placeable])])
    assert agree >= 0.9, agree
    assert nmi(truth[new][placeable], assigned[placeable]) > 0.8


@pytest.mark.parametrize("fusion,options", [("late", {}), ("early", {}), ("late", {"edge_weights": "random-walk", "confidence": "node"})])
def test_save_load_round_trip(tmp_path, fusion, options):
    truth, (a, b) = synthetic_views()
    missing = np.arange(len(a)) % 3 == 0
    model = GraphClusterer(k=8, seed=5, fusion=fusion, **options).fit({"a": Modality(a, ~missing), "b": Modality(b)})
    model.save(tmp_path / "g")
    loaded = GraphClusterer.load(tmp_path / "g")
    assert (loaded.labels_ == model.labels_).all() and loaded.modality_confidence_ == model.modality_confidence_
    assert all(getattr(loaded, name) == value for name, value in options.items())
    assert (loaded.assign({"a": Modality(a[:20])}) == model.assign({"a": Modality(a[:20])})).all()


def test_edge_weightings_put_views_on_one_scale_whatever_their_similarities():
    """Scaling a view's graph by a constant (a view whose similarities are all near 1, like coordinates) leaves
    the mean, random-walk and normalised weights unchanged; raw cosine weights scale with it."""
    from tagatlas.graph.multimodal import EDGE_WEIGHTS

    truth, (a, _) = synthetic_views()
    g = knn_graph(a, k=6)
    for name, weigh in EDGE_WEIGHTS.items():
        once, doubled = weigh(g), weigh(2 * g)
        assert (abs(once - once.T) > 1e-6).nnz == 0, name
        assert (abs(doubled - once) > 1e-6).nnz == (0 if name != "cosine" else once.nnz), name
    walk = EDGE_WEIGHTS["random-walk"](g)
    assert np.asarray(walk.sum()) == pytest.approx(len(a))  # each node hands out one unit of weight


@pytest.mark.parametrize("edge_weights", ["cosine", "mean", "random-walk", "normalised"])
@pytest.mark.parametrize("confidence", ["node*modularity", "node", "none"])
def test_every_late_fusion_option_clusters_partial_views_deterministically(edge_weights, confidence):
    truth, (a, b) = synthetic_views()
    a_present = np.arange(len(a)) % 3 != 0
    b_present = np.arange(len(a)) % 3 != 1
    b_present[:2] = a_present[:2] = False  # two posts with no view at all
    views = {"a": Modality(a, a_present), "b": Modality(b, b_present)}
    model = GraphClusterer(k=8, seed=1, edge_weights=edge_weights, confidence=confidence).fit(views)
    again = GraphClusterer(k=8, seed=1, edge_weights=edge_weights, confidence=confidence).fit(views)
    assert (model.labels_ == again.labels_).all()
    assert len(set(model.labels_[:2])) == 2 and (np.bincount(model.labels_)[model.labels_[:2]] == 1).all()
    assert nmi(truth[2:], model.labels_[2:]) > 0.8
    if confidence != "node*modularity":
        assert set(model.modality_confidence_.values()) == {1.0}


def test_bad_input_is_refused_with_a_reason():
    truth, (a, b) = synthetic_views()
    with pytest.raises(ValueError, match="disagree"):
        GraphClusterer().fit({"a": Modality(a), "b": Modality(b[:10])})
    with pytest.raises(ValueError, match="fusion"):
        GraphClusterer(fusion="middle").fit({"a": Modality(a)})
    with pytest.raises(ValueError, match="edge_weights"):
        GraphClusterer(edge_weights="softmax").fit({"a": Modality(a)})
    with pytest.raises(ValueError, match="confidence"):
        GraphClusterer(confidence="trust-me").fit({"a": Modality(a)})
    with pytest.raises(ValueError, match="not seen"):
        GraphClusterer(k=5).fit({"a": Modality(a)}).assign({"z": Modality(a)})


def test_trend_detection_flags_the_cluster_that_grew_and_is_deterministic():
    """Synthetic stream: 5 clusters post steadily for 14 days; cluster 3 triples on the last day."""
    from tagatlas.graph import detect_trends

    rng = np.random.default_rng(0)
    day = 86_400.0
    clusters, times = [], []
    for c in range(5):
        for d in range(15):
            n = rng.poisson(10 if not (c == 3 and d == 14) else 35)
            clusters += [c] * n
            times += list((d + rng.random(n)) * day)
    now = 15 * day
    trends = detect_trends(np.array(clusters), np.array(times), now=now)
    assert [t.cluster for t in trends] == [3]
    assert trends[0].recent > 2 * trends[0].expected
    assert detect_trends(np.array(clusters), np.array(times), now=now) == trends
    # a brand-new cluster with a burst is a trend; a tiny one is not
    new = detect_trends(np.array(clusters + [9] * 30 + [8] * 2), np.array(times + [now - 100.0] * 32), now=now)
    assert 9 in [t.cluster for t in new] and 8 not in [t.cluster for t in new]
    with pytest.raises(ValueError):
        detect_trends(np.array([1, 2]), np.array([1.0]))


def test_assignment_from_neighbours_found_elsewhere_equals_its_own_search(tmp_path):
    """The recommender hands over its own index search (ids it chose, other posts mixed in): same votes, no second search."""
    truth, (a, b) = synthetic_views(n_per=50)
    rng = np.random.default_rng(7)
    new = rng.random(len(truth)) < 0.2
    ids = np.arange(len(truth))[~new] * 3 + 5  # the caller's ids of the fitted posts
    fitted = GraphClusterer(k=8).fit({"a": Modality(a[~new]), "b": Modality(b[~new])}, ids=ids)
    queries = {"a": Modality(a[new]), "b": Modality(b[new])}
    # the caller's search over everything it holds: fitted posts under their ids, plus unfitted ones (ids 1, 2 mod 3)
    everything = np.vstack([a[~new], a[new]])
    everything /= np.linalg.norm(everything, axis=1, keepdims=True)
    all_ids = np.concatenate([ids, np.arange(new.sum()) * 3 + 7])
    q = a[new] / np.linalg.norm(a[new], axis=1, keepdims=True)
    sims = q @ everything.T
    order = np.argsort(-sims, axis=1)[:, :30]
    found = (np.take_along_axis(sims, order, 1), all_ids[order])
    own, own_shares = fitted.assign_with_contributions(queries)
    reused, reused_shares = fitted.assign_with_contributions(queries, neighbours={"a": found})
    assert (own == reused).all()
    assert all(np.allclose(own_shares[n], reused_shares[n], atol=1e-5) for n in own_shares)
    # the ids travel with the saved graph
    fitted.save(tmp_path / "g")
    loaded = GraphClusterer.load(tmp_path / "g")
    assert (loaded.ids_ == ids).all() and (loaded.assign_with_contributions(queries, neighbours={"a": found})[0] == own).all()
    with pytest.raises(ValueError, match="ids"):
        GraphClusterer().fit({"a": Modality(a)}, ids=np.arange(3))
