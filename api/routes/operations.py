"""Operations: the posting web page, health and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tagatlas.api.schemas import Health
from tagatlas.api.service import ServiceDep

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["operations"])


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/health", response_model=Health)
def health(service: ServiceDep) -> Health:
    return Health(status="ok", posts=service.model.posts_.store.count(), writes_enabled=bool(service.keys),
                  search_backend=service.settings.search_backend)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(service.registry).decode(), media_type=CONTENT_TYPE_LATEST)
