"""Recommender: the retrieval-augmented model that places and tags posts (`TagAtlas`)."""

from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.head import HeadConfig, HeadTrainer
from tagatlas.recommender.lexical import LexicalFeaturizer
from tagatlas.recommender.metrics import geo_metrics, tag_metrics
from tagatlas.recommender.config import ConfigError, ModelConfig
from tagatlas.recommender.folder import ModelFolderError
from tagatlas.recommender.model import BatchResult, TagAtlas
from tagatlas.recommender.schema import Decisions, PlaceScore, Prediction, TagScore

__all__ = [
    "BatchResult", "ConfigError", "Decisions", "Evidence", "FusionParams", "HeadConfig", "HeadTrainer", "LexicalFeaturizer", "ModelConfig", "ModelFolderError",
    "PlaceScore", "Prediction", "TagAtlas", "TagScore", "geo_metrics", "tag_metrics",
]
