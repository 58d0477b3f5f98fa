"""GPU against CPU (issue: performance, target 4): FAISS batch-query throughput at 1M vectors, batched image encoding.

The index rows use the recommender's own class (`tagatlas.index.FaissIndex`) with `use_gpu=False` and `True` on the
same vectors: exact search (`Flat`) and the configuration the recommender picks at this size (`factory_for`: IVF-SQ8),
queries in batches of `--batch`, both CPU cores or all of the machine's. Recall@10 of the GPU's answers against the
CPU's checks that both searched the same thing. Vectors are the tweets2015 model's own post vectors replicated
with jitter (as benchmarks/index_scale.py: for scale only, nothing about quality); queries are other jittered
copies. The image rows time `EfficientNetLiteImage.encode` on CPU and on CUDA over the same photos (scikit-learn's two
sample photos, alternating: for throughput only).

Where faiss has no GPU support or torch sees no CUDA device, only the CPU rows are measured and printed, and
docs/benchmarks.md is left alone: a GPU figure is only ever written from a GPU run. On a GPU machine:

    pip install -e '.[gpu]'   # faiss-gpu-cu12 (and a CUDA build of torch for the image rows)
    .venv/bin/python benchmarks/gpu.py [--size 1000000] [--queries 10000] [--batch 1000] [--images 512]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, provenance, write_block  # noqa: E402
from index_scale import replicate  # noqa: E402

from tagatlas.index import PostStore  # noqa: E402
from tagatlas.index.faiss_index import FaissIndex, factory_for, gpu_available  # noqa: E402

TARGET_SPEEDUP = 10.0


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def batch_qps(index: FaissIndex, queries: np.ndarray, batch: int, k: int) -> tuple[float, np.ndarray]:
    """Queries per second over all `queries` in batches (after one warm-up batch), and the ids found."""
    index.search(queries[:batch], k)  # warm-up: a GPU copy is made on the first search
    ids = []
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        ids.append(index.search(queries[start : start + batch], k)[1])
    return len(queries) / (time.perf_counter() - started), np.concatenate(ids)


def recall_against(found: np.ndarray, reference: np.ndarray) -> float:
    k = reference.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), reference.tolist())]))


def index_rows(base: np.ndarray, size: int, n_queries: int, batch: int, k: int, gpu: bool) -> list[dict]:
    vectors = replicate(base, size, jitter=0.05, seed=0)
    queries = replicate(base, n_queries, jitter=0.05, seed=1)
    ids = np.arange(size, dtype=np.int64)
    rows = []
    for factory in ("Flat", factory_for(size)):
        started = time.perf_counter()
        cpu = FaissIndex(vectors.shape[1], factory=factory, use_gpu=False).index(ids, vectors)
        build = time.perf_counter() - started
        cpu_qps, cpu_ids = batch_qps(cpu, queries, batch, k)
        row = {"factory": factory, "build_s": build, "cpu_qps": cpu_qps}
        if gpu:
            cpu.use_gpu = True  # the same trained index, now searched through the class's GPU path
            row["gpu_qps"], gpu_ids = batch_qps(cpu, queries, batch, k)
            row["speedup"] = row["gpu_qps"] / cpu_qps
            row["gpu_recall_vs_cpu"] = recall_against(gpu_ids, cpu_ids)
        rows.append(row)
        print(row, flush=True)
    return rows


def image_rows(n_images: int, batch: int, cuda: bool) -> list[dict]:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from tagatlas.encoders.image import EfficientNetLiteImage

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name in ("china.jpg", "flower.jpg"):
            Image.fromarray(load_sample_image(name)).save(Path(tmp) / name)
            paths.append(str(Path(tmp) / name))
        images = [paths[i % 2] for i in range(n_images)]
        for device in ["cpu"] + (["cuda"] if cuda else []):
            encoder = EfficientNetLiteImage(device=device)
            encoder.encode(images[:batch], batch_size=batch)  # warm-up (and, on CUDA, kernel selection)
            started = time.perf_counter()
            encoder.encode(images, batch_size=batch)
            rows.append({"device": device, "images_per_s": n_images / (time.perf_counter() - started)})
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "tweets2015" / "model")
    ap.add_argument("--size", type=int, default=1_000_000, help="vectors in the index")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1000, help="queries per search call")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--images", type=int, default=512, help="photos encoded per device (0: no image rows)")
    ap.add_argument("--image-batch", type=int, default=64)
    args = ap.parse_args()
    for name in ("size", "queries", "batch", "k"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    if not (args.model / "store.sqlite").is_file():
        raise SystemExit(f"--model {args.model}: no store.sqlite (train it first: bash scripts/demo.sh)")
    gpu, cuda = gpu_available(), cuda_available()
    store = PostStore.open_copy(args.model / "store.sqlite")
    chunks = [vectors for _, _, vectors in store.iter_all()]
    store.close()
    base = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    if not len(base):
        raise SystemExit(f"--model {args.model}: its store holds no vectors")
    index = index_rows(base.astype(np.float32), args.size, args.queries, args.batch, args.k, gpu)
    images = image_rows(args.images, args.image_batch, cuda) if args.images > 0 else []
    if not gpu:
        print("faiss sees no GPU here (install the `gpu` extra on a GPU machine): CPU rows only; docs/benchmarks.md not written")
        return 0
    lines = [provenance(f".venv/bin/python benchmarks/gpu.py --size {args.size} --queries {args.queries} --batch {args.batch}"
                        f" --images {args.images}"), "",
             f"{args.size:,} vectors (the tweets2015 model's post vectors replicated with jitter: scale only), "
             f"{args.queries:,} queries in batches of {args.batch}, k = {args.k}. Target: GPU ≥ {TARGET_SPEEDUP:.0f}× the CPU's queries/s.", "",
             "| index | build (s, CPU) | CPU queries/s | GPU queries/s | GPU / CPU | GPU recall@10 vs CPU |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['factory']}` | {r['build_s']:.1f} | {r['cpu_qps']:,.0f} | {r['gpu_qps']:,.0f} | **{r['speedup']:.1f}x** | "
              f"{r['gpu_recall_vs_cpu']:.3f} |" for r in index]
    if images:
        lines += ["", "| image encoder (EfficientNet-Lite0) | photos/s |", "|---|---|"]
        lines += [f"| {r['device']} | {r['images_per_s']:,.1f} |" for r in images]
    write_block("gpu", "\n".join(lines), heading="## GPU against CPU (issue: performance)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
