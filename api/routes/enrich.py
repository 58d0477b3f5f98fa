"""Enrichment of one document for the OpenSearch ingest pipeline (ML Commons connector): flat fields, nothing stored."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import anyio
from fastapi import APIRouter, HTTPException

from tagatlas.api.images import BUSY
from tagatlas.api.schemas import EARLIEST, LATEST, EnrichRequest, EnrichResponse
from tagatlas.api.security import KeyUserDep
from tagatlas.api.service import ServiceDep
from tagatlas.data import Post
from tagatlas.plugin.bodies import enrichment_fields

router = APIRouter(tags=["enrich"])


@router.post("/v1/enrich", response_model=EnrichResponse)
async def enrich(body: EnrichRequest, key_user: KeyUserDep,
                 service: ServiceDep) -> EnrichResponse:
    """A service key may enrich any user's post (with that user's history: this is the operator's own pipeline);
    a user's key only that user's posts."""
    if key_user is not None and body.user_id != key_user:
        raise HTTPException(403, f"'user_id': this API key may only enrich posts of user {key_user!r}")
    created = None
    if body.created_at:
        try:
            created = datetime.fromisoformat(body.created_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise HTTPException(422, f"'created_at': not an ISO 8601 time: {body.created_at[:40]!r}") from exc
        if not EARLIEST <= created.replace(tzinfo=None) < LATEST:
            raise HTTPException(422, f"'created_at': must lie between {EARLIEST.year} and {LATEST.year}")
    notes: list[str] = []
    image_path = None
    if body.image_url:
        if service.fetch_limiter.available_tokens < 1:  # every fetch slot taken: answer now instead of queueing
            image_path, note = None, BUSY
        else:  # on threads of its own: a slow host holds a fetch slot, never the request pool
            image_path, note = await anyio.to_thread.run_sync(service.fetcher.fetch, body.image_url, limiter=service.fetch_limiter)
        if note:
            notes.append(note)
    if not (body.text and body.text.strip()) and image_path is None:
        raise HTTPException(422, "'text': give a text (or an 'image_url' the service may fetch); nothing to enrich")
    try:
        pred, vector = await service.enrich_batcher(Post(id=f"enrich-{uuid.uuid4().hex}", user_id=body.user_id, text=body.text,
                                                         image=image_path, created_at=created))
    finally:
        if image_path:
            Path(image_path).unlink(missing_ok=True)
    return EnrichResponse(**enrichment_fields(pred, vector, service.model.fingerprint_), notes=notes)
