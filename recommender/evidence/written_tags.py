"""Tags written as plain words: known tags the caption spells out ("new york" → #newyork), with a popularity prior."""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"\w+")


def text_tokens(clean: str, max_words: int = 2000) -> set[str]:
    """Words of the cleaned, masked text and their joined pairs and triples ("new york" → "newyork"), as tag candidates."""
    words = _WORD.findall(clean.lower())[:max_words]
    tokens = set(words)
    for n in (2, 3):
        tokens.update("".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return tokens


def written_tags(clean: list[str], tag_counts: dict[str, int], table) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
    """Per post, the indexed tags its text spells out (table ids) and their prior log(1 + count) / log(1 + top count)."""
    top_count = np.log1p(max(tag_counts.values(), default=1))
    found = [[t for t in text_tokens(c) if t in tag_counts] for c in clean]
    return [table.ids_of(f) for f in found], [np.log1p([tag_counts[t] for t in f]) / top_count for f in found]
