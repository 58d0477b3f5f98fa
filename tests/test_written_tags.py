"""Tags written as words: their prior is how often indexed posts that spell a tag out also carry it (synthetic posts,
made up here: 'day' written often and rarely tagged, 'newyork' spelled out and tagged alike)."""

import numpy as np

from tagatlas.data import Post
from tagatlas.index import FaissIndex, PostStore
from tagatlas.recommender.evidence.written_tags import WrittenTagRates, text_tokens, written_tags
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.tag_fusion import select_tags, tag_scores
from tagatlas.recommender.post_index import PostIndex
from tagatlas.recommender.reader import cleaned


def synthetic_posts(start: int = 0) -> list[Post]:
    """20 posts writing 'day' (one tags it), 10 spelling out 'new york' (9 tag #newyork), 5 tagging #snow, and 25 tagging
    #day without writing it: by popularity #day would outrank #newyork."""
    posts = [Post(id=f"day{i}", text=f"a lovely day number {i}", hashtags=["day"] if i == 0 else ["fun"]) for i in range(20)]
    posts += [Post(id=f"ny{i}", text=f"walking in new york {i}", hashtags=["newyork"] if i < 9 else []) for i in range(10)]
    posts += [Post(id=f"snow{i}", text=f"cold #snow morning {i}", hashtags=["snow"]) for i in range(5)]
    posts += [Post(id=f"sunny{i}", text=f"sunny afternoon {i}", hashtags=["day"]) for i in range(25)]
    return [Post(id=f"{p.id}-{start}", text=p.text, hashtags=p.hashtags) for p in posts]


class _Table:
    """The one thing `written_tags` asks of a neighbour table: tag ids for tag names."""

    def __init__(self, tags):
        self.tags = list(tags)

    def ids_of(self, names):
        return tuple(self.tags.index(t) for t in names)


def _index() -> PostIndex:
    return PostIndex(FaissIndex(4), PostStore(), lambda ids, lat, lon: np.full(len(ids), -1), [])


def _add(index: PostIndex, posts: list[Post]) -> None:
    vectors = np.random.default_rng(0).normal(size=(len(posts), 4)).astype(np.float32)
    index.add(posts, vectors, [None] * len(posts), "fit", (np.full(len(posts), -1), [{}] * len(posts)))


def _counts(rates: WrittenTagRates) -> tuple[dict, dict, int, int]:
    return dict(rates.written_), dict(rates.tagged_), rates.written_total_, rates.tagged_total_


def test_a_word_written_without_its_tag_gets_a_low_prior_and_a_spelled_out_tag_a_high_one():
    posts = synthetic_posts()
    rates = WrittenTagRates.from_posts([([cleaned(p.text) for p in posts], [p.hashtags for p in posts])], known={"day", "newyork", "snow"})
    assert rates.written_["day"] == 20 and rates.tagged_["day"] == 1
    assert rates.written_["newyork"] == 10 and rates.tagged_["newyork"] == 9
    assert "snow" not in rates.written_  # '#snow' is masked: a tag typed as a hashtag is not a word written
    day, newyork, never = rates.rates(["day", "newyork", "nowhere"])
    assert day < 0.15 < 0.7 < newyork
    assert np.isclose(never, rates.pooled_) and np.isclose(rates.pooled_, 10 / 30)


def test_written_tags_ranks_a_real_tag_above_a_word_lifted_from_the_caption():
    posts = synthetic_posts()
    index = _index()
    _add(index, posts)
    table = _Table(["day", "newyork", "snow", "fun"])
    ids, prior = written_tags([cleaned("snow day in new york")], index.tag_counts(), table, index.written_rates())
    by_tag = dict(zip((table.tags[i] for i in ids[0]), prior[0]))
    assert set(by_tag) == {"day", "newyork", "snow"}  # every known tag spelled out is a candidate
    assert by_tag["newyork"] > 0.7 and by_tag["day"] < 0.15
    assert index.tag_counts()["day"] > index.tag_counts()["newyork"]  # popularity alone would have ranked #day first

    # through fusion: with only the written-words source, #newyork is suggested and #day is not
    ev = Evidence(place_probs=np.ones((1, 1)), tag_probs=np.zeros((1, 4)), nb_sims=np.full((1, 1), -np.inf), nb_class=np.full((1, 1), -1),
                  nb_lat=np.zeros((1, 1)), nb_lon=np.zeros((1, 1)), nb_ids=[[]], nb_tags=[[[]]], habit_sims=[np.zeros(0)], habit_tags=[[]],
                  habit_ids=[[]], tags=table.tags, n_vocab=4, text_tags=[list(ids[0])], text_prior=prior)
    params = FusionParams(tag_beta=1.0, habit_gamma=0.0, text_gamma=1.0, tag_threshold=0.5)
    scores, _ = tag_scores(ev, params)
    order, keep = select_tags(scores, params, tags=table.tags)
    suggested = {table.tags[j] for j in order[0, : keep[0]]}
    assert "newyork" in suggested and "day" not in suggested


def test_counts_follow_adds_and_deletes_as_a_recount_from_the_store_would():
    index = _index()
    _add(index, synthetic_posts(0))
    index.written_rates()  # read once: later writes are followed, not recounted
    _add(index, synthetic_posts(1))
    index.delete([p.id for p in synthetic_posts(0)[:12]])
    followed = index.written_rates()
    assert followed.generation == index.store.generation()
    recounted = WrittenTagRates.from_posts(
        (([cleaned(p.text) for p in rows], [p.hashtags for p in rows]) for _, rows in index.store.iter_meta()), index.store.tags.counts())
    assert _counts(followed) == _counts(recounted)
    assert followed.written_["day"] == 28 and followed.tagged_["day"] == 1  # one of the two #day posts was deleted


def test_counts_survive_a_restart_on_the_same_store(tmp_path):
    index = PostIndex(FaissIndex(4), PostStore(tmp_path / "store.sqlite"), lambda ids, lat, lon: np.full(len(ids), -1), [])
    _add(index, synthetic_posts())
    before = _counts(index.written_rates())
    index.store.close()
    again = PostIndex(FaissIndex(4), PostStore(tmp_path / "store.sqlite"), lambda ids, lat, lon: np.full(len(ids), -1), [])
    assert _counts(again.written_rates()) == before


def test_a_tag_born_online_is_counted_from_its_first_post():
    index = _index()
    _add(index, synthetic_posts())
    index.written_rates()
    _add(index, [Post(id="new1", text="the brandnewfest opens", hashtags=["brandnewfest"]),
                 Post(id="new2", text="brandnewfest again", hashtags=[])])
    rates = index.written_rates()
    assert rates.written_["brandnewfest"] == 2 and rates.tagged_["brandnewfest"] == 1
    assert "brandnewfest" in text_tokens(cleaned("the brandnewfest opens"))
