"""Recommender: the retrieval-augmented model that places and tags posts (`TagAtlas`, composed of a `PostIndex`, a
`Geolocator` and a `HashtagRecommender`; `Predictor` predicts batch after batch, `Ingest` adds posts online)."""

from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.head import HeadConfig, HeadTrainer
from tagatlas.recommender.lexical import LexicalFeaturizer
from tagatlas.recommender.metrics import geo_metrics, tag_metrics
from tagatlas.recommender.config import ConfigError, ModelConfig
from tagatlas.recommender.folder import ModelFolderError
from tagatlas.recommender.geolocator import Geolocator
from tagatlas.recommender.hashtags import HashtagRecommender
from tagatlas.recommender.ingest import Ingest, PendingAdd
from tagatlas.recommender.model import TagAtlas
from tagatlas.recommender.predictor import BatchResult, Predictor
from tagatlas.recommender.post_index import PostIndex
from tagatlas.recommender.schema import Decisions, PlaceScore, Prediction, TagScore

__all__ = [
    "BatchResult", "ConfigError", "Decisions", "Evidence", "FusionParams", "Geolocator", "HashtagRecommender", "HeadConfig", "HeadTrainer", "Ingest", "LexicalFeaturizer", "ModelConfig", "ModelFolderError",
    "PendingAdd", "PlaceScore", "PostIndex", "Prediction", "Predictor", "TagAtlas", "TagScore", "geo_metrics", "tag_metrics",
]
