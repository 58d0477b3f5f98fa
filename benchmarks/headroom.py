"""Where the geolocation targets are missed: how much place signal the queries hold, checked on
validation users only.

The Acc@161 targets compare TagAtlas with the best baseline, which on tweets2015, users2015 and ja311 is TagAtlas's
own classifier alone or TF-IDF + logistic regression. This script asks what is left to gain: it trains on the fit
users plus half of the validation users (the same halves as benchmarks/refit.py), asks the other half with the
evaluation protocol (hashtags masked), and reports per answer Acc@25, Acc@161 and the median error, together with
oracles that pick, per query, whichever of several answers is right (no method can do better than its oracle), the
oracles over TagAtlas and a city the text names (each name read as its likeliest GeoNames candidate, or as any), and
the fused distribution's most probable class with the TF-IDF model's probabilities mixed in at a few shares (would a
second text classifier help?), and, where the asked users have located past posts, the `user_last_place` baseline's
answer and the oracles over it. The held-out test users are never read past the split. Writes the
`headroom-<dataset>` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/headroom.py --dataset tweets2015
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

import numpy as np

from tagatlas.data import distance_km, history_and_queries
from tagatlas.data.toponyms import gazetteer
from tagatlas.evaluation.baselines import MostFrequentPlace, TfidfLogReg, user_last_place
from tagatlas.evaluation.runner import as_query
from tagatlas.recommender import ModelConfig, TagAtlas
from tagatlas.recommender.fusion import place_distribution

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import answer_row, data_file, dataset_arguments, emit_block, nested_validation, provenance, shown  # noqa: E402

LR_SHARES = (0.0, 0.1, 0.2, 0.3, 0.5)  # shares of the TF-IDF model's probabilities mixed into the fused distribution


def oracle_row(errors: list[np.ndarray]) -> dict[str, float]:
    """An oracle over several answers: per query the nearest of them (a bound no choice among them can pass)."""
    return answer_row(np.min(np.stack(errors), axis=0))


def named_city_errors(texts: list[str | None], lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the distance from the truth to the nearest city its text names (inf: none), reading each name
    (a) as any of its GeoNames candidates and (b) as its likeliest one (population and the post's other names)."""
    gaz = gazetteer()
    any_reading, likeliest = np.full(len(texts), np.inf), np.full(len(texts), np.inf)
    for i, text in enumerate(texts):
        resolved = gaz.resolve(gaz.find(text))
        for out, cities in ((any_reading, [c for _, cand, _ in resolved for c in cand.tolist()]),
                            (likeliest, [int(cand[np.argmax(prob)]) for _, cand, prob in resolved])):
            if cities:
                out[i] = float(np.min(distance_km(gaz.lat[cities], gaz.lon[cities], np.full(len(cities), lat[i]), np.full(len(cities), lon[i]))))
    return any_reading, likeliest


def point_errors(points: list[tuple[float, float] | None], fallback: tuple[float, float], lat: np.ndarray,
                 lon: np.ndarray) -> np.ndarray:
    """Per query, the distance from the truth to a point answer (None: the fallback point, as the baseline does)."""
    answered = [fallback if p is None else p for p in points]
    return np.asarray(distance_km([a for a, _ in answered], [b for _, b in answered], lat, lon), dtype=float)


def user_rows(tagatlas_err: np.ndarray, lr_err: np.ndarray, classifier_err: np.ndarray,
              last_err: np.ndarray) -> dict[str, dict[str, float]]:
    """The user's last place and the oracles over it, for datasets whose asked users have located history."""
    return {"user's closest located past post": answer_row(last_err),
            "oracle: TagAtlas or the user's closest past post": oracle_row([tagatlas_err, last_err]),
            "oracle: TagAtlas, classifier, TF-IDF or the user's closest past post":
                oracle_row([tagatlas_err, classifier_err, lr_err, last_err])}


def class_errors(model: TagAtlas, classes: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Per query, the distance from the truth to the place class answered."""
    coords = model.geolocator_.place_coords_[classes]
    return np.asarray(distance_km(coords[:, 0], coords[:, 1], lat, lon), dtype=float)


def measure(train: list, held: list) -> tuple[dict[str, dict[str, float]], dict[str, float], int]:
    """(rows by answer, TF-IDF mix rows by share, located queries) on the held-out validation users."""
    model = TagAtlas(ModelConfig()).fit(train, progress=False)
    history, queries = history_and_queries(held)
    model.add(history, role="eval-history", progress=False)
    located = [as_query(q) for q in queries if q.has_location]
    lat, lon = np.array([q.lat for q in located]), np.array([q.lon for q in located])
    ev = model.evidence(located)
    preds = model.predictions_from(located, ev)
    tagatlas_err = np.asarray(distance_km([p.lat for p in preds], [p.lon for p in preds], lat, lon), dtype=float)
    classifier_err = class_errors(model, ev.place_probs.argmax(axis=1), lat, lon)
    classes = model.geolocator_.class_of([p.place for p in train], [p.lat if p.lat is not None else np.nan for p in train],
                                         [p.lon if p.lon is not None else np.nan for p in train])
    lr = TfidfLogReg().fit([p.text or "" for p in train], classes)
    lr_err = class_errors(model, lr.predict([q.text for q in located]), lat, lon)
    any_reading, likeliest = named_city_errors([q.text for q in located], lat, lon)
    last = user_last_place(history, located)
    most_frequent = model.geolocator_.place_coords_[int(MostFrequentPlace().fit(classes, len(model.geolocator_.places_)).class_)]
    last_err = point_errors(last, (float(most_frequent[0]), float(most_frequent[1])), lat, lon)
    rows = {"TagAtlas": answer_row(tagatlas_err), "classifier alone": answer_row(classifier_err),
            "TF-IDF + logistic regression": answer_row(lr_err),
            "oracle: TagAtlas or TF-IDF": oracle_row([tagatlas_err, lr_err]),
            "oracle: TagAtlas, classifier or TF-IDF": oracle_row([tagatlas_err, classifier_err, lr_err]),
            "oracle: TagAtlas or a city the text names, its likeliest reading": oracle_row([tagatlas_err, likeliest]),
            "oracle: TagAtlas or a city the text names, any reading": oracle_row([tagatlas_err, any_reading])}
    if any(p is not None for p in last):
        rows.update(user_rows(tagatlas_err, lr_err, classifier_err, last_err))
    fused = place_distribution(ev, model.fusion_)
    lr_probs = np.zeros_like(fused)
    if lr.constant_ is None:
        lr_probs[:, lr.clf_.classes_] = lr.clf_.predict_proba(lr.vec_.transform([q.text or "" for q in located]))
    mixes = {share: answer_row(class_errors(model, ((1 - share) * fused + share * lr_probs).argmax(axis=1), lat, lon)) for share in LR_SHARES}
    return rows, mixes, len(located)


def table(rows: dict[str, dict[str, float]], first: str) -> str:
    return (f"| {first} | Acc@25 | Acc@161 | median km |\n|---|---|---|---|\n"
            + "\n".join(f"| {name} | {r['acc_25']:.3f} | {r['acc_161']:.3f} | {r['median_km']:.0f} |" for name, r in rows.items()))


def main() -> int:
    ap = dataset_arguments(__doc__.splitlines()[0])
    args = ap.parse_args()
    path = data_file(args.data_root, args.dataset)
    train, held = nested_validation(path)
    started = time.perf_counter()
    rows, mixes, n_queries = measure(train, held)
    body = (f"{provenance(f'.venv/bin/python benchmarks/headroom.py --dataset {args.dataset}')}\n\n"
            f"Data: `{shown(path)}`, training users only: trained on {len(train)} posts (the fit users and half of the validation "
            f"users), asked on the other half ({len({p.user_key for p in held})} users, {n_queries} located queries, hashtags "
            f"masked); {time.perf_counter() - started:.0f} s.\n\n"
            + table(rows, "answer") + "\n\n"
            + table({f"share {share:g}": r for share, r in mixes.items()}, "fused most probable class, TF-IDF probabilities mixed in at"))
    emit_block(f"headroom-{args.dataset}", body, "## Where the geolocation targets are missed", args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
