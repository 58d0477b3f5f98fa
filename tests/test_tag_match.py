"""Tag-embedding match (new tags recommendable without a neighbour) and DESIGN's per-source selector."""

from dataclasses import replace

import numpy as np
import pytest

from tagatlas.data import Post, hashtag_words
from tagatlas.encoders import TextEncoder
from tagatlas.recommender import TagAtlas
from tagatlas.recommender.fusion import FusionParams
from tagatlas.recommender.tag_fusion import quota_choice, select_tags
from tagatlas.recommender.hashtags import HashtagRecommender
from tagatlas.recommender.tag_match import TagMatcher


class SyntheticBagOfWords(TextEncoder):
    """A made-up text encoder for unit tests: one dimension per word of a fixed vocabulary."""

    name = "synthetic-bow"
    VOCAB = ("march", "madness", "snow", "day", "new", "york", "city", "beach")
    dim = len(VOCAB)

    def __init__(self):
        self.calls: list[list[str]] = []

    def _encode_batch(self, texts):
        self.calls.append(list(texts))
        return np.array([[float(w in t.split()) for w in self.VOCAB] for t in texts]) + 1e-6


def test_hashtag_words_splits_lower_case_compounds_and_keeps_other_scripts():
    assert hashtag_words("marchmadness") == "march madness"
    assert hashtag_words("#NewYorkCity2015") == "new york city 2015"
    assert hashtag_words("東京タワー") == "東京タワー"
    assert hashtag_words("tbt") == "tbt"  # short tags are not split into letters
    assert hashtag_words("marchmadness", segment=False) == "marchmadness"


def test_matcher_finds_the_nearest_tags_embeds_each_once_and_round_trips(tmp_path):
    enc = SyntheticBagOfWords()
    matcher = TagMatcher().fit(["marchmadness", "snowday", "newyorkcity"], enc)
    assert matcher.extend(["snowday", "beachday"], enc) == 1  # only the new one is encoded
    assert enc.calls[-1] == ["beach day"]
    q = enc.encode(["madness in march", "a snow day", ""])
    tags, sims = matcher.match(q, k=2)
    assert tags[0][0] == "marchmadness" and tags[1][0] == "snowday"
    assert tags[2] == [] and len(sims[2]) == 0  # an empty post matches nothing
    assert np.all(np.diff(sims[1]) <= 0)
    tags, _ = matcher.match(q[:1], k=4, allowed={"snowday", "beachday"})  # tags no longer indexed are never proposed
    assert set(tags[0]) <= {"snowday", "beachday"}
    matcher.save(tmp_path / "tags")
    again = TagMatcher.load(tmp_path / "tags")
    assert again.tags_ == matcher.tags_ and np.array_equal(again.vectors_, matcher.vectors_)
    (tmp_path / "tags" / "tags.json").write_text('{"tags": ["only-one"]}')
    with pytest.raises(ValueError, match="1 tags but 4 tag vectors"):
        TagMatcher.load(tmp_path / "tags")


def test_embedding_new_tags_changes_nothing_until_they_are_added_and_a_concurrent_add_wins():
    enc = SyntheticBagOfWords()
    matcher = TagMatcher().fit(["snowday"], enc)
    first = matcher.embed_new(["beachday", "snowday", "newyorkcity"], enc)  # e.g. two services' requests, both prepared
    second = matcher.embed_new(["beachday"], enc)
    assert first[0] == ["beachday", "newyorkcity"] and len(matcher) == 1  # embedding alone adds nothing
    assert matcher.embed_new(["snowday"], enc) == ([], None)
    assert matcher.add_embedded(*second) == 1 and matcher.add_embedded(*first) == 1  # beachday is not added twice
    assert matcher.tags_ == ["snowday", "beachday", "newyorkcity"]
    expected = enc.encode(["snow day", "beach day", "new york city"])
    np.testing.assert_allclose(matcher.vectors_, expected.astype(np.float32), rtol=1e-6)
    both = matcher.embed_new(["snowday", "madness", "march", "madness"], enc)  # new ones, sorted, each once
    assert both[0] == ["madness", "march"]
    madness, march = both[1]
    assert matcher.add_embedded(["march", "madness", "march"], np.stack([march, madness, march])) == 2
    assert matcher.tags_[-2:] == ["march", "madness"]  # added in the order given
    np.testing.assert_allclose(matcher.vectors_[-2:], enc.encode(["march", "madness"]).astype(np.float32), rtol=1e-6)


def test_quota_selector_takes_each_sources_best_and_ranks_them_first():
    tags = ["a", "b", "c", "d", "e"]
    parts = {"neighbours": np.array([[0.9, 0.8, 0.0, 0.0, 0.0]]), "embedding": np.array([[0.0, 0.0, 0.0, 0.05, 0.04]])}
    scores = parts["neighbours"] + parts["embedding"]
    chosen = quota_choice(parts, {"neighbours": 1, "embedding": 1}, np.arange(5)[None, :])
    assert chosen.tolist() == [[True, False, False, True, False]]
    order, keep = select_tags(scores, FusionParams(tag_quota={"neighbours": 1, "embedding": 1}), tags=tags, parts=parts)
    assert keep.tolist() == [2] and [tags[t] for t in order[0][:2]] == ["a", "d"]  # 'd' beats 'b' though it scores less
    order, keep = select_tags(scores, FusionParams(tag_threshold=0.5), tags=tags, parts=parts)  # no quota: the threshold
    assert keep.tolist() == [2] and [tags[t] for t in order[0][:2]] == ["a", "b"]
    _, keep = select_tags(scores, FusionParams(tag_quota={"neighbours": 0, "embedding": 0}), tags=tags, parts=parts)
    assert keep.tolist() == [0]


def test_a_tag_indexed_after_training_is_recommended_by_its_words_without_a_neighbour(model_dir):
    model = TagAtlas.load(model_dir)
    assert model.hashtags_.matcher_ is not None and len(model.hashtags_.matcher_) > 0
    tag = "marchmadness"
    assert tag not in model.hashtags_.matcher_
    query = [Post(id="synthetic-q", text="college basketball tournament brackets, march madness is here")]
    params = replace(model.fusion_, embed_gamma=1.0, tag_quota={})
    # The carrying post says nothing similar, so retrieval alone cannot find the tag.
    model.add([Post(id="synthetic-carrier", text="Die Waschmaschine ist kaputt, der Vermieter ruft nicht zurück.", hashtags=[tag],
                    lat=40.0, lon=-75.0)])
    ev = model.evidence(query)
    assert "synthetic-carrier" not in ev.nb_ids[0]
    hit = next(t for t in model.predictions_from(query, ev, params)[0].hashtag_candidates if t.tag == tag)
    assert set(hit.sources) == {"embedding"}
    without = replace(params, embed_gamma=0.0)
    assert tag not in [t.tag for t in model.predictions_from(query, ev, without)[0].hashtag_candidates]
    model.delete(["synthetic-carrier"])  # gone from the index: never proposed again
    assert tag not in [t.tag for t in model.predictions_from(query, model.evidence(query), params)[0].hashtag_candidates]


def test_a_restarted_model_embeds_tags_indexed_since_its_save(model_dir):
    model = TagAtlas.load(model_dir)
    model.add([Post(id="synthetic-carrier", text="synthetic test: see you all later", hashtags=["marchmadness"])])
    model.hashtags_ = HashtagRecommender.load(model_dir / "hashtags")  # as saved, before that post came in
    assert "marchmadness" not in model.hashtags_.matcher_
    model.evidence([Post(id="q", text="basketball")])
    assert "marchmadness" in model.hashtags_.matcher_
