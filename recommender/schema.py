"""What a prediction looks like when it leaves the recommender (CLI, enrichment, later the API)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PlaceScore(BaseModel):
    place: str = Field(description="GeoNames id of the P2C place")
    name: str
    prob: float
    lat: float
    lon: float


class TagScore(BaseModel):
    tag: str
    score: float
    sources: dict[str, float] = Field(description="contribution of each source: classifier, neighbours, habits")
    from_posts: list[str] = Field(default_factory=list, description="ids of neighbour or history posts that carry the tag")


class Prediction(BaseModel):
    post_id: str
    places: list[PlaceScore] = Field(description="the chosen place first (see FusionParams.decision_km), then the most probable others")
    lat: float
    lon: float
    radius_km: float = Field(description="the post lies within this distance of (lat, lon) with probability ~0.5 (validation errors)")
    hashtags: list[TagScore] = Field(description="selected tags (how many: tuned on validation)")
    hashtag_candidates: list[TagScore] = Field(description="the full ranking, best first")
    neighbours: list[str] = Field(default_factory=list, description="ids of the most similar indexed posts")
    cluster: str | None = Field(default=None, description="the cluster of similar indexed posts it joins (after `tagatlas cluster`)")
    cluster_contributions: dict[str, float] = Field(default_factory=dict,
                                                    description="share of the cluster vote each modality gave (content, hashtags, location)")
