"""Coordinates at a point the post names: where a plug-in names a point for a post (the city its text or hashtags
name, `place_names`; the user's most trusted past post, `user_places`) and that point lies in the decided area, the coordinates are that point rather than the area's
neighbours or place. A city named inside the decided area pins the post more finely than a place class standing for
a whole region; a named point outside the area is ignored, so the coordinates always stay in or near the place
reported first. Which sources may do this is chosen on validation (`FusionParams.coordinate_sources`)."""

from __future__ import annotations

import numpy as np

from tagatlas.data import distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.recommender.evidence.place_names import NEAR_KM
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas


# What a prediction's `location_source` says when a plug-in's point gave the coordinates (other plug-ins: their name).
LOCATION_SOURCE = {"place_names": "place_name", "user_places": "user_history"}


def named_points(ev: Evidence, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) per post the first point the sources `names` name, in that order (NaN: none), and (n,) the name of
    the source that named it ("" for none)."""
    out = np.full((len(ev.place_probs), 2), np.nan)
    origin = np.full(len(out), "", dtype=object)
    for name in names:
        source = ev.sources.get(name)
        if source is None or source.position is None:
            continue
        free = np.isnan(out[:, 0]) & np.isfinite(source.position[:, 0])
        out[free], origin[free] = source.position[free], name
    return out, origin


def in_area(points: np.ndarray, top: np.ndarray, areas: PlaceAreas, decision_km: float) -> np.ndarray:
    """(n,) whether each point lies in its post's decided area: within `decision_km` of the decided place, or the
    decided place is the place nearest it (within NEAR_KM, the distance at which a named city points to a place). NaN points are in no area."""
    ok = np.isfinite(points[:, 0])
    out = np.zeros(len(points), bool)
    if not ok.any():
        return out
    pts, places = points[ok], areas.coords[top[ok]]
    dist = distance_km(pts[:, 0], pts[:, 1], places[:, 0], places[:, 1])
    nearest_km, nearest = areas.tree.query(np.radians(pts), k=1)
    own = (nearest[:, 0] == top[ok]) & (nearest_km[:, 0] * EARTH_RADIUS_KM <= NEAR_KM)
    out[ok] = (dist <= decision_km) | own
    return out


def named_coordinates(ev: Evidence, p: FusionParams, coords: np.ndarray, areas: PlaceAreas,
                      top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`coords` with each post's named point put in where it lies in the decided area; and per post the source whose
    point it took ("" for none)."""
    if not p.coordinate_sources:
        return coords, np.full(len(coords), "", dtype=object)
    points, origin = named_points(ev, p.coordinate_sources)
    used = in_area(points, np.asarray(top), areas, p.decision_km)
    out = np.asarray(coords, dtype=float).copy()
    out[used] = points[used]
    return out, np.where(used, origin, "").astype(object)
