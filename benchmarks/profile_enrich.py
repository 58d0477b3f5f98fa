"""Where `enrich` spends its time beyond the encoder (issue: performance, target 1): a cProfile of one run.

Loads a model folder, enriches the first `--posts` posts of a data file once to warm up, times the
encoder alone on the same posts (the floor), then profiles a second `enrich_file` run and prints the
functions with the largest cumulative time. Prints only; no docs block (figures quoted from it name
this command).

    .venv/bin/python benchmarks/profile_enrich.py [--model runs/tweets2015/model] [--data ../shared/data/tweets2015/posts.jsonl.gz] [--posts 1536]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "tweets2015" / "model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tweets2015" / "posts.jsonl.gz")
    ap.add_argument("--posts", type=int, default=1536)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    from tagatlas.data import read_posts
    from tagatlas.enrich import enrich_file
    from tagatlas.recommender import TagAtlas

    posts = list(itertools.islice(read_posts(args.data), args.posts))
    model = TagAtlas.load(args.model)
    model.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "posts.jsonl"
        source.write_text("".join(p.model_dump_json(exclude_none=True) + "\n" for p in posts))
        enrich_file(model, source, Path(tmp) / "warm.jsonl", batch_size=args.batch_size, progress=False)
        started = time.perf_counter()
        for start in range(0, len(posts), args.batch_size):
            model.encoder.encode_posts(posts[start : start + args.batch_size])
        floor = time.perf_counter() - started
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        enrich_file(model, source, Path(tmp) / "out.jsonl", batch_size=args.batch_size, progress=False)
        profile.disable()
        enrich = time.perf_counter() - started
    print(f"machine: {machine()}\nposts: {len(posts)} of {args.data}\nencoder floor {floor:.2f} s, enrich {enrich:.2f} s "
          f"(profiled, so slower than unprofiled), ratio {floor / enrich:.2f}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
