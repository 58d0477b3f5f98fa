"""TagAtlas v1: a retrieval-augmented recommender of places and hashtags for posts.

fit → a trained head (places, tags) + a FAISS index of post vectors + a SQLite store; predict →
neighbour votes, classifier and the user's own similar past posts fused with weights learned on a
validation split of users. A model is a folder: `save` writes it atomically, `load` restores it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from tagatlas.data import (P2CLabeler, PhotoMetadata, Post, city, clean_text, geodesic_medoid, hashtag_words, history_and_queries,
                           mask_hashtags, read_photo_metadata, split_users)
from tagatlas.encoders import PostEncoder, PostVectors, create_encoder, l2_normalize
from tagatlas.encoders.impute import CrossModalImputer
from tagatlas.core import __version__, fsync_dir, write_text_atomic
from tagatlas.index import FaissIndex, PostStore
from tagatlas.recommender.fusion import (Evidence, FusionParams, PlaceAreas, calibrate, coordinates, decide_place,
                                         decision_confidence, hedge_coordinates, label_in_area, place_distribution,
                                         select_tags, tag_scores)
from tagatlas.recommender.clusters import ClusterProfiles
from tagatlas.recommender.coattention import RegionMaps
from tagatlas.recommender.evidence import BatchContext, EvidenceSource, create_sources, gather_all, photo_gps
from tagatlas.recommender.evidence.habits import user_habits
from tagatlas.recommender.evidence.neighbours import retrieve
from tagatlas.recommender.evidence.photo_gps import photo_positions
from tagatlas.recommender.evidence.vocabulary import BatchVocabulary
from tagatlas.recommender.evidence.written_tags import written_tags
from tagatlas.recommender.config import ConfigError, ModelConfig
from tagatlas.recommender.head import HeadTrainer
from tagatlas.recommender.lexical import LexicalFeaturizer
from tagatlas.recommender.neighbours import NeighbourTable
from tagatlas.recommender.post_index import PostIndex
from tagatlas.recommender.schema import PHOTO_COARSE_RADIUS_KM, Decisions, PlaceScore, Prediction, TagScore
from tagatlas.recommender.tag_match import TagMatcher
from tagatlas.recommender.tuning import tune_fusion
from tagatlas.recommender.weights import WEIGHTS_FILE, WeightsError, load_weights, save_weights

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: weights in safetensors (1 pickled them in weights.pt)


def file_fingerprint(path: Path) -> str:
    """A short content hash naming a model version (written into enriched documents and API answers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _clean(text: str | None) -> str:
    """What the lexical features and the text-tag matcher read: the whole cleaned text, hashtags masked."""
    return clean_text(mask_hashtags(text))


def _rounded(a: np.ndarray, digits: int = 6) -> list[list[float]]:
    """Rows of Python floats rounded to `digits` decimals (in float64: float32 inputs would print as 0.07999999821)."""
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


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


class ModelFolderError(ValueError):
    """A model folder is missing, incomplete, damaged or from an incompatible version."""


@dataclass(frozen=True)
class PartSpec:
    """One part of a model folder: where it lies inside the folder, the version of its format, whether required."""

    path: str
    version: int
    required: bool = True


# The parts a model folder may name in model.json's "parts", as sentence-transformers' modules.json names modules.
PARTS: dict[str, PartSpec] = {
    "weights": PartSpec(WEIGHTS_FILE, 1), "index": PartSpec("index.faiss", 1), "store": PartSpec("store.sqlite", 1),
    "graph": PartSpec("graph", 1, required=False), "tags": PartSpec("tags", 1, required=False),
    "imputer": PartSpec("imputer", 1, required=False),
}


def read_manifest(folder: Path) -> tuple[dict, dict[str, Path]]:
    """model.json and the path of each part it names, after refusing other formats, unknown parts, newer part
    versions and missing files, each with a message saying what to do."""
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a model folder (run `tagatlas train --out {folder}` first)")
    try:
        state = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{folder}: incomplete model folder, missing model.json") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{folder}/model.json: unreadable ({exc})") from exc
    retrain = f"retrain it with `tagatlas train --data POSTS --out {folder}`"
    found = state.get("format_version") if isinstance(state, dict) else None
    if found != FORMAT_VERSION:
        older = " (format 1 pickled its weights in weights.pt, which can run code when opened)" if found == 1 else ""
        raise ModelFolderError(f"{folder}: model format {found} is not {FORMAT_VERSION}{older}; {retrain}")
    named = state.get("parts")
    if not isinstance(named, dict):
        raise ModelFolderError(f"{folder}/model.json: no \"parts\" manifest; {retrain}")
    unknown = sorted(set(named) - set(PARTS))
    if unknown:
        raise ModelFolderError(f"{folder}/model.json names unknown part(s) {', '.join(map(repr, unknown))} (this TagAtlas "
                               f"{__version__} knows {', '.join(PARTS)}): written by a newer TagAtlas? Upgrade, or {retrain}")
    paths: dict[str, Path] = {}
    for name, spec in PARTS.items():
        entry = named.get(name)
        if entry is None:
            if spec.required:
                raise ModelFolderError(f"{folder}/model.json: the required part {name!r} is not named; {retrain}")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("version"), int):
            raise ModelFolderError(f"{folder}/model.json: part {name!r} needs a path and a version, got {entry!r}")
        if entry["version"] > spec.version:
            raise ModelFolderError(f"{folder}: part {name!r} is version {entry['version']}, this TagAtlas reads up to {spec.version}")
        path = (folder / entry["path"]).resolve()
        if folder.resolve() not in path.parents:
            raise ModelFolderError(f"{folder}/model.json: part {name!r} points outside the folder ({entry['path']!r})")
        if not path.exists():
            raise ModelFolderError(f"{folder}: incomplete model folder, missing {entry['path']} (part {name!r})")
        paths[name] = path
    return state, paths


def _load_part(folder: Path, parts: dict[str, Path], name: str, load):
    """An optional part loaded by `load(path)`; a damaged one is a ModelFolderError naming it."""
    try:
        return load(parts[name])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFolderError(f"{folder}/{parts[name].name}: unreadable part {name!r} ({type(exc).__name__}: {exc})") from exc


class TagAtlas:
    """fit / predict / add / delete / save / load."""

    def __init__(self, config: ModelConfig | None = None, encoder: PostEncoder | None = None):
        self.config = config or ModelConfig()
        self._encoder = encoder
        self.graph_ = None  # a GraphClusterer once clustered (in training, or by `tagatlas cluster`)
        self.tag_matcher_: TagMatcher | None = None  # indexed tags embedded as words (None: a model saved before it existed)
        self.imputer_: CrossModalImputer | None = None  # text ↔ image maps (None: too few training posts had both)
        self.fingerprint_: str | None = None  # content hash of the saved weights (None until saved or loaded)

    # -- parts ----------------------------------------------------------------------------------
    @property
    def sources(self) -> list[EvidenceSource]:
        """The plug-in evidence sources the config names (`ModelConfig.evidence`), in order."""
        names = tuple(self.config.evidence)
        if getattr(self, "_sources", (None, None))[0] != names:
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
        """Post vectors with a missing text or image side filled in from the present one (seed 002): the
        imputed side is added in proportion to its map's confidence, as a present image is added by its gate
        weight. Unchanged without an imputer (too few training posts had both modalities)."""
        if self.imputer_ is None:
            return pv.vectors
        single = pv.has_text != pv.has_image
        if not single.any():
            return pv.vectors
        v = pv.vectors[single]
        filled = self.imputer_.transform({"text": (v, pv.has_text[single]), "image": (v, pv.has_image[single])})
        extra = np.zeros_like(v)
        for name, present in (("text", pv.has_text[single]), ("image", pv.has_image[single])):
            vectors, confidence = filled[name]
            extra += np.where(present[:, None], 0.0, vectors * confidence[:, None])
        out = pv.vectors.copy()
        out[single] = l2_normalize(v + extra)
        return out

    def _wants_imputer(self, posts: list[Post]) -> bool:
        """Whether enough posts have both a text and an image to learn imputation from (a cheap count, before encoding)."""
        pairs = sum(1 for p in posts if p.image and clean_text(mask_hashtags(p.text)))
        return self.config.impute_min_pairs > 0 and pairs >= self.config.impute_min_pairs

    def _fit_imputer(self, pv: PostVectors, rows: np.ndarray) -> None:
        """Learn text ↔ image maps on the posts at `rows` of `pv` (encoded with `parts=True`) that have both sides."""
        ok = pv.has_text[rows] & pv.has_image[rows]  # unreadable images are missing, not pairs
        if self.config.impute_min_pairs <= 0 or pv.text_part is None or ok.sum() < self.config.impute_min_pairs:
            self.imputer_ = None
            return
        self.imputer_ = CrossModalImputer(min_pairs=self.config.impute_min_pairs, seed=self.config.seed).fit(
            {"text": (l2_normalize(pv.text_part[rows]), ok), "image": (pv.image_part[rows], ok)})
        if not self.imputer_.maps_:
            self.imputer_ = None
        log.info("cross-modal imputer", extra={"pairs": int(ok.sum()), "confidence": {f"{t}<-{s}": round(c, 3) for (t, s), c in
                                                                                      (self.imputer_.confidence_.items() if self.imputer_ else [])}})

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
    def _label_places(self, located: list[Post], fit_posts: list[Post]) -> dict[str, str]:
        """P2C labels for every located post; the classes are places with enough fit posts, at their medoid."""
        cfg = self.config
        self.labeler_ = P2CLabeler().fit([p.lat for p in located], [p.lon for p in located])
        label_of = dict(zip((p.id for p in located), self.labeler_.labels_))
        members: dict[str, list[Post]] = defaultdict(list)
        for p in fit_posts:
            if p.id in label_of:
                members[label_of[p.id]].append(p)
        self.places_ = sorted(pl for pl, ms in members.items() if len(ms) >= cfg.min_place_posts)
        if not self.places_:
            self.places_ = [max(members, key=lambda pl: len(members[pl]))]
        coords = []
        for pl in self.places_:
            ms = members[pl]
            m = geodesic_medoid([p.lat for p in ms], [p.lon for p in ms])
            coords.append((ms[m].lat, ms[m].lon))
        self.place_coords_ = np.array(coords)
        self.place_names_ = [city(pl).label for pl in self.places_]
        return label_of

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
        cfg = self.config
        if cfg.index_space not in ("head", "encoder"):
            raise ValueError(f"index_space={cfg.index_space!r}: use 'head' or 'encoder'")
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        self.fusion_ = None  # tuned below; until then evidence includes every source
        located = [p for p in posts if p.has_location]
        if len(located) < 10:
            raise ValueError(f"training needs at least 10 posts with lat/lon, got {len(located)}")
        n_users = len({p.user_key for p in posts})
        val_fraction = cfg.val_fraction or min(0.3, max(0.1, 300 / max(n_users, 1)))
        parts = split_users(posts, {"fit": 1 - val_fraction, "val": val_fraction}, salt=f"val:{cfg.seed}")
        fit_posts, val_posts = parts["fit"], parts["val"]
        if not val_posts or not fit_posts:
            raise ValueError("too few users to hold out a validation split; give more posts or change --val-fraction")

        label_of = self._label_places(located, fit_posts)
        tag_counts = Counter(t for p in fit_posts for t in p.hashtags)
        self.tags_ = sorted(t for t, c in tag_counts.items() if c >= cfg.min_tag_posts)
        self._init_places()
        log.info("labels", extra={"places": len(self.places_), "tags": len(self.tags_), "fit": len(fit_posts), "val": len(val_posts)})

        # Features: dense post vectors (encoder) and lexical n-grams (fitted on fit posts only).
        row = {p.id: i for i, p in enumerate(posts)}
        encoded = self.encoder.encode_posts(posts, progress=progress, parts=self._wants_imputer(fit_posts))
        self._fit_imputer(encoded, np.array([row[p.id] for p in fit_posts], np.int64))
        dense_all = self._impute(encoded)
        texts = [_clean(p.text) for p in posts]
        self.lexical_ = LexicalFeaturizer(cfg.n_lexical_features).fit([texts[row[p.id]] for p in fit_posts])
        x_all = self.lexical_.transform(texts)

        def targets(ps):
            idx = np.array([row[p.id] for p in ps])
            places = self.class_of([label_of.get(p.id) for p in ps], [p.lat if p.has_location else np.nan for p in ps],
                                    [p.lon if p.has_location else np.nan for p in ps])
            places = np.where(places >= 0, places, -100)  # no location: no place loss
            tags = [[self.tag_index_[t] for t in p.hashtags if t in self.tag_index_] for p in ps]
            coords = np.array([(p.lat, p.lon) if p.has_location else (np.nan, np.nan) for p in ps], dtype=float).reshape(-1, 2)
            return x_all[idx], dense_all[idx], places, tags, coords

        text_of = lambda ps: [texts[row[p.id]] for p in ps]  # noqa: E731
        if cfg.head.coattn_dim > 0:  # region maps of every training image, read once
            if cfg.encoder.image != "none":
                cfg.head.coattn_region_dim = self.encoder.image.dim
            regions_all = self._regions(posts)
            regions_of = lambda ps: regions_all.take(np.array([row[p.id] for p in ps], np.int64))  # noqa: E731
        else:
            regions_of = lambda ps: None  # noqa: E731
        fx, fd, fp, ft, fc = targets(fit_posts)
        vx, vd, vp, vt, vc = targets(val_posts)
        self.head_ = HeadTrainer(cfg.head).fit(fx, fd, fp, ft, len(self.places_), len(self.tags_), val=(vx, vd, vp, vt, vc),
                                               progress=progress, coords=fc, checkpoint=ckpt / "head-fit.pt" if ckpt else None,
                                               texts=text_of(fit_posts), val_texts=text_of(val_posts),
                                               regions=regions_of(fit_posts), val_regions=regions_of(val_posts))
        head_val_loss = min((r["val_loss"] for r in self.head_.history_ if "val_loss" in r), default=None)

        # Index the fit posts, then replay the evaluation protocol on validation users to tune fusion.
        self.posts_ = self._new_post_index(FaissIndex(self.index_dim, factory=cfg.index_factory), PostStore(":memory:", dim=self.index_dim))
        self.tag_matcher_ = TagMatcher() if cfg.tag_match_k > 0 else None  # filled as posts are indexed
        self._add_features(fit_posts, fx, fd, role="fit", labels=[label_of.get(p.id) for p in fit_posts], regions=regions_of(fit_posts))
        history, queries = history_and_queries(val_posts)
        if history:
            hx, hd, *_ = targets(history)
            self._add_features(history, hx, hd, role="val-history", labels=[label_of.get(p.id) for p in history],
                               regions=regions_of(history))
        if cfg.cluster_k > 0:  # graph clusters of the indexed posts: cluster-mates are evidence fusion can weigh
            self._cluster_in_fit(progress)
        queries = [q for q in queries if q.has_location or q.hashtags]
        qx, qd, qp, *_ = targets(queries)
        ev, _ = self._evidence(queries, qx, qd, text_of(queries), regions=regions_of(queries))
        self.fusion_, self.tuning_ = tune_fusion(ev, queries, self.areas_, progress=progress, true_class=qp,
                                                 hedge_tolerance=cfg.hedge_tolerance, sources=self.sources)
        indexed = self.store_.rowids([p.id for p in val_posts])
        rest = [p for p in val_posts if p.id not in indexed]
        rx, rd, *_ = targets(rest)
        self._add_features(rest, rx, rd, role="val", labels=[label_of.get(p.id) for p in rest], regions=regions_of(rest))

        if cfg.refit:  # same recipe, all training users, as many epochs as early stopping chose
            ax, ad, ap, at, ac = targets(fit_posts + val_posts)
            self.head_ = HeadTrainer(cfg.head).fit(ax, ad, ap, at, len(self.places_), len(self.tags_),
                                                   epochs=max(self.head_.best_epoch_, 1), progress=progress, coords=ac,
                                                   checkpoint=ckpt / "head-refit.pt" if ckpt else None,
                                                   texts=text_of(fit_posts + val_posts), regions=regions_of(fit_posts + val_posts))
            if cfg.index_space == "head":
                self._reembed(x_all, dense_all, row, texts, regions_of(posts))
                if self.graph_ is not None:  # clustered on the vectors just replaced
                    self._cluster_in_fit(progress)
        self.train_seconds_ = time.perf_counter() - started
        self.train_info_ = {"posts": len(posts), "located": len(located), "fit_posts": len(fit_posts), "val_posts": len(val_posts),
                            "val_queries": len(queries), "places": len(self.places_), "tags": len(self.tags_),
                            "head_epochs": self.head_.best_epoch_ if not cfg.refit else len(self.head_.history_),
                            "head_val_loss": None if head_val_loss is None else round(float(head_val_loss), 5),
                            "seconds": round(self.train_seconds_, 1), **getattr(self, "_cluster_info", {})}
        return self

    def _cluster_in_fit(self, progress: bool) -> None:
        started = time.perf_counter()
        self.cluster(k=self.config.cluster_k, resolution=self.config.cluster_resolution, progress=progress)
        self._cluster_info = {"clustered_posts": int(len(self.graph_.labels_)), "clusters": int(self.graph_.labels_.max()) + 1,
                              "cluster_seconds": round(time.perf_counter() - started, 1)}
        log.info("clustered", extra=self._cluster_info)

    def _reembed(self, x_all, dense_all, row, texts, regions: RegionMaps | None) -> None:
        rowids, vectors = [], []
        for ids, stored, _ in self.store_.iter_all():
            idx = np.array([row[s.id] for s in stored])
            z = self._vectors(x_all[idx], dense_all[idx], [texts[i] for i in idx],
                              regions=None if regions is None else regions.take(idx))[0]
            rowids.extend(ids); vectors.append(z)
        self.posts_.replace_vectors(rowids, np.concatenate(vectors))

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
        """Top-k (similarities, rowids) among the indexed posts (`PostIndex.search`)."""
        return self.posts_.search(queries, k)

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

    def _new_post_index(self, index: FaissIndex, store: PostStore) -> PostIndex:
        return PostIndex(index, store, self.class_of, self.tags_, rerank=self.config.index_rerank, factory=self.config.index_factory)

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
        ev = Evidence(place_probs, tag_probs, nb.sims, nb.cls, nb.lat, nb.lon, nb.ids, remap.neighbours(nb.tags, nb.kept_extra, self.config.k_max),
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
        if matcher is not None and len(tag_counts) and not getattr(self, "_matcher_synced", False):
            missing = [t for t in tag_counts if t not in matcher]
            if missing:
                matcher.extend(missing, self.encoder.text)
            self._matcher_synced = True
        return matcher

    def _indexed_tag_mask(self, matcher: TagMatcher, tag_counts: dict[str, int]) -> np.ndarray:
        """Which of the matcher's tags some indexed post still carries; rebuilt only after adds and deletes."""
        key = (len(matcher), self.posts_.tags_version)
        cached = getattr(self, "_tag_mask", None)
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
        """Fusion and every decision for a batch, as arrays: what `_predictions` turns into objects and bulk
        enrichment writes directly (`Decisions.records`)."""
        p = params or self.fusion_
        raw = place_distribution(ev, p)
        chosen = decide_place(raw, p, self.areas_)  # decided as tuned; probabilities reported calibrated
        probs = calibrate(raw, p.place_temperature)
        confidence = decision_confidence(probs, chosen, p, self.areas_)
        coords, hedged = hedge_coordinates(coordinates(ev, p, raw, self.place_coords_, chosen), confidence, ev, probs, p, self.place_coords_)
        radius = p.radius_for(confidence)
        label = label_in_area(probs, chosen, p, self.areas_)
        source = np.where(hedged, "hedge", "place").astype(object)
        probs, label, coords, radius, source = photo_gps.overrule(ev.photo_gps, self.areas_, self.place_coords_, probs, label, coords,
                                                                  radius, source, PHOTO_COARSE_RADIUS_KM)
        scores, parts = tag_scores(ev, p)
        order, n_keep = select_tags(scores, p, n_candidates, tags=ev.tags, parts=parts)
        clusters = ev.assigned_clusters[0] if ev.assigned_clusters is not None else np.full(len(label), -1)
        return Decisions(label=label, probs=probs, coords=coords, radius=np.round(radius, 1), source=source, order=order,
                         scores=np.take_along_axis(scores, order, 1), n_keep=n_keep,
                         parts={name: np.take_along_axis(v, order, 1) for name, v in parts.items()}, tags=ev.tags,
                         places=self.places_, place_names=self.place_names_, photo_gps=ev.photo_gps, clusters=np.asarray(clusters))

    def _predictions(self, posts, ev: Evidence, n_candidates: int, params: FusionParams | None = None) -> list[Prediction]:
        d = self._decide(ev, n_candidates, params)
        probs = d.probs
        # Everything per post below reads plain Python lists taken from the arrays in one go.
        n_top = min(6, probs.shape[1])
        top = np.argpartition(-probs, n_top - 1, axis=1)[:, :n_top] if n_top < probs.shape[1] else np.tile(np.arange(n_top), (len(probs), 1))
        top_p = np.take_along_axis(probs, top, 1)
        top = np.take_along_axis(top, np.lexsort((top, -top_p), axis=1), 1).tolist()  # by probability, then class index
        label_l = d.label.tolist()
        cand_parts = {name: _rounded(v) for name, v in d.parts.items()}
        order_l, scores_l = d.order.tolist(), _rounded(d.scores)
        positive = (d.scores > 0).sum(axis=1).tolist()  # scores are ranked: candidates stop at the first score <= 0
        coords_l, radius_l, keep_l = d.coords.tolist(), d.radius.tolist(), d.n_keep.tolist()
        source_l = d.source.tolist()

        def place(i, c):
            lat, lon = self._place_coords_list[c]
            return PlaceScore(place=self.places_[c], name=self.place_names_[c], prob=round(float(probs[i, c]), 6), lat=lat, lon=lon)

        preds = []
        for i, post in enumerate(posts):
            # The decision's place first (the most probable place in the chosen area), then the most probable others.
            first = label_l[i]
            places = [place(i, first)] + [place(i, c) for c in top[i] if c != first][:4]
            carriers: dict[int, list[str]] = {}
            for ids, tag_lists in ((ev.nb_ids[i], ev.nb_tags[i]), (ev.habit_ids[i], ev.habit_tags[i])):
                found: dict[int, list[str]] = {}
                for pid, tl in zip(ids, tag_lists):
                    for t in tl:
                        found.setdefault(t, []).append(pid)
                for t, pids in found.items():
                    carriers.setdefault(t, []).extend(pids[:3])
            candidates = []
            for j in range(positive[i]):
                t = order_l[i][j]
                candidates.append(TagScore(
                    tag=ev.tags[t], score=scores_l[i][j], from_posts=carriers.get(t, []),
                    sources={name: v[i][j] for name, v in cand_parts.items() if v[i][j] > 0}))
            preds.append(Prediction(
                post_id=post.id, places=places, lat=coords_l[i][0], lon=coords_l[i][1], radius_km=radius_l[i], location_source=source_l[i],
                hashtags=candidates[: keep_l[i]], hashtag_candidates=candidates, neighbours=ev.nb_ids[i][:5]))
            if source_l[i] == "photo_gps":
                preds[-1].hold_photo_gps(ev.photo_gps[i, 0], ev.photo_gps[i, 1])
        return preds

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder atomically: a crash leaves the previous folder (or none) intact. model.json names
        every part and where it lies (`PARTS`), so loading never guesses file names."""
        folder = Path(folder).resolve()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            save_weights(tmp / WEIGHTS_FILE, self.head_, self.lexical_)
            self.fingerprint_ = file_fingerprint(tmp / WEIGHTS_FILE)
            self.store_.save_copy(tmp / "store.sqlite")
            self.posts_.save_index(tmp)
            optional = {"graph": self.graph_, "tags": self.tag_matcher_, "imputer": self.imputer_}
            for name, part in optional.items():
                if part is not None:
                    part.save(tmp / PARTS[name].path)
            parts = {name: {"path": spec.path, "version": spec.version} for name, spec in PARTS.items()
                     if name not in optional or optional[name] is not None}
            state = {
                "format_version": FORMAT_VERSION, "tagatlas_version": __version__, "parts": parts,
                "config": self.config.to_dict(), "fusion": self.fusion_.to_dict(), "tuning": self.tuning_,
                "places": self.places_, "place_names": self.place_names_, "place_coords": self.place_coords_.tolist(),
                "tags": self.tags_, "labeler": self.labeler_.to_dict(), "train_seconds": self.train_seconds_,
                "train_info": getattr(self, "train_info_", {}),
            }
            write_text_atomic(tmp / "model.json", json.dumps(state, ensure_ascii=False))
            fsync_dir(tmp)
            old = None
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
                os.replace(folder, old)
            os.replace(tmp, folder)
            fsync_dir(folder.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

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

            self.graph_ = _load_part(folder, parts, "graph", GraphClusterer.load)
        if "tags" in parts:
            self.tag_matcher_ = _load_part(folder, parts, "tags", TagMatcher.load)
        if "imputer" in parts:
            self.imputer_ = _load_part(folder, parts, "imputer", CrossModalImputer.load)
        self._init_places()
        return self
