"""A local HTTP *recorder* for the OpenSearch tests: it stores every request TagAtlas sends and answers with the
response shapes the OpenSearch documentation gives, keeping just enough state (stored bodies, documents) for a
sequence of calls to make sense. It is NOT OpenSearch and proves nothing about a real cluster: the live tests
(tests/test_opensearch_live.py, OPENSEARCH_URL) do that.

Failure injection: `fail_ids` (per-item 400 mapper errors), `throttle` (id → number of 429s before success),
`server_errors` (id → number of per-item 503s), `drop_connections` (number of `_bulk` calls to refuse with a 503).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    body: object


@dataclass
class RecorderState:
    version: str = "2.17.0"
    distribution: str = "opensearch"
    plugins: list = field(default_factory=lambda: ["opensearch-knn", "opensearch-ml"])
    requests: list[Recorded] = field(default_factory=list)
    resources: dict = field(default_factory=dict)  # path → stored body (pipelines, templates, connectors, models, …)
    indices: dict = field(default_factory=dict)  # index → {"settings": flat dict, "mappings": dict}
    docs: dict = field(default_factory=dict)  # index → {id: source}
    settings: dict = field(default_factory=lambda: {"plugins.ml_commons.trusted_connector_endpoints_regex": ["^https://api\\.openai\\.com/.*$"]})
    fail_ids: set = field(default_factory=set)
    throttle: dict = field(default_factory=dict)
    server_errors: dict = field(default_factory=dict)
    drop_connections: int = 0
    bulk_items_seen: list = field(default_factory=list)  # every (index, id) of every _bulk line, in order
    scrolls: dict = field(default_factory=dict)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))


class _Handler(BaseHTTPRequestHandler):
    state: RecorderState
    lock: threading.Lock

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        text = raw.decode()
        if self.path.split("?")[0].endswith("_bulk"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        with self.lock:
            self.state.requests.append(Recorded(method, url.path, params, body))
            status, payload = self._route(method, url.path.rstrip("/") or "/", params, body)
        self._send(status, payload)

    do_GET = lambda self: self._handle("GET")  # noqa: E731
    do_PUT = lambda self: self._handle("PUT")  # noqa: E731
    do_POST = lambda self: self._handle("POST")  # noqa: E731
    do_DELETE = lambda self: self._handle("DELETE")  # noqa: E731
    do_HEAD = lambda self: self._handle("HEAD")  # noqa: E731

    # -- routes -----------------------------------------------------------------------------------
    def _route(self, method, path, params, body):  # noqa: C901 (one table of routes reads best flat)
        st = self.state
        parts = [p for p in path.split("/") if p]
        missing = (404, {"error": {"type": "resource_not_found_exception", "reason": f"{path} not found"}, "status": 404})
        if path == "/":
            return 200, {"name": "recorder", "version": {"distribution": st.distribution, "number": st.version}}
        if path == "/_cat/plugins":
            return 200, [{"name": "node-1", "component": c, "version": st.version} for c in st.plugins]
        if path == "/_cluster/settings":
            if method == "GET":
                return 200, {"persistent": {}, "transient": {}, "defaults": dict(st.settings)}
            for k, v in body.get("persistent", {}).items():
                if v is None:  # null resets a setting to its default
                    st.settings.pop(k, None)
                else:
                    st.settings[k] = v
            return 200, {"acknowledged": True, "persistent": body.get("persistent", {}), "transient": {}}
        if path == "/_plugins/_ml/connectors/_create":
            cid = f"rec-connector-{next(st.counter)}"
            st.resources[f"/_plugins/_ml/connectors/{cid}"] = body
            return 200, {"connector_id": cid}
        if path == "/_plugins/_ml/models/_register":
            mid = f"rec-model-{next(st.counter)}"
            st.resources[f"/_plugins/_ml/models/{mid}"] = {**body, "model_state": "DEPLOYED" if params.get("deploy") == "true" else "REGISTERED"}
            return 200, {"task_id": f"rec-task-{mid}", "status": "CREATED", "model_id": mid}
        if len(parts) == 5 and parts[:3] == ["_plugins", "_ml", "models"] and parts[4] in ("_deploy", "_undeploy"):
            key = "/" + "/".join(parts[:4])
            if key not in st.resources:
                return missing
            st.resources[key]["model_state"] = "DEPLOYED" if parts[4] == "_deploy" else "UNDEPLOYED"
            return 200, {"task_id": "rec-task", "status": "COMPLETED"}
        if parts and parts[0] in ("_ingest", "_search", "_index_template", "_plugins") and not path.startswith("/_search/scroll"):
            if method == "PUT":
                st.resources[path] = body
                return 200, {"acknowledged": True}
            if path not in st.resources:
                return missing
            if method == "DELETE":
                del st.resources[path]
                return 200, {"acknowledged": True, "result": "deleted"}
            stored = st.resources[path]
            if parts[0] == "_ingest":
                return 200, {parts[-1]: stored}
            if parts[0] == "_search":
                return 200, {parts[-1]: stored}
            if parts[0] == "_index_template":
                return 200, {"index_templates": [{"name": parts[-1], "index_template": stored}]}
            return 200, stored
        if path in ("/_bulk",) or (len(parts) == 2 and parts[1] == "_bulk"):
            return self._bulk(parts[0] if len(parts) == 2 else None, body)
        if path == "/_search/scroll":
            if method == "DELETE":
                return 200, {"succeeded": True, "num_freed": 1}
            sid = (body or {}).get("scroll_id") or params.get("scroll_id")
            rest, size = st.scrolls.get(sid, ([], 10))
            st.scrolls[sid] = (rest[size:], size)
            return 200, {"_scroll_id": sid, "_shards": SHARDS, "hits": {"total": {"value": len(rest), "relation": "eq"}, "hits": rest[:size]}}
        if len(parts) == 2 and parts[1] == "_search":
            return self._search(parts[0], params, body)
        if len(parts) == 2 and parts[1] == "_mget":
            docs = st.docs.get(parts[0], {})
            return 200, {"docs": [{"_index": parts[0], "_id": i, "found": i in docs, **({"_source": docs[i]} if i in docs else {})}
                                  for i in body["ids"]]}
        if len(parts) == 2 and parts[1] == "_count":
            if parts[0] not in st.docs and parts[0] not in st.indices:
                return missing
            return 200, {"count": len(st.docs.get(parts[0], {}))}
        if len(parts) == 3 and parts[1] == "_doc":
            index, doc_id = parts[0], parts[2]
            docs = st.docs.setdefault(index, {})
            if method == "PUT":
                st.indices.setdefault(index, {"settings": {}, "mappings": {}})
                docs[doc_id] = body
                return 201, {"_index": index, "_id": doc_id, "result": "created"}
            if method == "DELETE":
                return (200, {"result": "deleted"}) if docs.pop(doc_id, None) is not None else missing
            if doc_id in docs:
                return 200, {"_index": index, "_id": doc_id, "found": True, "_source": docs[doc_id]}
            return 404, {"_index": index, "_id": doc_id, "found": False}
        if len(parts) == 2 and parts[1] == "_settings":
            if parts[0] not in st.indices:
                return 404, {"error": {"type": "index_not_found_exception", "reason": f"no such index [{parts[0]}]"}, "status": 404}
            if method == "PUT":
                for k, v in body.items():
                    key = k if k.startswith("index.") else f"index.{k}"
                    if v is None:
                        st.indices[parts[0]]["settings"].pop(key, None)
                    else:
                        st.indices[parts[0]]["settings"][key] = v
                return 200, {"acknowledged": True}
            return 200, {parts[0]: {"settings": {k: (str(v).lower() if isinstance(v, bool) else str(v))
                                                  for k, v in st.indices[parts[0]]["settings"].items()}}}
        if len(parts) == 2 and parts[1] == "_mapping":
            if parts[0] not in st.indices:
                return missing
            st.indices[parts[0]]["mappings"].setdefault("properties", {}).update(body.get("properties", {}))
            return 200, {"acknowledged": True}
        if len(parts) == 1:
            index = parts[0]
            if method == "PUT":
                if index in st.indices:
                    return 400, {"error": {"type": "resource_already_exists_exception", "reason": f"index [{index}] already exists"}}
                flat = {(k if k.startswith("index.") else f"index.{k}"): v for k, v in (body or {}).get("settings", {}).items()}
                st.indices[index] = {"settings": flat, "mappings": (body or {}).get("mappings", {})}
                return 200, {"acknowledged": True, "index": index}
            if method == "DELETE":
                if index not in st.indices:
                    return missing
                st.indices.pop(index)
                st.docs.pop(index, None)
                return 200, {"acknowledged": True}
        return 400, {"error": {"type": "recorder_unknown_route", "reason": f"{method} {path} is not a route the recorder knows"}}

    def _bulk(self, default_index, lines):
        st = self.state
        if st.drop_connections > 0:
            st.drop_connections -= 1
            return 503, {"error": {"type": "unavailable", "reason": "recorder: injected 503 for the whole bulk call"}, "status": 503}
        items, errors = [], False
        for action, source in zip(lines[0::2], lines[1::2]):
            op, meta = next(iter(action.items()))
            index, doc_id = meta.get("_index", default_index), str(meta["_id"])
            st.bulk_items_seen.append((index, doc_id))
            if st.throttle.get(doc_id, 0) > 0:
                st.throttle[doc_id] -= 1
                items.append({op: {"_index": index, "_id": doc_id, "status": 429,
                                   "error": {"type": "es_rejected_execution_exception", "reason": "recorder: injected 429"}}})
                errors = True
            elif st.server_errors.get(doc_id, 0) > 0:
                st.server_errors[doc_id] -= 1
                items.append({op: {"_index": index, "_id": doc_id, "status": 503,
                                   "error": {"type": "unavailable_shards_exception", "reason": "recorder: injected 503"}}})
                errors = True
            elif doc_id in st.fail_ids:
                items.append({op: {"_index": index, "_id": doc_id, "status": 400,
                                   "error": {"type": "mapper_parsing_exception", "reason": "recorder: injected mapping error"}}})
                errors = True
            else:
                created = doc_id not in st.docs.setdefault(index, {})
                st.docs[index][doc_id] = source
                items.append({op: {"_index": index, "_id": doc_id, "status": 201 if created else 200,
                                   "result": "created" if created else "updated"}})
        return 200, {"took": 1, "errors": errors, "items": items}

    def _search(self, index, params, body):
        docs = self.state.docs.get(index, {})
        query = (body or {}).get("query", {})
        selected = list(docs.items())
        term = query.get("term")
        if term:
            (field_name, value), = term.items()
            value = value.get("value") if isinstance(value, dict) else value

            def get(src, dotted):
                for part in dotted.split("."):
                    src = src.get(part) if isinstance(src, dict) else None
                return src
            selected = [(i, s) for i, s in selected if get(s, field_name) == value]
        hits = [{"_index": index, "_id": i, "_score": 1.0, "_source": s} for i, s in selected]
        answer = {"took": 1, "_shards": SHARDS, "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits[: (body or {}).get("size", 10)]}}
        aggs = {}
        for name, agg in (body or {}).get("aggs", {}).items():  # terms aggregations only
            counts: dict = {}
            for _, src in selected:
                value = src
                for part in agg["terms"]["field"].split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                for v in (value if isinstance(value, list) else [value]):
                    if v is not None:
                        counts[v] = counts.get(v, 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[: agg["terms"].get("size", 10)]
            aggs[name] = {"buckets": [{"key": k, "doc_count": c} for k, c in top]}
        if aggs:
            answer["aggregations"] = aggs
        if "scroll" in params:
            size = int(params.get("size") or (body or {}).get("size", 10))
            sid = f"rec-scroll-{next(self.state.counter)}"
            self.state.scrolls[sid] = (hits[size:], size)
            answer["_scroll_id"] = sid
            answer["hits"]["hits"] = hits[:size]
        return 200, answer


class Recorder:
    """`with Recorder() as rec:` serves on a free localhost port; `rec.url`, `rec.state`."""

    def __init__(self, **state):
        self.state = RecorderState(**state)
        handler = type("Handler", (_Handler,), {"state": self.state, "lock": threading.Lock()})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Recorder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests_to(self, method: str, prefix: str) -> list[Recorded]:
        return [r for r in self.state.requests if r.method == method and r.path.startswith(prefix)]
