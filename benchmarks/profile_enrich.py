"""Where `enrich` spends its time beyond the encoder (issue: performance, target 1): a cProfile of one run.

Loads a model folder, enriches the first `--posts` held-out posts of a data file (ids not in the model's store) once
to warm up, times the encoder alone on the same posts (the floor), then profiles a second `enrich_file` run and
prints the functions with the largest cumulative time. `--stages` times the run without the profiler instead (the
profiler inflates Python-heavy steps): wall time spent in each step of enrichment, measured around the step's call;
`--stages --block` also writes that table into docs/benchmarks.md (block `enrich-stages`).

    .venv/bin/python benchmarks/profile_enrich.py [--model runs/tweets2015/model] [--data ../shared/data/tweets2015/posts.jsonl.gz] [--posts 1536] [--stages [--block]]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, provenance, shown, write_block  # noqa: E402
from opensearch import heldout_posts  # noqa: E402


@contextlib.contextmanager
def timed_stages(model) -> Iterator[dict[str, float]]:
    """Wrap the steps of enrichment with timers (on this model's parts and the modules whose functions they call) while
    the block runs; yields the dict the timers add to, in the order of the steps, and restores every step on exit."""
    import tagatlas.recommender.gather as gather_module
    import tagatlas.recommender.geolocator as geolocator_module
    import tagatlas.recommender.hashtags as hashtags_module
    import tagatlas.recommender.predictor as predictor_module

    steps = [("encoder (text, images)", model.encoder, "encode_posts"), ("lexical features", model.reader.lexical_, "transform"),
             ("evidence (all of it)", predictor_module, "gather_evidence"), ("  head forward pass", model.reader.head_, "predict"),
             ("  kNN search", model.posts_, "search"), ("  cluster assignment", gather_module, "assign_clusters"),
             ("  user habits", gather_module, "user_habits"), ("  tags written in the text", gather_module, "written_tags")]
    if model.hashtags_.matcher_ is not None:
        steps.append(("  tag-embedding match", model.hashtags_.matcher_, "match"))
    steps += [(f"  source {source.name}", source, "gather") for source in model.sources]  # 0 s: not gathered (no weight)
    steps += [("decisions (all of them)", predictor_module, "decide"), ("  place distribution", geolocator_module, "place_distribution"),
              ("  places listed", geolocator_module, "place_list"),
              ("  tag scores", hashtags_module, "tag_scores"), ("  tag selection", hashtags_module, "select_tags")]
    spent: dict[str, float] = collections.OrderedDict((name, 0.0) for name, _, _ in steps)

    def timer(name, call):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
        return timed

    with contextlib.ExitStack() as patches:
        for name, owner, attribute in steps:
            patches.enter_context(mock.patch.object(owner, attribute, timer(name, getattr(owner, attribute))))
        yield spent


def write_stages_block(args: argparse.Namespace, n: int, floor: float, enrich: float, spent: dict[str, float]) -> None:
    """The stage table as docs/benchmarks.md's `enrich-stages` block: each step's seconds and share of `enrich`."""
    model_path = args.model.resolve()
    model_arg = model_path.relative_to(REPO) if model_path.is_relative_to(REPO) else model_path
    rows = "\n".join(f"| {name.strip() if not name.startswith('  ') else '&nbsp;&nbsp;' + name.strip()} | {seconds:.3f} | "
                     f"{100 * seconds / enrich:.0f} % |" for name, seconds in spent.items())
    body = (provenance(f".venv/bin/python benchmarks/profile_enrich.py --model {model_arg} --posts {args.posts} --stages --block")
            + f"\n\n{n} held-out real posts of `{shown(args.data)}` (ids not in the model's store), batches of {args.batch_size}, "
            f"one run after a warm-up. Encoder floor {floor:.3f} s, `enrich_file` {enrich:.3f} s (enrich / floor "
            f"{floor / enrich:.2f}). Indented steps run inside the step above them; a plug-in without weight is not gathered.\n\n"
            f"| step | seconds | share of enrich |\n|---|---|---|\n{rows}")
    write_block("enrich-stages", body, heading="### Where enrichment's time goes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "tweets2015" / "model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tweets2015" / "posts.jsonl.gz")
    ap.add_argument("--posts", type=int, default=1536)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--stages", action="store_true", help="time each step of enrichment, unprofiled")
    ap.add_argument("--block", action="store_true", help="with --stages: write the table into docs/benchmarks.md")
    args = ap.parse_args()
    if args.block and not args.stages:
        ap.error("--block needs --stages (a profiled run's times are inflated)")
    from tagatlas.data import Post
    from tagatlas.enrich import enrich_file
    from tagatlas.recommender import TagAtlas

    posts = [Post.model_validate(r) for r in heldout_posts(args.data, args.model, args.posts)]
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
        profile = None if args.stages else cProfile.Profile()
        with timed_stages(model) if args.stages else profile as spent:  # a Profile enables itself inside the block
            started = time.perf_counter()
            enrich_file(model, source, Path(tmp) / "out.jsonl", batch_size=args.batch_size, progress=False)
            enrich = time.perf_counter() - started
    if args.stages:
        print(f"machine: {machine()}\nposts: {len(posts)} of {args.data}\nencoder floor {floor:.3f} s, enrich {enrich:.3f} s "
              f"(unprofiled), ratio {floor / enrich:.2f}\nseconds in each step (nested steps indented, inside their parent):")
        for name, seconds in spent.items():
            print(f"  {name:<34} {seconds:.3f}")
        if args.block:
            write_stages_block(args, len(posts), floor, enrich, spent)
        return 0
    print(f"machine: {machine()}\nposts: {len(posts)} of {args.data}\nencoder floor {floor:.2f} s, enrich {enrich:.2f} s "
          f"(profiled, so slower than unprofiled), ratio {floor / enrich:.2f}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
