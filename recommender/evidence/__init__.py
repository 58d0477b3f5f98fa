"""Evidence sources as plug-ins: one file per source, one registry line each (see `base.py`)."""

from tagatlas.recommender.evidence.base import (POST_FIELDS, BatchContext, EvidenceSource, SourceEvidence, create_sources, gather_all,
                                                register_source, registered_sources)
from tagatlas.recommender.evidence.cluster import ClusterMates
from tagatlas.recommender.evidence.image_neighbours import ImageNeighbours
from tagatlas.recommender.evidence.place_names import PlaceNames
from tagatlas.recommender.evidence.tag_places import TagPlaces
from tagatlas.recommender.evidence.user_places import UserPlaces

register_source(ClusterMates)
register_source(TagPlaces)
register_source(PlaceNames)
register_source(ImageNeighbours)
register_source(UserPlaces)

__all__ = ["POST_FIELDS", "BatchContext", "ClusterMates", "EvidenceSource", "ImageNeighbours", "PlaceNames", "SourceEvidence", "TagPlaces", "UserPlaces", "create_sources", "gather_all",
           "register_source", "registered_sources"]
