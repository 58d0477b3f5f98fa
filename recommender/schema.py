"""What a prediction looks like when it leaves the recommender (CLI, enrichment, later the API)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr


class PlaceScore(BaseModel):
    place: str = Field(description="GeoNames id of the P2C place")
    name: str
    prob: float = Field(description="probability that the post was written within area_km of this place (in no area of a place listed "
                                    "above it): the places of a prediction are listed by this probability, the first is the decision")
    lat: float
    lon: float
    area_km: float = Field(0.0, description="radius of the place's area, the decision radius tuned on validation (0: the place alone)")


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
        "where (lat, lon) comes from: 'place' (the chosen place, or its nearest similar posts), 'place_name' (a city "
        "the post names, lying in the chosen place's area, or reported as the place itself when no class near it was "
        "sure), 'user_history' (where the user's past post closest in time "
        "was, lying in that area, or reported as the place itself, as the city nearest it, where validation chose so), 'hedge' (an unsure "
        "post: the candidate place with the least expected distance to the whole predicted distribution), "
        "'photo_gps' (the photo's own EXIF GPS)"))
    hashtags: list[TagScore] = Field(description="selected tags (how many: tuned on validation)")
    hashtag_candidates: list[TagScore] = Field(description="the full ranking, best first")
    neighbours: list[str] = Field(default_factory=list, description="ids of the most similar indexed posts")
    cluster: str | None = Field(default=None, description="the cluster of similar indexed posts it joins (graph clusters: built in training, rebuilt by `tagatlas cluster`)")
    cluster_contributions: dict[str, float] = Field(default_factory=dict,
                                                    description="share of the cluster vote each modality gave (content, hashtags, location)")
    _photo_gps: tuple[float, float] | None = PrivateAttr(default=None)  # exact EXIF position: never serialised

    def hold_photo_gps(self, lat: float, lon: float) -> None:
        """Keep the photo's exact EXIF position beside the coarsened answer, for `reveal_photo_gps` only."""
        self._photo_gps = (float(lat), float(lon))

    def reveal_photo_gps(self) -> "Prediction":
        """Put the photo's exact EXIF position in lat/lon (callers do this only when the poster opted in)."""
        if self._photo_gps is not None:
            self.lat, self.lon = self._photo_gps
            self.radius_km = PHOTO_GPS_RADIUS_KM
        return self


def shown_probabilities(a, digits: int = 6) -> np.ndarray:
    """Probabilities as shown to a user: rounded toward zero to `digits` decimals, so a list that sums to at most
    one still does (the tiny epsilon keeps 0.25 from flooring to 0.249999 through float error)."""
    scale = 10.0 ** digits
    return np.floor(np.asarray(a, dtype=np.float64) * scale + 1e-6) / scale


PHOTO_GPS_RADIUS_KM = 0.1  # a phone's GPS fix is good to tens of metres
PHOTO_COARSE_RADIUS_KM = 25.0  # a photo position coarsened to its place: city level


@dataclass
class Decisions:
    """A batch's predictions as arrays, before any per-post object exists: bulk enrichment writes `records()`
    straight from them (building `Prediction`s, with every candidate's sources and carriers, cost more
    than the fusion itself; benchmarks/profile_enrich.py)."""

    label: np.ndarray  # (n,) the place class reported first
    probs: np.ndarray  # (n, C) calibrated place probabilities
    listed: np.ndarray  # (n, L) the places listed (`place_list`), the label first; -1 pads
    listed_prob: np.ndarray  # (n, L) their area probabilities, decreasing
    coords: np.ndarray  # (n, 2) lat, lon
    radius: np.ndarray  # (n,) km, rounded to 0.1
    source: np.ndarray  # (n,) location_source
    order: np.ndarray  # (n, m) candidate tags, best first (ids into `tags`)
    scores: np.ndarray  # (n, m) their fused scores
    n_keep: np.ndarray  # (n,) how many candidates are recommended
    parts: dict[str, np.ndarray]  # per source, (n, m) its share of each candidate's score
    tags: list[str]
    places: list[str]
    place_names: list[str]
    photo_gps: np.ndarray | None  # (n, 2) EXIF positions (NaN: none), None when no photo had one
    clusters: np.ndarray  # (n,) cluster per post, -1: none
    area_km: float = 0.0  # the radius of each listed place's area
    named_city: np.ndarray | None = None  # (n,) a city the post names, reported first instead of `label` (data.City; None: none)
    named_prob: np.ndarray | None = None  # (n,) its probability
    named_area_km: float = 0.0  # the area such a city stands for

    def first_place(self, i: int) -> tuple[str, str]:
        """(place id, name) of the place post i reports first: a city it names, else its decided place class."""
        named = None if self.named_city is None else self.named_city[i]
        return (named.id, named.label) if named is not None else (self.places[self.label[i]], self.place_names[self.label[i]])

    def records(self, photo_gps: bool = False) -> list[dict]:
        """Per post, the `pred_*` fields of an enriched record (what `tagatlas.enrich.enriched_record` takes
        from a `Prediction`); `photo_gps` reveals a photo's exact EXIF position as `Prediction.reveal_photo_gps`."""
        n = len(self.label)
        first = self.listed_prob[:, 0]
        if self.named_city is not None:
            first = np.where([c is not None for c in self.named_city], self.named_prob, first)
        prob = shown_probabilities(first).tolist()  # as `Prediction.places` shows them
        coords, radius, source, clusters = self.coords.tolist(), self.radius.tolist(), self.source.tolist(), self.clusters.tolist()
        order, keep = self.order.tolist(), self.n_keep.tolist()
        scores = np.round(np.asarray(self.scores, dtype=np.float64), 6).tolist()
        out = []
        for i in range(n):
            (lat, lon), r, k = coords[i], radius[i], keep[i]
            if photo_gps and source[i] == "photo_gps":
                lat, lon, r = float(self.photo_gps[i, 0]), float(self.photo_gps[i, 1]), PHOTO_GPS_RADIUS_KM
            place, name = self.first_place(i)
            out.append({"pred_place": place, "pred_place_name": name,
                        "pred_place_prob": prob[i], "pred_lat": lat, "pred_lon": lon, "pred_radius_km": r,
                        "pred_location_source": source[i], "pred_hashtags": [self.tags[t] for t in order[i][:k]],
                        "pred_hashtag_scores": scores[i][:k], "pred_cluster": str(clusters[i]) if clusters[i] >= 0 else None})
        return out
