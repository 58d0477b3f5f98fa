"""Training UX: a head training interrupted mid-way resumes from its checkpoint to the same result.

Synthetic data (generated here) only; the CLI path is covered in tests/test_pipeline.py.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tagatlas.recommender.head import HeadConfig, HeadTrainer


def synthetic_training(n=240, seed=3):
    rng = np.random.default_rng(seed)
    places = rng.integers(0, 5, n)
    dense = (np.eye(5)[places] + 0.8 * rng.normal(size=(n, 5))).astype(np.float32)
    x = sp.random(n, 64, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    tags = [[int(p) % 3] for p in places]
    return x, dense, places, tags


CFG = HeadConfig(bag_dim=8, hidden=16, dropout=0.2, batch_size=64, max_epochs=6, patience=10, seed=1)


def fit(checkpoint=None, cfg=CFG):
    x, dense, places, tags = synthetic_training()
    val = synthetic_training(n=80, seed=4)
    return HeadTrainer(cfg).fit(x, dense, places, tags, 5, 3, val=val, progress=False, checkpoint=checkpoint)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model_.state_dict().items()}


def test_an_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    reference = fit()
    ckpt = tmp_path / "head.pt"
    calls = {"n": 0}
    original = HeadTrainer._loss

    def crash_in_epoch_four(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3 * 5 + 2:  # 4 training batches + 1 validation pass per epoch: dies inside epoch 4
            raise KeyboardInterrupt("synthetic crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HeadTrainer, "_loss", crash_in_epoch_four)
    with pytest.raises(KeyboardInterrupt):
        fit(ckpt)
    monkeypatch.setattr(HeadTrainer, "_loss", original)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 3 and not saved["done"]
    resumed = fit(ckpt)
    assert [h["epoch"] for h in resumed.history_] == list(range(1, 7))
    assert resumed.history_ == reference.history_
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed).values(), weights(reference).values()))
    again = fit(ckpt)  # a finished checkpoint: nothing left to train, same weights
    assert all(torch.equal(a, b) for a, b in zip(weights(again).values(), weights(reference).values()))


def test_a_checkpoint_of_another_training_or_a_broken_one_is_ignored(tmp_path):
    ckpt = tmp_path / "head.pt"
    fit(ckpt, cfg=HeadConfig(**{**CFG.to_dict(), "max_epochs": 2}))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    other = fit(ckpt)  # another config: trains from scratch (6 epochs), overwrites the checkpoint
    assert len(other.history_) == 6 and torch.load(ckpt, weights_only=True)["epoch"] == 6
    ckpt.write_bytes(b"not a checkpoint")
    assert len(fit(ckpt).history_) == 6
    reference = fit()
    assert all(torch.equal(a, b) for a, b in zip(weights(fit(tmp_path / "fresh.pt")).values(), weights(reference).values()))
