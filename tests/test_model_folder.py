"""Model folders are safe to open and validated: no pickle runs, bad settings and unknown parts are refused by name."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

from conftest import cli
from tagatlas.data import Post
from tagatlas.recommender import ConfigError, Geolocator, HashtagRecommender, ModelConfig, ModelFolderError, TagAtlas


def _copy(model_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(model_dir, out)
    return out


def _edit_manifest(folder, change):
    state = json.loads((folder / "model.json").read_text())
    change(state)
    (folder / "model.json").write_text(json.dumps(state))


def test_manifest_names_every_part_and_round_trips(model_dir):
    state = json.loads((model_dir / "model.json").read_text())
    assert {"weights", "index", "store"} <= set(state["parts"])
    assert state["parts"]["weights"] == {"path": "weights.safetensors", "version": 1}
    assert not (model_dir / "weights.pt").exists()
    assert state["parts"]["geolocator"] == {"path": "geolocator", "version": 1}
    assert state["parts"]["hashtags"] == {"path": "hashtags", "version": 1}
    assert not {"places", "tags", "labeler"} & set(state)  # each part's state lives in its own subfolder


def test_each_part_loads_alone_from_its_subfolder(model_dir):
    model = TagAtlas.load(model_dir)
    geo = Geolocator.load(model_dir / "geolocator")
    assert geo.places_ == model.geolocator_.places_ and (geo.place_coords_ == model.geolocator_.place_coords_).all()
    lat, lon = geo.place_coords_[:3, 0], geo.place_coords_[:3, 1]
    assert geo.class_of([None] * 3, lat, lon).tolist() == [0, 1, 2]  # a class's own medoid folds onto it
    tags = HashtagRecommender.load(model_dir / "hashtags")
    assert tags.tags_ == model.hashtags_.tags_ and tags.ids_of(["not-a-known-tag", tags.tags_[0]]) == [0]
    assert (tags.matcher_ is None) == (model.hashtags_.matcher_ is None)


def test_a_damaged_part_is_named(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    (folder / "geolocator" / "places.json").write_text('{"places": ["a"]')
    with pytest.raises(ModelFolderError, match="unreadable part 'geolocator'"):
        TagAtlas.load(folder)


def test_unknown_part_in_the_manifest_is_refused_by_name(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    _edit_manifest(folder, lambda s: s["parts"].update({"hologram": {"path": "hologram", "version": 1}}))
    with pytest.raises(ModelFolderError, match="unknown part.*'hologram'"):
        TagAtlas.load(folder)
    proc = cli("suggest", "--model", folder, "--text", "hi", check=False)
    assert proc.returncode == 2 and "hologram" in proc.stderr and "Traceback" not in proc.stderr


def test_a_part_pointing_outside_the_folder_or_newer_is_refused(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    _edit_manifest(folder, lambda s: s["parts"]["store"].update({"path": "../../etc/passwd"}))
    with pytest.raises(ModelFolderError, match="outside the folder"):
        TagAtlas.load(folder)
    _edit_manifest(folder, lambda s: s["parts"].update({"store": {"path": "store.sqlite", "version": 99}}))
    with pytest.raises(ModelFolderError, match="version 99"):
        TagAtlas.load(folder)


def test_older_format_is_refused_with_how_to_retrain(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    _edit_manifest(folder, lambda s: s.update({"format_version": 1}))
    with pytest.raises(ModelFolderError, match=r"format 1 .*pickled.*retrain it with `tagatlas train"):
        TagAtlas.load(folder)
    _edit_manifest(folder, lambda s: s.update({"format_version": 2}))
    with pytest.raises(ModelFolderError, match=r"format 2 .*own subfolder.*retrain it with `tagatlas train"):
        TagAtlas.load(folder)


class _Boom:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_tampered_weights_file_cannot_execute_code(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    marker = tmp_path / "pwned"
    # A pickle with a payload in place of the weights (what an attacker would send as weights.pt) ...
    torch.save({"head": _Boom(marker)}, folder / "weights.safetensors")
    with pytest.raises(ModelFolderError, match="weights"):
        TagAtlas.load(folder)
    assert not marker.exists()
    # ... and a well-formed safetensors file that is not TagAtlas's.
    save_file({"x": torch.zeros(2)}, str(folder / "weights.safetensors"), metadata={"format": "other"})
    with pytest.raises(ModelFolderError, match="not a TagAtlas weights file"):
        TagAtlas.load(folder)
    assert not marker.exists()


def test_weights_round_trip_exactly(model_dir, tmp_path):
    model = TagAtlas.load(model_dir)
    model.save(tmp_path / "again")
    again = TagAtlas.load(tmp_path / "again")
    for name, tensor in model.reader.head_.model_.state_dict().items():
        assert torch.equal(tensor, again.reader.head_.model_.state_dict()[name]), name
    assert (model.reader.lexical_.tfidf_.idf_ == again.reader.lexical_.tfidf_.idf_).all()
    posts = [Post(id="w", text="sunset over the bay bridge")]
    assert [p.model_dump() for p in model.predict(posts)] == [p.model_dump() for p in again.predict(posts)]


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update({"k_maxx": 5}), "unknown setting.*'k_maxx'"),
    (lambda c: c["head"].update({"dropuot": 0.1}), r"config.head: unknown setting.*'dropuot'"),
    (lambda c: c.update({"k_max": 0}), r"config.k_max: 0 is out of range"),
    (lambda c: c.update({"k_max": "50"}), r"config.k_max: expected int"),
    (lambda c: c["head"].update({"lr": float("nan")}), r"config.head.lr: expected float"),
    (lambda c: c.update({"index_space": "hidden"}), r"config.index_space: 'hidden' is not one of encoder, head"),
    (lambda c: c.update({"refit": 1}), r"config.refit: expected bool"),
])
def test_config_refuses_bad_settings_by_name(change, message):
    data = ModelConfig().to_dict()
    change(data)
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(data)


def test_bad_config_in_a_model_folder_is_one_line(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    _edit_manifest(folder, lambda s: s["config"].update({"surprise": True}))
    with pytest.raises(ModelFolderError, match="model.json: config: unknown setting.*'surprise'"):
        TagAtlas.load(folder)


def test_missing_entries_in_model_json_are_one_line(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    _edit_manifest(folder, lambda s: s.pop("fusion"))
    with pytest.raises(ModelFolderError, match="missing or malformed entry"):
        TagAtlas.load(folder)


def test_fit_validates_without_changing_the_callers_config():
    config = ModelConfig()
    config.k_max = -1
    with pytest.raises(ConfigError, match="k_max"):
        TagAtlas(config).fit([Post(id=str(i), text="x", lat=0.0, lon=float(i)) for i in range(20)], progress=False)
    config = ModelConfig()
    before = config.to_dict()
    assert ModelConfig.from_dict(before).validated() == ModelConfig.from_dict(before)
    assert config.to_dict() == before


@pytest.mark.parametrize("damage", ["truncated store", "garbage store", "garbage index"])
def test_a_damaged_store_or_index_is_one_line_naming_the_file(model_dir, tmp_path, damage):
    folder = _copy(model_dir, tmp_path)
    name = "index.faiss" if "index" in damage else "store.sqlite"
    target = folder / name
    target.write_bytes(target.read_bytes()[:5000] if damage.startswith("truncated") else b"synthetic garbage " * 300)
    for command in (("suggest", "--model", folder, "--text", "snow day"), ("serve", "--model", folder, "--port", "1")):
        r = cli(*command, check=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-500:]
        assert name in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into a read-only folder")
def test_serving_a_read_only_folder_is_one_line(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    for path in [folder / "store.sqlite", folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        r = cli("serve", "--model", folder, "--port", "1", check=False)
        assert r.returncode == 2 and "read-only" in r.stderr and "Traceback" not in r.stderr
    finally:
        folder.chmod(0o755)
