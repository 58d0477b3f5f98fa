"""API keys as FastAPI security dependencies: `key` is a service key (writes for any user, no personalisation),
`key=user_id` is that user's own key (writes and personalises as that user only)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from tagatlas.core.settings import Settings, load_settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="`key` (service) or a user's own key; needed for writes and personalised requests")


def parse_keys(entries: Iterable[str]) -> dict[str, str | None]:
    """`key` (a service key: writes for any user, no personalisation) or `key=user_id` (that user's own key)."""
    keys: dict[str, str | None] = {}
    for entry in entries:
        entry = entry.strip()
        if entry and not entry.startswith("#"):
            key, _, user = entry.partition("=")
            keys[key.strip()] = user.strip() or None
    return keys


def configured_keys(settings: Settings | None = None) -> dict[str, str | None]:
    """API keys from TAGATLAS_API_KEYS (comma-separated) and/or the file named by TAGATLAS_API_KEY_FILE (one a line)."""
    return parse_keys((settings or load_settings()).key_entries())


@dataclass(frozen=True)
class Caller:
    """Who is calling, as far as the API key tells."""

    key: str | None
    keys: dict[str, str | None]

    def user(self) -> str | None:
        """The user the key is bound to (None: a service key); 401/403 when there is no valid key."""
        if not self.keys:
            raise HTTPException(403, "writes and personalised requests are disabled: no API keys are configured (TAGATLAS_API_KEYS)")
        if self.key is None:
            raise HTTPException(401, "missing X-API-Key header")
        for key, user in self.keys.items():
            if secrets.compare_digest(self.key.encode(), key.encode()):
                return user
        raise HTTPException(401, "invalid X-API-Key")

    def may_read_history_of(self, field: str, user_id: str) -> None:
        """A user's history serves only that user's own requests: the key must be bound to `user_id`."""
        if self.user() != user_id:
            raise HTTPException(403, f"'{field}': this API key may not use the history of user {user_id!r}")


def caller(request: Request, x_api_key: Annotated[str | None, Header(
        description="needed only to personalise: that user's own key")] = None) -> Caller:
    """The caller of a route open to all that needs a key only to personalise (suggest, search): an optional header."""
    return Caller(x_api_key, request.app.state.service.keys)


CallerDep = Annotated[Caller, Depends(caller)]


def key_user(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> str | None:
    """A protected route's security dependency: a valid key is required; returns the user it is bound to (None: a
    service key)."""
    return Caller(key, request.app.state.service.keys).user()


KeyUserDep = Annotated[str | None, Depends(key_user)]
