"""Learn the fusion weights on validation users (never on a test split).

Geolocation: neighbour count, temperature and classifier weight maximise Acc@161 (ties: median km);
the radius is the median validation error per confidence bin. Hashtags: neighbour count, temperature,
classifier weight, habit weight and the selection threshold maximise F1@5 (DESIGN's selector).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from tagatlas.data import Post, distance_km
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, calibrate, coordinates, decide_place, decision_confidence,
                                         fit_temperature, hedge_coordinates, place_distribution, select_tags, tag_scores)
from tagatlas.recommender.metrics import expected_calibration_error, tag_metrics

GEO_GRID = {"geo_k": (10, 25, 50), "geo_temperature": (0.02, 0.05, 0.2), "geo_alpha": tuple(np.round(np.linspace(0, 1, 11), 2)),
            "decision_km": (0.0, 50.0, 161.0)}
TAG_GRID = {"tag_k": (10, 25, 50), "tag_temperature": (0.02, 0.05, 0.2), "tag_beta": tuple(np.round(np.linspace(0, 1, 11), 2))}
HABIT_GAMMAS = (0.0, 0.5, 1.0, 2.0)
TEXT_GAMMAS = (0.0, 0.1, 0.3, 1.0)
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def _subset(ev: Evidence, idx: np.ndarray) -> Evidence:
    pick = lambda seq: [seq[i] for i in idx]  # noqa: E731
    return Evidence(ev.place_probs[idx], ev.tag_probs[idx], ev.nb_sims[idx], ev.nb_class[idx], ev.nb_lat[idx], ev.nb_lon[idx],
                    pick(ev.nb_ids), pick(ev.nb_tags), pick(ev.habit_sims), pick(ev.habit_tags), pick(ev.habit_ids), ev.tags, ev.n_vocab,
                    pick(ev.text_tags) if ev.text_tags else [], pick(ev.text_prior) if ev.text_prior else [],
                    None if ev.reg_coords is None else ev.reg_coords[idx])


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
                true_class: np.ndarray | None = None, hedge_tolerance: float = 0.0) -> tuple[FusionParams, dict]:
    """Grid-search the fusion on validation queries. The geo search scores places by their medoids (fast);
    the chosen setting is then measured with the full coordinate rule, which also sets the radius.
    `true_class` (place class per query, < 0 when none) fits the temperature that calibrates place probabilities;
    `hedge_tolerance` is how much validation Acc@161 hedged coordinates may give up to lower the median error."""
    params = FusionParams()
    report: dict = {}
    geo_idx = np.array([i for i, q in enumerate(queries) if q.has_location], dtype=int)
    if geo_idx.size:
        gev = _subset(ev, geo_idx)
        lat = np.array([queries[i].lat for i in geo_idx]); lon = np.array([queries[i].lon for i in geo_idx])
        # Which places lie within 161 km of each query's truth: for the smooth part of the objective.
        near_truth = areas.within(lat, lon, 161)
        place_coords = areas.coords
        best = None
        combos = list(itertools.product(*GEO_GRID.values()))
        for k, temp, alpha, decision in tqdm(combos, desc="tune geo fusion", disable=not progress):
            cand = replace(params, geo_k=int(k), geo_temperature=float(temp), geo_alpha=float(alpha), decision_km=float(decision))
            probs = place_distribution(gev, cand)
            top = decide_place(probs, cand, areas)
            err = distance_km(place_coords[top, 0], place_coords[top, 1], lat, lon)
            # Acc@161 of the decision plus the probability mass within 161 km of the truth: the second term
            # is smooth, which keeps the choice stable on small validation sets.
            soft = float(np.asarray(near_truth.multiply(probs).sum(axis=1)).mean())
            key = (float(np.mean(err <= 161)) + soft, -float(np.median(err)))
            if best is None or key > best[0]:
                best = (key, cand)
        params = best[1]
        probs = place_distribution(gev, params)
        top = decide_place(probs, params, areas)
        scored = []
        for use_neighbours in (True, False):  # coordinates from neighbours, or the place's medoid: whichever validates better
            cand = replace(params, neighbour_coords=use_neighbours)
            coords = coordinates(gev, cand, probs, place_coords, top)
            err = distance_km(coords[:, 0], coords[:, 1], lat, lon)
            scored.append(((float(np.mean(err <= 161)), -float(np.median(err))), use_neighbours, err, coords))
        (acc, neg_med), use_neighbours, err, coords = max(scored, key=lambda s: s[0])
        params = replace(params, neighbour_coords=use_neighbours)
        truth_cls = np.full(len(geo_idx), -1) if true_class is None else np.asarray(true_class)[geo_idx]
        temperature = fit_temperature(probs, truth_cls)
        calibrated = calibrate(probs, temperature)
        params = replace(params, place_temperature=temperature)
        report["calibration"] = {"temperature": temperature,
                                 "ece_before": _top_ece(probs, truth_cls), "ece_after": _top_ece(calibrated, truth_cls)}
        conf = decision_confidence(calibrated, top, params, areas)
        # Hedging: unsure posts get a point that minimises distance rather than one bet on a place.
        hedges = [("none", 0.0, err)]
        curve = []
        for kind in (("regression",) if gev.reg_coords is not None else ()) + ("expected",):
            for q in HEDGE_QUANTILES[1:] + (1.0,):
                below = float(np.quantile(conf, q)) if q < 1.0 else float("inf")
                cand = replace(params, hedge=kind, hedge_below=below)
                hc, _ = hedge_coordinates(coords, conf, gev, calibrated, cand, place_coords)
                herr = distance_km(hc[:, 0], hc[:, 1], lat, lon)
                hedges.append((kind, below, herr))
                curve.append({"hedge": kind, "quantile": q, "acc_at_161": round(float(np.mean(herr <= 161)), 4),
                              "median_km": round(float(np.median(herr)), 1)})
        kind, below, err = max(hedges, key=lambda h: _hedge_key(h[2], hedges[0][2], hedge_tolerance))
        params = replace(params, hedge=kind, hedge_below=below if np.isfinite(below) else 1.0 + 1e-9)
        acc, neg_med = float(np.mean(err <= 161)), -float(np.median(err))
        report["hedge"] = {"chosen": kind, "below": params.hedge_below,
                           "without": {"acc_at_161": round(float(np.mean(hedges[0][2] <= 161)), 4),
                                       "median_km": round(float(np.median(hedges[0][2])), 1)}, "curve": curve}
        clf = replace(params, geo_alpha=1.0, decision_km=0.0)
        clf_top = decide_place(place_distribution(gev, clf), clf, areas)
        report["geo_classifier_only"] = {"acc_at_161": float(np.mean(distance_km(place_coords[clf_top, 0], place_coords[clf_top, 1], lat, lon) <= 161))}
        edges = list(np.quantile(conf, [0.2, 0.4, 0.6, 0.8])) if len(conf) >= 25 else []
        bins = np.searchsorted(edges, conf, side="right")
        radius = [float(np.median(err[bins == b])) if np.any(bins == b) else float(np.median(err)) for b in range(len(edges) + 1)]
        params = replace(params, radius_edges=[float(e) for e in edges], radius_km=radius)
        report["geo"] = {"val_queries": int(geo_idx.size), "acc_at_161": acc, "median_km": -neg_med}

    tag_idx = np.array([i for i, q in enumerate(queries) if q.hashtags], dtype=int)
    if tag_idx.size:
        tev = _subset(ev, tag_idx)
        truth = [queries[i].hashtags for i in tag_idx]
        has_habits = any(len(s) for s in tev.habit_sims)
        gammas = HABIT_GAMMAS if has_habits else (params.habit_gamma,)
        best = None
        combos = list(itertools.product(*TAG_GRID.values(), gammas, TEXT_GAMMAS))
        for k, temp, beta, gamma, text_gamma in tqdm(combos, desc="tune tag fusion", disable=not progress):
            cand = replace(params, tag_k=int(k), tag_temperature=float(temp), tag_beta=float(beta), habit_gamma=float(gamma),
                           text_gamma=float(text_gamma))
            scores, _ = tag_scores(tev, cand)
            order, _ = select_tags(scores, cand, tags=tev.tags)
            ranked = [[tev.tags[t] for t in row] for row in order]
            for theta in THRESHOLDS:
                keep = select_tags(scores, replace(cand, tag_threshold=theta))[1]
                recommended = [r[:n] for r, n in zip(ranked, keep)]
                f1 = tag_metrics(recommended, ranked, truth)["f1_at_5"]
                if best is None or f1 > best[0]:
                    best = (f1, replace(cand, tag_threshold=float(theta)))
        params = replace(params, **{k: getattr(best[1], k) for k in ("tag_k", "tag_temperature", "tag_beta", "habit_gamma", "text_gamma", "tag_threshold")})
        report["hashtags"] = {"val_queries": int(tag_idx.size), "f1_at_5": best[0], "habit_gamma_tuned": has_habits}
    report["params"] = params.to_dict()
    return params, report
