"""Hashtag tuning's shortcuts give the same numbers as the plain computation, on random synthetic evidence (made up
here): `TagF1` reuses a ranking while only the threshold changes, `tag_scores(memo=...)` reuses each source's scores."""

import itertools
from dataclasses import replace

import numpy as np

from tagatlas.recommender.evidence.base import SourceEvidence
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.metrics import tag_metrics
from tagatlas.recommender.tag_tuning import THRESHOLDS, TagF1, tune_tags


def random_tag_evidence(n: int = 40, k: int = 8, n_tags: int = 30, seed: int = 0) -> tuple[Evidence, list[list[str]]]:
    """Synthetic neighbours, habits (with ages), written tags, tag matches and one plug-in source over `n_tags` tags;
    true tags drawn from what the evidence points at, some repeated and some posts with none."""
    rng = np.random.default_rng(seed)
    tags = [f"tag{j:02d}" for j in rng.permutation(n_tags)]  # names not in id order: ties ordered by name must matter

    def lists(count, most=3):
        return [sorted(rng.choice(n_tags, size=rng.integers(0, most + 1), replace=False).tolist()) for _ in range(count)]

    sims = np.sort(rng.random((n, k)), axis=1)[:, ::-1]
    sims[rng.random((n, k)) < 0.1] = -np.inf
    n_habits = rng.integers(0, 4, size=n)
    ev = Evidence(place_probs=np.ones((n, 1)), tag_probs=np.round(rng.random((n, 20)) ** 3, 2), nb_sims=sims,
                  nb_class=np.zeros((n, k), int), nb_lat=np.zeros((n, k)), nb_lon=np.zeros((n, k)),
                  nb_ids=[[f"n{j}" for j in range(k)] for _ in range(n)], nb_tags=[lists(k) for _ in range(n)],
                  habit_sims=[rng.random(h) for h in n_habits], habit_tags=[lists(h) for h in n_habits],
                  habit_ids=[["h"] * h for h in n_habits], habit_ages=[rng.choice([0.0, 2.0, 40.0], size=h) for h in n_habits],
                  tags=tags, n_vocab=20, text_tags=lists(n, 2), embed_tags=lists(n, 4),
                  sources={"synthetic": SourceEvidence(tag_ids=lists(n, 2), tag_values=[])})
    ev.text_prior = [rng.random(len(t)) for t in ev.text_tags]
    ev.embed_sims = [np.sort(rng.random(len(t)))[::-1] for t in ev.embed_tags]
    ev.sources["synthetic"].tag_values = [np.ones(len(t)) for t in ev.sources["synthetic"].tag_ids]
    truth = [[tags[t] for t in rng.choice(n_tags, size=rng.integers(0, 4))] for _ in range(n)]  # repeats, and empty ones
    return ev, truth


def plain_f1(ev: Evidence, p: FusionParams, truth: list[list[str]]) -> float:
    """F1@5 by definition: score, select and count (what tuning computed before its shortcuts)."""
    scores, parts = tag_scores(ev, p)
    order, keep = select_tags(scores, p, tags=ev.tags, parts=parts)
    ranked = [[ev.tags[t] for t in row] for row in order]
    return tag_metrics([r[:n] for r, n in zip(ranked, keep)], ranked, truth)["f1_at_5"]


SETTINGS = [FusionParams(tag_k=k, tag_temperature=t, tag_beta=b, habit_gamma=g, text_gamma=tg, embed_gamma=eg,
                         habit_half_life_days=h, source_tags={"synthetic": s} if s else {}, max_tags=m)
            for k, t, b, g, tg, eg, h, s, m in [(8, 0.05, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 5), (3, 0.05, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 5),
                                                 (3, 0.2, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 3), (8, 0.2, 1.0, 2.0, 0.3, 0.2, 14.0, 0.5, 5),
                                                 (8, 0.02, 0.3, 0.5, 1.0, 0.1, 3.0, 1.0, 7)]]


def test_tag_f1_equals_the_plain_count_for_every_setting_and_threshold():
    ev, truth = random_tag_evidence()
    f1 = TagF1(ev, truth)
    seen = set()
    # thresholds innermost (the ranking is reused), then the same settings again in another order (it must not be stale)
    for p, theta in [*itertools.product(SETTINGS, THRESHOLDS), *itertools.product(SETTINGS[::-1], THRESHOLDS[::-3])]:
        cand = replace(p, tag_threshold=float(theta))
        assert f1(cand) == plain_f1(ev, cand, truth)
        seen.add(round(plain_f1(ev, cand, truth), 6))
    assert len(seen) > 5  # the settings differ: a stale ranking would have been caught


def test_the_per_source_selector_scores_as_the_plain_count():
    """Quotas (including one over five, one for a source without weight, and zero), thresholds and tag counts, in an
    order that changes quotas and scores back and forth: the shortcut keeps each source's best tags per scores."""
    ev, truth = random_tag_evidence(seed=4)
    f1 = TagF1(ev, truth)
    quotas = [{"neighbours": 2, "habits": 1, "synthetic": 1}, {"neighbours": 5, "classifier": 3, "text": 2},
              {"neighbours": 7, "habits": 0, "embedding": 2}, {"classifier": 1, "synthetic": 4}]
    seen = set()
    for p, quota, theta in itertools.product([SETTINGS[3], SETTINGS[4], SETTINGS[0]], quotas, (0.0, 0.3, 0.7)):
        cand = replace(p, tag_quota=quota, tag_threshold=theta)
        scores, parts = tag_scores(ev, cand)
        assert f1(cand, scores, parts) == f1(cand) == plain_f1(ev, cand, truth)
        seen.add(round(plain_f1(ev, cand, truth), 6))
    assert len(seen) > 5


def test_tag_f1_with_no_true_tags_is_none_as_the_metrics_say():
    ev, truth = random_tag_evidence(n=5)
    assert TagF1(ev, [[] for _ in truth])(SETTINGS[0]) is None


def test_memoised_tag_scores_are_the_same_numbers():
    ev, _ = random_tag_evidence(seed=1)
    memo: dict = {}
    for p in [*SETTINGS, *SETTINGS[::-1], replace(SETTINGS[1], tag_beta=0.9), replace(SETTINGS[3], embed_temperature=0.01)]:
        plain, plain_parts = tag_scores(ev, p)
        fast, fast_parts = tag_scores(ev, p, memo)
        assert np.array_equal(plain, fast)
        assert all(np.array_equal(plain_parts[name], fast_parts[name]) for name in plain_parts)


def test_tuning_tags_with_the_shortcuts_chooses_what_the_plain_search_would():
    """The whole hashtag search against a plain re-scoring of the setting it chose and of every threshold around it:
    no threshold of that setting does better."""
    ev, truth = random_tag_evidence(seed=2)
    params, report = tune_tags(ev, truth, FusionParams(), progress=False)
    assert report["f1_at_5"] == plain_f1(ev, params, truth)
    if not params.tag_quota:
        assert all(plain_f1(ev, replace(params, tag_threshold=float(t)), truth) <= report["f1_at_5"] for t in THRESHOLDS)
