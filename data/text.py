"""Light text clean-up applied before encoding (never to stored posts)."""

from __future__ import annotations

import re
import unicodedata

_QMARK_RUN = re.compile(r"\?{2,}")  # runs of '?' stand for non-ASCII characters lost in some sources
_URL = re.compile(r"https?://\S+")
_SPACE = re.compile(r"\s+")


def clean_text(text: str | None) -> str:
    """NFKC, URLs and '?' runs (encoding noise, not questions) replaced by spaces, spaces folded."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(" ", text)
    text = _QMARK_RUN.sub(" ", text)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return _SPACE.sub(" ", text).strip()
