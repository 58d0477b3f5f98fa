"""Noisy-image gate on real photographs shipped by packages (scikit-image, scikit-learn): the astronaut
portrait is down-weighted, scenes are not; the gate can be fitted, saved as config and reported."""

import numpy as np
import pytest
from PIL import Image

from tagatlas.data import Post
from tagatlas.encoders import EncoderConfig, GateConfig, NoisyImageGate, create_encoder
from tagatlas.encoders.gate import class_entropy, face_fraction

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos():
    from sklearn.datasets import load_sample_image

    return {"astronaut": Image.fromarray(skimage_data.astronaut()), "coffee": Image.fromarray(skimage_data.coffee()),
            "cat": Image.fromarray(skimage_data.chelsea()), "china": Image.fromarray(load_sample_image("china.jpg")),
            "flower": Image.fromarray(load_sample_image("flower.jpg"))}


@pytest.fixture(scope="module")
def encoder():
    return create_encoder(EncoderConfig())


def test_faces_are_found_in_the_portrait_only(photos):
    shares = {name: face_fraction(img) for name, img in photos.items()}
    assert 0.01 < shares["astronaut"] < 0.5
    assert all(shares[n] == 0.0 for n in ("coffee", "cat", "china", "flower"))


def test_class_entropy_bounds():
    assert class_entropy(np.eye(4)[:1]).tolist() == pytest.approx([0.0], abs=1e-6)
    assert class_entropy(np.full((1, 4), 0.25)).tolist() == pytest.approx([1.0])


def test_the_portrait_counts_less_in_its_post_and_is_reported(encoder, photos, tmp_path):
    paths = {}
    for name, img in photos.items():
        paths[name] = tmp_path / f"{name}.png"
        img.save(paths[name])
    posts = [Post(id=name, image=str(path)) for name, path in paths.items()] + [Post(id="text-only", text="hello")]
    before = encoder.images_gated
    out = encoder.encode_posts(posts)
    w = dict(zip(paths, out.image_weight))
    assert w["astronaut"] < 0.5 < min(w[n] for n in ("coffee", "cat", "china", "flower"))
    assert np.isnan(out.image_weight[-1])  # no image: no weight
    assert encoder.images_gated - before == 1
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)  # an image-only post keeps its (gated) image
    # With a caption, a gated image moves the post vector less than a kept one would.
    captioned = [Post(id="a", text="morning at the space center", image=str(paths["astronaut"]))]
    ungated = create_encoder(EncoderConfig(image_gate=False))
    text = encoder.encode_text(["morning at the space center"])[0]
    assert encoder.encode_posts(captioned).vectors[0] @ text > ungated.encode_posts(captioned).vectors[0] @ text


def test_the_gate_learns_from_labelled_signals_and_travels_as_config():
    rng = np.random.default_rng(0)  # synthetic signals: big faces unhelpful, agreeing captions helpful
    signals = np.column_stack([rng.uniform(0, 0.3, 400), rng.uniform(0, 1, 400), rng.uniform(-0.1, 0.5, 400)])
    helpful = 0.5 + 3 * signals[:, 2] - 20 * signals[:, 0] > 0
    gate = NoisyImageGate().fit(signals, helpful, C=100.0)
    assert gate.config.learned and gate.config.coef["face"] < 0 < gate.config.coef["agreement"]
    assert ((gate.weight(signals) >= 0.5) == helpful).mean() > 0.95 > max(helpful.mean(), 1 - helpful.mean())
    with pytest.raises(ValueError, match="both helpful and unhelpful"):
        NoisyImageGate().fit(signals, np.ones(400, bool))
    config = EncoderConfig(gate=gate.config.to_dict())
    restored = create_encoder(config)
    assert restored.gate.config == GateConfig(**gate.config.to_dict())
    assert restored.identity != create_encoder(EncoderConfig()).identity  # cached vectors never mix gates


def test_enrich_reports_how_many_images_were_gated(model_dir, photos, tmp_path):
    import json

    from conftest import cli, write_jsonl

    for name in ("astronaut", "china"):
        photos[name].save(tmp_path / f"{name}.png")
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "portrait", "image": str(tmp_path / "astronaut.png")},
                                                 {"id": "scene", "text": "temple visit", "image": str(tmp_path / "china.png")}])
    result = json.loads(cli("enrich", "--model", model_dir, "--in", source, "--out", tmp_path / "out.jsonl", "--no-cache").stdout)
    assert result["images"] == {"encoded": 2, "gated": 1}
