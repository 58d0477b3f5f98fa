"""REST API (FastAPI): `create_app(model_dir)` → suggestions, personalised search, durable ingest, enrichment,
deletes, health, metrics and the posting web page. Started by `tagatlas serve`."""

from tagatlas.api.app import IngestResponse, PostIn, SuggestRequest, configured_keys, create_app, parse_keys

__all__ = ["IngestResponse", "PostIn", "SuggestRequest", "configured_keys", "create_app", "parse_keys"]
