"""Tags born after training, on real posts: a time split, not a user split.

For each dataset whose posts carry timestamps: train TagAtlas on the earliest 60 % of posts, index the
next 20 % online (the stream a service sees after training), and query the last 20 % with hashtags
masked. A "new tag" is a true tag of a query that no training post carried but a streamed post did —
reachable only through retrieval or the tag-embedding match. Reports new-tag HR@10 and F1@5 for the
tuned model, the model without the tag match, each tag source alone, and a TF-IDF kNN baseline over the
same training + stream posts. Nothing is tuned here (fusion weights come from `fit`'s validation split).

    .venv/bin/python benchmarks/new_tags.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, shown, write_block  # noqa: E402

SPLIT = (0.6, 0.8)


def ranked_by(ev, part: np.ndarray) -> list[list[str]]:
    order = np.lexsort((np.broadcast_to(np.argsort(np.argsort(np.array(ev.tags, dtype=object))), part.shape), -np.round(part, 6)), axis=-1)[:, :20]
    return [[ev.tags[t] for t in row if part[i, t] > 0] for i, row in enumerate(order)]


def measure(path: Path) -> tuple[str, list[str]]:
    from tagatlas.data import read_posts
    from tagatlas.evaluation.baselines import TfidfKnnTags
    from tagatlas.evaluation.runner import as_query
    from tagatlas.recommender import TagAtlas, tag_metrics
    from tagatlas.recommender.tag_fusion import tag_scores

    posts = list(read_posts(path))
    if any(p.created_at is None for p in posts):
        return f"`{shown(path)}`: posts without timestamps, no time split possible.", []
    posts.sort(key=lambda p: (p.timestamp, p.id))
    a, b = (int(f * len(posts)) for f in SPLIT)
    train, stream, queries = posts[:a], posts[a:b], [p for p in posts[b:] if p.hashtags]
    started = time.perf_counter()
    model = TagAtlas().fit(train, progress=False)
    model.add(stream, role="stream")
    trained = {t for p in train for t in p.hashtags}
    streamed = {t for p in stream for t in p.hashtags} - trained
    new = [set(q.hashtags) & streamed for q in queries]
    masked = [as_query(q) for q in queries]
    truth = [q.hashtags for q in queries]
    rows: list[tuple[str, dict]] = []
    variants = {"TagAtlas (as tuned)": model.fusion_, "TagAtlas without the tag-embedding match": replace(model.fusion_, embed_gamma=0.0)}
    results = {name: ([], []) for name in variants}
    alone = {}
    for start in range(0, len(masked), 1000):
        chunk = masked[start : start + 1000]
        ev = model.evidence(chunk)
        for name, params in variants.items():
            preds = model.predictions_from(chunk, ev, params)
            results[name][0].extend([t.tag for t in p.hashtags] for p in preds)
            results[name][1].extend([t.tag for t in p.hashtag_candidates] for p in preds)
        _, parts = tag_scores(ev, replace(model.fusion_, tag_beta=0.5, habit_gamma=1.0, text_gamma=1.0, embed_gamma=1.0,
                                           source_tags={name: 1.0 for name in ev.sources}))
        for source, part in parts.items():
            alone.setdefault(source, []).extend(ranked_by(ev, part))
    for name, (rec, ranked) in results.items():
        rows.append((name, tag_metrics(rec, ranked, truth, new)))
    for source, ranked in alone.items():
        rows.append((f"{source} alone", tag_metrics([r[:5] for r in ranked], ranked, truth, new)))
    knn = TfidfKnnTags().fit([p.text or "" for p in train + stream], [p.hashtags for p in train + stream]).predict([q.text for q in masked])
    rows.append(("tfidf_knn (training + stream)", tag_metrics([r[:5] for r in knn], knn, truth, new)))
    fmt = lambda v: f"{v:.3f}" if v is not None else "–"  # noqa: E731
    table = ["| tags from | new-tag HR@10 | F1@5 | HR@5 | MRR |", "|---|---|---|---|---|"]
    table += [f"| {name} | {fmt(m['new_tag_hr_at_10'])} | {fmt(m['f1_at_5'])} | {fmt(m['hr_at_5'])} | {fmt(m['mrr'])} |" for name, m in rows]
    p, v = model.fusion_, model.tuning_["hashtags"]
    head = (f"### {path.parent.name}\n\nData: `{shown(path)}` sorted by time — {len(train)} training posts (to "
            f"{train[-1].created_at:%Y-%m-%d %H:%M}), {len(stream)} streamed after training, {len(queries)} later queries with hashtags, "
            f"{sum(1 for s in new if s)} of them with a new tag ({len(streamed)} tags first seen in the stream). Tuned on the training "
            f"posts' validation split: tag-match weight {p.embed_gamma:g} (T = {p.embed_temperature:g}), selector "
            f"{'per source ' + str(p.tag_quota) if p.tag_quota else f'threshold {p.tag_threshold:g}'}. "
            f"Validation F1@5 there: {v['f1_without_tag_match']:.3f} without the tag match, {v['f1_threshold_selector']:.3f} with it "
            f"(threshold selector), {v['f1_quota_selector']:.3f} with the per-source selector. {time.perf_counter() - started:.0f} s.")
    return head, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    parts = [provenance(".venv/bin/python benchmarks/new_tags.py"), "",
             "\"x alone\" ranks by one source only (all sources switched on, each read separately); rows with \"–\" had no "
             "query with a new tag. The test users of the pipeline benchmark play no special role here: this is a different split."]
    for path in sorted(args.data_root.glob("*/posts.jsonl*")):
        head, table = measure(path)
        parts += ["", head] + (["", *table] if table else [])
        print(parts[-1] if not table else "\n".join([head, *table]), flush=True)
    print(write_block("new-tags", "\n".join(parts), args.doc, heading="## Tags born after training (models issue)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
