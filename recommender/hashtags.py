"""Which hashtags a post should carry: the classifier's tag vocabulary, the tag matcher that reaches tags the
classifier never saw (new ones included) through the text encoder's space, the batch vocabulary the tag sources vote
over, and the tag decision from fused evidence (scores, the selector).

`HashtagRecommender.fit` learns the vocabulary; `decide` turns a batch's evidence into ranked candidates; the part
saves and loads itself as the `hashtags/` subfolder of a model folder."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagatlas.core import write_text_atomic
from tagatlas.data import Post
from tagatlas.recommender.evidence.vocabulary import BatchVocabulary
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.tag_match import TagMatcher

VOCABULARY_FILE = "vocabulary.json"
MATCHER_FOLDER = "matcher"


@dataclass
class TagDecisions:
    """A batch's tag decisions as arrays."""

    order: np.ndarray  # (n, m) candidate tags, best first (ids into the batch vocabulary)
    scores: np.ndarray  # (n, m) their fused scores
    n_keep: np.ndarray  # (n,) how many candidates are recommended
    parts: dict[str, np.ndarray]  # per source, (n, m) its share of each candidate's score


class HashtagRecommender:
    """The tag vocabulary, the tag matcher and the tag decision (scikit-learn style: parameters in `__init__`,
    learned state with a trailing underscore)."""

    def __init__(self, min_tag_posts: int = 2, match_k: int = 20):
        self.min_tag_posts = min_tag_posts
        self.match_k = match_k
        self._matcher_synced = False  # the matcher has been extended with the tags indexed since it was saved
        self._tag_mask: tuple[tuple[int, int], np.ndarray] | None = None  # (matcher size, tags version) → indexed-tag mask

    def fit(self, fit_posts: list[Post]) -> "HashtagRecommender":
        """The classifier's vocabulary: tags of at least `min_tag_posts` fit posts; an empty matcher when `match_k`
        > 0 (it learns tags as posts are indexed, `learn`)."""
        counts = Counter(t for p in fit_posts for t in p.hashtags)
        self._set_vocabulary(sorted(t for t, c in counts.items() if c >= self.min_tag_posts))
        self.matcher_ = TagMatcher() if self.match_k > 0 else None
        return self

    def _set_vocabulary(self, tags: list[str]) -> None:
        self.tags_ = list(tags)
        self.tag_index_ = {t: i for i, t in enumerate(self.tags_)}

    def __len__(self) -> int:
        return len(self.tags_)

    def ids_of(self, tags: Iterable[str]) -> list[int]:
        """Vocabulary ids of the tags the classifier knows (the others are dropped)."""
        return [self.tag_index_[t] for t in tags if t in self.tag_index_]

    # -- the matcher ----------------------------------------------------------------------------------
    def learn(self, tags: Iterable[str], text_encoder) -> None:
        """Make indexed tags matchable at once (tags new to the matcher are embedded as words)."""
        if self.matcher_ is not None:
            self.matcher_.extend(tags, text_encoder)

    def embed_new(self, tags: Iterable[str], text_encoder) -> tuple[list[str], np.ndarray | None]:
        """The tags the matcher lacks, embedded; depends on nothing indexed, so a service computes it outside its locks."""
        if self.matcher_ is None:
            return [], None
        return self.matcher_.embed_new(tags, text_encoder)

    def add_embedded(self, new: tuple[list[str], np.ndarray | None]) -> None:
        """Add tags embedded by `embed_new`."""
        if self.matcher_ is not None:
            self.matcher_.add_embedded(*new)

    def matched(self, dense: np.ndarray, tag_counts: dict[str, int], tags_version: int, table,
                text_encoder) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
        """Indexed tags nearest each post in the text encoder's space (table ids, similarities): new tags too."""
        matcher = self._synced_matcher(tag_counts, text_encoder)
        if matcher is None:
            return [() for _ in range(len(dense))], [np.zeros(0) for _ in range(len(dense))]
        found, sims = matcher.match(dense, self.match_k, allowed=self._indexed_tag_mask(matcher, tag_counts, tags_version))
        return [table.ids_of(f) for f in found], sims

    def _synced_matcher(self, tag_counts: dict[str, int], text_encoder) -> TagMatcher | None:
        """The matcher, first extended with tags indexed since it was saved (a restarted service's online posts)."""
        matcher = self.matcher_
        if matcher is not None and len(tag_counts) and not self._matcher_synced:
            missing = [t for t in tag_counts if t not in matcher]
            if missing:
                matcher.extend(missing, text_encoder)
            self._matcher_synced = True
        return matcher

    def _indexed_tag_mask(self, matcher: TagMatcher, tag_counts: dict[str, int], tags_version: int) -> np.ndarray:
        """Which of the matcher's tags some indexed post still carries; rebuilt only after adds and deletes."""
        key = (len(matcher), tags_version)
        cached = self._tag_mask
        if cached is None or cached[0] != key:
            cached = (key, np.fromiter((t in tag_counts for t in matcher.tags_), bool, len(matcher)))
            self._tag_mask = cached
        return cached[1]

    # -- deciding -------------------------------------------------------------------------------------
    def batch_vocabulary(self, table, nb, habits, tag_lists: list[list[tuple[int, ...]]], k_max: int) -> BatchVocabulary:
        """The classifier's vocabulary, then only the other tags this batch mentions (few rows carry them)."""
        nv, k = len(self.tags_), k_max
        extra = sorted({g for f in nb.kept_extra.tolist() for g in nb.tags[f // k][f % k] if g >= nv}
                       | {g for lists in habits.tags for tl in lists for g in tl if g >= nv}
                       | {g for lists in tag_lists for tl in lists for g in tl if g >= nv})
        return BatchVocabulary(self.tags_ + [table.tags[g] for g in extra], dict(zip(extra, range(nv, nv + len(extra)))))

    def decide(self, ev: Evidence, p: FusionParams, n_candidates: int) -> TagDecisions:
        """Fused tag scores → ranked candidates and how many to recommend, with each source's share."""
        scores, parts = tag_scores(ev, p)
        order, n_keep = select_tags(scores, p, n_candidates, tags=ev.tags, parts=parts)
        return TagDecisions(order, np.take_along_axis(scores, order, 1), n_keep,
                            {name: np.take_along_axis(v, order, 1) for name, v in parts.items()})

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.matcher_ is not None:
            self.matcher_.save(folder / MATCHER_FOLDER)
        state = {"min_tag_posts": self.min_tag_posts, "match_k": self.match_k, "tags": self.tags_}
        write_text_atomic(folder / VOCABULARY_FILE, json.dumps(state, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "HashtagRecommender":
        folder = Path(folder)
        state = json.loads((folder / VOCABULARY_FILE).read_text(encoding="utf-8"))
        self = cls(int(state["min_tag_posts"]), int(state["match_k"]))
        self._set_vocabulary(state["tags"])
        self.matcher_ = TagMatcher.load(folder / MATCHER_FOLDER) if self.match_k > 0 else None
        return self
