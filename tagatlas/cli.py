"""The `tagatlas` command: train, enrich, suggest, evaluate, cluster, trends, serve, demo, opensearch …"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tagatlas import logs
from tagatlas.cli_common import CacheOption, CachePathOption, guard

HELP_WIDTH = 120  # --help piped to a file or a pager is not cut at 80 columns (a terminal keeps its own width)
import typer.rich_utils  # noqa: E402

if not sys.stdout.isatty() and typer.rich_utils.MAX_WIDTH is None:  # typer's own TERMINAL_WIDTH still wins
    typer.rich_utils.MAX_WIDTH = HELP_WIDTH

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="TagAtlas: where a post was posted and which hashtags it should carry.")

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@app.callback()
def main(log_level: Annotated[str, typer.Option(help="debug, info, warning or error (JSON lines on stderr)")] = "warning"):
    logs.configure(log_level)


def _load_training(data: list[Path], skip_invalid: bool, test_fraction: float, seed: int, max_posts: int | None):
    """(training posts, held-out test posts, every post read), saying which invalid lines were skipped."""
    from tagatlas.evaluation import training_split

    split = training_split(data, skip_invalid=skip_invalid, test_fraction=test_fraction, seed=seed, max_posts=max_posts)
    for r in split.reports:
        if r.skipped:
            typer.echo(f"{r.path}: skipped {r.skipped} invalid lines, e.g. {r.reasons[0]}", err=True)
    return split.train, split.test, split.everything


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="posts.jsonl(.gz) file; repeat for several")],
    out: Annotated[Path, typer.Option("--out", help="model folder to write (a new folder; an existing model folder only with --overwrite)")],
    test_fraction: Annotated[float, typer.Option(help="users held out by hash for `evaluate` on the same file")] = 0.1,
    val_fraction: Annotated[float, typer.Option(help="training users used to tune fusion and stop early; 0: 10 %, at least 300 users")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed for splits and training")] = 0,
    max_posts: Annotated[Optional[int], typer.Option(help="train on a deterministic subset of users up to this many posts")] = None,
    index_factory: Annotated[str, typer.Option(help="FAISS index_factory string, or 'auto' (from the data size)")] = "auto",
    text_encoder: Annotated[str, typer.Option(help="'use-multilingual' (offline), 'st:<model>' or 'open_clip:<arch>/<pretrained>'")] = "use-multilingual",
    image_encoder: Annotated[str, typer.Option(help="'efficientnet-lite0' (offline), 'open_clip' or 'none'")] = "efficientnet-lite0",
    skip_invalid: Annotated[bool, typer.Option(help="skip and count invalid lines instead of stopping")] = False,
    coord_loss_weight: Annotated[float, typer.Option(min=0.0, help="weight of the coordinate regression task (0: place and tags only)")] = 0.0,
    char_dim: Annotated[int, typer.Option(min=0, help="width of the character-aware text branch of the head (0: none)")] = 0,
    coattn_dim: Annotated[int, typer.Option(min=0, help="width of the head's co-attention between caption words and image regions (0: none)")] = 0,
    cluster_k: Annotated[int, typer.Option(min=0, help="cluster the indexed posts in training (k of the kNN graphs) so cluster-mates "
                                                       "are fusion evidence and posts report clusters; 0: no clusters until `tagatlas cluster`")] = 10,
    checkpoint_dir: Annotated[Optional[Path], typer.Option(help="where post vectors and per-epoch training state are kept until the model "
                                                                 "is saved (default: .<out>.checkpoint beside --out); a rerun resumes from it")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="discard an existing checkpoint and train from scratch")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the model folder --out if one exists")] = False,
    evidence: Annotated[Optional[list[str]], typer.Option("--evidence", help="plug-in evidence source fusion may weigh (repeat for "
                                                                            "several; default: the model's default set)")] = None,
):
    """Train a model folder (config + weights + FAISS index + SQLite store) on real posts; resumable."""
    from tagatlas.encoders import EncoderConfig
    from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas
    from tagatlas.recommender.folder import check_checkpoint, check_model_out, remove_checkpoint

    def run():
        if not 0 <= test_fraction < 1:
            raise ValueError(f"--test-fraction must be in [0, 1), got {test_fraction}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
        check_model_out(out, overwrite, data)
        posts, test, _ = _load_training(data, skip_invalid, test_fraction, seed, max_posts)
        typer.echo(f"training on {len(posts)} posts ({len(test)} posts of held-out users kept for evaluation)", err=True)
        head = HeadConfig(seed=seed, coord_loss_weight=coord_loss_weight, char_dim=char_dim, coattn_dim=coattn_dim)
        config = ModelConfig(encoder=EncoderConfig(text=text_encoder, image=image_encoder), head=head,
                             index_factory=index_factory, val_fraction=val_fraction, seed=seed, cluster_k=cluster_k,
                             **({"evidence": list(evidence)} if evidence else {}))
        ckpt = checkpoint_dir or out.resolve().with_name(f".{out.resolve().name}.checkpoint")
        check_checkpoint(ckpt)
        if restart:
            remove_checkpoint(ckpt)
        if ckpt.exists():
            typer.echo(f"resuming from checkpoint {ckpt} (--restart to start over)", err=True)
        model = TagAtlas(config).fit(posts, checkpoint_dir=ckpt)
        folder = model.save(out)
        remove_checkpoint(ckpt)  # the model folder is the result now
        typer.echo(json.dumps({"model": str(folder), **model.train_info_, "validation": {k: v for k, v in model.tuning_.items() if k != "params"}}))
    guard(run)


@app.command()
def enrich(
    model: Annotated[Path, typer.Option("--model", help="model folder")],
    source: Annotated[Path, typer.Option("--in", help="posts.jsonl(.gz) to enrich")],
    out: Annotated[Path, typer.Option("--out", help="output JSONL (an earlier run's output is resumed; any other file is refused)")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 256,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --out instead of resuming it")] = False,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="folder images may be read from (default: the input's folder)")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="skip and count invalid lines instead of stopping")] = False,
    cache: CacheOption = True,
    cache_path: CachePathOption = None,
    photo_gps: Annotated[bool, typer.Option("--photo-gps", help="write a photo's exact EXIF GPS position (default: coarsened to its place)")] = False,
):
    """Write each post with pred_place, pred_lat, pred_lon, pred_radius_km, pred_hashtags (resumable)."""
    from tagatlas.enrich import enrich_file
    from tagatlas.recommender import TagAtlas

    def run():
        m = TagAtlas.load(model)
        m.warm_up()  # before the cache opens: the warm-up post is not one of the user's posts
        if cache:
            m.encoder.use_cache(cache_path)
        result = enrich_file(m, source, out, batch_size=batch_size, skip_invalid=skip_invalid, photo_gps=photo_gps, overwrite=overwrite,
                             image_root=image_root)
        if m.encoder.cache is not None:
            result["embedding_cache"] = {"path": str(m.encoder.cache.path), "hits": m.encoder.cache.hits, "misses": m.encoder.cache.misses}
        # Images read by the encoder (cache hits excluded) and how many the noisy-image gate down-weighted.
        result["images"] = {"encoded": m.encoder.images_encoded, "gated": m.encoder.images_gated}
        typer.echo(json.dumps(result))
    guard(run)


@app.command()
def suggest(
    model: Annotated[Path, typer.Option("--model", help="model folder")],
    text: Annotated[Optional[str], typer.Option("--text", help="the post's caption")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="a local image file")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="user id: their similar past posts personalise the tags")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the full prediction as JSON")] = False,
):
    """Suggest a place (with coordinates and radius) and hashtags for one post."""
    from tagatlas.data import Post
    from tagatlas.encoders.image import ImageLoadError, check_image
    from tagatlas.recommender import TagAtlas
    from tagatlas.recommender.reader import cleaned

    def run():
        if not text and not image:
            raise ValueError("give --text, --image or both")
        if image is not None:
            if not image.exists():
                raise ValueError(f"--image {image}: no such file")
            try:
                check_image(image)
            except ImageLoadError as exc:
                raise ValueError(f"--image {image}: not a readable image ({exc.reason})") from exc
        if not image and not cleaned(text):
            raise ValueError(f"--text {text!r}: nothing to go on once its hashtags are set aside; write some words or give --image")
        m = TagAtlas.load(model)
        post = Post(id="query", user_id=user, text=text, image=str(image) if image else None)
        pred = m.predict([post])[0]
        if as_json:
            typer.echo(pred.model_dump_json(indent=2))
            return
        top = pred.places[0]
        others = ", ".join(f"{p.name} ({p.prob:.2f})" for p in pred.places[1:3])
        typer.echo(f"place     {top.name} (p={top.prob:.2f})" + (f"; then {others}" if others else ""))
        typer.echo(f"location  {pred.lat:.4f}, {pred.lon:.4f} ± {pred.radius_km:.0f} km")
        typer.echo("hashtags  " + (" ".join(f"#{t.tag}" for t in pred.hashtags) or "(none confident)"))
        for t in pred.hashtag_candidates[:8]:
            why = ", ".join(f"{k} {v:.3f}" for k, v in t.sources.items())
            typer.echo(f"  #{t.tag:<24} {t.score:.3f}  [{why}]")
    guard(run)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="model folder")],
    data: Annotated[Path, typer.Option("--data", help="posts.jsonl(.gz); only users unseen in training are used")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the evaluation contract JSON here")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="skip and count invalid lines instead of stopping")] = False,
):
    """TagAtlas and the baselines on held-out users: history half indexed online, the rest queried."""
    from tagatlas.data import load_posts
    from tagatlas.evaluation import evaluate as run_evaluation
    from tagatlas.evaluation import format_table
    from tagatlas.core import write_text_atomic
    from tagatlas.recommender import TagAtlas

    def run():
        m = TagAtlas.load(model)
        posts, _ = load_posts([data], skip_invalid=skip_invalid)
        result = run_evaluation(m, posts)
        if json_out:
            write_text_atomic(json_out, json.dumps(result, indent=1))
        typer.echo(format_table(result, title=f"{data} on {model}"))
    guard(run)


@app.command()
def cluster(
    model: Annotated[Path, typer.Option("--model", help="model folder: clusters go into its store, the clusterer into graph/")],
    k: Annotated[int, typer.Option(min=2, max=200, help="neighbours per post in each modality's kNN graph")] = 10,
    resolution: Annotated[float, typer.Option(min=0.01, max=100.0, help="Leiden resolution: higher gives more, smaller clusters")] = 1.0,
    fusion: Annotated[str, typer.Option(help="late (confidence-weighted), early (imputed) or concat")] = "late",
    edge_weights: Annotated[str, typer.Option(help="late fusion: each modality graph's scale before the merge — cosine, mean, "
                                                   "random-walk or normalised (docs/benchmarks.md compares them)")] = "cosine",
    confidence: Annotated[str, typer.Option(help="late fusion: node*modularity, node, none or agreement (views weighted by how far other views confirm their neighbours)")] = "node*modularity",
):
    """Cluster every indexed post from scratch (graph module); new posts then join clusters incrementally."""
    import time

    from tagatlas.graph.multimodal import CONFIDENCES, EDGE_WEIGHTS
    from tagatlas.recommender import TagAtlas

    def run():
        if fusion not in ("late", "early", "concat"):
            raise ValueError(f"--fusion must be late, early or concat, got {fusion!r}")
        if edge_weights not in EDGE_WEIGHTS:
            raise ValueError(f"--edge-weights must be one of {', '.join(EDGE_WEIGHTS)}, got {edge_weights!r}")
        if confidence not in CONFIDENCES:
            raise ValueError(f"--confidence must be one of {', '.join(CONFIDENCES)}, got {confidence!r}")
        started = time.perf_counter()
        m = TagAtlas.load(model, writable_store=True)
        graph = m.cluster(k=k, resolution=resolution, fusion=fusion, progress=True, edge_weights=edge_weights, confidence=confidence)
        graph.save(Path(model) / "graph")
        sizes = m.posts_.store.clusters.sizes()
        typer.echo(json.dumps({"model": str(model), "posts": int(sum(sizes.values())), "clusters": len(sizes),
                               "largest": max(sizes.values()), "fusion": fusion,
                               **({"edge_weights": edge_weights, "confidence": confidence} if fusion == "late" else {}),
                               "modality_confidence": {n: round(c, 4) for n, c in graph.modality_confidence_.items()},
                               "seconds": round(time.perf_counter() - started, 1)}))
    guard(run)


@app.command()
def trends(
    model: Annotated[Path, typer.Option("--model", help="a model folder clustered by `tagatlas cluster`")],
    window_hours: Annotated[float, typer.Option(min=0.01, help="length of the recent window, in hours")] = 24.0,
    history_windows: Annotated[int, typer.Option(min=1, max=1000, help="earlier windows that set each cluster's normal rate")] = 14,
    min_posts: Annotated[int, typer.Option(min=1)] = 5,
    z: Annotated[float, typer.Option(help="how abnormal the growth must be (Poisson z-score)")] = 3.0,
    now: Annotated[Optional[str], typer.Option(help="end of the recent window, ISO 8601 (default: the newest post)")] = None,
):
    """List clusters whose posts grew abnormally in the recent window, with their top hashtags and places."""
    from datetime import datetime

    from tagatlas.recommender import TagAtlas
    from tagatlas.recommender.clusters import trending

    def run():
        try:
            end = datetime.fromisoformat(now).timestamp() if now else None
        except ValueError as exc:
            raise ValueError(f"--now {now!r}: not an ISO 8601 time") from exc
        m = TagAtlas.load(model)
        if m.graph_ is None:
            raise ValueError(f"{model}: not clustered yet; run `tagatlas cluster --model {model}` first")
        for report in trending(m, now=end, window_s=window_hours * 3600, history_windows=history_windows,
                               min_posts=min_posts, z_threshold=z):
            typer.echo(report.model_dump_json())
    guard(run)


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", help="model folder (ingested posts are committed to its store)")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    encoder_threads: Annotated[int | None, typer.Option(min=1, help="threads the text encoder uses per request batch "
                                                        "(default: TAGATLAS_ENCODER_THREADS, else 1, which suits concurrent requests)")] = None,
    background_slots: Annotated[int, typer.Option(min=1, help="searches, ingests and deletes run at once beside the "
                                                  "suggestions (1 keeps suggestions fast on few cores)")] = 1,
):
    """Serve the REST API (OpenAPI docs at /docs). Writes need a key from TAGATLAS_API_KEYS or TAGATLAS_API_KEY_FILE."""
    import uvicorn

    from tagatlas.api import create_app
    from tagatlas.recommender import TagAtlas

    class Announcing(uvicorn.Server):
        """Says where it serves once it listens (with log_level=warning uvicorn itself says nothing)."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                service = app.state.service
                writes = "enabled" if service.keys else "disabled (no TAGATLAS_API_KEYS)"
                typer.echo(f"TagAtlas serving {model} ({service.model.posts_.store.count()} posts) at http://{host}:{port} "
                           f"— API docs at /docs; writes {writes}", err=True)

    def run():
        nonlocal app
        TagAtlas.load(model)  # fail now, with a clear message, if the folder is not a usable model
        unwritable = [p for p in (model, model / "store.sqlite") if p.exists() and not os.access(p, os.W_OK)]
        if unwritable:
            raise ValueError(f"{unwritable[0]}: read-only; the service commits ingested posts to the model folder: "
                             "serve a writable copy (cp -r) or fix its permissions")
        app = create_app(model, encoder_threads=encoder_threads, background_slots=background_slots)
        Announcing(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()

    app = None
    guard(run)


DEMO_DATASET = "users2015"  # real users, hashtags and text: every part of the product runs, in minutes


def demo_files(data_root: Path, names: list[str] | None, every: bool) -> list[Path]:
    """The posts files the demo runs: every dataset, the ones named, or the default one (else the smallest)."""
    files = sorted(p for p in data_root.glob("*/posts.jsonl*"))
    if not files:
        raise ValueError(f"{data_root}: no */posts.jsonl(.gz) files")
    if every:
        return files
    by_name = {p.parent.name: p for p in files}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"--dataset {', '.join(unknown)}: not in {data_root} (there: {', '.join(by_name)})")
        return [by_name[n] for n in names]
    return [by_name.get(DEMO_DATASET) or min(files, key=lambda p: p.stat().st_size)]


@app.command()
def demo(
    data_root: Annotated[Path, typer.Option(help="folder of datasets, each with a posts.jsonl(.gz)")] = SHARED_DATA,
    out: Annotated[Path, typer.Option(help="where models, enriched samples and evaluations go")] = Path("runs"),
    max_posts: Annotated[Optional[int], typer.Option(help="train on at most this many posts per dataset")] = None,
    datasets: Annotated[Optional[list[str]], typer.Option("--dataset", help="a dataset (folder name) to run; repeat for several "
                                                                             f"(default: {DEMO_DATASET} when present, else the smallest)")] = None,
    all_datasets: Annotated[bool, typer.Option("--all", help="run every dataset of --data-root (hours on 2 cores)")] = False,
):
    """The main job: train, enrich held-out posts, evaluate against baselines and print the tables, on a
    representative dataset (or the ones named, or --all)."""
    from tagatlas.enrich import enrich_file
    from tagatlas.evaluation import evaluate as run_evaluation
    from tagatlas.evaluation import format_table
    from tagatlas.core import write_text_atomic
    from tagatlas.recommender import ModelConfig, TagAtlas
    from tagatlas.recommender.folder import check_model_out

    def run():
        files = demo_files(data_root, datasets, all_datasets)
        tables = []
        for path in files:
            name = path.parent.name
            started = time.perf_counter()
            typer.echo(f"== {name}: training", err=True)
            posts, test, all_posts = _load_training([path], False, 0.1, 0, max_posts)
            m = TagAtlas(ModelConfig()).fit(posts)
            if m.graph_ is None:  # training clusters (ModelConfig.cluster_k); a model without them is clustered here
                typer.echo(f"== {name}: clustering {m.posts_.store.count()} indexed posts", err=True)
                m.cluster(progress=True)
            check_model_out(out / name / "model", overwrite=True)  # an earlier demo's model, never a folder of the user's
            folder = m.save(out / name / "model")
            sample = out / name / "heldout_sample.jsonl"
            write_text_atomic(sample, "".join(p.model_dump_json() + "\n" for p in test[:200]))
            enriched = out / name / "enriched_sample.jsonl"
            typer.echo(f"== {name}: enriching {min(200, len(test))} held-out posts → {enriched}", err=True)
            enrich_file(TagAtlas.load(folder), sample, enriched, overwrite=True)  # the demo's own output of an earlier run
            typer.echo(f"== {name}: evaluating", err=True)
            result = run_evaluation(TagAtlas.load(folder), all_posts)
            write_text_atomic(out / name / "eval.json", json.dumps(result, indent=1))
            tables.append(format_table(result, title=f"### {name} ({time.perf_counter() - started:.0f} s)"))
            typer.echo(tables[-1])
        typer.echo("\n\n".join(tables))
    guard(run)


from tagatlas.cli_opensearch import opensearch  # noqa: E402  (sub-commands, kept in their own module)

app.add_typer(opensearch, name="opensearch")

if __name__ == "__main__":
    sys.exit(app())
