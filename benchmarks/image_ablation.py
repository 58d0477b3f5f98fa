"""Image posts: text-only, image-only and fused models side by side (Galaxy's table), and the ablation of
the models issue's items 1–8, each removed in turn from the full model.

"shipped: …" rows train the default configuration (what `tagatlas train` builds); "shipped: -X evidence"
rows evaluate the shipped fused model with the plug-in source X given no weight after tuning (the other
weights stay as validation chose them, so a source's row shows what it adds in the tuned mix).

For every dataset in the data root with at least `--min-image-posts` posts that carry a photo: train on
90 % of its users (hash split, seed 0) and evaluate on the held-out 10 % with the evaluation contract
(the same `evaluate` as `tagatlas evaluate`). Datasets without image posts are listed, and get no rows:
no image accuracy is ever stated on anything but real image posts.

    .venv/bin/python benchmarks/image_ablation.py [--datasets im2gps3k] [--only 'shipped: fused,shipped: -cluster evidence']
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOC, REPO, provenance, shown, write_block  # noqa: E402

# Everything the models issue builds, switched on (defaults keep some off on text-only data; see docs).
FULL_HEAD = {"coattn_dim": 64, "char_dim": 96, "coord_loss_weight": 1.0}


SHIPPED_SOURCES = ("cluster", "tag_places", "place_names", "image_neighbours", "user_places")  # ModelConfig's default evidence


def _without_source(name: str):
    """After fit: the plug-in source `name` loses its place and tag weights (the other weights stay as tuned)."""
    def change(model):
        model.fusion_ = replace(model.fusion_, source_place={**model.fusion_.source_place, name: 0.0},
                                source_place_tagged={**model.fusion_.source_place_tagged, name: 0.0},
                                source_tags={**model.fusion_.source_tags, name: 0.0})
    return change


def variants():
    """name → (what the posts keep, head overrides, model-config overrides, encoder overrides, after-fit change).
    Variants that differ only in their after-fit change share one trained model."""
    zero_habits = lambda m: setattr(m, "fusion_", replace(m.fusion_, habit_gamma=0.0))  # noqa: E731
    # a city the post names is never reported as the place (recommender/named_place.py); place_names keeps its share
    no_named_places = lambda m: setattr(m, "fusion_", replace(m.fusion_, named_place_below=0.0, named_place_below_tagged=0.0))  # noqa: E731
    shipped = {
        "shipped: text only": ("text", {}, {}, {}, None),
        "shipped: image only": ("image", {}, {}, {}, None),
        "shipped: fused": ("both", {}, {}, {}, None),
        **{f"shipped: -{name} evidence": ("both", {}, {}, {}, _without_source(name)) for name in SHIPPED_SOURCES},
        "shipped: -habits": ("both", {}, {}, {}, zero_habits),
        "shipped: -named places": ("both", {}, {}, {}, no_named_places),
    }
    return {
        **shipped,
        "text only": ("text", FULL_HEAD, {}, {}, None),
        "image only": ("image", FULL_HEAD, {}, {}, None),
        "fused (all items)": ("both", FULL_HEAD, {}, {}, None),
        "-coattention (1)": ("both", {**FULL_HEAD, "coattn_dim": 0}, {}, {}, None),
        "-char branch (2)": ("both", {**FULL_HEAD, "char_dim": 0}, {}, {}, None),
        "-coordinate regression (3)": ("both", {**FULL_HEAD, "coord_loss_weight": 0.0}, {}, {}, None),
        "-tag-embedding match (4)": ("both", FULL_HEAD, {"tag_match_k": 0}, {}, None),
        "-habits (5)": ("both", FULL_HEAD, {}, {}, zero_habits),
        "-imputation (6)": ("both", FULL_HEAD, {"impute_min_pairs": 0}, {}, None),
        "-noisy-image gate (7)": ("both", FULL_HEAD, {}, {"image_gate": False}, None),
        "-photo metadata (8)": ("both", FULL_HEAD, {"photo_metadata": False}, {}, None),
    }


def keep(posts, what: str):
    if what == "text":
        return [p.model_copy(update={"image": None}) for p in posts]
    if what == "image":  # hashtags stay: they are labels, masked from the input anyway
        return [p.model_copy(update={"text": None}) for p in posts if p.image]
    return list(posts)


def row(name: str, result: dict, seconds: float) -> str:
    g, h = result["geo"]["tagatlas"], result["hashtags"]["tagatlas"]
    f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
    w = (result.get("geo_with_tags") or {}).get("tagatlas")
    with_tags = f"{f(w['acc_at_km']['161'])} / {w['median_km']:.0f}" if w else "–"
    return (f"| {name} | {result['n_queries']} | {f(g['acc_at_km']['161'])} | {g['median_km']:.0f} | {with_tags} | {f(h['f1_at_5'])} | "
            f"{f(h['new_tag_hr_at_10'])} | {f((result.get('calibration') or {}).get('place_ece'))} | {seconds:.0f} |")


def run_dataset(path: Path, names: list[str], posts, test, progress: bool = False) -> list[str]:
    from tagatlas.encoders import EncoderConfig
    from tagatlas.evaluation import evaluate
    from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas

    rows = ["| model | queries | Acc@161 | median km | with its tags: Acc@161 / median km | F1@5 | new-tag HR@10 | place ECE | "
            "train + evaluate s |", "|---|---|---|---|---|---|---|---|---|"]
    table = variants()
    saved = Path(tempfile.mkdtemp(prefix="image-ablation-"))  # one model per (posts kept, configs), reloaded per variant:
    trained: dict[str, Path] = {}  # evaluation indexes the held-out users' history into the model it is given
    for name in names:
        what, head, model_kw, encoder_kw, after = table[name]
        started = time.perf_counter()
        key = repr((what, sorted(head.items()), sorted(model_kw.items()), sorted(encoder_kw.items())))
        if key not in trained:
            config = ModelConfig(head=HeadConfig(**head), encoder=EncoderConfig(**encoder_kw), **model_kw)
            trained[key] = saved / str(len(trained))
            TagAtlas(config).fit(keep(posts, what), progress=progress).save(trained[key])
        model = TagAtlas.load(trained[key])
        if after is not None:
            after(model)
        result = evaluate(model, keep(test, what), progress=progress)
        rows.append(row(name, result, time.perf_counter() - started))
        print(rows[-1], flush=True)
    shutil.rmtree(saved, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--datasets", nargs="*", help="dataset folder names (default: all)")
    ap.add_argument("--min-image-posts", type=int, default=200)
    ap.add_argument("--only", default="", help="comma-separated variant names (default: all): " + ", ".join(variants()))
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--block", default="image-ablation", help="the docs block written (another name keeps the full table's block "
                    "when only some rows are re-run)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] if args.only else list(variants())
    unknown = [n for n in names if n not in variants()]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}: choose from {list(variants())}")
    from tagatlas.evaluation import training_split

    sections, without = [], []
    for path in sorted(args.data_root.glob("*/posts.jsonl*")):
        if args.datasets and path.parent.name not in args.datasets:
            continue
        split = training_split([path], test_fraction=0.1, seed=0)
        posts, test = split.train, split.test
        n_images = sum(bool(p.image) for p in posts + test)
        if n_images < args.min_image_posts:
            without.append(f"`{shown(path)}` ({n_images} posts with a photo)")
            continue
        rows = run_dataset(path, names, posts, test, progress=True)
        sections.append(f"### {path.parent.name}\n\nData: `{shown(path)}` — {len(posts)} training posts, {len(test)} held-out posts, "
                        f"{n_images} posts with a photo. Held-out users, evaluation contract.\n\n" + "\n".join(rows))
    cmd = ".venv/bin/python benchmarks/image_ablation.py" + (f" --datasets {' '.join(args.datasets)}" if args.datasets else "") + (
        f" --only '{args.only}'" if args.only else "") + (f" --block {args.block}" if args.block != "image-ablation" else "")
    body = provenance(cmd) + "\n\n"
    body += "\n\n".join(sections) if sections else (
        f"**No image rows yet**: no dataset in `{shown(args.data_root)}` has at least {args.min_image_posts} posts with a photo.")
    if without:
        body += "\n\nWithout enough image posts (no rows): " + ", ".join(without) + "."
    print(write_block(args.block, body, args.doc, heading="## Image posts: Galaxy's table and the ablation (models issue)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
