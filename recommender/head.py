"""The trained head: lexical bag + dense post vector → place softmax and multi-label hashtag scores.

A fastText-style sparse bag (EmbeddingBag over hashed TF-IDF n-grams) is concatenated with the
encoder's dense vector, mixed by one hidden layer whose output `z` is also the post's index vector,
and read out by two heads: a softmax over P2C places and independent sigmoids over known tags.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


@dataclass
class HeadConfig:
    bag_dim: int = 128
    hidden: int = 384
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 30
    patience: int = 3
    tag_loss_weight: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class PostHead(nn.Module):
    def __init__(self, n_features: int, dense_dim: int, n_places: int, n_tags: int, cfg: HeadConfig):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, cfg.bag_dim, mode="sum", sparse=True)
        nn.init.normal_(self.bag.weight, std=0.05)
        self.mix = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.bag_dim + dense_dim, cfg.hidden), nn.GELU(),
                                 nn.LayerNorm(cfg.hidden))
        self.drop = nn.Dropout(cfg.dropout)
        self.place = nn.Linear(cfg.hidden, n_places)
        self.tags = nn.Linear(cfg.hidden, max(n_tags, 1))
        self.n_tags = n_tags

    def forward(self, indices, offsets, weights, dense):
        z = self.mix(torch.cat([self.bag(indices, offsets, per_sample_weights=weights), dense], dim=1))
        h = self.drop(z)
        return z, self.place(h), self.tags(h)


def _bag_inputs(x: sp.csr_matrix):
    return (torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.indptr[:-1].astype(np.int64)),
            torch.from_numpy(x.data.astype(np.float32)))


def _tag_targets(tag_ids: list[list[int]], n_tags: int) -> torch.Tensor:
    y = torch.zeros(len(tag_ids), max(n_tags, 1))
    for i, ids in enumerate(tag_ids):
        if ids:
            y[i, ids] = 1.0
    return y


class HeadTrainer:
    """fit/predict wrapper around PostHead with early stopping on a validation split."""

    def __init__(self, cfg: HeadConfig | None = None):
        self.cfg = cfg or HeadConfig()

    def _loss(self, model, x, dense, places, tags, idx):
        sub = x[idx]
        z, place_logits, tag_logits = model(*_bag_inputs(sub), dense[idx])
        loss = nn.functional.cross_entropy(place_logits, places[idx])
        if model.n_tags:
            bce = nn.functional.binary_cross_entropy_with_logits(tag_logits, tags[idx], reduction="sum") / len(idx)
            loss = loss + self.cfg.tag_loss_weight * bce
        return loss

    def fit(self, x: sp.csr_matrix, dense: np.ndarray, places: np.ndarray, tag_ids: list[list[int]],
            n_places: int, n_tags: int, val=None, epochs: int | None = None, progress: bool = True) -> "HeadTrainer":
        """Train; with `val=(x, dense, places, tag_ids)` stop when its loss stops improving (best epoch kept)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        model = PostHead(x.shape[1], dense.shape[1], n_places, n_tags, cfg)
        sparse_opt = torch.optim.SparseAdam(list(model.bag.parameters()), lr=cfg.lr)
        dense_params = [p for n, p in model.named_parameters() if not n.startswith("bag.")]
        dense_opt = torch.optim.AdamW(dense_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        dense_t, places_t, tags_t = torch.from_numpy(dense), torch.from_numpy(places.astype(np.int64)), _tag_targets(tag_ids, n_tags)
        if val is not None:
            vx, vd, vp, vt = val
            vd_t, vp_t, vt_t = torch.from_numpy(vd), torch.from_numpy(vp.astype(np.int64)), _tag_targets(vt, n_tags)
        best, best_state, best_epoch, stale = math.inf, None, 0, 0
        n_epochs = epochs or cfg.max_epochs
        bar = tqdm(range(n_epochs), desc="train head", unit="epoch", disable=not progress)
        self.history_ = []
        for epoch in bar:
            model.train()
            order = rng.permutation(x.shape[0])
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                loss = self._loss(model, x, dense_t, places_t, tags_t, idx)
                sparse_opt.zero_grad(); dense_opt.zero_grad()
                loss.backward()
                sparse_opt.step(); dense_opt.step()
                total += float(loss.detach()) * len(idx)
            record = {"epoch": epoch + 1, "train_loss": total / x.shape[0]}
            if val is not None:
                model.eval()
                with torch.no_grad():
                    vloss = float(self._loss(model, vx, vd_t, vp_t, vt_t, np.arange(vx.shape[0])))
                record["val_loss"] = vloss
                if vloss < best - 1e-4:
                    best, best_epoch, stale = vloss, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            self.history_.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            log.info("head epoch", extra=record)
            if val is not None and stale >= cfg.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        self.best_epoch_ = best_epoch if val is not None else n_epochs
        self.model_ = model.eval()
        return self

    def predict(self, x: sp.csr_matrix, dense: np.ndarray, batch_size: int = 2048):
        """(z, place probabilities, tag probabilities) for each row."""
        zs, ps, ts = [], [], []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                sub = x[start : start + batch_size]
                z, pl, tl = self.model_(*_bag_inputs(sub), torch.from_numpy(dense[start : start + batch_size]))
                zs.append(z.numpy()); ps.append(torch.softmax(pl, 1).numpy()); ts.append(torch.sigmoid(tl).numpy())
        if not zs:
            return (np.zeros((0, self.model_.mix[1].out_features), np.float32), np.zeros((0, self.model_.place.out_features), np.float32),
                    np.zeros((0, self.model_.tags.out_features), np.float32))
        return np.concatenate(zs), np.concatenate(ps), np.concatenate(ts)

    def state_dict(self) -> dict:
        m = self.model_
        return {"config": self.cfg.to_dict(), "n_features": m.bag.num_embeddings, "dense_dim": m.mix[1].in_features - self.cfg.bag_dim,
                "n_places": m.place.out_features, "n_tags": m.n_tags, "weights": m.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "HeadTrainer":
        self = cls(HeadConfig(**state["config"]))
        self.model_ = PostHead(state["n_features"], state["dense_dim"], state["n_places"], state["n_tags"], self.cfg)
        self.model_.load_state_dict(state["weights"])
        self.model_.eval()
        return self
