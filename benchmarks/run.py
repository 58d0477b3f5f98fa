"""Reproduce every table and plot in docs/benchmarks.md with one command.

Trains the model the other benchmarks read (runs/tweets2015/model) when it is missing, then runs each
benchmark script in turn; each rewrites only its own block of docs/benchmarks.md. On 2 cores the whole
run takes about an hour (the graph and index-scale benchmarks build 100k- and 1M-post structures).

    .venv/bin/python benchmarks/run.py [--only pipeline,throughput,...] [--skip load]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
DATA = REPO.parent / "shared" / "data"
MODEL = REPO / "runs" / "tweets2015" / "model"

# name → command (each script documents its own options)
BENCHMARKS = {
    "pipeline": [PY, "benchmarks/pipeline.py"],
    "geo_ablation": [PY, "benchmarks/geo_ablation.py"],
    "char_ablation": [PY, "benchmarks/char_ablation.py"],
    "new_tags": [PY, "benchmarks/new_tags.py"],
    "image_ablation": [PY, "benchmarks/image_ablation.py"],
    "throughput": [PY, "benchmarks/throughput.py"],
    "index_scale": [PY, "benchmarks/index_scale.py"],
    "load": [PY, "benchmarks/load.py"],
    "opensearch": [PY, "benchmarks/opensearch.py"],
    "graph": [PY, "benchmarks/graph.py"],
    "graph_weighting": [PY, "benchmarks/graph_weighting.py"],
    "gpu": [PY, "benchmarks/gpu.py"],  # writes its block only on a GPU machine
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated names: " + ", ".join(BENCHMARKS))
    ap.add_argument("--skip", default="", help="comma-separated names to leave out")
    args = ap.parse_args()
    names = [n for n in (args.only.split(",") if args.only else BENCHMARKS) if n and n not in args.skip.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    if not (MODEL / "model.json").is_file() and set(names) - {"pipeline", "graph", "graph_weighting"}:
        print(f"training {MODEL} (read by the throughput, index, load and OpenSearch benchmarks)", flush=True)
        subprocess.run([str(Path(PY).parent / "tagatlas"), "train", "--data", str(DATA / "tweets2015" / "posts.jsonl.gz"),
                        "--out", str(MODEL)], cwd=REPO, check=True)
    failed = []
    for name in names:
        print(f"== {name}: {' '.join(BENCHMARKS[name][1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(BENCHMARKS[name], cwd=REPO).returncode
        print(f"== {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
