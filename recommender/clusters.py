"""Clusters of indexed posts (tagatlas.graph) as the recommender uses them: built from the store,
saved in the model folder, assigned to new and query posts without a rebuild."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel
from sklearn.feature_extraction.text import HashingVectorizer

from tagatlas.graph import GraphClusterer, Modality, detect_trends

if TYPE_CHECKING:
    from tagatlas.index import PostStore
    from tagatlas.recommender.model import TagAtlas
    from tagatlas.recommender.neighbours import NeighbourTable

_TAGS = HashingVectorizer(n_features=512, alternate_sign=False, analyzer=lambda tags: tags, norm="l2")


def post_modalities(vectors: np.ndarray, hashtags: list[list[str]], lats: list, lons: list) -> dict[str, Modality]:
    """The views a post offers: `content` (its index vector: text and image fused), `hashtags` (hashed bag)
    and `location` (unit vector of its coordinates); an absent view is marked missing."""
    vectors = np.asarray(vectors, np.float32)
    if any(hashtags):
        tag_vectors = _TAGS.transform([list(t) for t in hashtags]).toarray().astype(np.float32)
    else:  # the common query (a caption being written): no hashing call for an all-zero block
        tag_vectors = np.zeros((len(hashtags), _TAGS.n_features), np.float32)
    has_loc = np.array([la is not None and lo is not None for la, lo in zip(lats, lons)], bool)
    lat = np.radians(np.where(has_loc, [la or 0.0 for la in lats], 0.0))
    lon = np.radians(np.where(has_loc, [lo or 0.0 for lo in lons], 0.0))
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).astype(np.float32)
    return {"content": Modality(vectors, np.abs(vectors).sum(axis=1) > 0),
            "hashtags": Modality(tag_vectors, np.array([bool(t) for t in hashtags])),
            "location": Modality(xyz, has_loc)}


def assign_clusters(graph: GraphClusterer | None, posts: list, vectors: np.ndarray, content_only: bool = False,
                    found: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Clusters of `graph` for posts not in its clustering (queries, online adds), from their index `vectors`, with
    each view's share: -1 where unclustered (or no graph). `content_only`: from the index vector alone, ignoring the
    posts' hashtags and locations. `found`: (similarities, rowids) of the posts' nearest indexed posts, best first, from
    the index search already made for them: the content vote reads them instead of searching the graph's copy again."""
    if graph is None or not posts:
        return np.full(len(posts), -1), [{} for _ in posts]
    views = post_modalities(vectors, [p.hashtags for p in posts], [p.lat for p in posts], [p.lon for p in posts])
    if content_only:
        views = {"content": views["content"]}
    labels, shares = graph.assign_with_contributions(views, neighbours=None if found is None else {"content": found})
    return labels, [{name: round(float(v[i]), 4) for name, v in shares.items()} for i in range(len(posts))]


def build_clusters(model: "TagAtlas", k: int = 10, resolution: float = 1.0, fusion: str = "late", seed: int = 0,
                   progress: bool = False, edge_weights: str = "cosine", confidence: str = "node*modularity") -> GraphClusterer:
    """Cluster every stored post and record each one's cluster and per-modality contributions in the store."""
    rowids, hashtags, lats, lons, vectors = [], [], [], [], []
    for ids, posts, vecs in model.posts_.store.iter_all():
        rowids.extend(ids)
        hashtags.extend(p.hashtags for p in posts)
        lats.extend(p.lat for p in posts)
        lons.extend(p.lon for p in posts)
        vectors.append(vecs)
    if not rowids:
        raise ValueError("the store holds no posts to cluster")
    graph = GraphClusterer(k=k, resolution=resolution, fusion=fusion, seed=seed, progress=progress,
                           edge_weights=edge_weights, confidence=confidence)
    graph.fit(post_modalities(np.concatenate(vectors), hashtags, lats, lons), ids=np.asarray(rowids, np.int64))
    shares = graph.contributions()
    model.posts_.store.clusters.record(rowids, graph.labels_.tolist(),
                                       [{name: round(float(shares[name][i]), 4) for name in graph.names_} for i in range(len(rowids))],
                                       replace_all=True)
    return graph


class ClusterProfiles:
    """Per cluster, how many of its posts lie in each place class and carry each tag: what a post's
    cluster-mates say about it, a coarser neighbourhood than its k nearest posts (graph issue, item 6).

    Derived from the store's clusters and the neighbour table (place classes, tag ids); like the table it
    is rebuilt when the store moved on without it and follows the model's own adds and deletes in place,
    so an online post counts for its cluster at once without an O(posts) rebuild per write.
    """

    def __init__(self, min_mates: int = 3):
        self.min_mates = min_mates  # fewer cluster-mates than this (after leaving the post itself out): no evidence
        self.sizes: Counter = Counter()
        self.places: dict[int, Counter] = defaultdict(Counter)
        self.tags: dict[int, Counter] = defaultdict(Counter)
        self.cluster_of: dict[int, int] = {}  # rowid → cluster
        self.generation = -1

    def load(self, store: "PostStore", table: "NeighbourTable") -> "ClusterProfiles":
        self.generation = store.generation()
        rowids, clusters, _ = store.clusters.members()
        known = table.lookup(rowids)
        self.add(rowids[known].tolist(), clusters[known].tolist(), table)
        return self

    def add(self, rowids: Sequence[int], clusters: Sequence[int], table: "NeighbourTable") -> None:
        """Count rows (already in `table`) for their clusters; a row counted before moves to its new cluster."""
        for r, c in zip(rowids, clusters):
            if r in self.cluster_of:
                self._count(r, self.cluster_of.pop(r), table, -1)
            self.cluster_of[r] = int(c)
            self._count(r, int(c), table, +1)

    def remove(self, rowids: Sequence[int], table: "NeighbourTable") -> None:
        """Uncount rows; call before `table` forgets them."""
        for r in rowids:
            c = self.cluster_of.pop(int(r), None)
            if c is not None:
                self._count(int(r), c, table, -1)

    def _count(self, r: int, c: int, table: "NeighbourTable", sign: int) -> None:
        self.sizes[c] += sign
        if table.cls[r] >= 0:
            self.places[c][int(table.cls[r])] += sign
        for t in table.row_tags[r]:
            self.tags[c][t] += sign

    def _mates(self, c: int, own: int | None, table: "NeighbourTable") -> tuple[int, Counter, Counter]:
        """(number of mates, their place classes, their tags) in cluster `c`, leaving out the post's own row."""
        size = self.sizes.get(c, 0)
        if c < 0 or size <= 0:
            return 0, Counter(), Counter()
        places, tags = self.places.get(c, Counter()), self.tags.get(c, Counter())
        if own is not None and self.cluster_of.get(own) == c:  # leave the post itself out
            size -= 1
            places, tags = Counter(places), Counter(tags)
            if table.cls[own] >= 0:
                places[int(table.cls[own])] -= 1
            tags.subtract(table.row_tags[own])
        return size, places, tags

    def evidence(self, labels: np.ndarray, own_rows: Sequence[int | None], table: "NeighbourTable", n_classes: int,
                 top_tags: int = 20) -> tuple[np.ndarray, list[list[int]], list[np.ndarray]]:
        """Per post of a batch, from the cluster it was assigned (`labels`, -1: none): the share of its
        cluster-mates in each place class (n, C; rows sum to 1, or 0 without evidence), and its cluster's
        `top_tags` most frequent tags (ids of the neighbour table) with the share of mates carrying each.
        `own_rows`: the post's own rowid when it is itself indexed, so it never counts as its own mate."""
        n = len(labels)
        place = np.zeros((n, n_classes))
        tag_ids: list[list[int]] = [[] for _ in range(n)]
        tag_shares: list[np.ndarray] = [np.zeros(0) for _ in range(n)]
        for i, c in enumerate(np.asarray(labels).tolist()):
            size, places, tags = self._mates(c, own_rows[i], table)
            if size < self.min_mates:
                continue
            seen = [(k, v) for k, v in places.items() if v > 0 and k < n_classes]
            if seen:
                cls, counts = zip(*seen)
                place[i, list(cls)] = np.array(counts, dtype=float) / sum(counts)
            best = [(t, v) for t, v in tags.most_common(top_tags + 8) if v > 0][:top_tags]
            if best:
                tag_ids[i] = [t for t, _ in best]
                tag_shares[i] = np.array([v for _, v in best], dtype=float) / size
        return place, tag_ids, tag_shares


class TrendReport(BaseModel):
    """A trending cluster with what it is about."""

    cluster: str
    recent_posts: int
    expected_posts: float
    z: float
    top_hashtags: list[tuple[str, int]]
    top_places: list[tuple[str, int]]
    example_post_ids: list[str]


def trending(model: "TagAtlas", now: float | None = None, window_s: float = 86_400.0, history_windows: int = 14,
             min_posts: int = 5, z_threshold: float = 3.0, top: int = 5) -> list[TrendReport]:
    """Clusters of the store whose last window grew abnormally (tagatlas.graph.detect_trends), described by
    their recent posts' most frequent hashtags and places."""
    rowids, clusters, times = model.posts_.store.clusters.members()
    trends = detect_trends(clusters, times, now=now, window_s=window_s, history_windows=history_windows,
                           min_posts=min_posts, z_threshold=z_threshold)
    end = now if now is not None else (float(times.max()) if len(times) else 0.0)
    reports = []
    for t in trends:
        members = rowids[(clusters == t.cluster) & (times > end - window_s) & (times <= end)]
        posts = model.posts_.store.get(members.tolist())
        tags = Counter(tag for p in posts.values() for tag in set(p.hashtags))
        places = Counter(model.geolocator_.place_name(p.place) for p in posts.values() if p.place)
        reports.append(TrendReport(cluster=str(t.cluster), recent_posts=t.recent, expected_posts=round(t.expected, 2), z=round(t.z, 2),
                                   top_hashtags=tags.most_common(top), top_places=places.most_common(top),
                                   example_post_ids=[p.id for p in list(posts.values())[:top]]))
    return reports
