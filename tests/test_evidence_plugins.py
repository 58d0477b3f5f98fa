"""Evidence sources are plug-ins: a source defined in this test file alone is gathered, tuned on validation users and
changes predictions, with no edit to fusion or training. The toy source is a synthetic oracle (named so): it reads
the post's own location, which only a test may do."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tagatlas.data import Post, read_posts
from tagatlas.recommender import ConfigError, HeadConfig, ModelConfig, TagAtlas
from tagatlas.recommender.evidence import BatchContext, EvidenceSource, SourceEvidence, create_sources, register_source


class SyntheticLocationOracle(EvidenceSource):
    """Puts all place mass on the class of the post's own lat/lon and proposes the post's own hashtags."""

    name = "synthetic_oracle"
    needs = frozenset({"location"})
    place_weights = (0.0, 0.5, 0.9)
    tag_weights = (0.0, 1.0)

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model = ctx.model
        cls = model.geolocator_.class_of([None] * len(ctx.posts), [p.lat if p.has_location else np.nan for p in ctx.posts],
                             [p.lon if p.has_location else np.nan for p in ctx.posts])
        place = np.zeros((len(ctx.posts), len(model.geolocator_)))
        place[cls >= 0, cls[cls >= 0]] = 1.0
        tag_ids = [list(ctx.table.ids_of(p.hashtags)) for p in ctx.posts]
        return SourceEvidence(place, tag_ids, [np.ones(len(t)) for t in tag_ids])


register_source(SyntheticLocationOracle)


@pytest.fixture(scope="module")
def oracle_model(real_subset):
    posts = list(read_posts(real_subset))
    config = ModelConfig(evidence=["synthetic_oracle"], cluster_k=0, refit=False, head=HeadConfig(max_epochs=3))
    return TagAtlas(config).fit(posts, progress=False)


def test_a_source_from_a_test_file_is_tuned_and_changes_predictions(oracle_model, tmp_path):
    m = oracle_model
    assert m.fusion_.source_place["synthetic_oracle"] > 0  # validation users' locations made it worth a weight
    assert "synthetic_oracle" in m.tuning_["geo_sources"]
    far = [p for p in m.geolocator_.places_ if m.geolocator_.place_coords_[m.geolocator_.places_.index(p)][0] < -20]  # a southern-hemisphere place class
    assert far, "the subset has no southern place to aim at"
    lat, lon = m.geolocator_.place_coords_[m.geolocator_.places_.index(far[0])]
    post = Post(id="q", text="snow day, schools closed again", lat=float(lat), lon=float(lon))
    with_source = m.predict([post])[0]
    assert with_source.places[0].place == far[0]
    off = m.predictions_from([post], m.evidence([post]), replace(m.fusion_, source_place={}, source_tags={}))[0]
    assert off.places[0].place != far[0]  # without its weight the same post is placed by its text
    # A post lacking what the source needs gets nothing from it.
    bare = Post(id="q2", text="snow day, schools closed again")
    assert m.evidence([bare]).sources.get("synthetic_oracle") is None
    # The source's name is saved with the model and found again on load (while it is registered).
    m.save(tmp_path / "m")
    again = TagAtlas.load(tmp_path / "m")
    assert again.config.evidence == ["synthetic_oracle"] and again.predict([post])[0].places[0].place == far[0]


def test_unknown_or_reserved_sources_are_refused_by_name():
    with pytest.raises(ConfigError, match="unknown source.*'no_such_source'"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "evidence": ["no_such_source"]})
    with pytest.raises(ValueError, match="unknown evidence source.*'nope'"):
        create_sources(["nope"])

    class Shadow(EvidenceSource):
        name = "habits"

    with pytest.raises(ValueError, match="not one of"):
        register_source(Shadow)

    class Odd(EvidenceSource):
        name = "odd"
        needs = frozenset({"mood"})

    with pytest.raises(ValueError, match="unknown post field"):
        register_source(Odd)


def test_a_source_earns_place_weight_only_for_a_gain_above_one_validation_query():
    from tagatlas.recommender.tuning import earned_weight

    scores = {0.0: 0.300, 0.1: 0.3030, 0.2: 0.3010}
    assert earned_weight(scores, n_queries=100) == 0.0  # +0.003 < one query in 100: noise
    assert earned_weight(scores, n_queries=1000) == 0.1  # +0.003 > one query in 1000
    assert earned_weight({0.0: 0.30, 0.1: 0.35, 0.2: 0.35}, n_queries=100) == 0.1  # a tie goes to the smaller weight
    assert earned_weight({0.0: 0.40, 0.1: 0.35}, n_queries=100) == 0.0
    assert earned_weight({0.1: 0.35, 0.2: 0.36}, n_queries=100) == 0.2  # no zero to compare with: the best


def _tag_evidence(n: int, helped: int):
    """Synthetic evidence for n queries: the classifier says #t0 for all; a plug-in source proposes #t1 to the first
    `helped` queries, whose true tag it is (the others' is #t0)."""
    from tagatlas.recommender.fusion import Evidence

    ev = Evidence(place_probs=np.ones((n, 1)), tag_probs=np.tile([[0.6, 0.0]], (n, 1)), nb_sims=np.full((n, 1), -np.inf),
                  nb_class=np.full((n, 1), -1), nb_lat=np.zeros((n, 1)), nb_lon=np.zeros((n, 1)), nb_ids=[[] for _ in range(n)],
                  nb_tags=[[[]] for _ in range(n)], habit_sims=[np.zeros(0)] * n, habit_tags=[[]] * n, habit_ids=[[]] * n,
                  tags=["t0", "t1"], n_vocab=2,
                  sources={"synthetic_tags": SourceEvidence(tag_ids=[[1] if i < helped else [] for i in range(n)],
                                                            tag_values=[np.ones(1) if i < helped else np.zeros(0) for i in range(n)])})
    truth = [["t1"] if i < helped else ["t0"] for i in range(n)]
    return ev, truth


def test_a_source_earns_tag_weight_only_for_a_gain_above_one_validation_query():
    from tagatlas.recommender.fusion import FusionParams
    from tagatlas.recommender.tag_tuning import TagF1, tag_plug_ins

    class SyntheticTags(EvidenceSource):
        name = "synthetic_tags"
        tag_weights = (0.0, 1.0)

    start = FusionParams(tag_beta=1.0, habit_gamma=0.0)
    for helped, kept in ((1, False), (4, True)):
        ev, truth = _tag_evidence(40, helped)
        f1 = TagF1(ev, truth)
        best, by_source = tag_plug_ins((f1(start), start), f1, [SyntheticTags()])
        report = by_source["synthetic_tags"]
        assert report["f1_with"] > report["f1_without"]  # the source helps in both cases ...
        assert report["kept"] is kept  # ... but one query of 40 is not enough to give it weight
        assert (best[1].source_tags.get("synthetic_tags", 0.0) > 0) is kept
        assert best[0] == (report["f1_with"] if kept else report["f1_without"])
