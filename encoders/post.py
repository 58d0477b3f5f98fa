"""Posts → vectors: the text encoder, the image encoder, and the bridge from image into text space."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tagatlas.data import Post, clean_text, mask_hashtags
from tagatlas.encoders.base import ImageEncoder, TextEncoder, l2_normalize
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
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PostVectors:
    """Per-post vectors in the text space plus which modalities were present."""

    vectors: np.ndarray  # (n, dim), L2-normalised; zero rows for posts with neither modality
    has_text: np.ndarray  # (n,) bool
    has_image: np.ndarray  # (n,) bool
    image_errors: int = 0


class PostEncoder:
    """One object a recommender talks to: `encode_text`, `encode_images`, `encode_posts` (batched)."""

    def __init__(self, text: TextEncoder, image_factory, config: EncoderConfig):
        self.text = text
        self._image_factory = image_factory
        self._image: ImageEncoder | None = None
        self._bridge: np.ndarray | None = None
        self.config = config

    @property
    def dim(self) -> int:
        return self.text.dim

    @property
    def image(self) -> ImageEncoder:
        if self._image is None:
            if self._image_factory is None:
                raise ValueError("this model has no image encoder (image='none')")
            self._image = self._image_factory()
        return self._image

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
        if not isinstance(self.image, EfficientNetLiteImage):
            return l2_normalize(self.encode_images(images, progress=progress))
        if self._bridge is None:
            from torchvision.models import ResNet18_Weights  # metadata only: no download

            names = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
            self._bridge = self.text.encode([f"a photo of a {n}" for n in names])
        probs = self.image.class_probabilities(list(images))
        top = np.argsort(-probs, axis=1)[:, :10]
        weights = np.take_along_axis(probs, top, axis=1)
        vectors = np.einsum("nk,nkd->nd", weights, self._bridge[top])
        return l2_normalize(vectors)

    def encode_posts(self, posts: Sequence[Post], *, progress: bool = False, mask_tags: bool = True) -> PostVectors:
        """Text (hashtags masked by default) and image fused in the text space; missing modalities are normal."""
        n = len(posts)
        texts = [self.prepare_text(p.text, mask_tags=mask_tags) for p in posts]
        has_text = np.array([bool(t) for t in texts], dtype=bool)
        vectors = self.encode_text(texts, progress=progress)
        has_image = np.zeros(n, dtype=bool)
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
                image_vecs = self.images_to_text_space([img for _, img in readable], progress=progress)
                idx = np.array([i for i, _ in readable])
                vectors[idx] = vectors[idx] + image_vecs
                has_image[idx] = True
        return PostVectors(l2_normalize(vectors) * (has_text | has_image)[:, None], has_text, has_image, errors)

