"""The image-posts benchmark runs end to end and reports image rows only for datasets that have photos.

The data root here is synthetic (named so): real photos shipped by scikit-learn / scikit-image, with
generated captions, users, places and hashtags. It exercises the script, not the models' accuracy.
"""

import json
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
                                "fused (all items),-coattention (1)", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "### synthetic_images" in text and "### synthetic_text" not in text
    rows = [line for line in text.splitlines() if line.startswith("| fused") or line.startswith("| -coattention")]
    assert len(rows) == 2 and all(len(r.split("|")) == 10 for r in rows)
    assert "synthetic_text/posts.jsonl` (0 posts with a photo)" in text
