"""A batch's tag vocabulary: the classifier's tags first (their ids are the head's columns), then only the other
tags this batch's evidence mentions, so fusion's arrays stay as narrow as the batch needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class _Remap:
    """Table tag ids → batch tag ids: the classifier's ids are kept, the batch's other tags follow them."""

    def __init__(self, local: dict[int, int]):
        self.local = local

    def __call__(self, tag_ids) -> tuple[int, ...]:
        return tuple(self.local.get(g, g) for g in tag_ids) if self.local else tuple(tag_ids)

    def neighbours(self, nb_tags: list[list[tuple[int, ...]]], kept_extra: np.ndarray, k: int) -> list[list[tuple[int, ...]]]:
        """Neighbour tag lists with the few that carry a tag outside the classifier's vocabulary remapped in place."""
        if self.local:
            for f in kept_extra.tolist():
                nb_tags[f // k][f % k] = self(nb_tags[f // k][f % k])
        return nb_tags


@dataclass
class BatchVocabulary:
    """A batch's tag vocabulary: the classifier's tags, then the other tags the batch's evidence mentions."""

    tags: list[str]
    local: dict[int, int]  # table id → batch id of each extra tag

    @property
    def remap(self) -> _Remap:
        return _Remap(self.local)
