"""Multi-task geolocation on validation users only: coordinate regression weight, hedging, calibration.

For each dataset, trains TagAtlas as `tagatlas train` does (same 90 % of users) with the coordinate
regression off and on, and reports what the fusion tuning measured on the *validation* users of the
training split (never the held-out test users): Acc@161 and median km without and with hedged
coordinates, and place ECE before and after temperature scaling.

    .venv/bin/python benchmarks/geo_ablation.py [--data-root ../shared/data] [--weights 0 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, write_block  # noqa: E402


def row(name: str, weight: float, tuning: dict, epochs: int) -> str:
    h, c = tuning["hedge"], tuning["calibration"]
    base = h["without"]
    hedged = [p for p in h["curve"] if p["hedge"] == "expected"]
    within = lambda tol: min((p for p in hedged if p["acc_at_161"] >= base["acc_at_161"] - tol - 1e-12),  # noqa: E731
                             key=lambda p: p["median_km"], default=None)
    cell = lambda p: f"{p['acc_at_161']:.3f} / {p['median_km']:.0f}" if p else "–"  # noqa: E731
    ece = lambda v: f"{v:.3f}" if v is not None else "–"  # noqa: E731
    return (f"| {name} | {weight:g} | {epochs} | {tuning['geo_classifier_only']['acc_at_161']:.3f} | {cell(base)} | "
            f"{cell(within(0.0))} | {cell(within(0.01))} | {cell(within(0.03))} | {ece(c['ece_before'])} → {ece(c['ece_after'])} (T={c['temperature']:.2f}) |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    from tagatlas.evaluation import training_split
    from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas

    rows = ["| dataset | coordinate loss weight | head epochs | classifier alone Acc@161 | fusion Acc@161 / median km | "
            "+ hedge, no Acc@161 lost | + hedge, ≤ 1 point lost | + hedge, ≤ 3 points lost | place ECE before → after |",
            "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(args.data_root.glob("*/posts.jsonl*")):
        posts = training_split([path], test_fraction=0.1, seed=0).train
        for w in args.weights:
            model = TagAtlas(ModelConfig(head=HeadConfig(coord_loss_weight=w))).fit(posts, progress=False)
            rows.append(row(path.parent.name, w, model.tuning_, model.train_info_["head_epochs"]))
            print(rows[-1], flush=True)
    cmd = ".venv/bin/python benchmarks/geo_ablation.py" + ("" if args.weights == [0.0, 1.0] else " --weights " + " ".join(f"{w:g}" for w in args.weights))
    body = (provenance(cmd) + "\n\nValidation users of each training split only (the test users are never read). "
            "Each cell is Acc@161 / median km; the hedge columns give the lowest median the hedge reaches while giving up at "
            "most that much Acc@161.\n\n" + "\n".join(rows))
    print(write_block("geo-ablation", body, args.doc, heading="## Multi-task geolocation (models issue)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
