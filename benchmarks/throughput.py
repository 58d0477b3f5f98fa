"""Enrichment throughput against the encoder floor (issue: performance, target 1).

For held-out real posts (ids not in the model's store), measured in one run on this machine:
  floor     the encoder forward pass alone (`PostEncoder.encode_posts`, batches of --batch-size)
  enrich    `enrich_file` end to end: read, encode, retrieve, fuse, write JSON lines (fsync per batch)
  re-enrich the same, a second time, with the embedding cache warm (the encoders are skipped)
Text-only posts, and the same texts with a photo (the two real sample photos scikit-learn ships,
alternating: throughput only, they carry no place). Each figure is the median of --repeats runs;
ratios are taken within a repeat, so machine speed drifts cancel.

    .venv/bin/python benchmarks/throughput.py [--model runs/tweets2015/model] [--posts 2048] [--image-posts 128]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, provenance, shown, write_block  # noqa: E402
from opensearch import heldout_posts  # noqa: E402


def with_photos(records: list[dict], folder: Path) -> list[dict]:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    paths = []
    for name in ("china.jpg", "flower.jpg"):
        path = folder / f"sample-{name}"
        Image.fromarray(load_sample_image(name)).save(path)
        paths.append(str(path))
    return [{**r, "id": f"{r['id']}-photo", "image": paths[i % 2]} for i, r in enumerate(records)]


def _same(a, b) -> bool:
    """Equal, with floats equal to within rounding noise (relative 1e-4, absolute 1e-5)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def cache_changes(plain: Path, cached: Path) -> tuple[list[str], int]:
    """(fields the cache changed beyond float noise as "post id: field", records that differ in float noise only).
    The text encoder's vectors depend in their last bits on which texts share a batch, and a warm cache takes the
    texts it holds out of the batches, so probabilities may move in the sixth decimal; places, tags, clusters and
    coordinates may not (ties among neighbours are broken by rowid over the whole tie group)."""
    changed, noisy = [], 0
    for x, y in zip(plain.read_text(encoding="utf-8").splitlines(), cached.read_text(encoding="utf-8").splitlines(), strict=True):
        if x == y:
            continue
        a, b = json.loads(x), json.loads(y)
        fields = [k for k in sorted(set(a) | set(b)) if not _same(a.get(k), b.get(k))]
        changed += [f"{a.get('id')}: {k}" for k in fields]
        noisy += not fields
    return changed, noisy


def measure(model, records: list[dict], work: Path, batch_size: int, repeats: int) -> dict:
    from tagatlas.data import Post
    from tagatlas.enrich import enrich_file

    source = work / "posts.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    posts = [Post.model_validate(r) for r in records]
    runs = []
    for rep in range(repeats):
        model.encoder.cache = None
        started = time.perf_counter()
        for start in range(0, len(posts), batch_size):
            model.encoder.encode_posts(posts[start : start + batch_size])
        floor = time.perf_counter() - started

        started = time.perf_counter()
        enrich_file(model, source, work / f"out-{rep}.jsonl", batch_size=batch_size, progress=False)
        enrich = time.perf_counter() - started

        cache = model.encoder.use_cache(work / f"cache-{rep}.sqlite")
        enrich_file(model, source, work / f"warm-{rep}.jsonl", batch_size=batch_size, progress=False)  # fills the cache
        started = time.perf_counter()
        enrich_file(model, source, work / f"again-{rep}.jsonl", batch_size=batch_size, progress=False)
        again = time.perf_counter() - started
        assert cache.hits >= len(posts), "the second pass must be served from the cache (image features included)"
        changed, noisy = cache_changes(work / f"out-{rep}.jsonl", work / f"again-{rep}.jsonl")
        assert not changed, f"the cache changed the output: {changed[:10]}"
        cache.close()
        model.encoder.cache = None
        runs.append((floor, enrich, again))
        print(f"  repeat {rep + 1}: floor {len(posts) / floor:.0f} posts/s, enrich {len(posts) / enrich:.0f} posts/s "
              f"({floor / enrich:.2f}x), re-enrich {len(posts) / again:.0f} posts/s; {noisy} records differ from the "
              "uncached pass in float noise only", flush=True)
    floor, enrich, again = (np.array(c) for c in zip(*runs))
    n = len(posts)
    return {"posts": n, "floor_posts_per_s": float(np.median(n / floor)), "enrich_posts_per_s": float(np.median(n / enrich)),
            "ratio": float(np.median(floor / enrich)), "reenrich_posts_per_s": float(np.median(n / again)),
            "reenrich_ratio": float(np.median(floor / again))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs/tweets2015/model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tweets2015/posts.jsonl.gz")
    ap.add_argument("--posts", type=int, default=2048)
    ap.add_argument("--image-posts", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()

    from tagatlas.data import Post
    from tagatlas.recommender import TagAtlas

    model = TagAtlas.load(args.model)
    records = heldout_posts(args.data, args.model, args.posts)
    work = Path(tempfile.mkdtemp(prefix="tagatlas-throughput-"))
    try:
        warm = with_photos(records[:2], work)  # load both backbones and the caches before timing
        model.predict([Post.model_validate(r) for r in records[:8] + warm])
        model.warm_up()  # as `tagatlas enrich` does (it also freezes the loaded heap out of the garbage collector)
        print("text-only", flush=True)
        (work / "text").mkdir()
        text = measure(model, records, work / "text", args.batch_size, args.repeats)
        print("text + photo", flush=True)
        (work / "photo").mkdir()
        photo_records = with_photos(records[: args.image_posts], work / "photo")
        photo = measure(model, photo_records, work / "photo", min(args.batch_size, 64), args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"text": text, "photo": photo}, indent=1))

    row = lambda name, r: (f"| {name} | {r['posts']} | {r['floor_posts_per_s']:.0f} | {r['enrich_posts_per_s']:.0f} | "  # noqa: E731
                           f"**{r['ratio']:.2f}x** | {r['reenrich_posts_per_s']:.0f} | {r['reenrich_ratio']:.2f}x |")
    model_path = args.model.resolve()
    model_arg = model_path.relative_to(REPO) if model_path.is_relative_to(REPO) else model_path  # as run from the repository root
    body = (provenance(f".venv/bin/python benchmarks/throughput.py --model {model_arg} --posts {args.posts} "
                       f"--image-posts {args.image_posts} --repeats {args.repeats}") + "\n\n"
            f"Held-out real posts of `{shown(args.data)}` (ids not in the model's store); the photo rows give the same texts a photo "
            "(scikit-learn's two sample photos, alternating: for throughput only). Medians of "
            f"{args.repeats} repeats; each ratio is taken within one repeat."
            + (" This model's image retrieval reads the image backbone's features; the cache serves them too." if model.reads_image_features
               else "") + "\n\n"
            "| posts | n | floor: encoder only (posts/s) | `enrich` end to end (posts/s) | enrich / floor (target ≥ 0.8x) | "
            "re-enrich, cache warm (posts/s) | re-enrich / floor |\n|---|---|---|---|---|---|---|\n"
            f"{row('text only', text)}\n{row('text + photo', photo)}")
    if not args.no_doc:
        write_block("throughput", body, heading="## Enrichment throughput vs the encoder floor (issue: performance)")


if __name__ == "__main__":
    main()
