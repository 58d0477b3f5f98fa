"""Clusters of indexed posts (tagatlas.graph) as the recommender uses them: built from the store,
saved in the model folder, assigned to new and query posts without a rebuild."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel
from sklearn.feature_extraction.text import HashingVectorizer

from tagatlas.graph import GraphClusterer, Modality, detect_trends

if TYPE_CHECKING:
    from tagatlas.recommender.model import TagAtlas

_TAGS = HashingVectorizer(n_features=512, alternate_sign=False, analyzer=lambda tags: tags, norm="l2")


def post_modalities(vectors: np.ndarray, hashtags: list[list[str]], lats: list, lons: list) -> dict[str, Modality]:
    """The views a post offers: `content` (its index vector: text and image fused), `hashtags` (hashed bag)
    and `location` (unit vector of its coordinates); an absent view is marked missing."""
    vectors = np.asarray(vectors, np.float32)
    tag_vectors = _TAGS.transform([list(t) for t in hashtags]).toarray().astype(np.float32)
    has_loc = np.array([la is not None and lo is not None for la, lo in zip(lats, lons)], bool)
    lat = np.radians(np.where(has_loc, [la or 0.0 for la in lats], 0.0))
    lon = np.radians(np.where(has_loc, [lo or 0.0 for lo in lons], 0.0))
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).astype(np.float32)
    return {"content": Modality(vectors, np.abs(vectors).sum(axis=1) > 0),
            "hashtags": Modality(tag_vectors, np.array([bool(t) for t in hashtags])),
            "location": Modality(xyz, has_loc)}


def build_clusters(model: "TagAtlas", k: int = 10, resolution: float = 1.0, fusion: str = "late", seed: int = 0,
                   progress: bool = False) -> GraphClusterer:
    """Cluster every stored post and record each one's cluster and per-modality contributions in the store."""
    rowids, hashtags, lats, lons, vectors = [], [], [], [], []
    for ids, posts, vecs in model.store_.iter_all():
        rowids.extend(ids)
        hashtags.extend(p.hashtags for p in posts)
        lats.extend(p.lat for p in posts)
        lons.extend(p.lon for p in posts)
        vectors.append(vecs)
    if not rowids:
        raise ValueError("the store holds no posts to cluster")
    graph = GraphClusterer(k=k, resolution=resolution, fusion=fusion, seed=seed, progress=progress)
    graph.fit(post_modalities(np.concatenate(vectors), hashtags, lats, lons))
    shares = graph.contributions()
    model.store_.set_clusters(rowids, graph.labels_.tolist(),
                              [{name: round(float(shares[name][i]), 4) for name in graph.names_} for i in range(len(rowids))],
                              replace_all=True)
    return graph


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
    rowids, clusters, times = model.store_.clustered_posts()
    trends = detect_trends(clusters, times, now=now, window_s=window_s, history_windows=history_windows,
                           min_posts=min_posts, z_threshold=z_threshold)
    end = now if now is not None else (float(times.max()) if len(times) else 0.0)
    reports = []
    for t in trends:
        members = rowids[(clusters == t.cluster) & (times > end - window_s) & (times <= end)]
        posts = model.store_.get(members.tolist())
        tags = Counter(tag for p in posts.values() for tag in set(p.hashtags))
        places = Counter(model.place_name(p.place) for p in posts.values() if p.place)
        reports.append(TrendReport(cluster=str(t.cluster), recent_posts=t.recent, expected_posts=round(t.expected, 2), z=round(t.z, 2),
                                   top_hashtags=tags.most_common(top), top_places=places.most_common(top),
                                   example_post_ids=[p.id for p in list(posts.values())[:top]]))
    return reports
