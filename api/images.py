"""Images that reach the service: uploads (base64), checked before any model reads them, and, for enrichment, URLs
the operator allowed.

Fetching a URL from a server is an SSRF risk, so a URL is fetched only when its scheme, host and port equal those of
an allowed entry (TAGATLAS_IMAGE_URL_PREFIXES) and its path lies under the entry's path on a segment boundary;
redirects are never followed; a host that resolves to a private, loopback, link-local or otherwise non-public address
is refused unless TAGATLAS_IMAGE_FETCH_PRIVATE is set, and the connection goes to the address that was checked (no
second DNS answer). Every failure after the allow-list gives the client one short note, whatever the cause (a
closed port and an open one look alike); the cause goes to the log. Fetches have a total deadline and a bounded
number of slots of their own, so a slow host cannot hold the request pool."""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import logging
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from fastapi import HTTPException

from tagatlas.api.schemas import MAX_IMAGE_BYTES
from tagatlas.core.settings import SettingsError
from tagatlas.encoders.image import ImageLoadError, check_image

log = logging.getLogger(__name__)

NOT_ALLOWED = "image_url ignored: not under an allowed prefix (TAGATLAS_IMAGE_URL_PREFIXES)"
NOT_FETCHED = "image_url not fetched"  # the one answer for every failure after the allow-list
BUSY = "image_url not fetched: too many image fetches in progress; retry later"
DEFAULT_PORTS = {"http": 80, "https": 443}


def image_file(image_base64: str) -> str:
    """Decode the upload into a temporary file (removed by the caller) after checking it is an image TagAtlas reads
    (format, pixel count from the header, a full decode): 4xx naming the field otherwise."""
    try:
        raw = base64.b64decode(image_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(422, f"'image_base64' is not valid base64: {str(exc)[:100]}") from exc
    if len(raw) > MAX_IMAGE_BYTES:
        raise HTTPException(413, f"'image_base64' decodes to {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
    try:
        check_image(raw)
    except ImageLoadError as exc:
        status = 413 if exc.too_large else 422
        raise HTTPException(status, f"'image_base64' is not a readable image: {exc.reason}") from exc
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
        handle.write(raw)
    return handle.name


@dataclass(frozen=True)
class AllowedPrefix:
    """One allowed place images may come from: scheme, host and port exactly, and a path prefix."""

    scheme: str
    host: str
    port: int
    path: str  # "" or "/…" without a trailing slash: the URL's path must equal it or continue it after a "/"

    @classmethod
    def parse(cls, prefix: str) -> "AllowedPrefix":
        try:
            parts = urlsplit(prefix.strip())
            port = parts.port
        except ValueError as exc:
            raise SettingsError(f"TAGATLAS_IMAGE_URL_PREFIXES: {prefix!r}: {exc}") from exc
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise SettingsError(f"TAGATLAS_IMAGE_URL_PREFIXES: {prefix!r} is not an http(s) URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment or not _plain_path(parts.path):
            raise SettingsError(f"TAGATLAS_IMAGE_URL_PREFIXES: {prefix!r} may hold only scheme, host, port and a plain path")
        return cls(parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme], parts.path.rstrip("/"))

    def admits(self, url: str) -> bool:
        """Whether `url` lies under this prefix: same scheme, host and port, its path this path or below it."""
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:  # a port that is not a number, or out of range
            return False
        if parts.scheme != self.scheme or (parts.hostname or "").lower() != self.host or port != self.port:
            return False
        if parts.username or parts.password or "\\" in url or not _plain_path(parts.path):
            return False
        return not self.path or parts.path == self.path or parts.path.startswith(self.path + "/")


def _plain_path(path: str) -> bool:
    """A path without dot segments or encoded separators (a server normalising them could leave the prefix)."""
    decoded = unquote(path)
    return "%2f" not in path.lower() and "%5c" not in path.lower() and not any(seg in (".", "..") for seg in decoded.split("/"))


def public_address(address: str) -> bool:
    """Whether an IP address is a public unicast one (not private, loopback, link-local, multicast, reserved …)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address already checked, with the certificate and SNI still of the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class ImageFetcher:
    """Fetch images from allowed URLs into temporary files (the caller removes them), at most `slots` at once, each
    within `timeout_s` in all."""

    def __init__(self, prefixes: Sequence[str], allow_private: bool = False, max_bytes: int = MAX_IMAGE_BYTES,
                 timeout_s: float = 5.0, slots: int = 4, resolve: Callable[[str, int], list[str]] | None = None):
        self.prefixes = [AllowedPrefix.parse(p) for p in prefixes]
        self.allow_private, self.max_bytes, self.timeout_s = allow_private, max_bytes, timeout_s
        self.slots = threading.BoundedSemaphore(slots)
        self._resolve = resolve or _resolve

    def fetch(self, url: str) -> tuple[str | None, str | None]:
        """(path, None) or (None, a note for the client)."""
        if not self.prefixes:
            return None, "image_url ignored: set TAGATLAS_IMAGE_URL_PREFIXES to fetch images"
        if not any(prefix.admits(url) for prefix in self.prefixes):
            return None, NOT_ALLOWED
        if not self.slots.acquire(blocking=False):
            return None, BUSY
        try:
            return self._fetch(url), None
        except Exception as exc:  # noqa: BLE001 (every cause gives the client the same answer)
            log.warning("image_url not fetched", extra={"url": url[:300], "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            return None, NOT_FETCHED
        finally:
            self.slots.release()

    def _fetch(self, url: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        addresses = self._resolve(parts.hostname, port)
        if not addresses:
            raise OSError("the host has no address")
        if not self.allow_private and not all(public_address(a) for a in addresses):
            raise PermissionError(f"{parts.hostname} resolves to a non-public address ({', '.join(addresses)})")
        address = addresses[0]
        if parts.scheme == "https":
            conn = _PinnedHTTPSConnection(parts.hostname, address, port, self.timeout_s, ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(address, port, timeout=self.timeout_s)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.hostname if port == DEFAULT_PORTS[parts.scheme] else f"{parts.hostname}:{port}"
        try:
            conn.request("GET", target, headers={"Host": host_header, "User-Agent": "TagAtlas", "Accept": "image/*"})
            answer = conn.getresponse()
            if answer.status != 200:  # a redirect included: never followed
                raise OSError(f"HTTP {answer.status}")
            raw = bytearray()
            while chunk := answer.read(65536):
                raw += chunk
                if len(raw) > self.max_bytes:
                    raise OSError(f"larger than {self.max_bytes} bytes")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"not received within {self.timeout_s} s")
                if conn.sock is not None:
                    conn.sock.settimeout(remaining)
        finally:
            conn.close()
        check_image(bytes(raw))  # a fetched file that is no readable image (or a bomb) is refused like an upload
        with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
            handle.write(raw)
        return handle.name


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IP literals stay themselves)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
