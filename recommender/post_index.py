"""The indexed posts: FAISS vectors, the SQLite store (the source of truth) and the in-memory views retrieval reads
(neighbour table, cluster profiles, tag counts), kept consistent in one place: every write goes through here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tagatlas.core import write_text_atomic
from tagatlas.data import Post
from tagatlas.index import FaissIndex, ImageGallery, PostStore, reranked_search
from tagatlas.recommender.clusters import ClusterProfiles
from tagatlas.recommender.evidence.written_tags import WrittenTagRates
from tagatlas.recommender.folder import PARTS
from tagatlas.recommender.neighbours import NeighbourTable
from tagatlas.recommender.reader import cleaned

ClassOf = Callable[[list, np.ndarray, np.ndarray], np.ndarray]


class PostIndex:
    """Vectors + store + derived views. A view follows each write made here, and is rebuilt from the store when the
    store moved on without it (a write that bypassed this object, e.g. another process)."""

    def __init__(self, index: FaissIndex, store: PostStore, class_of: ClassOf, vocabulary: Sequence[str], *, factory: str = "auto",
                 rerank: int = 4):
        self.index, self.store = index, store  # `index` may be swapped for another over the same stored posts (e.g. approximate)
        self.class_of, self.vocabulary = class_of, list(vocabulary)
        self.factory = factory
        self.rerank = rerank  # an approximate index returns rerank × k candidates, re-ranked with the store's vectors (0: off)
        self._table: NeighbourTable | None = None
        self._profiles: ClusterProfiles | None = None
        self._tag_counts: dict[str, int] | None = None
        self._written: WrittenTagRates | None = None
        self._gallery: ImageGallery | None = None
        self.tags_version = 0  # bumped by every add and delete (caches keyed on the set of indexed tags read it)

    # -- reads ------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (similarities, rowids); an approximate index's candidates are re-ranked with the store's exact
        vectors (`rerank` × k of them; 0: not re-ranked), so near-equal neighbours come in their true order."""
        if self.rerank > 0 and not self.index.exact:
            return reranked_search(self.index, queries, k, self.store.vectors_found, self.rerank)
        return self.index.search(queries, k)

    def table(self) -> NeighbourTable:
        """The in-memory columns retrieval reads, (re)built from the store when the store moved on without it."""
        if self._table is None or self._table.generation != self.store.generation():
            self._table = NeighbourTable(self.class_of, self.vocabulary).load(self.store)
        return self._table

    def cluster_profiles(self, table: NeighbourTable) -> ClusterProfiles:
        """What each graph cluster's posts say (places, tags), (re)built when the store moved on without it."""
        if self._profiles is None or self._profiles.generation != self.store.generation():
            self._profiles = ClusterProfiles().load(self.store, table)
        return self._profiles

    def gallery(self) -> ImageGallery:
        """The indexed photos searchable by image features, (re)built when the store moved on without it."""
        if self._gallery is None or self._gallery.generation != self.store.generation():
            self._gallery = ImageGallery(self.factory).load(self.store)
        return self._gallery

    def clusters_changed(self) -> None:
        """Every post's cluster changed (a rebuild): the profiles are rebuilt when next read."""
        self._profiles = None

    def tag_counts(self) -> dict[str, int]:
        """Tag → number of indexed posts carrying it (read once from the store, then kept up to date by add and
        delete: re-reading it after every online write stalled a busy service)."""
        if self._tag_counts is None:
            self._tag_counts = self.store.tags.counts()
        return self._tag_counts

    def written_rates(self) -> WrittenTagRates:
        """How often indexed posts that spell a tag out carry it, (re)counted from the store when it moved on without it."""
        if self._written is None or self._written.generation != self.store.generation():
            known = self.tag_counts()
            self._written = WrittenTagRates.from_posts(
                (([cleaned(p.text) for p in rows], [p.hashtags for p in rows]) for _, rows in self.store.iter_meta()), known)
            self._written.generation = self.store.generation()
        return self._written

    def _written_follow(self, before: int, texts: list[str | None], tag_lists: list[list[str]], sign: int) -> None:
        """The written-tag counts follow a write they were in step with, else are recounted when next read."""
        written = self._written
        if written is not None and written.generation == before:
            written.update([cleaned(t) for t in texts], tag_lists, self._tag_counts or {}, sign)
            written.generation = self.store.generation()
        else:
            self._written = None

    # -- writes -----------------------------------------------------------------------------------
    def add(self, posts: list[Post], vectors: np.ndarray, labels: list[str | None], role: str,
            clusters: tuple[np.ndarray, list[dict]], image_features: np.ndarray | None = None) -> list[int]:
        """Write posts to the store (committed) and the index, and let every view follow the write; `image_features`
        (zero rows: no image) make the posts' photos searchable by image."""
        before = self.store.generation()
        rowids = self.store.add(posts, vectors, labels, role, image_features)
        self.index.add(np.array(rowids), vectors)
        self._gallery_follow_add(before, rowids, image_features)
        table = self._table
        if table is not None and table.generation == before:  # in step with the store: follow this write
            self._table_follow_add(table, rowids, posts, labels)
        assigned = [i for i, c in enumerate(clusters[0]) if c >= 0]
        if assigned:  # joins an existing cluster; `tagatlas cluster` rebuilds them all
            self.store.clusters.record([rowids[i] for i in assigned], [int(clusters[0][i]) for i in assigned],
                                       [clusters[1][i] for i in assigned])
        self._profiles_follow_add(before, table, [rowids[i] for i in assigned], [int(clusters[0][i]) for i in assigned])
        self._count_tags([p.hashtags for p in posts], +1)
        self._written_follow(before, [p.text for p in posts], [p.hashtags for p in posts], +1)
        return rowids

    def _gallery_follow_add(self, before: int, rowids: list[int], image_features: np.ndarray | None) -> None:
        gallery = self._gallery
        if gallery is not None and gallery.generation == before:
            if image_features is not None:
                gallery.add(rowids, np.asarray(image_features, np.float16).astype(np.float32))  # as stored
            gallery.generation = self.store.generation()

    def _table_follow_add(self, table: NeighbourTable, rowids: list[int], posts: list[Post], labels: list[str | None]) -> None:
        table.add(rowids, [p.id for p in posts], [p.lat for p in posts], [p.lon for p in posts], labels, [p.hashtags for p in posts])
        table.generation = self.store.generation()

    def _profiles_follow_add(self, before: int, table: NeighbourTable | None, rowids: list[int], clusters: list[int]) -> None:
        """Cluster profiles follow a write they were in step with, else are dropped to be rebuilt when next read."""
        profiles = self._profiles
        if profiles is None:
            return
        if profiles.generation == before and table is not None and table.generation == self.store.generation():
            profiles.add(rowids, clusters, table)
            profiles.generation = self.store.generation()
        else:
            self._profiles = None

    def delete(self, ids: list[str]) -> int:
        """Remove posts by id from the store and the index; returns how many were indexed."""
        found = self.store.get(list(self.store.rowids(ids).values()))
        before = self.store.generation()
        rowids = self.store.delete(ids)
        self.index.delete(rowids)
        table, profiles = self._table, self._profiles
        if profiles is not None and profiles.generation == before and table is not None and table.generation == before:
            profiles.remove(rowids, table)
            profiles.generation = self.store.generation()
        if table is not None and table.generation == before:
            table.delete(rowids)
            table.generation = self.store.generation()
        gallery = self._gallery
        if gallery is not None and gallery.generation == before:
            gallery.delete(rowids)
            gallery.generation = self.store.generation()
        self._count_tags([p.hashtags for p in found.values()], -1)
        self._written_follow(before, [p.text for p in found.values()], [p.hashtags for p in found.values()], -1)
        return len(rowids)

    def _count_tags(self, tag_lists: list[list[str]], sign: int) -> None:
        self.tags_version += 1
        counts = self._tag_counts
        if counts is None:
            return  # not read yet: the first read will see the store as it is
        for tag in (t for tags in tag_lists for t in set(tags)):
            counts[tag] = counts.get(tag, 0) + sign
            if counts[tag] <= 0:
                del counts[tag]

    def replace_vectors(self, rowids: list[int], vectors: np.ndarray) -> None:
        """New vectors for indexed posts (a refit head's space): stored, and the index rebuilt on them."""
        self.store.update_vectors(rowids, vectors)
        self.index = FaissIndex(vectors.shape[1], factory=self.factory).index(np.array(rowids), vectors)

    def rebuild_index(self, dim: int) -> None:
        """Rebuild the FAISS index from the store's vectors (the store is the source of truth)."""
        index = FaissIndex(dim if self.store.dim is None else self.store.dim, factory=self.factory)
        for ids, _, vectors in self.store.iter_all():
            index.add(np.array(ids), vectors)
        self.index = index

    # -- files ------------------------------------------------------------------------------------
    def save_index(self, folder: Path, name: str = PARTS["index"].path) -> None:
        """The index, and beside it the store generation it matches (a later start replays newer writes)."""
        self.index.save(folder / name)
        write_text_atomic(folder / "index.json", json.dumps({"generation": self.store.generation(), "count": self.index.count()}))

    def save_serving_index(self, folder: str | Path) -> None:
        """Persist only the index of a serving model, whose store is the folder's own file (loaded with
        `writable_store=True`); a model holding a copy of its store saves the whole folder (`TagAtlas.save`)."""
        folder = Path(folder)
        if Path(self.store.path).resolve() != (folder / PARTS["store"].path).resolve():
            raise ValueError("save_serving_index needs a model loaded with writable_store=True from the same folder; use save()")
        self.save_index(folder)

    def index_is_stale(self, folder: Path) -> bool:
        """Whether writes were committed to the store after the index in `folder` was saved (e.g. a killed server)."""
        try:
            saved = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            saved = {}
        return saved.get("generation") != self.store.generation() or self.index.count() != self.store.count()
