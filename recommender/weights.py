"""The learned weights of a model folder in safetensors: tensors plus JSON metadata, never a pickle, so opening a
model folder someone sent you cannot run their code."""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from tagatlas.core import atomic_path
from tagatlas.recommender.head import HeadTrainer
from tagatlas.recommender.lexical import LexicalFeaturizer

WEIGHTS_FILE = "weights.safetensors"
WEIGHTS_FORMAT = "tagatlas-weights/1"
HEAD_PREFIX = "head."
IDF = "lexical.idf"


class WeightsError(ValueError):
    """A weights file is damaged, not a safetensors file, or not TagAtlas's."""


def save_weights(path: str | os.PathLike, head: HeadTrainer, lexical: LexicalFeaturizer) -> None:
    """Write the head's tensors and the lexical featuriser's IDF atomically; everything else is JSON metadata."""
    state = head.state_dict()
    tensors = {HEAD_PREFIX + name: t.detach().cpu().contiguous() for name, t in state.pop("weights").items()}
    lexical_state = lexical.state()
    tensors[IDF] = torch.from_numpy(np.ascontiguousarray(lexical_state.pop("idf"), dtype=np.float32))
    metadata = {"format": WEIGHTS_FORMAT, "head": json.dumps(state), "lexical": json.dumps(lexical_state)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: str | os.PathLike) -> tuple[HeadTrainer, LexicalFeaturizer]:
    """The head and the lexical featuriser saved by `save_weights` (reads tensors and JSON only)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != WEIGHTS_FORMAT:
                raise WeightsError(f"{path}: not a TagAtlas weights file (format {metadata.get('format')!r}, expected {WEIGHTS_FORMAT})")
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        head_state = json.loads(metadata["head"])
        lexical_state = json.loads(metadata["lexical"])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable weights ({type(exc).__name__}: {exc})") from exc
    if IDF not in tensors:
        raise WeightsError(f"{path}: no {IDF} tensor")
    head_state["weights"] = {name[len(HEAD_PREFIX):]: t for name, t in tensors.items() if name.startswith(HEAD_PREFIX)}
    lexical_state["idf"] = tensors[IDF].numpy()
    try:
        return HeadTrainer.from_state_dict(head_state), LexicalFeaturizer.from_state(lexical_state)
    except (RuntimeError, TypeError, KeyError, ValueError) as exc:  # shapes or keys that do not fit the head
        raise WeightsError(f"{path}: weights do not fit the model they describe ({type(exc).__name__}: {exc})") from exc
