"""Hashtags as input (seeds MaCon and MRLF read them as a signal): a post enriched at ingest arrives with its hashtags,
and the indexed posts carrying each of them say where such posts are. Tags are pooled naive-Bayes style against the
place prior, so a specific tag (#eiffeltower) decides and a common one (#travel) barely moves the answer; a post
written in the posting form has no hashtags yet and gets nothing from this source."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence


def pooled_log_ratios(posts_tags: list[list[str]], rows_of: dict[str, np.ndarray], cls: np.ndarray, n_places: int,
                      smoothing: float, exclude: list[int | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log prior (C,), per post the summed log-likelihood ratios of its tags (n, C), whether any tag was known (n,)).
    `rows_of`: tag → rowids of the indexed posts carrying it; `cls`: rowid → place class (-1: none); `exclude`: each
    post's own rowid when it is indexed (it must not vote for itself)."""
    placed = cls[cls >= 0]
    prior = (np.bincount(placed, minlength=n_places) + 1.0) / (len(placed) + n_places)
    log_prior = np.log(prior)
    per_tag: dict[str, np.ndarray] = {}  # tag → how many of the posts carrying it lie in each place
    for tag, rows in rows_of.items():
        classes = cls[rows]
        per_tag[tag] = np.bincount(classes[classes >= 0], minlength=n_places).astype(float)
    out = np.zeros((len(posts_tags), n_places))
    known = np.zeros(len(posts_tags), bool)
    for i, tags in enumerate(posts_tags):
        own = exclude[i]
        for tag in set(tags):
            if tag not in per_tag:
                continue
            counts = per_tag[tag]
            if own is not None and own < len(cls) and cls[own] >= 0 and own in rows_of[tag]:
                counts = counts.copy()
                counts[cls[own]] -= 1
            total = counts.sum()
            if total <= 0:
                continue
            out[i] += np.log((counts + smoothing * prior) / (total + smoothing)) - log_prior
            known[i] = True
    return log_prior, out, known


class TagPlaces(EvidenceSource):
    """The place distribution a post's own hashtags point to, from the indexed posts that carry them."""

    name = "tag_places"
    needs = frozenset({"hashtags"})
    place_weights = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
    tag_weights = (0.0,)  # its tags are the post's own: nothing to recommend
    smoothing = 2.0  # pseudo-posts spread by the place prior: a tag seen on one post moves the answer, not decides it

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model, table = ctx.model, ctx.table
        n_places = len(model.geolocator_)
        found = model.posts_.store.tags.rows_with(t for p in ctx.posts for t in p.hashtags)
        cls = np.where(table.valid, table.cls, -1)
        rows_of = {tag: np.asarray([r for r in rows if r < len(cls)], dtype=np.int64) for tag, rows in found.items()}
        own = model.posts_.store.rowids([p.id for p in ctx.posts])
        log_prior, ratios, known = pooled_log_ratios([p.hashtags for p in ctx.posts], rows_of, cls, n_places, self.smoothing,
                                                     [own.get(p.id) for p in ctx.posts])
        logits = log_prior + ratios
        logits -= logits.max(axis=1, keepdims=True)
        place = np.exp(logits)
        place /= place.sum(axis=1, keepdims=True)
        place[~known] = 0.0  # no tag any indexed post carries: no opinion
        return SourceEvidence(place=place)
