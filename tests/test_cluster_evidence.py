"""Cluster-mates as evidence (graph issue, item 6): the per-cluster profiles, their fusion, and the model's use of them.

Unit parts run on synthetic tables (named so); the model parts on the session model trained on real tweets.
"""

import numpy as np
import pytest

from tagatlas.recommender.clusters import ClusterProfiles, assign_clusters
from tagatlas.recommender.evidence import SourceEvidence
from tagatlas.recommender.fusion import Evidence, FusionParams, place_distribution
from tagatlas.recommender.tag_fusion import tag_scores
from tagatlas.recommender.neighbours import NeighbourTable


def synthetic_table() -> NeighbourTable:
    """Six synthetic rows: place classes 0/0/1/1/2/-1 (last without a place), a few tags."""
    table = NeighbourTable(lambda places, lat, lon: np.array([-1 if p is None else int(p) for p in places]), ["a", "b", "c"])
    table.add(list(range(6)), [f"synthetic-{i}" for i in range(6)], [0.0] * 6, [0.0] * 6,
              ["0", "0", "1", "1", "2", None], [["a"], ["a", "b"], ["b"], ["a", "new"], [], ["new"]])
    return table


def test_profiles_count_mates_leave_the_post_out_and_follow_moves_and_removals():
    table = synthetic_table()
    profiles = ClusterProfiles(min_mates=2)
    profiles.add([0, 1, 2, 3], [7, 7, 7, 9], table)
    place, tags, shares = profiles.evidence(np.array([7, 9, -1]), [None, None, None], table, n_classes=3)
    assert np.allclose(place[0], [2 / 3, 1 / 3, 0])  # cluster 7: two posts in place 0, one in place 1
    assert [table.tags[t] for t in tags[0]] == ["a", "b"] and np.allclose(shares[0], [2 / 3, 2 / 3])
    assert not place[1].any() and tags[1] == []  # cluster 9 has one post: fewer mates than min_mates
    assert not place[2].any() and tags[2] == []  # no cluster
    # a post already in cluster 7 does not count as its own mate
    place, tags, shares = profiles.evidence(np.array([7]), [1], table, n_classes=3)
    assert np.allclose(place[0], [0.5, 0.5, 0]) and [table.tags[t] for t in tags[0]] == ["a", "b"] and np.allclose(shares[0], [0.5, 0.5])
    # row 2 moves to cluster 9, row 5 (no place, a tag outside the vocabulary) joins it; row 0 is removed
    profiles.add([2, 5], [9, 9], table)
    profiles.remove([0], table)
    place, tags, shares = profiles.evidence(np.array([7, 9]), [None, None], table, n_classes=3)
    assert not place[0].any()  # cluster 7 is down to one post
    assert np.allclose(place[1], [0, 1, 0])  # rows 2 and 3 in place 1; row 5 has no place
    assert dict(zip((table.tags[t] for t in tags[1]), shares[1])) == pytest.approx({"new": 2 / 3, "a": 1 / 3, "b": 1 / 3})


def evidence_with_cluster(cluster_place, cluster_tags, cluster_share) -> Evidence:
    """One synthetic post, no neighbours: classifier says place 0 and tag 0."""
    n = len(cluster_place)
    return Evidence(np.tile([[0.8, 0.2, 0.0]], (n, 1)), np.tile([[0.6, 0.0]], (n, 1)), np.full((n, 1), -np.inf), np.full((n, 1), -1),
                    np.full((n, 1), np.nan), np.full((n, 1), np.nan), [[] for _ in range(n)], [[] for _ in range(n)],
                    [np.zeros(0)] * n, [[] for _ in range(n)], [[] for _ in range(n)], ["t0", "t1", "t2"], 2,
                    sources={"cluster": SourceEvidence(np.asarray(cluster_place, float), cluster_tags, cluster_share)})


def test_fusion_mixes_cluster_mates_in_only_where_a_post_has_them_and_by_the_tuned_weight():
    ev = evidence_with_cluster([[0, 0, 1.0], [0, 0, 0]], [[2], []], [np.array([0.9]), np.zeros(0)])
    assert np.allclose(place_distribution(ev, FusionParams(geo_alpha=1.0)), [[0.8, 0.2, 0], [0.8, 0.2, 0]])  # weight 0: unchanged
    mixed = place_distribution(ev, FusionParams(geo_alpha=1.0, source_place={"cluster": 0.5}))
    assert np.allclose(mixed, [[0.4, 0.1, 0.5], [0.8, 0.2, 0]]) and np.allclose(mixed.sum(axis=1), 1)
    scores, parts = tag_scores(ev, FusionParams(tag_beta=1.0, source_tags={"cluster": 1.0}))
    assert scores[0].argmax() == 2 and parts["cluster"][0, 2] == pytest.approx(0.9)  # a tag the classifier does not know
    assert scores[1].argmax() == 0 and not parts["cluster"][1].any()
    assert not tag_scores(ev, FusionParams(tag_beta=1.0))[1]["cluster"].any()


def test_trained_model_clusters_and_its_cluster_evidence_ignores_the_query_location(model_dir, tmp_path):
    """Training built clusters (train --cluster-k, default 10); the evidence for a query comes from its content alone,
    so a location or hashtags left on a query (as evaluation leaves them for scoring) cannot leak into its prediction."""
    import shutil
    from dataclasses import replace

    from tagatlas.data import Post
    from tagatlas.recommender import TagAtlas

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    m = TagAtlas.load(folder, writable_store=True)
    assert m.graph_ is not None and m.posts_.store.clusters.sizes()
    assert {"source_place", "source_tags"} <= set(m.fusion_.to_dict())
    assert "cluster" in m.tuning_["hashtags"]["f1_by_source"]
    m.fusion_ = replace(m.fusion_, source_place={"cluster": 0.2}, source_tags={"cluster": 0.5})  # whatever validation chose here
    text = "snow storm closing schools again"
    bare = m.evidence([Post(id="q1", text=text)])
    told = m.evidence([Post(id="q1", text=text, lat=-33.9, lon=151.2, hashtags=["sydney"])])
    bare_c, told_c = bare.sources["cluster"], told.sources["cluster"]
    assert bare_c.place is not None and bare_c.place.any()
    assert np.array_equal(bare_c.place, told_c.place) and bare_c.tag_ids == told_c.tag_ids
    # a post indexed online joins its cluster's profile at once, as a rebuild from the store would count it
    m.evidence([Post(id="warm", text=text)])
    pred = m.ingest.predict_and_add([Post(id="synthetic-mate", text=text, hashtags=["synthsnowmate"], lat=42.36, lon=-71.06)])[0]
    followed = m.posts_._profiles
    rebuilt = ClusterProfiles().load(m.posts_.store, m.posts_.table())
    assert followed.generation == rebuilt.generation and +followed.sizes == +rebuilt.sizes
    assert followed.tags[int(pred.cluster)] == rebuilt.tags[int(pred.cluster)]
    assert followed.tags[int(pred.cluster)][m.posts_.table().tag_id["synthsnowmate"]] == 1
    # and leaves it when deleted
    m.delete(["synthetic-mate"])
    assert m.posts_._profiles is followed and followed.tags[int(pred.cluster)][m.posts_.table().tag_id["synthsnowmate"]] == 0
    assert +followed.sizes == +ClusterProfiles().load(m.posts_.store, m.posts_.table()).sizes


def test_cluster_assignment_reads_the_index_search_and_agrees_with_the_graphs_own(model_dir, tweets_path):
    """The recommender's content vote reuses its own index search (no second search over the graph's copy)."""
    import itertools

    from tagatlas.data import read_posts
    from tagatlas.recommender import TagAtlas

    m = TagAtlas.load(model_dir)
    assert m.graph_.ids_ is not None and len(m.graph_.ids_) == len(m.graph_.labels_)
    posts = [p.model_copy(update={"lat": None, "lon": None, "hashtags": []})
             for p in itertools.islice(read_posts(tweets_path), 2600, 2800)]  # real tweets after the training subset
    reused = m.evidence(posts).assigned_clusters[0]
    own = assign_clusters(m.graph_, posts, m.embed(posts))[0]
    assert (reused >= 0).mean() > 0.9 and (reused == own).mean() >= 0.97
