"""Great-circle distances (from the `haversine` and scikit-learn libraries) and a geodesic medoid."""

from __future__ import annotations

import numpy as np
from haversine import Unit, haversine_vector
from sklearn.metrics.pairwise import haversine_distances

EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Element-wise great-circle distance in km between two equally long arrays of points."""
    a = np.column_stack([np.atleast_1d(lat1), np.atleast_1d(lon1)]).astype(float)
    b = np.column_stack([np.atleast_1d(lat2), np.atleast_1d(lon2)]).astype(float)
    return haversine_vector(a, b, Unit.KILOMETERS)


def pairwise_km(lat, lon) -> np.ndarray:
    """All-pairs great-circle distances in km for one set of points."""
    rad = np.radians(np.column_stack([lat, lon]).astype(float))
    return haversine_distances(rad) * EARTH_RADIUS_KM


def geodesic_medoid(lat, lon, weights=None) -> int:
    """Index of the point minimising the weighted sum of great-circle distances to all the others."""
    lat = np.asarray(lat, dtype=float)
    if lat.size == 1:
        return 0
    w = np.ones(lat.size) if weights is None else np.asarray(weights, dtype=float)
    return int(np.argmin(pairwise_km(lat, lon) @ w))
