"""Load test of the REST service on localhost: locust (headless) against a real `tagatlas serve`.

Starts the server on a copy of the model folder (the original is never written), runs locust with
`--users` users for `--seconds` seconds (each waits 0.5–1.5 s between requests, like a person typing),
after measuring single-client text-only suggest latency (sequential requests, no other load);
repeats the locust run (`--repeats`, fresh model copy each time) and writes the median run to
docs/benchmarks.md with every run's suggest p99. The request texts are real posts of the held-out users.

    .venv/bin/python benchmarks/load.py [--model runs/tweets2015/model] [--data ../shared/data/tweets2015/posts.jsonl.gz]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, provenance, write_block  # noqa: E402

KEY = "load-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def held_out_texts(data: Path, model: Path, n: int = 2000) -> list[str]:
    """Texts of posts the model never saw: those of `data` that are not in the model's store."""
    from tagatlas.data import load_posts
    from tagatlas.index import PostStore

    store = PostStore.open_copy(model / "store.sqlite")
    seen = store.post_ids()
    store.close()
    posts, _ = load_posts([data])
    return [p.text for p in posts if p.text and p.id not in seen][:n]


def serve(model: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TAGATLAS_API_KEYS": KEY, "TAGATLAS_RATE_LIMIT": "100000", "TAGATLAS_RATE_BURST": "100000"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tagatlas"), "serve", "--model", str(model), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential_latency(url: str, texts: list[str], n: int, pid: int) -> dict:
    """p50/p99 of text-only suggest, one request at a time, measured by the client (HTTP included), and the server's
    CPU time per request (threads that spin instead of sleeping show up here, not in the latency)."""
    times = []
    with httpx.Client(timeout=30) as client:
        for text in texts[:20]:  # warm-up
            client.post(f"{url}/v1/suggest", json={"text": text})
        cpu_before = cpu_seconds(pid)
        for i in range(n):
            started = time.perf_counter()
            r = client.post(f"{url}/v1/suggest", json={"text": texts[i % len(texts)]})
            times.append(time.perf_counter() - started)
            r.raise_for_status()
    cpu_ms = (cpu_seconds(pid) - cpu_before) / n * 1000
    ms = np.array(times) * 1000
    return {"n": n, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()),
            "cpu_ms": cpu_ms}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "tweets2015" / "model")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tweets2015" / "posts.jsonl.gz")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--spawn-rate", type=float, default=10, help="users started per second (ramp-up)")
    ap.add_argument("--repeats", type=int, default=3, help="locust runs (the machine is shared: one run is one sample)")
    ap.add_argument("--sequential", type=int, default=1000, help="single-client suggest requests")
    ap.add_argument("--no-ingest", action="store_true", help="locust users only suggest and search (where does the tail come from?)")
    ap.add_argument("--no-doc", action="store_true", help="print the tables without writing docs/benchmarks.md")
    args = ap.parse_args()
    if args.no_ingest and not args.no_doc:
        raise SystemExit("--no-ingest is a diagnostic run: give --no-doc too (the docs block shows the full mix)")
    tagatlas = Path(sys.executable).parent / "tagatlas"
    if not (args.model / "model.json").exists():
        print(f"training {args.model} on {args.data}", file=sys.stderr)
        subprocess.run([str(tagatlas), "train", "--data", str(args.data), "--out", str(args.model)], check=True)
    runs = []  # (stats rows, posts ingested) per repeat; each repeat serves a fresh copy of the model
    seq = None
    texts = held_out_texts(args.data, args.model)
    for repeat in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="tagatlas-load-"))
        try:
            model = work / "model"
            shutil.copytree(args.model, model)
            (work / "texts.json").write_text(json.dumps(texts))
            proc, url = serve(model)
            try:
                if seq is None:
                    seq = sequential_latency(url, texts, args.sequential, proc.pid)
                posts_before = httpx.get(f"{url}/health").json()["posts"]
                env = {**os.environ, "TAGATLAS_LOAD_TEXTS": str(work / "texts.json"), "TAGATLAS_LOAD_KEY": KEY,
                       "TAGATLAS_LOAD_INGEST_WEIGHT": "0" if args.no_ingest else "1"}
                subprocess.run([str(Path(sys.executable).parent / "locust"), "-f", str(REPO / "benchmarks" / "locustfile.py"), "--headless",
                                "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.seconds}s",
                                "--host", url, "--csv", str(work / "locust"), "--only-summary", "--loglevel", "WARNING"],
                               env=env, check=False)
                ingested = httpx.get(f"{url}/health").json()["posts"] - posts_before
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            with open(work / "locust_stats.csv", newline="") as handle:
                runs.append((list(csv.DictReader(handle)), ingested))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    def suggest_p99(stats) -> float:
        return next(float(s["99%"]) for s in stats if s["Name"].startswith("POST /v1/suggest"))

    order = sorted(range(len(runs)), key=lambda i: suggest_p99(runs[i][0]))
    stats, ingested = runs[order[len(order) // 2]]  # the run with the median suggest p99
    rows = ["| endpoint | requests | failures | req/s | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for s in stats:
        name = "**all**" if s["Name"] == "Aggregated" else s["Name"]
        rows.append(f"| {name} | {s['Request Count']} | {s['Failure Count']} | {float(s['Requests/s']):.1f} | {s['50%']} | {s['99%']} | "
                    f"{float(s['Max Response Time']):.0f} |")
    failures = sum(int(s["Failure Count"]) for st, _ in runs for s in st if s["Name"] == "Aggregated")
    per_run = ", ".join(f"{suggest_p99(st):.0f}" for st, _ in runs)
    body = (provenance(".venv/bin/python benchmarks/load.py") + "\n\n"
            f"Model: `{args.model.relative_to(REPO) if REPO in args.model.resolve().parents else args.model}`. "
            f"Server and load generator share the machine's cores.\n\n"
            f"**Single client, text-only suggest** ({seq['n']} sequential requests of real held-out captions, HTTP included): "
            f"p50 **{seq['p50']:.1f} ms**, p99 **{seq['p99']:.1f} ms**, mean {seq['mean']:.1f} ms; "
            f"server CPU time {seq['cpu_ms']:.1f} ms per request (from /proc, all server threads).\n\n"
            f"**Locust**, {args.users} users (started {args.spawn_rate:g} a second) for {args.seconds} s, each waiting 0.5–1.5 s between requests "
            f"(6 suggest : 3 search : {0 if args.no_ingest else 1} ingest), repeated {len(runs)} times on fresh copies of the model; {failures} failed requests in all. "
            f"Suggest p99 per run: {per_run} ms. The table is the run with the median suggest p99 ({ingested} posts ingested during it):\n\n"
            + "\n".join(rows))
    if args.no_doc:
        print(body)
    else:
        print(write_block("load", body, heading="## REST API under load (issue: REST API)"))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
