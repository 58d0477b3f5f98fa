"""TagAtlas: a retrieval-augmented recommender of places and hashtags for posts, composed of small parts.

`PostReader` (encoder, lexical features, imputer, multi-task head) reads a post; `PostIndex` (FAISS index + SQLite
store) holds the indexed posts; `Predictor` gathers every evidence source for a batch; `Geolocator` and
`HashtagRecommender` decide the place and the tags from the fused evidence with weights tuned on validation users
(`TrainingRun` trains the parts in order). A model is a folder with one subfolder or file per part: `save` writes it
atomically, `load` restores it.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import numpy as np

from tagatlas.data import Post, hashtag_words
from tagatlas.encoders import PostEncoder
from tagatlas.encoders.impute import CrossModalImputer
from tagatlas.core import __version__
from tagatlas.index import FaissIndex, PostStore
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.geolocator import Geolocator
from tagatlas.recommender.hashtags import HashtagRecommender
from tagatlas.recommender.evidence import EvidenceSource, create_sources
from tagatlas.recommender.config import ConfigError, ModelConfig
from tagatlas.recommender.folder import (FORMAT_VERSION, PARTS, ModelFolderError, file_fingerprint, load_part, manifest_of,
                                         read_manifest, write_folder)
from tagatlas.recommender.ingest import Ingest
from tagatlas.recommender.post_index import PostIndex
from tagatlas.recommender.reader import Features, PostReader
from tagatlas.recommender.predictor import Predictor
from tagatlas.recommender.schema import Prediction
from tagatlas.recommender.weights import WEIGHTS_FILE, WeightsError, load_weights, save_weights

log = logging.getLogger(__name__)


class TagAtlas:
    """fit / predict / add / delete / save / load."""

    def __init__(self, config: ModelConfig | None = None, encoder: PostEncoder | None = None):
        self.config = config or ModelConfig()
        self.reader = PostReader(self.config, encoder)  # encoder, lexical features, imputer and head: what a post reads as
        self.posts_: PostIndex | None = None  # the indexed posts (set by fit, load or attach_index)
        self.graph_ = None  # a GraphClusterer once clustered (in training, or by `tagatlas cluster`)
        self.geolocator_: Geolocator | None = None  # place classes and the place decision (set by fit or load)
        self.hashtags_: HashtagRecommender | None = None  # tag vocabulary, tag matcher and the tag decision (set by fit or load)
        self.fusion_: FusionParams | None = None  # fusion weights tuned on validation users (None until trained)
        self.tuning_: dict = {}  # what tuning measured on validation
        self.train_seconds_, self.train_info_ = 0.0, {}  # how long training took, and what it saw
        self.fingerprint_: str | None = None  # content hash of the saved weights (None until saved or loaded)
        self._sources: tuple[tuple[str, ...], list[EvidenceSource]] | None = None  # (names, sources) of config.evidence

    # -- parts ----------------------------------------------------------------------------------
    @property
    def sources(self) -> list[EvidenceSource]:
        """The plug-in evidence sources the config names (`ModelConfig.evidence`), in order."""
        names = tuple(self.config.evidence)
        if self._sources is None or self._sources[0] != names:
            self._sources = (names, create_sources(names))
        return self._sources[1]

    @property
    def reads_image_features(self) -> bool:
        """Whether a source compares photos by the image backbone's features (they are then kept and indexed)."""
        return self.config.encoder.image != "none" and any(s.reads_image_features for s in self.sources)

    def features(self, posts: list[Post], **kwargs) -> Features:
        """The encoders' output for posts (the reader's), with image features when a source reads them."""
        return self.reader.features(list(posts), image_features=self.reads_image_features, **kwargs)

    @property
    def encoder(self) -> PostEncoder:
        """The post encoder (`PostReader.encoder`)."""
        return self.reader.encoder

    @property
    def index_dim(self) -> int:
        return self.reader.index_dim

    # -- training -------------------------------------------------------------------------------
    def fit(self, posts: list[Post], progress: bool = True, checkpoint_dir: str | os.PathLike | None = None) -> "TagAtlas":
        """Train on posts. With `checkpoint_dir`, post vectors are cached there and the head's training state is
        saved after every epoch, so an interrupted run given the same folder resumes instead of starting over."""
        self.config = self.reader.config = self.config.validated()  # refuses bad settings by name; the caller's config is never changed
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        own_cache = ckpt is not None and self.encoder.cache is None
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            if own_cache:
                self.encoder.use_cache(ckpt / "embeddings.sqlite")
        from tagatlas.recommender.training import TrainingRun

        try:
            return TrainingRun(self, posts, progress, ckpt).run()
        finally:
            if own_cache:
                self.encoder.cache.close()
                self.encoder.cache = None

    # -- online updates ---------------------------------------------------------------------------
    @property
    def ingest(self) -> Ingest:
        """Online updates: enrich posts against the index as it is, then index them (`ingest.py`)."""
        return Ingest(self)

    def add(self, posts: list[Post], role: str = "online", progress: bool = False) -> list[int]:
        """Index new posts now: their places and hashtags (new ones included) are recommendable at once."""
        return self.ingest.add(posts, role=role, progress=progress)

    def embed(self, posts: list[Post]) -> np.ndarray:
        """The posts' vectors in the index space (what `search` matches against)."""
        posts = list(posts)
        features = self.reader.features(posts, photos=False)
        return self.reader.read(features.lexical, features.dense, features.clean, posts=posts)[0]

    def delete(self, ids: list[str]) -> int:
        """Remove posts by id from the index and the store; returns how many were indexed."""
        return self.posts_.delete(ids)

    # -- the indexed posts (`posts_`: search, store, index, the views retrieval reads) ---------------
    def attach_index(self, index: FaissIndex, store: PostStore) -> None:
        """Hold these posts (an index and the store it mirrors) as the model's `PostIndex`."""
        self.posts_ = PostIndex(index, store, self.geolocator_.class_of, self.hashtags_.tags_, factory=self.config.index_factory,
                                rerank=self.config.index_rerank)

    def search(self, query: str, user_id: str | None = None, k: int = 20, coarse_all: bool = False, query_vector=None):
        """Personalised search over indexed posts (see `tagatlas.recommender.search`)."""
        from tagatlas.recommender.search import search

        return search(self, query, user_id=user_id, k=k, coarse_all=coarse_all, query_vector=query_vector)

    @property
    def predictor(self) -> Predictor:
        """Prediction: evidence, fusion and decisions, batch after batch (`predictor.py`)."""
        return Predictor(self)

    def evidence(self, posts: list[Post]) -> Evidence:
        """The fusion inputs for a batch (classifier outputs, neighbours, habits): for baselines and ablations."""
        return self.predictor.evidence(posts)

    def predictions_from(self, posts: list[Post], ev: Evidence, params: FusionParams | None = None,
                         n_candidates: int = 20) -> list[Prediction]:
        """Predictions from precomputed evidence, optionally with other fusion parameters."""
        return self.predictor.from_evidence(posts, ev, params, n_candidates)

    def warm_up(self, freeze_heap: bool = True) -> None:
        """Load the backbones and fill the lazy caches now, so the first requests of a service (often many
        at once) do not each pay for it.

        `freeze_heap` then moves everything loaded so far out of the garbage collector's reach (`gc.freeze`):
        the model's objects live as long as the process, and rescanning them in every collection is pure overhead
        (benchmarks/throughput.py). Processes that own the model (CLI, server) call this.
        """
        self.predict([Post(id="warm-up", text="warm up")])
        self.posts_.tag_counts()
        if self.hashtags_.matcher_ is not None:
            hashtag_words("warmup")  # loads the word segmenter that embeds tags new to the index
        self.search("warm up", k=1, coarse_all=True)  # also loads the city gazetteer used to coarsen coordinates
        if freeze_heap:
            gc.collect()
            gc.freeze()

    def predict(self, posts: list[Post], *, batch_size: int = 512, progress: bool = False, n_candidates: int = 20) -> list[Prediction]:
        """Places, coordinates with a radius, and ranked hashtags for each post (hashtags in its text are masked)."""
        return self.predictor.predict(posts, batch_size=batch_size, progress=progress, n_candidates=n_candidates)

    def cluster(self, k: int = 10, resolution: float = 1.0, fusion: str = "late", progress: bool = False, **late_options):
        """Cluster every indexed post (graph module) and record clusters in the store; returns the clusterer.
        `late_options`: GraphClusterer's `edge_weights` and `confidence`."""
        from tagatlas.recommender.clusters import build_clusters

        self.graph_ = build_clusters(self, k=k, resolution=resolution, fusion=fusion, seed=self.config.seed, progress=progress,
                                     **late_options)
        self.posts_.clusters_changed()
        return self.graph_

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder atomically: a crash leaves the previous folder (or none) intact. Each part saves
        itself into its own file or subfolder, and model.json names every part and where it lies (`folder.PARTS`),
        so loading never guesses file names."""
        def write_parts(tmp: Path) -> dict:
            save_weights(tmp / WEIGHTS_FILE, self.reader.head_, self.reader.lexical_)
            self.fingerprint_ = file_fingerprint(tmp / WEIGHTS_FILE)
            self.posts_.store.save_copy(tmp / PARTS["store"].path)
            self.posts_.save_index(tmp)
            savers = {"geolocator": self.geolocator_, "hashtags": self.hashtags_, "graph": self.graph_, "imputer": self.reader.imputer_}
            for name, part in savers.items():
                if part is not None:
                    part.save(tmp / PARTS[name].path)
            return {"format_version": FORMAT_VERSION, "tagatlas_version": __version__,
                    "parts": manifest_of([name for name in PARTS if savers.get(name, True) is not None]),
                    "config": self.config.to_dict(), "fusion": self.fusion_.to_dict(), "tuning": self.tuning_,
                    "train_seconds": self.train_seconds_, "train_info": self.train_info_}

        return write_folder(folder, write_parts)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, writable_store: bool = False) -> "TagAtlas":
        """Restore a model folder. The store is an in-memory copy unless `writable_store` (online adds persist)."""
        folder = Path(folder)
        state, parts = read_manifest(folder)
        try:
            self = cls(ModelConfig.from_dict(state.get("config")))
            self.reader.head_, self.reader.lexical_ = load_weights(folder / parts["weights"])
            self.fusion_ = FusionParams(**state["fusion"])
        except (ConfigError, WeightsError) as exc:
            raise ModelFolderError(f"{folder}/model.json: {exc}" if isinstance(exc, ConfigError) else str(exc)) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFolderError(f"{folder}/model.json: missing or malformed entry ({type(exc).__name__}: {exc}); "
                                   f"retrain it with `tagatlas train --data POSTS --out {folder}`") from exc
        self.fingerprint_ = file_fingerprint(folder / parts["weights"])
        self.tuning_ = state.get("tuning", {})
        self.train_seconds_ = float(state.get("train_seconds", 0.0))
        self.train_info_ = state.get("train_info", {})
        self.geolocator_ = load_part(folder, parts, "geolocator", Geolocator.load)
        self.hashtags_ = load_part(folder, parts, "hashtags", HashtagRecommender.load)
        if "graph" in parts:
            from tagatlas.graph import GraphClusterer

            self.graph_ = load_part(folder, parts, "graph", GraphClusterer.load)
        if "imputer" in parts:
            self.reader.imputer_ = load_part(folder, parts, "imputer", CrossModalImputer.load)
        self.attach_index(load_part(folder, parts, "index", FaissIndex.load), load_part(folder, parts, "store", PostStore if writable_store else PostStore.open_copy))
        if self.posts_.index_is_stale(folder):
            # Writes were committed to the store after the index was saved (e.g. a killed server): replay them.
            log.warning("index is stale; rebuilding it from the store", extra={"folder": str(folder), "index_posts": self.posts_.index.count(),
                                                                               "store_posts": self.posts_.store.count()})
            self.posts_.rebuild_index(self.index_dim)
        return self
