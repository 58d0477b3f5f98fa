"""Graph clustering with missing modalities on real posts: NMI/ARI against reference groupings, and scale.

For every dataset in the data root (posts with coordinates):
- modalities: `text` (USE-multilingual of the caption, hashtags masked), `image` (the photo in the text space,
  only for a dataset with at least `--min-image-posts` photos), `hashtags` (hashed bag of the post's tags;
  absent when it has none), `location` (unit vector of its coordinates);
- references: P2C place labels (clustered with text [+ image] + hashtags: location would leak the answer) and
  hashtag communities (Leiden on the tag co-occurrence graph; a post takes its tags' majority
  community; clustered with text [+ image] + location, on posts with tags);
- 0 %, 30 %, 60 % of the text modality (and, with photos, separately of the image modality) removed at
  random (seed 0); methods: confidence-weighted late fusion, early fusion with imputation, naive
  concatenation (missing = zeros), best single modality. Under each table, the goal's headroom: 1.15× the
  concatenation's NMI at 30 % against the best NMI any method reaches with nothing removed, and how many
  scored posts the 30 % removal leaves with no view at all (no method can place those).
Scale: the tweets2015 vectors replicated with jitter to `--scale` posts (documented as synthetic, for
timing only), a full late-fusion build timed with its peak memory, and one-post incremental assignment.

    .venv/bin/python benchmarks/graph.py [--data-root ../shared/data] [--scale 100000] [--min-image-posts 50]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, write_block  # noqa: E402

from tagatlas.data import P2CLabeler, load_posts  # noqa: E402
from tagatlas.encoders import create_encoder  # noqa: E402
from tagatlas.graph import GraphClusterer, Modality, leiden  # noqa: E402
from tagatlas.recommender.clusters import post_modalities  # noqa: E402

MISSING = (0.0, 0.3, 0.6)
K = 10


def modalities_of(posts, min_image_posts: int = 50) -> dict[str, Modality]:
    """The recommender's views of a post (tagatlas.recommender.clusters), with text and photo as two views
    (each side before the encoder fuses them); `image` only when at least `min_image_posts` posts have one."""
    parts = create_encoder().encode_posts(posts, progress=True, parts=True)
    views = post_modalities(parts.text_part, [p.hashtags for p in posts], [p.lat for p in posts], [p.lon for p in posts])
    out = {"text": views.pop("content")}
    if parts.has_image.sum() >= max(min_image_posts, 1):
        out["image"] = Modality(parts.image_part, parts.has_image)
    return {**out, **views}


def hashtag_communities(posts, seed: int = 0) -> np.ndarray:
    """-1 for posts without tags; else the Leiden community (tag co-occurrence graph) most of its tags share."""
    import scipy.sparse as sp

    counts = Counter(t for p in posts for t in set(p.hashtags))
    vocab = {t: i for i, t in enumerate(sorted(t for t, c in counts.items() if c >= 2))}
    rows, cols = [], []
    for i, p in enumerate(posts):
        for t in set(p.hashtags):
            if t in vocab:
                rows.append(i)
                cols.append(vocab[t])
    incidence = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(posts), len(vocab)))
    cooc = (incidence.T @ incidence).tocsr()
    cooc.setdiag(0)
    cooc.eliminate_zeros()
    community = leiden(cooc, seed=seed)
    labels = np.full(len(posts), -1)
    for i, p in enumerate(posts):
        found = [community[vocab[t]] for t in set(p.hashtags) if t in vocab]
        if found:
            labels[i] = Counter(found).most_common(1)[0][0]
    return labels


def references(posts) -> tuple[np.ndarray, np.ndarray]:
    """The two reference groupings of located posts: P2C place ids, and hashtag communities (-1: untagged)."""
    lat, lon = [p.lat for p in posts], [p.lon for p in posts]
    places = np.array(P2CLabeler().fit(lat, lon).label(lat, lon))
    return np.unique(places, return_inverse=True)[1], hashtag_communities(posts)


def drop(modality: Modality, fraction: float, seed: int = 0) -> Modality:
    rng = np.random.default_rng(seed)
    return Modality(modality.vectors, modality.mask() & (rng.random(len(modality.vectors)) >= fraction))


def scores(reference: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[float, float, float, int]:
    """NMI, ARI, AMI and the number of clusters (> 1 post). Singletons (posts a method could not place, e.g.
    missing its only modality) count as one "unclustered" group: scored as thousands of tiny clusters they
    would inflate NMI, which grows with the number of clusters."""
    sizes = np.bincount(labels)
    scored = np.where(sizes[labels] > 1, labels, -1)[rows]
    return (normalized_mutual_info_score(reference[rows], scored), adjusted_rand_score(reference[rows], scored),
            adjusted_mutual_info_score(reference[rows], scored), int((sizes > 1).sum()))


def header(drop_name: str) -> str:
    return (f"| {drop_name} removed | **late fusion (confidence)** NMI / ARI / AMI (clusters) | early fusion (imputed) | "
            "naive concatenation | best single modality | late ÷ concat NMI |\n|---|---|---|---|---|---|")


def compare(views: dict[str, Modality], reference: np.ndarray, rows: np.ndarray, drop_name: str) -> list[str]:
    """Table rows (one per fraction of `drop_name` removed), then the goal's headroom line."""
    out, nmi = [], {}
    for fraction in MISSING:
        v = {name: drop(m, fraction) if name == drop_name else m for name, m in views.items()}
        res = {}
        for fusion in ("late", "early", "concat"):
            res[fusion] = scores(reference, GraphClusterer(k=K, fusion=fusion).fit(v).labels_, rows)
        singles = {name: scores(reference, GraphClusterer(k=K).fit({name: m}).labels_, rows) for name, m in v.items()}
        best = max(singles, key=lambda n: singles[n][0])
        nmi[fraction] = {**{f: r[0] for f, r in res.items()}, **{f"{n} alone": r[0] for n, r in singles.items()}}
        if fraction == 0.3:
            empty = int((~np.any(np.stack([m.mask() for m in v.values()]), axis=0))[rows].sum())
        ratio = res["late"][0] / res["concat"][0] if res["concat"][0] > 0 else float("nan")
        cell = lambda r: f"{r[0]:.3f} / {r[1]:.3f} / {r[2]:.3f} ({r[3]})"  # noqa: E731
        out.append(f"| {int(fraction * 100)} % | **{cell(res['late'])}** | {cell(res['early'])} | {cell(res['concat'])} | "
                   f"{cell(singles[best])} {best} | {ratio:.2f}× |")
    if 0.0 in nmi and 0.3 in nmi:
        full_name = max(nmi[0.0], key=nmi[0.0].get)
        goal = 1.15 * nmi[0.3]["concat"]
        out.append(f"\nHeadroom: the goal at 30 % {drop_name} removed is NMI ≥ {goal:.3f} (1.15 × concatenation's {nmi[0.3]['concat']:.3f}); "
                   f"with nothing removed the best method reaches {nmi[0.0][full_name]:.3f} ({full_name}). "
                   f"The 30 % removal leaves {empty:,} of {len(rows):,} scored posts with no view at all.")
    return out


def scale_test(views: dict[str, Modality], n: int) -> str:
    rng = np.random.default_rng(0)
    reps = -(-n // len(views["text"].vectors))
    big = {}
    for name in ("text", "hashtags"):
        m = views[name]
        vectors = np.tile(m.vectors, (reps, 1))[:n]
        vectors = vectors + 0.05 * rng.standard_normal(vectors.shape).astype(np.float32) * (np.abs(vectors).sum(axis=1, keepdims=True) > 0)
        big[name] = Modality(vectors.astype(np.float32), np.tile(m.mask(), reps)[:n])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    model = GraphClusterer(k=K, progress=True).fit(big)
    build = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    one = {name: Modality(m.vectors[:1]) for name, m in big.items()}
    model.assign(one)  # builds the per-modality search indexes once
    times = []
    for i in range(200):
        q = {name: Modality(m.vectors[i:i + 1]) for name, m in big.items()}
        t = time.perf_counter()
        model.assign(q)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return (f"Scale ({n:,} posts: the real tweets2015 text and hashtag vectors replicated {reps}× with Gaussian jitter σ=0.05 — "
            f"synthetic, for timing only): full late-fusion build (2 kNN graphs, k={K}, 3 Leiden runs) **{build:.0f} s**, "
            f"peak resident memory {peak / 1024:.0f} MB ({(peak - before) / 1024:.0f} MB above the process before the build); "
            f"{int(model.labels_.max()) + 1} clusters. Incremental assignment of one post: p50 **{np.percentile(ms, 50):.1f} ms**, "
            f"p99 {np.percentile(ms, 99):.1f} ms (200 posts).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--scale", type=int, default=100_000)
    ap.add_argument("--min-image-posts", type=int, default=50, help="photos a dataset needs for an image view")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    sections = []
    scale_views = None
    for path in sorted(args.data_root.glob("*/posts.jsonl*")):
        posts, _ = load_posts([path])
        posts = [p for p in posts if p.has_location]
        views = modalities_of(posts, args.min_image_posts)
        place_ref, tag_ref = references(posts)
        tagged = np.flatnonzero(tag_ref >= 0)
        content = ["text"] + (["image"] if "image" in views else [])
        photos = sum(1 for p in posts if p.image)
        parts = [f"### {path.parent.name}\n\n{len(posts):,} posts ({photos:,} with a photo"
                 + ("" if "image" in views else f"; under {args.min_image_posts}, so no image view") + f"), {len(set(place_ref)):,} P2C places, "
                 f"{views['hashtags'].mask().sum():,} posts with hashtags, {len(set(tag_ref[tagged])):,} hashtag communities over {len(tagged):,} tagged posts."]
        for reference, rows, extra, what in ((place_ref, np.arange(len(posts)), "hashtags", "P2C places"),
                                             (tag_ref, tagged, "location", "hashtag communities")):
            if what == "hashtag communities" and len(tagged) < 50:
                continue
            names = content + [extra]
            for drop_name in content:
                table = compare({n: views[n] for n in names}, reference, rows, drop_name)
                scope = "" if what == "P2C places" else "; tagged posts only"
                parts.append(f"Against **{what}** (modalities: {' + '.join(names)}{scope}):\n\n{header(drop_name)}\n" + "\n".join(table))
        sections.append("\n\n".join(parts))
        if path.parent.name == "tweets2015":
            scale_views = views
    if scale_views is not None and args.scale:
        sections.append(scale_test(scale_views, args.scale))
    body = provenance(".venv/bin/python benchmarks/graph.py") + "\n\n" + "\n\n".join(sections)
    print(write_block("graph", body, args.doc, heading="## Graph clustering with missing modalities (issue: graph clustering)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
