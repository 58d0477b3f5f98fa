"""Live OpenSearch tests: run only when OPENSEARCH_URL names a real cluster (README, "OpenSearch live tests").

install → 1,000 real posts indexed through the ingest pipeline (OpenSearch calls a TagAtlas server this test
starts) → every document enriched or marked failed → personalised search differs for two users with different
histories → uninstall. Environment:
  OPENSEARCH_URL            e.g. http://localhost:9200
  OPENSEARCH_AUTH           user:password (security plugin on)
  OPENSEARCH_INSECURE=1     do not verify TLS (self-signed demo certificates)
  TAGATLAS_LIVE_API_URL     how the cluster reaches this machine's TagAtlas server; `{port}` is filled in
                            (default http://host.docker.internal:{port}, right for the official container on Docker)
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from conftest import BIN
from test_api import free_port

pytestmark = pytest.mark.skipif(not os.environ.get("OPENSEARCH_URL"), reason="live OpenSearch tests need OPENSEARCH_URL (see README)")

KEY = "synthetic-live-key"


@pytest.fixture()
def live(model_dir, tmp_path):
    from tagatlas.plugin import Connection

    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--model", str(folder), "--host", "0.0.0.0", "--port", str(port)],
                            env={**os.environ, "TAGATLAS_API_KEYS": KEY, "TAGATLAS_RATE_LIMIT": "100000", "TAGATLAS_RATE_BURST": "100000"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"TagAtlas server did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.3)
    client = Connection.from_env(verify_certs=os.environ.get("OPENSEARCH_INSECURE") != "1", timeout=120).client()
    api_url = os.environ.get("TAGATLAS_LIVE_API_URL", "http://host.docker.internal:{port}").format(port=port)
    yield client, api_url, folder
    proc.terminate()
    proc.wait(timeout=30)


def _real_posts(path, n: int) -> list[dict]:
    """n real tweets after the training subset; two synthetic users (named so) own the western and eastern ones."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i < 2500:
                continue
            r = json.loads(line)
            if not r.get("text"):
                continue
            out.append(r)
            if len(out) == n:
                break
    west = [r for r in out if r.get("lon") is not None and r["lon"] < -110][:60]
    east = [r for r in out if r.get("lon") is not None and r["lon"] > -80][:60]
    for r in west:
        r["user_id"] = "synthetic-west"
    for r in east:
        r["user_id"] = "synthetic-east"
    return out


def test_install_ingest_search_uninstall(live, tweets_path):
    from opensearchpy import helpers

    from tagatlas.plugin import Installer, OpenSearchSearch
    from tagatlas.recommender import TagAtlas

    client, api_url, folder = live
    model = TagAtlas.load(folder)
    index = f"tagatlas-live-{uuid.uuid4().hex[:8]}"
    inst = Installer(client, index, model.posts_.index.dim, api_url=api_url, api_key=KEY, private_endpoint=True, ml_on_data_nodes=True)
    started = time.perf_counter()
    try:
        manifest = inst.install()
        assert inst.status()["present"]["ingest_pipeline"]
        posts = _real_posts(tweets_path, 1000)
        actions = []
        for r in posts:
            doc = {"id": str(r["id"]), "text": r["text"], "hashtags": r.get("hashtags") or [], "created_at": r.get("created_at")}
            if r.get("user_id"):
                doc["user_id"] = r["user_id"]
            if r.get("lat") is not None:
                doc["location"] = {"lat": r["lat"], "lon": r["lon"]}
            actions.append({"_index": index, "_id": doc["id"], "_source": doc})
        ok, errors = helpers.bulk(client, actions, chunk_size=100, raise_on_error=False, request_timeout=300)
        assert not errors, errors[:3]
        client.indices.refresh(index=index)
        count = lambda q: client.count(index=index, body={"query": q})["count"]  # noqa: E731
        enriched = count({"term": {"tagatlas.status": "enriched"}})
        failed = count({"term": {"tagatlas.status": "failed"}})
        assert enriched + failed == len(posts) == count({"match_all": {}})  # every document enriched or marked
        assert enriched >= 0.95 * len(posts), f"only {enriched} of {len(posts)} enriched"
        searcher = OpenSearchSearch(client, index, model)
        west = searcher.search("coffee this morning", user_id="synthetic-west", k=10)
        east = searcher.search("coffee this morning", user_id="synthetic-east", k=10)
        assert west.profile.posts > 0 and east.profile.posts > 0
        assert [h.id for h in west.hits] != [h.id for h in east.hits]
        if manifest.search_pipeline:
            answer = client.search(index=index, params={"search_pipeline": manifest.search_pipeline},
                                   body={"query": {"match": {"text": {"query": "coffee this morning"}}}})
            assert answer["hits"]["hits"]
        print(f"live test: {len(posts)} posts through the pipeline, {enriched} enriched, {failed} failed, "
              f"{time.perf_counter() - started:.0f} s")
    finally:
        inst.uninstall(delete_index=True)
    assert inst.status() == {"installed": False, "index": index}
    assert not client.indices.exists(index=index)
