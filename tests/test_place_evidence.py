"""Place evidence from what a post writes: place names resolved against GeoNames (an ambiguous name follows its
context), and hashtags as input (the indexed posts carrying them say where). Posts made up here are named synthetic;
the model is trained on the real tweet subset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tagatlas.data import Post, city, distance_km, read_posts
from tagatlas.data.toponyms import gazetteer
from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas
from tagatlas.recommender.evidence.place_names import NameTrust
from tagatlas.recommender.evidence.tag_places import pooled_log_ratios

PARIS_FR, PARIS_TX = (48.857, 2.349), (33.661, -95.556)


def _resolved(text, hashtags=()):
    gaz = gazetteer()
    return [(m, gaz.lat[c[w.argmax()]], gaz.lon[c[w.argmax()]], w.max()) for m, c, w in gaz.resolve(gaz.find(text, list(hashtags)))]


def _km(a, b):
    return float(distance_km([a[0]], [a[1]], [b[0]], [b[1]])[0])


def test_an_ambiguous_name_follows_its_context():
    (paris, lat, lon, _), = [r for r in _resolved("synthetic: a night in Paris") if r[0].key == "paris"]
    assert _km((lat, lon), PARIS_FR) < 25  # alone: the most populous Paris
    (_, lat, lon, _), = [r for r in _resolved("synthetic: sunset over Paris, Texas") if r[0].key == "paris"]
    assert _km((lat, lon), PARIS_TX) < 25  # with Texas: Paris, Texas
    (_, lat, lon, _), = [r for r in _resolved("synthetic: rodeo weekend", ["paris", "texas"]) if r[0].key == "paris"]
    assert _km((lat, lon), PARIS_TX) < 25  # the same from hashtags


def test_names_are_found_in_hashtags_and_in_japanese():
    keys = {m.key: (lat, lon) for m, lat, lon, _ in _resolved("synthetic: walking", ["newyorkcity", "brooklynbridge"])}
    assert _km(keys["newyorkcity"], (40.713, -74.006)) < 25
    (m, lat, lon, _), = _resolved("合成: 石巻市で避難しています")  # synthetic Japanese text naming Ishinomaki
    assert _km((lat, lon), (38.434, 141.303)) < 25
    assert _resolved("synthetic: nothing to see here") == []
    # Kana names are whole words: マン in マンション, フライン in ライフライン, いの in いのち are not places.
    assert gazetteer().find("合成: マンションのライフラインが止まった、いのちを守る") == []
    assert [m.key for m in gazetteer().find("合成: さいたま市とニューヨーク")] == ["さいたま", "ニューヨーク"]


def test_names_of_several_words_match_longest_first_as_a_search_of_every_length_would():
    gaz = gazetteer()
    assert [m.key for m in gaz.find("synthetic: from new york to rio de janeiro via salt lake city")] == [
        "new york", "rio de janeiro", "salt lake city"]

    def every_length(text):  # the greedy longest match trying every length at every word (what `_span` shortens)
        found, words, i = [], text.split(), 0
        while i < len(words):
            for n in range(min(4, len(words) - i), 0, -1):
                mention = gaz._lookup(" ".join(words[i : i + n]))
                if mention is not None:
                    found.append(mention)
                    i += n
                    break
            else:
                i += 1
        return found

    rng = np.random.default_rng(0)  # synthetic texts: words of real multi-word names, shuffled and overlapping
    keys = sorted(k for k in [*gaz.latin, *gaz.countries, *gaz.states] if " " in k)
    words = [w for k in rng.choice(keys, 400, replace=False) for w in k.split()]
    for start in range(0, len(words), 40):
        chunk = words[start : start + 40]
        for text in (" ".join(chunk), " ".join(rng.permutation(chunk))):
            assert gaz.find(text) == every_length(text)


def test_trust_is_low_for_a_name_that_is_a_common_word_and_high_for_a_real_one():
    """Synthetic located posts: 'nice' written everywhere but Nice, 'seattle' written in Seattle."""
    posts = [Post(id=f"s{i}", text="synthetic: such a nice day", lat=40.7 + i * 0.01, lon=-74.0) for i in range(20)]
    posts += [Post(id=f"t{i}", text="synthetic: rain again in seattle", lat=47.6, lon=-122.3) for i in range(20)]
    gaz = gazetteer()
    trust = NameTrust().fit(gaz, posts)
    mention = {m.key: m for text in ("nice", "seattle", "portland") for m in gaz.find(text)}
    assert trust(mention["nice"]) < 0.1 < 0.9 < trust(mention["seattle"])
    assert trust(mention["portland"], "flat") == 0.5  # never seen, the flat prior: one half


def test_an_unseen_name_is_trusted_as_names_written_the_same_way():
    """Synthetic located posts: city names written in full hit (seattle in Seattle), three-letter alternate names
    (camera file names: "img") miss. A name training never saw is trusted as its form is, unless the prior is flat."""
    posts = [Post(id=f"s{i}", text="synthetic: rain again in seattle", lat=47.6, lon=-122.3) for i in range(20)]
    posts += [Post(id=f"i{i}", text=f"synthetic: img {i}", lat=40.7, lon=-74.0) for i in range(20)]
    gaz = gazetteer()
    trust = NameTrust().fit(gaz, posts)
    portland, dsc = gaz.find("portland")[0], gaz.find("dsc")[0]
    assert gaz.form_of(portland) == gaz.form_of(gaz.find("seattle")[0]) and gaz.form_of(dsc) == gaz.form_of(gaz.find("img")[0])
    assert trust(dsc) < 0.1 < 0.5 < 0.9 < trust(portland)
    assert trust(dsc, "flat") == trust(portland, "flat") == 0.5
    # Written as a word inside a split hashtag, a name has a form of its own (here never seen: one half).
    segment = next(m for m in gaz.find("", ["pheucticus"]) if m.key == "phe")
    assert segment.form == "segment" and trust(segment) == 0.5


def test_specific_tags_decide_and_common_ones_barely_move_the_answer():
    """Synthetic index: rows 0-9 in place 0 carry #pier39, every row carries #travel; place 2 is the most frequent."""
    cls = np.array([0] * 10 + [1] * 10 + [2] * 30)
    rows_of = {"pier39": np.arange(10), "travel": np.arange(50)}
    log_prior, ratios, known = pooled_log_ratios([["pier39", "travel"], ["travel"], ["unknown"]], rows_of, cls, 3, 2.0,
                                                 [None, None, None])
    posterior = log_prior + ratios
    assert posterior[0].argmax() == 0 and posterior[1].argmax() == 2  # #travel alone: still the prior's answer
    assert np.allclose(ratios[1], 0, atol=0.05) and known.tolist() == [True, True, False]
    # A post already indexed does not vote for itself: row 0 carries #onlyme and nothing else does.
    _, own, known = pooled_log_ratios([["onlyme"]], {"onlyme": np.array([0])}, cls, 3, 2.0, [0])
    assert not known[0] and not own.any()


@pytest.fixture(scope="module")
def place_model(real_subset):
    posts = list(read_posts(real_subset))
    config = ModelConfig(evidence=["place_names", "tag_places"], cluster_k=0, refit=False, head=HeadConfig(max_epochs=3))
    return TagAtlas(config).fit(posts, progress=False), posts


def test_hashtags_as_input_move_the_answer_and_are_tuned_in_the_ingest_setting(place_model):
    m, posts = place_model
    assert "tag_places" in m.tuning_["geo_sources"]  # tuned on validation queries with their hashtags kept
    # A hashtag the index has seen only in one place (a synthetic query carrying it): the source points there.
    table = m.posts_.table()
    by_tag: dict[str, set[int]] = {}
    for rowid in np.flatnonzero(table.valid & (table.cls >= 0)):
        for t in table.row_tags[rowid]:
            by_tag.setdefault(table.tags[t], set()).add(int(table.cls[rowid]))
    tag, place = next((t, next(iter(c))) for t, c in sorted(by_tag.items()) if len(c) == 1)
    query = Post(id="synthetic-q", text="synthetic: what a day", hashtags=[tag])
    # Given weight (validation on this small subset may give it none: a source is gathered only when weighted).
    tuned = m.fusion_
    m.fusion_ = weighted = replace(tuned, source_place={**tuned.source_place, "tag_places": 0.9})
    try:
        ev = m.evidence([query])
        assert ev.sources["tag_places"].place[0].argmax() == place
        assert m.predictions_from([query], ev, weighted)[0].places[0].place == m.geolocator_.places_[place]
        # The posting form has no hashtags yet: nothing from this source.
        assert "tag_places" not in m.evidence([query.model_copy(update={"hashtags": []})]).sources
    finally:
        m.fusion_ = tuned


def test_validation_chooses_how_place_names_are_trusted_and_prediction_follows_it(place_model):
    m, _ = place_model
    from tagatlas.recommender.evidence.place_names import TRUST_SETTINGS

    chosen = m.tuning_["name_trust"]
    assert len(chosen["tried"]) == len(TRUST_SETTINGS) and tuple(chosen["chosen"]) in TRUST_SETTINGS
    assert (m.fusion_.name_trust, m.fusion_.name_position_trust) == tuple(chosen["chosen"])
    kept = None  # the rule: a later setting is kept where it leads the one kept so far by more than one query
    for setting, tried in zip(TRUST_SETTINGS, chosen["tried"].values()):
        if kept is None or tried["weakest_lead"] > kept[1] + 1 / chosen["val_queries"] + 1e-5:  # (leads are rounded)
            kept = (setting, tried["weakest_lead"])
    assert tuple(chosen["chosen"]) == kept[0]
    # The geolocation kept is the one tuned for the chosen setting (reused, not tuned a fifth time).
    chosen_geo = chosen["tried"][f"{kept[0][0]} {kept[0][1]}"]
    assert all(abs(m.tuning_["geo"][k] - v) < 1e-5 for k, v in chosen_geo.items())
    source = next(s for s in m.sources if s.name == "place_names")
    tuned = m.fusion_
    try:
        for setting in (("flat", 0.5), ("form", 0.35)):
            m.fusion_ = replace(tuned, name_trust=setting[0], name_position_trust=setting[1])
            assert source.trust_setting(m) == setting  # the model's tuned setting, not the one last on trial
    finally:
        m.fusion_ = tuned


def test_regathering_one_source_keeps_the_others_and_their_order(place_model):
    """Training tries place names' trust settings by gathering that source again; the rest of the evidence, and the
    order of the sources (the first naming source's point wins), stay as they were."""
    from tagatlas.data import clean_text, mask_hashtags
    from tagatlas.recommender.gather import regather

    m, posts = place_model
    batch = [p for p in posts if p.text][:30] + [Post(id="synthetic-q", text="synthetic: greetings from Lyon", hashtags=["paris"])]
    source = next(s for s in m.sources if s.name == "place_names")
    tuned = m.fusion_
    m.fusion_ = None  # as while training tunes: every source gathered, the trust setting on trial
    try:
        ev = m.evidence(batch)
        again = regather(m, ev, batch, [clean_text(mask_hashtags(p.text)) for p in batch], source)
        assert list(again.sources) == list(ev.sources) and list(ev.sources)[-1] != "place_names"
        for name, given in ev.sources.items():
            np.testing.assert_array_equal(again.sources[name].place, given.place)
            if given.position is not None:
                np.testing.assert_array_equal(again.sources[name].position, given.position)
        assert again.sources["tag_places"] is ev.sources["tag_places"]  # not gathered again
    finally:
        m.fusion_ = tuned


def test_a_written_place_name_points_to_its_place_class(place_model):
    m, _ = place_model
    geo = m.geolocator_
    k = int(np.argmax([city(p).population for p in geo.places_]))  # the largest city among the classes
    name = city(geo.places_[k]).name
    query = Post(id="synthetic-q", text=f"synthetic: greetings from {name}")
    named = m.evidence([query]).sources["place_names"]
    assert _km(geo.place_coords_[named.place[0].argmax()], geo.place_coords_[k]) < 161
    assert _km(named.position[0], (city(geo.places_[k]).lat, city(geo.places_[k]).lon)) < 25  # the city itself: its coordinates
    # "day" is an alternate name of Dayton that training posts write far from it: it points nowhere precise.
    unnamed = m.evidence([Post(id="synthetic-none", text="synthetic: what a day"), query]).sources["place_names"]
    assert np.isnan(unnamed.position[0]).all() and np.isfinite(unnamed.position[1]).all()


def test_text_baselines_fall_back_when_posts_have_no_text():
    """Synthetic photo-only posts: no word anywhere. The geo baseline answers the most frequent place, the tag
    baseline nothing, instead of stopping evaluation with 'empty vocabulary'."""
    from tagatlas.evaluation.baselines import TfidfKnnTags, TfidfLogReg

    classes = np.array([3, 1, 3, -1])
    assert TfidfLogReg().fit(["", None, "", ""], classes).predict(["", "x"]).tolist() == [3, 3]
    assert TfidfKnnTags().fit(["", ""], [["a"], ["b"]]).predict(["", "a"]) == [[], []]


def test_a_dataset_without_any_text_trains_and_evaluates(package_photos):
    """Photos only (real package photos; synthetic places, users and tags, named so): training and the evaluation
    contract run, the text baselines answering from the prior instead of stopping on an empty vocabulary."""
    from tagatlas.evaluation import evaluate

    paths = package_photos
    cities = [(35.68, 139.69), (34.69, 135.50), (43.06, 141.35), (33.59, 130.40)]
    rng = np.random.default_rng(0)
    posts = [Post(id=f"s{i}", user_id=f"synthetic-u{i // 2}", image=str(paths[i % 4]), hashtags=[f"synthtag{i % 4}"],
                  lat=cities[i % 4][0] + rng.normal() * 0.01, lon=cities[i % 4][1] + rng.normal() * 0.01,
                  created_at=f"2020-01-{1 + i % 2:02d}T00:00:00")
             for i in range(80)]
    test_users = {f"synthetic-u{k}" for k in range(0, 40, 5)}
    train = [p for p in posts if p.user_id not in test_users]
    model = TagAtlas(ModelConfig(head=HeadConfig(max_epochs=2), val_fraction=0.25, refit=False, cluster_k=0)).fit(train, progress=False)
    result = evaluate(model, posts, progress=False)
    assert result["n_queries"] > 0 and result["geo"]["baselines"]["tfidf_logreg"]["acc_at_km"]["161"] >= 0
    assert "geo_with_tags" in result and set(result["variants"]) == {"geo_text_only", "geo_image_only"}
    gain = result["uncertainty"]["modality_gain"]
    singles = max(v["acc_at_km"]["161"] for v in result["variants"].values())
    assert gain["ratio"] is None if not singles else gain["ratio"] == pytest.approx(result["geo"]["tagatlas"]["acc_at_km"]["161"] / singles)


def test_hostile_lengths_are_read_in_bounded_pieces():
    """A 1,000-letter hashtag is not segmented into words, and only the first MAX_CHARS of a huge text are read."""
    from tagatlas.data.toponyms import MAX_CHARS

    gaz = gazetteer()
    assert gaz.find("synthetic", ["a" * 1000]) == []
    keys = [m.key for m in gaz.find("x " * MAX_CHARS + "seattle")]
    assert "seattle" not in keys and [m.key for m in gaz.find("seattle " + "x " * MAX_CHARS)] == ["seattle"]


def test_the_place_names_source_is_gathered_where_named_places_are_on_even_without_a_place_share(place_model):
    m, _ = place_model
    query = Post(id="synthetic-q", text="synthetic: greetings from Lyon")
    tuned = m.fusion_
    bare = replace(tuned, source_place={**tuned.source_place, "place_names": 0.0}, source_place_tagged={},
                   coordinate_sources=[c for c in tuned.coordinate_sources if c != "place_names"],
                   name_trust="flat", name_position_trust=0.5)  # an unseen "lyon" trusted one half: it names a point
    try:
        m.fusion_ = replace(bare, named_place_below=0.0, named_place_below_tagged=0.0)
        assert "place_names" not in m.evidence([query]).sources  # no use for it: not gathered
        m.fusion_ = replace(bare, named_place_below=0.5, named_place_prob=0.6)
        named = m.evidence([query]).sources["place_names"]
        assert np.isfinite(named.position[0]).all()  # the city is there for the named-place rule to read
    finally:
        m.fusion_ = tuned
