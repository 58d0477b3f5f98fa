"""Tag fusion, vectorised over a batch: the tag scores of each part (neighbours, the user's habits, the classifier,
words of the text, plug-in sources) mixed by one set of `FusionParams`, and the tags chosen from them (a fixed count,
a threshold, or a quota per part). Split from `fusion.py`, whose `Evidence` and parameters it reads."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.fusion import Evidence, FusionParams, neighbour_weights


def _tag_votes(n: int, n_tags: int, per_post_tags: list[list[list[int]]], weights: list[np.ndarray]) -> np.ndarray:
    """(n, n_tags) dense: each post's tag lists, each list voting with its weight (duplicates add up)."""
    rows, cols, vals = [], [], []
    for i, (post_tags, w) in enumerate(zip(per_post_tags, weights)):
        for j in np.flatnonzero(w[: len(post_tags)] > 0).tolist():
            tag_ids = post_tags[j]
            rows.extend([i] * len(tag_ids)); cols.extend(tag_ids); vals.extend([w[j]] * len(tag_ids))
    out = np.zeros((n, n_tags))
    np.add.at(out, (np.asarray(rows, np.int64), np.asarray(cols, np.int64)), np.asarray(vals, np.float64))
    return out


def _softmax_rows(n: int, n_tags: int, tag_lists, sims_list, temperature: float) -> np.ndarray:
    out = np.zeros((n, n_tags))
    for i, (tag_ids, sims) in enumerate(zip(tag_lists, sims_list)):
        if tag_ids:
            e = np.exp((sims - sims.max()) / temperature)
            out[i, tag_ids] = e / e.sum()
    return out


def _rows_of(n: int, n_tags: int, tag_lists, values) -> np.ndarray:
    out = np.zeros((n, n_tags))
    for i, (tag_ids, v) in enumerate(zip(tag_lists, values)):
        if tag_ids:
            out[i, tag_ids] = v
    return out


def tag_scores(ev: Evidence, p: FusionParams, memo: dict | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fused tag scores (n, len(ev.tags)) and each source's weighted share of them.

    A source whose weight is 0 is not computed (its share is a read-only array of zeros). `memo`, a dict the caller
    keeps for one `ev`, holds each source's unweighted scores for the last setting of its own parameters, so a search
    that changes only the weights builds each source once (the scores are the same numbers)."""
    n, V = len(ev.nb_sims), len(ev.tags)
    zeros = np.broadcast_to(np.zeros(1), (n, V))

    def neighbours() -> np.ndarray:
        w = neighbour_weights(ev.nb_sims, p.tag_k, p.tag_temperature)
        return _tag_votes(n, V, ev.nb_tags, list(w))

    def habits() -> np.ndarray:
        habit_w = []
        for i, sims in enumerate(ev.habit_sims):
            if len(sims):  # attention over the user's past posts: similar ones first, recent ones first when decay is on
                e = np.exp((sims - sims.max()) / p.habit_temperature)
                if p.habit_half_life_days > 0 and ev.habit_ages:
                    e = e * 0.5 ** (np.maximum(ev.habit_ages[i], 0.0) / p.habit_half_life_days)
                habit_w.append(e / e.sum())
            else:
                habit_w.append(np.zeros(0))
        return _tag_votes(n, V, ev.habit_tags, habit_w)

    def classifier() -> np.ndarray:
        out = np.zeros((n, V))
        out[:, : ev.n_vocab] = ev.tag_probs[:, : ev.n_vocab]
        return out

    sources = {"classifier": (p.tag_beta, classifier, ()), "neighbours": (1 - p.tag_beta, neighbours, (p.tag_k, p.tag_temperature)),
               "habits": (p.habit_gamma, habits, (p.habit_temperature, p.habit_half_life_days)),
               "text": (p.text_gamma, lambda: _rows_of(n, V, ev.text_tags, ev.text_prior), ()),
               "embedding": (p.embed_gamma, lambda: _softmax_rows(n, V, ev.embed_tags, ev.embed_sims, p.embed_temperature), (p.embed_temperature,))}
    for name, source in ev.sources.items():  # plug-in sources, after the built-in ones
        sources[name] = (p.source_tags.get(name, 0.0), lambda source=source: _rows_of(n, V, source.tag_ids, source.tag_values), ())
    parts: dict[str, np.ndarray] = {}
    total = np.zeros((n, V))
    for name, (weight, build, setting) in sources.items():
        if weight == 0:
            parts[name] = zeros
            continue
        if memo is None:
            part = build()
            part *= weight
        else:
            if name not in memo or memo[name][0] != setting:
                memo[name] = (setting, build())
            part = memo[name][1] * weight
        total += part
        parts[name] = part
    return total, parts


def select_tags(scores: np.ndarray, p: FusionParams, n_candidates: int = 20, tags: list[str] | None = None,
                parts: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ranked candidate tag indices (n, n_candidates) and how many of them to recommend per post.

    Two selectors (chosen on validation F1): a threshold on the score relative to the best tag, or, when
    `p.tag_quota` is set and `parts` given, DESIGN's per-source selector: each source contributes its n best
    tags (those passing the threshold too), which are then ranked first by fused score. Scores equal to 6 decimals are ordered by tag name
    (when `tags` is given), so the ranking does not depend on the batch a post was predicted in.
    """
    m = min(n_candidates, scores.shape[1])
    if m == 0:
        return np.zeros((len(scores), 0), int), np.zeros(len(scores), int)
    name_rank = np.argsort(np.argsort(np.array(tags, dtype=object))) if tags is not None else np.arange(scores.shape[1])
    name_rank = np.broadcast_to(name_rank, scores.shape)
    if p.tag_quota and parts is not None:  # each source's best tags that also pass the threshold
        best = scores.max(axis=1, keepdims=True)
        chosen = quota_choice(parts, p.tag_quota, name_rank) & (scores >= p.tag_threshold * best) & (scores > 0)
        order = np.lexsort((name_rank, -np.round(scores, 6), ~chosen), axis=-1)[:, :m]
        return order, np.minimum(chosen.sum(axis=1), p.max_tags)
    order = ranked_columns(scores, name_rank, m)
    return order, threshold_keep(np.take_along_axis(scores, order, 1), p)


def threshold_keep(ranked: np.ndarray, p: FusionParams) -> np.ndarray:
    """How many of the ranked scores (best first) pass the threshold selector: of the first `max_tags`, those > 0 and ≥ `tag_threshold` × the best."""
    top = ranked[:, : p.max_tags]
    return ((top >= p.tag_threshold * ranked[:, :1]) & (top > 0)).sum(axis=1)


def ranked_columns(values: np.ndarray, name_rank: np.ndarray, m: int) -> np.ndarray:
    """Per row, the `m` columns with the largest values rounded to 6 decimals, equal ones by name rank: the first
    `m` columns of a full `np.lexsort((name_rank, -round(values, 6)))`, sorting only each row's m best and their
    ties instead of all its columns (timed against the full sort by benchmarks/faiss_paths.py)."""
    r = np.round(values, 6)
    n, width = r.shape
    if width <= 4 * m:
        return np.lexsort((name_rank, -r), axis=-1)[:, :m]
    # each row's m-th largest value: a plain sort (numpy's SIMD sort) rather than np.partition, whose
    # introselect crawls over the many equal (zero) scores of a batch's vocabulary
    kth = np.sort(r, axis=1)[:, width - m]
    rows, cols = np.nonzero(r >= kth[:, None])  # the m largest and every column tied with the m-th: >= m per row
    counts = np.bincount(rows, minlength=n)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    shape = (n, int(counts.max()))
    cand_cols = np.zeros(shape, np.int64)
    cand_vals = np.full(shape, -np.inf)
    cand_names = np.full(shape, np.iinfo(np.int64).max)
    cand_cols[rows, slot], cand_vals[rows, slot], cand_names[rows, slot] = cols, r[rows, cols], np.asarray(name_rank)[rows, cols]
    order = np.lexsort((cand_names, -cand_vals), axis=-1)[:, :m]
    return np.take_along_axis(cand_cols, order, 1)


def quota_choice(parts: dict[str, np.ndarray], quota: dict[str, int], name_rank: np.ndarray, tops: dict | None = None) -> np.ndarray:
    """(n, V) mask of the tags each source puts forward: its `quota[source]` best tags with a positive share. `tops`, a
    dict the caller keeps for one `parts`, holds each source's ranked best tags, so a search over quotas ranks each once."""
    shape = next(iter(parts.values())).shape
    chosen = np.zeros(shape, bool)
    for name, n_s in quota.items():
        part = parts.get(name)
        if part is None or n_s <= 0 or not part.any():
            continue
        if tops is not None and (name not in tops or tops[name].shape[1] < min(n_s, shape[1])):
            tops[name] = ranked_columns(part, name_rank, max(n_s, 5))  # the first n of a ranking are the n best
        top = ranked_columns(part, name_rank, n_s) if tops is None else tops[name][:, :n_s]
        positive = np.take_along_axis(part, top, 1) > 0
        rows = np.repeat(np.arange(shape[0]), top.shape[1]).reshape(top.shape)
        chosen[rows[positive], top[positive]] = True
    return chosen
