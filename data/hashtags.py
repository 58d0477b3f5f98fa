"""Hashtag normalisation, extraction and masking.

One regular expression decides what a hashtag token is, and both extraction and masking use it,
so masking always removes every tag that extraction would find (no leak of the answer).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

# A '#' (ASCII or full-width, the NFKC form of '＃' is '#') followed by word characters.
# Python's \w is Unicode-aware, so Japanese, Cyrillic, Turkish … tags are kept whole.
HASHTAG_TOKEN = re.compile(r"[#＃](\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def normalize_hashtag(tag: str) -> str:
    """NFKC, lower-case, leading '#' stripped, surrounding space and punctuation trimmed."""
    tag = unicodedata.normalize("NFKC", tag).strip().lstrip("#").strip()
    tag = tag.strip(".,;:!?\"'()[]{}<>")
    return tag.lower()


def normalize_hashtags(tags: Iterable[str]) -> list[str]:
    """Normalise and deduplicate, keeping the first occurrence's order; empty tags are dropped."""
    seen: dict[str, None] = {}
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"hashtag {tag!r} is not a string")
        norm = normalize_hashtag(tag)
        if norm:
            seen.setdefault(norm, None)
    return list(seen)


def extract_hashtags(text: str | None) -> list[str]:
    """Hashtags written in `text`, normalised and deduplicated in order of appearance."""
    if not text:
        return []
    return normalize_hashtags(m.group(1) for m in HASHTAG_TOKEN.finditer(unicodedata.normalize("NFKC", text)))


def mask_hashtags(text: str | None) -> str:
    """`text` with every hashtag token removed, for inputs of the hashtag task."""
    if not text:
        return ""
    masked = HASHTAG_TOKEN.sub(" ", unicodedata.normalize("NFKC", text))
    return re.sub(r"\s+", " ", masked).strip()


def hashtag_words(tag: str, segment: bool = True) -> str:
    """A tag as words for a text encoder: '#' stripped, camelCase and digits split ('#NewYork2015' → 'new york 2015');
    with `segment`, lower-case Latin runs are split into English words too ('marchmadness' → 'march madness'),
    since stored tags are normalised to lower case and their camelCase is gone."""
    tag = unicodedata.normalize("NFKC", tag).lstrip("#")
    words = _CAMEL.sub(" ", tag).replace("_", " ").lower().split()
    if segment:
        words = [w for word in words for w in (_segment(word) if word.isascii() and word.isalpha() and len(word) > 3 else [word])]
    return " ".join(words)


@functools.lru_cache(maxsize=1)
def _segmenter():
    """wordsegment's unigram/bigram model (shipped inside the package, loaded once: ~1 s, ~200 MB)."""
    import wordsegment

    segmenter = wordsegment.Segmenter()
    segmenter.load()
    return segmenter


MAX_SEGMENTED = 40  # longer runs stay whole: segmentation recurses per letter (a 1,000-letter tag overflowed the stack)


@functools.lru_cache(maxsize=65536)
def _segment(word: str) -> tuple[str, ...]:
    if len(word) > MAX_SEGMENTED:
        return (word,)
    return tuple(_segmenter().segment(word)) or (word,)
