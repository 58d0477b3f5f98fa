"""User habits (DESIGN): the tags of the user's own past posts, each weighed by its similarity to the new post."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tagatlas.data import Post

HISTORY_LIMIT = 200  # most recent past posts of a user read per query


@dataclass
class Habits:
    sims: list[np.ndarray] = field(default_factory=list)  # per post: similarity to each past post with tags
    tags: list[list[tuple[int, ...]]] = field(default_factory=list)  # their tag ids (the table's)
    ids: list[list[str]] = field(default_factory=list)
    ages: list[np.ndarray] = field(default_factory=list)  # days from each past post to the new one (0: unknown)


def user_habits(store, table, posts: list[Post], vectors: np.ndarray) -> Habits:
    """Each post's user's indexed past posts that carry hashtags (never the post itself)."""
    out = Habits()
    for i, post in enumerate(posts):
        past = [h for h in store.by_user(post.user_key, limit=HISTORY_LIMIT) if h.id != post.id and h.hashtags] if post.user_id else []
        if not past:
            out.sims.append(np.zeros(0)), out.tags.append([]), out.ids.append([]), out.ages.append(np.zeros(0))
            continue
        now = post.timestamp
        out.sims.append(store.vectors([h.rowid for h in past]) @ vectors[i])
        out.tags.append([table.ids_of(h.hashtags) for h in past])
        out.ids.append([h.id for h in past])
        out.ages.append(np.array([(now - h.created_at) / 86400.0 if now and h.created_at else 0.0 for h in past]))
    return out
