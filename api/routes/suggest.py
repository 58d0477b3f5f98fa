"""Live suggestions for a post being written (the posting form)."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from tagatlas.api.images import image_file
from tagatlas.api.schemas import SuggestRequest
from tagatlas.api.security import CallerDep
from tagatlas.api.service import ServiceDep
from tagatlas.data import Post
from tagatlas.recommender import Prediction
from tagatlas.recommender.reader import cleaned

router = APIRouter(tags=["suggest"])


@router.post("/v1/suggest", response_model=Prediction)
async def suggest(body: SuggestRequest, who: CallerDep, service: ServiceDep) -> Prediction:
    """Suggestions for a post being written; concurrent requests are answered by one batched model call.
    Personalised (`user_id`) only with that user's own key."""
    if body.user_id is not None:
        who.may_read_history_of("user_id", body.user_id)
    if not (body.text and body.text.strip()) and not body.image_base64:
        raise HTTPException(422, "give 'text', 'image_base64' or both")
    if not body.image_base64 and not cleaned(body.text):
        raise HTTPException(422, "'text': nothing to go on once its hashtags are set aside; write some words or add 'image_base64'")
    image_path = await run_in_threadpool(image_file, body.image_base64) if body.image_base64 else None
    try:
        pred = await service.suggest_batcher(Post(id=f"suggest-{uuid.uuid4().hex}", user_id=body.user_id, text=body.text, image=image_path))
    finally:
        if image_path:
            Path(image_path).unlink(missing_ok=True)
    if body.photo_gps and not body.coarse:
        pred.reveal_photo_gps()
    if body.coarse and pred.places:
        pred.lat, pred.lon = round(pred.places[0].lat, 2), round(pred.places[0].lon, 2)
    return pred
