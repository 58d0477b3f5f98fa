"""Durable ingest and deletion of posts (a key is required; a user's key acts for that user only)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.convertors import Convertor, register_url_convertor

from tagatlas.api.schemas import Deleted, IngestResponse, PostIn
from tagatlas.api.security import KeyUserDep
from tagatlas.api.service import ServiceDep
from tagatlas.data import Post

router = APIRouter(tags=["posts"])


class AnyPostId(Convertor):
    """A post id in the path, "/" and line breaks included (Starlette's own "path" stops at a line break)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("post_id", AnyPostId())


@router.post("/v1/posts", response_model=IngestResponse)
def ingest(body: PostIn, key_user: KeyUserDep, service: ServiceDep) -> IngestResponse:
    """Index a post: it is committed to the store before the answer, and its prediction says what it was enriched with."""
    if key_user is not None and body.user_id != key_user:
        raise HTTPException(403, f"'user_id': this API key may only post as user {key_user!r}")
    try:
        post = Post.model_validate(body.model_dump())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]) from exc
    return IngestResponse(post=post, prediction=service.ingest(post))


@router.delete("/v1/posts/{post_id:post_id}", response_model=Deleted)  # an id holding "/" can be deleted too
def delete(key_user: KeyUserDep, service: ServiceDep,
           post_id: str = PathParam(min_length=1, max_length=200, description="the post's id")) -> Deleted:
    service.delete(post_id, key_user)
    return Deleted(deleted=post_id)
