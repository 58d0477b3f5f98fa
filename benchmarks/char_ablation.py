"""Character-aware text branch (MRLF) on validation users only: the head with and without it.

For each dataset, trains TagAtlas as `tagatlas train` does (same 90 % of users) once per character-branch
width (0: no branch) and reports what the training measured on the *validation* users of the training
split (never the held-out test users): the head's best validation loss, the classifier's and the fused
Acc@161 / median km, and hashtag F1@5; plus the training time, since the branch is the costliest part
of the head on CPU.

    .venv/bin/python benchmarks/char_ablation.py [--data-root ../shared/data] [--char-dims 0 96]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, write_block  # noqa: E402

DEFAULT_DIMS = [0, 96]


def row(name: str, dim: int, model, seconds: float) -> str:
    t, val_loss = model.tuning_, model.train_info_.get("head_val_loss")
    geo, tags = t.get("geo", {}), t.get("hashtags", {})
    loss = f"{val_loss:.4f}" if val_loss is not None else "–"
    return (f"| {name} | {dim or 'none'} | {loss} | {model.train_info_['head_epochs']} | {t['geo_classifier_only']['acc_at_161']:.3f} | "
            f"{geo.get('acc_at_161', float('nan')):.3f} / {geo.get('median_km', float('nan')):.0f} | {tags.get('f1_at_5', float('nan')):.3f} | "
            f"{seconds:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--char-dims", type=int, nargs="+", default=DEFAULT_DIMS)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    from tagatlas.evaluation import training_split
    from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas

    rows = ["| dataset | character branch width | best validation loss (head) | head epochs | classifier alone Acc@161 | "
            "fusion Acc@161 / median km | hashtag F1@5 | training s |", "|---|---|---|---|---|---|---|---|"]
    for path in sorted(args.data_root.glob("*/posts.jsonl*")):
        posts = training_split([path], test_fraction=0.1, seed=0).train
        for dim in args.char_dims:
            started = time.perf_counter()
            model = TagAtlas(ModelConfig(head=HeadConfig(char_dim=dim))).fit(posts, progress=False)
            rows.append(row(path.parent.name, dim, model, time.perf_counter() - started))
            print(rows[-1], flush=True)
    cmd = ".venv/bin/python benchmarks/char_ablation.py" + ("" if args.char_dims == DEFAULT_DIMS else " --char-dims " + " ".join(map(str, args.char_dims)))
    body = (provenance(cmd) + "\n\nValidation users of each training split only (the test users are never read); the "
            "validation loss is the head's place + tag loss at its best epoch before the refit on all training users.\n\n"
            + "\n".join(rows))
    print(write_block("char-ablation", body, args.doc, heading="## Character-aware text branch (models issue)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
