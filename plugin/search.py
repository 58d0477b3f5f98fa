"""Personalised search on an OpenSearch index enriched by TagAtlas: the query builder behind
`tagatlas opensearch search` and the REST API's `/v1/search` when TAGATLAS_SEARCH_BACKEND=opensearch."""

from __future__ import annotations

import numpy as np
from opensearchpy import OpenSearch

from tagatlas.data import Post, city
from tagatlas.plugin.bodies import FIELD, personal_query, profile_query
from tagatlas.recommender import TagAtlas
from tagatlas.recommender.search import SearchHit, SearchResult, UserProfile


def _shares(buckets: list[dict], total: int) -> dict[str, float]:
    return {str(b["key"]): round(b["doc_count"] / max(total, 1), 4) for b in buckets}


class OpenSearchSearch:
    """Embed the query with the local model, profile the user from their documents in the index, search with boosts."""

    def __init__(self, client: OpenSearch, index: str, model: TagAtlas, k: int = 100):
        self.client, self.index, self.model, self.k = client, index, model, k

    def profile(self, user_id: str) -> UserProfile:
        answer = self.client.search(index=self.index, body=profile_query(user_id))
        total = answer["hits"]["total"]["value"] if isinstance(answer["hits"]["total"], dict) else int(answer["hits"]["total"])
        aggs = answer.get("aggregations", {})
        places = aggs.get("places", {}).get("buckets", [])
        return UserProfile(user_id=user_id, posts=total, top_tags=_shares(aggs.get("tags", {}).get("buckets", []), total),
                           top_places=_shares(places, sum(b["doc_count"] for b in places)),
                           top_clusters=_shares(aggs.get("clusters", {}).get("buckets", []), total))

    def query(self, vector: np.ndarray, profile: UserProfile | None, size: int) -> dict:
        home = None
        if profile is not None and profile.top_places:
            try:
                c = city(next(iter(profile.top_places)))
                home = (c.lat, c.lon)
            except KeyError:
                home = None
        return personal_query(vector, k=max(self.k, size), size=size, top_tags=profile.top_tags if profile else None,
                              top_clusters=profile.top_clusters if profile else None, home=home)

    def search(self, q: str, user_id: str | None = None, k: int = 20, coarse_all: bool = False,
               query_vector: np.ndarray | None = None) -> SearchResult:
        vector = self.model.embed([Post(id="_query", text=q)])[0] if query_vector is None else np.asarray(query_vector).ravel()
        profile = self.profile(user_id) if user_id else None
        answer = self.client.search(index=self.index, body=self.query(vector, profile, k))
        hits = [self._hit(h, profile, user_id, coarse_all) for h in answer["hits"]["hits"]]
        return SearchResult(query=q, user_id=user_id, profile=profile, hits=hits)

    @staticmethod
    def _hit(hit: dict, profile: UserProfile | None, user_id: str | None, coarse_all: bool) -> SearchHit:
        src = hit.get("_source", {})
        meta = src.get(FIELD) or {}
        tags = list(src.get("hashtags") or [])
        reasons: dict = {"opensearch_score": round(float(hit.get("_score") or 0.0), 4)}
        if profile is not None:
            shared = sorted(set(tags + list(meta.get("hashtags") or [])) & set(profile.top_tags))
            if shared:
                reasons["your_tags"] = shared
            if meta.get("cluster") is not None and str(meta["cluster"]) in profile.top_clusters:
                reasons["your_cluster"] = str(meta["cluster"])
            if meta.get("place") in profile.top_places:
                reasons["your_place"] = meta["place"]
        own = user_id is not None and src.get("user_id") == user_id
        coarse = coarse_all or not own
        loc = src.get("location") if isinstance(src.get("location"), dict) else None
        lat, lon = (loc["lat"], loc["lon"]) if loc else (None, None)
        place = meta.get("place")
        if coarse and lat is not None:
            try:
                c = city(place)
                lat, lon = round(c.lat, 2), round(c.lon, 2)
            except (KeyError, TypeError):
                lat, lon = round(lat, 1), round(lon, 1)
        return SearchHit(id=str(src.get("id") or hit["_id"]), user_id=src.get("user_id"), text=src.get("text"), hashtags=tags,
                         place=place, place_name=meta.get("place_name"), lat=lat, lon=lon, coarse=coarse,
                         cluster=None if meta.get("cluster") is None else str(meta["cluster"]),
                         score=round(float(hit.get("_score") or 0.0), 6), reasons=reasons)
