"""Hostile values sent to the real server: every one is a 4xx naming its field with a small body, never a 500 —
non-finite numbers, lone surrogates, times outside any era, over-long tokens and hashtags, ids holding "/", and
authentication guessing limited by address with bounded memory. Posts here are synthetic, named so."""

from __future__ import annotations

import shutil

import httpx
import pytest

from test_api import KEY, start


@pytest.fixture(scope="module")
def hostile_server(model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "served"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder, TAGATLAS_AUTH_FAILURE_BURST="5", TAGATLAS_AUTH_FAILURE_RATE="0.01")
    yield url
    proc.terminate()
    proc.wait(timeout=60)


def _post_raw(url: str, path: str, raw: str, key: str | None = KEY) -> httpx.Response:
    headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
    return httpx.post(f"{url}{path}", content=raw.encode("utf-8"), headers=headers, timeout=60)


HOSTILE = [  # (route, raw JSON body, the field the answer must name)
    ("/v1/posts", '{"id": "synthetic-h1", "text": "synthetic", "lat": NaN, "lon": 1.0}', "lat"),
    ("/v1/posts", '{"id": "synthetic-h2", "text": "synthetic", "lat": 1.0, "lon": Infinity}', "lon"),
    ("/v1/posts", '{"id": "synthetic-h3", "text": "synthetic", "lat": 1e309, "lon": 1.0}', "lat"),
    ("/v1/posts", '{"id": "synthetic-h4", "text": "synthetic \\ud800 text"}', "text"),
    ("/v1/posts", '{"id": "synthetic-\\udfff", "text": "synthetic"}', "id"),
    ("/v1/posts", '{"id": "synthetic-h5", "text": "synthetic", "hashtags": ["ok", "\\ud800"]}', "hashtags"),
    ("/v1/posts", '{"id": "synthetic-h6", "text": "synthetic", "created_at": "0001-01-01T00:00:00"}', "created_at"),
    ("/v1/posts", '{"id": "synthetic-h7", "text": "synthetic", "hashtags": ["' + "a" * 1000 + '"]}', "hashtags"),
    ("/v1/suggest", '{"text": "synthetic \\ud800"}', "text"),
    ("/v1/suggest", '{"user_id": "\\udbff", "text": "synthetic"}', "user_id"),
    ("/v1/enrich", '{"text": "synthetic", "created_at": "0001-01-01"}', "created_at"),
    ("/v1/enrich", '{"text": "synthetic \\ud800"}', "text"),
]


@pytest.mark.parametrize(("route", "raw", "field"), HOSTILE)
def test_hostile_values_are_a_small_4xx_naming_the_field(hostile_server, route, raw, field):
    r = _post_raw(hostile_server, route, raw)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert field in r.text and len(r.content) < 4000


def test_an_oversized_text_is_not_echoed_back(hostile_server):
    r = httpx.post(f"{hostile_server}/v1/suggest", json={"text": "x" * 10_000_000}, timeout=120)
    assert r.status_code == 422 and "text" in r.text and len(r.content) < 4000


def test_over_long_tokens_are_answered_not_choked_on(hostile_server):
    word = "synthetic" * 600  # one 5,400-letter token, under the text limit
    assert httpx.post(f"{hostile_server}/v1/suggest", json={"text": f"#{word[:4990]}"}, timeout=60).status_code in (200, 422)
    assert httpx.get(f"{hostile_server}/v1/search", params={"q": word[:4990]}, timeout=60).status_code == 200
    r = httpx.post(f"{hostile_server}/v1/posts", json={"id": "synthetic-long-tag", "text": "synthetic", "hashtags": ["a" * 100]},
                   headers={"X-API-Key": KEY}, timeout=60)
    assert r.status_code == 200  # 100 letters: the longest tag accepted, segmented without recursion


def test_a_post_whose_id_holds_a_slash_can_be_deleted(hostile_server):
    h = {"X-API-Key": KEY}
    assert httpx.post(f"{hostile_server}/v1/posts", json={"id": "synthetic/with/slash", "text": "synthetic"}, headers=h, timeout=60).status_code == 200
    assert httpx.delete(f"{hostile_server}/v1/posts/synthetic/with/slash", headers=h, timeout=60).status_code == 200
    assert httpx.delete(f"{hostile_server}/v1/posts/synthetic/with/slash", headers=h, timeout=60).status_code == 404


def test_key_guessing_is_limited_by_address_whatever_key_is_presented(hostile_server):
    codes = [httpx.post(f"{hostile_server}/v1/posts", json={"id": f"synthetic-g{i}", "text": "x"},
                        headers={"X-API-Key": f"guess-{i}"}, timeout=60).status_code for i in range(8)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429  # every made-up key is another guess from the same address
    assert httpx.post(f"{hostile_server}/v1/suggest", json={"text": "synthetic"}, timeout=60).status_code == 200  # no key: not blocked


def test_the_rate_limiters_forget_the_least_recent_addresses():
    from tagatlas.api.middleware import RateLimiter

    limiter = RateLimiter(rate=1.0, burst=2.0, max_clients=100)
    for i in range(10_000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.allow("a") == 0 and limiter.allow("a") == 0 and limiter.allow("a") > 0


def test_a_slow_image_host_does_not_stall_the_service(model_dir, tmp_path):
    """Many enrichments waiting on a host that answers after 3 s: /health and suggestions still answer at once."""
    import http.server
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from test_hostile_images import _Host

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder, TAGATLAS_IMAGE_URL_PREFIXES=f"http://127.0.0.1:{host.server_port}/img", TAGATLAS_IMAGE_FETCH_PRIVATE="1",
                      TAGATLAS_IMAGE_FETCH_SLOTS="2", TAGATLAS_IMAGE_FETCH_TIMEOUT="10")
    try:
        body = {"text": "synthetic: harbour at dusk", "image_url": f"http://127.0.0.1:{host.server_port}/img/slow.png"}
        with ThreadPoolExecutor(24) as pool:
            waiting = [pool.submit(httpx.post, f"{url}/v1/enrich", json=body, headers={"X-API-Key": KEY}, timeout=120) for _ in range(24)]
            time.sleep(1.0)
            started = time.monotonic()
            assert httpx.get(f"{url}/health", timeout=30).status_code == 200
            assert httpx.post(f"{url}/v1/suggest", json={"text": "synthetic harbour"}, timeout=30).status_code == 200
            assert time.monotonic() - started < 2.5
            answers = [f.result() for f in waiting]
        assert all(a.status_code == 200 for a in answers)
        notes = [n for a in answers for n in a.json()["notes"]]
        assert any("too many image fetches" in n for n in notes)  # answered at once, not queued behind the slow host
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        host.shutdown()
