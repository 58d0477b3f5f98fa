"""OpenSearch plugin without a cluster: every request body against the documented shapes, and the installer,
bulk path and search backend against a local HTTP *recorder* (tests/recorder.py — not OpenSearch)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import cli
from recorder import Recorder
from tagatlas.plugin import bodies
from tagatlas.data import read_posts
from tagatlas.plugin.bodies import Names, enrichment_fields
from tagatlas.plugin.compat import ClusterInfo, OpenSearchVersionError, parse_version
from tagatlas.recommender import Predictor

API_URL = "http://tagatlas.internal:8000"


def ml_commons_render(template: str, params: dict[str, str]) -> str:
    """What ML Commons does to the connector's request_body: JSON-escape each string parameter, substitute it."""
    out = template
    for name, value in params.items():
        out = out.replace("${parameters.%s}" % name, json.dumps(value)[1:-1])
    return out


# -- bodies ---------------------------------------------------------------------------------------
def test_index_body_and_template_follow_the_documented_mapping():
    names = Names("posts")
    body = bodies.index_body(384, names.ingest_pipeline)
    assert body["settings"]["index.knn"] is True and body["settings"]["index.default_pipeline"] == "tagatlas-posts-enrich-v1"
    props = body["mappings"]["properties"]
    assert props["location"]["type"] == "geo_point" and props["user_id"]["type"] == "keyword" and props["created_at"]["type"] == "date"
    enriched = props["tagatlas"]["properties"]
    emb = enriched["embedding"]
    assert emb["type"] == "knn_vector" and emb["dimension"] == 384
    assert emb["method"]["engine"] == "faiss" and emb["method"]["space_type"] == "innerproduct" and emb["method"]["name"] == "hnsw"
    assert enriched["location"]["type"] == "geo_point"
    assert all(enriched[f]["type"] == "keyword" for f in ("place", "hashtags", "cluster", "status", "model"))
    template = bodies.index_template_body(names, 384, None)
    assert template["index_patterns"] == ["posts", "posts-*"] and template["version"] == bodies.SCHEMA_VERSION
    assert "index.default_pipeline" not in template["template"]["settings"]  # --no-ml: no pipeline
    with pytest.raises(ValueError):
        bodies.embedding_field(0)
    for bad in ("Posts", "_posts", "po sts", "posts/1", ""):
        with pytest.raises(ValueError, match="index name"):
            Names(bad)


def test_connector_body_renders_valid_json_for_any_text():
    names = Names("posts")
    body = bodies.connector_body(names, API_URL + "/", "secret-key")
    action = body["actions"][0]
    assert body["protocol"] == "http" and action["action_type"] == "predict" and action["method"] == "POST"
    assert action["url"] == API_URL + "/v1/enrich"
    assert action["headers"]["X-API-Key"] == "${credential.api_key}" and body["credential"] == {"api_key": "secret-key"}
    assert set(body["parameters"]) == set(bodies.INPUTS) and all(v == "" for v in body["parameters"].values())
    assert body["client_config"]["max_retry_times"] >= 1
    assert "client_config" not in bodies.connector_body(names, API_URL, "k", retries=False)
    nasty = 'she said "hi"\nnew line \\ backslash, emoji 🌊, tab\t and </script>'
    rendered = json.loads(ml_commons_render(action["request_body"], {"text": nasty, "user_id": "", "image_url": "", "created_at": ""}))
    assert rendered == {"text": nasty, "user_id": "", "image_url": "", "created_at": ""}


def test_ingest_pipeline_maps_the_api_answer_and_marks_failures():
    from tagatlas.api import EnrichResponse

    names = Names("posts")
    body = bodies.ingest_pipeline_body(names, "model-1")
    kinds = [next(iter(p)) for p in body["processors"]]
    assert kinds == ["remove", "ml_inference", "set"]
    ml = body["processors"][1]["ml_inference"]
    assert ml["model_id"] == "model-1" and ml["function_name"] == "remote" and ml["ignore_missing"] is True
    assert set(ml["input_map"][0]) == set(bodies.connector_body(names, API_URL, "k")["parameters"])  # every input has a default
    outputs = ml["output_map"][0]
    assert set(outputs.values()) <= set(EnrichResponse.model_fields)  # each mapped path exists in the API's answer
    assert all(k.startswith("tagatlas.") for k in outputs)
    failure = {s["set"]["field"]: s["set"]["value"] for s in ml["on_failure"]}
    assert failure["tagatlas.status"] == "failed" and "on_failure_message" in failure["tagatlas.error"]
    final = body["processors"][2]["set"]
    assert final == {"field": "tagatlas.status", "value": "enriched", "override": False}


def test_search_pipeline_template_becomes_valid_json():
    body = bodies.search_pipeline_body(Names("posts"), "model-1", k=50)
    proc = body["request_processors"][0]["ml_inference"]
    assert proc["input_map"] == [{"text": "query.match.text.query"}] and proc["output_map"] == [{"vector": "embedding"}]
    query = json.loads(proc["query_template"].replace("${vector}", json.dumps([0.1, 0.2])))
    assert query["query"]["knn"]["tagatlas.embedding"] == {"vector": [0.1, 0.2], "k": 50}


def test_cluster_settings_append_a_trusted_regex_that_matches_only_our_service():
    current = ["^https://api\\.openai\\.com/.*$"]
    body = bodies.cluster_settings_body(current, API_URL)
    regexes = body["persistent"]["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert regexes[0] == current[0] and len(regexes) == 2  # the defaults are kept
    ours = re.compile(regexes[1])
    assert ours.match(API_URL + "/v1/enrich")
    assert not ours.match("http://tagatlas-internal:8000/v1/enrich") and not ours.match("http://evil.example/" + API_URL)
    assert bodies.cluster_settings_body(regexes, API_URL)["persistent"]["plugins.ml_commons.trusted_connector_endpoints_regex"] == regexes
    assert set(bodies.cluster_settings_body([], API_URL, private_endpoint=True, ml_on_data_nodes=True)["persistent"]) == {
        "plugins.ml_commons.trusted_connector_endpoints_regex", "plugins.ml_commons.connector.private_ip_enabled",
        "plugins.ml_commons.only_run_on_ml_node"}
    with pytest.raises(ValueError, match="http"):
        bodies.trusted_endpoint_regex("tagatlas.internal:8000")


def test_personal_query_boosts_only_with_a_profile():
    vector = np.arange(4, dtype=np.float32)
    plain = bodies.personal_query(vector, k=30, size=5)
    assert plain["size"] == 5 and "should" not in plain["query"]["bool"]
    knn = plain["query"]["bool"]["must"][0]["knn"]["tagatlas.embedding"]
    assert knn == {"vector": [0.0, 1.0, 2.0, 3.0], "k": 30}
    assert plain["_source"]["excludes"] == ["tagatlas.embedding"]
    personal = bodies.personal_query(vector, top_tags={"ramen": 0.5, "tokyo": 0.9}, top_clusters={"7": 0.4}, home=(35.66, 139.70))
    should = personal["query"]["bool"]["should"]
    terms = [s["terms"] for s in should if "terms" in s]
    assert {"tagatlas.hashtags": ["tokyo", "ramen"], "boost": 2.0} in terms and {"tagatlas.cluster": ["7"], "boost": 1.5} in terms
    feature = next(s["distance_feature"] for s in should if "distance_feature" in s)
    assert feature["field"] == "tagatlas.location" and feature["origin"] == [139.70, 35.66] and feature["pivot"] == "10km"


def test_versions_are_checked_with_a_clear_message():
    assert parse_version("2.17.1") == (2, 17, 1) and parse_version("3.0.0-alpha1") == (3, 0, 0) and parse_version("2.9") == (2, 9, 0)
    with pytest.raises(OpenSearchVersionError):
        parse_version("latest")
    old = ClusterInfo((2, 13, 0), "opensearch", frozenset({"opensearch-ml", "opensearch-knn"}))
    with pytest.raises(OpenSearchVersionError, match=r">= 2\.14\.0; this cluster runs 2\.13\.0"):
        old.require((2, 14, 0), "the ml_inference ingest processor")
    with pytest.raises(OpenSearchVersionError, match="opensearch-ml plugin"):
        ClusterInfo((2, 17, 0), "opensearch", frozenset({"opensearch-knn"})).require((2, 14, 0), "x", plugin="opensearch-ml")
    with pytest.raises(OpenSearchVersionError, match="needs OpenSearch"):
        ClusterInfo.from_responses({"version": {"number": "8.15.0"}}, []).require((2, 9, 0), "x")


# -- installer against the recorder ---------------------------------------------------------------
def _installer(rec, **kw):
    from tagatlas.plugin import Connection, Installer

    return Installer(Connection(rec.url).client(), "posts", 384, say=lambda _line: None, **{"api_url": API_URL, "api_key": "k", **kw})


def test_install_is_idempotent_and_uninstall_removes_exactly_what_it_created():
    with Recorder() as rec:
        rec.state.resources["/_ingest/pipeline/someone-elses"] = {"processors": []}
        original_settings = json.loads(json.dumps(rec.state.settings))
        m = _installer(rec, private_endpoint=True).install()
        assert m.created_index and m.connector_id and m.model_id and m.search_pipeline == "tagatlas-posts-semantic-v1"
        st = rec.state
        assert st.indices["posts"]["settings"]["index.default_pipeline"] == m.ingest_pipeline
        assert st.resources[f"/_ingest/pipeline/{m.ingest_pipeline}"]["processors"][1]["ml_inference"]["model_id"] == m.model_id
        assert st.settings["plugins.ml_commons.trusted_connector_endpoints_regex"][0] == "^https://api\\.openai\\.com/.*$"
        assert st.settings["plugins.ml_commons.connector.private_ip_enabled"] is True
        connector = st.resources[f"/_plugins/_ml/connectors/{m.connector_id}"]
        assert connector["credential"]["api_key"] == "k"
        assert "k" not in json.dumps(st.docs["tagatlas-install"]["posts"]).split('"')  # the manifest holds no key

        again = _installer(rec, private_endpoint=True).install()
        assert (again.connector_id, again.model_id) == (m.connector_id, m.model_id)
        assert len(rec.requests_to("POST", "/_plugins/_ml/connectors/_create")) == 1  # reused, not re-created

        rotated = _installer(rec, private_endpoint=True, api_key="k2").install()  # a new key: new connector, old pair removed
        assert rotated.connector_id != m.connector_id
        assert f"/_plugins/_ml/connectors/{m.connector_id}" not in st.resources and f"/_plugins/_ml/models/{m.model_id}" not in st.resources

        status = _installer(rec).status()
        assert status["installed"] and all(status["present"].values())

        _installer(rec).uninstall()
        assert st.resources == {"/_ingest/pipeline/someone-elses": {"processors": []}}  # only ours went
        assert st.settings == original_settings  # settings restored
        assert "posts" in st.indices and "index.default_pipeline" not in st.indices["posts"]["settings"]  # data kept
        assert "tagatlas-install" not in st.indices
        assert _installer(rec).uninstall() is None


def test_install_refuses_old_clusters_and_indices_without_knn():
    from tagatlas.plugin import InstallError

    with Recorder(version="2.13.0") as rec:
        with pytest.raises(OpenSearchVersionError, match="2.14"):
            _installer(rec).install()
        assert not rec.requests_to("PUT", "/_ingest")
    with Recorder(version="2.15.0") as rec:  # ingest processor yes, search processor no
        m = _installer(rec).install()
        assert m.ingest_pipeline and m.search_pipeline is None
        assert "client_config" in rec.state.resources[f"/_plugins/_ml/connectors/{m.connector_id}"]
    with Recorder() as rec:
        rec.state.indices["posts"] = {"settings": {"index.number_of_shards": "1"}, "mappings": {}}
        with pytest.raises(InstallError, match="index.knn"):
            _installer(rec).install()
    with Recorder() as rec:
        rec.state.indices["posts"] = {"settings": {"index.knn": "true"}, "mappings": {}}
        m = _installer(rec, ml=False).install()
        assert not m.created_index and m.ingest_pipeline is None and "tagatlas" in rec.state.indices["posts"]["mappings"]["properties"]
        assert not rec.requests_to("POST", "/_plugins")


# -- bulk path, search backend and /v1/enrich with the real model -----------------------------------
@pytest.fixture(scope="module")
def heldout(tmp_path_factory, tweets_path) -> Path:
    """300 real tweets after the training subset's 2,500, two of them given synthetic user ids (named so)."""
    out = tmp_path_factory.mktemp("os") / "heldout.jsonl"
    lines = []
    with gzip.open(tweets_path, "rt", encoding="utf-8") as src:
        for i, line in enumerate(src):
            if i >= 2800:
                break
            if i >= 2500:
                lines.append(line)
    out.write_text("".join(lines), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def model(model_dir):
    from tagatlas.recommender import TagAtlas

    return TagAtlas.load(model_dir)


def _ids(path: Path) -> list[str]:
    return [str(json.loads(line)["id"]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _enricher(rec, model, tmp_path, **kw):
    from tagatlas.plugin import BulkEnricher, Connection

    return BulkEnricher(model, Connection(rec.url).client(), "posts", checkpoint=tmp_path / "ckpt.json", progress=False,
                        initial_backoff=0.01, max_backoff=0.05, **kw)


def test_bulk_enrich_writes_each_post_once_and_reports_every_failure(model, heldout, tmp_path):
    ids = _ids(heldout)
    bad, throttled, flaky = ids[150], ids[151], ids[152]
    with Recorder(fail_ids={bad}, throttle={throttled: 2}, server_errors={flaky: 1}, drop_connections=1) as rec:
        report = _enricher(rec, model, tmp_path, batch_size=100).run_file(heldout)
        docs = rec.state.docs["posts"]
        seen = [i for _, i in rec.state.bulk_items_seen]
    assert report.read == len(ids) and report.written + report.failed == len(set(ids))
    assert report.failed == 1 and report.failure_reasons == {"http_400": 1} and report.retries >= 1
    assert set(docs) == set(ids) - {bad}
    failures = [json.loads(line) for line in Path(report.failures_file).read_text().splitlines()]
    assert [f["id"] for f in failures] == [bad] and "mapper" in failures[0]["_error"]["error"] and failures[0]["text"]
    # The refused first call (503, retried by the client) re-sent batch 1; 429/503 items were re-sent; every other
    # document went exactly once.
    first_batch = set(ids[:100])
    assert all(seen.count(i) == 1 for i in ids if i not in first_batch | {throttled, flaky})
    assert seen.count(throttled) == 3 and seen.count(flaky) == 2
    doc = docs[ids[0]]
    meta = doc["tagatlas"]
    assert meta["status"] == "enriched" and len(meta["embedding"]) == model.posts_.index.dim
    assert abs(np.linalg.norm(meta["embedding"]) - 1) < 1e-3
    assert meta["model"] == model.fingerprint_ and set(meta["location"]) == {"lat", "lon"} and meta["place"]
    assert doc["id"] == ids[0] and "created_at" in doc
    # written from arrays (enrichment_fields_batch): the same fields as built from a Prediction object
    first = [p for p in read_posts(heldout)][:100]  # batch 1, predicted as one batch again
    preds, vectors = model.predictor.with_vectors(first)
    assert [docs[p.id]["tagatlas"] for p in first] == [{**enrichment_fields(pr, v, model.fingerprint_), "status": "enriched"}
                                                        for pr, v in zip(preds, vectors)]
    # The failure report is itself a post file: re-running it writes the post once the cluster accepts it.
    with Recorder() as rec:
        again = _enricher(rec, model, tmp_path / "retry").run_file(report.failures_file)
        assert again.written == 1 and set(rec.state.docs["posts"]) == {bad}


def test_bulk_enrich_resumes_after_an_interruption(model, heldout, tmp_path):
    ids = _ids(heldout)[:200]
    src = tmp_path / "part.jsonl"
    src.write_text("".join(line + "\n" for line in heldout.read_text(encoding="utf-8").splitlines()[:200]), encoding="utf-8")

    class Interrupted(BaseException):  # like KeyboardInterrupt or a kill: not a model error to record
        pass

    calls = {"n": 0}
    real = Predictor.stream

    def flaky_stream(self, batches, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupted  # the process dies while encoding the third batch (nothing of it was sent)
        return real(self, batches, **kw)

    with Recorder() as rec:
        enricher = _enricher(rec, model, tmp_path, batch_size=50)
        with pytest.MonkeyPatch.context() as patch, pytest.raises(Interrupted):
            patch.setattr(Predictor, "stream", flaky_stream)
            enricher.run_file(src)
        assert json.loads((tmp_path / "ckpt.json").read_text())["position"] == 100
        report = _enricher(rec, model, tmp_path, batch_size=50).run_file(src)
        seen = [i for _, i in rec.state.bulk_items_seen]
    assert report.resumed_after == 100 and report.written == 200 and report.failed == 0
    assert sorted(seen) == sorted(ids)  # each post sent exactly once over both runs
    other = tmp_path / "other.jsonl"
    other.write_text(src.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    with Recorder() as rec:
        from tagatlas.plugin import CheckpointError

        with pytest.raises(CheckpointError, match="--checkpoint"):
            _enricher(rec, model, tmp_path, batch_size=50).run_file(other)


def test_bulk_enrich_from_an_index_skips_what_this_model_already_enriched(model, heldout, tmp_path):
    from tagatlas.plugin import BulkEnricher, Connection

    lines = heldout.read_text(encoding="utf-8").splitlines()[:120]
    with Recorder() as rec:
        rec.state.indices["raw"] = {"settings": {}, "mappings": {}}
        rec.state.docs["raw"] = {}
        for line in lines:
            r = json.loads(line)
            doc = {"text": r.get("text"), "user_id": r.get("user_id"), "hashtags": r.get("hashtags") or []}
            if r.get("lat") is not None:
                doc["location"] = [r["lon"], r["lat"]]
            rec.state.docs["raw"][str(r["id"])] = doc
        client = Connection(rec.url).client()
        first = BulkEnricher(model, client, "posts", checkpoint=tmp_path / "c.json", batch_size=50, progress=False).run_index("raw")
        second = BulkEnricher(model, client, "posts", checkpoint=tmp_path / "c.json", batch_size=50, progress=False).run_index("raw")
        assert first.written == len(lines) and first.read == len(lines)
        assert second.written == 0 and second.skipped_current == len(lines)
        located = next(i for i, d in rec.state.docs["raw"].items() if "location" in d)
        assert set(rec.state.docs["posts"][located]["location"]) == {"lat", "lon"}


def test_opensearch_search_profiles_users_from_their_documents(model, heldout, tmp_path):
    """Two synthetic users (named so) own different real posts; their profiles and query bodies differ."""
    from tagatlas.data import Post
    from tagatlas.plugin import Connection, OpenSearchSearch

    records = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines()]
    tagged = [r for r in records if r.get("hashtags")]
    assert len(tagged) >= 8
    src = tmp_path / "users.jsonl"
    with open(src, "w", encoding="utf-8") as handle:
        for i, r in enumerate(tagged[:8]):
            handle.write(json.dumps({**r, "user_id": "synthetic-a" if i < 4 else "synthetic-b"}) + "\n")
    with Recorder() as rec:
        client = Connection(rec.url).client()
        _enricher(rec, model, tmp_path).run_file(src)
        searcher = OpenSearchSearch(client, "posts", model)
        a, b = searcher.profile("synthetic-a"), searcher.profile("synthetic-b")
        assert a.posts == 4 and b.posts == 4 and a.top_tags and a.top_tags != b.top_tags
        vector = model.embed([Post(id="q", text="coffee")])[0]
        qa, qb = searcher.query(vector, a, 10), searcher.query(vector, b, 10)
        assert qa["query"]["bool"]["should"] != qb["query"]["bool"]["should"]
        result = searcher.search("coffee", user_id="synthetic-a", k=5)
        sent = rec.requests_to("POST", "/posts/_search")[-1].body
        assert sent["query"]["bool"]["must"][0]["knn"]["tagatlas.embedding"]["k"] >= 5
        assert result.profile.user_id == "synthetic-a" and len(result.hits) == 5
        own = [h for h in result.hits if h.user_id == "synthetic-a"]
        assert all(not h.coarse for h in own) and all(h.coarse for h in result.hits if h.user_id != "synthetic-a")


def test_api_enrich_answers_the_connector_and_search_uses_opensearch(model_dir, model, heldout, tmp_path):
    from test_api import KEY, USER_KEYS, start

    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    template = bodies.connector_request_template()
    with Recorder() as rec:
        src = tmp_path / "few.jsonl"
        src.write_text("".join(heldout.read_text(encoding="utf-8").splitlines(keepends=True)[:30]), encoding="utf-8")
        proc, url = start(folder, TAGATLAS_SEARCH_BACKEND="opensearch", OPENSEARCH_URL=rec.url, TAGATLAS_OPENSEARCH_INDEX="posts")
        try:
            h = {"X-API-Key": KEY, "content-type": "application/json"}
            text = 'Brunch at the "pier" \\o/\nso good #sundayfunday'
            body = ml_commons_render(template, {"text": text, "user_id": "", "image_url": "", "created_at": ""})
            r = httpx.post(f"{url}/v1/enrich", content=body, headers=h, timeout=60)
            assert r.status_code == 200, r.text
            out = r.json()
            assert len(out["embedding"]) == model.posts_.index.dim and abs(np.linalg.norm(out["embedding"]) - 1) < 1e-3
            assert set(out["location"]) == {"lat", "lon"} and out["radius_km"] > 0 and out["model"] and out["place"]
            # an unfilled placeholder (older ML Commons) and a literal null mean "missing"
            raw = template.replace("${parameters.text}", "coffee downtown").replace("${parameters.created_at}", "2015-06-01T10:00:00Z")
            r = httpx.post(f"{url}/v1/enrich", content=raw.replace("${parameters.image_url}", "null"), headers=h, timeout=60)
            assert r.status_code == 200, r.text
            r = httpx.post(f"{url}/v1/enrich", content=ml_commons_render(template, {"text": "", "user_id": "", "image_url": "",
                                                                                    "created_at": ""}), headers=h, timeout=60)
            assert r.status_code == 422 and "'text'" in r.text
            r = httpx.post(f"{url}/v1/enrich", json={"text": "x", "created_at": "yesterday"}, headers=h, timeout=60)
            assert r.status_code == 422 and "created_at" in r.text
            r = httpx.post(f"{url}/v1/enrich", json={"text": "x", "image_url": "http://169.254.169.254/latest"}, headers=h, timeout=60)
            assert r.status_code == 200 and any("TAGATLAS_IMAGE_URL_PREFIXES" in n for n in r.json()["notes"])
            assert httpx.post(f"{url}/v1/enrich", json={"text": "x"}, timeout=60).status_code == 401
            alice_key = USER_KEYS["synthetic-alice"]
            r = httpx.post(f"{url}/v1/enrich", json={"text": "x", "user_id": "synthetic-bob"}, headers={"X-API-Key": alice_key}, timeout=60)
            assert r.status_code == 403 and "user_id" in r.text

            cli("opensearch", "enrich", "--model", folder, "--url", rec.url, "--in", src, "--checkpoint", tmp_path / "k.json",
                "--no-progress")
            assert len(rec.state.docs["posts"]) == 30
            r = httpx.get(f"{url}/v1/search", params={"q": "coffee", "k": 5}, timeout=60)
            assert r.status_code == 200, r.text
            assert len(r.json()["hits"]) == 5 and all(h["coarse"] for h in r.json()["hits"])
            assert "knn" in rec.requests_to("POST", "/posts/_search")[-1].body["query"]["bool"]["must"][0]
            assert httpx.get(f"{url}/health", timeout=10).json()["search_backend"] == "opensearch"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_cli_names_what_is_wrong(model_dir, tmp_path):
    proc = cli("opensearch", "install", "--model", model_dir, "--url", "ftp://x", check=False)
    assert proc.returncode == 2 and "--url" in proc.stderr
    proc = cli("opensearch", "install", "--model", model_dir, "--url", "http://127.0.0.1:9", "--no-ml", check=False)
    assert proc.returncode == 2 and "cannot reach the cluster" in proc.stderr
    with Recorder() as rec:
        proc = cli("opensearch", "install", "--model", model_dir, "--url", rec.url, check=False)
        assert proc.returncode == 2 and "--api-url" in proc.stderr
        proc = cli("opensearch", "install", "--model", model_dir, "--url", rec.url, "--api-url", API_URL, "--api-key", "k",
                   "--index", "Bad", check=False)
        assert proc.returncode == 2 and "index name" in proc.stderr
        proc = cli("opensearch", "install", "--model", model_dir, "--url", rec.url, "--api-url", API_URL, "--api-key", "k")
        assert json.loads(proc.stdout)["model_id"] and "connector" in proc.stderr
        proc = cli("opensearch", "enrich", "--model", model_dir, "--url", rec.url, check=False)
        assert proc.returncode == 2 and "'--in'" in proc.stderr
        proc = cli("opensearch", "uninstall", "--url", rec.url)
        assert json.loads(proc.stdout)["uninstalled"] is True
