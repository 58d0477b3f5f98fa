"""`tagatlas evaluate`: the user-disjoint protocol, TagAtlas and the baselines, one JSON contract.

Protocol: test users are those of the file that the model never trained on (a post without user is
a user of its own). Per user, posts sorted by time: the first half is added to the index as history
(labels visible, an online update), the rest are queries with hashtags masked from the text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from tagatlas.data import Post, distance_km, history_and_queries
from tagatlas.evaluation import uncertainty
from tagatlas.evaluation.baselines import (MostFrequentPlace, Popularity, TfidfKnnTags, TfidfLogReg, UserTop, knn_vote, user_last_place,
                                           stored_texts_and_tags)
from tagatlas.recommender import Geolocator, TagAtlas, geo_metrics, tag_metrics
from tagatlas.recommender.fusion import place_distribution
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.metrics import expected_calibration_error, f1_per_query, new_tag_hits
from tagatlas.recommender.place_list import area_mass, within
from tagatlas.recommender.schema import PlaceScore

log = logging.getLogger(__name__)

TRAIN_ROLES = ("fit", "val", "val-history")
CHUNK = 1000  # queries per batch of evidence


class NoTestPostsError(ValueError):
    """Every post of the file belongs to a user (or is a post) the model trained on."""


def as_query(post: Post) -> Post:
    """The post as a query: hashtags gone from the field (the model masks them in the text itself)."""
    return post.model_copy(update={"hashtags": []})


def with_tags_as_words(text: str | None, hashtags: list[str]) -> str:
    """A text baseline's input in the ingest setting: the caption and the post's hashtags as plain words."""
    return " ".join([text or ""] + list(hashtags))


def geo_pass(model: TagAtlas, posts: list[Post], progress: bool = False, desc: str = "evaluate") -> tuple[list, np.ndarray, np.ndarray]:
    """TagAtlas's predictions for posts, with the classes of the two baselines that read its evidence (the
    neighbour vote and the classifier alone), in chunks so memory stays flat."""
    preds, knn_classes, clf_classes = [], [np.zeros(0, int)], [np.zeros(0, int)]
    for start in tqdm(range(0, len(posts), CHUNK), desc=desc, unit="chunk", disable=not progress or len(posts) <= CHUNK):
        chunk = posts[start : start + CHUNK]
        ev = model.evidence(chunk)
        preds.extend(model.predictions_from(chunk, ev))
        knn_classes.append(knn_vote(ev, model.fusion_.geo_k))
        clf_classes.append(ev.place_probs.argmax(axis=1))
    return preds, np.concatenate(knn_classes), np.concatenate(clf_classes)


def first_place_hits(firsts: list[PlaceScore], geo: Geolocator, decision_km: float, true_place: list[str], lat: np.ndarray,
                     lon: np.ndarray) -> np.ndarray:
    """Whether the truth lay in the area of each first place reported (the event its probability speaks of): the
    truth's class within `decision_km` of a reported class, or the truth within `area_km` of a city reported beyond
    the classes (named_place.py)."""
    if not firsts:
        return np.zeros(0, bool)
    reported = np.array([geo.place_index_.get(f.place, 0) for f in firsts], dtype=np.int64)
    truth_cls = geo.class_of(true_place, np.asarray(lat, float), np.asarray(lon, float))
    hits = within(geo.areas_, decision_km, reported)[np.arange(len(reported)), truth_cls]
    named = np.array([f.place not in geo.place_index_ for f in firsts], dtype=bool)
    if named.any():
        near = distance_km([f.lat for f in firsts], [f.lon for f in firsts], lat, lon) <= np.array([f.area_km for f in firsts])
        hits[named] = near[named]
    return hits


def geo_of_predictions(preds: list, lat: np.ndarray, lon: np.ndarray, true_place: list[str]) -> dict:
    """geo metrics of predictions against the truth (one prediction per located query, in order)."""
    return geo_metrics([p.lat for p in preds], [p.lon for p in preds], lat, lon, [p.places[0].place for p in preds], true_place)


def km_errors(preds: list, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Each prediction's error in km (one prediction per located query, in order)."""
    return distance_km([p.lat for p in preds], [p.lon for p in preds], lat, lon) if len(lat) else np.zeros(0)


def leads(fused: np.ndarray, tagged: np.ndarray, baseline_errors: dict[str, dict[str, np.ndarray]], variant_errors: list[np.ndarray],
          f1_of: dict[str, np.ndarray], geo_users: list[str], tag_users: list[str]) -> dict:
    """The evaluation file's `uncertainty`: each ratio to the best baseline (and the ingest setting's own figures, the
    photo rows' modality gain) with its interval over held-out users (`uncertainty.py`)."""
    draws, tag_draws = uncertainty.user_draws(geo_users), uncertainty.user_draws(tag_users)
    out = {"method": f"bootstrap over held-out users ({uncertainty.DRAWS} draws, each user with all of its queries)",
           "level": uncertainty.LEVEL, "geo": uncertainty.lead_over_baselines(fused, baseline_errors["geo"], draws),
           "geo_with_tags": uncertainty.lead_over_baselines(tagged, baseline_errors["geo_with_tags"], draws),
           "figures": {"geo_with_tags": uncertainty.figures(tagged, draws)}}
    if f1_of.get("tagatlas") is not None and len(f1_of["tagatlas"]):
        others = [f1 for name, f1 in f1_of.items() if name != "tagatlas"]
        out["hashtags"] = {"f1_at_5": uncertainty.mean_lead(f1_of["tagatlas"], others, tag_draws)}
    if variant_errors:
        out["modality_gain"] = uncertainty.modality_gain(fused, variant_errors, draws)
    return out


def own_figures(confidence: list[float], correct: np.ndarray, geo_users: list[str], ranked: list[list[str]],
                new: list[set[str]], tag_users: list[str]) -> dict:
    """The `uncertainty.figures` that targets set absolutely besides the ingest setting's: place ECE (the located
    queries' first-place probabilities and hits) and new-tag HR@10 (the tagged queries' rankings and their tags born
    after training), each with its interval over the held-out users who have such queries."""
    out = {"place_ece": uncertainty.value_figure([confidence, correct], uncertainty.user_draws(geo_users), expected_calibration_error),
           "new_tag_hr_at_10": uncertainty.value_figure([new_tag_hits(ranked, new)], uncertainty.user_draws(
               [user for user, tags in zip(tag_users, new) if tags]), np.mean)}
    return {name: figure for name, figure in out.items() if figure}


def evaluate(model: TagAtlas, posts: list[Post], progress: bool = True) -> dict:
    started = time.perf_counter()
    train_users = model.posts_.store.user_keys()
    train_ids = model.posts_.store.post_ids()
    test = [p for p in posts if p.user_key not in train_users and p.id not in train_ids]
    if not test:
        raise NoTestPostsError("no post in the file belongs to a user unseen in training: nothing to evaluate on")
    history, queries = history_and_queries(test)
    queries = [q for q in queries if q.has_location or q.hashtags]
    if not queries:
        raise NoTestPostsError("the test users' query posts have neither a location nor hashtags")
    training = [s for _, stored, _ in model.posts_.store.iter_all(roles=TRAIN_ROLES) for s in stored]
    training_tags = {t for s in training for t in s.hashtags}
    model.add(history, role="eval-history", progress=progress)
    history_tags = {t for h in history for t in h.hashtags}
    new_tags = [(set(q.hashtags) - training_tags) & history_tags for q in queries]

    # TagAtlas and the baselines that read its evidence, in chunks so memory stays flat on large files.
    masked = [as_query(q) for q in queries]
    clf_only = replace(model.fusion_, tag_beta=1.0, habit_gamma=0.0, text_gamma=0.0, embed_gamma=0.0, source_tags={}, tag_quota={})
    preds, knn_classes, clf_classes, clf_ranked, raw_conf = [], [], [], [], []
    for start in tqdm(range(0, len(masked), CHUNK), desc="evaluate", unit="chunk", disable=not progress or len(masked) <= CHUNK):
        chunk = masked[start : start + CHUNK]
        ev = model.evidence(chunk)
        chunk_preds = model.predictions_from(chunk, ev)
        preds.extend(chunk_preds)
        raw = place_distribution(ev, model.fusion_)  # before temperature scaling: what calibration changed
        index = model.geolocator_.place_index_
        first = np.array([index.get(p.places[0].place, 0) for p in chunk_preds], dtype=np.int64)
        mass = area_mass(raw, first, model.geolocator_.areas_, model.fusion_.decision_km)
        # a city reported beyond the classes (named_place.py) has one probability, measured on validation
        raw_conf.extend([m if p.places[0].place in index else p.places[0].prob for m, p in zip(mass.tolist(), chunk_preds)])
        knn_classes.append(knn_vote(ev, model.fusion_.geo_k))
        clf_classes.append(ev.place_probs.argmax(axis=1))
        clf_scores, _ = tag_scores(ev, clf_only)
        clf_order, _ = select_tags(clf_scores, clf_only, tags=ev.tags)
        clf_ranked.extend([[ev.tags[t] for t in row if clf_scores[i, t] > 0] for i, row in enumerate(clf_order)])
    knn_classes, clf_classes = np.concatenate(knn_classes), np.concatenate(clf_classes)

    geo_idx = [i for i, q in enumerate(queries) if q.has_location]
    tag_idx = [i for i, q in enumerate(queries) if q.hashtags]
    lat = np.array([queries[i].lat for i in geo_idx]); lon = np.array([queries[i].lon for i in geo_idx])
    true_place = model.geolocator_.label(lat, lon) if geo_idx else []
    truth = [queries[i].hashtags for i in tag_idx]
    new = [new_tags[i] for i in tag_idx]

    baseline_errors: dict[str, dict[str, np.ndarray]] = {"geo": {}, "geo_with_tags": {}}  # per section, per baseline: km errors

    def scored(coords: np.ndarray, labels: list[str], section: str, name: str) -> dict:
        """A baseline's answers (points, place labels): their metrics, and their km errors kept for the intervals."""
        baseline_errors[section][name] = distance_km(coords[:, 0], coords[:, 1], lat, lon) if len(lat) else np.zeros(0)
        return geo_metrics(coords[:, 0], coords[:, 1], lat, lon, labels, true_place)

    def geo_from_classes(classes: np.ndarray, section: str, name: str) -> dict:
        return scored(model.geolocator_.place_coords_[classes], [model.geolocator_.places_[c] for c in classes], section, name)

    def geo_from_points(points: list[tuple[float, float] | None], fallback: int, section: str, name: str) -> dict:
        """Baseline answers given as points (None: the fallback place class instead)."""
        geo = model.geolocator_
        coords = np.array([pt if pt is not None else geo.place_coords_[fallback] for pt in points], dtype=float).reshape(-1, 2)
        own = geo.label(coords[:, 0], coords[:, 1]) if len(coords) else []
        labels = [lab if pt is not None else geo.places_[fallback] for pt, lab in zip(points, own)]
        return scored(coords, labels, section, name)

    f1_of: dict[str, np.ndarray] = {}  # per method: each tagged query's F1@5 (what the hashtag interval draws from)

    def tags_from(rankings: list[list[str]], recommended: list[list[str]] | None = None, name: str = "") -> dict:
        rankings = [rankings[i] for i in tag_idx]
        rec = [r[:5] for r in rankings] if recommended is None else [recommended[i] for i in tag_idx]
        if name:
            f1_of[name] = f1_per_query(rec, truth)
        return tag_metrics(rec, rankings, truth, new)

    # TagAtlas
    geo_t = geo_metrics([preds[i].lat for i in geo_idx], [preds[i].lon for i in geo_idx], lat, lon,
                        [preds[i].places[0].place for i in geo_idx], true_place)
    ranked = [[t.tag for t in p.hashtag_candidates] for p in preds]
    tags_t = tags_from(ranked, [[t.tag for t in p.hashtags] for p in preds], name="tagatlas")
    fused = km_errors([preds[i] for i in geo_idx], lat, lon)
    radius_coverage = float(np.mean(fused <= np.array([preds[i].radius_km for i in geo_idx]))) if geo_idx else None
    tags_t5 = tags_from(ranked)
    # The event a listed place's probability is about: the truth lay in its area (within area_km of it).
    geo = model.geolocator_
    correct = first_place_hits([preds[i].places[0] for i in geo_idx], geo, model.fusion_.decision_km, list(true_place), lat, lon)
    calibration = {
        "n": len(geo_idx), "temperature": model.fusion_.place_temperature, "area_km": model.fusion_.decision_km,
        "area_calibration": list(model.fusion_.area_calibration),
        "area_calibration_method": "isotonic" if model.fusion_.area_isotonic else "platt",
        "place_ece": expected_calibration_error([preds[i].places[0].prob for i in geo_idx], correct),
        "place_ece_uncalibrated": expected_calibration_error([raw_conf[i] for i in geo_idx], correct),
        "hedged": sum(preds[i].location_source == "hedge" for i in geo_idx),
    }

    # Geolocation baselines
    classes = model.geolocator_.class_of([s.place for s in training], [s.lat if s.lat is not None else np.nan for s in training],
                             [s.lon if s.lon is not None else np.nan for s in training])
    texts, tag_lists = stored_texts_and_tags(training)
    geo_sub = np.array(geo_idx, dtype=int)
    most_frequent = MostFrequentPlace().fit(classes, len(model.geolocator_.places_))
    geo_b = {
        "most_frequent": geo_from_classes(most_frequent.predict(len(geo_idx)), "geo", "most_frequent"),
        "tfidf_logreg": geo_from_classes(TfidfLogReg().fit(texts, classes).predict([queries[i].text for i in geo_idx]) if geo_idx
                                         else np.zeros(0, int), "geo", "tfidf_logreg"),
        "knn_vote": geo_from_classes(knn_classes[geo_sub] if geo_idx else np.zeros(0, int), "geo", "knn_vote"),
        "classifier_only": geo_from_classes(clf_classes[geo_sub] if geo_idx else np.zeros(0, int), "geo", "classifier_only"),
    }
    geo_b["user_last_place"] = geo_from_points(user_last_place(history, [queries[i] for i in geo_idx]), int(most_frequent.class_),
                                               "geo", "user_last_place")

    # Hashtag baselines
    popularity = Popularity().fit(tag_lists)
    knn_texts = texts + [h.text or "" for h in history]
    knn_tags = tag_lists + [h.hashtags for h in history]
    tag_b = {
        "popularity": tags_from(popularity.predict(len(queries)), name="popularity"),
        "user_top": tags_from(UserTop().fit(history, popularity).predict(queries), name="user_top"),
        "tfidf_knn": tags_from(TfidfKnnTags().fit(knn_texts, knn_tags).predict([q.text for q in queries]), name="tfidf_knn"),
        "classifier_only": tags_from(clf_ranked, name="classifier_only"),
    }
    # The ingest setting: the same queries, each with its own hashtags as input (the text baseline reads them as words).
    located = [queries[i] for i in geo_idx]
    tagged_preds, tagged_knn, tagged_clf = geo_pass(model, located, progress, desc="evaluate with tags")
    tagged_texts = [with_tags_as_words(t, tags) for t, tags in zip(texts, tag_lists)]
    geo_with_tags = {
        "tagatlas": geo_of_predictions(tagged_preds, lat, lon, true_place),
        "baselines": {
            "most_frequent": geo_b["most_frequent"],
            "tfidf_logreg": geo_from_classes(TfidfLogReg().fit(tagged_texts, classes).predict(
                [with_tags_as_words(q.text, q.hashtags) for q in located]) if geo_idx else np.zeros(0, int), "geo_with_tags", "tfidf_logreg"),
            "knn_vote": geo_from_classes(tagged_knn, "geo_with_tags", "knn_vote"),
            "classifier_only": geo_from_classes(tagged_clf, "geo_with_tags", "classifier_only"),
            "user_last_place": geo_b["user_last_place"],
        },
    }
    for same in ("most_frequent", "user_last_place"):  # no input they read changes with the hashtags
        baseline_errors["geo_with_tags"][same] = baseline_errors["geo"][same]
    # Galaxy's single-modality rows, when the queries have photos: TagAtlas with the photo, then the text, removed.
    variants, variant_errors = {}, []
    if any(q.image for q in located):
        masked_located = [as_query(q) for q in located]
        for name, change in (("geo_text_only", {"image": None}), ("geo_image_only", {"text": None})):
            single = geo_pass(model, [q.model_copy(update=change) for q in masked_located], progress, desc=name)[0]
            variants[name] = geo_of_predictions(single, lat, lon, true_place)
            variant_errors.append(km_errors(single, lat, lon))
    lead = leads(fused, km_errors(tagged_preds, lat, lon), baseline_errors, variant_errors, f1_of,
                 [queries[i].user_key for i in geo_idx], [queries[i].user_key for i in tag_idx])
    lead["figures"].update(own_figures([preds[i].places[0].prob for i in geo_idx], correct, [queries[i].user_key for i in geo_idx],
                                       [ranked[i] for i in tag_idx], new, [queries[i].user_key for i in tag_idx]))

    users = {q.user_key for q in test}
    return {
        "n_queries": len(queries),
        "n_users": len(users),
        "geo": {"tagatlas": geo_t, "baselines": geo_b},
        "geo_with_tags": geo_with_tags,
        **({"variants": variants} if variants else {}),
        "hashtags": {"tagatlas": tags_t, "baselines": tag_b, "variants": {"tagatlas_top5": tags_t5}},
        "calibration": calibration,
        "uncertainty": lead,
        "seconds": {"train": float(model.train_seconds_), "evaluate": time.perf_counter() - started},
        "details": {"test_posts": len(test), "history_posts": len(history), "geo_queries": len(geo_idx),
                    "new_tag_queries": sum(1 for s in new if s), "radius_coverage": radius_coverage,
                    "fusion": model.fusion_.to_dict()},
    }


def format_table(result: dict, title: str = "") -> str:
    """A plain-text table of TagAtlas next to the baselines."""
    lines = [title] if title else []
    lines.append(f"queries {result['n_queries']}  users {result['n_users']}  "
                 f"train {result['seconds']['train']:.0f} s  evaluate {result['seconds']['evaluate']:.0f} s")
    lines.append(f"{'geolocation':<18}{'acc_place':>10}{'@1km':>8}{'@25km':>8}{'@161km':>8}{'@750km':>8}{'@2500km':>9}{'median km':>11}{'mean km':>9}")
    rows = [("tagatlas", result["geo"]["tagatlas"])] + list(result["geo"]["baselines"].items())
    for name, m in rows:
        a = m["acc_at_km"]
        lines.append(f"{name:<18}{m['acc_place']:>10.3f}{a['1']:>8.3f}{a['25']:>8.3f}{a['161']:>8.3f}{a['750']:>8.3f}{a['2500']:>9.3f}"
                     f"{m['median_km']:>11.0f}{m['mean_km']:>9.0f}")
    c = result.get("calibration") or {}
    if c.get("place_ece") is not None:
        lines.append(f"place ECE {c['place_ece']:.3f} (truth within {c.get('area_km', 0):.0f} km of the first place; before calibration "
                     f"{c['place_ece_uncalibrated']:.3f}); "
                     f"{c['hedged']} of {c['n']} posts unsure enough to get hedged coordinates")
    h = result["hashtags"]
    lines.append(f"{'hashtags (n=' + str(h['tagatlas']['n']) + ')':<18}{'F1@5':>10}{'P@5':>8}{'R@5':>8}{'HR@5':>8}{'MRR':>8}{'newHR@10':>9}")
    rows = [("tagatlas", h["tagatlas"])] + [(f"({k})", v) for k, v in h.get("variants", {}).items()] + list(h["baselines"].items())
    fmt = lambda v, w: f"{v:>{w}.3f}" if isinstance(v, float) else f"{'-':>{w}}"  # noqa: E731
    for name, m in rows:
        lines.append(f"{name:<18}{fmt(m['f1_at_5'], 10)}{fmt(m['precision_at_5'], 8)}{fmt(m['recall_at_5'], 8)}"
                     f"{fmt(m['hr_at_5'], 8)}{fmt(m['mrr'], 8)}{fmt(m['new_tag_hr_at_10'], 9)}")
    return "\n".join(lines)
