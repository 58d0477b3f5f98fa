"""Personalised search over indexed posts."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from tagatlas.api.schemas import MAX_TEXT_CHARS
from tagatlas.api.security import CallerDep
from tagatlas.api.service import ServiceDep
from tagatlas.data import Post
from tagatlas.recommender.search import SearchResult

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchResult)
async def search(who: CallerDep, service: ServiceDep,
                 q: str = Query(min_length=1, max_length=MAX_TEXT_CHARS, description="search text"),
                 user: str | None = Query(default=None, max_length=200, description="personalise for this user (needs their API key)"),
                 k: int = Query(default=20, ge=1, le=100), coarse: bool = Query(default=False, description="coarsen every result's coordinates")) -> SearchResult:
    if user is not None:
        who.may_read_history_of("user", user)
    vector = await service.embed_batcher(Post(id="query", text=q))
    return await run_in_threadpool(service.search, q, user, k, coarse, vector)
