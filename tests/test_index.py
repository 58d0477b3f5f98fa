import numpy as np
import pytest

import tagatlas.index.faiss_index as faiss_index_module
from tagatlas.data import Post
from tagatlas.index import FaissIndex, PostStore, factory_for


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_add_search_delete_roundtrip(tmp_path):
    vecs = unit(200, 16)
    index = FaissIndex(16).index(np.arange(100, 300), vecs)
    scores, ids = index.search(vecs[:3], 5)
    assert ids[:, 0].tolist() == [100, 101, 102]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert index.delete([100, 999]) == 1
    _, ids = index.search(vecs[:1], 5)
    assert 100 not in ids[0] and index.count() == 199
    index.save(tmp_path / "i.faiss")
    loaded = FaissIndex.load(tmp_path / "i.faiss")
    assert loaded.count() == 199
    assert np.array_equal(loaded.search(vecs[5:8], 4)[1], index.search(vecs[5:8], 4)[1])


def test_online_add_is_searchable_at_once():
    vecs = unit(50, 8)
    index = FaissIndex(8).index(np.arange(50), vecs)
    new = unit(1, 8, seed=7)
    index.add([777], new)
    assert index.search(new, 1)[1][0, 0] == 777


def test_empty_index_and_short_results():
    index = FaissIndex(4)
    scores, ids = index.search(unit(2, 4), 3)
    assert (ids == -1).all() and np.isneginf(scores).all()
    index.add([1], unit(1, 4))
    scores, ids = index.search(unit(1, 4), 3)
    assert ids[0, 0] == 1 and (ids[0, 1:] == -1).all()


def test_bad_vectors_and_factory_are_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        FaissIndex(8).index([1], unit(1, 4))
    with pytest.raises(ValueError, match="index_factory"):
        FaissIndex(8, factory="NoSuchIndex12").index([1], unit(1, 8))


def test_factory_follows_data_size():
    assert factory_for(1_000) == "Flat"
    assert factory_for(200_000).startswith("IVF")
    ivf = FaissIndex(8, factory="IVF4,Flat").index(np.arange(500), unit(500, 8))
    assert ivf.search(unit(500, 8)[:1], 1)[1][0, 0] == 0


def test_crash_mid_save_leaves_previous_index_loadable(tmp_path, monkeypatch):
    path = tmp_path / "i.faiss"
    FaissIndex(8).index(np.arange(10), unit(10, 8)).save(path)
    bigger = FaissIndex(8).index(np.arange(20), unit(20, 8))

    def torn_write(index, target):
        with open(target, "wb") as handle:
            handle.write(b"IxMp partial")
        raise OSError("disk full (simulated crash)")

    monkeypatch.setattr(faiss_index_module.faiss, "write_index", torn_write)
    with pytest.raises(OSError):
        bigger.save(path)
    monkeypatch.undo()
    assert FaissIndex.load(path).count() == 10
    assert [p.name for p in tmp_path.iterdir()] == ["i.faiss"]  # no temporary left behind


def test_corrupt_index_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.faiss"
    path.write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a readable FAISS index"):
        FaissIndex.load(path)


def test_store_add_get_user_delete_and_copy(tmp_path):
    store = PostStore(tmp_path / "s.sqlite", dim=4)
    posts = [Post(id=f"p{i}", user_id="u1" if i < 3 else None, text=f"t{i}", hashtags=[f"#Tag{i}"],
                  created_at=f"2015-02-0{i + 1}T00:00:00Z", lat=1.0, lon=2.0) for i in range(5)]
    rowids = store.add(posts, unit(5, 4), ["pl"] * 5, role="fit")
    assert len(set(rowids)) == 5
    got = store.get(rowids[:2])
    assert got[rowids[0]].hashtags == ["tag0"] and got[rowids[1]].id == "p1"
    assert [p.id for p in store.by_user("u:u1")] == ["p2", "p1", "p0"]
    assert np.allclose(store.vectors([rowids[4]]), unit(5, 4)[4])
    with pytest.raises(ValueError, match="already stored"):
        store.add(posts[:1], unit(1, 4), [None], role="online")
    assert store.tags.counts() == {f"tag{i}": 1 for i in range(5)}
    assert store.tags.rows_with(["tag1", "tag3", "tag1", "never"]) == {"tag1": [rowids[1]], "tag3": [rowids[3]]}
    copy = PostStore.open_copy(tmp_path / "s.sqlite")
    assert store.delete(["p0", "missing"]) == [rowids[0]]
    assert store.count() == 4 and copy.count() == 5  # the copy is independent
    assert "tag0" not in store.tags.counts() and "tag0" in copy.tags.counts()
    copy.add([Post(id="new", text="x")], unit(1, 4), [None], role="online")
    store.close()
    assert PostStore(tmp_path / "s.sqlite").count() == 4  # committed writes survive reopening


def test_store_clusters_record_read_follow_deletes_and_survive_a_copy(tmp_path):
    store = PostStore(tmp_path / "s.sqlite", dim=4)
    posts = [Post(id=f"p{i}", text=f"t{i}", created_at=f"2015-02-0{i + 1}T00:00:00Z") for i in range(4)]
    rowids = store.add(posts, unit(4, 4), [None] * 4, role="fit")
    assert store.clusters.sizes() == {} and store.clusters.of(rowids) == {}
    store.clusters.record(rowids[:3], [0, 0, 1], [{"content": 1.0}, {"content": 0.5, "hashtags": 0.5}, {"content": 1.0}])
    assert store.clusters.sizes() == {0: 2, 1: 1}
    assert store.clusters.of([rowids[1], rowids[3]]) == {rowids[1]: (0, {"content": 0.5, "hashtags": 0.5})}
    members, labels, times = store.clusters.members()
    assert members.tolist() == rowids[:3] and labels.tolist() == [0, 0, 1] and times[0] < times[1] < times[2]
    copy = PostStore.open_copy(tmp_path / "s.sqlite")
    store.delete(["p0"])  # a deleted post leaves its cluster
    assert store.clusters.sizes() == {0: 1, 1: 1} and copy.clusters.sizes() == {0: 2, 1: 1}
    store.clusters.record([rowids[3]], [5], [{}], replace_all=True)  # a new clustering replaces every row
    assert store.clusters.sizes() == {5: 1}
    with pytest.raises(ValueError):
        store.clusters.record(rowids[:2], [1], [{}, {}])  # one cluster for two posts


def near_ties(n_base=300, copies=20, d=32, jitter=0.01, seed=0):
    """Synthetic: copies of random unit vectors with small Gaussian jitter, so neighbours are near-equal (the
    case where 8-bit codes misorder them)."""
    rng = np.random.default_rng(seed)
    base = unit(n_base, d, seed)
    x = np.repeat(base, copies, axis=0) + rng.normal(0, jitter, (n_base * copies, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def store_source(vectors, ids):
    """A vector source like PostStore.vectors_found over an in-memory table (synthetic)."""
    table = dict(zip(ids.tolist(), vectors))

    def source(wanted):
        kept = [i for i in wanted if i in table]
        return np.array(kept, np.int64), np.array([table[i] for i in kept], np.float32).reshape(len(kept), vectors.shape[1])
    return source, table


def test_exact_rerank_restores_the_exact_order_of_what_a_quantised_index_found():
    from tagatlas.index import reranked_search

    x = near_ties()
    ids = np.arange(10_000, 10_000 + len(x))
    queries = near_ties(n_base=300, copies=1, seed=0)[:50] + 0.0  # near the copies' bases
    exact = FaissIndex(x.shape[1], factory="Flat").index(ids, x)
    sq8 = FaissIndex(x.shape[1], factory="IVF16,SQ8", nprobe=16).index(ids, x)  # every list: only the codes err
    assert exact.exact and not sq8.exact
    truth = exact.search(queries, 10)[1]
    raw = sq8.search(queries, 10)[1]
    source, _ = store_source(x, ids)
    scores, found = reranked_search(sq8, queries, 10, source, factor=4)
    assert (raw != truth).any()  # the codes misorder near-ties (else this test shows nothing)
    # exact scores of what it returns equal exact search's top 10: an exact top 10 (near-equal scores, ~1e-7
    # apart, may swap between two float summation orders, hence the overlap bound rather than equality)
    assert np.allclose(scores, exact.search(queries, 10)[0], atol=1e-5) and (np.diff(scores, axis=1) <= 0).all()
    assert np.allclose(scores, np.take_along_axis(queries @ x.T, found - 10_000, 1), atol=1e-5)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.98
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(raw, truth)]) < 0.98


def test_rerank_drops_ids_deleted_since_the_search_and_pads_short_results():
    from tagatlas.index import reranked_search

    x = unit(40, 8)
    ids = np.arange(40)
    index = FaissIndex(8, factory="IVF2,SQ8", nprobe=2).index(ids, x)
    source, table = store_source(x, ids)
    del table[0]  # gone from the store, still in the index
    scores, found = reranked_search(index, x[:1], 5, source, factor=2)
    assert 0 not in found[0] and (found[0] >= 0).all() and np.all(np.diff(scores[0]) <= 0)
    scores, found = reranked_search(index, x[:1], 60, source, factor=1)  # more than stored: padded
    assert (found[0, 39:] == -1).all() and np.isneginf(scores[0, 39:]).all() and (found[0, :39] >= 0).all()
    with pytest.raises(ValueError, match="factor"):
        reranked_search(index, x[:1], 5, source, factor=0)


def test_nprobe_is_derived_from_the_lists_unless_set(tmp_path):
    from tagatlas.index import nprobe_for

    assert nprobe_for(2048) == 256 and nprobe_for(512) == 128 and nprobe_for(8) == 8
    assert factory_for(1_000_000) == "IVF2048,SQ8" and factory_for(100_000) == "IVF512,Flat"
    x = unit(2000, 8)
    index = FaissIndex(8, factory="IVF256,Flat").index(np.arange(2000), x)
    index.search(x[:1], 1)
    import faiss

    assert faiss.extract_index_ivf(index._index).nprobe == nprobe_for(256) == 91
    index.save(tmp_path / "i.faiss")
    loaded = FaissIndex.load(tmp_path / "i.faiss", nprobe=7)
    loaded.search(x[:1], 1)
    assert faiss.extract_index_ivf(loaded._index).nprobe == 7 and not loaded.exact


def test_store_vectors_found_skips_missing_rowids(tmp_path):
    store = PostStore(tmp_path / "s.sqlite", dim=4)
    vecs = unit(3, 4)
    rowids = store.add([Post(id=f"synthetic-{i}", text="t") for i in range(3)], vecs, [None] * 3, role="fit")
    found, got = store.vectors_found([rowids[2], 999, rowids[0]])
    assert sorted(found.tolist()) == sorted([rowids[2], rowids[0]])
    for r, v in zip(found, got):
        assert np.allclose(v, vecs[rowids.index(int(r))])
    assert store.vectors_found([999])[0].size == 0


def test_model_reranks_an_approximate_index_with_its_store_vectors(model_dir, tweets_path):
    """A trained model whose index is swapped for 8-bit codes finds, through `PostIndex.search`, the posts
    exact search finds; with re-ranking off it returns the codes' own (approximate) scores."""
    import gzip
    import itertools
    import json

    from tagatlas.recommender import TagAtlas

    model = TagAtlas.load(model_dir)
    assert model.posts_.index.exact  # the default at this size
    with gzip.open(tweets_path, "rt", encoding="utf-8") as src:  # real tweets beyond the training subset
        queries = model.embed([Post.model_validate(json.loads(line)) for line in itertools.islice(src, 5000, 5040)])
    truth_scores, truth = model.posts_.search(queries, 10)
    rowids, vectors = [], []
    for r, _, v in model.posts_.store.iter_all():
        rowids.extend(r)
        vectors.append(v)
    model.posts_.index = FaissIndex(model.posts_.index.dim, factory="IVF8,SQ8", nprobe=8).index(np.array(rowids), np.concatenate(vectors))
    assert not model.posts_.index.exact
    scores, found = model.posts_.search(queries, 10)
    # the returned scores are exact inner products of the returned posts: equal to exact search's top 10 means
    # an exact top 10 (duplicate tweets tie, so ids may differ where scores are equal)
    assert np.allclose(scores, truth_scores, atol=1e-5)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.95
    model.posts_.rerank = 0
    raw_scores, _ = model.posts_.search(queries, 10)
    assert not np.allclose(raw_scores, truth_scores, atol=1e-5)  # the codes' scores: what re-ranking corrects
