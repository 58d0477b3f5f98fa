"""The image-posts and graph benchmarks run end to end and report image rows only for datasets that have photos.

The data root here is synthetic (named so): real photos shipped by scikit-learn / scikit-image, with
generated captions, users, places and hashtags. It exercises the script, not the models' accuracy.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def synthetic_root(root: Path) -> Path:
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = root / "synthetic_images"
    photos.mkdir(parents=True)
    arrays = [skimage_data.coffee(), skimage_data.chelsea(), load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(photos / f"photo{i}.jpg")
    cities = [(35.68, 139.69), (34.69, 135.50), (43.06, 141.35), (33.59, 130.40)]
    rng = np.random.default_rng(0)
    lines = []
    for u in range(40):
        for k in range(2):
            c = (u + k) % 4
            lines.append({"id": f"{u}-{k}", "user_id": f"user{u}", "text": f"synthetic caption {u} {k} #tag{c}",
                          "hashtags": [f"tag{c}"], "image": f"photo{c}.jpg" if (u + k) % 3 else None,
                          "created_at": f"2020-01-0{k + 1}T10:00:00Z",
                          "lat": cities[c][0] + float(rng.normal()) * 0.01, "lon": cities[c][1] + float(rng.normal()) * 0.01})
    (photos / "posts.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    text_only = root / "synthetic_text"
    text_only.mkdir()
    (text_only / "posts.jsonl").write_text("\n".join(json.dumps({**r, "image": None}) for r in lines) + "\n")
    return root


def test_image_rows_for_the_dataset_with_photos_only(tmp_path):
    import image_ablation

    root = synthetic_root(tmp_path / "data")
    doc = tmp_path / "doc.md"
    assert image_ablation.main(["--data-root", str(root), "--min-image-posts", "10", "--only",
                                "fused (all items),-coattention (1),shipped: fused,shipped: -tag_places evidence",
                                "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "### synthetic_images" in text and "### synthetic_text" not in text
    rows = [line for line in text.splitlines() if line.startswith(("| fused", "| -coattention", "| shipped"))]
    assert len(rows) == 4 and all(len(r.split("|")) == 11 for r in rows)
    assert "synthetic_text/posts.jsonl` (0 posts with a photo)" in text


def test_the_named_places_row_turns_only_named_places_off():
    import types

    import image_ablation
    from tagatlas.recommender.fusion import FusionParams

    tuned = FusionParams(named_place_below=0.5, named_place_below_tagged=1.01, named_place_prob=0.7, source_place={"place_names": 0.7})
    model = types.SimpleNamespace(fusion_=tuned)
    image_ablation.variants()["shipped: -named places"][4](model)
    assert model.fusion_.named_place_below == model.fusion_.named_place_below_tagged == 0.0
    assert model.fusion_.source_place == tuned.source_place and model.fusion_.geo_alpha == tuned.geo_alpha


def test_graph_benchmark_removes_each_content_view_when_a_dataset_has_photos(tmp_path):
    import graph

    root = synthetic_root(tmp_path / "data")
    doc = tmp_path / "doc.md"
    assert graph.main(["--data-root", str(root), "--scale", "0", "--min-image-posts", "10", "--seeds", "2",
                       "--doc", str(doc)]) == 0
    text = doc.read_text()
    photos, text_only = text.split("### synthetic_images")[1].split("### synthetic_text")
    assert "modalities: text + image + hashtags" in photos and "modalities: text + image + location" in photos
    assert photos.count("| image removed |") == 2 and photos.count("| text removed |") == 2
    assert photos.count("| hashtags removed |") == 1  # tags are removed against places only: they make the other reference
    assert "image" not in text_only.split("no image view)", 1)[1] and text_only.count("| text removed |") == 2
    assert "(0 with a photo; under 10, so no image view)" in text_only
    for part in (photos, text_only):  # the weighting is chosen once per dataset, from the variants' table
        (chosen,) = re.findall(r"Chosen: \*\*(.+?)\*\*", part)
        (row,) = [line for line in part.splitlines() if line.startswith(f"| {chosen}")]
        assert "**chosen**" in row and part.count("**chosen**") == 1
    tables = [t for part in (photos, text_only) for t in part.split("Against **")[1:]]
    assert len(tables) == 8
    for table in tables:  # three fractions, then the goal's headroom and verdict computed from the same rows
        lines = table.splitlines()
        rows = {line.split(" | ")[0]: line.split(" | ") for line in lines if line.startswith(("| 0 %", "| 30 %", "| 60 %"))}
        assert set(rows) == {"| 0 %", "| 30 %", "| 60 %"}
        nmi = lambda cell: float(cell.strip("* ").split(" ± ")[0])  # noqa: E731
        (headroom,) = [line for line in lines if line.startswith("Headroom:")]
        goal = float(re.search(r"NMI ≥ (\d+\.\d{3})", headroom)[1])
        reached = float(re.search(r"reaches (\d\.\d{3})", headroom)[1])
        assert goal == pytest.approx(1.15 * nmi(rows["| 30 %"][3]), abs=2e-3)
        assert reached == pytest.approx(max(nmi(c) for c in rows["| 0 %"][1:5]), abs=1e-3)
        (verdict,) = [line for line in lines if line.startswith("Goal (")]
        ratio = float(rows["| 30 %"][5].split(" ± ")[0])
        assert ("**met**" in verdict) == (ratio >= 1.15 - 0.005) and f"{ratio:.2f} ±" in verdict


def test_graph_weighting_benchmark_chooses_on_the_validation_half(tmp_path):
    import graph_weighting

    root = synthetic_root(tmp_path / "data")
    doc = tmp_path / "doc.md"
    assert graph_weighting.main(["--data-root", str(root), "--doc", str(doc)]) == 0
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "/" in line.split("|")[1] and "---" not in line]
    assert len(rows) == 1 + len(graph_weighting.VARIANTS)  # the header, then one row per variant
    assert all(len(r.split("|")) == 2 + 1 + 4 * 3 for r in rows)  # 2 datasets × 2 references × 3 fractions
    (verdict,) = [line for line in text.splitlines() if line.startswith("Chosen on validation")]
    assert verdict.count("×") == 4


def test_hashtag_communities_do_not_depend_on_the_hash_seed(tmp_path):
    """A post whose tags fall in two communities equally takes one by a fixed rule, not by set iteration order
    (which follows PYTHONHASHSEED): the reference must be the same in every process."""
    import os
    import subprocess

    script = ("import sys; sys.path.insert(0, 'benchmarks'); from graph import hashtag_communities; "
              "from tagatlas.data import Post; "
              "posts = [Post(id=str(i), text='x', hashtags=tags) for i, tags in enumerate("
              "[['a', 'b'], ['a', 'b'], ['c', 'd'], ['c', 'd'], ['b', 'c'], ['a', 'd'], ['b', 'c'], ['a', 'd']] * 3)]; "
              "print(hashtag_communities(posts).tolist())")
    root = Path(__file__).resolve().parent.parent
    runs = {subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(6)}
    assert len(runs) == 1, runs
