"""Learn the fusion weights on validation users (never on a test split).

Geolocation: neighbour count, temperature, classifier weight and decision radius maximise the weakest lead over
TagAtlas's own single-source answers (classifier alone, neighbour vote alone) on Acc@161, Acc@25 and median km, so
no figure is bought with another (ties: Acc@161 plus the probability near the truth); the radius is the median
validation error per confidence bin. Hashtags (tag_tuning.py): neighbour count, temperature,
classifier weight, habit weight and the selection threshold maximise F1@5 (DESIGN's selector). Graph clusters,
when the model has them, add the cluster-mates' places and tags with a weight chosen the same way (0 where they do not help).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from tagatlas.data import Post, distance_km
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, calibrate, coordinates, decide_place, fit_temperature, hedge_coordinates, place_distribution)
from tagatlas.recommender.evidence import EvidenceSource
from tagatlas.recommender.metrics import expected_calibration_error
from tagatlas.recommender.area_calibration import calibrated_masses, choose_area_calibration
from tagatlas.recommender.geo_score import GeoScore, one_query, weakest_lead
from tagatlas.recommender.geolocator import decide_places
from tagatlas.recommender.named_coords import named_coordinates
from tagatlas.recommender.named_place import pointing, tune_named_place
from tagatlas.recommender.place_list import area_mass, decided_label, within
from tagatlas.recommender.tag_tuning import tune_tags

GEO_GRID = {"geo_k": (10, 25, 50), "geo_temperature": (0.02, 0.05, 0.2), "geo_alpha": tuple(np.round(np.linspace(0, 1, 11), 2)),
            "decision_km": (0.0, 50.0, 161.0, 300.0, 500.0, 1000.0)}


def _subset(ev: Evidence, idx: np.ndarray) -> Evidence:
    pick = lambda seq: [seq[i] for i in idx]  # noqa: E731
    return Evidence(ev.place_probs[idx], ev.tag_probs[idx], ev.nb_sims[idx], ev.nb_class[idx], ev.nb_lat[idx], ev.nb_lon[idx],
                    pick(ev.nb_ids), pick(ev.nb_tags), pick(ev.habit_sims), pick(ev.habit_tags), pick(ev.habit_ids), ev.tags, ev.n_vocab,
                    pick(ev.text_tags) if ev.text_tags else [], pick(ev.text_prior) if ev.text_prior else [],
                    None if ev.reg_coords is None else ev.reg_coords[idx], None if ev.photo_gps is None else ev.photo_gps[idx],
                    pick(ev.embed_tags) if ev.embed_tags else [], pick(ev.embed_sims) if ev.embed_sims else [],
                    pick(ev.habit_ages) if ev.habit_ages else [], {name: s.take(idx) for name, s in ev.sources.items()},
                    tagged=None if ev.tagged is None else ev.tagged[idx])


HEDGE_QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _hedge_key(err: np.ndarray, reference: np.ndarray, tolerance: float) -> tuple:
    """Hedging trades Acc@161 for distance: keep Acc@161 within `tolerance` of no hedging, then minimise the median."""
    acc, ref_acc = float(np.mean(err <= 161)), float(np.mean(reference <= 161))
    return (acc >= ref_acc - tolerance - 1e-12, -float(np.median(err)), acc)


def _top_ece(probs: np.ndarray, true_class: np.ndarray) -> float | None:
    ok = true_class >= 0
    if not ok.any():
        return None
    top = probs[ok].argmax(axis=1)
    return expected_calibration_error(probs[ok][np.arange(len(top)), top], top == true_class[ok])


def tune_fusion(ev: Evidence, queries: list[Post], areas: PlaceAreas, progress: bool = True,
                true_class: np.ndarray | None = None, hedge_tolerance: float = 0.0,
                sources: Sequence[EvidenceSource] = (), ev_with_tags: Evidence | None = None,
                geo: tuple[FusionParams, dict] | None = None) -> tuple[FusionParams, dict]:
    """Grid-search the fusion on validation queries. The geo search scores places by their medoids (fast);
    the chosen setting is then measured with the full coordinate rule, which also sets the radius.
    `true_class` (place class per query, < 0 when none) fits the temperature that calibrates place probabilities;
    `hedge_tolerance` is how much validation Acc@161 hedged coordinates may give up to lower the median error.
    `sources`: the plug-in evidence sources, each weight tried from its own grid (0 where it does not help).
    `ev` is the posting-form setting (the queries' hashtags masked); `ev_with_tags`, the same queries with their
    hashtags as input (the ingest setting), tunes the sources that read hashtags (`needs` "hashtags").
    `geo`: (params, report) of an earlier call on the same evidence and located queries, whose geolocation half is
    taken as it is instead of tuned again (training's name-trust search has already tuned it for the setting kept)."""
    params = FusionParams()
    report: dict = {}
    geo_idx = np.array([i for i, q in enumerate(queries) if q.has_location], dtype=int)
    if geo is not None:
        params, report = geo[0], {k: v for k, v in geo[1].items() if k not in ("hashtags", "params")}
    elif geo_idx.size:
        truth_cls = np.full(len(geo_idx), -1) if true_class is None else np.asarray(true_class)[geo_idx]
        with_tags = None if ev_with_tags is None else _subset(ev_with_tags, geo_idx)
        params = _GeoTuning(_subset(ev, geo_idx), [queries[i] for i in geo_idx], areas, truth_cls, report).run(
            params, progress, hedge_tolerance, sources, with_tags)
    tag_idx = np.array([i for i, q in enumerate(queries) if q.hashtags], dtype=int)
    if tag_idx.size:
        params, report["hashtags"] = tune_tags(_subset(ev, tag_idx), [queries[i].hashtags for i in tag_idx], params, progress, sources)
    report["params"] = params.to_dict()
    return params, report


def earned_weight(scores: dict[float, float], n_queries: int, baseline: float = 0.0) -> float:
    """The weight with the best validation score (the smaller on a tie), or `baseline` when it beats the baseline by
    no more than one validation query's worth (1 / n_queries of Acc@161): a gain that small is noise, and a source
    given weight on noise moves held-out answers for nothing."""
    best = max(scores, key=lambda w: (scores[w], -w))
    if baseline in scores and scores[best] - scores[baseline] <= one_query(n_queries):
        return baseline
    return best


class _GeoTuning:
    """The geolocation half of `tune_fusion`, one step a method, on the validation queries that have a location."""

    def __init__(self, gev: Evidence, queries: list[Post], areas: PlaceAreas, truth_cls: np.ndarray, report: dict):
        self.gev, self.areas, self.truth_cls, self.report = gev, areas, truth_cls, report
        self.lat = np.array([q.lat for q in queries])
        self.lon = np.array([q.lon for q in queries])
        # Which places lie within 161 km of each query's truth: for the smooth part of the objective.
        self.near_truth = areas.within(self.lat, self.lon, 161)
        self.place_coords = areas.coords

    def run(self, params: FusionParams, progress: bool, hedge_tolerance: float, sources: Sequence[EvidenceSource],
            with_tags: Evidence | None = None) -> FusionParams:
        """Every geolocation setting in order; `with_tags` (the queries' evidence with their hashtags as input) tunes
        the sources that read hashtags, after the rest is tuned on the posting form (hashtags masked)."""
        params = self.grid(params, progress)
        params = self.plug_ins(params, [s for s in sources if "hashtags" not in s.needs])
        if with_tags is not None:
            tagged = self.on(with_tags)
            params = tagged.plug_ins(params, [s for s in sources if "hashtags" in s.needs])
            params = tagged.tagged_shares(params, [s for s in sources if "hashtags" not in s.needs])
        params = self.decision(params)
        probs = place_distribution(self.gev, params)
        label = decided_label(probs, params, self.areas)
        params, err, coords = self.coordinate_rule(params, probs, label)
        params, calibrated = self.calibration(params, probs)
        params, conf = self.area_calibration(params, probs, label)
        params, err = self.hedge(params, coords, conf, calibrated, err, hedge_tolerance)
        params, err, conf = self.named_place(params, with_tags)
        acc, neg_med = float(np.mean(err <= 161)), -float(np.median(err))
        clf = replace(params, geo_alpha=1.0, decision_km=0.0, source_place={}, source_place_tagged={})
        clf_top = decide_place(place_distribution(self.gev, clf), clf, self.areas)
        self.report["geo_classifier_only"] = {"acc_at_161": float(np.mean(self.errors(clf_top) <= 161))}
        params = self.radius(params, conf, err)
        self.report["geo"] = {"val_queries": len(self.lat), "acc_at_161": acc, "median_km": -neg_med,
                              "weakest_lead": round(weakest_lead(GeoScore.of(err), self.reference, len(err)), 4)}
        return params

    def on(self, gev: Evidence) -> "_GeoTuning":
        """The same queries and truth with other evidence for them (e.g. their hashtags kept as input)."""
        other = copy.copy(self)
        other.gev = gev
        return other

    def errors(self, top: np.ndarray) -> np.ndarray:
        """km from each query's truth to the medoid of the place reported for it."""
        return distance_km(self.place_coords[top, 0], self.place_coords[top, 1], self.lat, self.lon)

    def score(self, cand: FusionParams) -> tuple[float, float]:
        """(the weakest lead over the single-source reference, Acc@161 of the place reported plus the probability mass
        within 161 km of the truth): the first is what the search maximises, the second breaks its ties and is what a
        plug-in weight must lift (smooth: it keeps the choice stable on small validation sets)."""
        probs = place_distribution(self.gev, cand)
        err = self.errors(decided_label(probs, cand, self.areas))
        soft = float(np.asarray(self.near_truth.multiply(probs).sum(axis=1)).mean())
        return weakest_lead(GeoScore.of(err), self.reference, len(self.lat)), float(np.mean(err <= 161)) + soft

    def references(self, params: FusionParams) -> GeoScore:
        """TagAtlas's own single-source answers on the validation queries (the classifier alone, the neighbours'
        vote alone, each naming its most probable place) and the best figure either reaches on each measure: the
        bar every fused setting is held to, as the baselines hold the held-out figures."""
        bare = replace(params, decision_km=0.0, source_place={}, source_place_tagged={})
        alone = {name: GeoScore.of(self.errors(decide_place(place_distribution(self.gev, replace(bare, geo_alpha=alpha)), bare, self.areas)))
                 for name, alpha in (("classifier", 1.0), ("neighbours", 0.0))}
        best = GeoScore(max(a.acc_161 for a in alone.values()), max(a.acc_25 for a in alone.values()),
                        min(a.median_km for a in alone.values()))
        self.report["geo_reference"] = {**{name: a.to_dict() for name, a in alone.items()}, "best": best.to_dict()}
        return best

    def grid(self, params: FusionParams, progress: bool) -> FusionParams:
        """Neighbour count and sharpness, classifier weight and decision radius, all combinations."""
        self.reference = self.references(params)
        best = None
        combos = list(itertools.product(*GEO_GRID.values()))
        for k, temp, alpha, decision in tqdm(combos, desc="tune geo fusion", disable=not progress):
            cand = replace(params, geo_k=int(k), geo_temperature=float(temp), geo_alpha=float(alpha), decision_km=float(decision))
            key = self.score(cand)
            if best is None or key > best[0]:
                best = (key, cand)
        return best[1]

    def decision(self, params: FusionParams) -> FusionParams:
        """The decision radius again, once the plug-in sources have their share: the one with the weakest lead highest."""
        scored = {km: self.score(replace(params, decision_km=float(km))) for km in GEO_GRID["decision_km"]}
        chosen = max(scored, key=lambda km: (scored[km], -km))
        self.report["decision"] = {"chosen_km": float(chosen), "weakest_lead": {str(km): round(v[0], 4) for km, v in scored.items()}}
        return replace(params, decision_km=float(chosen))

    def plug_ins(self, params: FusionParams, sources: Sequence[EvidenceSource]) -> FusionParams:
        """Each plug-in source's place share in turn, kept only where it validates better."""
        for source in sources:
            if not self.has_place_evidence(source.name):
                continue
            by_weight = {w: self.score(replace(params, source_place={**params.source_place, source.name: float(w)}))
                         for w in source.place_weights}
            weight = earned_weight({w: v[1] for w, v in by_weight.items()}, len(self.lat))
            params = replace(params, source_place={**params.source_place, source.name: float(weight)})
            self.report.setdefault("geo_sources", {})[source.name] = {
                "chosen_weight": float(weight), "min_gain": round(1 / max(len(self.lat), 1), 4),
                "acc_plus_soft": {str(w): round(v[1], 4) for w, v in by_weight.items()}}
        return params

    def has_place_evidence(self, name: str) -> bool:
        """Whether the plug-in source `name` gave any of these queries a place opinion (else there is nothing to tune)."""
        given = self.gev.sources.get(name)
        return given is not None and given.place is not None and bool(given.place.any())

    def tagged_shares(self, params: FusionParams, sources: Sequence[EvidenceSource]) -> FusionParams:
        """On the ingest setting (hashtags as input): each other source's share for posts that carry hashtags, kept
        only where it validates better than the share it has on the posting form by more than one query's worth."""
        for source in sources:
            if not self.has_place_evidence(source.name):
                continue
            current = params.source_place.get(source.name, 0.0)
            by_weight = {w: self.score(replace(params, source_place_tagged={**params.source_place_tagged, source.name: float(w)}))[1]
                         for w in sorted({*source.place_weights, current})}
            weight = earned_weight(by_weight, len(self.lat), baseline=current)
            if weight != current:
                params = replace(params, source_place_tagged={**params.source_place_tagged, source.name: float(weight)})
            self.report.setdefault("geo_sources_tagged", {})[source.name] = {
                "chosen_weight": float(weight),
                "acc_plus_soft": {str(w): round(v, 4) for w, v in by_weight.items()}}
        return params

    def coordinate_rule(self, params: FusionParams, probs: np.ndarray, top: np.ndarray):
        """Coordinates from the neighbours in the chosen place or the place's medoid, each with or without the points
        plug-ins name in the decided area (named_coords.py; each naming plug-in alone, or all in turn): whichever
        validates best (ties: the simpler rule)."""
        naming = [name for name, s in self.gev.sources.items() if s.position is not None and np.isfinite(s.position).any()]
        scored = []
        for names in [[], *([n] for n in naming), *([naming] if len(naming) > 1 else [])]:  # none, each alone, all
            for use_neighbours in (True, False):
                cand = replace(params, neighbour_coords=use_neighbours, coordinate_sources=list(names))
                coords = named_coordinates(self.gev, cand, coordinates(self.gev, cand, probs, self.place_coords, top), self.areas, top)[0]
                err = distance_km(coords[:, 0], coords[:, 1], self.lat, self.lon)
                score = GeoScore.of(err)
                scored.append(((weakest_lead(score, self.reference, len(err)), score.acc_161, -score.median_km), cand, err, coords))
        _, chosen, err, coords = max(scored, key=lambda s: s[0])  # max keeps the first of equals
        self.report["coordinates"] = {"neighbours": chosen.neighbour_coords, "named_sources": chosen.coordinate_sources}
        return chosen, err, coords

    def calibration(self, params: FusionParams, probs: np.ndarray) -> tuple[FusionParams, np.ndarray]:
        """The temperature that calibrates the place probabilities on the true classes."""
        temperature = fit_temperature(probs, self.truth_cls)
        calibrated = calibrate(probs, temperature)
        self.report["calibration"] = {"temperature": temperature, "ece_before": _top_ece(probs, self.truth_cls),
                                      "ece_after": _top_ece(calibrated, self.truth_cls)}
        return replace(params, place_temperature=temperature), calibrated

    def area_calibration(self, params: FusionParams, probs: np.ndarray, label: np.ndarray) -> tuple[FusionParams, np.ndarray]:
        """Platt or isotonic calibration of the reported place's area probability on whether the truth lay in that
        area (area_calibration.py); returns the calibrated confidence of each validation query (what the hedge and the
        radius read)."""
        nearest = self.areas.tree.query(np.radians(np.column_stack([self.lat, self.lon])), k=1)[1][:, 0]
        truth = np.where(self.truth_cls >= 0, self.truth_cls, nearest)  # each truth's place class
        inside = within(self.areas, params.decision_km, label)[np.arange(len(label)), truth]
        masses = area_mass(probs, label, self.areas, params.decision_km)
        fitted = choose_area_calibration(masses, inside)
        conf = calibrated_masses(masses[:, None], fitted.platt, fitted.isotonic)[:, 0]
        self.report["area_calibration"] = {"a": fitted.platt[0], "b": fitted.platt[1], **fitted.report,
                                           "ece_before": expected_calibration_error(masses, inside),
                                           "ece_after": expected_calibration_error(conf, inside)}
        return replace(params, area_calibration=list(fitted.platt), area_isotonic=fitted.isotonic), conf

    def hedge(self, params: FusionParams, coords: np.ndarray, conf: np.ndarray, calibrated: np.ndarray, err: np.ndarray,
              tolerance: float) -> tuple[FusionParams, np.ndarray]:
        """Unsure posts get a point that minimises distance rather than one bet on a place, where that keeps Acc@161."""
        hedges = [("none", 0.0, err)]
        curve = []
        for kind in (("regression",) if self.gev.reg_coords is not None else ()) + ("expected",):
            for q in HEDGE_QUANTILES[1:] + (1.0,):
                below = float(np.quantile(conf, q)) if q < 1.0 else float("inf")
                cand = replace(params, hedge=kind, hedge_below=below)
                hc, _ = hedge_coordinates(coords, conf, self.gev, calibrated, cand, self.place_coords)
                herr = distance_km(hc[:, 0], hc[:, 1], self.lat, self.lon)
                hedges.append((kind, below, herr))
                curve.append({"hedge": kind, "quantile": q, "acc_at_161": round(float(np.mean(herr <= 161)), 4),
                              "median_km": round(float(np.median(herr)), 1)})
        kind, below, err = max(hedges, key=lambda h: _hedge_key(h[2], hedges[0][2], tolerance))
        params = replace(params, hedge=kind, hedge_below=below if np.isfinite(below) else 1.0 + 1e-9)
        self.report["hedge"] = {"chosen": kind, "below": params.hedge_below,
                                "without": {"acc_at_161": round(float(np.mean(hedges[0][2] <= 161)), 4),
                                            "median_km": round(float(np.median(hedges[0][2])), 1)}, "curve": curve}
        return params, err

    def named_place(self, params: FusionParams, with_tags: Evidence | None) -> tuple[FusionParams, np.ndarray, np.ndarray]:
        """Whether, and under which decided-area probability, a city the post names outside the area is reported
        instead (named_place.py), in each setting; returns the errors and confidences of the decisions it leaves."""
        for tuning, tagged in ((self, False), (None if with_tags is None else self.on(with_tags), True)):
            if tuning is not None:
                decide = lambda cand, t=tuning: t.decided(cand)  # noqa: E731
                params, self.report.setdefault("named_place", {})["tagged" if tagged else "posting"] = tune_named_place(
                    decide, self.lat, self.lon, params, tagged, pointing(tuning.gev))
        out = decide_places(self.gev, params, self.areas, self.place_coords)
        conf = np.where(np.isfinite(out.named_point[:, 0]), out.named_prob, out.listed_prob[:, 0])
        return params, distance_km(out.coords[:, 0], out.coords[:, 1], self.lat, self.lon), conf

    def decided(self, params: FusionParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coords, whether a named city was reported, its point) of the queries as prediction decides them."""
        out = decide_places(self.gev, params, self.areas, self.place_coords)
        return out.coords, np.isfinite(out.named_point[:, 0]), out.named_point

    def radius(self, params: FusionParams, conf: np.ndarray, err: np.ndarray) -> FusionParams:
        """The error radius: the median validation error in each fifth of decision confidence."""
        edges = list(np.quantile(conf, [0.2, 0.4, 0.6, 0.8])) if len(conf) >= 25 else []
        bins = np.searchsorted(edges, conf, side="right")
        radius = [float(np.median(err[bins == b])) if np.any(bins == b) else float(np.median(err)) for b in range(len(edges) + 1)]
        return replace(params, radius_edges=[float(e) for e in edges], radius_km=radius)
