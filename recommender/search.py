"""Personalised search over the indexed posts (seed 002's Tumblr search, on the embedded index).

The query is embedded like a post and matched in the FAISS index; a user's history — the tags and
places of their own posts — then re-ranks the candidates, so the same query gives different,
explainable results to different users. Other users' coordinates are coarsened to their place.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from tagatlas.data import Post, city

if TYPE_CHECKING:
    from tagatlas.recommender.model import TagAtlas


class UserProfile(BaseModel):
    user_id: str
    posts: int
    top_tags: dict[str, float] = Field(description="share of the user's posts carrying each tag")
    top_places: dict[str, float] = Field(description="share of the user's located posts in each place")
    top_clusters: dict[str, float] = Field(default_factory=dict, description="share of the user's clustered posts in each cluster")


class SearchHit(BaseModel):
    id: str
    user_id: str | None
    text: str | None
    hashtags: list[str]
    place: str | None
    place_name: str | None
    lat: float | None
    lon: float | None
    coarse: bool = Field(description="coordinates coarsened to the place (privacy)")
    cluster: str | None = Field(default=None, description="the post's cluster (after `tagatlas cluster`)")
    score: float
    reasons: dict[str, float | list[str] | str]


class SearchResult(BaseModel):
    query: str
    user_id: str | None
    profile: UserProfile | None
    hits: list[SearchHit]


def user_profile(model: "TagAtlas", user_id: str, max_posts: int = 500, top: int = 20) -> UserProfile:
    history = model.posts_.store.by_user(Post(id="_", user_id=user_id).user_key, limit=max_posts)
    tags = Counter(t for h in history for t in h.hashtags)
    located = [h for h in history if h.place]
    places = Counter(h.place for h in located)
    clustered = model.posts_.store.clusters.of([h.rowid for h in history])
    clusters = Counter(str(c) for c, _ in clustered.values())
    n = max(len(history), 1)
    return UserProfile(user_id=user_id, posts=len(history),
                       top_tags={t: round(c / n, 4) for t, c in tags.most_common(top)},
                       top_places={p: round(c / max(len(located), 1), 4) for p, c in places.most_common(top)},
                       top_clusters={k: round(c / max(len(clustered), 1), 4) for k, c in clusters.most_common(top)})


def search(model: "TagAtlas", query: str, user_id: str | None = None, k: int = 20, candidates: int = 200,
           tag_weight: float = 0.3, place_weight: float = 0.2, cluster_weight: float = 0.15, coarse_all: bool = False,
           query_vector: np.ndarray | None = None) -> SearchResult:
    """Top-k posts for `query`; with `user_id`, re-ranked by that user's tags, places and clusters.

    `query_vector` is `model.embed` of the query when the caller already has it (a service embeds
    concurrent queries in one batch)."""
    q = model.embed([Post(id="_query", text=query)]) if query_vector is None else np.asarray(query_vector, np.float32).reshape(1, -1)
    sims, ids = model.posts_.search(q, candidates)
    found = model.posts_.store.get(ids[0].tolist())
    clusters = {r: str(c) for r, (c, _) in model.posts_.store.clusters.of(list(found)).items()}
    profile = user_profile(model, user_id) if user_id else None
    own_key = Post(id="_", user_id=user_id).user_key if user_id is not None else None
    weights = {"tag": tag_weight, "place": place_weight, "cluster": cluster_weight}
    hits = []
    for sim, rowid in zip(sims[0], ids[0]):
        if rowid < 0 or rowid not in found:
            continue
        s = found[rowid]
        reasons: dict = {"similarity": round(float(sim), 4)}
        score = _personal_score(float(sim), profile, s, clusters.get(rowid), weights, reasons) if profile is not None else float(sim)
        coarse = coarse_all or s.user_key != own_key
        place_name, lat, lon = _shown_position(s, coarse)
        hits.append(SearchHit(id=s.id, user_id=s.user_key[2:] if s.user_key.startswith("u:") else None, text=s.text,
                              hashtags=s.hashtags, place=s.place, place_name=place_name, lat=lat, lon=lon, coarse=coarse,
                              cluster=clusters.get(rowid),
                              score=round(score, 6), reasons=reasons))
    hits.sort(key=lambda h: -h.score)
    return SearchResult(query=query, user_id=user_id, profile=profile, hits=hits[:k])


def _personal_score(score: float, profile: UserProfile, s, cluster: str | None, weights: dict[str, float], reasons: dict) -> float:
    """A hit's score raised by the user's own tags, places and clusters (each reason noted in `reasons`)."""
    shared = [t for t in s.hashtags if t in profile.top_tags]
    if shared:
        bonus = weights["tag"] * max(profile.top_tags[t] for t in shared)
        score += bonus
        reasons["your_tags"] = shared
        reasons["tag_bonus"] = round(bonus, 4)
    if s.place and s.place in profile.top_places:
        bonus = weights["place"] * profile.top_places[s.place]
        score += bonus
        reasons["your_place"] = s.place
        reasons["place_bonus"] = round(bonus, 4)
    if cluster is not None and cluster in profile.top_clusters:
        bonus = weights["cluster"] * profile.top_clusters[cluster]
        score += bonus
        reasons["your_cluster"] = cluster
        reasons["cluster_bonus"] = round(bonus, 4)
    return score


def _shown_position(s, coarse: bool) -> tuple[str | None, float | None, float | None]:
    """(place name, lat, lon) as shown: coarsened to the place's city (or ~10 km without a place) when `coarse`."""
    lat, lon = s.lat, s.lon
    place_name = None
    if s.place is not None:
        try:
            c = city(s.place)
            place_name = c.label
            if coarse:
                lat, lon = round(c.lat, 2), round(c.lon, 2)
        except KeyError:
            pass
    if coarse and s.place is None and lat is not None:
        lat, lon = round(lat, 1), round(lon, 1)  # ~10 km when no place is known
    return place_name, lat, lon
