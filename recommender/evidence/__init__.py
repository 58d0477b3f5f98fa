"""Evidence sources as plug-ins: one file per source, one registry line each (see `base.py`)."""

from tagatlas.recommender.evidence.base import (POST_FIELDS, BatchContext, EvidenceSource, SourceEvidence, create_sources, gather_all,
                                                register_source, registered_sources)
from tagatlas.recommender.evidence.cluster import ClusterMates

register_source(ClusterMates)

__all__ = ["POST_FIELDS", "BatchContext", "ClusterMates", "EvidenceSource", "SourceEvidence", "create_sources", "gather_all",
           "register_source", "registered_sources"]
