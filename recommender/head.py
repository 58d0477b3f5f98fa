"""The trained head: lexical bag + dense post vector → place softmax, coordinates and hashtag scores.

A fastText-style sparse bag (EmbeddingBag over hashed TF-IDF n-grams) is concatenated with the
encoder's dense vector, mixed by one hidden layer whose output `z` is also the post's index vector,
and read out by three heads (multi-task, as MTL-Att-CNN): a softmax over P2C places, a regression of
the post's coordinates (a unit vector on the sphere) and independent sigmoids over known tags.
Optionally a character-aware branch (MRLF: character convolutions + multi-head self-attention over the
raw text) joins the mix, for noisy spellings that word vectors and hashed n-grams break apart; and
optionally MaCon's parallel co-attention between the caption's words and the image's regions.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from tagatlas.core import atomic_path
from tagatlas.recommender.coattention import RegionMaps, word_ids
from tagatlas.recommender.network import CHAR_BUCKETS, CharBranch, HeadConfig, PostHead, char_ids, coord_scale, from_unit, to_unit

log = logging.getLogger(__name__)
__all__ = ["CHAR_BUCKETS", "CharBranch", "HeadConfig", "HeadOutput", "HeadTrainer", "char_ids", "from_unit", "to_unit"]


class HeadOutput(NamedTuple):
    z: np.ndarray  # (n, hidden) the mixed post vector
    place_probs: np.ndarray  # (n, places)
    tag_probs: np.ndarray  # (n, tags)
    coords: np.ndarray | None  # (n, 2) regressed lat/lon in degrees; None for a head trained without regression


def _bag_inputs(x: sp.csr_matrix):
    return (torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.indptr[:-1].astype(np.int64)),
            torch.from_numpy(x.data.astype(np.float32)))


def _tag_targets(tag_ids: list[list[int]], n_tags: int) -> torch.Tensor:
    y = torch.zeros(len(tag_ids), max(n_tags, 1))
    for i, ids in enumerate(tag_ids):
        if ids:
            y[i, ids] = 1.0
    return y


def _coattn_batch(coattn, idx):
    """Co-attention inputs of batch rows `idx`: (word ids, dense region maps, has-image), or None."""
    if coattn is None:
        return None
    words, regions = coattn
    maps, has = regions.take(np.asarray(idx)).dense(len(idx))
    return words[idx], maps, has


def _read_checkpoint(path: str | os.PathLike | None, identity: dict) -> dict | None:
    """The saved training state at `path` when it belongs to this training; None when absent or for another one."""
    if path is None or not Path(path).is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only: never runs code
    except Exception as exc:  # a checkpoint cut short by a crash: start over rather than fail
        log.warning("unreadable checkpoint ignored", extra={"checkpoint": str(path), "error": f"{type(exc).__name__}: {exc}"})
        return None
    if saved.get("identity") != identity:
        log.warning("checkpoint of another training ignored", extra={"checkpoint": str(path)})
        return None
    return saved


@dataclass
class _EarlyStopping:
    """The best validation loss so far, its epoch and weights, and how many epochs since it improved."""

    best: float = math.inf
    best_state: dict | None = None
    best_epoch: int = 0
    stale: int = 0

    def update(self, loss: float, epoch: int, model) -> None:
        if loss < self.best - 1e-4:
            self.best, self.best_epoch, self.stale = loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def _unit_targets(coords: np.ndarray | None, n: int) -> torch.Tensor:
    """(n, 3) unit-vector targets of the coordinate regression; NaN rows where unknown or not regressed."""
    return torch.from_numpy(to_unit(coords[:, 0], coords[:, 1]) if coords is not None else np.full((n, 3), np.nan, np.float32))


def _restore(saved: dict, model, sparse_opt, dense_opt, rng) -> None:
    """Model, optimisers and random generators as a checkpoint saved them."""
    model.load_state_dict(saved["model"])
    sparse_opt.load_state_dict(saved["sparse_opt"])
    dense_opt.load_state_dict(saved["dense_opt"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"])


def _write_checkpoint(path: str | os.PathLike, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class HeadTrainer:
    """fit/predict wrapper around PostHead with early stopping on a validation split."""

    def __init__(self, cfg: HeadConfig | None = None):
        self.cfg = cfg or HeadConfig()

    def _loss(self, model, x, dense, places, tags, unit, idx, chars=None, coattn=None, regression: bool = True):
        sub = x[idx]
        z, place_logits, tag_logits, xyz = model(*_bag_inputs(sub), dense[idx], None if chars is None else chars[idx],
                                                 _coattn_batch(coattn, idx))
        loss = nn.functional.cross_entropy(place_logits, places[idx])
        if model.n_tags:
            bce = nn.functional.binary_cross_entropy_with_logits(tag_logits, tags[idx], reduction="sum") / len(idx)
            loss = loss + self.cfg.tag_loss_weight * bce
        if xyz is not None and regression:
            target = unit[idx]
            located = torch.isfinite(target[:, 0])
            if bool(located.any()):
                chord2 = ((xyz[located] - target[located]) ** 2).sum(dim=1).mean()
                loss = loss + self.cfg.coord_loss_weight * self.coord_scale_ * chord2
        return loss

    def fit(self, x: sp.csr_matrix, dense: np.ndarray, places: np.ndarray, tag_ids: list[list[int]],
            n_places: int, n_tags: int, val=None, epochs: int | None = None, progress: bool = True,
            coords: np.ndarray | None = None, checkpoint: str | os.PathLike | None = None,
            texts: list[str] | None = None, val_texts: list[str] | None = None,
            regions: RegionMaps | None = None, val_regions: RegionMaps | None = None) -> "HeadTrainer":
        """Train; with `val=(x, dense, places, tag_ids[, coords])` stop when its loss stops improving (best epoch
        kept). `coords` (n, 2) lat/lon (NaN where unknown) trains the coordinate regression. `texts` (and
        `val_texts`) are the posts' texts, which the character branch and co-attention read when the config has
        them; `regions` (and `val_regions`) the image region maps co-attention reads. With `checkpoint`,
        the whole training state is written there after every epoch, and a run that finds a checkpoint of the
        same training (same data shape and config) goes on from it: the result equals an uninterrupted run."""
        cfg = self.cfg
        chars_t = self._chars(texts, x.shape[0])
        coattn = self._coattn(texts, regions, x.shape[0])
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        regress = coords is not None and cfg.coord_loss_weight > 0
        model = PostHead(x.shape[1], dense.shape[1], n_places, n_tags, cfg, coords=regress)
        unit_t = _unit_targets(coords if regress else None, x.shape[0])
        known = unit_t[torch.isfinite(unit_t[:, 0])].numpy()
        self.coord_scale_ = coord_scale(known, n_places) if regress else 0.0
        sparse_opt, dense_opt = self._optimisers(model)
        dense_t, places_t, tags_t = torch.from_numpy(dense), torch.from_numpy(places.astype(np.int64)), _tag_targets(tag_ids, n_tags)
        val_inputs = self._val_inputs(val, n_tags, regress, val_texts, val_regions) if val is not None else None
        n_epochs = epochs or cfg.max_epochs
        identity = self._identity(x, dense, n_places, n_tags, n_epochs, val, regress)
        stopper, first_epoch, done = self._resume(checkpoint, identity, model, sparse_opt, dense_opt, rng)
        epochs_left = range(first_epoch, first_epoch if done else n_epochs)
        data = (x, dense_t, places_t, tags_t, unit_t, chars_t, coattn)
        self._run_epochs(model, (sparse_opt, dense_opt), rng, data, val_inputs, stopper, epochs_left, n_epochs, progress,
                         checkpoint, identity)
        if stopper.best_state is not None:
            model.load_state_dict(stopper.best_state)
        self.best_epoch_ = stopper.best_epoch if val is not None else n_epochs
        self.model_ = model.eval()
        return self

    def _run_epochs(self, model, optimisers, rng, data: tuple, val_inputs, stopper: "_EarlyStopping", epochs: range, n_epochs: int,
                    progress: bool, checkpoint, identity: dict) -> None:
        """Train for `epochs` (of `n_epochs`), stopping early when validation stops improving; with `checkpoint`, the
        whole training state is written after each epoch."""
        x = data[0]
        bar = tqdm(epochs, desc="train head", unit="epoch", disable=not progress, initial=epochs.start, total=n_epochs)
        for epoch in bar:
            record = {"epoch": epoch + 1, "train_loss": self._epoch(model, optimisers, rng.permutation(x.shape[0]), *data) / x.shape[0]}
            if val_inputs is not None:
                record["val_loss"] = self._validate(model, val_inputs)
                stopper.update(record["val_loss"], epoch + 1, model)
            self.history_.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            log.info("head epoch", extra=record)
            stop = val_inputs is not None and stopper.stale >= self.cfg.patience
            if checkpoint is not None:
                sparse_opt, dense_opt = optimisers
                _write_checkpoint(checkpoint, {
                    "identity": identity, "epoch": epoch + 1, "done": stop or epoch + 1 == n_epochs, "model": model.state_dict(),
                    "sparse_opt": sparse_opt.state_dict(), "dense_opt": dense_opt.state_dict(), "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "best": stopper.best, "best_state": stopper.best_state,
                    "best_epoch": stopper.best_epoch, "stale": stopper.stale, "history": self.history_})
            if stop:
                break

    def _resume(self, checkpoint, identity: dict, model, sparse_opt, dense_opt, rng) -> tuple["_EarlyStopping", int, bool]:
        """(early stopping state, first epoch to run, whether training had finished), restored from this training's
        checkpoint when there is one (also `history_`, the model, optimisers and random state), else a fresh start."""
        self.history_ = []
        saved = _read_checkpoint(checkpoint, identity)
        if saved is None:
            return _EarlyStopping(), 0, False
        _restore(saved, model, sparse_opt, dense_opt, rng)
        self.history_ = saved["history"]
        log.info("head training resumed", extra={"checkpoint": str(checkpoint), "epoch": saved["epoch"]})
        return _EarlyStopping(saved["best"], saved["best_state"], saved["best_epoch"], saved["stale"]), saved["epoch"], saved["done"]

    def _validate(self, model, val_inputs: tuple) -> float:
        """The validation loss early stopping watches: places and tags (the regression is an auxiliary task)."""
        model.eval()
        with torch.no_grad():
            return float(self._loss(model, *val_inputs, regression=False))

    def _optimisers(self, model) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """Sparse Adam for the embedding bag, AdamW for everything else."""
        sparse_opt = torch.optim.SparseAdam(list(model.bag.parameters()), lr=self.cfg.lr)
        dense_params = [p for n, p in model.named_parameters() if not n.startswith("bag.")]
        return sparse_opt, torch.optim.AdamW(dense_params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def _identity(self, x, dense, n_places: int, n_tags: int, n_epochs: int, val, regress: bool) -> dict:
        """What makes a checkpoint this training's own (config and data shapes)."""
        return {"config": self.cfg.to_dict(), "rows": int(x.shape[0]), "features": int(x.shape[1]), "nnz": int(x.nnz),
                "dense": list(dense.shape), "places": n_places, "tags": n_tags, "epochs": n_epochs,
                "val_rows": None if val is None else int(val[0].shape[0]), "regress": regress}

    def _epoch(self, model, optimisers, order: np.ndarray, x, dense_t, places_t, tags_t, unit_t, chars_t, coattn) -> float:
        """One pass over the training posts in `order`, in batches; returns the summed loss."""
        model.train()
        total = 0.0
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            loss = self._loss(model, x, dense_t, places_t, tags_t, unit_t, idx, chars_t, coattn)
            for opt in optimisers:
                opt.zero_grad()
            loss.backward()
            for opt in optimisers:
                opt.step()
            total += float(loss.detach()) * len(idx)
        return total

    def _val_inputs(self, val, n_tags: int, regress: bool, val_texts, val_regions) -> tuple:
        """The validation posts as `_loss` reads them (all rows at once)."""
        vx, vd, vp, vt, *vc = val
        vu_t = _unit_targets(vc[0] if (vc and regress) else None, vx.shape[0])
        return (vx, torch.from_numpy(vd), torch.from_numpy(vp.astype(np.int64)), _tag_targets(vt, n_tags), vu_t, np.arange(vx.shape[0]),
                self._chars(val_texts, vx.shape[0]), self._coattn(val_texts, val_regions, vx.shape[0]))

    @property
    def reads_text(self) -> bool:
        """Whether predict needs the posts' texts (the head has a character branch or co-attention)."""
        return self.cfg.char_dim > 0 or self.cfg.coattn_dim > 0

    @property
    def reads_regions(self) -> bool:
        """Whether predict reads image region maps (the head has co-attention)."""
        return self.cfg.coattn_dim > 0

    def _coattn(self, texts: list[str] | None, regions: RegionMaps | None, n: int):
        if self.cfg.coattn_dim <= 0:
            return None
        if texts is None or len(texts) != n:
            raise ValueError(f"this head has co-attention: give the {n} posts' texts")
        regions = regions if regions is not None else RegionMaps.empty(self.cfg.coattn_region_dim)
        if regions.maps.shape[2] != self.cfg.coattn_region_dim:
            raise ValueError(f"region maps have {regions.maps.shape[2]} channels, this head reads {self.cfg.coattn_region_dim}")
        return torch.from_numpy(word_ids(texts, self.cfg.coattn_words)), regions

    def _chars(self, texts: list[str] | None, n: int) -> torch.Tensor | None:
        if self.cfg.char_dim <= 0:
            return None
        if texts is None or len(texts) != n:
            raise ValueError(f"this head has a character branch: give the {n} posts' texts")
        return torch.from_numpy(char_ids(texts, self.cfg.char_len))

    def predict(self, x: sp.csr_matrix, dense: np.ndarray, batch_size: int = 2048, texts: list[str] | None = None,
                regions: RegionMaps | None = None) -> HeadOutput:
        """Post vector, place and tag probabilities, and regressed coordinates for each row."""
        m = self.model_
        chars = self._chars(texts, x.shape[0])
        coattn = self._coattn(texts, regions, x.shape[0])
        zs, ps, ts, cs = [], [], [], []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                sub = x[start : start + batch_size]
                z, pl, tl, xyz = m(*_bag_inputs(sub), torch.from_numpy(dense[start : start + batch_size]),
                                   None if chars is None else chars[start : start + batch_size],
                                   _coattn_batch(coattn, np.arange(start, min(start + batch_size, x.shape[0]))))
                zs.append(z.numpy()); ps.append(torch.softmax(pl, 1).numpy()); ts.append(torch.sigmoid(tl).numpy())
                if xyz is not None:
                    cs.append(from_unit(xyz.numpy()))
        if not zs:
            return HeadOutput(np.zeros((0, m.mix[1].out_features), np.float32), np.zeros((0, m.place.out_features), np.float32),
                              np.zeros((0, m.tags.out_features), np.float32), None if m.coords is None else np.zeros((0, 2)))
        return HeadOutput(np.concatenate(zs), np.concatenate(ps), np.concatenate(ts), np.concatenate(cs) if cs else None)

    def state_dict(self) -> dict:
        m = self.model_
        return {"config": self.cfg.to_dict(), "n_features": m.bag.num_embeddings, "dense_dim": m.mix[1].in_features - self.cfg.bag_dim - m.extra_dim,
                "n_places": m.place.out_features, "n_tags": m.n_tags, "coords": m.coords is not None,
                "coord_scale": getattr(self, "coord_scale_", 0.0), "weights": m.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "HeadTrainer":
        # Heads saved before the character branch and co-attention have neither.
        self = cls(HeadConfig(**{"char_dim": 0, "coattn_dim": 0, **state["config"]}))
        self.coord_scale_ = float(state.get("coord_scale", 0.0))
        self.model_ = PostHead(state["n_features"], state["dense_dim"], state["n_places"], state["n_tags"], self.cfg,
                               coords=bool(state.get("coords", False)))
        self.model_.load_state_dict(state["weights"])
        self.model_.eval()
        return self
