"""`tagatlas opensearch install / uninstall / status`: create, idempotently, what path A needs, and remove exactly that.

What install created is recorded in a manifest document (index `tagatlas-install`, id = the posts index),
so a second install reuses it, and uninstall deletes only those resources and reverts only the cluster
settings it changed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from tagatlas.plugin import bodies
from tagatlas.plugin.bodies import Names
from tagatlas.plugin.client import call, cluster_info, get_or_none
from tagatlas.plugin.compat import KNN_FAISS_FILTER, ML_INFERENCE_INGEST, OpenSearchVersionError

log = logging.getLogger(__name__)

TRUSTED = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
ML_NODE_ONLY = "plugins.ml_commons.only_run_on_ml_node"


class InstallError(RuntimeError):
    """A step failed; the message says which and what the cluster answered."""


@dataclass
class Manifest:
    """What one install created (stored in the cluster; never holds the API key itself)."""

    index: str
    schema_version: int
    dimension: int
    created_index: bool = False
    template: str | None = None
    ingest_pipeline: str | None = None
    search_pipeline: str | None = None
    connector_id: str | None = None
    model_id: str | None = None
    endpoint_fingerprint: str | None = None  # hash of api url + key: a change re-creates connector and model
    added_trusted_regex: str | None = None
    previous_settings: dict = field(default_factory=dict)  # cluster settings install changed → their earlier values
    installed_at: float = 0.0


def _fingerprint(api_url: str, api_key: str) -> str:
    return hashlib.sha256(f"{api_url}\n{api_key}".encode()).hexdigest()[:16]


class Installer:
    """Install path A (ML Commons connector + ingest/search pipelines) or, with `ml=False`, only the mapping."""

    def __init__(self, client: OpenSearch, index: str, dimension: int, *, api_url: str | None = None, api_key: str | None = None,
                 ml: bool = True, private_endpoint: bool = False, ml_on_data_nodes: bool = False, shards: int = 1,
                 replicas: int = 1, say: Callable[[str], None] = print, poll_seconds: float = 1.0, poll_timeout: float = 120.0):
        self.client, self.names, self.dimension = client, Names(index), int(dimension)
        self.api_url, self.api_key, self.ml = api_url, api_key, ml
        self.private_endpoint, self.ml_on_data_nodes = private_endpoint, ml_on_data_nodes
        self.shards, self.replicas = shards, replicas
        self.say, self.poll_seconds, self.poll_timeout = say, poll_seconds, poll_timeout
        if ml and not (api_url and api_key):
            raise ValueError("'--api-url' and '--api-key' are required for the ML Commons connector (or pass --no-ml)")

    # -- manifest ---------------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        found = get_or_none(self.client, f"/{self.names.manifest_index}/_doc/{self.names.index}")
        if not found or not found.get("found"):
            return None
        return Manifest(**found["_source"])

    def _save_manifest(self, m: Manifest) -> None:
        call(self.client, "PUT", f"/{self.names.manifest_index}/_doc/{self.names.index}", body=asdict(m), params={"refresh": "true"})

    # -- install ----------------------------------------------------------------------------------
    def install(self) -> Manifest:
        info = cluster_info(self.client)
        info.require(KNN_FAISS_FILTER, "the TagAtlas mapping (faiss k-NN with filters)", plugin="opensearch-knn")
        if self.ml:
            info.require(ML_INFERENCE_INGEST, "the ml_inference ingest processor", plugin="opensearch-ml")
        old = self.manifest()
        if old is not None and old.dimension != self.dimension:
            raise InstallError(f"index {self.names.index!r} was installed for {old.dimension}-dimensional embeddings, this model has "
                               f"{self.dimension}: use another --index (or uninstall --delete-index first)")
        m = old or Manifest(index=self.names.index, schema_version=self.names.version, dimension=self.dimension)
        m.schema_version = self.names.version
        pipeline, stale = None, (None, None)
        if self.ml:
            self._trust_endpoint(m)
            stale = self._connector_and_model(m, info.connector_retries_supported)
            pipeline = self.names.ingest_pipeline
            call(self.client, "PUT", f"/_ingest/pipeline/{pipeline}", body=bodies.ingest_pipeline_body(self.names, m.model_id))
            m.ingest_pipeline = pipeline
            self.say(f"ingest pipeline {pipeline}: put")
            if info.search_pipeline_supported:
                call(self.client, "PUT", f"/_search/pipeline/{self.names.search_pipeline}",
                     body=bodies.search_pipeline_body(self.names, m.model_id))
                m.search_pipeline = self.names.search_pipeline
                self.say(f"search pipeline {self.names.search_pipeline}: put")
            else:
                self.say(f"search pipeline skipped: ml_inference search processors need OpenSearch >= 2.16 "
                         f"(cluster runs {'.'.join(map(str, info.version))}); `tagatlas opensearch search` still works")
        call(self.client, "PUT", f"/_index_template/{self.names.template}",
             body=bodies.index_template_body(self.names, self.dimension, pipeline, self.shards, self.replicas))
        m.template = self.names.template
        self.say(f"index template {self.names.template}: put")
        self._index(m, pipeline)
        if stale != (None, None):  # the pipeline now calls the new model: the old pair can go
            self._delete_model_and_connector(*stale)
        m.installed_at = time.time()
        self._save_manifest(m)
        self.say(f"installed for index {self.names.index} (manifest in {self.names.manifest_index})")
        return m

    def _settings_and_trusted(self) -> tuple[dict, list[str]]:
        """Effective cluster settings (defaults < transient < persistent) and the trusted endpoint regexes."""
        current = call(self.client, "GET", "/_cluster/settings", params={"include_defaults": "true", "flat_settings": "true"})
        merged = {**current.get("defaults", {}), **current.get("transient", {}), **current.get("persistent", {})}
        regexes = merged.get(TRUSTED) or []
        return merged, [regexes] if isinstance(regexes, str) else list(regexes)

    def _trust_endpoint(self, m: Manifest) -> None:
        merged, regexes = self._settings_and_trusted()
        body = bodies.cluster_settings_body(regexes, self.api_url, self.private_endpoint, self.ml_on_data_nodes)
        wanted = body["persistent"]
        regex = bodies.trusted_endpoint_regex(self.api_url)
        changed = {k: v for k, v in wanted.items() if merged.get(k) != v and not (k == TRUSTED and regex in regexes)}
        if not changed:
            self.say("cluster settings: already trust the TagAtlas endpoint")
            return
        for key in changed:
            if key != TRUSTED:
                m.previous_settings.setdefault(key, merged.get(key))
        if TRUSTED in changed:
            m.added_trusted_regex = regex
        call(self.client, "PUT", "/_cluster/settings", body={"persistent": changed})
        self.say(f"cluster settings: {', '.join(sorted(changed))} updated")

    def _connector_and_model(self, m: Manifest, retries: bool) -> tuple[str | None, str | None]:
        """Reuse the recorded connector and model, or create them; returns the (model, connector) ids they replace."""
        fp = _fingerprint(self.api_url, self.api_key)
        reusable = (m.connector_id and m.model_id and m.endpoint_fingerprint == fp
                    and get_or_none(self.client, f"/_plugins/_ml/connectors/{m.connector_id}") is not None
                    and get_or_none(self.client, f"/_plugins/_ml/models/{m.model_id}") is not None)
        if reusable:
            self._ensure_deployed(m.model_id)
            self.say(f"connector {m.connector_id} and model {m.model_id}: reused")
            return None, None
        stale = (m.model_id, m.connector_id)
        created = call(self.client, "POST", "/_plugins/_ml/connectors/_create",
                       body=bodies.connector_body(self.names, self.api_url, self.api_key, retries))
        connector_id = created["connector_id"]
        registered = call(self.client, "POST", "/_plugins/_ml/models/_register", params={"deploy": "true"},
                          body=bodies.model_register_body(self.names, connector_id))
        model_id = registered.get("model_id") or self._wait_task(registered["task_id"]).get("model_id")
        if not model_id:
            raise InstallError(f"model registration answered {registered}; no model_id")
        self._ensure_deployed(model_id)
        m.connector_id, m.model_id, m.endpoint_fingerprint = connector_id, model_id, fp
        self.say(f"connector {connector_id} and model {model_id}: created")
        return stale

    def _wait_task(self, task_id: str) -> dict:
        deadline = time.monotonic() + self.poll_timeout
        while True:
            task = call(self.client, "GET", f"/_plugins/_ml/tasks/{task_id}")
            state = task.get("state")
            if state == "COMPLETED":
                return task
            if state in ("FAILED", "CANCELLED", "COMPLETED_WITH_ERROR"):
                raise InstallError(f"ML task {task_id} ended {state}: {task.get('error')}")
            if time.monotonic() > deadline:
                raise InstallError(f"ML task {task_id} still {state} after {self.poll_timeout:.0f} s")
            time.sleep(self.poll_seconds)

    def _ensure_deployed(self, model_id: str) -> None:
        model = call(self.client, "GET", f"/_plugins/_ml/models/{model_id}")
        if model.get("model_state") == "DEPLOYED":
            return
        answer = call(self.client, "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
        if answer.get("task_id") and answer.get("status") != "COMPLETED":
            self._wait_task(answer["task_id"])

    def _index(self, m: Manifest, pipeline: str | None) -> None:
        index = self.names.index
        settings = get_or_none(self.client, f"/{index}/_settings", params={"flat_settings": "true"})
        if settings is None:
            call(self.client, "PUT", f"/{index}", body=bodies.index_body(self.dimension, pipeline, self.shards, self.replicas))
            m.created_index = True
            self.say(f"index {index}: created")
        else:
            flat = next(iter(settings.values()))["settings"]
            if str(flat.get("index.knn", "false")).lower() != "true":
                raise InstallError(f"index {index!r} exists without index.knn=true (a static setting): install into a new index "
                                   f"and reindex (POST _reindex), or pass another --index")
            call(self.client, "PUT", f"/{index}/_mapping", body=bodies.mapping_update_body(self.dimension))
            if pipeline:
                call(self.client, "PUT", f"/{index}/_settings", body={"index.default_pipeline": pipeline})
            self.say(f"index {index}: existed; enrichment mapping{' and default pipeline' if pipeline else ''} added")

    # -- uninstall --------------------------------------------------------------------------------
    def uninstall(self, delete_index: bool = False) -> Manifest | None:
        m = self.manifest()
        if m is None:
            self.say(f"nothing to uninstall: no TagAtlas manifest for index {self.names.index}")
            return None
        index = self.names.index
        settings = get_or_none(self.client, f"/{index}/_settings", params={"flat_settings": "true"})
        if settings is not None and m.ingest_pipeline:
            flat = next(iter(settings.values()))["settings"]
            if flat.get("index.default_pipeline") == m.ingest_pipeline:
                call(self.client, "PUT", f"/{index}/_settings", body={"index.default_pipeline": None})
                self.say(f"index {index}: default pipeline removed")
        if m.search_pipeline:
            self._delete(f"/_search/pipeline/{m.search_pipeline}", "search pipeline")
        if m.ingest_pipeline:
            self._delete(f"/_ingest/pipeline/{m.ingest_pipeline}", "ingest pipeline")
        self._delete_model_and_connector(m.model_id, m.connector_id)
        if m.template:
            self._delete(f"/_index_template/{m.template}", "index template")
        self._restore_settings(m)
        if m.created_index and settings is not None:
            if delete_index:
                self._delete(f"/{index}", "index (with its documents)")
            else:
                self.say(f"index {index} kept (install created it, but it holds documents): pass --delete-index to remove it")
        call(self.client, "DELETE", f"/{self.names.manifest_index}/_doc/{index}", params={"refresh": "true"})
        count = call(self.client, "GET", f"/{self.names.manifest_index}/_count").get("count", 0)
        if count == 0:
            self._delete(f"/{self.names.manifest_index}", "manifest index")
        self.say(f"uninstalled from index {index}")
        return m

    def _delete(self, path: str, what: str) -> None:
        try:
            call(self.client, "DELETE", path)
            self.say(f"{what} {path}: deleted")
        except NotFoundError:
            self.say(f"{what} {path}: already gone")

    def _delete_model_and_connector(self, model_id: str | None, connector_id: str | None) -> None:
        if model_id:
            try:
                call(self.client, "POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
            except NotFoundError:
                pass
            self._delete(f"/_plugins/_ml/models/{model_id}", "model")
        if connector_id:
            self._delete(f"/_plugins/_ml/connectors/{connector_id}", "connector")

    def _restore_settings(self, m: Manifest) -> None:
        persistent: dict = dict(m.previous_settings)
        if m.added_trusted_regex:
            _, regexes = self._settings_and_trusted()
            if m.added_trusted_regex in regexes:
                persistent[TRUSTED] = [r for r in regexes if r != m.added_trusted_regex]
        if persistent:
            call(self.client, "PUT", "/_cluster/settings", body={"persistent": persistent})
            self.say(f"cluster settings: {', '.join(sorted(persistent))} restored")

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict:
        """The manifest and, for each resource it names, whether the cluster still has it."""
        m = self.manifest()
        if m is None:
            return {"installed": False, "index": self.names.index}
        present = {
            "index": get_or_none(self.client, f"/{self.names.index}/_settings") is not None,
            "template": bool(m.template and get_or_none(self.client, f"/_index_template/{m.template}")),
            "ingest_pipeline": bool(m.ingest_pipeline and get_or_none(self.client, f"/_ingest/pipeline/{m.ingest_pipeline}")),
            "search_pipeline": bool(m.search_pipeline and get_or_none(self.client, f"/_search/pipeline/{m.search_pipeline}")),
            "connector": bool(m.connector_id and get_or_none(self.client, f"/_plugins/_ml/connectors/{m.connector_id}")),
            "model": bool(m.model_id and get_or_none(self.client, f"/_plugins/_ml/models/{m.model_id}")),
        }
        return {"installed": True, "manifest": asdict(m), "present": present}


__all__ = ["Installer", "InstallError", "Manifest", "OpenSearchVersionError"]
