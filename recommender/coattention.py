"""Parallel co-attention between a post's words and its image regions (MaCon, after Lu et al. 2016).

Words (hashed tokens of the caption, embedded by the head) and regions (the image backbone's spatial
map, e.g. EfficientNet-Lite0's 7×7×1280) are projected to one width; an affinity matrix C = tanh(Q W V^T)
lets each side be attended by the other, and the two attended vectors are concatenated into the post
vector. A post without an image attends over its words alone (its region half is zeros); padding
words are masked.
"""

from __future__ import annotations

import re
import zlib
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

WORD_BUCKETS = 2**16  # hashed word ids (0: padding); no vocabulary to fit or save
_WORD = re.compile(r"\w+")


def word_ids(texts, max_words: int) -> np.ndarray:
    """(n, max_words) int64 hashed ids of each text's first words (lower-cased; CRC32, so stable across runs)."""
    out = np.zeros((len(texts), max_words), np.int64)
    for i, text in enumerate(texts):
        words = _WORD.findall((text or "").lower())[:max_words]
        out[i, : len(words)] = [1 + zlib.crc32(w.encode("utf-8")) % (WORD_BUCKETS - 1) for w in words]
    return out


class RegionMaps(NamedTuple):
    """Region maps of the posts of a batch that have a readable image: `rows` index the batch."""

    rows: np.ndarray  # (m,) int
    maps: np.ndarray  # (m, regions, channels), float16 to halve memory

    @classmethod
    def empty(cls, channels: int, regions: int = 49) -> "RegionMaps":
        return cls(np.zeros(0, np.int64), np.zeros((0, regions, channels), np.float16))

    def take(self, idx: np.ndarray) -> "RegionMaps":
        """The maps of batch rows `idx`, re-indexed to positions in `idx`."""
        idx = np.asarray(idx, np.int64)
        if not len(self.rows) or not len(idx):
            return RegionMaps(np.zeros(0, np.int64), self.maps[:0])
        lookup = np.full(max(int(idx.max()), int(self.rows.max())) + 1, -1, np.int64)
        lookup[self.rows] = np.arange(len(self.rows))
        found = lookup[idx]
        keep = np.flatnonzero(found >= 0)
        return RegionMaps(keep.astype(np.int64), self.maps[found[keep]])

    def dense(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, regions, channels) float32 maps with zeros where a post has none, and the (n,) has-image mask."""
        out = torch.zeros(n, self.maps.shape[1], self.maps.shape[2])
        has = torch.zeros(n, dtype=torch.bool)
        if len(self.rows):
            rows = torch.from_numpy(self.rows)
            out[rows] = torch.from_numpy(self.maps.astype(np.float32))
            has[rows] = True
        return out, has


class ParallelCoAttention(nn.Module):
    """(word ids, region maps, has-image) → (n, 2·dim): the region-attended and word-attended vectors."""

    def __init__(self, region_dim: int, dim: int):
        super().__init__()
        self.words = nn.Embedding(WORD_BUCKETS, dim, padding_idx=0)
        self.regions = nn.Linear(region_dim, dim)
        self.affinity = nn.Linear(dim, dim, bias=False)
        self.w_q, self.w_v = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.h_q, self.h_v = nn.Linear(dim, 1), nn.Linear(dim, 1)
        self.dim = dim

    def forward(self, words: torch.Tensor, regions: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
        length = max(1, int((words > 0).sum(dim=1).max()) if words.numel() else 1)
        words = words[:, :length]
        q = self.words(words)  # (n, L, d)
        v = self.regions(regions) * has_image[:, None, None]  # (n, R, d); zeros without an image
        c = torch.tanh(self.affinity(q) @ v.transpose(1, 2))  # (n, L, R) affinity
        hv = torch.tanh(self.w_v(v) + c.transpose(1, 2) @ self.w_q(q))  # regions attended by words
        hq = torch.tanh(self.w_q(q) + c @ self.w_v(v))  # words attended by regions
        word_ok = words > 0
        word_ok[:, 0] |= ~word_ok.any(dim=1)  # an empty caption attends to its padding, not to nothing
        a_q = torch.softmax(self.h_q(hq).squeeze(2).masked_fill(~word_ok, float("-inf")), dim=1)
        a_v = torch.softmax(self.h_v(hv).squeeze(2), dim=1) * has_image[:, None]
        return torch.cat([(a_v.unsqueeze(2) * v).sum(dim=1), (a_q.unsqueeze(2) * q).sum(dim=1)], dim=1)
