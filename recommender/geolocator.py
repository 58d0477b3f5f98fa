"""Where a post was posted: the place classes a model knows (P2C labels with enough fit posts, each at its geodesic
medoid), how a labelled point maps onto them, and the place decision from fused evidence (the place decided within a
radius, calibrated probabilities, coordinates, the error radius, photo GPS overruling).

`Geolocator.fit` learns the classes from located posts; `decide` turns a batch's evidence into arrays; the part saves
and loads itself as the `geolocator/` subfolder of a model folder."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tagatlas.core import write_text_atomic
from tagatlas.data import P2CLabeler, Post, city, geodesic_medoid
from tagatlas.data.toponyms import gazetteer
from tagatlas.recommender.evidence import photo_gps
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, calibrate, coordinates, decide_place, hedge_coordinates,
                                         label_in_area, place_distribution)
from tagatlas.recommender.area_calibration import calibrated_masses
from tagatlas.recommender.named_coords import LOCATION_SOURCE, named_coordinates
from tagatlas.recommender.named_place import named_places
from tagatlas.recommender.place_list import place_list
from tagatlas.recommender.schema import PHOTO_COARSE_RADIUS_KM

PLACES_FILE = "places.json"


@dataclass
class PlaceDecisions:
    """A batch's place decisions as arrays."""

    label: np.ndarray  # (n,) the place class reported first
    probs: np.ndarray  # (n, C) calibrated place probabilities
    listed: np.ndarray  # (n, LISTED) the places listed, the label first (-1: none)
    listed_prob: np.ndarray  # (n, LISTED) each listed place's area probability (calibrated), decreasing
    coords: np.ndarray  # (n, 2) lat, lon
    radius: np.ndarray  # (n,) km
    source: np.ndarray  # (n,) location_source: "place", "place_name", "user_history", "hedge" or "photo_gps"
    named_point: np.ndarray  # (n, 2) a city the post names, reported first instead of `label` (NaN: none; named_place.py)
    named_prob: np.ndarray  # (n,) its probability (0: none)
    named_city: np.ndarray | None = None  # (n,) that city (data.City; None: none), looked up by `Geolocator.decide`


class Geolocator:
    """Place classes and the place decision (scikit-learn style: `min_place_posts` in `__init__`, learned state
    with a trailing underscore)."""

    def __init__(self, min_place_posts: int = 1):
        self.min_place_posts = min_place_posts

    # -- learning the classes -------------------------------------------------------------------------
    def fit(self, located: list[Post], fit_posts: list[Post]) -> "Geolocator":
        """P2C-label every located post; the classes are the places with at least `min_place_posts` of the fit
        posts (else the largest one), each at the geodesic medoid of its fit posts (`labeler_.labels_`: the label
        of each located post, in order)."""
        self.labeler_ = P2CLabeler().fit([p.lat for p in located], [p.lon for p in located])
        label_of = dict(zip((p.id for p in located), self.labeler_.labels_))
        members: dict[str, list[Post]] = defaultdict(list)
        for p in fit_posts:
            if p.id in label_of:
                members[label_of[p.id]].append(p)
        places = sorted(pl for pl, ms in members.items() if len(ms) >= self.min_place_posts)
        if not places:
            places = [max(members, key=lambda pl: len(members[pl]))]
        coords = []
        for pl in places:
            ms = members[pl]
            medoid = geodesic_medoid([p.lat for p in ms], [p.lon for p in ms])
            coords.append((ms[medoid].lat, ms[medoid].lon))
        self._set_classes(places, [city(pl).label for pl in places], np.array(coords))
        return self

    @classmethod
    def of_classes(cls, places: list[str], names: list[str], coords) -> "Geolocator":
        """A geolocator over given place classes (no labeler: it decides but does not label points)."""
        self = cls()
        self._set_classes(places, names, np.asarray(coords, dtype=float))
        return self

    def _set_classes(self, places: list[str], names: list[str], coords: np.ndarray) -> None:
        """The classes and what is derived from them (class index, the places' ball tree)."""
        self.places_, self.place_names_ = list(places), list(names)
        self.place_coords_ = np.asarray(coords, dtype=float).reshape(-1, 2)
        self.place_index_ = {p: i for i, p in enumerate(self.places_)}
        self.areas_ = PlaceAreas(self.place_coords_)
        self.place_coords_list_ = self.place_coords_.tolist()  # read per post when predictions are built

    def __len__(self) -> int:
        return len(self.places_)

    # -- mapping points and labels --------------------------------------------------------------------
    def label(self, lat, lon) -> list[str]:
        """The P2C place label of each point."""
        return self.labeler_.label(lat, lon)

    def class_of(self, places: list[str | None], lat, lon) -> np.ndarray:
        """Place class of each labelled point: its place label when that is a class, else the class nearest its
        lat/lon (-1: neither)."""
        out = np.array([self.place_index_.get(p, -1) if p else -1 for p in places], dtype=np.int64)
        lat, lon = np.asarray(lat, float), np.asarray(lon, float)
        fold = (out < 0) & np.isfinite(lat) & np.isfinite(lon)
        if fold.any():
            _, idx = self.areas_.tree.query(np.radians(np.column_stack([lat[fold], lon[fold]])), k=1)
            out[fold] = idx[:, 0]
        return out

    def place_name(self, place: str) -> str:
        """A place label's readable name (the GeoNames city when the place is not a class)."""
        if place in self.place_index_:
            return self.place_names_[self.place_index_[place]]
        try:
            return city(place).label
        except KeyError:
            return place

    # -- deciding -------------------------------------------------------------------------------------
    def decide(self, ev: Evidence, p: FusionParams) -> PlaceDecisions:
        """`decide_places` on these classes, photo GPS overruling; a city reported instead of a class is named."""
        out = decide_places(ev, p, self.areas_, self.place_coords_)
        probs, label, coords, radius, source = photo_gps.overrule(ev.photo_gps, self.areas_, self.place_coords_, out.probs, out.label,
                                                                  out.coords, out.radius, out.source, PHOTO_COARSE_RADIUS_KM)
        listed, listed_prob = out.listed, out.listed_prob
        certain = (source == "photo_gps") & (probs[np.arange(len(label)), label] >= 1.0)  # photo GPS named the place: it alone, certain
        if certain.any():
            listed, listed_prob = listed.copy(), listed_prob.copy()
            listed[certain], listed_prob[certain] = -1, 0.0
            listed[certain, 0], listed_prob[certain, 0] = label[certain], 1.0
        named = np.isfinite(out.named_point[:, 0]) & (source != "photo_gps")
        named_city = np.full(len(label), None, dtype=object)
        if named.any():
            gaz = gazetteer()
            named_city[named] = [gaz.city(i) for i in gaz.nearest(out.named_point[named, 0], out.named_point[named, 1])]
        return replace(out, probs=probs, label=label, listed=listed, listed_prob=listed_prob, coords=coords, radius=radius, source=source,
                       named_city=named_city)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {"min_place_posts": self.min_place_posts, "places": self.places_, "place_names": self.place_names_,
                 "place_coords": self.place_coords_.tolist(), "labeler": self.labeler_.to_dict()}
        write_text_atomic(folder / PLACES_FILE, json.dumps(state, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Geolocator":
        state = json.loads((Path(folder) / PLACES_FILE).read_text(encoding="utf-8"))
        self = cls(int(state["min_place_posts"]))
        if not (len(state["places"]) == len(state["place_names"]) == len(state["place_coords"])):
            raise ValueError(f"{folder}/{PLACES_FILE}: places, names and coordinates differ in length")
        self._set_classes(state["places"], state["place_names"], np.asarray(state["place_coords"], dtype=float))
        self.labeler_ = P2CLabeler.from_dict(state["labeler"])
        return self


def decide_places(ev: Evidence, p: FusionParams, areas: PlaceAreas, place_coords: np.ndarray) -> PlaceDecisions:
    """Fused place distribution → the places listed (`place_list`: areas within `decision_km`, the decided area's
    most probable place among the candidates, the most massive area first), the first reported with coordinates at
    it (a point a plug-in names there, hedged when unsure), the radius for its calibrated area probability; a city
    the post names (or the user's trusted past post) outside that area reported instead where the decision is unsure
    enough (named_place.py).
    What tuning measures and prediction reports alike (photo GPS aside)."""
    raw = place_distribution(ev, p)
    first = label_in_area(raw, decide_place(raw, p, areas), p, areas)
    listed, masses = place_list(raw, first, areas, p.decision_km)
    label, listed_prob = listed[:, 0], calibrated_masses(masses, p.area_calibration, p.area_isotonic)
    probs = calibrate(raw, p.place_temperature)
    confidence = listed_prob[:, 0]
    coords, named = named_coordinates(ev, p, coordinates(ev, p, raw, place_coords, label), areas, label)
    coords, hedged = hedge_coordinates(coords, confidence, ev, probs, p, place_coords)  # in or near the place reported
    source = np.where(hedged, "hedge", [LOCATION_SOURCE.get(o, o) if o else "place" for o in named]).astype(object)
    at, points, city_prob, origin = named_places(ev, p, label, confidence, areas)
    named_point = np.where(at[:, None], points, np.nan)
    if at.any():
        listed_prob, coords, source = listed_prob.copy(), coords.copy(), source.copy()
        listed_prob[at] *= (1.0 - city_prob[at])[:, None]
        coords[at], source[at] = points[at], origin[at]
        confidence = np.where(at, city_prob, confidence)
    return PlaceDecisions(label=label, probs=probs, listed=listed, listed_prob=listed_prob, coords=coords, radius=p.radius_for(confidence),
                          source=source, named_point=named_point, named_prob=np.where(at, city_prob, 0.0))
