"""Geolocation tuning's grid with and without its first-entry shortcut, and proof they choose the same setting.

`_GeoTuning.grid` scores every (neighbour count, sharpness, classifier weight, decision radius) on the validation
queries, each by the place `decided_label` reports: the first of the places a prediction lists. Listing a post's
places takes up to five greedy steps, each a product of the (places x places) area matrix with the batch; with
`first_only` a post stops being listed once its first area outweighs all the mass still unclaimed, which no later
area can outweigh. This script runs the grid with the shortcut and with the full list (as before it) on the same
synthetic evidence (random places, classifier probabilities from peaked to flat and neighbour votes, made up here at
the size of the largest validation batch, tweets2015's: scale only, no real posts), checks both choose the same
setting with the same score, and writes the `geo-tuning` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/geo_tuning.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

from tagatlas.data import Post
from tagatlas.recommender import tuning
from tagatlas.recommender.fusion import Evidence, FusionParams, PlaceAreas, decide_place, label_in_area
from tagatlas.recommender.place_list import place_list

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, seconds_table, write_block  # noqa: E402


def full_list_label(probs: np.ndarray, p: FusionParams, areas: PlaceAreas) -> np.ndarray:
    """`decided_label` as before the shortcut: every post's whole list, then its first entry."""
    first = label_in_area(probs, decide_place(probs, p, areas), p, areas)
    return place_list(probs, first, areas, p.decision_km)[0][:, 0]


def synthetic_batch(n: int, n_places: int, k: int, seed: int = 0) -> tuple[Evidence, list[Post], PlaceAreas]:
    """Random evidence for `n` located validation queries over `n_places` places (synthetic: made up for timing).
    Each query's truth lies near a random place; the classifier leans to that place with a strength drawn from
    nothing to peaked, and its neighbours carry that place with the same odds, other places otherwise."""
    rng = np.random.default_rng(seed)
    coords = np.column_stack([rng.uniform(25.0, 49.0, n_places), rng.uniform(-125.0, -67.0, n_places)])
    truth_cls = rng.integers(0, n_places, n)
    truth = coords[truth_cls] + rng.normal(0.0, 0.3, (n, 2))
    strength = rng.uniform(0.0, 8.0, n)
    logits = rng.normal(0.0, 1.0, (n, n_places))
    logits[np.arange(n), truth_cls] += strength
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    right = rng.random((n, k)) < (strength / 8.0)[:, None]
    nb_class = np.where(right, truth_cls[:, None], rng.integers(0, n_places, (n, k)))
    nb_sims = np.sort(rng.uniform(0.2, 0.9, (n, k)), axis=1)[:, ::-1]
    ev = Evidence(place_probs=probs, tag_probs=np.zeros((n, 1)), nb_sims=nb_sims, nb_class=nb_class,
                  nb_lat=coords[nb_class, 0], nb_lon=coords[nb_class, 1], nb_ids=[[] for _ in range(n)],
                  nb_tags=[[] for _ in range(n)], habit_sims=[np.zeros(0)] * n, habit_tags=[[] for _ in range(n)],
                  habit_ids=[[] for _ in range(n)], tags=["synthetic"], n_vocab=1)
    posts = [Post(id=f"synthetic-{i}", text="synthetic", lat=float(lat), lon=float(lon)) for i, (lat, lon) in enumerate(truth)]
    return ev, posts, PlaceAreas(coords)


def timed_grid(ev: Evidence, posts: list[Post], areas: PlaceAreas, label_rule) -> tuple[float, FusionParams, tuple]:
    """Seconds, chosen setting and its score of one whole geo grid with `label_rule` as `decided_label`."""
    geo = tuning._GeoTuning(ev, posts, areas, np.full(len(posts), -1), {})
    with mock.patch.object(tuning, "decided_label", label_rule):
        started = time.perf_counter()
        chosen = geo.grid(FusionParams(), progress=False)
        seconds = time.perf_counter() - started
        return seconds, chosen, geo.score(chosen)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1564, help="located validation queries")
    ap.add_argument("--places", type=int, default=1188, help="place classes")
    ap.add_argument("--neighbours", type=int, default=50)
    ap.add_argument("--no-write", action="store_true", help="print the block only")
    args = ap.parse_args()
    ev, posts, areas = synthetic_batch(args.queries, args.places, args.neighbours)
    runs = {}
    for name, rule in (("full list", full_list_label), ("first entry only", tuning.decided_label)):
        runs[name] = timed_grid(ev, posts, areas, rule)
        print(f"{name}: {runs[name][0]:.1f} s, chose {runs[name][1].geo_k}/{runs[name][1].geo_temperature}/"
              f"{runs[name][1].geo_alpha}/{runs[name][1].decision_km}", flush=True)
    if runs["full list"][1:] != runs["first entry only"][1:]:
        print("the two grids chose differently:", runs["full list"][1:], runs["first entry only"][1:], file=sys.stderr)
        return 1
    cmd = ".venv/bin/python benchmarks/geo_tuning.py" + ("" if (args.queries, args.places, args.neighbours) == (1564, 1188, 50)
                                                         else f" --queries {args.queries} --places {args.places} --neighbours {args.neighbours}")
    chosen = runs["full list"][1]
    n_settings = int(np.prod([len(v) for v in tuning.GEO_GRID.values()]))
    body = (f"{provenance(cmd)}\n\nSynthetic evidence (random, made up for timing): {args.queries} located validation queries, "
            f"{args.places} places, {args.neighbours} neighbours each, classifier probabilities from flat to peaked. "
            f"Both grids ({n_settings} settings) chose the same setting (geo_k {chosen.geo_k}, temperature {chosen.geo_temperature}, "
            f"classifier weight {chosen.geo_alpha}, decision radius {chosen.decision_km:g} km) with the same score.\n\n"
            + seconds_table("geolocation grid (`_GeoTuning.grid`)", {name: runs[name][0] for name in ("full list", "first entry only")})
            + f"\n\nThe shortcut takes {runs['first entry only'][0] / runs['full list'][0]:.2f}x the full list's time.")
    print(body if args.no_write else write_block("geo-tuning", body, heading="## Geolocation tuning's shortcuts"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
