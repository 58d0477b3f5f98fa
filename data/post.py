"""The canonical post record that every TagAtlas part exchanges."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Post(BaseModel):
    """A social post: caption, hashtags, maybe a photo, a user, a time and (for training) a location.

    `image` is a local path (resolved against the data file's folder by the reader) or a URL.
    A post without `user_id` is treated as a user of its own (see `user_key`).
    """

    model_config = ConfigDict(extra="ignore", frozen=False)

    id: str = Field(min_length=1)
    user_id: str | None = None
    text: str | None = None
    hashtags: list[str] = Field(default_factory=list)
    image: str | None = None
    created_at: datetime | None = None
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    place: str | None = None

    @field_validator("id", "user_id", mode="before")
    @classmethod
    def _ids_as_strings(cls, value):
        if isinstance(value, bool):
            raise ValueError("must be a string or an integer, not a boolean")
        if isinstance(value, int):
            return str(value)
        return value

    @field_validator("user_id", "text", "image", "place", mode="before")
    @classmethod
    def _empty_is_missing(cls, value):
        # OpenSearch connectors substitute absent values as "" or the literal "null".
        if isinstance(value, str) and value.strip() in ("", "null", "None"):
            return None
        return value

    @field_validator("hashtags", mode="before")
    @classmethod
    def _hashtags_list(cls, value):
        if value is None:
            return []
        if isinstance(value, str):
            raise ValueError("must be a list of strings, not a single string")
        return value

    @field_validator("hashtags")
    @classmethod
    def _normalise_tags(cls, value: list[str]) -> list[str]:
        from tagatlas.data.hashtags import normalize_hashtags

        return normalize_hashtags(value)

    @model_validator(mode="after")
    def _lat_lon_together(self):
        if (self.lat is None) != (self.lon is None):
            missing = "lon" if self.lon is None else "lat"
            raise ValueError(f"lat and lon come together: {missing} is missing")
        return self

    @property
    def user_key(self) -> str:
        """The user this post belongs to; a post without user is a user of its own."""
        return f"u:{self.user_id}" if self.user_id is not None else f"p:{self.id}"

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def timestamp(self) -> float:
        """Seconds since the epoch (0 when unknown), for ordering a user's posts."""
        if self.created_at is None:
            return 0.0
        when = self.created_at if self.created_at.tzinfo is not None else self.created_at.replace(tzinfo=timezone.utc)
        return when.timestamp()  # a naive time is read as UTC: local-time conversion fails for years such as 1
