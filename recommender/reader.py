"""What a model reads from a batch of posts, before any index is searched: the encoders' output (dense vectors with a
missing side imputed, lexical n-grams, photo EXIF), image region maps, and one pass of the multi-task head (index
vectors, place and tag probabilities, regressed coordinates): the classifier's evidence.

`PostReader` owns the encoder, the lexical featurizer, the imputer and the head; `TrainingRun` fits them, the model
folder's weights and imputer parts hold them."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tagatlas.data import PhotoMetadata, Post, clean_text, mask_hashtags, read_photo_metadata
from tagatlas.encoders import PostEncoder, PostVectors, create_encoder, l2_normalize
from tagatlas.encoders.impute import CrossModalImputer, fill_missing_side, imputer_for
from tagatlas.recommender.coattention import RegionMaps
from tagatlas.recommender.config import ModelConfig


def cleaned(text: str | None) -> str:
    """What the lexical features and the text-tag matcher read: the whole cleaned text, hashtags masked."""
    return clean_text(mask_hashtags(text))


class Features(NamedTuple):
    """The encoders' output for a batch, computed once and read by everything after them."""

    lexical: object  # sparse (n, n_lexical_features)
    dense: np.ndarray  # (n, encoder dim)
    clean: list[str]  # each post's cleaned text, hashtags masked
    photos: list[PhotoMetadata | None]  # EXIF of each post's photo (None: no photo)
    image: np.ndarray | None = None  # (n, image dim) the image backbone's pooled features, zero rows: no image (None: not read)


class HeadReading(NamedTuple):
    """One pass of the head over a batch."""

    vectors: np.ndarray  # (n, index_dim) the posts' vectors in the index space
    place_probs: np.ndarray  # (n, C)
    tag_probs: np.ndarray  # (n, T)
    coords: np.ndarray | None  # (n, 2) regressed lat/lon (None: a head without regression)


class PostReader:
    """Encoder, lexical featurizer, imputer and head: from posts to features and the head's reading of them.
    `config` is the model's; the learned parts (`lexical_`, `imputer_`, `head_`) are set by training or loading."""

    def __init__(self, config: ModelConfig, encoder: PostEncoder | None = None):
        self.config = config
        self._encoder = encoder
        self.lexical_ = None  # LexicalFeaturizer
        self.imputer_: CrossModalImputer | None = None  # text ↔ image maps (None: too few training posts had both)
        self.head_ = None  # a fitted HeadTrainer

    @property
    def encoder(self) -> PostEncoder:
        """The post encoder (created from `config.encoder` on first use unless one was given)."""
        if self._encoder is None:
            self._encoder = create_encoder(self.config.encoder)
        return self._encoder

    @property
    def index_dim(self) -> int:
        return self.config.head.hidden if self.config.index_space == "head" else self.encoder.dim

    def features(self, posts: list[Post], progress: bool = False, photos: bool = True, image_features: bool = False) -> Features:
        """Encoder output for a batch; `photos=False` skips reading EXIF where no prediction follows (add, embed);
        `image_features=True` also keeps the image backbone's features (image retrieval reads them)."""
        encoded = self.encoder.encode_posts(posts, progress=progress, image_features=image_features)
        dense = self.impute(encoded)
        clean = [cleaned(p.text) for p in posts]
        photos = [read_photo_metadata(p.image) if photos and p.image and self.config.photo_metadata else None for p in posts]
        return Features(self.lexical_.transform(clean), dense, clean, photos, encoded.image_features if image_features else None)

    # -- imputation -----------------------------------------------------------------------------------
    def impute(self, pv: PostVectors) -> np.ndarray:
        """Post vectors with a missing side filled in from the present one (`fill_missing_side`)."""
        return fill_missing_side(self.imputer_, pv)

    def wants_imputer(self, posts: list[Post]) -> bool:
        """Whether enough posts have both a text and an image to learn imputation from (a cheap count, before encoding)."""
        pairs = sum(1 for p in posts if p.image and cleaned(p.text))
        return self.config.impute_min_pairs > 0 and pairs >= self.config.impute_min_pairs

    def fit_imputer(self, pv: PostVectors, rows: np.ndarray) -> None:
        """Learn text ↔ image maps on the posts at `rows` of `pv` that have both sides (None: too few pairs)."""
        self.imputer_ = imputer_for(pv, rows, self.config.impute_min_pairs, self.config.seed)

    # -- the head -------------------------------------------------------------------------------------
    def regions(self, posts: list[Post]) -> RegionMaps:
        """Image region maps of the posts that have one (read by a head with co-attention)."""
        if self.config.encoder.image == "none":
            return RegionMaps.empty(self.config.head.coattn_region_dim)
        return RegionMaps(*self.encoder.encode_regions(posts))

    @property
    def reads_regions(self) -> bool:
        return self.head_.reads_regions

    def read(self, x, dense, clean: list[str] | None = None, posts: list[Post] | None = None,
             regions: RegionMaps | None = None) -> HeadReading:
        """The head's pass over features; `clean`: the posts' cleaned texts, read by a head with a character branch
        or co-attention; `regions` (computed from `posts` when not given) the image region maps co-attention reads."""
        head = self.head_
        if head.reads_text and clean is None and posts is not None:
            clean = [cleaned(p.text) for p in posts]
        if head.reads_regions and regions is None:
            if posts is None:
                raise ValueError("this model's head reads image regions: give the posts")
            regions = self.regions(posts)
        out = head.predict(x, dense, texts=clean if head.reads_text else None, regions=regions if head.reads_regions else None)
        return HeadReading(l2_normalize(out.z) if self.config.index_space == "head" else dense, out.place_probs, out.tag_probs, out.coords)
