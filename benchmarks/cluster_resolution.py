"""Does a finer clustering make cluster-mates useful evidence? (graph issue, item 6; validation users only)

Trains on the training users of a dataset (the pipeline's split: 90 % of users by hash, seed 0) once per
Leiden resolution of training's clusters, without the final refit (tuning happens before it), and prints
what fusion tuning on validation users chose for the cluster-mates: the place share `source_place["cluster"]` with
the geo objective (Acc@161 + probability mass within 161 km) at each weight tried, and the tag weight
`source_tags["cluster"]` with validation F1@5 without and with cluster-mates. Prints JSON lines; no docs block
(figures quoted from it name this command). No test split is read.

    .venv/bin/python benchmarks/cluster_resolution.py [--data ../shared/data/tweets2015/posts.jsonl.gz] [--resolutions 1 10 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tweets2015" / "posts.jsonl.gz")
    ap.add_argument("--resolutions", type=float, nargs="+", default=[1.0, 10.0, 50.0])
    args = ap.parse_args()
    from tagatlas.data import load_posts, split_users
    from tagatlas.recommender import ModelConfig, TagAtlas

    everything, _ = load_posts([args.data])
    train = split_users(everything, {"train": 0.9, "test": 0.1}, salt="test:0")["train"]  # as `tagatlas train` splits
    print(json.dumps({"machine": machine(), "data": str(args.data), "training_posts": len(train)}), flush=True)
    for resolution in args.resolutions:
        model = TagAtlas(ModelConfig(cluster_resolution=resolution, refit=False)).fit(train, progress=False)
        tags = model.tuning_.get("hashtags", {})
        print(json.dumps({"resolution": resolution, "clusters": model.train_info_.get("clusters"),
                          "geo_cluster": model.tuning_.get("geo_sources", {}).get("cluster"),
                          "cluster_place_weight": model.fusion_.source_place.get("cluster", 0.0),
                          "cluster_tag_weight": model.fusion_.source_tags.get("cluster", 0.0),
                          "val_f1_cluster": tags.get("f1_by_source", {}).get("cluster")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
