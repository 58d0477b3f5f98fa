"""The running service: the model with its lock, the background slot, the micro-batchers and the metrics.

Suggestions (someone is typing) run beside everything; searches, ingests, enrichments and deletes take turns on
`background_slots` slots. Reads share the model; ingest and delete write under the write lock, held for the index
and store writes alone (the encoders run before it)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tagatlas.api.batching import MicroBatcher
from tagatlas.api.images import ImageFetcher
from tagatlas.api.concurrency import ReadWriteLock
from tagatlas.api.security import configured_keys
from tagatlas.core.settings import Settings
from tagatlas.data import Post
from tagatlas.recommender import Prediction, TagAtlas
from tagatlas.recommender.search import SearchResult

log = logging.getLogger(__name__)


class Service:
    """Everything the routes share, created once per app (`create_app`) and opened by its lifespan."""

    def __init__(self, model_dir: str | os.PathLike, settings: Settings, api_keys: dict[str, str | None] | set[str] | None,
                 background_slots: int):
        if background_slots < 1:
            raise ValueError(f"background_slots must be 1 or more, not {background_slots!r}")
        self.model_dir = Path(model_dir)
        self.settings = settings
        self.keys = configured_keys(settings) if api_keys is None else (dict(api_keys) if isinstance(api_keys, dict)
                                                                         else dict.fromkeys(api_keys))
        self.model: TagAtlas | None = None
        self.fetcher = ImageFetcher(settings.image_prefixes, settings.image_fetch_private, timeout_s=settings.image_fetch_timeout,
                                    slots=settings.image_fetch_slots)
        self.fetch_limiter = None  # threads of their own for image fetches (created in `open`, inside the event loop)
        self.searcher = None  # OpenSearch backend (TAGATLAS_SEARCH_BACKEND=opensearch)
        self.lock = ReadWriteLock()  # concurrent suggest/search; ingest and delete one at a time, alone
        self.background = threading.BoundedSemaphore(background_slots)
        self.registry = CollectorRegistry()
        self.requests = Counter("tagatlas_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("tagatlas_request_seconds", "request latency", ["route"], registry=self.registry)
        self.posts_gauge = Gauge("tagatlas_indexed_posts", "posts in the index", registry=self.registry)
        batch_sizes = Histogram("tagatlas_suggest_batch_size", "posts per batched model call", buckets=(1, 2, 4, 8, 16, 32),
                                registry=self.registry)
        self.suggest_batcher = MicroBatcher(self._predict_batch, max_batch=32, on_batch=batch_sizes.observe)
        self.embed_batcher = MicroBatcher(self._embed_batch, max_batch=32)
        self.enrich_batcher = MicroBatcher(self._enrich_batch, max_batch=32)

    # -- life -------------------------------------------------------------------------------------
    def open(self) -> None:
        import anyio

        self.fetch_limiter = anyio.CapacityLimiter(self.settings.image_fetch_slots)
        model = TagAtlas.load(self.model_dir, writable_store=True)
        model.encoder.set_threads(self.settings.encoder_threads)
        model.warm_up()
        self.model = model
        self.posts_gauge.set(model.posts_.store.count())
        if self.settings.search_backend == "opensearch":
            from tagatlas.plugin import Connection, OpenSearchSearch

            self.searcher = OpenSearchSearch(Connection.from_env().client(), self.settings.opensearch_index, model)
        log.info("serving", extra={"model": str(self.model_dir), "posts": model.posts_.store.count(), "writes": bool(self.keys)})

    async def close(self) -> None:
        for batcher in (self.suggest_batcher, self.embed_batcher, self.enrich_batcher):
            await batcher.close()
        with self.lock.write():
            self.model.posts_.save_serving_index(self.model_dir)

    # -- batched model calls ------------------------------------------------------------------------
    def _predict_batch(self, posts: list[Post]) -> list[Prediction]:
        with self.lock.read():
            return self.model.predict(posts)

    def _embed_batch(self, posts: list[Post]) -> list:
        with self.background, self.lock.read():
            return list(self.model.embed(posts))

    def _enrich_batch(self, posts: list[Post]) -> list:
        with self.background, self.lock.read():
            preds, vectors = self.model.predictor.with_vectors(posts)
        return list(zip(preds, vectors))

    # -- work the routes hand over ------------------------------------------------------------------
    def search(self, q: str, user: str | None, k: int, coarse: bool, vector) -> SearchResult:
        if self.searcher is not None:  # OpenSearch backend: the cluster holds the posts; the local model only embeds
            from opensearchpy.exceptions import OpenSearchException

            try:
                return self.searcher.search(q, user_id=user, k=k, coarse_all=coarse, query_vector=vector)
            except OpenSearchException as exc:
                raise HTTPException(502, f"the OpenSearch backend failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
        with self.background, self.lock.read():
            return self.model.search(q, user_id=user, k=k, coarse_all=coarse, query_vector=vector)

    def ingest(self, post: Post) -> Prediction:
        """Index one post, committed to the store before this returns; 409 when its id is indexed already."""
        model = self.model
        with self.background:  # one ingest at a time beside suggestions
            features = model.features([post])  # the encoders need no lock: readers keep going meanwhile
            new_tags = model.ingest.embed_new_tags([post])  # nor does embedding its hashtags new to the tag matcher
            duplicate = HTTPException(409, f"'id': post {post.id!r} is already indexed; delete it first to replace it")
            with self.lock.read():  # enrichment only reads: suggest and search go on beside it
                if model.posts_.store.rowids([post.id]):
                    raise duplicate
                pending = model.ingest.prepare_add([post], features=features, new_tags=new_tags)
            with self.lock.write():  # held for the index and store writes alone
                if model.posts_.store.rowids([post.id]):  # a concurrent request indexed it meanwhile
                    raise duplicate
                prediction = model.ingest.commit_add(pending)[0]
                self.posts_gauge.set(model.posts_.store.count())
        return prediction

    def delete(self, post_id: str, key_user: str | None) -> None:
        """Remove a post; a user's key may remove only that user's posts (403), an unknown id is a 404."""
        model = self.model
        with self.background, self.lock.write():
            if key_user is not None:
                found = model.posts_.store.get(list(model.posts_.store.rowids([post_id]).values()))
                if any(p.user_key != Post(id="_", user_id=key_user).user_key for p in found.values()):
                    raise HTTPException(403, f"'post_id': this API key may only delete posts of user {key_user!r}")
            if model.delete([post_id]) == 0:
                raise HTTPException(404, f"'post_id': post {post_id!r} is not indexed")
            self.posts_gauge.set(model.posts_.store.count())


def get_service(request: Request) -> Service:
    """The routes' dependency on the running service."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
