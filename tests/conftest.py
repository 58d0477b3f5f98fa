"""Shared fixtures. Real data comes from ../shared/data; anything made up here is named synthetic."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Commands that cache embeddings by default (enrich) write them under the test run's own folder, not ~/.cache.
os.environ.setdefault("TAGATLAS_CACHE_DIR", tempfile.mkdtemp(prefix="tagatlas-test-cache-"))

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TAGATLAS_SHARED", REPO.parent / "shared"))
TWEETS = SHARED / "data" / "tweets2015" / "posts.jsonl.gz"
USERS = SHARED / "data" / "users2015" / "posts.jsonl.gz"


def real_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data {path} not present")
    return path


@pytest.fixture(scope="session")
def tweets_path() -> Path:
    return real_file(TWEETS)


@pytest.fixture(scope="session")
def real_subset(tmp_path_factory, tweets_path) -> Path:
    """The first 2,500 real tweets plus a few synthetic multi-post users (named so) to exercise history."""
    out = tmp_path_factory.mktemp("data") / "subset.jsonl.gz"
    with gzip.open(tweets_path, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= 2500:
                break
            dst.write(line)
    return out


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for r in records:
            handle.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


BIN = Path(sys.executable).parent / "tagatlas"


def cli(*args, check=True):
    """Run the installed `tagatlas` console script."""
    proc = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"tagatlas {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, real_subset):
    """A model trained once per test session by the CLI on the real subset. Tests copy it before writing."""
    out = tmp_path_factory.mktemp("model") / "m"
    proc = cli("train", "--data", real_subset, "--out", out)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["places"] > 10 and info["fit_posts"] > 1500
    return out


def write_package_photos(folder: Path) -> list[Path]:
    """Four real photographs that packages ship (scikit-image, scikit-learn), written as PNG files into `folder`."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    from sklearn.datasets import load_sample_image

    arrays = [skimage_data.coffee(), skimage_data.chelsea(), load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    paths = []
    for i, array in enumerate(arrays):
        paths.append(folder / f"photo{i}.png")
        Image.fromarray(array).save(paths[-1])
    return paths


@pytest.fixture
def package_photos(tmp_path) -> list[Path]:
    """The package photos in a test's own folder (`write_package_photos`)."""
    return write_package_photos(tmp_path)
