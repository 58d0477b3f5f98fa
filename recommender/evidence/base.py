"""The evidence plug-in interface: a source reads a batch of posts (and what the model already retrieved for it)
and returns scores over places and over tags; fusion mixes every source by a weight tuned on validation users.

Adding a source is one file defining an `EvidenceSource` subclass and one `register_source` line; fusion and
tuning read the registry and need no edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from tagatlas.data import Post

# Post fields a source may need; posts lacking one get no evidence from it (rows of zeros, no tags).
POST_FIELDS = ("text", "image", "user", "created_at", "hashtags", "location")
# Names of the built-in parts of fusion (tag score shares are reported under them): no plug-in may take one.
BUILT_IN = ("classifier", "neighbours", "habits", "text", "embedding")
TRAINING_ROLES = ("fit", "val", "val-history")  # store roles of posts indexed in training (what sources learn from)
HISTORY_LIMIT = 200  # most recent past posts of a user read per query


@dataclass
class SourceEvidence:
    """What one source says about a batch of n posts."""

    place: np.ndarray | None = None  # (n, places) a distribution per post; a row of zeros: no opinion
    tag_ids: list[list[int]] = field(default_factory=list)  # per post: tag ids (the neighbour table's, then the batch's)
    tag_values: list[np.ndarray] = field(default_factory=list)  # per post: a score per tag in tag_ids, in [0, 1]
    position: np.ndarray | None = None  # (n, 2) a point the source names per post (a city it writes), NaN: none

    def take(self, idx: Sequence[int]) -> "SourceEvidence":
        """The evidence of the posts at `idx` (a validation subset)."""
        idx = np.asarray(idx, dtype=int)
        return SourceEvidence(None if self.place is None else self.place[idx],
                              [self.tag_ids[i] for i in idx] if self.tag_ids else [],
                              [self.tag_values[i] for i in idx] if self.tag_values else [],
                              None if self.position is None else self.position[idx])

    def drop(self, rows: np.ndarray) -> "SourceEvidence":
        """The same evidence with the posts at boolean `rows` silenced (they lack what the source needs)."""
        place = None if self.place is None else np.where(rows[:, None], 0.0, self.place)
        tag_ids = [[] if r else t for r, t in zip(rows.tolist(), self.tag_ids)] if self.tag_ids else []
        tag_values = [np.zeros(0) if r else v for r, v in zip(rows.tolist(), self.tag_values)] if self.tag_values else []
        position = None if self.position is None else np.where(rows[:, None], np.nan, self.position)
        return SourceEvidence(place, tag_ids, tag_values, position)


@dataclass
class BatchContext:
    """What a source may read for one batch: the posts, their vectors, the neighbour search already made, and the
    model's indexed state (read-only). What several sources read from the store is read once, on first use."""

    posts: list[Post]
    vectors: np.ndarray  # (n, d) the posts' index-space vectors
    dense: np.ndarray  # (n, encoder dim) the encoder's vectors
    clean: list[str]  # each post's cleaned text, hashtags masked
    found: tuple[np.ndarray, np.ndarray]  # (similarities, rowids) of each post's nearest indexed posts, best first
    table: Any  # NeighbourTable: rowid → post id, place class, tags (tag ids: `table.ids_of`)
    model: Any  # the TagAtlas being asked: posts_ (store, search, table, cluster_profiles()), geolocator_, graph_ (clusters.assign_clusters), config
    assigned_clusters: tuple[np.ndarray, list[dict]] | None = None  # the clusters reported for the batch's posts
    image: np.ndarray | None = None  # (n, image dim) the image backbone's features, zero rows: no photo (None: not read)

    @cached_property
    def histories(self) -> list[list]:
        """Each post's user's most recent indexed posts (`StoredPost`s, newest first, at most HISTORY_LIMIT, never the
        post itself; none for a post without a user): the habits step and user_places read the same query."""
        store = self.model.posts_.store
        return [[h for h in store.by_user(p.user_key, limit=HISTORY_LIMIT) if h.id != p.id] if p.user_id else [] for p in self.posts]

    @cached_property
    def located_training_posts(self) -> list:
        """The stored posts training indexed that carry a location (`StoredPost`s of TRAINING_ROLES): one scan of the
        store for the sources that learn from them when first asked (place_names' NameTrust, user_places' GapTrust);
        only located posts are kept, as each of those kept before."""
        return [s for _, stored in self.model.posts_.store.iter_meta() for s in stored
                if s.role in TRAINING_ROLES and s.lat is not None and s.lon is not None]

    def place_prior(self) -> np.ndarray:
        """(places,) the indexed posts' place frequencies, add-one smoothed: what a source mixes in where its own
        evidence is uncertain."""
        n_places = len(self.model.geolocator_)
        placed = self.table.cls[self.table.valid & (self.table.cls >= 0)]
        return (np.bincount(placed, minlength=n_places) + 1.0) / (len(placed) + n_places)


class EvidenceSource:
    """One source of evidence over places and tags. Subclasses set `name` and implement `gather`."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()  # post fields (POST_FIELDS) without which a post gets nothing
    place_weights: ClassVar[tuple[float, ...]] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # share of the place distribution, tried on validation
    tag_weights: ClassVar[tuple[float, ...]] = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)  # weight of its tag scores, tried on validation
    reads_image_features: ClassVar[bool] = False  # whether it reads `BatchContext.image` (the model then keeps and indexes them)

    def available(self, model: Any) -> bool:
        """Whether the model has what this source reads (e.g. graph clusters); unavailable sources are skipped."""
        return True

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        raise NotImplementedError


_PRESENT: dict[str, Callable[[Post], bool]] = {
    "text": lambda p: bool(p.text and p.text.strip()), "image": lambda p: bool(p.image), "user": lambda p: bool(p.user_id),
    "created_at": lambda p: p.created_at is not None, "hashtags": lambda p: bool(p.hashtags), "location": lambda p: p.has_location}


def lacks(post: Post, need: str) -> bool:
    """Whether `post` lacks the field `need` (one of POST_FIELDS)."""
    return not _PRESENT[need](post)


_REGISTRY: dict[str, type[EvidenceSource]] = {}


def register_source(cls: type[EvidenceSource]) -> type[EvidenceSource]:
    """Make a source available to models by its name (usable as a class decorator)."""
    if not cls.name or not cls.name.isidentifier() or cls.name in BUILT_IN:
        raise ValueError(f"an evidence source needs a name that is an identifier and not one of {', '.join(BUILT_IN)}, got {cls.name!r}")
    unknown = set(cls.needs) - set(POST_FIELDS)
    if unknown:
        raise ValueError(f"evidence source {cls.name!r} needs unknown post field(s) {sorted(unknown)}; known: {', '.join(POST_FIELDS)}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_sources() -> list[str]:
    return list(_REGISTRY)


def create_sources(names: Sequence[str]) -> list[EvidenceSource]:
    """The sources named (in this order); an unknown name is refused with the known ones."""
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown evidence source(s) {', '.join(map(repr, unknown))}; registered: {', '.join(_REGISTRY) or 'none'}")
    return [_REGISTRY[n]() for n in names]


def gather_all(sources: Sequence[EvidenceSource], ctx: BatchContext, wanted: Callable[[str], bool]) -> dict[str, SourceEvidence]:
    """Each available, wanted source's evidence for the batch, silenced for posts lacking what it needs."""
    out = {}
    for source in sources:
        if not wanted(source.name) or not source.available(ctx.model):
            continue
        lacking = np.array([any(lacks(p, need) for need in source.needs) for p in ctx.posts], dtype=bool)
        if lacking.all():
            continue
        evidence = source.gather(ctx)
        out[source.name] = evidence.drop(lacking) if lacking.any() else evidence
    return out
