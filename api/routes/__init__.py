"""One router per area of the API: suggest, search, posts, enrich, operations (health, metrics, the page)."""

from tagatlas.api.routes import enrich, operations, posts, search, suggest

ROUTERS = [operations.router, suggest.router, search.router, posts.router, enrich.router]

__all__ = ["ROUTERS"]
