"""REST API (FastAPI): `create_app(model_dir)` → suggestions, durable ingest, deletes, health, metrics.

Started by `tagatlas serve`. The posting web page, personalised search, rate limiting and the load,
fuzz and browser tests are still to come (tracked in the REST API issue).
"""

from tagatlas.api.app import IngestResponse, PostIn, SuggestRequest, configured_keys, create_app, parse_keys

__all__ = ["IngestResponse", "PostIn", "SuggestRequest", "configured_keys", "create_app", "parse_keys"]
