"""From fused evidence to what a user sees: the place decided (minimum Bayes risk within a radius), calibrated
probabilities, coordinates (neighbours in the chosen place, hedged when unsure, overruled by photo GPS), the error
radius, and the ranked hashtags with the share each source gave them."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.evidence import photo_gps
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, calibrate, coordinates, decide_place, decision_confidence,
                                         hedge_coordinates, label_in_area, place_distribution, select_tags, tag_scores)
from tagatlas.recommender.schema import PHOTO_COARSE_RADIUS_KM, Decisions, PlaceScore, Prediction, TagScore

TOP_PLACES = 5  # places reported per post: the decision's, then the most probable others


def decide(ev: Evidence, p: FusionParams, areas: PlaceAreas, place_coords: np.ndarray, places: list[str], place_names: list[str],
           n_candidates: int) -> Decisions:
    """Fusion and every decision for a batch, as arrays: what `to_predictions` turns into objects and bulk
    enrichment writes directly (`Decisions.records`)."""
    raw = place_distribution(ev, p)
    chosen = decide_place(raw, p, areas)  # decided as tuned; probabilities reported calibrated
    probs = calibrate(raw, p.place_temperature)
    confidence = decision_confidence(probs, chosen, p, areas)
    coords, hedged = hedge_coordinates(coordinates(ev, p, raw, place_coords, chosen), confidence, ev, probs, p, place_coords)
    radius = p.radius_for(confidence)
    label = label_in_area(probs, chosen, p, areas)
    source = np.where(hedged, "hedge", "place").astype(object)
    probs, label, coords, radius, source = photo_gps.overrule(ev.photo_gps, areas, place_coords, probs, label, coords, radius, source,
                                                              PHOTO_COARSE_RADIUS_KM)
    scores, parts = tag_scores(ev, p)
    order, n_keep = select_tags(scores, p, n_candidates, tags=ev.tags, parts=parts)
    clusters = ev.assigned_clusters[0] if ev.assigned_clusters is not None else np.full(len(label), -1)
    return Decisions(label=label, probs=probs, coords=coords, radius=np.round(radius, 1), source=source, order=order,
                     scores=np.take_along_axis(scores, order, 1), n_keep=n_keep,
                     parts={name: np.take_along_axis(v, order, 1) for name, v in parts.items()}, tags=ev.tags,
                     places=places, place_names=place_names, photo_gps=ev.photo_gps, clusters=np.asarray(clusters))


def rounded(a: np.ndarray, digits: int = 6) -> list[list[float]]:
    """Rows of Python floats rounded to `digits` decimals (in float64: float32 inputs would print as 0.07999999821)."""
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _ranked_places(probs: np.ndarray) -> list[list[int]]:
    """Per post, its most probable place classes, by probability then class index."""
    n_top = min(TOP_PLACES + 1, probs.shape[1])
    top = np.argpartition(-probs, n_top - 1, axis=1)[:, :n_top] if n_top < probs.shape[1] else np.tile(np.arange(n_top), (len(probs), 1))
    top_p = np.take_along_axis(probs, top, 1)
    return np.take_along_axis(top, np.lexsort((top, -top_p), axis=1), 1).tolist()


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
    probs = d.probs
    top = _ranked_places(probs)
    label_l = d.label.tolist()
    cand_parts = {name: rounded(v) for name, v in d.parts.items()}
    order_l, scores_l = d.order.tolist(), rounded(d.scores)
    positive = (d.scores > 0).sum(axis=1).tolist()  # scores are ranked: candidates stop at the first score <= 0
    coords_l, radius_l, keep_l, source_l = d.coords.tolist(), d.radius.tolist(), d.n_keep.tolist(), d.source.tolist()

    def place(i, c):
        lat, lon = place_coords[c]
        return PlaceScore(place=d.places[c], name=d.place_names[c], prob=round(float(probs[i, c]), 6), lat=lat, lon=lon)

    preds = []
    for i, post in enumerate(posts):
        # The decision's place first (the most probable place in the chosen area), then the most probable others.
        first = label_l[i]
        places = [place(i, first)] + [place(i, c) for c in top[i] if c != first][: TOP_PLACES - 1]
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
