"""User habits (DESIGN): the tags of the user's own past posts, each weighed by its similarity to the new post."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tagatlas.data import Post


@dataclass
class Habits:
    sims: list[np.ndarray] = field(default_factory=list)  # per post: similarity to each past post with tags
    tags: list[list[tuple[int, ...]]] = field(default_factory=list)  # their tag ids (the table's)
    ids: list[list[str]] = field(default_factory=list)
    ages: list[np.ndarray] = field(default_factory=list)  # days from each past post to the new one (0: unknown)


def user_habits(store, table, posts: list[Post], vectors: np.ndarray, histories: list[list]) -> Habits:
    """Each post's user's indexed past posts that carry hashtags (`histories`: `BatchContext.histories`)."""
    out = Habits()
    for i, (post, history) in enumerate(zip(posts, histories)):
        past = [h for h in history if h.hashtags]
        if not past:
            out.sims.append(np.zeros(0)), out.tags.append([]), out.ids.append([]), out.ages.append(np.zeros(0))
            continue
        now = post.timestamp
        out.sims.append(store.vectors([h.rowid for h in past]) @ vectors[i])
        out.tags.append([table.ids_of(h.hashtags) for h in past])
        out.ids.append([h.id for h in past])
        out.ages.append(np.array([(now - h.created_at) / 86400.0 if now and h.created_at else 0.0 for h in past]))
    return out
