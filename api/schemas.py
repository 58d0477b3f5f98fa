"""What crosses the REST boundary: every request and response body of the API, in one place."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tagatlas.data import Post
from tagatlas.recommender import Prediction

MAX_TEXT_CHARS = 5_000
MAX_IMAGE_BYTES = 10_000_000
MAX_TAG_CHARS = 100  # one hashtag (Instagram's and Twitter's tags stay far below)
EARLIEST, LATEST = datetime(1900, 1, 1), datetime(2200, 1, 1)
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_lone_surrogates(value: str) -> str:
    """JSON may carry a lone UTF-16 surrogate (\\ud800); it is no character and cannot be stored or answered."""
    if _LONE_SURROGATE.search(value):
        raise ValueError("contains a lone UTF-16 surrogate (not a character); send valid Unicode")
    return value


def _in_era(value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST <= value.replace(tzinfo=None) < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return value


Text = Annotated[str, AfterValidator(_no_lone_surrogates)]  # every string field of a request
Time = Annotated[datetime, AfterValidator(_in_era)]


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: `true` is not a text, `"1"` not a number

    text: Text | None = Field(default=None, max_length=MAX_TEXT_CHARS, description="the caption being written")
    user_id: Text | None = Field(default=None, max_length=200, description="personalise with this user's past posts (needs an API key)")
    image_base64: Text | None = Field(default=None, max_length=MAX_IMAGE_BYTES * 4 // 3 + 4, description="the photo, base64-encoded")
    coarse: bool = Field(default=False, description="return the place's coordinates instead of the precise estimate (privacy)")
    photo_gps: bool = Field(default=False, description=(
        "when the photo carries an EXIF GPS position, return it exactly (default: it decides the place, and the returned "
        "coordinates are coarsened to that place)"))


class PostIn(BaseModel):
    """A post to ingest; like `Post` but with bounded fields and no server-side image paths."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Text = Field(min_length=1, max_length=200)
    user_id: Text | None = Field(default=None, max_length=200)
    text: Text | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    hashtags: list[Annotated[Text, Field(max_length=MAX_TAG_CHARS)]] = Field(default_factory=list, max_length=100)
    created_at: Time | None = Field(default=None, strict=False, description="ISO 8601 time of the post, between 1900 and 2200")
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)


def _placeholder_is_missing(value):
    """ML Commons substitutes an absent document field as the connector's default (""), and older versions leave the
    `${parameters.x}` placeholder itself: both mean "missing"."""
    if isinstance(value, str) and (value.strip() in ("", "null", "None") or value.startswith("${parameters.")):
        return None
    return value


class EnrichRequest(BaseModel):
    """What the OpenSearch connector sends for one document (see docs/opensearch.md); every field is a string."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: Text | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    user_id: Text | None = Field(default=None, max_length=200)
    image_url: Text | None = Field(default=None, max_length=2000, description="fetched only from prefixes in TAGATLAS_IMAGE_URL_PREFIXES")
    created_at: Text | None = Field(default=None, max_length=100, description="ISO 8601 time of the post")

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


class Deleted(BaseModel):
    """The answer to a delete: the id of the post removed from the index and the store."""

    deleted: str
