"""Photo metadata: EXIF GPS decides the place and is never returned exactly unless the caller opts in.

The photo is scikit-learn's shipped sample image (a real photo); the GPS positions and capture times
written into its EXIF here are synthetic.
"""

import json
from datetime import datetime

import numpy as np
import pytest
from conftest import cli, write_jsonl

from tagatlas.data import Post, distance_km, read_photo_metadata
from tagatlas.data.photo import with_photo_metadata
from tagatlas.recommender import TagAtlas


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    path = tmp_path_factory.mktemp("photo") / "china.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(path)
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    return TagAtlas.load(model_dir)


def test_reads_gps_and_capture_time_in_every_hemisphere(photo, tmp_path):
    for lat, lon in [(-33.8568, 151.2153), (40.7128, -74.0060), (64.1466, -21.9426)]:
        tagged = with_photo_metadata(photo, lat, lon, datetime(2015, 5, 1, 12, 30), out=tmp_path / "tagged.jpg")
        meta = read_photo_metadata(tagged)
        assert meta.has_gps and meta.lat == pytest.approx(lat, abs=1e-4) and meta.lon == pytest.approx(lon, abs=1e-4)
        assert meta.taken_at == datetime(2015, 5, 1, 12, 30)
        assert read_photo_metadata(tagged.read_bytes()) == meta


def test_no_or_broken_metadata_is_empty_not_an_error(photo, tmp_path):
    assert not read_photo_metadata(photo).has_gps and read_photo_metadata(photo).taken_at is None
    assert not read_photo_metadata(b"not an image").has_gps
    assert not read_photo_metadata(tmp_path / "missing.jpg").has_gps
    assert not read_photo_metadata("https://example.org/a.jpg").has_gps  # URLs are never fetched here
    no_fix = with_photo_metadata(photo, 0.0, 0.0, out=tmp_path / "nofix.jpg")  # what a camera without a fix writes
    assert not read_photo_metadata(no_fix).has_gps


def test_photo_gps_decides_the_place_and_is_coarsened_unless_revealed(model, photo, tmp_path):
    # A position 3 km from one of the model's places, and a caption that says nothing about it.
    target = int(np.argmax([len(n) for n in model.geolocator_.place_names_]))  # any place; the longest name, to be deterministic
    lat, lon = model.geolocator_.place_coords_[target] + np.array([0.02, 0.02])
    tagged = with_photo_metadata(photo, float(lat), float(lon), out=tmp_path / "gps.jpg")
    post = Post(id="gps", text="lovely afternoon", image=str(tagged))
    plain = Post(id="plain", text="lovely afternoon", image=str(photo))
    gps_pred, plain_pred = model.predict([post, plain])
    assert gps_pred.location_source == "photo_gps" and plain_pred.location_source != "photo_gps"
    assert gps_pred.places[0].place == model.geolocator_.places_[target] and gps_pred.places[0].prob == 1.0
    # Coarsened: the place's coordinates, a city-level radius that still holds the true position.
    assert (gps_pred.lat, gps_pred.lon) == tuple(model.geolocator_.place_coords_[target])
    assert distance_km(gps_pred.lat, gps_pred.lon, lat, lon)[0] <= gps_pred.radius_km
    dumped = gps_pred.model_dump_json()
    assert f"{lat:.4f}" not in dumped and f"{lon:.4f}" not in dumped
    # Revealed on request: the exact position.
    gps_pred.reveal_photo_gps()
    assert gps_pred.lat == pytest.approx(lat, abs=1e-4) and gps_pred.lon == pytest.approx(lon, abs=1e-4) and gps_pred.radius_km < 1
    assert plain_pred.reveal_photo_gps().lat == model.predict([plain])[0].lat  # nothing to reveal: unchanged


def test_enrich_writes_exact_photo_gps_only_with_the_flag(model_dir, photo, tmp_path):
    tagged = with_photo_metadata(photo, -33.8568, 151.2153, out=tmp_path / "sydney.jpg")
    source = write_jsonl(tmp_path / "posts.jsonl", [{"id": "p1", "text": "harbour walk", "image": str(tagged)}])
    default, exact = tmp_path / "default.jsonl", tmp_path / "exact.jsonl"
    cli("enrich", "--model", model_dir, "--in", source, "--out", default, "--no-cache")
    cli("enrich", "--model", model_dir, "--in", source, "--out", exact, "--no-cache", "--photo-gps")
    d, e = json.loads(default.read_text()), json.loads(exact.read_text())
    assert d["pred_location_source"] == e["pred_location_source"] == "photo_gps"
    assert (e["pred_lat"], e["pred_lon"]) == pytest.approx((-33.8568, 151.2153), abs=1e-4)
    assert (round(d["pred_lat"], 4), round(d["pred_lon"], 4)) != (-33.8568, 151.2153)
    assert distance_km(d["pred_lat"], d["pred_lon"], -33.8568, 151.2153)[0] <= d["pred_radius_km"]
