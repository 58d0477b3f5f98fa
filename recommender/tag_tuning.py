"""The hashtag half of fusion tuning, on validation users (never on a test split): neighbour count, temperature,
classifier weight, habit weight, the written tags' weight and the selection threshold maximise F1@5 (DESIGN's
selector), then the tag-embedding match, each plug-in source's tag weight, the habits' recency and the per-source
selector are tried in turn.

Most settings tried differ from the one before only by the threshold, and the threshold selector ranks the same tags
at every threshold: `TagF1` keeps the last setting's ranking and reuses it while only the threshold changes, so a
grid of thresholds costs one ranking instead of one per threshold (the F1 it gives is the same number)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from tagatlas.recommender.evidence import EvidenceSource
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.tag_fusion import quota_choice, select_tags, tag_scores, threshold_keep
from tagatlas.recommender.geo_score import one_query

TAG_GRID = {"tag_k": (10, 25, 50), "tag_temperature": (0.02, 0.05, 0.2), "tag_beta": tuple(np.round(np.linspace(0, 1, 11), 2))}
HABIT_GAMMAS = (0.0, 0.5, 1.0, 2.0)
TEXT_GAMMAS = (0.0, 0.1, 0.3, 1.0)
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
EMBED_GAMMAS = (0.0, 0.05, 0.1, 0.2, 0.5)
EMBED_TEMPERATURES = (0.01, 0.03, 0.1)
QUOTAS = (0, 1, 2, 3, 5)
HALF_LIVES = (0.0, 3.0, 14.0, 60.0, 365.0)  # days; 0: no recency decay of habits
QUOTA_MARGIN = 0.005
TOP = 5  # F1@5 reads the first five tags recommended


class TagF1:
    """Validation F1@5 of hashtag settings on one batch of queries (`tev`, their true tags `truth`), as
    `tag_metrics` computes it. For the threshold selector the ranking of the last setting scored is kept: a setting
    equal to it but for `tag_threshold` only recounts how many tags pass."""

    def __init__(self, tev: Evidence, truth: list[list[str]]):
        self.tev, self.truth = tev, truth
        self._asked = np.array([bool(t) for t in truth])  # tag_metrics reads the queries that have a true tag
        self._n_true = np.array([len(set(t)) for t in truth], dtype=np.int64)[self._asked]
        self._key: FusionParams | None = None
        self._ranked = self._hits = np.zeros((0, 0))
        self._memo: dict = {}  # each tag source's unweighted scores for its last setting (`tag_scores`)
        self._name_rank = np.argsort(np.argsort(np.array(tev.tags, dtype=object)))  # ties are ordered by tag name
        self._quota_key: FusionParams | None = None
        self._best = np.zeros((0, 1))
        self._source_top: dict[str, np.ndarray] = {}  # per source, its best tags for the scores of `_quota_key`

    def scores(self, cand: FusionParams) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`tag_scores` of `cand` on these queries, each source built once per setting of its own parameters."""
        return tag_scores(self.tev, cand, self._memo)

    def __call__(self, cand: FusionParams, scores: np.ndarray | None = None, parts: dict | None = None) -> float | None:
        """F1@5 of `cand`; `scores` and `parts` (`tag_scores` of `cand`) may be given when the caller has them."""
        if cand.tag_quota:
            if scores is None:
                scores, parts = self.scores(cand)
            return self._quota_f1(cand, scores, parts)
        key = replace(cand, tag_threshold=0.0)
        if key != self._key:
            if scores is None:
                scores, _ = self.scores(cand)
            order, _ = select_tags(scores, cand, tags=self.tev.tags)
            self._ranked = np.take_along_axis(scores, order, 1)
            self._hits = self._first_hits(order)
            self._key = key
        return self._f1(threshold_keep(self._ranked, cand))

    def _quota_f1(self, cand: FusionParams, scores: np.ndarray, parts: dict[str, np.ndarray]) -> float | None:
        """The per-source selector's F1@5 (`select_tags` with `tag_quota`): it recommends only the tags it chooses,
        best first, so only those are ordered; each source's best tags are ranked once for the same scores."""
        key = replace(cand, tag_threshold=0.0, tag_quota={})
        if key != self._quota_key:
            self._quota_key, self._best, self._source_top = key, scores.max(axis=1, keepdims=True), {}
        put_forward = quota_choice(parts, cand.tag_quota, np.broadcast_to(self._name_rank, scores.shape), self._source_top)
        chosen = put_forward & (scores >= cand.tag_threshold * self._best) & (scores > 0)
        rows, cols = np.nonzero(chosen)
        by_rank = np.lexsort((self._name_rank[cols], -np.round(scores[rows, cols], 6), rows))
        rows, cols = rows[by_rank], cols[by_rank]
        counts = chosen.sum(axis=1)
        keep = np.minimum(np.minimum(counts, cand.max_tags), min(20, scores.shape[1]))  # select_tags' n_candidates
        place = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)  # each tag's rank in its row
        shown = np.minimum(keep, TOP)
        first = place < shown[rows]
        recommended = [[] for _ in range(len(chosen))]
        for r, c in zip(rows[first].tolist(), cols[first].tolist()):
            recommended[r].append(c)
        return self._f1(keep, self._first_hits(recommended))

    def _first_hits(self, order) -> np.ndarray:
        """(asked queries, TOP) whether the tag at each of the first ranks of `order` (per query, ranked tag ids) is a
        true tag not already counted above."""
        hits = np.zeros((int(self._asked.sum()), TOP), dtype=bool)
        for row, (ranks, truth) in enumerate((r, t) for r, t, a in zip(order, self.truth, self._asked) if a):
            truth, seen = set(truth), set()
            for j, t in enumerate(ranks[:TOP]):
                tag = self.tev.tags[t]
                hits[row, j] = tag in truth and tag not in seen
                seen.add(tag)
        return hits

    def _f1(self, keep: np.ndarray, hits: np.ndarray | None = None) -> float | None:
        """Mean F1@5 when each asked query recommends its first `keep` tags (precision over the tags recommended);
        `hits` as `_first_hits` gives them (default: of the ranking kept for the threshold selector)."""
        if not self._asked.any():
            return None
        hits = self._hits if hits is None else hits
        shown = np.minimum(keep[self._asked], TOP)
        found = np.concatenate([np.zeros((len(shown), 1), np.int64), np.cumsum(hits, axis=1)], axis=1)[np.arange(len(shown)), shown]
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(shown > 0, found / np.maximum(shown, 1), 0.0)
            recall = found / self._n_true
            f1 = np.where(found > 0, 2 * precision * recall / (precision + recall), 0.0)
        return float(np.mean(f1))


def ascend(best: tuple[float, FusionParams], f1: TagF1, changes) -> tuple[float, FusionParams]:
    """One stage of the hashtag search: each change (FusionParams fields) tried on the best setting so far, kept
    when validation F1@5 rises."""
    for change in changes:
        cand = replace(best[1], **change)
        score = f1(cand)
        if score > best[0]:
            best = (score, cand)
    return best


def tune_tags(tev: Evidence, truth: list[list[str]], params: FusionParams, progress: bool,
              sources: Sequence[EvidenceSource] = ()) -> tuple[FusionParams, dict]:
    """Hashtag fusion in three stages, each maximising validation F1@5: (1) neighbours, classifier, habits and
    written tags with the threshold selector; (2) the tag-embedding match's weight and sharpness, each plug-in
    source's weight, then the habits' recency half-life (where validation users have dated history); (3) DESIGN's
    per-source selector (how many tags each source contributes), kept only where it beats the threshold."""
    return search_tags(TagF1(tev, truth), params, progress, sources)


def search_tags(f1: TagF1, params: FusionParams, progress: bool, sources: Sequence[EvidenceSource] = ()) -> tuple[FusionParams, dict]:
    """`tune_tags` with the scorer given (benchmarks/tag_tuning.py times it against one without shortcuts)."""
    tev, truth = f1.tev, f1.truth
    has_habits = any(len(s) for s in tev.habit_sims)
    best = tag_grid(f1, params, progress, HABIT_GAMMAS if has_habits else (params.habit_gamma,))
    f1_without_match = best[0]
    has_matches = any(len(t) for t in tev.embed_tags)
    best = ascend(best, f1, ({"embed_gamma": float(g), "embed_temperature": float(t), "tag_threshold": float(th)}
                             for g, t, th in itertools.product(EMBED_GAMMAS[1:] if has_matches else (), EMBED_TEMPERATURES, THRESHOLDS)))
    best, by_source = tag_plug_ins(best, f1, sources)
    has_ages = has_habits and best[1].habit_gamma > 0 and any(np.any(a > 0) for a in tev.habit_ages)
    best = ascend(best, f1, ({"habit_half_life_days": float(h), "tag_threshold": float(th)}
                             for h, th in itertools.product(HALF_LIVES[1:] if has_ages else (), THRESHOLDS)))
    f1_threshold = best[0]
    quota_f1, quota_best = quota_selector(f1, best[1])
    if quota_f1 > best[0] + QUOTA_MARGIN:  # a handful of validation posts, not noise
        best = (quota_f1, quota_best)
    keys = ("tag_k", "tag_temperature", "tag_beta", "habit_gamma", "text_gamma", "tag_threshold", "embed_gamma", "embed_temperature", "tag_quota",
            "habit_half_life_days", "source_tags")
    params = replace(params, **{k: getattr(best[1], k) for k in keys})
    return params, {"val_queries": len(truth), "f1_at_5": best[0], "habit_gamma_tuned": has_habits,
                    "f1_without_tag_match": f1_without_match, "f1_by_source": by_source,
                    "f1_threshold_selector": f1_threshold,
                    "f1_quota_selector": quota_f1, "selector": "quota" if params.tag_quota else "threshold"}


def tag_grid(f1: TagF1, params: FusionParams, progress: bool, gammas: Sequence[float]) -> tuple[float, FusionParams]:
    """Stage 1: every combination of neighbours, classifier, habits and written tags, with each threshold."""
    best = None
    combos = list(itertools.product(*TAG_GRID.values(), gammas, TEXT_GAMMAS))
    for k, temp, beta, gamma, text_gamma in tqdm(combos, desc="tune tag fusion", disable=not progress):
        cand = replace(params, tag_k=int(k), tag_temperature=float(temp), tag_beta=float(beta), habit_gamma=float(gamma),
                       text_gamma=float(text_gamma), embed_gamma=0.0, tag_quota={}, source_tags={})
        scores, parts = f1.scores(cand)
        for theta in THRESHOLDS:
            th = replace(cand, tag_threshold=float(theta))
            score = f1(th, scores, parts)
            if best is None or score > best[0]:
                best = (score, th)
    return best


def tag_plug_ins(best: tuple[float, FusionParams], f1: TagF1, sources: Sequence[EvidenceSource]) -> tuple[tuple[float, FusionParams], dict]:
    """Stage 2: each plug-in source's tag weight in turn (with the threshold), and F1 without and with it. As for
    place weights (`earned_weight`), a source keeps its weight only when it lifts validation F1@5 by more than one
    query's worth (1 / n): a smaller gain is noise that would move held-out suggestions for nothing."""
    by_source = {}
    for source in sources:
        given = f1.tev.sources.get(source.name)
        if given is None or not any(len(t) for t in given.tag_ids):
            continue
        without = best
        tried = ascend(best, f1, ({"source_tags": {**best[1].source_tags, source.name: float(w)}, "tag_threshold": float(th)}
                                  for w, th in itertools.product([w for w in source.tag_weights if w > 0], THRESHOLDS)))
        earned = tried[0] - without[0] > one_query(len(f1.truth))
        best = tried if earned else without
        by_source[source.name] = {"f1_without": without[0], "f1_with": tried[0], "kept": earned}
    return best, by_source


def quota_selector(f1: TagF1, params: FusionParams) -> tuple[float, FusionParams]:
    """Stage 3: DESIGN's per-source selector by coordinate ascent from "every source's 5 best, at the chosen
    threshold"; returns its validation F1 and setting (the caller keeps it only where it wins by QUOTA_MARGIN)."""
    scores, parts = f1.scores(params)
    names = [name for name, part in parts.items() if part.any()]
    quota_best = replace(params, tag_quota={name: 5 for name in names})
    quota_f1 = f1(quota_best, scores, parts) if names else 0.0
    for _ in range(2):
        for name in names:
            for n_s, theta in itertools.product(QUOTAS, THRESHOLDS):
                trial = replace(quota_best, tag_quota={**quota_best.tag_quota, name: n_s}, tag_threshold=float(theta))
                score = f1(trial, scores, parts)
                if score > quota_f1:
                    quota_best, quota_f1 = trial, score
    return quota_f1, quota_best
