"""Images that reach the service: uploads (base64) and, for enrichment, URLs under allowed prefixes."""

from __future__ import annotations

import base64
import binascii
import tempfile

from fastapi import HTTPException

from tagatlas.api.schemas import MAX_IMAGE_BYTES


def image_file(image_base64: str) -> str:
    """Decode the upload into a temporary file (removed by the caller); 4xx naming the field if bad."""
    try:
        raw = base64.b64decode(image_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(422, f"'image_base64' is not valid base64: {exc}") from exc
    if len(raw) > MAX_IMAGE_BYTES:
        raise HTTPException(413, f"'image_base64' decodes to {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
        handle.write(raw)
    return handle.name


def fetch_image(url: str, prefixes: list[str], max_bytes: int = MAX_IMAGE_BYTES, timeout: float = 10.0) -> tuple[str | None, str | None]:
    """Download an image into a temporary file (the caller removes it) when `url` starts with an allowed prefix.

    Returns (path, None) or (None, why not). Fetching arbitrary URLs from a server is an SSRF risk, so nothing is
    fetched unless TAGATLAS_IMAGE_URL_PREFIXES names where images may come from."""
    import urllib.error
    import urllib.request

    if not prefixes:
        return None, "image_url ignored: set TAGATLAS_IMAGE_URL_PREFIXES to fetch images"
    if not any(url.startswith(prefix) for prefix in prefixes):
        return None, "image_url ignored: not under an allowed prefix (TAGATLAS_IMAGE_URL_PREFIXES)"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (prefix-checked above)
            raw = answer.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"image_url not fetched: {exc}"
    if len(raw) > max_bytes:
        return None, f"image_url ignored: larger than {max_bytes} bytes"
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as handle:
        handle.write(raw)
    return handle.name, None
