"""Photos into GeoCLIP's location space: does a map from the offline image backbone's features into the space of
GeoCLIP's pretrained location encoder place photos better than image retrieval? Checked on validation users only.

GeoCLIP pairs a CLIP image tower with a location encoder (GPS → 512-d) trained together on millions of geotagged
photos. Its image tower needs a hub checkpoint that cannot be loaded offline; the `geoclip` package ships the
location encoder and a gallery of 100K coordinates. This script trains a map from the offline backbone's pooled
features (EfficientNet-Lite0, ImageNet) into that space on the fit users' photos (contrastive: each photo's own
location against gallery locations, the location encoder frozen, as GeoCLIP trains its image side), answers each
validation user's photo with the gallery or training coordinate nearest its mapped vector, and sets that beside
image retrieval (the `image_neighbours` plug-in's consensus vote, its winning neighbour's coordinates) and the
densest training point as one constant answer. Every photo post of the validation users is asked, hashtags and
text unused: this measures what the photo alone says. The held-out test users are never read past the split.
Writes the `geoclip-map-<dataset>` block of docs/benchmarks.md.

geoclip is not a TagAtlas dependency (it pins an old huggingface-hub), so install it for this script alone:

    .venv/bin/pip install pandas geopy && .venv/bin/pip install --no-deps geoclip
    .venv/bin/python benchmarks/geoclip_map.py --dataset im2gps3k
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tagatlas  # noqa: F401 - before numpy: numpy's BLAS threads must read tagatlas.core.native's setting

import numpy as np

from tagatlas.data import distance_km, pairwise_km
from tagatlas.recommender.evidence.image_neighbours import ImageNeighbours, consensus_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import answer_row, data_file, dataset_arguments, emit_block, provenance, shown  # noqa: E402

RADII = (25, 161, 750)
SEED = 0


@dataclass(frozen=True)
class MapSetting:
    """One map from image features into the location space: `hidden` 0 is linear."""

    hidden: int
    epochs: int
    weight_decay: float

    @property
    def label(self) -> str:
        shape = "linear" if self.hidden == 0 else f"MLP ({self.hidden} hidden)"
        return f"GeoCLIP location space, {shape}, {self.epochs} epochs, weight decay {self.weight_decay:g}"


SETTINGS = (MapSetting(0, 60, 1e-4), MapSetting(512, 60, 1e-3), MapSetting(512, 150, 1e-2))


def point_row(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Acc@25, Acc@161, Acc@750 and the median error of one point answer (n, 2) per query."""
    return answer_row(distance_km(pred[:, 0], pred[:, 1], truth[:, 0], truth[:, 1]), RADII)


def normalized(features: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Features centred on the training photos' mean and scaled to unit length (cosine similarity by dot product)."""
    x = features - centre
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval_answer(query: np.ndarray, gallery: np.ndarray, coords: np.ndarray, k: int = ImageNeighbours.k) -> np.ndarray:
    """Per query (unit vectors), the coordinates of the gallery photo with the largest consensus vote among its `k`
    most similar ones: the `image_neighbours` plug-in's vote read as a point."""
    sims = query @ gallery.T
    top = np.argsort(-sims, axis=1)[:, :k]
    out = np.empty((len(query), 2))
    for i, found in enumerate(top):
        w = consensus_weights(sims[i, found], coords[found, 0], coords[found, 1], ImageNeighbours.temperature, ImageNeighbours.radius_km)
        out[i] = coords[found[int(np.argmax(w))]]
    return out


def densest_point(coords: np.ndarray, radius_km: float = 161.0) -> np.ndarray:
    """The training coordinate with the most training coordinates within `radius_km` (one answer for every query)."""
    counts = (pairwise_km(coords[:, 0], coords[:, 1]) <= radius_km).sum(axis=1)
    return coords[int(np.argmax(counts))]


def train_map(features: np.ndarray, targets, negatives, setting: MapSetting, batch: int = 128, n_negatives: int = 2048):
    """A torch module from unit image features (n, d) into the location space, trained so each photo's vector is
    nearest its own location's embedding `targets` (n, e) among `n_negatives` drawn from `negatives` (m, e)."""
    import torch

    torch.manual_seed(SEED)
    d, e = features.shape[1], targets.shape[1]
    net = torch.nn.Linear(d, e) if setting.hidden == 0 else torch.nn.Sequential(
        torch.nn.Linear(d, setting.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(setting.hidden, e))
    log_scale = torch.nn.Parameter(torch.tensor(3.0))
    opt = torch.optim.AdamW([*net.parameters(), log_scale], lr=1e-3, weight_decay=setting.weight_decay)
    x = torch.as_tensor(features, dtype=torch.float32)
    for _ in range(setting.epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            rows = order[start:start + batch]
            drawn = negatives[torch.randint(0, len(negatives), (n_negatives,))]
            z = torch.nn.functional.normalize(net(x[rows]), dim=1)
            logits = log_scale.exp() * z @ torch.cat([targets[rows], drawn]).T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def map_answer(net, features: np.ndarray, candidates, candidate_points: np.ndarray) -> np.ndarray:
    """Per query, the candidate point whose location embedding is nearest the query's mapped vector."""
    import torch

    with torch.no_grad():
        z = torch.nn.functional.normalize(net(torch.as_tensor(features, dtype=torch.float32)), dim=1)
        best = (z @ candidates.T).argmax(dim=1).numpy()
    return candidate_points[best]


def location_space():
    """(encode, gallery points (m, 2)): GeoCLIP's pretrained location encoder (unit vectors, batched, no gradients)
    and its 100K-coordinate GPS gallery, both shipped inside the `geoclip` package."""
    import os

    import torch
    from geoclip import LocationEncoder
    from geoclip.model.misc import file_dir, load_gps_data

    encoder = LocationEncoder().eval()

    def encode(points: np.ndarray):
        with torch.no_grad():
            pts = torch.as_tensor(points, dtype=torch.float32)
            return torch.nn.functional.normalize(torch.cat([encoder(pts[i:i + 5000]) for i in range(0, len(pts), 5000)]), dim=1)

    return encode, load_gps_data(os.path.join(file_dir, "gps_gallery", "coordinates_100K.csv")).numpy().astype(float)


def photo_posts(path: Path) -> tuple[list, list]:
    """(fit users' located photo posts, validation users' located photo posts) of the training users."""
    from tagatlas.evaluation import training_split
    from tagatlas.recommender.training import validation_split

    parts = validation_split(training_split([path], skip_invalid=True).train)
    keep = lambda posts: [p for p in posts if p.image and p.lat is not None and p.lon is not None]  # noqa: E731
    return keep(parts["fit"]), keep(parts["val"])


def measure(fit: list, val: list) -> dict[str, dict[str, float]]:
    """Rows by answer on the validation photos."""
    from tagatlas.encoders import EfficientNetLiteImage

    encoder = EfficientNetLiteImage()
    raw_fit = encoder.encode([p.image for p in fit], progress=True)
    raw_val = encoder.encode([p.image for p in val], progress=True)
    centre = raw_fit.mean(axis=0)
    x_fit, x_val = normalized(raw_fit, centre), normalized(raw_val, centre)
    y_fit, y_val = np.array([[p.lat, p.lon] for p in fit]), np.array([[p.lat, p.lon] for p in val])
    rows = {"densest training point (one constant answer)": point_row(np.repeat(densest_point(y_fit)[None], len(val), 0), y_val),
            "image retrieval (the image_neighbours vote as a point)": point_row(retrieval_answer(x_val, x_fit, y_fit), y_val)}
    import torch

    encode, gallery = location_space()
    targets, gallery_embedded = encode(y_fit), encode(gallery)
    candidates, points = torch.cat([gallery_embedded, targets]), np.concatenate([gallery, y_fit])
    for setting in SETTINGS:
        net = train_map(x_fit, targets, gallery_embedded, setting)
        rows[setting.label] = point_row(map_answer(net, x_val, candidates, points), y_val)
    return rows


def table(rows: dict[str, dict[str, float]]) -> str:
    return ("| photo alone → coordinates | Acc@25 | Acc@161 | Acc@750 | median km |\n|---|---|---|---|---|\n"
            + "\n".join(f"| {name} | {r['acc_25']:.3f} | {r['acc_161']:.3f} | {r['acc_750']:.3f} | {r['median_km']:.0f} |" for name, r in rows.items()))


def main() -> int:
    ap = dataset_arguments(__doc__.splitlines()[0])
    args = ap.parse_args()
    try:
        import geoclip  # noqa: F401
    except ImportError:
        ap.error("the optional package geoclip is not installed: .venv/bin/pip install pandas geopy && .venv/bin/pip install --no-deps geoclip")
    path = data_file(args.data_root, args.dataset)
    fit, val = photo_posts(path)
    if not fit or not val:
        ap.error(f"--dataset {args.dataset}: no located photo posts among its fit or validation users")
    started = time.perf_counter()
    rows = measure(fit, val)
    body = (f"{provenance(f'.venv/bin/python benchmarks/geoclip_map.py --dataset {args.dataset}')}\n\n"
            f"Data: `{shown(path)}`, training users only: maps trained on {len(fit)} located photos of the fit users, asked on "
            f"{len(val)} located photos of the validation users ({len({p.user_key for p in val})} users; the photo alone); "
            f"{time.perf_counter() - started:.0f} s.\n\n" + table(rows))
    emit_block(f"geoclip-map-{args.dataset}", body, "## Image posts: Galaxy's table and the ablation", args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
