"""The held-out protocol's first step, shared by the CLI and the benchmarks: read post files and split off test users."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from tagatlas.data import Post, ReadReport, load_posts, split_users, user_fold


@dataclass
class TrainingSplit:
    """Training posts, held-out test posts (other users), every post read, and what each file's reader skipped."""

    train: list[Post]
    test: list[Post]
    everything: list[Post]
    reports: list[ReadReport]


def training_split(paths: Sequence[str | os.PathLike], *, skip_invalid: bool = False, test_fraction: float = 0.1, seed: int = 0,
                   max_posts: int | None = None) -> TrainingSplit:
    """Split by a salted hash of the user (`test_fraction` of users held out; 0: none), so a user is never on both
    sides; `max_posts` keeps a deterministic subset of whole training users."""
    everything, reports = load_posts(list(paths), skip_invalid=skip_invalid)
    if test_fraction > 0:
        parts = split_users(everything, {"train": 1 - test_fraction, "test": test_fraction}, salt=f"test:{seed}")
    else:
        parts = {"train": everything, "test": []}
    train = parts["train"]
    if max_posts and len(train) > max_posts:
        train = sorted(train, key=lambda p: user_fold(p.user_key, "subset"))[:max_posts]
    return TrainingSplit(train, parts["test"], everything, reports)
