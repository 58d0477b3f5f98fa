"""Every environment variable TagAtlas reads, in one validated object (pydantic-settings). README lists them.

Read when asked (`load_settings()`), not at import: a server reads them once at start, a test may set them first.
A bad value is refused with the variable's name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """An environment variable holds a value TagAtlas cannot use (the message names it)."""


class Settings(BaseSettings):
    """TagAtlas's settings from the environment (`TAGATLAS_…`, and OpenSearch's `OPENSEARCH_URL` / `OPENSEARCH_AUTH`)."""

    model_config = SettingsConfigDict(env_prefix="TAGATLAS_", extra="ignore", populate_by_name=True)

    api_keys: str = Field(default="", description="API keys, comma-separated: `key` (a service key) or `key=user_id` (that user's own)")
    api_key_file: Path | None = Field(default=None, description="a file of API keys, one a line (as api_keys); `#` starts a comment")
    rate_limit: float = Field(default=200.0, gt=0, description="requests a second per client address before 429")
    rate_burst: float = Field(default=400.0, ge=1, description="requests a client address may make at once before the rate applies")
    auth_failure_rate: float = Field(default=0.2, gt=0, description="failed authentications a second an address may make on average before 429")
    auth_failure_burst: float = Field(default=20.0, ge=1, description="failed authentications an address may make at once")
    rate_clients: int = Field(default=10_000, ge=1, description="client addresses the rate limiters remember (least recent forgotten first)")
    encoder_threads: int = Field(default=1, ge=1, le=1024, description="threads the server's text encoder uses per batch")
    search_backend: Literal["embedded", "opensearch"] = Field(default="embedded",
                                                              description="where /v1/search looks: the model folder's index, or OpenSearch")
    opensearch_index: str = Field(default="posts", min_length=1, description="the OpenSearch index searched with search_backend=opensearch")
    image_url_prefixes: str = Field(default="", description="comma-separated URL prefixes /v1/enrich may fetch images from: scheme, host and port "
                                    "must match exactly, the path on a segment boundary (none: no fetching)")
    image_fetch_private: bool = Field(default=False, description="let /v1/enrich fetch from hosts resolving to private, loopback or link-local addresses")
    image_fetch_timeout: float = Field(default=5.0, gt=0, le=60, description="seconds one image fetch may take in all")
    image_fetch_slots: int = Field(default=4, ge=1, le=64, description="image fetches at once; more are answered at once with a note")
    cache_dir: Path | None = Field(default=None, description="folder of the embedding cache (default: $XDG_CACHE_HOME/tagatlas or ~/.cache/tagatlas)")
    opensearch_url: str | None = Field(default=None, validation_alias=AliasChoices("OPENSEARCH_URL", "opensearch_url"),
                                       description="the OpenSearch cluster, e.g. https://localhost:9200")
    opensearch_auth: str | None = Field(default=None, validation_alias=AliasChoices("OPENSEARCH_AUTH", "opensearch_auth"),
                                        description="user:password for the cluster")

    @property
    def image_prefixes(self) -> list[str]:
        return [p.strip() for p in self.image_url_prefixes.split(",") if p.strip()]

    def key_entries(self) -> list[str]:
        """The API key entries from api_keys and the lines of api_key_file."""
        entries = self.api_keys.split(",")
        if self.api_key_file is not None:
            try:
                entries += self.api_key_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(f"TAGATLAS_API_KEY_FILE: cannot read {self.api_key_file} ({exc})") from exc
        return entries


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return {"opensearch_url": "OPENSEARCH_URL", "opensearch_auth": "OPENSEARCH_AUTH"}.get(field, f"TAGATLAS_{field.upper()}")


def load_settings(**overrides) -> Settings:
    """The settings from the environment now, with `overrides` (field names) taking precedence."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        name = env_name(field) if field in Settings.model_fields else field
        raise SettingsError(f"{name}: {first['msg']} (got {str(first.get('input'))[:100]!r})") from exc


def settings_table() -> str:
    """The settings as a Markdown table (README's is checked against it by a test)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        default = info.default if info.default not in (None, "") else "—"
        rows.append(f"| `{env_name(field)}` | {default} | {info.description} |")
    return "\n".join(rows)
