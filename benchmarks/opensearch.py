"""TagAtlas's side of the OpenSearch paths, measured without a cluster (none can be installed on our machines).

1. Path A: the ingest pipeline calls `POST /v1/enrich` once per document. We send the connector's exact
   request bodies (rendered as ML Commons renders them) for `--posts` real held-out posts from `--concurrency`
   threads to a real `tagatlas serve`, and report documents/s and latency: the time TagAtlas adds to indexing.
2. Path B: `tagatlas opensearch enrich` (BulkEnricher) against the local request recorder of the tests
   (tests/recorder.py: it stores the bulk bodies, it is not OpenSearch), and the encoder-only pass on the
   same posts: posts/s of enrichment + bulk serialisation, with no cluster cost in it.

    .venv/bin/python benchmarks/opensearch.py [--model runs/tweets2015/model] [--posts 1000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import REPO, provenance, shown, write_block  # noqa: E402
from load import KEY, serve  # noqa: E402


def heldout_posts(data: Path, model_dir: Path, n: int) -> list[dict]:
    """Real posts the model did not index (ids absent from its store), in file order."""
    from tagatlas.index import PostStore

    store = PostStore.open_copy(model_dir / "store.sqlite")
    out = []
    with gzip.open(data, "rt", encoding="utf-8") as handle:
        for line in handle:
            r = json.loads(line)
            if r.get("text") and not store.rowids([str(r["id"])]):
                out.append(r)
                if len(out) == n:
                    break
    return out


def path_a(model_dir: Path, posts: list[dict], concurrency: int) -> dict:
    from tagatlas.plugin.bodies import connector_request_template

    template = connector_request_template()
    folder = Path(tempfile.mkdtemp()) / "m"
    shutil.copytree(model_dir, folder)
    proc, url = serve(folder)  # the load benchmark's server start (its API key, rate limits out of the way)
    try:
        bodies = []
        for r in posts:
            params = {"text": r["text"], "user_id": str(r.get("user_id") or ""), "image_url": "", "created_at": r.get("created_at") or ""}
            body = template
            for name, value in params.items():
                body = body.replace("${parameters.%s}" % name, json.dumps(value)[1:-1])
            bodies.append(body)
        client = httpx.Client(headers={"X-API-Key": KEY, "content-type": "application/json"}, timeout=60)

        def one(body: str) -> tuple[float, int]:
            t = time.perf_counter()
            status = client.post(f"{url}/v1/enrich", content=body).status_code
            return time.perf_counter() - t, status

        one(bodies[0])
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(one, bodies))
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder.parent, ignore_errors=True)
    lat = np.array([r[0] for r in results]) * 1000
    return {"docs": len(bodies), "ok": sum(r[1] == 200 for r in results), "seconds": wall, "docs_per_s": len(bodies) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def path_b(model_dir: Path, posts: list[dict]) -> dict:
    from recorder import Recorder

    from tagatlas.data import Post
    from tagatlas.plugin import BulkEnricher, Connection
    from tagatlas.recommender import TagAtlas

    model = TagAtlas.load(model_dir)
    work = Path(tempfile.mkdtemp())
    src = work / "posts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in posts), encoding="utf-8")
    parsed = [Post.model_validate(r) for r in posts]
    model.embed(parsed[:8])  # warm up
    t = time.perf_counter()
    for start in range(0, len(parsed), 256):
        model.encoder.encode_posts(parsed[start:start + 256])
    encoder_s = time.perf_counter() - t
    with Recorder() as rec:
        enricher = BulkEnricher(model, Connection(rec.url).client(), "posts", checkpoint=work / "ckpt.json", progress=False)
        report = enricher.run_file(src)
        written = len(rec.state.docs.get("posts", {}))
    shutil.rmtree(work, ignore_errors=True)
    return {"posts": len(posts), "written": written, "failed": report.failed, "seconds": report.seconds,
            "posts_per_s": len(posts) / report.seconds, "encoder_posts_per_s": len(posts) / encoder_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs/tweets2015/model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tweets2015/posts.jsonl.gz")
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    posts = heldout_posts(args.data, args.model, args.posts)
    a = path_a(args.model, posts, args.concurrency)
    b = path_b(args.model, posts)
    print(json.dumps({"path_a": a, "path_b": b}, indent=1))
    body = (provenance(f".venv/bin/python benchmarks/opensearch.py --posts {args.posts} --concurrency {args.concurrency}") + "\n\n"
            f"Held-out real posts of `{shown(args.data)}` (ids not in the model's store), model `{shown(args.model)}`.\n\n"
            "| path | what is timed | documents | ok | seconds | documents/s | latency p50 / p99 |\n|---|---|---|---|---|---|---|\n"
            f"| A: ingest pipeline → `/v1/enrich` | {args.concurrency} concurrent callers, connector-rendered bodies, real server | "
            f"{a['docs']} | {a['ok']} | {a['seconds']:.1f} | {a['docs_per_s']:.1f} | {a['p50_ms']:.0f} / {a['p99_ms']:.0f} ms |\n"
            f"| B: `opensearch enrich` (bulk) | enrichment + bulk bodies sent to the test recorder (no cluster cost) | "
            f"{b['posts']} | {b['written']} | {b['seconds']:.1f} | {b['posts_per_s']:.1f} | – |\n"
            f"| (floor) | encoder forward pass only, same posts, batches of 256 | {b['posts']} | – | "
            f"{b['posts'] / b['encoder_posts_per_s']:.1f} | {b['encoder_posts_per_s']:.1f} | – |\n\n"
            "A real cluster adds its own indexing time and, for path A, one HTTP round trip per document from the node.")
    if not args.no_doc:
        write_block("opensearch", body, heading="## OpenSearch paths (TagAtlas side)")


if __name__ == "__main__":
    main()
