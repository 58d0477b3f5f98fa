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
import uuid
from datetime import datetime
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Header, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.exception_handlers import http_exception_handler
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tagatlas.api.batching import MicroBatcher
from tagatlas.data import Post
from tagatlas.plugin.bodies import enrichment_fields
from tagatlas.recommender import Prediction, TagAtlas
from tagatlas.recommender.search import SearchResult

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT_CHARS = 5_000
MAX_IMAGE_BYTES = 10_000_000


class ReadWriteLock:
    """Many readers (suggest, search) or one writer (ingest, delete); a waiting writer blocks new readers.

    FAISS and the SQLite connection are safe for concurrent reads but not for a read during an add.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


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


class MeasureAndLimit:
    """Rate limiting and Prometheus request metrics as plain ASGI middleware (Starlette's BaseHTTPMiddleware
    streams every response through an extra task and memory channel: CPU the server needs under load)."""

    def __init__(self, app, limiter: RateLimiter, requests: Counter, latency: Histogram):
        self.app, self.limiter, self.requests, self.latency = app, limiter, requests, latency

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        key = next((value for name, value in scope["headers"] if name == b"x-api-key"), b"")
        client = key.decode("latin-1") or (scope["client"][0] if scope.get("client") else "unknown")
        wait = self.limiter.allow(client)
        if wait > 0:
            self.requests.labels("rate_limited", "429").inc()
            response = JSONResponse({"detail": f"rate limit exceeded; retry in {wait:.2f} s"}, status_code=429,
                                    headers={"Retry-After": str(max(1, round(wait)))})
            await response(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:  # the router records the matched route in the shared scope
            name = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(name, str(status)).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)


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
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: `true` is not a text, `"1"` not a number

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS, description="the caption being written")
    user_id: str | None = Field(default=None, max_length=200, description="personalise with this user's past posts (needs an API key)")
    image_base64: str | None = Field(default=None, max_length=MAX_IMAGE_BYTES * 4 // 3 + 4, description="the photo, base64-encoded")
    coarse: bool = Field(default=False, description="return the place's coordinates instead of the precise estimate (privacy)")
    photo_gps: bool = Field(default=False, description=(
        "when the photo carries an EXIF GPS position, return it exactly (default: it decides the place, and the returned "
        "coordinates are coarsened to that place)"))


class PostIn(BaseModel):
    """A post to ingest; like `Post` but with bounded fields and no server-side image paths."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    hashtags: list[str] = Field(default_factory=list, max_length=100)
    created_at: datetime | None = Field(default=None, strict=False, description="ISO 8601 time of the post")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


def _placeholder_is_missing(value):
    """ML Commons substitutes an absent document field as the connector's default (""), and older versions leave the
    `${parameters.x}` placeholder itself: both mean "missing"."""
    if isinstance(value, str) and (value.strip() in ("", "null", "None") or value.startswith("${parameters.")):
        return None
    return value


class EnrichRequest(BaseModel):
    """What the OpenSearch connector sends for one document (see docs/opensearch.md); every field is a string."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    user_id: str | None = Field(default=None, max_length=200)
    image_url: str | None = Field(default=None, max_length=2000, description="fetched only from prefixes in TAGATLAS_IMAGE_URL_PREFIXES")
    created_at: str | None = Field(default=None, max_length=100, description="ISO 8601 time of the post")

    @field_validator("text", "user_id", "image_url", "created_at", mode="before")
    @classmethod
    def _missing(cls, value):
        return _placeholder_is_missing(value)


class GeoPoint(BaseModel):
    lat: float
    lon: float


class EnrichResponse(BaseModel):
    """Flat, so an `ml_inference` output_map reads each field by name into `tagatlas.*`."""

    place: str | None
    place_name: str | None
    place_prob: float | None
    location: GeoPoint
    radius_km: float
    hashtags: list[str]
    cluster: str | None
    embedding: list[float]
    model: str
    notes: list[str] = Field(default_factory=list, description="what was ignored and why (e.g. an image that was not fetched)")


class IngestResponse(BaseModel):
    post: Post
    prediction: Prediction


class Health(BaseModel):
    status: str
    posts: int
    writes_enabled: bool
    search_backend: str = Field(description="embedded (the model folder's index) or opensearch (TAGATLAS_SEARCH_BACKEND)")


def fetch_image(url: str, prefixes: list[str], max_bytes: int = MAX_IMAGE_BYTES, timeout: float = 10.0) -> tuple[str | None, str | None]:
    """Download an image into a temporary file (the caller removes it) when `url` starts with an allowed prefix.

    Returns (path, None) or (None, why not). Fetching arbitrary URLs from a server is an SSRF risk, so nothing is
    fetched unless TAGATLAS_IMAGE_URL_PREFIXES names where images may come from."""
    import urllib.error
    import urllib.request

    if not prefixes:
        return None, "image_url ignored: set TAGATLAS_IMAGE_URL_PREFIXES to fetch images"
    if not any(url.startswith(prefix) for prefix in prefixes):
        return None, "image_url ignored: not under an allowed prefix (TAGATLAS_IMAGE_URL_PREFIXES)"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (prefix-checked above)
            raw = answer.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"image_url not fetched: {exc}"
    if len(raw) > max_bytes:
        return None, f"image_url ignored: larger than {max_bytes} bytes"
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
        handle.write(raw)
    return handle.name, None


def create_app(model_dir: str | os.PathLike, api_keys: dict[str, str | None] | set[str] | None = None, rate: float | None = None,
               burst: float | None = None, encoder_threads: int | None = None, background_slots: int = 1) -> FastAPI:
    """An app serving the model folder `model_dir`; writes need one of `api_keys` (none: writes refused).

    A key bound to a user (`key=user_id`) may write that user's posts and personalise with that user's
    history only; an unbound service key may write any post and never reads a user's history.

    Rate limits default to TAGATLAS_RATE_LIMIT requests a second (200) with bursts of TAGATLAS_RATE_BURST (400).
    `encoder_threads` (default TAGATLAS_ENCODER_THREADS, else 1): threads the text encoder uses per batch. One is
    right for a server: concurrent requests already keep the cores busy, and a multi-threaded BLAS call then waits
    for a sleeping worker to be scheduled (benchmarks/load.py, docs/benchmarks.md).
    `background_slots`: how many searches, ingests, enrichments and deletes run at once. Suggestions (someone is
    typing) run beside them, never queued behind them; on few cores each extra thread of Python work beside a
    suggestion slows it (cores and the GIL are shared), so by default the others take turns on one slot.
    """
    if background_slots < 1:
        raise ValueError(f"background_slots must be 1 or more, not {background_slots!r}")
    model_dir = Path(model_dir)
    search_backend = os.environ.get("TAGATLAS_SEARCH_BACKEND", "embedded")
    if search_backend not in ("embedded", "opensearch"):
        raise ValueError(f"TAGATLAS_SEARCH_BACKEND must be 'embedded' or 'opensearch', not {search_backend!r}")
    image_prefixes = [p.strip() for p in os.environ.get("TAGATLAS_IMAGE_URL_PREFIXES", "").split(",") if p.strip()]
    limiter = RateLimiter(rate or float(os.environ.get("TAGATLAS_RATE_LIMIT", 200)), burst or float(os.environ.get("TAGATLAS_RATE_BURST", 400)))
    if encoder_threads is None:
        setting = os.environ.get("TAGATLAS_ENCODER_THREADS", "1")
        if not setting.strip().isdigit() or int(setting) < 1:
            raise ValueError(f"TAGATLAS_ENCODER_THREADS must be a whole number of threads (1 or more), not {setting!r}")
        encoder_threads = int(setting)
    keys = configured_keys() if api_keys is None else (dict(api_keys) if isinstance(api_keys, dict) else dict.fromkeys(api_keys))
    state: dict = {}
    lock = ReadWriteLock()  # concurrent suggest/search; ingest and delete one at a time, alone
    background = threading.BoundedSemaphore(background_slots)  # search, ingest, enrich, delete: see the docstring
    registry = CollectorRegistry()
    requests = Counter("tagatlas_requests_total", "HTTP requests", ["route", "status"], registry=registry)
    latency = Histogram("tagatlas_request_seconds", "request latency", ["route"], registry=registry)
    posts_gauge = Gauge("tagatlas_indexed_posts", "posts in the index", registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["model"] = TagAtlas.load(model_dir, writable_store=True)
        state["model"].encoder.set_threads(encoder_threads)
        state["model"].warm_up()
        posts_gauge.set(state["model"].store_.count())
        if search_backend == "opensearch":
            from tagatlas.plugin import Connection, OpenSearchSearch

            state["searcher"] = OpenSearchSearch(Connection.from_env().client(), os.environ.get("TAGATLAS_OPENSEARCH_INDEX", "posts"),
                                                 state["model"])
        log.info("serving", extra={"model": str(model_dir), "posts": state["model"].store_.count(), "writes": bool(keys)})
        yield
        for batcher in state.get("batchers", []):
            await batcher.close()
        with lock.write():
            state["model"].save_index(model_dir)

    async def no_unknown_query(request: Request) -> None:
        """Reject query parameters a route does not declare (a typo must not be silently ignored); async: no
        worker-thread hop per request."""
        route = request.scope.get("route")
        operation = app.openapi()["paths"].get(getattr(route, "path", None), {}).get(request.method.lower())
        if operation is None:
            return
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        unknown = [name for name in request.query_params if name not in known]
        if unknown:
            raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter",
                                           "input": request.query_params.get(name)} for name in unknown])

    app = FastAPI(title="TagAtlas", version="0.1.0", lifespan=lifespan, dependencies=[Depends(no_unknown_query)],
                  description="Places and hashtags for social posts. Writes and personalised requests need `X-API-Key`.")

    @app.exception_handler(StarletteHTTPException)
    async def name_the_body(request: Request, exc: StarletteHTTPException):
        """FastAPI answers an unparsable body with a bare 400; say which field (the body) and what to send."""
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return JSONResponse({"detail": [{"type": "body_parse_error", "loc": ["body"],
                                             "msg": "the body could not be parsed; send JSON with content-type application/json"}]},
                                status_code=400)
        return await http_exception_handler(request, exc)

    app.add_middleware(MeasureAndLimit, limiter=limiter, requests=requests, latency=latency)

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

    def require_user(field: str, user_id: str, x_api_key: str | None) -> None:
        """A user's history serves only that user's own requests: the key must be bound to `user_id`."""
        if require_key(x_api_key) != user_id:
            raise HTTPException(403, f"'{field}': this API key may not use the history of user {user_id!r}")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", posts=state["model"].store_.count(), writes_enabled=bool(keys), search_backend=search_backend)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry).decode(), media_type=CONTENT_TYPE_LATEST)

    def image_file(image_base64: str) -> str:
        """Decode the upload into a temporary file (removed by the caller); 4xx naming the field if bad."""
        try:
            raw = base64.b64decode(image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(422, f"'image_base64' is not valid base64: {exc}") from exc
        if len(raw) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"'image_base64' decodes to {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
        with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
            handle.write(raw)
        return handle.name

    def predict_batch(posts: list[Post]) -> list[Prediction]:
        with lock.read():
            return state["model"].predict(posts)

    batch_sizes = Histogram("tagatlas_suggest_batch_size", "posts per batched model call", buckets=(1, 2, 4, 8, 16, 32),
                            registry=registry)
    suggest_batcher = MicroBatcher(predict_batch, max_batch=32, on_batch=batch_sizes.observe)
    state["batchers"] = [suggest_batcher]

    @app.post("/v1/suggest", response_model=Prediction)
    async def suggest(body: SuggestRequest, x_api_key: str | None = Header(default=None)) -> Prediction:
        """Suggestions for a post being written; concurrent requests are answered by one batched model call."""
        if body.user_id is not None:
            require_user("user_id", body.user_id, x_api_key)
        if not (body.text and body.text.strip()) and not body.image_base64:
            raise HTTPException(422, "give 'text', 'image_base64' or both")
        image_path = await run_in_threadpool(image_file, body.image_base64) if body.image_base64 else None
        try:
            pred = await suggest_batcher(Post(id=f"suggest-{uuid.uuid4().hex}", user_id=body.user_id, text=body.text, image=image_path))
        finally:
            if image_path:
                Path(image_path).unlink(missing_ok=True)
        if body.photo_gps and not body.coarse:
            pred.reveal_photo_gps()
        if body.coarse and pred.places:
            pred.lat, pred.lon = round(pred.places[0].lat, 2), round(pred.places[0].lon, 2)
        return pred

    def embed_batch(posts: list[Post]) -> list:
        with background, lock.read():
            return list(state["model"].embed(posts))

    def search_with_vector(q: str, user: str | None, k: int, coarse: bool, vector) -> SearchResult:
        if "searcher" in state:  # OpenSearch backend: the cluster holds the posts; the local model only embeds
            from opensearchpy.exceptions import OpenSearchException

            try:
                return state["searcher"].search(q, user_id=user, k=k, coarse_all=coarse, query_vector=vector)
            except OpenSearchException as exc:
                raise HTTPException(502, f"the OpenSearch backend failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
        with background, lock.read():
            return state["model"].search(q, user_id=user, k=k, coarse_all=coarse, query_vector=vector)

    embed_batcher = MicroBatcher(embed_batch, max_batch=32)
    state["batchers"].append(embed_batcher)

    @app.get("/v1/search", response_model=SearchResult)
    async def search(q: str = Query(min_length=1, max_length=MAX_TEXT_CHARS, description="search text"),
               user: str | None = Query(default=None, max_length=200, description="personalise for this user (needs an API key)"),
               k: int = Query(default=20, ge=1, le=100), coarse: bool = Query(default=False, description="coarsen every result's coordinates"),
               x_api_key: str | None = Header(default=None)) -> SearchResult:
        if user is not None:
            require_user("user", user, x_api_key)
        vector = await embed_batcher(Post(id="query", text=q))
        return await run_in_threadpool(search_with_vector, q, user, k, coarse, vector)

    def enrich_batch(posts: list[Post]) -> list:
        with background, lock.read():
            preds, vectors = state["model"].predict_with_vectors(posts)
        return list(zip(preds, vectors))

    enrich_batcher = MicroBatcher(enrich_batch, max_batch=32)
    state["batchers"].append(enrich_batcher)

    @app.post("/v1/enrich", response_model=EnrichResponse)
    async def enrich(body: EnrichRequest, key_user: str | None = Depends(require_key)) -> EnrichResponse:
        """Enrichment of one document for the OpenSearch ingest pipeline (ML Commons connector): flat fields, nothing stored.

        A service key may enrich any user's post (with that user's history: this is the operator's own pipeline);
        a user's key only that user's posts."""
        if key_user is not None and body.user_id != key_user:
            raise HTTPException(403, f"'user_id': this API key may only enrich posts of user {key_user!r}")
        created = None
        if body.created_at:
            try:
                created = datetime.fromisoformat(body.created_at.replace("Z", "+00:00"))
            except ValueError as exc:
                raise HTTPException(422, f"'created_at': not an ISO 8601 time: {body.created_at[:40]!r}") from exc
        notes: list[str] = []
        image_path = None
        if body.image_url:
            image_path, note = await run_in_threadpool(fetch_image, body.image_url, image_prefixes)
            if note:
                notes.append(note)
        if not (body.text and body.text.strip()) and image_path is None:
            raise HTTPException(422, "'text': give a text (or an 'image_url' the service may fetch); nothing to enrich")
        try:
            pred, vector = await enrich_batcher(Post(id=f"enrich-{uuid.uuid4().hex}", user_id=body.user_id, text=body.text,
                                                     image=image_path, created_at=created))
        finally:
            if image_path:
                Path(image_path).unlink(missing_ok=True)
        return EnrichResponse(**enrichment_fields(pred, vector, state["model"].fingerprint_), notes=notes)

    @app.post("/v1/posts", response_model=IngestResponse)
    def ingest(body: PostIn, key_user: str | None = Depends(require_key)) -> IngestResponse:
        if key_user is not None and body.user_id != key_user:
            raise HTTPException(403, f"'user_id': this API key may only post as user {key_user!r}")
        try:
            post = Post.model_validate(body.model_dump())
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]) from exc
        with background:  # one ingest at a time beside suggestions (create_app's docstring)
            features = state["model"].featurize([post])  # the encoders need no lock: readers keep going meanwhile
            new_tags = state["model"].embed_new_tags([post])  # nor does embedding its hashtags new to the tag matcher
            duplicate = HTTPException(409, f"'id': post {post.id!r} is already indexed; delete it first to replace it")
            with lock.read():  # enrichment only reads: suggest and search go on beside it
                if state["model"].store_.rowids([post.id]):
                    raise duplicate
                pending = state["model"].prepare_add([post], features=features, new_tags=new_tags)
            with lock.write():  # held for the index and store writes alone (under load, readers queued behind it)
                model = state["model"]
                if model.store_.rowids([post.id]):  # a concurrent request indexed it meanwhile
                    raise duplicate
                prediction = model.commit_add(pending)[0]  # committed to the store before we answer
                posts_gauge.set(model.store_.count())
        return IngestResponse(post=post, prediction=prediction)

    @app.delete("/v1/posts/{post_id}")
    def delete(post_id: str = PathParam(min_length=1, max_length=200, description="the post's id"), key_user: str | None = Depends(require_key)) -> dict:
        with background, lock.write():
            model = state["model"]
            if key_user is not None:
                found = model.store_.get(list(model.store_.rowids([post_id]).values()))
                if any(p.user_key != Post(id="_", user_id=key_user).user_key for p in found.values()):
                    raise HTTPException(403, f"'post_id': this API key may only delete posts of user {key_user!r}")
            if model.delete([post_id]) == 0:
                raise HTTPException(404, f"'post_id': post {post_id!r} is not indexed")
            posts_gauge.set(model.store_.count())
        return {"deleted": post_id}

    return app
