"""Retrieval-augmented fusion, vectorised over a batch: neighbour votes + classifier + user habits.

`Evidence` holds everything a batch of posts brought back (classifier outputs, neighbours, the
users' own past posts); `place_distribution` and `coordinates` turn it into place probabilities and
coordinates for one set of `FusionParams` (`tag_fusion.py` its tag scores and choices), cheaply enough
that validation can grid-search the parameters (`tuning.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import BallTree

from tagatlas.data import distance_km, geodesic_medoid
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.recommender.evidence import SourceEvidence


@dataclass
class FusionParams:
    geo_alpha: float = 0.5  # weight of the classifier against the neighbour vote for places
    geo_k: int = 25
    geo_temperature: float = 0.05  # neighbour weight exp((s - s_max) / T)
    decision_km: float = 0.0  # 0: the most probable place; > 0: the place with most probability within this radius
    neighbour_coords: bool = True  # coordinates from neighbours in the chosen place (else the place's medoid)
    coordinate_sources: list[str] = field(default_factory=list)  # plug-ins whose named point, in the decided area, gives the coordinates
    tag_beta: float = 0.5  # weight of the classifier against neighbour tags
    tag_k: int = 25
    tag_temperature: float = 0.05
    habit_gamma: float = 1.0  # weight of the user's own similar past posts
    text_gamma: float = 0.0  # weight of known tags written as plain words in the text (prior: how often posts writing one carry it)
    habit_temperature: float = 0.1
    habit_half_life_days: float = 0.0  # a past post's habit weight halves every this many days before the new post (0: no decay)
    embed_gamma: float = 0.0  # weight of tags whose words are nearest the post in the text encoder's space (new tags too)
    embed_temperature: float = 0.05  # their weight exp((s - s_max) / T) over the post's best matches
    source_place: dict[str, float] = field(default_factory=dict)  # per plug-in source (evidence/), its share of the place distribution
    source_place_tagged: dict[str, float] = field(default_factory=dict)  # its share instead, for posts arriving with hashtags (ingest)
    source_tags: dict[str, float] = field(default_factory=dict)  # per plug-in source, the weight of its tag scores
    tag_threshold: float = 0.0  # keep tags scoring at least this fraction of the best one
    max_tags: int = 5
    tag_quota: dict[str, int] = field(default_factory=dict)  # per source, its n best tags are recommended (DESIGN); {}: threshold
    place_temperature: float = 1.0  # temperature scaling of the fused place distribution (fitted on validation NLL)
    area_calibration: list[float] = field(default_factory=lambda: [1.0, 0.0])  # Platt (a, b) of the listed areas' masses (place_list)
    area_isotonic: list[list[float]] = field(default_factory=list)  # isotonic knots [xs, ys] of those masses; used instead of Platt when set
    hedge: str = "none"  # coordinates of unsure posts: "regression" (the head's), "expected" (least expected distance), "none"
    hedge_below: float = 0.0  # decision confidence under which the hedge replaces the chosen place's coordinates
    named_place_below: float = 0.0  # decided-area probability under which a city the post names outside that area is reported instead (0: never)
    named_place_below_tagged: float = 0.0  # the same for posts arriving with hashtags (ingest)
    named_place_prob: float = 0.0  # that city's probability: how often validation's truth lay in its area (named_place.py)
    named_place_prob_tagged: float = 0.0
    named_place_beyond_km: float = 0.0  # a named city is reported only farther than this from every place class (0: anywhere)
    named_place_beyond_km_tagged: float = 0.0
    named_place_sources: list[str] = field(default_factory=lambda: ["place_names"])  # plug-ins whose point may be reported, first first
    named_place_sources_tagged: list[str] = field(default_factory=lambda: ["place_names"])
    name_trust: str = "flat"  # where a place name unseen in training starts: "flat" one half, "form" its form's hit rate (place_names.py)
    name_position_trust: float = 0.5  # the least trust with which a named city pins coordinates
    radius_edges: list[float] = field(default_factory=list)  # confidence bin edges
    radius_km: list[float] = field(default_factory=lambda: [500.0])  # median validation error per bin

    def to_dict(self) -> dict:
        return asdict(self)

    def radius_for(self, confidence: np.ndarray) -> np.ndarray:
        return np.asarray(self.radius_km, dtype=float)[np.searchsorted(self.radius_edges, confidence, side="right")]


@dataclass
class Evidence:
    """A batch's inputs to fusion. Neighbour arrays are (n, k_max), padded with -1 / -inf."""

    place_probs: np.ndarray  # (n, C) classifier
    tag_probs: np.ndarray  # (n, T) classifier over the known vocabulary
    nb_sims: np.ndarray
    nb_class: np.ndarray  # class index of each neighbour's place (-1 when none)
    nb_lat: np.ndarray
    nb_lon: np.ndarray
    nb_ids: list[list[str]]
    nb_tags: list[list[list[int]]]  # per post, per neighbour: ids into `tags`
    habit_sims: list[np.ndarray]  # per post: similarity to each of the user's past posts
    habit_tags: list[list[list[int]]]
    habit_ids: list[list[str]]
    tags: list[str]  # batch vocabulary: classifier vocabulary first, then tags only seen in the index
    n_vocab: int  # how many of `tags` the classifier knows
    text_tags: list[list[int]] = field(default_factory=list)  # per post: known tags its text spells out as words
    text_prior: list[np.ndarray] = field(default_factory=list)  # their prior in [0, 1]: P(tagged | written), WrittenTagRates
    reg_coords: np.ndarray | None = None  # (n, 2) the head's regressed lat/lon (None: a head without regression)
    photo_gps: np.ndarray | None = None  # (n, 2) the photo's EXIF lat/lon, NaN where a post has none (None: no photo has one)
    embed_tags: list[list[int]] = field(default_factory=list)  # per post: indexed tags nearest it in the text space
    embed_sims: list[np.ndarray] = field(default_factory=list)  # their cosine similarity, best first
    habit_ages: list[np.ndarray] = field(default_factory=list)  # per post: days from each past post to it (0 when unknown)
    sources: dict[str, SourceEvidence] = field(default_factory=dict)  # the plug-in sources' evidence (evidence/), by name
    tagged: np.ndarray | None = None  # (n,) whether each post came with its hashtags as input (None: none did)
    assigned_clusters: tuple | None = None  # (labels, per-modality contributions) of the batch's posts, reported with predictions


def neighbour_weights(sims: np.ndarray, k: int, temperature: float) -> np.ndarray:
    s = sims[:, :k]
    finite = np.isfinite(s)
    top = np.where(finite.any(axis=1), np.nanmax(np.where(finite, s, np.nan), axis=1, initial=-np.inf), 0.0) if s.size else np.zeros(len(s))
    w = np.where(finite, np.exp((np.where(finite, s, 0.0) - top[:, None]) / temperature), 0.0)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def place_distribution(ev: Evidence, p: FusionParams) -> np.ndarray:
    """Fused place probabilities (n, C)."""
    n, C = ev.place_probs.shape
    w = neighbour_weights(ev.nb_sims, p.geo_k, p.geo_temperature)
    cls = ev.nb_class[:, : p.geo_k]
    knn = np.zeros((n, C))
    rows = np.repeat(np.arange(n), cls.shape[1])
    ok = cls.ravel() >= 0
    np.add.at(knn, (rows[ok], cls.ravel()[ok]), w.ravel()[ok])
    has_nb = knn.sum(axis=1) > 0
    alpha = np.where(has_nb, p.geo_alpha, 1.0)[:, None]
    fused = alpha * ev.place_probs + (1 - alpha) * knn
    for name, source in ev.sources.items():  # each plug-in source takes its share where it has an opinion
        weight = source_share(p, name, ev.tagged, n)
        if weight.any() and source.place is not None:
            share = np.where(source.place.sum(axis=1) > 0, weight, 0.0)[:, None]
            fused = (1 - share) * fused + share * source.place
    return fused


def source_share(p: FusionParams, name: str, tagged: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) a plug-in source's share of each post's place distribution: its ingest-setting share for posts that came
    with hashtags, where validation chose one (their tags already say much a source would otherwise have to)."""
    weight = np.full(n, p.source_place.get(name, 0.0))
    if tagged is not None and name in p.source_place_tagged:
        weight[np.asarray(tagged, bool)] = p.source_place_tagged[name]
    return weight


def calibrate(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of a probability matrix (softmax of log p / T): ranks unchanged, confidence calibrated."""
    if temperature == 1.0 or probs.size == 0:
        return probs
    logp = np.log(np.clip(probs, 1e-12, None)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, true_class: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the true classes (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    ok = true_class >= 0
    if ok.sum() < 10:
        return 1.0
    logp = np.log(np.clip(probs[ok], 1e-12, None))
    rows = np.arange(int(ok.sum()))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[rows, true_class[ok]] - np.log(np.exp(z).sum(axis=1))).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-3})
    return float(np.round(np.exp(res.x), 4))


def expected_distance_points(probs: np.ndarray, place_coords: np.ndarray, n_candidates: int = 20, n_mass: int = 200) -> np.ndarray:
    """(n, 2) per post, the candidate place (among its `n_candidates` most probable) with the least expected
    great-circle distance to the predicted distribution (its `n_mass` most probable places): the minimum
    Bayes risk point for the distance itself, a hedge between plausible regions."""
    n, C = probs.shape
    m, c = min(n_mass, C), min(n_candidates, C)
    if n == 0:
        return np.zeros((0, 2))
    mass = np.argpartition(-probs, m - 1, axis=1)[:, :m] if m < C else np.tile(np.arange(C), (n, 1))
    w = np.take_along_axis(probs, mass, 1)
    cand = np.take_along_axis(mass, np.argsort(-w, axis=1)[:, :c], 1)
    rad = np.radians(place_coords)
    out = np.zeros((n, 2))
    for start in range(0, n, 256):
        sl = slice(start, start + 256)
        a, b = rad[cand[sl]], rad[mass[sl]]  # (b, c, 2), (b, m, 2)
        dlat = b[:, None, :, 0] - a[:, :, None, 0]
        dlon = b[:, None, :, 1] - a[:, :, None, 1]
        h = np.sin(dlat / 2) ** 2 + np.cos(a[:, :, None, 0]) * np.cos(b[:, None, :, 0]) * np.sin(dlon / 2) ** 2
        risk = (2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))) * w[sl, None, :]).sum(axis=2)
        out[sl] = place_coords[cand[sl][np.arange(len(risk)), risk.argmin(axis=1)]]
    return out


def hedge_coordinates(coords: np.ndarray, confidence: np.ndarray, ev: Evidence, probs: np.ndarray, p: FusionParams,
                      place_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace the coordinates of posts whose decision confidence is under `hedge_below` by the hedge point;
    also returns which posts were hedged."""
    unsure = confidence < p.hedge_below
    if p.hedge == "none" or not unsure.any() or (p.hedge == "regression" and ev.reg_coords is None):
        return coords, np.zeros(len(coords), bool)
    if p.hedge == "regression":
        points = ev.reg_coords
    elif p.hedge == "expected":
        points = np.zeros_like(coords)
        points[unsure] = expected_distance_points(probs[unsure], place_coords)
    else:
        raise ValueError(f"hedge={p.hedge!r}: use 'regression', 'expected' or 'none'")
    out = coords.copy()
    out[unsure] = points[unsure]
    return out, unsure


class PlaceAreas:
    """Which place classes lie within a radius of which: sparse, so tens of thousands of places stay cheap."""

    def __init__(self, coords: np.ndarray):
        self.coords = np.asarray(coords, dtype=float).reshape(-1, 2)
        self.tree = BallTree(np.radians(self.coords), metric="haversine")
        self._near: dict[float, sp.csr_matrix] = {}

    def __len__(self) -> int:
        return len(self.coords)

    def within(self, lat, lon, km: float) -> sp.csr_matrix:
        """(n points, n places) indicator of places within `km` of each point."""
        idx = self.tree.query_radius(np.radians(np.column_stack([lat, lon]).astype(float)), r=km / EARTH_RADIUS_KM)
        rows = np.repeat(np.arange(len(idx)), [len(i) for i in idx])
        cols = np.concatenate(idx) if len(idx) else np.zeros(0, int)
        return sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(idx), len(self)))

    def near(self, km: float) -> sp.csr_matrix:
        """(places, places) indicator of pairs within `km` (cached per radius)."""
        if km not in self._near:
            self._near[km] = self.within(self.coords[:, 0], self.coords[:, 1], km)
        return self._near[km]


def decide_place(probs: np.ndarray, p: FusionParams, areas: PlaceAreas) -> np.ndarray:
    """The chosen place per post: minimum Bayes risk for "within `decision_km`" (argmax when it is 0).

    Big cities are split into several GeoNames places; their summed mass can outweigh a lone
    argmax elsewhere, and choosing by it is what maximises accuracy within that distance.
    """
    if p.decision_km <= 0:
        return probs.argmax(axis=1)
    return (areas.near(p.decision_km) @ np.ascontiguousarray(probs.T, dtype=np.float32)).argmax(axis=0)


def label_in_area(probs: np.ndarray, chosen: np.ndarray, p: FusionParams, areas: PlaceAreas) -> np.ndarray:
    """The most probable place within `decision_km` of each decision: the label to report for that area."""
    if p.decision_km <= 0:
        return chosen
    return np.where(areas.near(p.decision_km)[chosen].toarray() > 0, probs, -1.0).argmax(axis=1)


def decision_confidence(probs: np.ndarray, top: np.ndarray, p: FusionParams, areas: PlaceAreas) -> np.ndarray:
    """The probability behind each decision: of the place, or of everything within `decision_km` of it."""
    if p.decision_km <= 0:
        return probs[np.arange(len(top)), top]
    return np.asarray(areas.near(p.decision_km)[top].multiply(probs).sum(axis=1)).ravel()


def coordinates(ev: Evidence, p: FusionParams, probs: np.ndarray, place_coords: np.ndarray, top: np.ndarray | None = None) -> np.ndarray:
    """(lat, lon) per post: weighted geodesic medoid of the neighbours in the chosen place, else the place's medoid.
    With a decision radius, only neighbours within it of the place count: a place's posts can lie far from it (a
    post is labelled with its nearest city), and the coordinates must stay in the area the place's probability
    speaks of."""
    top = probs.argmax(axis=1) if top is None else top
    out = place_coords[top].astype(float).copy()
    if not p.neighbour_coords:
        return out
    w = neighbour_weights(ev.nb_sims, p.geo_k, p.geo_temperature)
    for i in range(len(top)):
        members = np.flatnonzero(ev.nb_class[i, : p.geo_k] == top[i])
        if members.size and p.decision_km > 0:
            near = distance_km(ev.nb_lat[i, members], ev.nb_lon[i, members], np.full(members.size, out[i, 0]),
                               np.full(members.size, out[i, 1])) <= p.decision_km
            members = members[near]
        if members.size:
            j = members[geodesic_medoid(ev.nb_lat[i, members], ev.nb_lon[i, members], w[i, members])]
            out[i] = (ev.nb_lat[i, j], ev.nb_lon[i, j])
    return out
