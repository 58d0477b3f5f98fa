"""Cross-modal imputation: learned maps between views, their confidence, filling, persistence.

All vectors here are synthetic (generated in the tests): one view is a noisy linear image of another,
a third is unrelated noise, so the confidence each map earns is known in advance.
"""

import numpy as np
import pytest

from tagatlas.encoders.impute import CrossModalImputer
from tagatlas.graph import GraphClusterer, Modality


def synthetic_views(n=400, seed=0):
    relation = np.random.default_rng(42).normal(size=(12, 10))  # the same text → image relation in every sample
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 12)).astype(np.float32)
    image = (text @ relation + 0.1 * rng.normal(size=(n, 10))).astype(np.float32)
    noise = rng.normal(size=(n, 6)).astype(np.float32)
    return text, image, noise


def test_maps_learn_the_relation_and_their_confidence_says_how_well():
    text, image, noise = synthetic_views()
    every = np.ones(len(text), bool)
    imp = CrossModalImputer().fit({"text": (text, every), "image": (image, every), "noise": (noise, every)})
    assert imp.confidence_[("image", "text")] > 0.9
    assert imp.confidence_[("noise", "text")] < 0.2  # nothing to learn: the held-out cosine says so
    assert set(imp.maps_) == {(t, s) for t in ("text", "image", "noise") for s in ("text", "image", "noise") if t != s}


def test_transform_fills_only_missing_views_and_weights_guesses_by_confidence():
    text, image, noise = synthetic_views()
    every = np.ones(len(text), bool)
    imp = CrossModalImputer().fit({"text": (text, every), "image": (image, every)})
    t2, i2, _ = synthetic_views(n=5, seed=1)
    has_image = np.array([True, False, False, True, False])
    has_text = np.array([True, True, False, False, False])
    out = imp.transform({"text": (t2, has_text), "image": (i2, has_image)})
    img, img_conf = out["image"]
    assert np.array_equal(img[0], i2[0]) and img_conf[0] == 1.0  # present: untouched
    unit = i2[1] / np.linalg.norm(i2[1])
    assert float(img[1] @ unit) > 0.9 and 0.9 < img_conf[1] < 1.0  # imputed from the text, close to the truth
    assert not img[2].any() and img_conf[2] == 0.0 and img_conf[4] == 0.0  # nothing to impute from
    txt, txt_conf = out["text"]
    assert txt_conf[3] > 0 and np.isclose(np.linalg.norm(txt[3]), 1.0)  # image-only post gets a text view


def test_too_few_pairs_give_no_map_and_mismatched_views_are_refused():
    text, image, _ = synthetic_views(n=100)
    few = np.zeros(100, bool); few[:20] = True
    imp = CrossModalImputer(min_pairs=50).fit({"text": (text, np.ones(100, bool)), "image": (image, few)})
    assert not imp.can_impute("image") and not imp.maps_
    with pytest.raises(ValueError, match="number of posts"):
        CrossModalImputer().fit({"text": (text, np.ones(100, bool)), "image": (image[:50], few[:50])})


def test_save_load_round_trip(tmp_path):
    text, image, _ = synthetic_views()
    every = np.ones(len(text), bool)
    imp = CrossModalImputer(seed=3).fit({"text": (text, every), "image": (image, every)})
    imp.save(tmp_path / "imp")
    back = CrossModalImputer.load(tmp_path / "imp")
    views = {"text": (text[:7], every[:7]), "image": (image[:7], np.zeros(7, bool))}
    assert back.confidence_ == imp.confidence_
    assert np.array_equal(back.transform(views)["image"][0], imp.transform(views)["image"][0])


def test_early_fusion_graph_scales_imputed_blocks_and_keeps_its_imputer(tmp_path):
    text, image, noise = synthetic_views(n=300)
    has_image = np.arange(300) % 3 != 0
    g = GraphClusterer(k=5, fusion="early").fit({"text": Modality(text), "image": Modality(image, has_image)})
    block = g._concatenated({"text": g._vectors["text"], "image": g._vectors["image"]}, g._masks)[:, 12:]
    missing = ~has_image
    norms = np.linalg.norm(block[missing], axis=1)
    assert np.allclose(norms, g.imputer_.confidence_[("image", "text")], atol=1e-4)  # unit guess × confidence
    g.save(tmp_path / "g")
    back = GraphClusterer.load(tmp_path / "g")
    new = {"text": Modality(text[:10]), "image": Modality(np.zeros((10, 10), np.float32), np.zeros(10, bool))}
    assert np.array_equal(back.assign(new), g.assign(new))
    late = GraphClusterer(k=5, fusion="late").fit({"text": Modality(text), "image": Modality(image, has_image)})
    late.save(tmp_path / "g")  # the early graph's imputer must not be read back as this one's
    assert GraphClusterer.load(tmp_path / "g").imputer_ is None


def test_a_model_learns_imputation_from_posts_with_both_and_fills_single_modality_posts(model_dir, tmp_path):
    """Real photos shipped by scikit-learn/scikit-image with synthetic captions (named so): the trained
    tweets model learns its text ↔ image maps from them, then fills the missing side of one-sided posts."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from tagatlas.data import Post
    from tagatlas.recommender import TagAtlas

    arrays = {"coffee": skimage_data.coffee(), "cat": skimage_data.chelsea(), "rocket": skimage_data.rocket(),
              "china": load_sample_image("china.jpg"), "flower": load_sample_image("flower.jpg"),
              "astronaut": skimage_data.astronaut()}
    paths = {}
    for name, array in arrays.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    captions = ["morning {} by the window", "look at this {}", "a {} today", "my {} again", "{} time"]
    pairs = [Post(id=f"{n}-{i}", text=c.format(n), image=str(p)) for n, p in paths.items() for i, c in enumerate(captions)]
    model = TagAtlas.load(model_dir)
    model.config.impute_min_pairs = len(pairs)
    training = pairs + [Post(id="text-only", text="just words")]
    assert model.reader.wants_imputer(training) and not model.reader.wants_imputer(pairs[1:])
    encoded = model.encoder.encode_posts(training, parts=True)  # one encoding pass gives both sides of every post
    assert np.allclose(encoded.image_part[-1], 0) and np.allclose(np.linalg.norm(encoded.image_part[:-1], axis=1), 1, atol=1e-5)
    model.reader.fit_imputer(encoded, np.arange(len(training)))
    assert model.reader.imputer_ is not None and set(model.reader.imputer_.maps_) == {("text", "image"), ("image", "text")}
    posts = [Post(id="t", text="coffee at the window"), Post(id="i", image=str(paths["cat"])),
             Post(id="b", text="coffee at the window", image=str(paths["coffee"]))]
    pv = model.encoder.encode_posts(posts)
    filled = model.reader.impute(pv)
    assert np.allclose(np.linalg.norm(filled, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(filled[2], pv.vectors[2])  # both present: nothing to impute
    moved = 1 - (filled[:2] * pv.vectors[:2]).sum(axis=1)
    assert (moved > 1e-4).all()  # the missing side was added
    model.save(tmp_path / "m")
    back = TagAtlas.load(tmp_path / "m")
    assert back.reader.imputer_ is not None and np.allclose(back.reader.impute(pv), filled, atol=1e-6)
    model.config.impute_min_pairs = len(pairs) + 1  # too few pairs: no imputer, vectors as encoded
    model.reader.fit_imputer(encoded, np.arange(len(training)))
    assert model.reader.imputer_ is None and np.array_equal(model.reader.impute(pv), pv.vectors)
