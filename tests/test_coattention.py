"""Parallel co-attention (MaCon): ids, shapes, masking of missing images and padding, learning, round trips.

Region maps and captions in the unit tests are synthetic (generated here): the label is hidden in one
region of the map, so only attention over regions can read it. The model-level test uses real photos
shipped by scikit-learn / scikit-image with synthetic captions and places (named so).
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tagatlas.recommender.coattention import WORD_BUCKETS, ParallelCoAttention, RegionMaps, word_ids
from tagatlas.recommender.head import HeadConfig, HeadTrainer

CHANNELS, REGIONS, CLASSES = 12, 9, 3


def synthetic(n: int, seed: int, image_share: float = 1.0):
    """Captions of neutral words; a class pattern in one random region of each image (others noise)."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).normal(size=(CLASSES, CHANNELS)) * 2
    label = rng.integers(0, CLASSES, n)
    maps = rng.normal(size=(n, REGIONS, CHANNELS)) * 0.5
    maps[np.arange(n), rng.integers(0, REGIONS, n)] += patterns[label]
    rows = np.flatnonzero(rng.random(n) < image_share)
    words = ["the", "a", "photo", "today", "look", "nice", "day"]
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 6)))) for _ in range(n)]
    return texts, RegionMaps(rows.astype(np.int64), maps[rows].astype(np.float16)), label


def fit(texts, regions, label, coattn_dim=16, epochs=25, seed=0):
    n = len(texts)
    cfg = HeadConfig(bag_dim=4, hidden=32, dropout=0.0, lr=5e-3, coattn_dim=coattn_dim, coattn_words=8,
                     coattn_region_dim=CHANNELS, seed=seed)
    return HeadTrainer(cfg).fit(sp.csr_matrix((n, 8), dtype=np.float32), np.zeros((n, 2), np.float32), label, [[] for _ in range(n)],
                                CLASSES, 0, epochs=epochs, progress=False, texts=texts, regions=regions)


def predict(head, texts, regions):
    n = len(texts)
    return head.predict(sp.csr_matrix((n, 8), dtype=np.float32), np.zeros((n, 2), np.float32), texts=texts, regions=regions)


def test_word_ids_are_stable_hashed_and_padded():
    ids = word_ids(["Tokyo tower at night", "", "tokyo"], max_words=3)
    assert ids.shape == (3, 3) and ids[0, 0] == ids[2, 0]  # lower-cased, the same id in every run (CRC32)
    assert (ids[0] > 0).all() and (ids[1] == 0).all() and (ids[2, 1:] == 0).all() and ids.max() < WORD_BUCKETS
    assert ids[0, 0] == 1 + __import__("zlib").crc32(b"tokyo") % (WORD_BUCKETS - 1)


def test_region_maps_take_and_dense():
    maps = RegionMaps(np.array([1, 4]), np.arange(2 * 2 * 3, dtype=np.float16).reshape(2, 2, 3))
    sub = maps.take(np.array([4, 0, 1]))
    assert sub.rows.tolist() == [0, 2] and np.array_equal(sub.maps[0], maps.maps[1])
    dense, has = sub.dense(3)
    assert dense.shape == (3, 2, 3) and has.tolist() == [True, False, True] and not dense[1].any()


def test_shapes_and_masking_of_missing_images_and_padding():
    torch.manual_seed(0)
    module = ParallelCoAttention(region_dim=CHANNELS, dim=8).eval()
    words = torch.from_numpy(word_ids(["a photo", "a much longer caption than the first one", ""], 10))
    regions = torch.randn(3, REGIONS, CHANNELS)
    has = torch.tensor([True, False, True])
    with torch.no_grad():
        out = module(words, regions, has)
        alone = module(words[:1], regions[:1], has[:1])
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    assert not out[1, :8].any()  # no image: the region half is zeros, whatever the map holds
    with torch.no_grad():
        blank = module(words, torch.zeros_like(regions), has)
    assert torch.allclose(blank[1], out[1], atol=1e-6)  # ... and its words are not attended by a map it does not have
    assert out[2, 8:].abs().sum() == 0  # no words: the word half is zeros
    assert torch.allclose(alone[0], out[0], atol=1e-5)  # padding words of longer captions are masked


def test_co_attention_learns_a_label_hidden_in_one_region():
    texts, regions, label = synthetic(900, seed=1)
    t_texts, t_regions, t_label = synthetic(300, seed=2)
    acc = (predict(fit(texts, regions, label), t_texts, t_regions).place_probs.argmax(1) == t_label).mean()
    without = (predict(fit(texts, None, label, coattn_dim=0, epochs=3), t_texts, None).place_probs.argmax(1) == t_label).mean()
    assert acc > 0.85 and without < 0.5  # chance: 1/3


def test_posts_without_images_round_trip_and_determinism():
    texts, regions, label = synthetic(200, seed=3, image_share=0.5)
    a, b = fit(texts, regions, label, epochs=2, seed=5), fit(texts, regions, label, epochs=2, seed=5)
    out = predict(a, texts[:30], regions.take(np.arange(30)))
    assert np.array_equal(out.z, predict(b, texts[:30], regions.take(np.arange(30))).z)
    back = HeadTrainer.from_state_dict(a.state_dict())
    assert back.reads_regions and np.allclose(predict(back, texts[:30], regions.take(np.arange(30))).place_probs, out.place_probs, atol=1e-6)
    text_only = predict(a, texts[:5], None)  # no maps at all: every post is text-only
    assert np.isfinite(text_only.place_probs).all()
    with pytest.raises(ValueError, match="channels"):
        predict(a, texts[:2], RegionMaps(np.array([0]), np.zeros((1, REGIONS, CHANNELS + 1), np.float16)))


def test_a_model_with_co_attention_trains_on_real_photos_and_round_trips(tmp_path, package_photos):
    """Real package photos, synthetic captions, places and users (named so): the whole fit/predict/save path."""
    from tagatlas.data import Post
    from tagatlas.recommender import ModelConfig, TagAtlas

    paths = package_photos
    cities = [(35.68, 139.69), (34.69, 135.50), (43.06, 141.35), (33.59, 130.40)]
    rng = np.random.default_rng(0)
    posts = []
    for i in range(48):
        c = i % 4
        posts.append(Post(id=f"s{i}", user_id=f"u{i}", text=f"synthetic caption {i} #tag{c}",
                          image=str(paths[c]) if i % 3 else None, lat=cities[c][0] + rng.normal() * 0.01,
                          lon=cities[c][1] + rng.normal() * 0.01, hashtags=[f"tag{c}"]))
    config = ModelConfig(head=HeadConfig(coattn_dim=8, max_epochs=2), val_fraction=0.25, refit=False)
    model = TagAtlas(config).fit(posts, progress=False)
    assert model.config.head.coattn_region_dim == 1280 and model.reader.head_.reads_regions
    query = [Post(id="q1", text="synthetic caption", image=str(paths[0])), Post(id="q2", text="synthetic caption")]
    first = [p.model_dump() for p in model.predict(query)]
    model.save(tmp_path / "m")
    assert [p.model_dump() for p in TagAtlas.load(tmp_path / "m").predict(query)] == first
    added = model.ingest.predict_and_add([Post(id="new", text="synthetic caption", image=str(paths[1]))])
    assert added[0].post_id == "new" and "new" in {s.id for _, stored, _ in model.posts_.store.iter_all() for s in stored}
