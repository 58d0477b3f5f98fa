"""Online updates of a trained model: posts enriched against the index as it is now, then indexed, so their places
and hashtags (new ones included) are recommendable at once. The two steps are apart so a service reads beside other
readers and holds its write lock only to commit (`api/service.py`); split from `model.py`, which it serves as
`TagAtlas.ingest`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tagatlas.data import Post
from tagatlas.recommender.clusters import assign_clusters
from tagatlas.recommender.coattention import RegionMaps
from tagatlas.recommender.gather import gather_evidence
from tagatlas.recommender.reader import Features
from tagatlas.recommender.schema import Prediction

if TYPE_CHECKING:
    from tagatlas.recommender.model import TagAtlas


@dataclass
class PendingAdd:
    """Posts enriched by `Ingest.prepare_add`, waiting for `commit_add` to index them."""

    posts: list[Post]
    features: Features | None
    regions: RegionMaps | None
    clusters: tuple[np.ndarray, list[dict]] | None  # (cluster per post, -1: none; per-modality shares), as assigned
    predictions: list[Prediction]
    vectors: np.ndarray | None = None  # the posts' index-space vectors
    new_tags: tuple[list[str], np.ndarray | None] = ([], None)  # tags the matcher lacks, embedded (TagMatcher.embed_new)


class Ingest:
    """Adds posts to a model's index: `add` (index now), `predict_and_add` (enrich, then index), and the same in two
    steps, `prepare_add` (reads only) and `commit_add` (writes)."""

    def __init__(self, model: "TagAtlas"):
        self.model = model

    def index_features(self, posts, x, dense, role: str, labels=None, clusters=None, regions: RegionMaps | None = None,
                       vectors: np.ndarray | None = None, image: np.ndarray | None = None) -> list[int]:
        """Index posts from their encoder output (`add` encodes them first; training has it already); `vectors`: their
        index-space vectors when already computed; `labels`: their place labels when known; `image`: the image
        backbone's features (zero rows: no photo), indexed for image retrieval."""
        if not posts:
            return []
        z = self.model.reader.read(x, dense, posts=posts, regions=regions)[0] if vectors is None else vectors
        if clusters is None:
            clusters = assign_clusters(self.model.graph_, posts, z)
        if labels is None:
            labels = [None] * len(posts)
            located = [i for i, p in enumerate(posts) if p.has_location]
            if located:
                found = self.model.geolocator_.label([posts[i].lat for i in located], [posts[i].lon for i in located])
                for i, lab in zip(located, found):
                    labels[i] = lab
        rowids = self.model.posts_.add(posts, z, labels, role, clusters, image)
        self.model.hashtags_.learn((t for p in posts for t in p.hashtags), self.model.encoder.text)  # new tags become matchable at once
        return rowids

    def add(self, posts: list[Post], role: str = "online", progress: bool = False) -> list[int]:
        """Index new posts now: their places and hashtags (new ones included) are recommendable at once."""
        if not posts:
            return []
        features = self.model.features(posts, progress=progress, photos=False)
        return self.index_features(list(posts), features.lexical, features.dense, role=role, image=features.image)

    def predict_and_add(self, posts: list[Post], role: str = "online", features=None) -> list[Prediction]:
        """Enrich posts (before they are indexed, so none is its own neighbour), then index them; encodes once."""
        return self.commit_add(self.prepare_add(posts, features=features), role=role)

    def embed_new_tags(self, posts: list[Post]) -> tuple[list[str], np.ndarray | None]:
        """The posts' hashtags the tag matcher lacks, embedded (for `prepare_add`); depends on nothing the index
        holds, so a service computes it outside its locks, like `TagAtlas.features`."""
        return self.model.hashtags_.embed_new((t for p in posts for t in p.hashtags), self.model.encoder.text)

    def prepare_add(self, posts: list[Post], features: Features | None = None,
                    new_tags: tuple[list[str], np.ndarray | None] | None = None) -> "PendingAdd":
        """Enrich posts against the index as it is now. Reads only: a service runs this beside other readers and
        holds its write lock for `commit_add` alone. `features` (`TagAtlas.features`: it depends on nothing the index
        holds) and `new_tags` (`embed_new_tags`) are computed here when not given."""
        posts = list(posts)
        if not posts:
            return PendingAdd([], None, None, None, [])
        features = self.model.features(posts) if features is None else features
        new_tags = self.embed_new_tags(posts) if new_tags is None else new_tags
        regions = self.model.reader.regions(posts) if self.model.reader.reads_regions else None  # read once for both steps
        ev, vectors = gather_evidence(self.model, posts, features, regions)
        return PendingAdd(posts, features, regions, ev.assigned_clusters, self.model.predictions_from(posts, ev), vectors, new_tags)

    def commit_add(self, pending: "PendingAdd", role: str = "online") -> list[Prediction]:
        """Index prepared posts (committed to the store before this returns); their predictions get the cluster
        each joined."""
        if not pending.posts:
            return []
        self.model.hashtags_.add_embedded(pending.new_tags)
        rowids = self.index_features(pending.posts, pending.features.lexical, pending.features.dense, role=role,
                                    clusters=pending.clusters, regions=pending.regions, vectors=pending.vectors,
                                    image=pending.features.image)
        stored = self.model.posts_.store.clusters.of(rowids)
        for pred, rowid in zip(pending.predictions, rowids):
            if rowid in stored:
                pred.cluster, pred.cluster_contributions = str(stored[rowid][0]), stored[rowid][1]
        return pending.predictions
