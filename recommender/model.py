"""TagAtlas v1: a retrieval-augmented recommender of places and hashtags for posts.

fit → a trained head (places, tags) + a FAISS index of post vectors + a SQLite store; predict →
neighbour votes, classifier and the user's own similar past posts fused with weights learned on a
validation split of users. A model is a folder: `save` writes it atomically, `load` restores it.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, replace
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from tagatlas.data import (P2CLabeler, PhotoMetadata, Post, city, clean_text, hashtag_words, mask_hashtags, read_photo_metadata)
from tagatlas.encoders import PostEncoder, PostVectors, create_encoder, l2_normalize
from tagatlas.encoders.impute import CrossModalImputer, fill_missing_side, imputer_for
from tagatlas.core import __version__
from tagatlas.index import FaissIndex, PostStore
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas)
from tagatlas.recommender.clusters import ClusterProfiles
from tagatlas.recommender.coattention import RegionMaps
from tagatlas.recommender.decisions import decide, to_predictions
from tagatlas.recommender.evidence import BatchContext, EvidenceSource, create_sources, gather_all
from tagatlas.recommender.evidence.habits import user_habits
from tagatlas.recommender.evidence.neighbours import retrieve
from tagatlas.recommender.evidence.photo_gps import photo_positions
from tagatlas.recommender.evidence.vocabulary import BatchVocabulary
from tagatlas.recommender.evidence.written_tags import written_tags
from tagatlas.recommender.config import ConfigError, ModelConfig
from tagatlas.recommender.neighbours import NeighbourTable
from tagatlas.recommender.folder import (FORMAT_VERSION, PARTS, ModelFolderError, file_fingerprint, load_part, manifest_of,
                                         read_manifest, write_folder)
from tagatlas.recommender.post_index import PostIndex
from tagatlas.recommender.schema import Decisions, Prediction
from tagatlas.recommender.tag_match import TagMatcher
from tagatlas.recommender.weights import WEIGHTS_FILE, WeightsError, load_weights, save_weights

log = logging.getLogger(__name__)


def _clean(text: str | None) -> str:
    """What the lexical features and the text-tag matcher read: the whole cleaned text, hashtags masked."""
    return clean_text(mask_hashtags(text))


class Features(NamedTuple):
    """The encoders' output for a batch, computed once and read by everything after them."""

    lexical: object  # sparse (n, n_lexical_features)
    dense: np.ndarray  # (n, encoder dim)
    clean: list[str]  # each post's cleaned text, hashtags masked
    photos: list[PhotoMetadata | None]  # EXIF of each post's photo (None: no photo)


@dataclass
class PendingAdd:
    """Posts enriched by `TagAtlas.prepare_add`, waiting for `commit_add` to index them."""

    posts: list[Post]
    features: Features | None
    regions: RegionMaps | None
    clusters: tuple[np.ndarray, list[dict]] | None  # (cluster per post, -1: none; per-modality shares), as assigned
    predictions: list[Prediction]
    vectors: np.ndarray | None = None  # the posts' index-space vectors
    new_tags: tuple[list[str], np.ndarray | None] = ([], None)  # tags the matcher lacks, embedded (TagMatcher.embed_new)


@dataclass
class BatchResult:
    """One batch of `predict_stream`: its posts with their predictions and index-space vectors, or the error."""

    posts: list[Post]
    predictions: list[Prediction]  # empty in a columnar stream
    vectors: np.ndarray
    error: Exception | None = None
    decisions: Decisions | None = None  # a columnar stream's predictions, as arrays


class TagAtlas:
    """fit / predict / add / delete / save / load."""

    def __init__(self, config: ModelConfig | None = None, encoder: PostEncoder | None = None):
        self.config = config or ModelConfig()
        self._encoder = encoder
        self.graph_ = None  # a GraphClusterer once clustered (in training, or by `tagatlas cluster`)
        self.tag_matcher_: TagMatcher | None = None  # indexed tags embedded as words (None: a model saved before it existed)
        self.imputer_: CrossModalImputer | None = None  # text ↔ image maps (None: too few training posts had both)
        self.fingerprint_: str | None = None  # content hash of the saved weights (None until saved or loaded)
        self._sources: tuple[tuple[str, ...], list[EvidenceSource]] | None = None  # (names, sources) of config.evidence
        self._matcher_synced = False  # the tag matcher has been extended with the tags indexed since it was saved
        self._tag_mask: tuple[tuple[int, int], np.ndarray] | None = None  # (matcher size, tags version) → indexed-tag mask

    # -- parts ----------------------------------------------------------------------------------
    @property
    def sources(self) -> list[EvidenceSource]:
        """The plug-in evidence sources the config names (`ModelConfig.evidence`), in order."""
        names = tuple(self.config.evidence)
        if self._sources is None or self._sources[0] != names:
            self._sources = (names, create_sources(names))
        return self._sources[1]

    @property
    def encoder(self) -> PostEncoder:
        if self._encoder is None:
            self._encoder = create_encoder(self.config.encoder)
        return self._encoder

    def _features(self, posts: list[Post], progress: bool = False, photos: bool = True) -> Features:
        """Encoder output for a batch; `photos=False` skips reading EXIF where no prediction follows (add, embed)."""
        dense = self._impute(self.encoder.encode_posts(posts, progress=progress))
        clean = [_clean(p.text) for p in posts]
        photos = [read_photo_metadata(p.image) if photos and p.image and self.config.photo_metadata else None for p in posts]
        return Features(self.lexical_.transform(clean), dense, clean, photos)

    def _impute(self, pv: PostVectors) -> np.ndarray:
        """Post vectors with a missing side filled in from the present one (`fill_missing_side`)."""
        return fill_missing_side(self.imputer_, pv)

    def _wants_imputer(self, posts: list[Post]) -> bool:
        """Whether enough posts have both a text and an image to learn imputation from (a cheap count, before encoding)."""
        pairs = sum(1 for p in posts if p.image and clean_text(mask_hashtags(p.text)))
        return self.config.impute_min_pairs > 0 and pairs >= self.config.impute_min_pairs

    def _fit_imputer(self, pv: PostVectors, rows: np.ndarray) -> None:
        """Learn text ↔ image maps on the posts at `rows` of `pv` that have both sides (None: too few pairs)."""
        self.imputer_ = imputer_for(pv, rows, self.config.impute_min_pairs, self.config.seed)

    def _regions(self, posts: list[Post]) -> RegionMaps:
        """Image region maps of the posts that have one (read by a head with co-attention)."""
        if self.config.encoder.image == "none":
            return RegionMaps.empty(self.config.head.coattn_region_dim)
        return RegionMaps(*self.encoder.encode_regions(posts))

    def _vectors(self, x, dense, clean: list[str] | None = None, posts: list[Post] | None = None,
                 regions: RegionMaps | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(index vectors, place probabilities, tag probabilities, regressed lat/lon or None); `clean`: the posts'
        cleaned texts, read by a head with a character branch or co-attention; `regions` (computed from `posts`
        when not given) the image region maps co-attention reads."""
        if self.head_.reads_text and clean is None and posts is not None:
            clean = [_clean(p.text) for p in posts]
        if self.head_.reads_regions and regions is None:
            if posts is None:
                raise ValueError("this model's head reads image regions: give the posts")
            regions = self._regions(posts)
        out = self.head_.predict(x, dense, texts=clean if self.head_.reads_text else None,
                                 regions=regions if self.head_.reads_regions else None)
        return (l2_normalize(out.z) if self.config.index_space == "head" else dense), out.place_probs, out.tag_probs, out.coords

    @property
    def index_dim(self) -> int:
        return self.config.head.hidden if self.config.index_space == "head" else self.encoder.dim

    def class_of(self, places: list[str | None], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Place class of each labelled point: its place label when that is a class, else the class nearest its lat/lon (-1: neither)."""
        out = np.array([self.place_index_.get(p, -1) if p else -1 for p in places], dtype=np.int64)
        lat, lon = np.asarray(lat, float), np.asarray(lon, float)
        fold = (out < 0) & np.isfinite(lat) & np.isfinite(lon)
        if fold.any():
            _, idx = self.areas_.tree.query(np.radians(np.column_stack([lat[fold], lon[fold]])), k=1)
            out[fold] = idx[:, 0]
        return out

    def _init_places(self) -> None:
        self.place_index_ = {p: i for i, p in enumerate(self.places_)}
        self.tag_index_ = {t: i for i, t in enumerate(self.tags_)}
        self.areas_ = PlaceAreas(self.place_coords_)
        self._place_coords_list = np.asarray(self.place_coords_, dtype=float).tolist()

    def place_name(self, place: str) -> str:
        """A place label's readable name (the GeoNames city when the place is not a class of the model)."""
        if place in self.place_index_:
            return self.place_names_[self.place_index_[place]]
        try:
            return city(place).label
        except KeyError:
            return place

    # -- training -------------------------------------------------------------------------------
    def fit(self, posts: list[Post], progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> "TagAtlas":
        """Train on posts. With `checkpoint_dir`, post vectors are cached there and the head's training state is
        saved after every epoch, so an interrupted run given the same folder resumes instead of starting over."""
        self.config = self.config.validated()  # refuses bad settings by name; the caller's config object is never changed
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        own_cache = ckpt is not None and self.encoder.cache is None
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            if own_cache:
                self.encoder.use_cache(ckpt / "embeddings.sqlite")
        try:
            return self._fit(posts, progress, ckpt)
        finally:
            if own_cache:
                self.encoder.cache.close()
                self.encoder.cache = None

    def _fit(self, posts: list[Post], progress: bool, ckpt: Path | None) -> "TagAtlas":
        from tagatlas.recommender.training import TrainingRun

        return TrainingRun(self, posts, progress, ckpt).run()

    def _add_features(self, posts, x, dense, role: str, labels=None, clusters=None, regions: RegionMaps | None = None,
                      vectors: np.ndarray | None = None) -> list[int]:
        """Index posts from their encoder output; `vectors` (their index-space vectors) when already computed."""
        if not posts:
            return []
        z = self._vectors(x, dense, posts=posts, regions=regions)[0] if vectors is None else vectors
        if clusters is None:
            clusters = self.assign_clusters(posts, z)
        if labels is None:
            labels = [None] * len(posts)
            located = [i for i, p in enumerate(posts) if p.has_location]
            if located:
                found = self.labeler_.label([posts[i].lat for i in located], [posts[i].lon for i in located])
                for i, lab in zip(located, found):
                    labels[i] = lab
        rowids = self.posts_.add(posts, z, labels, role, clusters)
        if self.tag_matcher_ is not None:  # tags new to the index become matchable at once
            self.tag_matcher_.extend((t for p in posts for t in p.hashtags), self.encoder.text)
        return rowids

    # -- online updates ---------------------------------------------------------------------------
    def add(self, posts: list[Post], role: str = "online", progress: bool = False) -> list[int]:
        """Index new posts now: their places and hashtags (new ones included) are recommendable at once."""
        if not posts:
            return []
        features = self._features(list(posts), progress=progress, photos=False)
        return self._add_features(list(posts), features.lexical, features.dense, role=role)

    def featurize(self, posts: list[Post]):
        """The encoders' output for posts; it depends on nothing the index holds, so a service computes it
        outside its write lock and hands it to `predict_and_add`."""
        return self._features(list(posts))

    def predict_and_add(self, posts: list[Post], role: str = "online", features=None) -> list[Prediction]:
        """Enrich posts (before they are indexed, so none is its own neighbour), then index them; encodes once."""
        return self.commit_add(self.prepare_add(posts, features=features), role=role)

    def embed_new_tags(self, posts: list[Post]) -> tuple[list[str], np.ndarray | None]:
        """The posts' hashtags the tag matcher lacks, embedded (for `prepare_add`); depends on nothing the index
        holds, so a service computes it outside its locks, like `featurize`."""
        if self.tag_matcher_ is None:
            return [], None
        return self.tag_matcher_.embed_new((t for p in posts for t in p.hashtags), self.encoder.text)

    def prepare_add(self, posts: list[Post], features: Features | None = None,
                    new_tags: tuple[list[str], np.ndarray | None] | None = None) -> "PendingAdd":
        """Enrich posts against the index as it is now. Reads only: a service runs this beside other readers and
        holds its write lock for `commit_add` alone. `features` (`featurize`) and `new_tags` (`embed_new_tags`)
        are computed here when not given."""
        posts = list(posts)
        if not posts:
            return PendingAdd([], None, None, None, [])
        features = self._features(posts) if features is None else features
        new_tags = self.embed_new_tags(posts) if new_tags is None else new_tags
        regions = self._regions(posts) if self.head_.reads_regions else None  # read once for both steps
        ev, vectors = self._evidence(posts, *features, regions=regions)
        return PendingAdd(posts, features, regions, ev.assigned_clusters, self._predictions(posts, ev, 20), vectors, new_tags)

    def commit_add(self, pending: "PendingAdd", role: str = "online") -> list[Prediction]:
        """Index prepared posts (committed to the store before this returns); their predictions get the cluster
        each joined."""
        if not pending.posts:
            return []
        if self.tag_matcher_ is not None:
            self.tag_matcher_.add_embedded(*pending.new_tags)
        rowids = self._add_features(pending.posts, pending.features.lexical, pending.features.dense, role=role,
                                    clusters=pending.clusters, regions=pending.regions, vectors=pending.vectors)
        stored = self.store_.clusters(rowids)
        for pred, rowid in zip(pending.predictions, rowids):
            if rowid in stored:
                pred.cluster, pred.cluster_contributions = str(stored[rowid][0]), stored[rowid][1]
        return pending.predictions

    def search_index(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (similarities, rowids) among the indexed posts, re-ranked as `config.index_rerank` says (`PostIndex.search`)."""
        return self.posts_.search(queries, k, self.config.index_rerank)

    def embed(self, posts: list[Post]) -> np.ndarray:
        """The posts' vectors in the index space (what `search` matches against)."""
        posts = list(posts)
        x, dense, clean, _ = self._features(posts, photos=False)
        return self._vectors(x, dense, clean, posts=posts)[0]

    def delete(self, ids: list[str]) -> int:
        """Remove posts by id from the index and the store; returns how many were indexed."""
        return self.posts_.delete(ids)

    # -- the indexed posts ----------------------------------------------------------------------
    @property
    def store_(self) -> PostStore:
        return self.posts_.store

    @property
    def index_(self) -> FaissIndex:
        return self.posts_.index

    @index_.setter
    def index_(self, index: FaissIndex) -> None:
        """Search another index over the same stored posts (e.g. an approximate one; the store re-ranks it)."""
        self.posts_.index = index

    def _new_post_index(self, index: FaissIndex, store: PostStore) -> PostIndex:
        return PostIndex(index, store, self.class_of, self.tags_, factory=self.config.index_factory)

    def neighbour_table(self) -> NeighbourTable:
        """The in-memory columns retrieval reads (`PostIndex.table`)."""
        return self.posts_.table()

    def cluster_profiles(self, table: NeighbourTable) -> ClusterProfiles:
        """What each graph cluster's posts say (`PostIndex.cluster_profiles`)."""
        return self.posts_.cluster_profiles(table)

    def _evidence(self, posts: list[Post], x, dense, clean: list[str] | None = None,
                  photos: list[PhotoMetadata | None] | None = None, regions: RegionMaps | None = None) -> tuple[Evidence, np.ndarray]:
        """Everything fusion needs for a batch, as arrays, one source at a time (recommender/evidence/): the
        classifier (the head), neighbour votes, habits, written tags, the tag match, plug-in sources, photo GPS."""
        q, place_probs, tag_probs, reg_coords = self._vectors(x, dense, clean, posts=posts, regions=regions)
        table = self.neighbour_table()
        clean = [_clean(p.text) for p in posts] if clean is None else clean
        nb = retrieve(self.search_index, table, q, [p.id for p in posts], self.config.k_max)
        habits = user_habits(self.store_, table, posts, q)
        tag_counts = self.posts_.tag_counts()
        text_tags, text_prior = written_tags(clean, tag_counts, table)
        embed_tags, embed_sims = self._matched_tags(dense, tag_counts, table)
        clusters = self.assign_clusters(posts, q, found=nb.found)  # reported: from every view the post has
        fusion = getattr(self, "fusion_", None)  # None while training tunes it: every source is gathered
        wanted = (lambda name: True) if fusion is None else (
            lambda name: fusion.source_place.get(name, 0.0) > 0 or fusion.source_tags.get(name, 0.0) > 0)
        plugged = gather_all(self.sources, BatchContext(posts, q, dense, clean, nb.found, table, self, clusters), wanted)
        batch_tags = self._batch_vocabulary(table, nb, habits, [text_tags, embed_tags] + [s.tag_ids for s in plugged.values()])
        remap = batch_tags.remap
        ev = Evidence(place_probs, tag_probs, nb.sims, nb.cls, nb.lat, nb.lon, nb.ids,
                      batch_tags.remap_neighbours(nb.tags, nb.kept_extra, self.config.k_max),
                      habit_sims=habits.sims, habit_tags=[[remap(tl) for tl in lists] for lists in habits.tags], habit_ids=habits.ids,
                      tags=batch_tags.tags, n_vocab=len(self.tags_), text_tags=[list(remap(tl)) for tl in text_tags], text_prior=text_prior,
                      reg_coords=reg_coords, embed_tags=[list(remap(tl)) for tl in embed_tags], embed_sims=embed_sims, habit_ages=habits.ages,
                      sources={name: replace(s, tag_ids=[list(remap(tl)) for tl in s.tag_ids]) for name, s in plugged.items()},
                      assigned_clusters=clusters, photo_gps=photo_positions(photos))
        return ev, q

    def _matched_tags(self, dense: np.ndarray, tag_counts: dict[str, int], table) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
        """Indexed tags nearest each post in the text encoder's space (table ids, similarities): new tags too."""
        matcher = self._synced_matcher(tag_counts)
        if matcher is None:
            return [() for _ in range(len(dense))], [np.zeros(0) for _ in range(len(dense))]
        found, sims = matcher.match(dense, self.config.tag_match_k, allowed=self._indexed_tag_mask(matcher, tag_counts))
        return [table.ids_of(f) for f in found], sims

    def _batch_vocabulary(self, table, nb, habits, tag_lists: list[list[tuple[int, ...]]]) -> BatchVocabulary:
        """The classifier's vocabulary, then only the other tags this batch mentions (few rows carry them)."""
        nv, k = len(self.tags_), self.config.k_max
        extra = sorted({g for f in nb.kept_extra.tolist() for g in nb.tags[f // k][f % k] if g >= nv}
                       | {g for lists in habits.tags for tl in lists for g in tl if g >= nv}
                       | {g for lists in tag_lists for tl in lists for g in tl if g >= nv})
        return BatchVocabulary(self.tags_ + [table.tags[g] for g in extra], dict(zip(extra, range(nv, nv + len(extra)))))

    def _synced_matcher(self, tag_counts: dict[str, int]) -> TagMatcher | None:
        """The tag matcher, first extended with tags indexed since it was saved (a restarted service's online posts)."""
        matcher = self.tag_matcher_
        if matcher is not None and len(tag_counts) and not self._matcher_synced:
            missing = [t for t in tag_counts if t not in matcher]
            if missing:
                matcher.extend(missing, self.encoder.text)
            self._matcher_synced = True
        return matcher

    def _indexed_tag_mask(self, matcher: TagMatcher, tag_counts: dict[str, int]) -> np.ndarray:
        """Which of the matcher's tags some indexed post still carries; rebuilt only after adds and deletes."""
        key = (len(matcher), self.posts_.tags_version)
        cached = self._tag_mask
        if cached is None or cached[0] != key:
            cached = (key, np.fromiter((t in tag_counts for t in matcher.tags_), bool, len(matcher)))
            self._tag_mask = cached
        return cached[1]

    def search(self, query: str, user_id: str | None = None, k: int = 20, coarse_all: bool = False, query_vector=None):
        """Personalised search over indexed posts (see `tagatlas.recommender.search`)."""
        from tagatlas.recommender.search import search

        return search(self, query, user_id=user_id, k=k, coarse_all=coarse_all, query_vector=query_vector)

    def evidence(self, posts: list[Post]) -> Evidence:
        """The fusion inputs for a batch (classifier outputs, neighbours, habits): for baselines and ablations."""
        return self._evidence(list(posts), *self._features(list(posts)))[0]

    def predictions_from(self, posts: list[Post], ev: Evidence, params: FusionParams | None = None,
                         n_candidates: int = 20) -> list[Prediction]:
        """Predictions from precomputed evidence, optionally with other fusion parameters."""
        return self._predictions(list(posts), ev, n_candidates, params)

    def warm_up(self, freeze_heap: bool = True) -> None:
        """Load the backbones and fill the lazy caches now, so the first requests of a service (often many
        at once) do not each pay for it.

        `freeze_heap` then moves everything loaded so far out of the garbage collector's reach (`gc.freeze`):
        the model's objects live as long as the process, and rescanning them in every collection is pure overhead
        (benchmarks/throughput.py). Processes that own the model (CLI, server) call this.
        """
        self.predict([Post(id="warm-up", text="warm up")])
        self.posts_.tag_counts()
        if self.tag_matcher_ is not None:
            hashtag_words("warmup")  # loads the word segmenter that embeds tags new to the index
        self.search("warm up", k=1, coarse_all=True)  # also loads the city gazetteer used to coarsen coordinates
        if freeze_heap:
            gc.collect()
            gc.freeze()

    def predict(self, posts: list[Post], *, batch_size: int = 512, progress: bool = False, n_candidates: int = 20) -> list[Prediction]:
        """Places, coordinates with a radius, and ranked hashtags for each post (hashtags in its text are masked)."""
        return self.predict_with_vectors(posts, batch_size=batch_size, progress=progress, n_candidates=n_candidates)[0]

    def predict_with_vectors(self, posts: list[Post], *, batch_size: int = 512, progress: bool = False,
                             n_candidates: int = 20) -> tuple[list[Prediction], np.ndarray]:
        """`predict` plus each post's vector in the index space (what `embed` returns), from one encoder pass:
        enrichment that stores embeddings (OpenSearch) must not encode twice."""
        out: list[Prediction] = []
        vectors: list[np.ndarray] = []
        chunks = [list(posts[start : start + batch_size]) for start in range(0, len(posts), batch_size)]
        bar = tqdm(total=len(posts), desc="predict", unit="post", disable=not progress or len(posts) <= batch_size)
        for result in self.predict_stream(chunks, n_candidates=n_candidates):
            if result.error is not None:
                raise result.error
            out.extend(result.predictions)
            vectors.append(result.vectors)
            bar.update(len(result.posts))
        bar.close()
        return out, (np.concatenate(vectors) if vectors else np.zeros((0, self.index_dim), np.float32))

    def predict_stream(self, batches: Iterable[Sequence[Post]], *, n_candidates: int = 20, columnar: bool = False) -> Iterator[BatchResult]:
        """Predict batch after batch, in order. A batch that fails yields its error instead of predictions and
        the stream goes on (bulk enrichment records the failure and continues). `columnar`: each result carries
        `decisions` (arrays) instead of `Prediction` objects, for bulk writers that need only the decisions.

        Sequential on purpose: encoding the next batch on a second thread or process while this one is fused
        is slower on few cores (the encoder holds the GIL much of its time; benchmarks/throughput.py).
        """
        for batch in batches:
            batch = list(batch)
            try:
                features = self._features(batch)
                if columnar:
                    ev, q = self._evidence(batch, *features)
                    result = BatchResult(batch, [], np.asarray(q, dtype=np.float32), None, self._decide(ev, n_candidates))
                else:
                    preds, vectors = self._predict_features(batch, features, n_candidates)
                    result = BatchResult(batch, preds, vectors, None)
            except Exception as exc:  # noqa: BLE001 (reported with its batch)
                yield BatchResult(batch, [], np.zeros((0, self.index_dim), np.float32), exc)
                continue
            yield result

    def _predict_features(self, batch: list[Post], features: Features, n_candidates: int) -> tuple[list[Prediction], np.ndarray]:
        ev, q = self._evidence(batch, *features)
        preds = self._predictions(batch, ev, n_candidates)
        labels, shares = ev.assigned_clusters
        for pred, label, share in zip(preds, labels, shares):
            if label >= 0:
                pred.cluster, pred.cluster_contributions = str(label), share
        return preds, np.asarray(q, dtype=np.float32)

    def cluster(self, k: int = 10, resolution: float = 1.0, fusion: str = "late", progress: bool = False, **late_options):
        """Cluster every indexed post (graph module) and record clusters in the store; returns the clusterer.
        `late_options`: GraphClusterer's `edge_weights` and `confidence`."""
        from tagatlas.recommender.clusters import build_clusters

        self.graph_ = build_clusters(self, k=k, resolution=resolution, fusion=fusion, seed=self.config.seed, progress=progress,
                                     **late_options)
        self.posts_.clusters_changed()
        return self.graph_

    def assign_clusters(self, posts: list[Post], q: np.ndarray, content_only: bool = False,
                         found: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, list[dict]]:
        """Clusters for posts not in the clustering (queries, online adds): -1 where unclustered.
        `content_only`: from the index vector alone, ignoring the post's hashtags and location.
        `found`: (similarities, rowids) of the posts' nearest indexed posts, best first, from the index search
        already made for them: the content vote reads them instead of searching the graph's copy again."""
        if self.graph_ is None or not posts:
            return np.full(len(posts), -1), [{} for _ in posts]
        from tagatlas.recommender.clusters import post_modalities

        views = post_modalities(q, [p.hashtags for p in posts], [p.lat for p in posts], [p.lon for p in posts])
        if content_only:
            views = {"content": views["content"]}
        labels, shares = self.graph_.assign_with_contributions(views, neighbours=None if found is None else {"content": found})
        return labels, [{name: round(float(v[i]), 4) for name, v in shares.items()} for i in range(len(posts))]

    def _decide(self, ev: Evidence, n_candidates: int, params: FusionParams | None = None) -> Decisions:
        """Fusion and every decision for a batch, as arrays (`decisions.decide`)."""
        return decide(ev, params or self.fusion_, self.areas_, self.place_coords_, self.places_, self.place_names_, n_candidates)

    def _predictions(self, posts, ev: Evidence, n_candidates: int, params: FusionParams | None = None) -> list[Prediction]:
        return to_predictions(posts, ev, self._decide(ev, n_candidates, params), self._place_coords_list)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder atomically: a crash leaves the previous folder (or none) intact. model.json names
        every part and where it lies (`folder.PARTS`), so loading never guesses file names."""
        def write_parts(tmp: Path) -> dict:
            save_weights(tmp / WEIGHTS_FILE, self.head_, self.lexical_)
            self.fingerprint_ = file_fingerprint(tmp / WEIGHTS_FILE)
            self.store_.save_copy(tmp / "store.sqlite")
            self.posts_.save_index(tmp)
            optional = {"graph": self.graph_, "tags": self.tag_matcher_, "imputer": self.imputer_}
            for name, part in optional.items():
                if part is not None:
                    part.save(tmp / PARTS[name].path)
            parts = manifest_of([name for name in PARTS if name not in optional or optional[name] is not None])
            return {
                "format_version": FORMAT_VERSION, "tagatlas_version": __version__, "parts": parts,
                "config": self.config.to_dict(), "fusion": self.fusion_.to_dict(), "tuning": self.tuning_,
                "places": self.places_, "place_names": self.place_names_, "place_coords": self.place_coords_.tolist(),
                "tags": self.tags_, "labeler": self.labeler_.to_dict(), "train_seconds": self.train_seconds_,
                "train_info": getattr(self, "train_info_", {}),
            }

        return write_folder(folder, write_parts)

    def save_index(self, folder: str | os.PathLike) -> None:
        """Persist only the index of a model whose store is the folder's own file (a serving model)."""
        if Path(self.store_.path).resolve() != (Path(folder) / "store.sqlite").resolve():
            raise ValueError("save_index needs a model loaded with writable_store=True from the same folder; use save()")
        self.posts_.save_index(Path(folder))

    def rebuild_index(self) -> None:
        """Rebuild the FAISS index from the store's vectors (the store is the source of truth)."""
        self.posts_.rebuild_index(self.index_dim)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, writable_store: bool = False) -> "TagAtlas":
        """Restore a model folder. The store is an in-memory copy unless `writable_store` (online adds persist)."""
        folder = Path(folder)
        state, parts = read_manifest(folder)
        try:
            self = cls(ModelConfig.from_dict(state.get("config")))
            self.head_, self.lexical_ = load_weights(folder / parts["weights"])
        except (ConfigError, WeightsError) as exc:
            raise ModelFolderError(f"{folder}/model.json: {exc}" if isinstance(exc, ConfigError) else str(exc)) from exc
        self.fingerprint_ = file_fingerprint(folder / parts["weights"])
        try:
            self.fusion_ = FusionParams(**state["fusion"])
            self.tuning_ = state.get("tuning", {})
            self.places_, self.place_names_ = state["places"], state["place_names"]
            self.place_coords_ = np.asarray(state["place_coords"], dtype=float)
            self.tags_ = state["tags"]
            self.labeler_ = P2CLabeler.from_dict(state["labeler"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFolderError(f"{folder}/model.json: missing or malformed entry ({type(exc).__name__}: {exc}); "
                                   f"retrain it with `tagatlas train --data POSTS --out {folder}`") from exc
        store = folder / parts["store"]
        self.posts_ = self._new_post_index(FaissIndex.load(folder / parts["index"]),
                                           PostStore(store) if writable_store else PostStore.open_copy(store))
        if self.posts_.index_is_stale(folder):
            # Writes were committed to the store after the index was saved (e.g. a killed server): replay them.
            log.warning("index is stale; rebuilding it from the store", extra={"folder": str(folder), "index_posts": self.index_.count(),
                                                                               "store_posts": self.store_.count()})
            self.rebuild_index()
        self.train_seconds_ = float(state.get("train_seconds", 0.0))
        self.train_info_ = state.get("train_info", {})
        if "graph" in parts:
            from tagatlas.graph import GraphClusterer

            self.graph_ = load_part(folder, parts, "graph", GraphClusterer.load)
        if "tags" in parts:
            self.tag_matcher_ = load_part(folder, parts, "tags", TagMatcher.load)
        if "imputer" in parts:
            self.imputer_ = load_part(folder, parts, "imputer", CrossModalImputer.load)
        self._init_places()
        return self
