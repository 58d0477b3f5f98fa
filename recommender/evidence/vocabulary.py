"""A batch's tag vocabulary: the classifier's tags first (their ids are the head's columns), then only the other
tags this batch's evidence mentions, so fusion's arrays stay as narrow as the batch needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BatchVocabulary:
    """The batch's tags, and the map from neighbour-table tag ids to batch ids (the classifier's ids are kept)."""

    tags: list[str]
    local: dict[int, int]  # table id → batch id of each extra tag

    def remap(self, tag_ids) -> tuple[int, ...]:
        return tuple(self.local.get(g, g) for g in tag_ids) if self.local else tuple(tag_ids)

    def remap_neighbours(self, nb_tags: list[list[tuple[int, ...]]], kept_extra: np.ndarray, k: int) -> list[list[tuple[int, ...]]]:
        """Neighbour tag lists with the few that carry a tag outside the classifier's vocabulary remapped in place."""
        if self.local:
            for f in kept_extra.tolist():
                nb_tags[f // k][f % k] = self.remap(nb_tags[f // k][f % k])
        return nb_tags
