"""Graph clustering of posts when modalities are missing (seed 002).

Per-modality kNN graphs (FAISS), Leiden communities (python-igraph + leidenalg), confidence-weighted
late fusion vs early fusion, incremental assignment of new posts, and trend detection.
"""

from tagatlas.graph.cluster import cross_view_agreement, leiden, modularity, node_confidence, relabel
from tagatlas.graph.knn import knn_graph
from tagatlas.graph.multimodal import GraphClusterer, Modality
from tagatlas.graph.trends import Trend, detect_trends

__all__ = ["GraphClusterer", "Modality", "Trend", "cross_view_agreement", "detect_trends", "knn_graph", "leiden", "modularity", "node_confidence", "relabel"]
