"""Every request body TagAtlas sends to OpenSearch, one function each (shapes from ../shared/OPENSEARCH.md and the docs).

Kept free of I/O so the tests check each body against the documented shape. Both ways in — the
ingest pipeline calling `/v1/enrich` and `tagatlas opensearch enrich` — write the same `tagatlas.*`
fields, built by `enrichment_fields`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from tagatlas.recommender import Decisions, Prediction

SCHEMA_VERSION = 1  # bump when a body below changes shape: resources carry it in their names and `version` fields
FIELD = "tagatlas"  # the object every enrichment field lives under
INPUTS = ("text", "user_id", "image_url", "created_at")  # document fields the connector sends to TagAtlas
OUTPUTS = ("place", "place_name", "place_prob", "location", "radius_km", "hashtags", "cluster", "embedding", "model")
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-.]{0,200}$")


def check_index_name(name: str) -> str:
    """OpenSearch index names: lowercase, no spaces or `\\/*?"<>|,#:`, not starting with `_`, `-` or `+`."""
    if not INDEX_NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"index name {name!r} is not valid: use lowercase letters, digits, '-', '_' or '.', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Names:
    """Names of everything the installer creates for one posts index (versioned, so an upgrade can run beside the old)."""

    index: str
    prefix: str = "tagatlas"
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_index_name(self.index)

    @property
    def template(self) -> str:
        return f"{self.prefix}-{self.index}"

    @property
    def ingest_pipeline(self) -> str:
        return f"{self.prefix}-{self.index}-enrich-v{self.version}"

    @property
    def search_pipeline(self) -> str:
        return f"{self.prefix}-{self.index}-semantic-v{self.version}"

    @property
    def connector(self) -> str:
        return f"{self.prefix}-{self.index}-connector-v{self.version}"

    @property
    def model(self) -> str:
        return f"{self.prefix}-{self.index}-model-v{self.version}"

    @property
    def manifest_index(self) -> str:
        """Where the installer records what it created (one document per posts index), so uninstall removes exactly that."""
        return f"{self.prefix}-install"


def embedding_field(dim: int, m: int = 16, ef_construction: int = 128) -> dict:
    """A `knn_vector` on the faiss engine; embeddings are L2-normalised, so inner product is cosine."""
    if dim < 1:
        raise ValueError(f"dimension must be positive, got {dim}")
    return {"type": "knn_vector", "dimension": int(dim),
            "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
                       "parameters": {"m": int(m), "ef_construction": int(ef_construction)}}}


def enrichment_properties(dim: int) -> dict:
    """Mapping of the `tagatlas` object."""
    return {"properties": {
        "place": {"type": "keyword"}, "place_name": {"type": "keyword"}, "place_prob": {"type": "float"},
        "location": {"type": "geo_point"}, "radius_km": {"type": "float"},
        "hashtags": {"type": "keyword"}, "cluster": {"type": "keyword"}, "model": {"type": "keyword"},
        "status": {"type": "keyword"}, "error": {"type": "keyword", "ignore_above": 1024},
        "embedding": embedding_field(dim),
    }}


def post_properties() -> dict:
    """The post's own fields as TagAtlas reads them (a user's index may hold more; dynamic mapping keeps those)."""
    return {"id": {"type": "keyword"}, "text": {"type": "text"}, "user_id": {"type": "keyword"}, "created_at": {"type": "date"},
            "hashtags": {"type": "keyword"}, "location": {"type": "geo_point"}, "image_url": {"type": "keyword", "index": False}}


def index_settings(pipeline: str | None, shards: int = 1, replicas: int = 1) -> dict:
    settings: dict = {"index.knn": True, "number_of_shards": int(shards), "number_of_replicas": int(replicas)}
    if pipeline:
        settings["index.default_pipeline"] = pipeline
    return settings


def index_body(dim: int, pipeline: str | None, shards: int = 1, replicas: int = 1) -> dict:
    """`PUT /<index>`: k-NN enabled, enrichment pipeline as the default one (when path A is installed)."""
    return {"settings": index_settings(pipeline, shards, replicas),
            "mappings": {"properties": {**post_properties(), FIELD: enrichment_properties(dim)}}}


def index_template_body(names: Names, dim: int, pipeline: str | None, shards: int = 1, replicas: int = 1) -> dict:
    """`PUT /_index_template/<name>`: indices named like the posts index (and its rollovers) get the same mapping."""
    body = index_body(dim, pipeline, shards, replicas)
    return {"index_patterns": [names.index, f"{names.index}-*"], "priority": 200, "version": names.version,
            "_meta": {"managed_by": "tagatlas", "schema_version": names.version, "dimension": int(dim)},
            "template": body}


def mapping_update_body(dim: int) -> dict:
    """`PUT /<index>/_mapping` for an index that existed before install (new fields only; existing ones must agree)."""
    return {"properties": {FIELD: enrichment_properties(dim)}}


def trusted_endpoint_regex(api_url: str) -> str:
    """A Java regex matching exactly the TagAtlas service's URLs (ML Commons refuses untrusted connector endpoints)."""
    base = api_url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+", base):
        raise ValueError(f"api url {api_url!r} must start with http:// or https:// and name a host")
    return "^" + re.escape(base) + "/.*$"


def cluster_settings_body(current_regexes: list[str], api_url: str, private_endpoint: bool = False,
                          ml_on_data_nodes: bool = False) -> dict:
    """`PUT /_cluster/settings`: append our endpoint to the trusted list (replacing the list would drop the defaults)."""
    regex = trusted_endpoint_regex(api_url)
    regexes = list(current_regexes) + ([regex] if regex not in current_regexes else [])
    persistent: dict = {"plugins.ml_commons.trusted_connector_endpoints_regex": regexes}
    if private_endpoint:
        persistent["plugins.ml_commons.connector.private_ip_enabled"] = True
    if ml_on_data_nodes:
        persistent["plugins.ml_commons.only_run_on_ml_node"] = False
    return {"persistent": persistent}


def connector_request_template() -> str:
    """The JSON ML Commons sends to `/v1/enrich`: `${parameters.x}` is replaced by the document's field.

    ML Commons JSON-escapes string parameters before substituting them (ConnectorUtils.escapeRemoteInferenceInputData);
    fields a document lacks keep the connector's default (empty), which the API reads as missing.
    """
    return json.dumps({name: "${parameters.%s}" % name for name in INPUTS})


def connector_body(names: Names, api_url: str, api_key: str, retries: bool = True) -> dict:
    """`POST /_plugins/_ml/connectors/_create`: one predict action calling TagAtlas's `/v1/enrich`."""
    body = {"name": names.connector, "description": "TagAtlas post enrichment (place, coordinates, hashtags, cluster, embedding)",
            "version": str(names.version), "protocol": "http",
            "parameters": {name: "" for name in INPUTS},
            "credential": {"api_key": api_key},
            "actions": [{"action_type": "predict", "method": "POST", "url": api_url.rstrip("/") + "/v1/enrich",
                         "headers": {"Content-Type": "application/json", "X-API-Key": "${credential.api_key}"},
                         "request_body": connector_request_template()}]}
    if retries:
        body["client_config"] = {"max_retry_times": 3, "retry_backoff_policy": "exponential_full_jitter"}
    return body


def model_register_body(names: Names, connector_id: str) -> dict:
    """`POST /_plugins/_ml/models/_register?deploy=true`: a remote model over the connector."""
    return {"name": names.model, "function_name": "remote", "connector_id": connector_id,
            "description": f"TagAtlas enrichment for index {names.index}"}


def ingest_pipeline_body(names: Names, model_id: str) -> dict:
    """`PUT /_ingest/pipeline/<name>`: call TagAtlas per document; on failure index it anyway, marked `failed`.

    The old `tagatlas` object is removed first: `ml_inference` refuses to overwrite an existing field, so
    re-indexing an enriched document would otherwise fail.
    """
    return {"description": f"TagAtlas enrichment (schema v{names.version})", "version": names.version,
            "processors": [
                {"remove": {"field": FIELD, "ignore_missing": True}},
                {"ml_inference": {"model_id": model_id, "function_name": "remote",
                                  "input_map": [{name: name for name in INPUTS}],
                                  "output_map": [{f"{FIELD}.{name}": name for name in OUTPUTS}],
                                  "ignore_missing": True,
                                  "on_failure": [{"set": {"field": f"{FIELD}.status", "value": "failed"}},
                                                 {"set": {"field": f"{FIELD}.error", "value": "{{_ingest.on_failure_message}}"}}]}},
                {"set": {"field": f"{FIELD}.status", "value": "enriched", "override": False}},
            ]}


def search_pipeline_body(names: Names, model_id: str, k: int = 100) -> dict:
    """`PUT /_search/pipeline/<name>` (>= 2.16): `{"query": {"match": {"text": {"query": "..."}}}}` becomes a k-NN query
    on the TagAtlas embedding of that text. Personal boosts need the user's profile: `personal_query` adds them."""
    template = json.dumps({"query": {"knn": {f"{FIELD}.embedding": {"vector": "VECTOR", "k": int(k)}}}}).replace('"VECTOR"', "${vector}")
    return {"description": f"TagAtlas semantic query rewrite (schema v{names.version})",
            "request_processors": [{"ml_inference": {"model_id": model_id, "function_name": "remote",
                                                     "input_map": [{"text": "query.match.text.query"}],
                                                     "output_map": [{"vector": "embedding"}],
                                                     "query_template": template}}]}


def enrichment_fields(pred: Prediction, vector: np.ndarray | list[float], model_version: str | None) -> dict:
    """The `tagatlas` object of one enriched document (also the body `/v1/enrich` answers with)."""
    top = pred.places[0] if pred.places else None
    return {"place": top.place if top else None, "place_name": top.name if top else None,
            "place_prob": round(float(top.prob), 6) if top else None,
            "location": {"lat": round(float(pred.lat), 6), "lon": round(float(pred.lon), 6)},
            "radius_km": float(pred.radius_km), "hashtags": [t.tag for t in pred.hashtags],
            "cluster": pred.cluster, "embedding": [round(float(v), 7) for v in np.asarray(vector, dtype=np.float32).ravel()],
            "model": model_version or "unsaved"}


def enrichment_fields_batch(decisions: Decisions, vectors: np.ndarray, model_version: str | None) -> list[dict]:
    """`enrichment_fields` of a whole batch from its columnar predictions (bulk enrichment builds no `Prediction`s)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return [{"place": r["pred_place"], "place_name": r["pred_place_name"], "place_prob": round(float(r["pred_place_prob"]), 6),
             "location": {"lat": round(float(r["pred_lat"]), 6), "lon": round(float(r["pred_lon"]), 6)},
             "radius_km": float(r["pred_radius_km"]), "hashtags": r["pred_hashtags"], "cluster": r["pred_cluster"],
             "embedding": [round(v, 7) for v in vector.tolist()], "model": model_version or "unsaved"}
            for r, vector in zip(decisions.records(), vectors, strict=True)]


def post_document(post, fields: dict | None, error: str | None = None) -> dict:
    """The document written for a post: its own fields plus `tagatlas` (status enriched, or failed with the reason)."""
    doc: dict = {"id": post.id, "text": post.text, "user_id": post.user_id, "hashtags": list(post.hashtags)}
    if post.created_at is not None:
        created = post.created_at if post.created_at.tzinfo else post.created_at.replace(tzinfo=timezone.utc)
        doc["created_at"] = created.isoformat()
    if post.has_location:
        doc["location"] = {"lat": post.lat, "lon": post.lon}
    if fields is not None:
        doc[FIELD] = {**fields, "status": "enriched"}
    else:
        doc[FIELD] = {"status": "failed", "error": (error or "enrichment failed")[:1000]}
    return doc


def personal_query(vector: np.ndarray | list[float], k: int = 100, size: int = 20, top_tags: dict[str, float] | None = None,
                   top_clusters: dict[str, float] | None = None, home: tuple[float, float] | None = None,
                   since: datetime | None = None, tag_boost: float = 2.0,
                   cluster_boost: float = 1.5, place_boost: float = 1.0, pivot_km: float = 10.0, max_terms: int = 20) -> dict:
    """`POST /<index>/_search`: k-NN on the embedding, boosted by the user's habitual tags and clusters and by
    closeness to the user's home place (`distance_feature` on `tagatlas.location`). No profile: plain k-NN."""
    knn: dict = {"vector": [float(v) for v in np.asarray(vector, dtype=np.float32).ravel()], "k": int(k)}
    filters = []
    if since is not None:
        filters.append({"range": {"created_at": {"gte": since.isoformat()}}})
    if filters:
        knn["filter"] = {"bool": {"filter": filters}}
    should: list[dict] = []
    if top_tags:
        tags = [t for t, _ in sorted(top_tags.items(), key=lambda kv: -kv[1])[:max_terms]]
        should.append({"terms": {f"{FIELD}.hashtags": tags, "boost": tag_boost}})
        should.append({"terms": {"hashtags": tags, "boost": tag_boost}})
    if top_clusters:
        clusters = [c for c, _ in sorted(top_clusters.items(), key=lambda kv: -kv[1])[:max_terms]]
        should.append({"terms": {f"{FIELD}.cluster": clusters, "boost": cluster_boost}})
    if home is not None:
        lat, lon = home
        should.append({"distance_feature": {"field": f"{FIELD}.location", "origin": [float(lon), float(lat)],
                                            "pivot": f"{pivot_km:g}km", "boost": place_boost}})
    query: dict = {"bool": {"must": [{"knn": {f"{FIELD}.embedding": knn}}]}}
    if should:
        query["bool"]["should"] = should
    return {"size": int(size), "query": query, "_source": {"excludes": [f"{FIELD}.embedding"]}}


def profile_query(user_id: str, top: int = 20) -> dict:
    """`POST /<index>/_search`: the user's habits from their own enriched documents (tags, clusters, places)."""
    return {"size": 0, "query": {"term": {"user_id": user_id}},
            "aggs": {"tags": {"terms": {"field": "hashtags", "size": top}},
                     "clusters": {"terms": {"field": f"{FIELD}.cluster", "size": top}},
                     "places": {"terms": {"field": f"{FIELD}.place", "size": top}}}}
