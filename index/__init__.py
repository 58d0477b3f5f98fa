"""Index: FAISS vectors (CPU, or GPU when present) plus the SQLite store of post metadata."""

from tagatlas.index.atomic import atomic_path, write_text_atomic
from tagatlas.index.faiss_index import FaissIndex, factory_for, gpu_available
from tagatlas.index.store import PostStore, StoredPost

__all__ = ["FaissIndex", "PostStore", "StoredPost", "atomic_path", "factory_for", "gpu_available", "write_text_atomic"]
