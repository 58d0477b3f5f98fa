"""Hashtag tuning's time with and without its shortcuts, and proof they choose the same setting.

`recommender/tag_tuning.py` searches thousands of settings, most differing from the one before only by the
selection threshold or by a source's weight. `TagF1` reuses the last ranking while only the threshold changes and
`tag_scores(memo=...)` reuses each source's unweighted scores; this script runs the whole search (`search_tags`) with
them and with a plain scorer (every setting scored and ranked from scratch, as before the shortcuts) on the same
synthetic evidence (random neighbours, habits, written tags, tag matches and a plug-in source, made up here at the
size of a validation batch: scale only, no real posts), checks both choose the same setting with the same F1, and
writes the `tag-tuning` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/tag_tuning.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

from tagatlas.recommender.evidence.base import SourceEvidence
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.metrics import tag_metrics
from tagatlas.recommender.tag_tuning import TagF1, search_tags

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, seconds_table, write_block  # noqa: E402


class PlainTagF1(TagF1):
    """Every setting scored, ranked and counted from scratch (tuning before its shortcuts)."""

    def scores(self, cand: FusionParams):
        return tag_scores(self.tev, cand)

    def __call__(self, cand: FusionParams, scores=None, parts=None):
        if scores is None:
            scores, parts = tag_scores(self.tev, cand)
        order, keep = select_tags(scores, cand, tags=self.tev.tags, parts=parts)
        ranked = [[self.tev.tags[t] for t in row] for row in order]
        return tag_metrics([r[:n] for r, n in zip(ranked, keep)], ranked, self.truth)["f1_at_5"]


def synthetic_batch(n: int, k: int, n_tags: int, max_habits: int, seed: int = 0) -> tuple[Evidence, list[list[str]]]:
    """Random evidence for `n` validation queries over `n_tags` tags (synthetic: made up for timing)."""
    rng = np.random.default_rng(seed)
    tags = [f"tag{j:05d}" for j in rng.permutation(n_tags)]
    popular = rng.zipf(1.5, size=200_000) % n_tags  # tags drawn Zipf-like, as real tag use is

    def lists(count: int, most: int) -> list[list[int]]:
        return [sorted(set(rng.choice(popular, size=rng.integers(0, most + 1)).tolist())) for _ in range(count)]

    sims = np.sort(rng.random((n, k)), axis=1)[:, ::-1]
    habits = rng.integers(0, max_habits + 1, size=n)
    ev = Evidence(place_probs=np.ones((n, 1)), tag_probs=rng.random((n, n_tags // 2)) ** 8, nb_sims=sims,
                  nb_class=np.zeros((n, k), int), nb_lat=np.zeros((n, k)), nb_lon=np.zeros((n, k)),
                  nb_ids=[[f"n{j}" for j in range(k)] for _ in range(n)], nb_tags=[lists(k, 8) for _ in range(n)],
                  habit_sims=[rng.random(h) for h in habits], habit_tags=[lists(h, 8) for h in habits],
                  habit_ids=[["h"] * h for h in habits], habit_ages=[rng.choice([0.0, 2.0, 40.0], size=h) for h in habits],
                  tags=tags, n_vocab=n_tags // 2, text_tags=lists(n, 3), embed_tags=lists(n, 10),
                  sources={"synthetic": SourceEvidence(tag_ids=lists(n, 3))})
    ev.text_prior = [rng.random(len(t)) for t in ev.text_tags]
    ev.embed_sims = [np.sort(rng.random(len(t)))[::-1] for t in ev.embed_tags]
    ev.sources["synthetic"].tag_values = [np.ones(len(t)) for t in ev.sources["synthetic"].tag_ids]
    truth = [[tags[t] for t in set(rng.choice(popular, size=rng.integers(1, 6)).tolist())] for _ in range(n)]
    return ev, truth


class SyntheticSource:
    """The plug-in source the synthetic evidence names, with the tag weights tuning tries."""

    name, needs, place_weights, tag_weights = "synthetic", set(), (0.0,), (0.0, 0.5, 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200, help="validation queries with true tags")
    ap.add_argument("--tags", type=int, default=2000, help="tags in the batch vocabulary")
    ap.add_argument("--neighbours", type=int, default=50)
    ap.add_argument("--habits", type=int, default=10, help="most past posts of a query's user")
    ap.add_argument("--no-write", action="store_true", help="print the block only")
    args = ap.parse_args()
    ev, truth = synthetic_batch(args.queries, args.neighbours, args.tags, args.habits)
    runs = {}
    for name, scorer in (("with shortcuts", TagF1), ("plain", PlainTagF1)):
        started = time.perf_counter()
        params, report = search_tags(scorer(ev, truth), FusionParams(), progress=False, sources=[SyntheticSource()])
        runs[name] = (time.perf_counter() - started, params, report["f1_at_5"])
        print(f"{name}: {runs[name][0]:.1f} s, F1@5 {runs[name][2]:.4f}", flush=True)
    same = runs["plain"][1] == runs["with shortcuts"][1] and runs["plain"][2] == runs["with shortcuts"][2]
    if not same:
        print("the two searches chose differently:", runs["plain"][1], runs["with shortcuts"][1], file=sys.stderr)
        return 1
    cmd = ".venv/bin/python benchmarks/tag_tuning.py" + ("" if (args.queries, args.tags, args.neighbours, args.habits) == (200, 2000, 50, 10)
                                                         else f" --queries {args.queries} --tags {args.tags} --neighbours {args.neighbours} --habits {args.habits}")
    chosen = runs["plain"][1]
    body = (f"{provenance(cmd)}\n\nSynthetic evidence (random, made up for timing): {args.queries} validation queries, {args.tags} tags, "
            f"{args.neighbours} neighbours and up to {args.habits} past posts each, written tags, tag matches and one plug-in source. "
            f"Both searches chose the same setting (tag_k {chosen.tag_k}, tag_beta {chosen.tag_beta}, threshold {chosen.tag_threshold}, "
            f"selector {'quota' if chosen.tag_quota else 'threshold'}) with the same validation F1@5.\n\n"
            + seconds_table("hashtag search (`search_tags`)", {name: runs[name][0] for name in ("plain", "with shortcuts")})
            + f"\n\nThe shortcuts take {runs['with shortcuts'][0] / runs['plain'][0]:.2f}x the plain search's time.")
    print(body if args.no_write else write_block("tag-tuning", body, heading="## Hashtag tuning's shortcuts"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
