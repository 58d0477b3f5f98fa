"""Graph clustering of posts when modalities are missing (seed 002).

Per-modality kNN graphs (FAISS), Leiden communities (python-igraph + leidenalg), confidence-weighted
late fusion vs early fusion, incremental assignment of new posts, and trend detection.
"""

from tagatlas.graph.cluster import leiden, modularity, node_confidence, relabel
from tagatlas.graph.knn import knn_graph
from tagatlas.graph.multimodal import GraphClusterer, Modality
from tagatlas.graph.trends import Trend, detect_trends

__all__ = ["GraphClusterer", "Modality", "Trend", "detect_trends", "knn_graph", "leiden", "modularity", "node_confidence", "relabel"]
