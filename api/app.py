"""The TagAtlas REST service (FastAPI): suggestions, durable ingest, deletes, health and metrics.

Writes are durable when acknowledged: a post is committed to the model folder's SQLite store
(WAL, synchronous=FULL) before the response, and the FAISS index is replayed from the store on
the next start if the process died before saving it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from tagatlas.data import Post
from tagatlas.recommender import Prediction, TagAtlas
from tagatlas.recommender.search import SearchResult

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT_CHARS = 5_000
MAX_IMAGE_BYTES = 10_000_000


class RateLimiter:
    """Token buckets per client (API key, else address): `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def parse_keys(entries) -> dict[str, str | None]:
    """`key` (a service key: writes for any user, no personalisation) or `key=user_id` (that user's own key)."""
    keys: dict[str, str | None] = {}
    for entry in entries:
        entry = entry.strip()
        if entry and not entry.startswith("#"):
            key, _, user = entry.partition("=")
            keys[key.strip()] = user.strip() or None
    return keys


def configured_keys() -> dict[str, str | None]:
    """API keys from TAGATLAS_API_KEYS (comma-separated) and/or the file named by TAGATLAS_API_KEY_FILE (one a line)."""
    entries = os.environ.get("TAGATLAS_API_KEYS", "").split(",")
    path = os.environ.get("TAGATLAS_API_KEY_FILE")
    if path:
        entries += Path(path).read_text(encoding="utf-8").splitlines()
    return parse_keys(entries)


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS, description="the caption being written")
    user_id: str | None = Field(default=None, max_length=200, description="personalise with this user's past posts (needs an API key)")
    image_base64: str | None = Field(default=None, max_length=MAX_IMAGE_BYTES * 4 // 3 + 4, description="the photo, base64-encoded")
    coarse: bool = Field(default=False, description="return the place's coordinates instead of the precise estimate (privacy)")


class PostIn(BaseModel):
    """A post to ingest; like `Post` but with bounded fields and no server-side image paths."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    hashtags: list[str] = Field(default_factory=list, max_length=100)
    created_at: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class IngestResponse(BaseModel):
    post: Post
    prediction: Prediction


class Health(BaseModel):
    status: str
    posts: int
    writes_enabled: bool


def create_app(model_dir: str | os.PathLike, api_keys: dict[str, str | None] | set[str] | None = None, rate: float | None = None,
               burst: float | None = None) -> FastAPI:
    """An app serving the model folder `model_dir`; writes need one of `api_keys` (none: writes refused).

    A key bound to a user (`key=user_id`) may write that user's posts and personalise with that user's
    history only; an unbound service key may write any post and never reads a user's history.

    Rate limits default to TAGATLAS_RATE_LIMIT requests a second (200) with bursts of TAGATLAS_RATE_BURST (400).
    """
    model_dir = Path(model_dir)
    limiter = RateLimiter(rate or float(os.environ.get("TAGATLAS_RATE_LIMIT", 200)), burst or float(os.environ.get("TAGATLAS_RATE_BURST", 400)))
    keys = configured_keys() if api_keys is None else (dict(api_keys) if isinstance(api_keys, dict) else dict.fromkeys(api_keys))
    state: dict = {}
    lock = threading.Lock()  # FAISS is not safe for concurrent add + search: one model call at a time
    registry = CollectorRegistry()
    requests = Counter("tagatlas_requests_total", "HTTP requests", ["route", "status"], registry=registry)
    latency = Histogram("tagatlas_request_seconds", "request latency", ["route"], registry=registry)
    posts_gauge = Gauge("tagatlas_indexed_posts", "posts in the index", registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["model"] = TagAtlas.load(model_dir, writable_store=True)
        posts_gauge.set(state["model"].store_.count())
        log.info("serving", extra={"model": str(model_dir), "posts": state["model"].store_.count(), "writes": bool(keys)})
        yield
        with lock:
            state["model"].save_index(model_dir)

    app = FastAPI(title="TagAtlas", version="0.1.0", lifespan=lifespan,
                  description="Places and hashtags for social posts. Writes and personalised requests need `X-API-Key`.")

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        client = request.headers.get("x-api-key") or (request.client.host if request.client else "unknown")
        wait = limiter.allow(client)
        if wait > 0:
            requests.labels("rate_limited", "429").inc()
            return JSONResponse({"detail": f"rate limit exceeded; retry in {wait:.2f} s"}, status_code=429,
                                headers={"Retry-After": str(max(1, round(wait)))})
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    def require_key(x_api_key: str | None = Header(default=None)) -> str | None:
        """Check the key; return the user it is bound to (None for a service key)."""
        if not keys:
            raise HTTPException(403, "writes and personalised requests are disabled: no API keys are configured (TAGATLAS_API_KEYS)")
        if x_api_key is None:
            raise HTTPException(401, "missing X-API-Key header")
        for key, user in keys.items():
            if secrets.compare_digest(x_api_key.encode(), key.encode()):
                return user
        raise HTTPException(401, "invalid X-API-Key")

    def require_user(user_id: str, x_api_key: str | None) -> None:
        """A user's history serves only that user's own requests: the key must be bound to `user_id`."""
        if require_key(x_api_key) != user_id:
            raise HTTPException(403, f"this API key may not use the history of user {user_id!r}")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", posts=state["model"].store_.count(), writes_enabled=bool(keys))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry).decode(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/suggest", response_model=Prediction)
    def suggest(body: SuggestRequest, x_api_key: str | None = Header(default=None)) -> Prediction:
        if body.user_id is not None:
            require_user(body.user_id, x_api_key)
        if not (body.text and body.text.strip()) and not body.image_base64:
            raise HTTPException(422, "give 'text', 'image_base64' or both")
        image_path = None
        try:
            if body.image_base64:
                try:
                    raw = base64.b64decode(body.image_base64, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise HTTPException(422, f"'image_base64' is not valid base64: {exc}") from exc
                if len(raw) > MAX_IMAGE_BYTES:
                    raise HTTPException(413, f"'image_base64' decodes to {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
                handle = tempfile.NamedTemporaryFile(suffix=".img", delete=False)
                handle.write(raw)
                handle.close()
                image_path = handle.name
            post = Post(id="suggest", user_id=body.user_id, text=body.text, image=image_path)
            with lock:
                pred = state["model"].predict([post])[0]
            if body.coarse and pred.places:
                pred.lat, pred.lon = round(pred.places[0].lat, 2), round(pred.places[0].lon, 2)
            return pred
        finally:
            if image_path:
                Path(image_path).unlink(missing_ok=True)

    @app.get("/v1/search", response_model=SearchResult)
    def search(q: str = Query(min_length=1, max_length=MAX_TEXT_CHARS, description="search text"),
               user: str | None = Query(default=None, max_length=200, description="personalise for this user (needs an API key)"),
               k: int = Query(default=20, ge=1, le=100), coarse: bool = Query(default=False, description="coarsen every result's coordinates"),
               x_api_key: str | None = Header(default=None)) -> SearchResult:
        if user is not None:
            require_user(user, x_api_key)
        with lock:
            return state["model"].search(q, user_id=user, k=k, coarse_all=coarse)

    @app.post("/v1/posts", response_model=IngestResponse)
    def ingest(body: PostIn, key_user: str | None = Depends(require_key)) -> IngestResponse:
        if key_user is not None and body.user_id != key_user:
            raise HTTPException(403, f"this API key may only post as user {key_user!r}")
        try:
            post = Post.model_validate(body.model_dump())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        with lock:
            model = state["model"]
            if model.store_.rowids([post.id]):
                raise HTTPException(409, f"post {post.id!r} is already indexed; delete it first to replace it")
            prediction = model.predict_and_add([post])[0]  # committed to the store before we answer
            posts_gauge.set(model.store_.count())
        return IngestResponse(post=post, prediction=prediction)

    @app.delete("/v1/posts/{post_id}")
    def delete(post_id: str, key_user: str | None = Depends(require_key)) -> dict:
        with lock:
            model = state["model"]
            if key_user is not None:
                found = model.store_.get(list(model.store_.rowids([post_id]).values()))
                if any(p.user_key != Post(id="_", user_id=key_user).user_key for p in found.values()):
                    raise HTTPException(403, f"this API key may only delete posts of user {key_user!r}")
            if model.delete([post_id]) == 0:
                raise HTTPException(404, f"post {post_id!r} is not indexed")
            posts_gauge.set(model.store_.count())
        return {"deleted": post_id}

    return app
