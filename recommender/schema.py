"""What a prediction looks like when it leaves the recommender (CLI, enrichment, later the API)."""

from __future__ import annotations

from pydantic import BaseModel, Field, PrivateAttr


class PlaceScore(BaseModel):
    place: str = Field(description="GeoNames id of the P2C place")
    name: str
    prob: float
    lat: float
    lon: float


class TagScore(BaseModel):
    tag: str
    score: float
    sources: dict[str, float] = Field(description="contribution of each source: classifier, neighbours, habits (the user's past posts), text (tags written as words), embedding (tag-embedding match), cluster (tags its graph cluster's posts carry)")
    from_posts: list[str] = Field(default_factory=list, description="ids of neighbour or history posts that carry the tag")


class Prediction(BaseModel):
    post_id: str
    places: list[PlaceScore] = Field(description="the chosen place first (see FusionParams.decision_km), then the most probable others")
    lat: float
    lon: float
    radius_km: float = Field(description="the post lies within this distance of (lat, lon) with probability ~0.5 (validation errors)")
    location_source: str = Field(default="place", description=(
        "where (lat, lon) comes from: 'place' (the chosen place, or its nearest similar posts), 'hedge' (an unsure "
        "post: the candidate place with the least expected distance to the whole predicted distribution), "
        "'photo_gps' (the photo's own EXIF GPS)"))
    hashtags: list[TagScore] = Field(description="selected tags (how many: tuned on validation)")
    hashtag_candidates: list[TagScore] = Field(description="the full ranking, best first")
    neighbours: list[str] = Field(default_factory=list, description="ids of the most similar indexed posts")
    cluster: str | None = Field(default=None, description="the cluster of similar indexed posts it joins (graph clusters: built in training, rebuilt by `tagatlas cluster`)")
    cluster_contributions: dict[str, float] = Field(default_factory=dict,
                                                    description="share of the cluster vote each modality gave (content, hashtags, location)")
    _photo_gps: tuple[float, float] | None = PrivateAttr(default=None)  # exact EXIF position: never serialised

    @property
    def has_photo_gps(self) -> bool:
        return self._photo_gps is not None

    def reveal_photo_gps(self) -> "Prediction":
        """Put the photo's exact EXIF position in lat/lon (callers do this only when the poster opted in)."""
        if self._photo_gps is not None:
            self.lat, self.lon = self._photo_gps
            self.radius_km = PHOTO_GPS_RADIUS_KM
        return self


PHOTO_GPS_RADIUS_KM = 0.1  # a phone's GPS fix is good to tens of metres
PHOTO_COARSE_RADIUS_KM = 25.0  # a photo position coarsened to its place: city level
