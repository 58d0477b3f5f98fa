"""Deterministic user-level splits and the history/query protocol shared by training and evaluation."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from tagatlas.data.post import Post


def user_fold(user_key: str, salt: str = "tagatlas") -> float:
    """A stable number in [0, 1) for a user: the same user always lands in the same split."""
    digest = hashlib.sha1(f"{salt}:{user_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_users(posts: Sequence[Post], fractions: dict[str, float], salt: str = "tagatlas") -> dict[str, list[Post]]:
    """Split posts by user into named parts of roughly the given fractions (users never straddle parts)."""
    total = sum(fractions.values())
    bounds, acc = [], 0.0
    for name, frac in fractions.items():
        acc += frac / total
        bounds.append((acc, name))
    parts: dict[str, list[Post]] = {name: [] for name in fractions}
    for post in posts:
        u = user_fold(post.user_key, salt)
        parts[next(name for bound, name in bounds if u < bound or bound == bounds[-1][0])].append(post)
    return parts


def history_and_queries(posts: Sequence[Post]) -> tuple[list[Post], list[Post]]:
    """Per user, posts sorted by time: the first half is history, the rest are queries.

    A user with a single post has no history: that post is a query.
    """
    by_user: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        by_user[post.user_key].append(post)
    history, queries = [], []
    for user_posts in by_user.values():
        user_posts.sort(key=lambda p: (p.timestamp, p.id))
        half = len(user_posts) // 2
        history.extend(user_posts[:half])
        queries.extend(user_posts[half:])
    return history, queries
