"""Image retrieval evidence: the indexed photos most like a post's photo vote for their places (with a geodesic
consensus) and their tags. Photos are real package photographs; places, users and tags are synthetic, named so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import write_package_photos
from tagatlas.data import Post
from tagatlas.index import ImageGallery, PostStore
from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas
from tagatlas.recommender.evidence.image_neighbours import consensus_weights

CITIES = [(35.68, 139.69), (34.69, 135.50), (43.06, 141.35), (33.59, 130.40)]  # Tokyo, Osaka, Sapporo, Fukuoka


def test_neighbours_that_agree_on_a_region_outvote_a_closer_stray():
    """Synthetic neighbours: the most similar photo lies in Tokyo, three a little less similar ones around Paris."""
    sims = np.array([0.80, 0.78, 0.77, 0.77])
    lat = np.array([35.68, 48.85, 48.90, 48.80])
    lon = np.array([139.69, 2.35, 2.30, 2.40])
    w = consensus_weights(sims, lat, lon, temperature=0.05, radius_km=161)
    assert w[1:].sum() > 3 * w[0] and np.isclose(w.sum(), 1)
    alone = consensus_weights(sims, lat, lon, temperature=0.05, radius_km=1)  # nobody agrees: similarity alone
    assert alone.argmax() == 0
    unlocated = consensus_weights(sims, np.full(4, np.nan), np.full(4, np.nan), 0.05, 161)
    assert unlocated.argmax() == 0 and np.isclose(unlocated.sum(), 1)


def test_the_gallery_follows_the_store_and_skips_posts_without_a_photo(tmp_path):
    rng = np.random.default_rng(0)
    store = PostStore(tmp_path / "store.sqlite", dim=4)
    features = rng.normal(size=(3, 16)).astype(np.float32)
    features[1] = 0  # the second post has no photo
    posts = [Post(id=f"synthetic-{i}", text="synthetic") for i in range(3)]
    rowids = store.add(posts, rng.normal(size=(3, 4)), [None] * 3, "fit", features)
    gallery = ImageGallery().load(store)
    assert len(gallery) == 2
    sims, found = gallery.search(features[[2, 1]], 2)
    assert found[0, 0] == rowids[2] and sims[0, 0] == pytest.approx(1.0, abs=1e-2)  # float16 storage
    assert (found[1] == -1).all()  # a query without a photo finds nothing
    store.delete(["synthetic-2"])
    assert rowids[2] not in ImageGallery().load(store).search(features[[2]], 2)[1]
    store.close()
    reopened = PostStore.open_copy(tmp_path / "store.sqlite")  # what a saved model folder holds
    assert len(ImageGallery().load(reopened)) == 1


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory):
    """Synthetic posts with real photos: photo k is always taken in city k, users post two photos each."""
    folder = tmp_path_factory.mktemp("photos")
    paths = write_package_photos(folder)
    rng = np.random.default_rng(0)
    posts = [Post(id=f"s{i}", user_id=f"synthetic-u{i // 2}", text="synthetic: out and about", image=str(paths[i % 4]),
                  hashtags=[f"synthtag{i % 4}"], lat=CITIES[i % 4][0] + rng.normal() * 0.01, lon=CITIES[i % 4][1] + rng.normal() * 0.01,
                  created_at=f"2020-01-{1 + i % 2:02d}T00:00:00") for i in range(80)]
    config = ModelConfig(evidence=["image_neighbours"], head=HeadConfig(max_epochs=2), val_fraction=0.25, refit=False, cluster_k=0)
    model = TagAtlas(config).fit(posts, progress=False)
    return model, paths, folder


def test_an_image_neighbour_moves_the_answer_and_suggests_its_tags(photo_model):
    model, paths, _ = photo_model
    assert model.reads_image_features and len(model.posts_.gallery()) > 40
    geo = model.geolocator_
    tuned = model.fusion_
    model.fusion_ = weighted = replace(tuned, source_place={**tuned.source_place, "image_neighbours": 1.0})  # gathered whatever was tuned
    for k in (0, 2):
        query = Post(id=f"synthetic-q{k}", text="synthetic: out and about", image=str(paths[k]))
        ev = model.evidence([query])
        row = ev.sources["image_neighbours"]
        place = geo.places_[int(row.place[0].argmax())]
        lat, lon = geo.place_coords_[geo.places_.index(place)]
        assert abs(lat - CITIES[k][0]) < 1 and abs(lon - CITIES[k][1]) < 1
        assert ev.tags[row.tag_ids[0][0]] == f"synthtag{k}"  # the look-alikes' tag comes first
        assert model.predictions_from([query], ev, weighted)[0].places[0].place == place
        # Without its photo the post gets nothing from this source.
        assert "image_neighbours" not in model.evidence([query.model_copy(update={"image": None})]).sources
    model.fusion_ = tuned


def test_photos_added_online_are_searchable_at_once_and_survive_save_and_load(photo_model, tmp_path):
    model, paths, folder = photo_model
    before = len(model.posts_.gallery())
    model.save(tmp_path / "m")
    loaded = TagAtlas.load(tmp_path / "m")
    assert len(loaded.posts_.gallery()) == before
    loaded.add([Post(id="synthetic-new", text="synthetic", image=str(paths[3]), lat=10.0, lon=10.0)])
    assert len(loaded.posts_.gallery()) == before + 1
    loaded.delete(["synthetic-new"])
    assert len(loaded.posts_.gallery()) == before
