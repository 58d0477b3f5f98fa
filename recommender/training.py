"""One training run of a `TagAtlas`, step by step: split users, label places, encode, train the head, index the fit
posts, replay the evaluation protocol on validation users to tune fusion, index the rest, refit.

`TagAtlas.fit` creates a `TrainingRun` and calls `run()`; the run's intermediate data (features of every post, its
labels) lives here, not on the model."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tagatlas.data import Post, clean_text, history_and_queries, mask_hashtags, split_users
from tagatlas.index import FaissIndex, PostStore
from tagatlas.recommender.head import HeadTrainer
from tagatlas.recommender.lexical import LexicalFeaturizer
from tagatlas.recommender.reader import Features
from tagatlas.recommender.evidence.place_names import TRUST_SETTINGS, PlaceNames
from tagatlas.recommender.fusion import Evidence
from tagatlas.recommender.gather import gather_evidence, regather
from tagatlas.recommender.geo_score import one_query
from tagatlas.recommender.geolocator import Geolocator
from tagatlas.recommender.hashtags import HashtagRecommender
from tagatlas.recommender.tuning import tune_fusion

log = logging.getLogger(__name__)


def validation_split(posts: list[Post], val_fraction: float = 0.0, seed: int = 0) -> dict[str, list[Post]]:
    """{"fit": ..., "val": ...}: validation users are a salted-hash share of the users, `val_fraction` of them
    (0: automatic, 10 % of users but at least 300 users, at most 30 %)."""
    n_users = len({p.user_key for p in posts})
    fraction = val_fraction or min(0.3, max(0.1, 300 / max(n_users, 1)))
    return split_users(posts, {"fit": 1 - fraction, "val": fraction}, salt=f"val:{seed}")


class TrainingRun:
    """The state of one `fit`: the posts, their features by row, the place label of each located post."""

    def __init__(self, model, posts: list[Post], progress: bool, ckpt: Path | None):
        self.model, self.posts, self.progress, self.ckpt = model, posts, progress, ckpt
        self.cfg = model.config
        self.row = {p.id: i for i, p in enumerate(posts)}
        self.label_of: dict[str, str] = {}
        self.regions_all = None
        self.image_all: np.ndarray | None = None  # the image backbone's features of every post, when a source reads them
        self.cluster_info: dict = {}  # what clustering in training built, reported in train_info

    def run(self):
        m, cfg = self.model, self.cfg
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        m.fusion_ = None  # tuned below; until then evidence includes every source
        located, fit_posts, val_posts = self.split()
        self.label(located, fit_posts, val_posts)
        self.encode(fit_posts)
        head_val_loss = self.train_head(fit_posts, val_posts)
        queries = self.index_and_tune(fit_posts, val_posts)
        if cfg.refit:
            self.refit(fit_posts + val_posts)
        m.train_seconds_ = time.perf_counter() - started
        m.train_info_ = {"posts": len(self.posts), "located": len(located), "fit_posts": len(fit_posts), "val_posts": len(val_posts),
                         "val_queries": len(queries), "places": len(m.geolocator_), "tags": len(m.hashtags_),
                         "head_epochs": m.reader.head_.best_epoch_ if not cfg.refit else len(m.reader.head_.history_),
                         "head_val_loss": None if head_val_loss is None else round(float(head_val_loss), 5),
                         "seconds": round(m.train_seconds_, 1), **self.cluster_info}
        return m

    # -- steps ------------------------------------------------------------------------------------
    def split(self) -> tuple[list[Post], list[Post], list[Post]]:
        """(located posts, fit posts, validation posts): validation users are a salted-hash share of the users."""
        cfg, posts = self.cfg, self.posts
        located = [p for p in posts if p.has_location]
        if len(located) < 10:
            raise ValueError(f"training needs at least 10 posts with lat/lon, got {len(located)}")
        parts = validation_split(posts, cfg.val_fraction, cfg.seed)
        if not parts["val"] or not parts["fit"]:
            raise ValueError("too few users to hold out a validation split; give more posts or change --val-fraction")
        return located, parts["fit"], parts["val"]

    def label(self, located: list[Post], fit_posts: list[Post], val_posts: list[Post]) -> None:
        """The geolocator's place classes (P2C labels of the located posts) and the hashtag recommender's vocabulary,
        both learned from the fit posts."""
        m, cfg = self.model, self.cfg
        m.geolocator_ = Geolocator(cfg.min_place_posts).fit(located, fit_posts)
        self.label_of = dict(zip((p.id for p in located), m.geolocator_.labeler_.labels_))
        m.hashtags_ = HashtagRecommender(cfg.min_tag_posts, cfg.tag_match_k).fit(fit_posts)
        log.info("labels", extra={"places": len(m.geolocator_), "tags": len(m.hashtags_), "fit": len(fit_posts), "val": len(val_posts)})

    def encode(self, fit_posts: list[Post]) -> None:
        """Dense post vectors (encoder, imputed) and lexical n-grams (fitted on fit posts only) of every post."""
        m, cfg, posts, row = self.model, self.cfg, self.posts, self.row
        encoded = m.encoder.encode_posts(posts, progress=self.progress, parts=m.reader.wants_imputer(fit_posts),
                                         image_features=m.reads_image_features)
        self.image_all = encoded.image_features  # None unless a source reads image features
        m.reader.fit_imputer(encoded, np.array([row[p.id] for p in fit_posts], np.int64))
        self.dense_all = m.reader.impute(encoded)
        self.texts = [clean_text(mask_hashtags(p.text)) for p in posts]
        m.reader.lexical_ = LexicalFeaturizer(cfg.n_lexical_features).fit([self.texts[row[p.id]] for p in fit_posts])
        self.x_all = m.reader.lexical_.transform(self.texts)
        if cfg.head.coattn_dim > 0:  # region maps of every training image, read once
            if cfg.encoder.image != "none":
                cfg.head.coattn_region_dim = m.encoder.image.dim
            self.regions_all = m.reader.regions(posts)

    def train_head(self, fit_posts: list[Post], val_posts: list[Post]) -> float | None:
        """The head on fit posts, stopped early on validation posts; returns its best validation loss."""
        m, cfg, ckpt = self.model, self.cfg, self.ckpt
        fx, fd, fp, ft, fc = self.targets(fit_posts)
        self.fit_features = (fx, fd)
        val = self.targets(val_posts)
        m.reader.head_ = HeadTrainer(cfg.head).fit(fx, fd, fp, ft, len(m.geolocator_), len(m.hashtags_), val=val,
                                            progress=self.progress, coords=fc, checkpoint=ckpt / "head-fit.pt" if ckpt else None,
                                            texts=self.text_of(fit_posts), val_texts=self.text_of(val_posts),
                                            regions=self.regions_of(fit_posts), val_regions=self.regions_of(val_posts))
        return min((r["val_loss"] for r in m.reader.head_.history_ if "val_loss" in r), default=None)

    def index_and_tune(self, fit_posts: list[Post], val_posts: list[Post]) -> list[Post]:
        """Index the fit posts, replay the evaluation protocol on validation users (their first half indexed as
        history, the rest asked) to tune fusion, then index the rest of them. Returns the validation queries."""
        m, cfg = self.model, self.cfg
        m.attach_index(FaissIndex(m.index_dim, factory=cfg.index_factory), PostStore(":memory:", dim=m.index_dim))
        self.add(fit_posts, "fit", self.fit_features)
        history, queries = history_and_queries(val_posts)
        if history:
            self.add(history, "val-history")
        if cfg.cluster_k > 0:  # graph clusters of the indexed posts: cluster-mates are evidence fusion can weigh
            self.cluster()
        queries = [q for q in queries if q.has_location or q.hashtags]
        qx, qd, qp, *_ = self.targets(queries)
        features, regions = Features(qx, qd, self.text_of(queries), None, self.image_of(queries)), self.regions_of(queries)
        masked = [q.model_copy(update={"hashtags": []}) for q in queries]  # the posting form: hashtags not written yet
        ev, _ = gather_evidence(m, masked, features, regions)
        reads_tags = any("hashtags" in s.needs for s in m.sources) and any(q.hashtags for q in queries)
        ev_with_tags = gather_evidence(m, queries, features, regions)[0] if reads_tags else None  # the ingest setting
        ev, ev_with_tags, trust, geo = self.name_trust(ev, ev_with_tags, masked, queries, features.clean, qp)
        m.fusion_, m.tuning_ = tune_fusion(ev, queries, m.geolocator_.areas_, progress=self.progress, true_class=qp,
                                           hedge_tolerance=cfg.hedge_tolerance, sources=m.sources, ev_with_tags=ev_with_tags, geo=geo)
        if trust is not None:
            m.fusion_ = replace(m.fusion_, name_trust=trust["chosen"][0], name_position_trust=trust["chosen"][1])
            m.tuning_["name_trust"] = trust
        indexed = m.posts_.store.rowids([p.id for p in val_posts])
        self.add([p for p in val_posts if p.id not in indexed], "val")
        return queries

    def name_trust(self, ev: Evidence, ev_with_tags: Evidence | None, masked: list[Post], queries: list[Post], clean: list[str],
                   true_class: np.ndarray) -> tuple[Evidence, Evidence | None, dict | None, tuple | None]:
        """How place names are trusted (place_names.TRUST_SETTINGS), chosen on the validation queries: each setting's
        evidence with the geolocation tuned for it, kept where its weakest lead beats the setting kept so far by more
        than one query's worth (else the earlier setting, the first being the one models had before). Returns the
        chosen setting's evidence in both settings, what was tried, and the chosen setting's tuning (for `geo=`)."""
        m = self.model
        source = next((s for s in m.sources if isinstance(s, PlaceNames)), None)
        if source is None or not any(q.has_location for q in queries):
            return ev, ev_with_tags, None, None
        best, tried, n = None, {}, 0
        for setting in TRUST_SETTINGS:
            source.trial = setting
            cand = (regather(m, ev, masked, clean, source), None if ev_with_tags is None else regather(m, ev_with_tags, queries, clean, source))
            tuned = tune_fusion(cand[0], masked, m.geolocator_.areas_, progress=False, true_class=true_class,  # masked: no tag tuning
                                hedge_tolerance=self.cfg.hedge_tolerance, sources=m.sources, ev_with_tags=cand[1])
            geo = tuned[1]["geo"]
            tried[f"{setting[0]} {setting[1]}"] = {k: round(float(geo[k]), 6) for k in ("weakest_lead", "acc_at_161", "median_km")}
            n = geo["val_queries"]
            if best is None or geo["weakest_lead"] > best[0] + one_query(n):
                best = (geo["weakest_lead"], setting, cand, tuned)
        source.trial = best[1]
        log.info("name trust", extra={"chosen": list(best[1]), "tried": tried})
        return best[2][0], best[2][1], {"chosen": list(best[1]), "tried": tried, "val_queries": n}, best[3]

    def refit(self, train_posts: list[Post]) -> None:
        """The same recipe on all training users, for as many epochs as early stopping chose."""
        m, cfg, ckpt = self.model, self.cfg, self.ckpt
        ax, ad, ap, at, ac = self.targets(train_posts)
        m.reader.head_ = HeadTrainer(cfg.head).fit(ax, ad, ap, at, len(m.geolocator_), len(m.hashtags_), epochs=max(m.reader.head_.best_epoch_, 1),
                                            progress=self.progress, coords=ac, checkpoint=ckpt / "head-refit.pt" if ckpt else None,
                                            texts=self.text_of(train_posts), regions=self.regions_of(train_posts))
        if cfg.index_space == "head":
            self.reembed()
            if m.graph_ is not None:  # clustered on the vectors just replaced
                self.cluster()

    # -- helpers ----------------------------------------------------------------------------------
    def cluster(self) -> None:
        """Graph clusters of the indexed posts (cluster-mates are evidence fusion can weigh), timed."""
        m, started = self.model, time.perf_counter()
        m.cluster(k=self.cfg.cluster_k, resolution=self.cfg.cluster_resolution, progress=self.progress)
        self.cluster_info = {"clustered_posts": int(len(m.graph_.labels_)), "clusters": int(m.graph_.labels_.max()) + 1,
                             "cluster_seconds": round(time.perf_counter() - started, 1)}
        log.info("clustered", extra=self.cluster_info)

    def targets(self, ps: list[Post]):
        """(lexical features, dense vectors, place class, tag ids, lat/lon) of posts; no location: no place loss."""
        m = self.model
        idx = np.array([self.row[p.id] for p in ps])
        places = m.geolocator_.class_of([self.label_of.get(p.id) for p in ps], [p.lat if p.has_location else np.nan for p in ps],
                            [p.lon if p.has_location else np.nan for p in ps])
        places = np.where(places >= 0, places, -100)
        tags = [m.hashtags_.ids_of(p.hashtags) for p in ps]
        coords = np.array([(p.lat, p.lon) if p.has_location else (np.nan, np.nan) for p in ps], dtype=float).reshape(-1, 2)
        return self.x_all[idx], self.dense_all[idx], places, tags, coords

    def text_of(self, ps: list[Post]) -> list[str]:
        return [self.texts[self.row[p.id]] for p in ps]

    def image_of(self, ps: list[Post]) -> np.ndarray | None:
        """The image backbone's features of posts (None: not read)."""
        return None if self.image_all is None else self.image_all[[self.row[p.id] for p in ps]]

    def regions_of(self, ps: list[Post]):
        if self.regions_all is None:
            return None
        return self.regions_all.take(np.array([self.row[p.id] for p in ps], np.int64))

    def add(self, ps: list[Post], role: str, features=None) -> None:
        """Index training posts with their known place labels."""
        x, dense = features if features is not None else self.targets(ps)[:2]
        self.model.ingest.index_features(ps, x, dense, role=role, labels=[self.label_of.get(p.id) for p in ps], regions=self.regions_of(ps),
                                  image=self.image_of(ps))

    def reembed(self) -> None:
        """Every indexed post's vector in the refit head's space (index_space="head")."""
        m = self.model
        rowids, vectors = [], []
        for ids, stored, _ in m.posts_.store.iter_all():
            idx = np.array([self.row[s.id] for s in stored])
            z = m.reader.read(self.x_all[idx], self.dense_all[idx], [self.texts[i] for i in idx],
                           regions=None if self.regions_all is None else self.regions_all.take(idx))[0]
            rowids.extend(ids)
            vectors.append(z)
        m.posts_.replace_vectors(rowids, np.concatenate(vectors))
