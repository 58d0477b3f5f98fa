"""Retrieval-augmented fusion, vectorised over a batch: neighbour votes + classifier + user habits.

`Evidence` holds everything a batch of posts brought back (classifier outputs, neighbours, the
users' own past posts); `place_distribution`, `coordinates` and `tag_scores` turn it into place
probabilities, coordinates and tag scores for one set of `FusionParams`, cheaply enough that
validation can grid-search the parameters (`tuning.py`).
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


def _neighbour_weights(sims: np.ndarray, k: int, temperature: float) -> np.ndarray:
    s = sims[:, :k]
    finite = np.isfinite(s)
    top = np.where(finite.any(axis=1), np.nanmax(np.where(finite, s, np.nan), axis=1, initial=-np.inf), 0.0) if s.size else np.zeros(len(s))
    w = np.where(finite, np.exp((np.where(finite, s, 0.0) - top[:, None]) / temperature), 0.0)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def place_distribution(ev: Evidence, p: FusionParams) -> np.ndarray:
    """Fused place probabilities (n, C)."""
    n, C = ev.place_probs.shape
    w = _neighbour_weights(ev.nb_sims, p.geo_k, p.geo_temperature)
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
    w = _neighbour_weights(ev.nb_sims, p.geo_k, p.geo_temperature)
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


def _tag_votes(n: int, n_tags: int, per_post_tags: list[list[list[int]]], weights: list[np.ndarray]) -> np.ndarray:
    """(n, n_tags) dense: each post's tag lists, each list voting with its weight (duplicates add up)."""
    rows, cols, vals = [], [], []
    for i, (post_tags, w) in enumerate(zip(per_post_tags, weights)):
        for j in np.flatnonzero(w[: len(post_tags)] > 0).tolist():
            tag_ids = post_tags[j]
            rows.extend([i] * len(tag_ids)); cols.extend(tag_ids); vals.extend([w[j]] * len(tag_ids))
    out = np.zeros((n, n_tags))
    np.add.at(out, (np.asarray(rows, np.int64), np.asarray(cols, np.int64)), np.asarray(vals, np.float64))
    return out


def _softmax_rows(n: int, n_tags: int, tag_lists, sims_list, temperature: float) -> np.ndarray:
    out = np.zeros((n, n_tags))
    for i, (tag_ids, sims) in enumerate(zip(tag_lists, sims_list)):
        if tag_ids:
            e = np.exp((sims - sims.max()) / temperature)
            out[i, tag_ids] = e / e.sum()
    return out


def _rows_of(n: int, n_tags: int, tag_lists, values) -> np.ndarray:
    out = np.zeros((n, n_tags))
    for i, (tag_ids, v) in enumerate(zip(tag_lists, values)):
        if tag_ids:
            out[i, tag_ids] = v
    return out


def tag_scores(ev: Evidence, p: FusionParams, memo: dict | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fused tag scores (n, len(ev.tags)) and each source's weighted share of them.

    A source whose weight is 0 is not computed (its share is a read-only array of zeros). `memo`, a dict the caller
    keeps for one `ev`, holds each source's unweighted scores for the last setting of its own parameters, so a search
    that changes only the weights builds each source once (the scores are the same numbers)."""
    n, V = len(ev.nb_sims), len(ev.tags)
    zeros = np.broadcast_to(np.zeros(1), (n, V))

    def neighbours() -> np.ndarray:
        w = _neighbour_weights(ev.nb_sims, p.tag_k, p.tag_temperature)
        return _tag_votes(n, V, ev.nb_tags, list(w))

    def habits() -> np.ndarray:
        habit_w = []
        for i, sims in enumerate(ev.habit_sims):
            if len(sims):  # attention over the user's past posts: similar ones first, recent ones first when decay is on
                e = np.exp((sims - sims.max()) / p.habit_temperature)
                if p.habit_half_life_days > 0 and ev.habit_ages:
                    e = e * 0.5 ** (np.maximum(ev.habit_ages[i], 0.0) / p.habit_half_life_days)
                habit_w.append(e / e.sum())
            else:
                habit_w.append(np.zeros(0))
        return _tag_votes(n, V, ev.habit_tags, habit_w)

    def classifier() -> np.ndarray:
        out = np.zeros((n, V))
        out[:, : ev.n_vocab] = ev.tag_probs[:, : ev.n_vocab]
        return out

    sources = {"classifier": (p.tag_beta, classifier, ()), "neighbours": (1 - p.tag_beta, neighbours, (p.tag_k, p.tag_temperature)),
               "habits": (p.habit_gamma, habits, (p.habit_temperature, p.habit_half_life_days)),
               "text": (p.text_gamma, lambda: _rows_of(n, V, ev.text_tags, ev.text_prior), ()),
               "embedding": (p.embed_gamma, lambda: _softmax_rows(n, V, ev.embed_tags, ev.embed_sims, p.embed_temperature), (p.embed_temperature,))}
    for name, source in ev.sources.items():  # plug-in sources, after the built-in ones
        sources[name] = (p.source_tags.get(name, 0.0), lambda source=source: _rows_of(n, V, source.tag_ids, source.tag_values), ())
    parts: dict[str, np.ndarray] = {}
    total = np.zeros((n, V))
    for name, (weight, build, setting) in sources.items():
        if weight == 0:
            parts[name] = zeros
            continue
        if memo is None:
            part = build()
            part *= weight
        else:
            if name not in memo or memo[name][0] != setting:
                memo[name] = (setting, build())
            part = memo[name][1] * weight
        total += part
        parts[name] = part
    return total, parts


def select_tags(scores: np.ndarray, p: FusionParams, n_candidates: int = 20, tags: list[str] | None = None,
                parts: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ranked candidate tag indices (n, n_candidates) and how many of them to recommend per post.

    Two selectors (chosen on validation F1): a threshold on the score relative to the best tag, or, when
    `p.tag_quota` is set and `parts` given, DESIGN's per-source selector: each source contributes its n best
    tags (those passing the threshold too), which are then ranked first by fused score. Scores equal to 6 decimals are ordered by tag name
    (when `tags` is given), so the ranking does not depend on the batch a post was predicted in.
    """
    m = min(n_candidates, scores.shape[1])
    if m == 0:
        return np.zeros((len(scores), 0), int), np.zeros(len(scores), int)
    name_rank = np.argsort(np.argsort(np.array(tags, dtype=object))) if tags is not None else np.arange(scores.shape[1])
    name_rank = np.broadcast_to(name_rank, scores.shape)
    if p.tag_quota and parts is not None:  # each source's best tags that also pass the threshold
        best = scores.max(axis=1, keepdims=True)
        chosen = quota_choice(parts, p.tag_quota, name_rank) & (scores >= p.tag_threshold * best) & (scores > 0)
        order = np.lexsort((name_rank, -np.round(scores, 6), ~chosen), axis=-1)[:, :m]
        return order, np.minimum(chosen.sum(axis=1), p.max_tags)
    order = ranked_columns(scores, name_rank, m)
    return order, threshold_keep(np.take_along_axis(scores, order, 1), p)


def threshold_keep(ranked: np.ndarray, p: FusionParams) -> np.ndarray:
    """How many of the ranked scores (best first) pass the threshold selector: of the first `max_tags`, those > 0 and ≥ `tag_threshold` × the best."""
    top = ranked[:, : p.max_tags]
    return ((top >= p.tag_threshold * ranked[:, :1]) & (top > 0)).sum(axis=1)


def ranked_columns(values: np.ndarray, name_rank: np.ndarray, m: int) -> np.ndarray:
    """Per row, the `m` columns with the largest values rounded to 6 decimals, equal ones by name rank: the first
    `m` columns of a full `np.lexsort((name_rank, -round(values, 6)))`, sorting only each row's m best and their
    ties instead of all its columns (timed against the full sort by benchmarks/faiss_paths.py)."""
    r = np.round(values, 6)
    n, width = r.shape
    if width <= 4 * m:
        return np.lexsort((name_rank, -r), axis=-1)[:, :m]
    # each row's m-th largest value: a plain sort (numpy's SIMD sort) rather than np.partition, whose
    # introselect crawls over the many equal (zero) scores of a batch's vocabulary
    kth = np.sort(r, axis=1)[:, width - m]
    rows, cols = np.nonzero(r >= kth[:, None])  # the m largest and every column tied with the m-th: >= m per row
    counts = np.bincount(rows, minlength=n)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    shape = (n, int(counts.max()))
    cand_cols = np.zeros(shape, np.int64)
    cand_vals = np.full(shape, -np.inf)
    cand_names = np.full(shape, np.iinfo(np.int64).max)
    cand_cols[rows, slot], cand_vals[rows, slot], cand_names[rows, slot] = cols, r[rows, cols], np.asarray(name_rank)[rows, cols]
    order = np.lexsort((cand_names, -cand_vals), axis=-1)[:, :m]
    return np.take_along_axis(cand_cols, order, 1)


def quota_choice(parts: dict[str, np.ndarray], quota: dict[str, int], name_rank: np.ndarray, tops: dict | None = None) -> np.ndarray:
    """(n, V) mask of the tags each source puts forward: its `quota[source]` best tags with a positive share. `tops`, a
    dict the caller keeps for one `parts`, holds each source's ranked best tags, so a search over quotas ranks each once."""
    shape = next(iter(parts.values())).shape
    chosen = np.zeros(shape, bool)
    for name, n_s in quota.items():
        part = parts.get(name)
        if part is None or n_s <= 0 or not part.any():
            continue
        if tops is not None and (name not in tops or tops[name].shape[1] < min(n_s, shape[1])):
            tops[name] = ranked_columns(part, name_rank, max(n_s, 5))  # the first n of a ranking are the n best
        top = ranked_columns(part, name_rank, n_s) if tops is None else tops[name][:, :n_s]
        positive = np.take_along_axis(part, top, 1) > 0
        rows = np.repeat(np.arange(shape[0]), top.shape[1]).reshape(top.shape)
        chosen[rows[positive], top[positive]] = True
    return chosen
