"""REST API (FastAPI): `create_app(model_dir)` → suggestions, personalised search, durable ingest, enrichment,
deletes, health, metrics and the posting web page. Started by `tagatlas serve`."""

from tagatlas.api.app import create_app
from tagatlas.api.schemas import Deleted, EnrichResponse, IngestResponse, PostIn, SuggestRequest
from tagatlas.api.security import configured_keys, parse_keys

__all__ = ["Deleted", "EnrichResponse", "IngestResponse", "PostIn", "SuggestRequest", "configured_keys", "create_app", "parse_keys"]
