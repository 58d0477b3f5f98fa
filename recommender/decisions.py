"""From fused evidence to what a user sees: the geolocator's place decision (place, calibrated probabilities,
coordinates, error radius) and the hashtag recommender's ranked tags with the share each source gave them, as arrays
(`decide`) and as `Prediction` objects (`to_predictions`)."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.named_place import area_km
from tagatlas.recommender.schema import Decisions, PlaceScore, Prediction, TagScore, shown_probabilities


def decide(ev: Evidence, p: FusionParams, geolocator, hashtags, n_candidates: int) -> Decisions:
    """Every decision for a batch, as arrays: the place (`Geolocator.decide`) and the tags (`HashtagRecommender.decide`);
    what `to_predictions` turns into objects and bulk enrichment writes directly (`Decisions.records`)."""
    where = geolocator.decide(ev, p)
    tags = hashtags.decide(ev, p, n_candidates)
    clusters = ev.assigned_clusters[0] if ev.assigned_clusters is not None else np.full(len(where.label), -1)
    return Decisions(label=where.label, probs=where.probs, listed=where.listed, listed_prob=where.listed_prob, coords=where.coords,
                     radius=np.round(where.radius, 1), source=where.source,
                     order=tags.order, scores=tags.scores, n_keep=tags.n_keep, parts=tags.parts, tags=ev.tags,
                     places=geolocator.places_, place_names=geolocator.place_names_, photo_gps=ev.photo_gps, clusters=np.asarray(clusters),
                     area_km=float(p.decision_km), named_city=where.named_city, named_prob=where.named_prob, named_area_km=area_km(p))


def rounded(a: np.ndarray, digits: int = 6) -> list[list[float]]:
    """Rows of Python floats rounded to `digits` decimals (in float64: float32 inputs would print as 0.07999999821)."""
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _carriers(ev: Evidence, i: int) -> dict[int, list[str]]:
    """Tag → ids of up to 3 neighbours and 3 of the user's past posts carrying it (why a tag is suggested)."""
    carriers: dict[int, list[str]] = {}
    for ids, tag_lists in ((ev.nb_ids[i], ev.nb_tags[i]), (ev.habit_ids[i], ev.habit_tags[i])):
        found: dict[int, list[str]] = {}
        for pid, tl in zip(ids, tag_lists):
            for t in tl:
                found.setdefault(t, []).append(pid)
        for t, pids in found.items():
            carriers.setdefault(t, []).extend(pids[:3])
    return carriers


def to_predictions(posts, ev: Evidence, d: Decisions, place_coords: list[list[float]]) -> list[Prediction]:
    """One `Prediction` per post from a batch's decisions; everything per post reads plain Python lists taken from
    the arrays in one go."""
    listed_l, listed_prob_l = d.listed.tolist(), shown_probabilities(d.listed_prob).tolist()
    cand_parts = {name: rounded(v) for name, v in d.parts.items()}
    order_l, scores_l = d.order.tolist(), rounded(d.scores)
    positive = (d.scores > 0).sum(axis=1).tolist()  # scores are ranked: candidates stop at the first score <= 0
    coords_l, radius_l, keep_l, source_l = d.coords.tolist(), d.radius.tolist(), d.n_keep.tolist(), d.source.tolist()
    named = d.named_city if d.named_city is not None else [None] * len(posts)
    named_prob_l = shown_probabilities(d.named_prob).tolist() if d.named_prob is not None else [0.0] * len(posts)

    def place(c, prob):
        lat, lon = place_coords[c]
        return PlaceScore(place=d.places[c], name=d.place_names[c], prob=prob, lat=lat, lon=lon, area_km=d.area_km)

    preds = []
    for i, post in enumerate(posts):
        # The places listed (`place_list`): the decision first, each with its area's probability, decreasing.
        places = [place(c, prob) for c, prob in zip(listed_l[i], listed_prob_l[i]) if c >= 0]
        if named[i] is not None:  # a city the post names, outside the classes' reach: reported first (named_place.py)
            city = named[i]
            places = [PlaceScore(place=city.id, name=city.label, prob=named_prob_l[i], lat=city.lat, lon=city.lon,
                                 area_km=d.named_area_km), *places[: len(listed_l[i]) - 1]]
        carriers = _carriers(ev, i)
        candidates = [TagScore(tag=ev.tags[order_l[i][j]], score=scores_l[i][j], from_posts=carriers.get(order_l[i][j], []),
                               sources={name: v[i][j] for name, v in cand_parts.items() if v[i][j] > 0}) for j in range(positive[i])]
        pred = Prediction(post_id=post.id, places=places, lat=coords_l[i][0], lon=coords_l[i][1], radius_km=radius_l[i],
                          location_source=source_l[i], hashtags=candidates[: keep_l[i]], hashtag_candidates=candidates,
                          neighbours=ev.nb_ids[i][:5])
        if source_l[i] == "photo_gps":
            pred.hold_photo_gps(ev.photo_gps[i, 0], ev.photo_gps[i, 1])
        preds.append(pred)
    return preds
