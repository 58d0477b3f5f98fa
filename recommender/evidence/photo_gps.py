"""Photo GPS: a photo's EXIF position says where it was taken. It decides the place outright (certain), and the
coordinates reported are coarsened to that place unless the poster opts in (`Prediction.reveal_photo_gps`)."""

from __future__ import annotations

import numpy as np

from tagatlas.data import PhotoMetadata, distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM

PHOTO_PLACE_KM = 161.0  # a photo taken farther than this from every place class names no class


def photo_positions(photos: list[PhotoMetadata | None] | None) -> np.ndarray | None:
    """(n, 2) each photo's EXIF lat/lon, NaN where a post has none; None when no photo of the batch has one."""
    if not photos or not any(ph is not None and ph.has_gps for ph in photos):
        return None
    return np.array([(ph.lat, ph.lon) if ph is not None and ph.has_gps else (np.nan, np.nan) for ph in photos])


def photo_places(photo_gps: np.ndarray | None, n: int, areas, max_km: float = PHOTO_PLACE_KM) -> np.ndarray:
    """Per post, the place class nearest its photo's GPS position (within `max_km`), else -1."""
    out = np.full(n, -1)
    if photo_gps is None:
        return out
    rows = np.flatnonzero(np.isfinite(photo_gps[:, 0]))
    if rows.size and len(areas):
        dist, idx = areas.tree.query(np.radians(photo_gps[rows]), k=1)
        near = dist[:, 0] * EARTH_RADIUS_KM <= max_km
        out[rows[near]] = idx[near, 0]
    return out


def overrule(photo_gps: np.ndarray | None, areas, place_coords: np.ndarray, probs: np.ndarray, label: np.ndarray, coords: np.ndarray,
             radius: np.ndarray, source: np.ndarray, coarse_km: float) -> tuple[np.ndarray, ...]:
    """The decisions of posts whose photo has GPS replaced by it: that place, certain, at its medoid; farther than any
    place, the position rounded to ~10 km. Returns (probs, label, coords, radius, source), copied where changed."""
    if photo_gps is None:
        return probs, label, coords, radius, source
    gps = np.isfinite(photo_gps[:, 0])
    at = photo_places(photo_gps, len(probs), areas)
    near = at >= 0
    probs = probs.copy()
    probs[near] = 0.0
    probs[near, at[near]] = 1.0
    label = np.where(near, at, label)
    coords = coords.copy()
    coords[near] = place_coords[at[near]]
    far = gps & ~near  # no known place within reach: the position itself, rounded to ~10 km
    coords[far] = np.round(photo_gps[far], 1)
    off = distance_km(coords[gps, 0], coords[gps, 1], photo_gps[gps, 0], photo_gps[gps, 1]) if gps.any() else np.zeros(0)
    radius = radius.copy()
    radius[gps] = np.maximum(coarse_km, np.ceil(off / coarse_km) * coarse_km)
    source = source.copy()
    source[gps] = "photo_gps"
    return probs, label, coords, radius, source
