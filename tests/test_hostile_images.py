"""Images from outside: URL fetching that only reaches what the operator allowed (no prefix tricks, no redirects, no
private addresses, one answer for every failure, bounded time and slots), and image files that are refused before
they are decoded (decompression bombs) or because they are no image at all. Files here are synthetic, named so."""

from __future__ import annotations

import base64
import http.server
import io
import os
import threading
import time

import pytest
from PIL import Image

from tagatlas.api.images import BUSY, NOT_ALLOWED, NOT_FETCHED, AllowedPrefix, ImageFetcher, public_address
from tagatlas.core.settings import SettingsError
from tagatlas.encoders.image import ImageLoadError, check_image, load_image


def synthetic_png(size=(64, 48), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 1 if mode == "1" else (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def synthetic_bomb() -> bytes:
    """An 11,000 × 11,000 one-bit PNG: kilobytes on the wire, 363 MB once decoded to RGB (the probe's case)."""
    return synthetic_png((11_000, 11_000), "1")


BOMB = synthetic_bomb()


@pytest.mark.parametrize(("prefix", "url", "admitted"), [
    ("http://127.0.0.1:4711", "http://127.0.0.1:4711/a.jpg", True),
    ("http://127.0.0.1:4711", "http://127.0.0.1:47111/a.jpg", False),  # a longer port is another port
    ("http://allowed.example.com", "http://allowed.example.com.evil.test/a.jpg", False),  # another host
    ("http://allowed.example.com", "http://allowed.example.com@evil.test/a.jpg", False),  # userinfo: the host is evil.test
    ("http://allowed.example.com", "https://allowed.example.com/a.jpg", False),  # another scheme
    ("http://allowed.example.com", "http://ALLOWED.example.com:80/a.jpg", True),  # same host, default port
    ("http://h.example/img/", "http://h.example/img/x.jpg", True),
    ("http://h.example/img", "http://h.example/imgs/x.jpg", False),  # the path on a segment boundary
    ("http://h.example/img", "http://h.example/img/../secret", False),  # dot segments
    ("http://h.example/img", "http://h.example/img/%2e%2e/secret", False),
    ("http://h.example/img", "http://h.example/img%2f..%2fsecret", False),
    ("http://h.example/img", "http://h.example:99999/img/x.jpg", False),  # an impossible port
])
def test_an_allowed_prefix_compares_scheme_host_port_and_path_segments(prefix, url, admitted):
    assert AllowedPrefix.parse(prefix).admits(url) is admitted


def test_bad_prefixes_are_refused_by_name():
    for bad in ("ftp://h.example/", "h.example/img", "http://user:pw@h.example/", "http://h.example/a/../b"):
        with pytest.raises(SettingsError, match="TAGATLAS_IMAGE_URL_PREFIXES"):
            AllowedPrefix.parse(bad)


def test_only_public_unicast_addresses_are_public():
    assert public_address("93.184.216.34") and public_address("2606:2800:220:1::1")
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1", "0.0.0.0"):
        assert not public_address(private), private


class _Host(http.server.BaseHTTPRequestHandler):
    """A synthetic image host: /ok.png an image, /moved a redirect, /slow an image after 3 s, /bomb a bomb, else 404."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/img/slow.png":
            time.sleep(3)
        make = {"/img/ok.png": synthetic_png, "/img/slow.png": synthetic_png, "/img/bomb.png": lambda: BOMB,
                "/img/text.png": lambda: b"synthetic: not an image"}.get(self.path)
        body = make() if make else None
        if self.path == "/img/moved":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/img/ok.png")
            self.end_headers()
            return
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_host():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_fetching_reaches_only_what_is_allowed_and_answers_every_failure_alike(image_host, tmp_path):
    fetcher = ImageFetcher([f"{image_host}/img"], allow_private=True, timeout_s=1.0)
    path, note = fetcher.fetch(f"{image_host}/img/ok.png")
    assert note is None and check_image(path) == (64, 48)
    os.unlink(path)
    assert fetcher.fetch(f"{image_host}/secret.png") == (None, NOT_ALLOWED)
    answers = {url: fetcher.fetch(url) for url in (f"{image_host}/img/moved", f"{image_host}/img/missing.png",
                                                 f"{image_host}/img/bomb.png", f"{image_host}/img/text.png")}
    assert set(answers.values()) == {(None, NOT_FETCHED)}  # a redirect is not followed, a bomb or non-image not kept
    closed = ImageFetcher(["http://127.0.0.1:9"], allow_private=True, timeout_s=1.0).fetch("http://127.0.0.1:9/img/ok.png")
    assert closed == (None, NOT_FETCHED)  # a closed port answers as an open one does
    started = time.monotonic()
    assert fetcher.fetch(f"{image_host}/img/slow.png") == (None, NOT_FETCHED)
    assert time.monotonic() - started < 2.5  # the deadline, not the host, ends it
    # Without TAGATLAS_IMAGE_FETCH_PRIVATE a loopback host is refused, with the same answer.
    assert ImageFetcher([f"{image_host}/img"]).fetch(f"{image_host}/img/ok.png") == (None, NOT_FETCHED)


def test_a_slow_host_takes_its_slots_and_no_more(image_host):
    fetcher = ImageFetcher([f"{image_host}/img"], allow_private=True, timeout_s=5.0, slots=1)
    slow = threading.Thread(target=fetcher.fetch, args=(f"{image_host}/img/slow.png",))
    slow.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert fetcher.fetch(f"{image_host}/img/ok.png") == (None, BUSY)
    assert time.monotonic() - started < 0.5
    slow.join()
    path, note = fetcher.fetch(f"{image_host}/img/ok.png")
    assert note is None
    os.unlink(path)


def test_images_are_refused_from_the_header_or_when_unreadable(tmp_path):
    with pytest.raises(ImageLoadError) as bomb:
        check_image(synthetic_bomb())
    assert bomb.value.too_large and "11000 × 11000" in bomb.value.reason
    jpeg = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 10)).save(jpeg, "JPEG")
    for name, raw in {"random bytes": os.urandom(4096), "truncated JPEG": jpeg.getvalue()[:2000],
                      "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'}.items():
        with pytest.raises(ImageLoadError) as bad:
            check_image(raw)
        assert not bad.value.too_large, name
    assert check_image(jpeg.getvalue()) == (640, 480)
    fifo = tmp_path / "synthetic.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="not a regular file"):  # a FIFO would block forever
        load_image(str(fifo))


def test_the_api_names_the_image_field_for_a_bomb_or_an_unreadable_upload(served_without_keys):
    import httpx

    url = served_without_keys
    r = httpx.post(f"{url}/v1/suggest", json={"text": "synthetic", "image_base64": base64.b64encode(synthetic_bomb()).decode()}, timeout=60)
    assert r.status_code == 413 and "image_base64" in r.text and "pixels" in r.text
    r = httpx.post(f"{url}/v1/suggest", json={"text": "synthetic", "image_base64": base64.b64encode(os.urandom(2048)).decode()}, timeout=60)
    assert r.status_code == 422 and "image_base64" in r.text and "not a readable image" in r.text
    ok = httpx.post(f"{url}/v1/suggest", json={"text": "synthetic", "image_base64": base64.b64encode(synthetic_png()).decode()}, timeout=60)
    assert ok.status_code == 200


@pytest.fixture()
def served_without_keys(model_dir, tmp_path):
    import shutil

    from test_api import start

    folder = tmp_path / "served"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder, keys=None)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
