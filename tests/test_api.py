"""The REST service as a real server on a free localhost port, driven over HTTP."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import BIN
KEY = "synthetic-test-key"  # a service key
USER_KEYS = {"synthetic-alice": "synthetic-alice-key", "synthetic-bob": "synthetic-bob-key"}
ALL_KEYS = ",".join([KEY] + [f"{k}={u}" for u, k in USER_KEYS.items()])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path, keys: str | None = ALL_KEYS, **env_vars: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TAGATLAS_API_KEYS": keys or "", **env_vars}
    proc = subprocess.Popen([str(BIN), "serve", "--model", str(folder), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("server did not start in 120 s")


@pytest.fixture()
def served(model_dir, tmp_path):
    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder)
    yield folder, url
    proc.terminate()
    proc.wait(timeout=30)


def test_suggest_ingest_delete_and_metrics(served):
    _, url = served
    h = {"X-API-Key": KEY}
    r = httpx.post(f"{url}/v1/suggest", json={"text": "we're hiring! retail sales associate, apply now"}, timeout=30)
    assert r.status_code == 200 and r.json()["places"] and r.json()["hashtag_candidates"]
    post = {"id": "synthetic-api-1", "user_id": "synthetic-u", "text": "synthetic kite festival at the dunes #synthkitetag",
            "hashtags": ["synthkitetag"], "lat": 52.0, "lon": 4.3}
    assert httpx.post(f"{url}/v1/posts", json=post, timeout=30).status_code == 401
    assert httpx.post(f"{url}/v1/posts", json=post, headers={"X-API-Key": "wrong"}, timeout=30).status_code == 401
    r = httpx.post(f"{url}/v1/posts", json=post, headers=h, timeout=30)
    assert r.status_code == 200 and r.json()["post"]["hashtags"] == ["synthkitetag"]
    assert httpx.post(f"{url}/v1/posts", json=post, headers=h, timeout=30).status_code == 409
    r = httpx.post(f"{url}/v1/suggest", json={"text": "synthetic kite festival at the dunes"}, timeout=30)
    assert "synthkitetag" in [t["tag"] for t in r.json()["hashtag_candidates"]]
    assert httpx.delete(f"{url}/v1/posts/synthetic-api-1", headers=h, timeout=30).status_code == 200
    assert httpx.delete(f"{url}/v1/posts/synthetic-api-1", headers=h, timeout=30).status_code == 404
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'tagatlas_requests_total{route="/v1/suggest",status="200"}' in metrics
    for status in ("401", "409", "404"):  # the status each answer really had, noted by the ASGI middleware
        assert f'tagatlas_requests_total{{route="/v1/posts{"/{post_id}" if status == "404" else ""}",status="{status}"}}' in metrics
    assert 'tagatlas_request_seconds_count{route="/v1/suggest"}' in metrics
    assert httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]["/v1/suggest"]


def test_bad_requests_are_4xx_naming_the_field(served, tmp_path):
    _, url = served
    r = httpx.post(f"{url}/v1/suggest", json={"text": "x" * 6000}, timeout=30)
    assert r.status_code == 422 and "text" in r.text
    r = httpx.post(f"{url}/v1/suggest", json={"text": "ok", "colour": "red"}, timeout=30)
    assert r.status_code == 422 and "colour" in r.text
    r = httpx.post(f"{url}/v1/suggest", json={}, timeout=30)
    assert r.status_code == 422 and "text" in r.text
    r = httpx.post(f"{url}/v1/suggest", json={"image_base64": "%%%not base64"}, timeout=30)
    assert r.status_code == 422 and "image_base64" in r.text
    r = httpx.post(f"{url}/v1/suggest", json={"text": "hi", "user_id": "someone"}, timeout=30)
    assert r.status_code == 401  # personalisation needs a key
    r = httpx.post(f"{url}/v1/posts", json={"id": "p", "lat": 95, "lon": 0}, headers={"X-API-Key": KEY}, timeout=30)
    assert r.status_code == 422 and "lat" in r.text
    r = httpx.post(f"{url}/v1/suggest", content=b"{broken", headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422


def test_image_suggestion(served, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    _, url = served
    photo = tmp_path / "flower.jpg"
    Image.fromarray(load_sample_image("flower.jpg")).save(photo)
    r = httpx.post(f"{url}/v1/suggest", json={"image_base64": base64.b64encode(photo.read_bytes()).decode()}, timeout=60)
    assert r.status_code == 200 and r.json()["places"]
    r = httpx.post(f"{url}/v1/suggest", json={"image_base64": base64.b64encode(b"not an image").decode()}, timeout=60)
    assert r.status_code == 422 and "image_base64" in r.text  # the client is told its photo was unreadable, not a 500


def test_photo_gps_is_used_but_returned_exactly_only_on_request(served, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from tagatlas.data.photo import with_photo_metadata

    _, url = served
    photo = tmp_path / "china.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)
    tagged = with_photo_metadata(photo, 40.7128, -74.0060, out=tmp_path / "gps.jpg")  # a synthetic position
    body = {"text": "view from here", "image_base64": base64.b64encode(tagged.read_bytes()).decode()}
    default = httpx.post(f"{url}/v1/suggest", json=body, timeout=60).json()
    exact = httpx.post(f"{url}/v1/suggest", json={**body, "photo_gps": True}, timeout=60).json()
    assert default["location_source"] == exact["location_source"] == "photo_gps"
    assert (exact["lat"], exact["lon"]) == pytest.approx((40.7128, -74.0060), abs=1e-4)
    assert "40.7128" not in json.dumps(default) and (default["lat"], default["lon"]) != pytest.approx((40.7128, -74.0060), abs=1e-3)


def test_no_keys_configured_means_no_writes(model_dir, tmp_path):
    folder = tmp_path / "closed"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder, keys=None)
    try:
        r = httpx.post(f"{url}/v1/posts", json={"id": "x", "text": "y"}, headers={"X-API-Key": "anything"}, timeout=30)
        assert r.status_code == 403 and "no API keys" in r.text
        assert httpx.get(f"{url}/health", timeout=30).json()["writes_enabled"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_acknowledged_posts_survive_kill_9(model_dir, tmp_path):
    """Stream 1,000 posts, kill -9 the server mid-stream, restart: every acknowledged post is there, once."""
    import threading

    folder = tmp_path / "crash"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder)
    acked: list[str] = []
    sent: list[str] = []

    def stream():
        with httpx.Client(timeout=30) as client:
            for i in range(1000):
                post = {"id": f"synthetic-crash-{i}", "user_id": "synthetic-crash", "text": f"synthetic crash test post {i} #synthcrash"}
                sent.append(post["id"])
                try:
                    if client.post(f"{url}/v1/posts", json=post, headers={"X-API-Key": KEY}).status_code == 200:
                        acked.append(post["id"])
                except httpx.HTTPError:
                    return  # the server died under us

    writer = threading.Thread(target=stream)
    writer.start()
    deadline = time.time() + 300
    while len(acked) < 200 and time.time() < deadline and writer.is_alive():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    writer.join(timeout=60)
    assert 200 <= len(acked) < 1000, "the kill should land mid-stream"
    proc, url = start(folder)
    try:
        from tagatlas.recommender import TagAtlas

        model = TagAtlas.load(folder)
        rows = model.posts_.store._db.execute("SELECT id FROM posts WHERE id LIKE 'synthetic-crash-%'").fetchall()
        stored = [r[0] for r in rows]
        assert len(stored) == len(set(stored))  # none duplicated
        assert set(acked) <= set(stored) <= set(sent)  # every acknowledged post survived
        assert model.posts_.index.count() == model.posts_.store.count()  # and is searchable
        r = httpx.post(f"{url}/v1/suggest", json={"text": f"synthetic crash test post {acked[-1].rsplit('-', 1)[1]}"}, timeout=30)
        assert any(n.startswith("synthetic-crash-") for n in r.json()["neighbours"])
        again = httpx.post(f"{url}/v1/posts", json={"id": acked[0], "text": "retry"}, headers={"X-API-Key": KEY}, timeout=30)
        assert again.status_code == 409  # a client retrying an acknowledged post cannot duplicate it
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_personalised_search_differs_between_users_and_explains_why(served):
    _, url = served
    h = {"X-API-Key": KEY}
    # Two synthetic users with different habits, and candidate posts that match each habit.
    posts = [
        {"id": "synthetic-s-a1", "user_id": "synthetic-alice", "text": "synthetic morning surf session", "hashtags": ["synthsurf"]},
        {"id": "synthetic-s-b1", "user_id": "synthetic-bob", "text": "synthetic morning chess club", "hashtags": ["synthchess"]},
        {"id": "synthetic-s-c1", "user_id": "synthetic-carol", "text": "synthetic morning at the beach", "hashtags": ["synthsurf"],
         "lat": 34.0, "lon": -118.5},
        {"id": "synthetic-s-c2", "user_id": "synthetic-carol", "text": "synthetic morning at the park", "hashtags": ["synthchess"]},
    ]
    for p in posts:
        assert httpx.post(f"{url}/v1/posts", json=p, headers=h, timeout=30).status_code == 200
    q = "synthetic morning"
    anon = httpx.get(f"{url}/v1/search", params={"q": q}, timeout=30)
    assert anon.status_code == 200 and anon.json()["profile"] is None
    assert httpx.get(f"{url}/v1/search", params={"q": q, "user": "synthetic-alice"}, timeout=30).status_code == 401
    # A user's history serves only that user's own key: not the service key, not another user's key.
    assert httpx.get(f"{url}/v1/search", params={"q": q, "user": "synthetic-alice"}, headers=h, timeout=30).status_code == 403
    as_bob = {"X-API-Key": USER_KEYS["synthetic-bob"]}
    assert httpx.get(f"{url}/v1/search", params={"q": q, "user": "synthetic-alice"}, headers=as_bob, timeout=30).status_code == 403
    assert httpx.post(f"{url}/v1/suggest", json={"text": q, "user_id": "synthetic-alice"}, headers=as_bob, timeout=30).status_code == 403
    assert httpx.post(f"{url}/v1/posts", json={"id": "x", "user_id": "synthetic-alice", "text": "y"}, headers=as_bob,
                      timeout=30).status_code == 403
    assert httpx.delete(f"{url}/v1/posts/synthetic-s-a1", headers=as_bob, timeout=30).status_code == 403
    alice = httpx.get(f"{url}/v1/search", params={"q": q, "user": "synthetic-alice", "k": 10},
                      headers={"X-API-Key": USER_KEYS["synthetic-alice"]}, timeout=30).json()
    bob = httpx.get(f"{url}/v1/search", params={"q": q, "user": "synthetic-bob", "k": 10}, headers=as_bob, timeout=30).json()
    mine = httpx.post(f"{url}/v1/suggest", json={"text": q, "user_id": "synthetic-bob"}, headers=as_bob, timeout=30)
    assert mine.status_code == 200
    rank = lambda res, pid: [x["id"] for x in res["hits"]].index(pid)  # noqa: E731
    assert rank(alice, "synthetic-s-c1") < rank(alice, "synthetic-s-c2")
    assert rank(bob, "synthetic-s-c2") < rank(bob, "synthetic-s-c1")
    hit = next(x for x in alice["hits"] if x["id"] == "synthetic-s-c1")
    assert hit["reasons"]["your_tags"] == ["synthsurf"] and hit["coarse"] is True  # someone else's post: coarse
    own = next(x for x in alice["hits"] if x["id"] == "synthetic-s-a1")
    assert own["coarse"] is False
    bad = httpx.get(f"{url}/v1/search", params={"q": ""}, timeout=30)
    assert bad.status_code == 422 and "q" in bad.text


def test_rate_limit_answers_429_with_retry_after(model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from tagatlas.api import create_app

    folder = tmp_path / "limited"
    shutil.copytree(model_dir, folder)
    with TestClient(create_app(folder, api_keys={KEY}, rate=0.5, burst=2)) as client:
        codes = [client.get("/health").status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
        limited = client.get("/health")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1 and "rate limit" in limited.text


def test_coarse_suggestion_returns_the_place_coordinates(served):
    _, url = served
    r = httpx.post(f"{url}/v1/suggest", json={"text": "istanbul trafik", "coarse": True}, timeout=30).json()
    assert (r["lat"], r["lon"]) == (round(r["places"][0]["lat"], 2), round(r["places"][0]["lon"], 2))


def test_a_bad_encoder_thread_setting_is_refused_by_name(tmp_path, monkeypatch):
    from tagatlas.api import create_app

    for bad in ("two", "0", "-1"):
        monkeypatch.setenv("TAGATLAS_ENCODER_THREADS", bad)
        with pytest.raises(ValueError, match="TAGATLAS_ENCODER_THREADS"):
            create_app(tmp_path)
    monkeypatch.delenv("TAGATLAS_ENCODER_THREADS")
    with pytest.raises(ValueError, match="background_slots"):
        create_app(tmp_path, background_slots=0)


def test_searches_and_ingests_take_turns_while_suggestions_run_beside_them(model_dir, tmp_path, monkeypatch):
    """With one background slot, search and ingest never run at once, and a suggestion is answered while one runs."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from tagatlas.api import create_app
    from tagatlas.recommender import TagAtlas
    from tagatlas.recommender.ingest import Ingest

    folder = tmp_path / "slots"
    shutil.copytree(model_dir, folder)
    guard, armed, suggested = threading.Lock(), threading.Event(), threading.Event()
    running = {"now": 0, "most": 0}

    def held_until_a_suggestion(real):
        def wrapped(self, *args, **kwargs):
            if not armed.is_set():  # start-up (warm-up) is not under test
                return real(self, *args, **kwargs)
            with guard:
                running["now"] += 1
                running["most"] = max(running["most"], running["now"])
            try:
                suggested.wait(30)
                time.sleep(0.02)  # long enough for a second background request to overlap, if it could
                return real(self, *args, **kwargs)
            finally:
                with guard:
                    running["now"] -= 1
        return wrapped

    real_predict = TagAtlas.predict

    def predict(self, posts, **kwargs):
        if armed.is_set() and running["now"] > 0:
            suggested.set()  # a suggestion's model call while background work is in progress
        return real_predict(self, posts, **kwargs)

    monkeypatch.setattr(TagAtlas, "search", held_until_a_suggestion(TagAtlas.search))
    monkeypatch.setattr(Ingest, "prepare_add", held_until_a_suggestion(Ingest.prepare_add))
    monkeypatch.setattr(TagAtlas, "predict", predict)
    with TestClient(create_app(folder, api_keys={KEY})) as client, ThreadPoolExecutor(6) as pool:
        armed.set()
        background = [pool.submit(client.get, "/v1/search", params={"q": "snow day"}) for _ in range(3)]
        background += [pool.submit(client.post, "/v1/posts", headers={"X-API-Key": KEY},
                                   json={"id": f"synthetic-slot-{i}", "text": "synthetic snow day #synthslot"}) for i in range(2)]
        for _ in range(3000):
            if running["now"]:
                break
            time.sleep(0.01)
        suggestion = client.post("/v1/suggest", json={"text": "snow day again"})
        codes = [f.result(timeout=120).status_code for f in background]
    assert suggestion.status_code == 200 and suggested.is_set()
    assert codes == [200] * 5 and running["most"] == 1


def test_key_configuration_parses_service_and_user_keys(tmp_path, monkeypatch):
    from tagatlas.api import configured_keys, parse_keys

    assert parse_keys(["svc", " k1 = alice ", "", "# comment"]) == {"svc": None, "k1": "alice"}
    key_file = tmp_path / "keys"
    key_file.write_text("k2=bob\n")
    monkeypatch.setenv("TAGATLAS_API_KEYS", "svc,k1=alice")
    monkeypatch.setenv("TAGATLAS_API_KEY_FILE", str(key_file))
    assert configured_keys() == {"svc": None, "k1": "alice", "k2": "bob"}
