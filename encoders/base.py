"""The narrow interfaces every encoder backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm


def batched(items: Sequence[Any], batch_size: int, progress: bool, desc: str):
    """Yield (start, batch) slices, with a progress bar when asked and the input spans several batches."""
    starts = range(0, len(items), batch_size)
    bar = tqdm(starts, desc=desc, unit="batch", disable=not progress or len(items) <= batch_size)
    for start in bar:
        yield start, items[start : start + batch_size]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class TextEncoder(ABC):
    """Texts → L2-normalised vectors of size `dim`; an empty text gives a zero vector."""

    name: str
    dim: int

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray: ...

    def set_threads(self, threads: int) -> None:
        """Threads one batch may use (a server answering concurrent requests wants 1); ignored by backends
        without a per-model setting."""

    def encode(self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start, batch in batched(list(texts), batch_size, progress, f"encode text ({self.name})"):
            present = [i for i, t in enumerate(batch) if t and t.strip()]
            if present:
                out[[start + i for i in present]] = l2_normalize(self._encode_batch([batch[i] for i in present]))
        return out


class ImageEncoder(ABC):
    """Images (paths, bytes or PIL images) → pooled features, and region maps for co-attention."""

    name: str
    dim: int

    @abstractmethod
    def encode(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False,
               return_regions: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
