"""Encoders: texts and images → vectors, behind one narrow interface (`create_encoder` → `PostEncoder`)."""

from tagatlas.encoders.base import ImageEncoder, TextEncoder, l2_normalize
from tagatlas.encoders.cache import EmbeddingCache, default_cache_path
from tagatlas.encoders.factory import create_encoder
from tagatlas.encoders.gate import GateConfig, NoisyImageGate
from tagatlas.encoders.image import EfficientNetLiteImage, ImageLoadError, load_image
from tagatlas.encoders.impute import CrossModalImputer
from tagatlas.encoders.post import EncoderConfig, PostEncoder, PostVectors
from tagatlas.encoders.text import SentenceTransformerText, USEMultilingualText

__all__ = [
    "CrossModalImputer", "EfficientNetLiteImage", "EmbeddingCache", "EncoderConfig", "GateConfig", "NoisyImageGate", "ImageEncoder", "ImageLoadError", "PostEncoder", "PostVectors",
    "SentenceTransformerText", "TextEncoder", "USEMultilingualText", "create_encoder", "default_cache_path", "l2_normalize", "load_image",
]
