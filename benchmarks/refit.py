"""Does refitting the head on all training users after fusion was tuned help? A nested check on validation users only.

Training tunes fusion on validation users with the head fitted on the other users, then (`ModelConfig.refit`, on by
default) trains the head again on all of them, keeping the fusion tuned for the first head. Whether that helps
cannot be read off held-out users without tuning on them, so this script holds out half of the validation users
(V2, chosen by a salted hash of the user), trains on the fit users plus the other half twice (refit on and off) and
evaluates both on V2 with `tagatlas evaluate`'s protocol. The held-out test users are never read past the split.
Writes the `refit-<dataset>` block of docs/benchmarks.md.

    .venv/bin/python benchmarks/refit.py --dataset users2015
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

from tagatlas.evaluation import training_split
from tagatlas.evaluation.runner import evaluate
from tagatlas.recommender import ModelConfig, TagAtlas

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, data_file, nested_validation, provenance, write_block  # noqa: E402


def figures(result: dict) -> dict:
    """The row this check reports, from an evaluation result."""
    geo, tagged = result["geo"]["tagatlas"], result["geo_with_tags"]["tagatlas"]
    return {"acc_161": geo["acc_at_km"]["161"], "acc_25": geo["acc_at_km"]["25"], "median_km": geo["median_km"],
            "tagged_acc_161": tagged["acc_at_km"]["161"], "tagged_median_km": tagged["median_km"],
            "f1_at_5": result["hashtags"]["tagatlas"].get("f1_at_5")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="a dataset folder under --data-root")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-write", action="store_true", help="print the block only")
    args = ap.parse_args()
    path = data_file(args.data_root, args.dataset)
    split = training_split([path], skip_invalid=True)  # the same held-out users as `tagatlas train`; not read further
    train, held = nested_validation(split.train)  # fit users + half the validation users; the other half held out
    rows, n_queries = {}, 0
    for refit in (True, False):
        started = time.perf_counter()
        model = TagAtlas(ModelConfig(refit=refit)).fit(train, progress=False)
        trained = time.perf_counter() - started
        result = evaluate(model, held, progress=False)
        rows["refit (default)" if refit else "no refit"] = {**figures(result), "train_s": trained}
        n_queries = result["details"]["geo_queries"]
        print(args.dataset, "refit" if refit else "no refit", rows, flush=True)
    shown = path.relative_to(args.data_root.parent) if path.is_relative_to(args.data_root.parent) else path
    f1 = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    body = (f"{provenance(f'.venv/bin/python benchmarks/refit.py --dataset {args.dataset}')}\n\n"
            f"Data: `{shown}`, training users only: trained on {len(train)} posts (the fit users and half of the validation users), "
            f"evaluated on the other half of the validation users ({len({p.user_key for p in held})} users, "
            f"{n_queries} located queries).\n\n"
            "| head | Acc@161 | Acc@25 | median km | with tags: Acc@161 | with tags: median km | F1@5 | train s |\n"
            "|---|---|---|---|---|---|---|---|\n"
            + "\n".join(f"| {name} | {r['acc_161']:.3f} | {r['acc_25']:.3f} | {r['median_km']:.0f} | {r['tagged_acc_161']:.3f} | "
                        f"{r['tagged_median_km']:.0f} | {f1(r['f1_at_5'])} | {r['train_s']:.0f} |" for name, r in rows.items()))
    heading = "## Refitting the head after tuning"
    if args.no_write:
        print(body)
    else:  # the section's heading once, above the first dataset's block
        print(write_block(f"refit-{args.dataset}", body, heading=None if heading in DOC.read_text() else heading))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
