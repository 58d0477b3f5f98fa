"""Index: FAISS vectors (CPU, or GPU when present) plus the SQLite store of post metadata."""

from tagatlas.index.faiss_index import FaissIndex, factory_for, gpu_available, nprobe_for, use_blas_for
from tagatlas.index.gallery import ImageGallery
from tagatlas.index.rerank import reranked_search
from tagatlas.index.store import PostStore, StoredPost

__all__ = ["FaissIndex", "ImageGallery", "PostStore", "StoredPost", "factory_for", "gpu_available", "nprobe_for", "reranked_search", "use_blas_for"]
