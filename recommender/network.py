"""The head's network (PyTorch): a fastText-style sparse bag over hashed n-grams and the encoder's dense vector,
mixed by one hidden layer (the post's index vector `z`) and read out as a place softmax, a coordinate regression on
the unit sphere and tag sigmoids; optionally MRLF's character-aware branch and MaCon's parallel co-attention.
`HeadConfig` is its configuration as data; `head.HeadTrainer` trains it."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from tagatlas.recommender.coattention import ParallelCoAttention


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
    # Coordinate regression (multi-task), rescaled to the place loss (see `coord_scale`); 0: none. Off by default: on
    # validation users it lowered the median error but cost Acc@161 (benchmarks/geo_ablation.py, docs/benchmarks.md).
    coord_loss_weight: float = 0.0
    # Character-aware branch (MRLF): width of its output (0: none), characters read per post, attention heads.
    char_dim: int = 0
    char_len: int = 256
    char_heads: int = 4
    # Parallel co-attention words × image regions (MaCon): width of each attended vector (0: none), words read,
    # channels of the image backbone's region map (set from the encoder by the model).
    coattn_dim: int = 0
    coattn_words: int = 64
    coattn_region_dim: int = 1280
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def to_unit(lat, lon) -> np.ndarray:
    """(n, 3) unit vectors of lat/lon in degrees: coordinates normalised so the regression has no seams or poles."""
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]).astype(np.float32)


def from_unit(xyz: np.ndarray) -> np.ndarray:
    """(n, 2) lat/lon in degrees of (not necessarily unit) vectors."""
    xyz = np.asarray(xyz, float)
    lat = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    return np.column_stack([lat, np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))])


def coord_scale(unit: np.ndarray, n_places: int) -> float:
    """Weight that puts the regression loss on the place loss's scale: the cross-entropy of knowing nothing
    (uniform over places, ln C) over the squared chord error of knowing nothing (always the mean point)."""
    if len(unit) == 0:
        return 1.0
    centre = unit.mean(axis=0)
    centre = centre / max(float(np.linalg.norm(centre)), 1e-8)
    return float(math.log(max(n_places, 2)) / max(float(((unit - centre) ** 2).sum(axis=1).mean()), 1e-6))


CHAR_BUCKETS = 4096  # code points are folded into this many ids (0: padding); no vocabulary to fit or save
CHAR_POOL = 4  # characters per position the self-attention sees


def char_ids(texts, max_len: int) -> np.ndarray:
    """(n, max_len) int64 character ids of texts (NFKC, lower-cased, cut at max_len; 0 pads)."""
    out = np.zeros((len(texts), max_len), np.int64)
    for i, text in enumerate(texts):
        text = unicodedata.normalize("NFKC", text or "").lower()[:max_len]
        if text:
            points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
            out[i, : len(points)] = 1 + points % (CHAR_BUCKETS - 1)
    return out


class CharBranch(nn.Module):
    """MRLF's character-aware text module: character embeddings → convolutions of widths 3, 5 and 7 →
    max-pooling over CHAR_POOL characters → multi-head self-attention (with positions) → masked mean."""

    def __init__(self, dim: int, heads: int, max_len: int, dropout: float, emb: int = 32):
        super().__init__()
        self.embed = nn.Embedding(CHAR_BUCKETS, emb, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(emb, dim, k, padding=k // 2) for k in (3, 5, 7))
        self.proj = nn.Linear(3 * dim, dim)
        self.pos = nn.Embedding(max_len // CHAR_POOL + 1, dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        length = int((chars > 0).sum(dim=1).max()) if chars.numel() else 0
        length = max(CHAR_POOL, -(-length // CHAR_POOL) * CHAR_POOL)  # read only as far as the longest text in the batch
        chars = chars[:, :length]
        e = self.embed(chars).transpose(1, 2)  # (n, emb, L)
        h = torch.cat([nn.functional.gelu(conv(e)) for conv in self.convs], dim=1)
        h = nn.functional.max_pool1d(h, CHAR_POOL).transpose(1, 2)  # (n, L / pool, 3 dim)
        valid = nn.functional.max_pool1d((chars > 0).float().unsqueeze(1), CHAR_POOL).squeeze(1) > 0
        valid[:, 0] |= ~valid.any(dim=1)  # an empty text attends to its (padding) first position, not to nothing
        h = self.proj(h) + self.pos(torch.arange(h.shape[1], device=h.device))
        a, _ = self.attn(h, h, h, key_padding_mask=~valid, need_weights=False)
        h = self.norm(h + a)
        w = valid.float().unsqueeze(2)
        return (h * w).sum(dim=1) / w.sum(dim=1)


class PostHead(nn.Module):
    def __init__(self, n_features: int, dense_dim: int, n_places: int, n_tags: int, cfg: HeadConfig, coords: bool = True):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, cfg.bag_dim, mode="sum", sparse=True)
        nn.init.normal_(self.bag.weight, std=0.05)
        self.chars = CharBranch(cfg.char_dim, cfg.char_heads, cfg.char_len, cfg.dropout) if cfg.char_dim > 0 else None
        self.coattn = ParallelCoAttention(cfg.coattn_region_dim, cfg.coattn_dim) if cfg.coattn_dim > 0 else None
        self.extra_dim = cfg.char_dim + 2 * cfg.coattn_dim
        self.mix = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.bag_dim + dense_dim + self.extra_dim, cfg.hidden), nn.GELU(),
                                 nn.LayerNorm(cfg.hidden))
        self.drop = nn.Dropout(cfg.dropout)
        self.place = nn.Linear(cfg.hidden, n_places)
        self.tags = nn.Linear(cfg.hidden, max(n_tags, 1))
        self.coords = nn.Linear(cfg.hidden, 3) if coords else None
        self.n_tags = n_tags

    def forward(self, indices, offsets, weights, dense, chars=None, coattn=None):
        parts = [self.bag(indices, offsets, per_sample_weights=weights), dense]
        if self.chars is not None:
            parts.append(self.chars(chars))
        if self.coattn is not None:
            parts.append(self.coattn(*coattn))
        z = self.mix(torch.cat(parts, dim=1))
        h = self.drop(z)
        xyz = nn.functional.normalize(self.coords(h), dim=1) if self.coords is not None else None
        return z, self.place(h), self.tags(h), xyz
