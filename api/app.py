"""The TagAtlas REST service (FastAPI): suggestions, personalised search, durable ingest, enrichment, deletes,
health and metrics, one router per area (`routes/`), settings from `tagatlas.core.settings`.

Writes are durable when acknowledged: a post is committed to the model folder's SQLite store (WAL,
synchronous=FULL) before the response, and the FAISS index is replayed from the store on the next start if the
process died before saving it.
"""

from __future__ import annotations

import math
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tagatlas.api.middleware import MeasureAndLimit, RateLimiter
from tagatlas.api.routes import ROUTERS
from tagatlas.api.service import Service
from tagatlas.core.settings import load_settings

STATIC = Path(__file__).resolve().parent / "static"


async def no_unknown_query(request: Request) -> None:
    """Reject query parameters a route does not declare (a typo must not be silently ignored); async: no
    worker-thread hop per request."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)  # as OpenAPI names it (no ":path" converter)
    operation = request.app.openapi()["paths"].get(path, {}).get(request.method.lower())
    if operation is None:
        return
    known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter",
                                       "input": request.query_params.get(name)} for name in unknown])


async def name_the_body(request: Request, exc: StarletteHTTPException):
    """FastAPI answers an unparsable body with a bare 400; say which field (the body) and what to send."""
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return JSONResponse({"detail": [{"type": "body_parse_error", "loc": ["body"],
                                         "msg": "the body could not be parsed; send JSON with content-type application/json"}]},
                            status_code=400)
    return await http_exception_handler(request, exc)


MAX_ERRORS, MAX_INPUT_CHARS = 10, 100  # a validation answer names at most this many fields, echoing this much of each input


def _shown(value) -> str | int | float | bool | None:
    """An input as a validation answer may echo it: short, finite, and encodable (a lone surrogate escaped)."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_INPUT_CHARS else f"{text[:MAX_INPUT_CHARS]}… ({len(text)} characters)"


async def small_validation_errors(request: Request, exc: RequestValidationError):
    """422 naming each bad field with a short, encodable echo of what was sent (FastAPI's own answer echoes the
    whole input: 10 MB back for a 10 MB text, and a 500 when the input holds NaN or a lone surrogate)."""
    errors = exc.errors()
    detail = [{"type": e.get("type"), "loc": [str(p)[:MAX_INPUT_CHARS] for p in e.get("loc", ())],
               "msg": _shown(str(e.get("msg", ""))), **({"input": _shown(e["input"])} if "input" in e else {})} for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        detail.append({"type": "more_errors", "loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors not shown"})
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(model_dir: str | os.PathLike, api_keys: dict[str, str | None] | set[str] | None = None, rate: float | None = None,
               burst: float | None = None, encoder_threads: int | None = None, background_slots: int = 1) -> FastAPI:
    """An app serving the model folder `model_dir`; writes need one of `api_keys` (None: TAGATLAS_API_KEYS /
    TAGATLAS_API_KEY_FILE; none configured: writes refused).

    A key bound to a user (`key=user_id`) may write that user's posts and personalise with that user's history only;
    an unbound service key may write any post and never reads a user's history. Arguments left None come from the
    settings (README's table): rate limits, and the threads the text encoder uses per batch (one suits a server:
    concurrent requests keep the cores busy). `background_slots`: how many searches, ingests, enrichments and deletes
    run at once beside the suggestions (on few cores each extra one slows the suggestions).
    """
    overrides = {"rate_limit": rate, "rate_burst": burst, "encoder_threads": encoder_threads}
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    service = Service(model_dir, settings, api_keys, background_slots)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.open()
        yield
        await service.close()

    app = FastAPI(title="TagAtlas", version="0.1.0", lifespan=lifespan, dependencies=[Depends(no_unknown_query)],
                  description="Places and hashtags for social posts. Writes and personalised requests need `X-API-Key`.")
    app.state.service = service
    app.add_exception_handler(StarletteHTTPException, name_the_body)
    app.add_exception_handler(RequestValidationError, small_validation_errors)
    app.add_middleware(MeasureAndLimit, limiter=RateLimiter(settings.rate_limit, settings.rate_burst, settings.rate_clients),
                       requests=service.requests, latency=service.latency,
                       auth_failures=RateLimiter(settings.auth_failure_rate, settings.auth_failure_burst, settings.rate_clients))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
