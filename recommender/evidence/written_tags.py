"""Tags written as plain words: known tags the caption spells out ("new york" → #newyork), each with the rate at which
the indexed posts that spell it out also carry it (a word written without a tag, "day" in "snow day", stays low)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Iterable, Sequence

import numpy as np

_WORD = re.compile(r"\w+")


def text_tokens(clean: str, max_words: int = 2000) -> set[str]:
    """Words of the cleaned, masked text and their joined pairs and triples ("new york" → "newyork"), as tag candidates."""
    words = _WORD.findall(clean.lower())[:max_words]
    tokens = set(words)
    for n in (2, 3):
        tokens.update("".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return tokens


class WrittenTagRates:
    """P(a post carries tag t | its text spells t out), counted over indexed posts and smoothed toward the rate pooled
    over all tags by `strength` pseudo-posts: the prior of a written word as a tag suggestion.

    Only tokens that are tags (of the post itself, or `known` when it is counted) are counted: a tag born after a post
    was counted misses that post's writing until the counts are rebuilt from the store."""

    def __init__(self, strength: float = 2.0):
        self.strength = strength
        self.written_: Counter[str] = Counter()  # tag → posts whose cleaned text spells it out
        self.tagged_: Counter[str] = Counter()  # tag → those of them that also carry it
        self.written_total_ = 0
        self.tagged_total_ = 0
        self.generation = -1  # the store generation the counts match (-1: none)

    def update(self, clean: Sequence[str], tag_lists: Sequence[Iterable[str]], known: Container[str], sign: int = 1) -> None:
        """Count (sign +1) or uncount (−1) posts given by their cleaned texts and their tags."""
        for text, tags in zip(clean, tag_lists):
            own = set(tags)
            for token in text_tokens(text):
                if token in own or token in known:
                    carried = token in own
                    self.written_[token] += sign
                    self.tagged_[token] += sign * carried
                    self.written_total_ += sign
                    self.tagged_total_ += sign * carried
                    if self.written_[token] <= 0:
                        del self.written_[token]
                        self.tagged_.pop(token, None)

    @classmethod
    def from_posts(cls, posts: Iterable[tuple[Sequence[str], Sequence[Iterable[str]]]], known: Container[str],
                   strength: float = 2.0) -> "WrittenTagRates":
        """Counts over batches of (cleaned texts, tag lists), e.g. every stored post."""
        rates = cls(strength)
        for clean, tag_lists in posts:
            rates.update(clean, tag_lists, known)
        return rates

    @property
    def pooled_(self) -> float:
        """The rate over every counted tag: the prior of a tag never counted as written."""
        return self.tagged_total_ / self.written_total_ if self.written_total_ > 0 else 0.5

    def rates(self, tags: Sequence[str]) -> np.ndarray:
        """Smoothed P(tagged | written) per tag, in [0, 1]."""
        pooled = self.pooled_
        return np.array([(self.tagged_.get(t, 0) + self.strength * pooled) / (self.written_.get(t, 0) + self.strength) for t in tags],
                        dtype=float).reshape(-1)


def written_tags(clean: list[str], tag_counts: dict[str, int], table, rates: WrittenTagRates) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
    """Per post, the indexed tags its text spells out (table ids) and their prior: how often posts that spell
    each one out carry it."""
    found = [sorted(t for t in text_tokens(c) if t in tag_counts) for c in clean]
    return [table.ids_of(f) for f in found], [rates.rates(f) for f in found]
