"""The CLI never destroys a user's files and reads only what it should: outputs that are not its own are refused
unless --overwrite (and then only its own files go), an output that is the input is refused, images outside the data
folder or that are no regular files are never opened; and a first run is told what is going on. Files here are
synthetic, named so; the model is the one trained on the real tweet subset."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time

import httpx

from conftest import BIN, cli, write_jsonl
from tagatlas.data import read_posts
from test_api import free_port


def test_train_refuses_an_output_that_is_not_its_own(tmp_path, real_subset, model_dir):
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "thesis.txt").write_text("synthetic: a user's file")
    r = cli("train", "--data", real_subset, "--out", mine, check=False)
    assert r.returncode == 2 and "not a TagAtlas model folder" in r.stderr and (mine / "thesis.txt").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("synthetic")
    r = cli("train", "--data", real_subset, "--out", a_file, check=False)
    assert r.returncode == 2 and "not a folder" in r.stderr and a_file.read_text() == "synthetic"
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    r = cli("train", "--data", real_subset, "--out", model, check=False)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    (model / "my-notes.md").write_text("synthetic")
    r = cli("train", "--data", real_subset, "--out", model, "--overwrite", check=False)
    assert r.returncode == 2 and "my-notes.md" in r.stderr and (model / "my-notes.md").exists()
    r = cli("train", "--data", real_subset, "--out", real_subset.parent, check=False)
    assert r.returncode == 2 and real_subset.exists()


def test_a_checkpoint_folder_with_other_files_is_refused_and_never_emptied(tmp_path, real_subset):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "photo.jpg").write_bytes(b"synthetic")
    r = cli("train", "--data", real_subset, "--out", tmp_path / "m", "--checkpoint-dir", ckpt, "--restart", check=False)
    assert r.returncode == 2 and "photo.jpg" in r.stderr and (ckpt / "photo.jpg").exists()


def test_enrich_refuses_to_destroy_its_input_or_an_unrelated_file(tmp_path, model_dir, real_subset):
    posts = tmp_path / real_subset.name
    shutil.copy(real_subset, posts)
    size = posts.stat().st_size
    r = cli("enrich", "--model", model_dir, "--in", posts, "--out", posts, "--no-cache", check=False)
    assert r.returncode == 2 and "input file itself" in r.stderr and posts.stat().st_size == size
    unrelated = tmp_path / "diary.txt"
    unrelated.write_text("synthetic: dear diary\n")
    r = cli("enrich", "--model", model_dir, "--in", posts, "--out", unrelated, "--no-cache", check=False)
    assert r.returncode == 2 and "--overwrite" in r.stderr and unrelated.read_text() == "synthetic: dear diary\n"
    few = write_jsonl(tmp_path / "few.jsonl", [p.model_dump(mode="json") for p in itertools.islice(read_posts(real_subset), 3)])
    r = cli("enrich", "--model", model_dir, "--in", few, "--out", unrelated, "--no-cache", "--overwrite")
    assert len(unrelated.read_text().splitlines()) == 3 and json.loads(r.stdout.splitlines()[-1])["written"] == 3


def test_enrich_reads_only_regular_image_files_under_the_data_folder(tmp_path, model_dir):
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"synthetic")
    os.mkfifo(data / "pipe.png")
    posts = write_jsonl(data / "posts.jsonl", [
        {"id": "synthetic-1", "text": "synthetic: coffee in the park", "image": "../secret.png"},
        {"id": "synthetic-2", "text": "synthetic: coffee in the park", "image": str(outside)},
        {"id": "synthetic-3", "text": "synthetic: coffee in the park", "image": "pipe.png"}])
    started = time.monotonic()
    r = cli("enrich", "--model", model_dir, "--in", posts, "--out", tmp_path / "out.jsonl", "--no-cache")
    report = json.loads(r.stdout.splitlines()[-1])
    assert report["written"] == 3 and report["images_refused"] == 3 and time.monotonic() - started < 300
    assert any("outside" in reason for reason in report["image_reasons"]) and any("regular file" in reason for reason in report["image_reasons"])
    allowed = cli("enrich", "--model", model_dir, "--in", posts, "--out", tmp_path / "out2.jsonl", "--no-cache", "--image-root", tmp_path)
    assert json.loads(allowed.stdout.splitlines()[-1])["images_refused"] == 1  # the FIFO still: not a regular file


def test_suggest_says_when_there_is_nothing_to_go_on(model_dir, tmp_path):
    r = cli("suggest", "--model", model_dir, "--text", "#snow   ", check=False)
    assert r.returncode == 2 and "nothing to go on" in r.stderr
    readme = tmp_path / "README.md"
    readme.write_text("# synthetic: not an image\n")
    r = cli("suggest", "--model", model_dir, "--image", readme, check=False)
    assert r.returncode == 2 and "not a readable image" in r.stderr


def test_serve_says_where_it_listens_and_help_is_not_cut(model_dir, tmp_path):
    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--model", str(folder), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TAGATLAS_API_KEYS": ""})
    try:
        line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}" in line and "writes disabled" in line and str(folder) in line
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code == 200  # listening when it says so
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    helped = cli("train", "--help").stdout.splitlines()
    assert max(len(line) for line in helped) >= 100  # piped, not cut at 80 columns


def test_the_demo_runs_a_representative_dataset_unless_told_otherwise(tmp_path):
    from tagatlas.cli import DEMO_DATASET, demo_files

    for name, lines in ((DEMO_DATASET, 3), ("synthetic-big", 50), ("synthetic-small", 1)):
        (tmp_path / name).mkdir()
        write_jsonl(tmp_path / name / "posts.jsonl", [{"id": f"{name}-{i}", "text": "synthetic"} for i in range(lines)])
    assert [p.parent.name for p in demo_files(tmp_path, None, False)] == [DEMO_DATASET]
    assert len(demo_files(tmp_path, None, True)) == 3
    assert [p.parent.name for p in demo_files(tmp_path, ["synthetic-big"], False)] == ["synthetic-big"]
    shutil.rmtree(tmp_path / DEMO_DATASET)
    assert [p.parent.name for p in demo_files(tmp_path, None, False)] == ["synthetic-small"]
