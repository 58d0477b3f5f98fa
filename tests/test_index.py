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
    assert store.tag_counts() == {f"tag{i}": 1 for i in range(5)}
    copy = PostStore.open_copy(tmp_path / "s.sqlite")
    assert store.delete(["p0", "missing"]) == [rowids[0]]
    assert store.count() == 4 and copy.count() == 5  # the copy is independent
    assert "tag0" not in store.tag_counts() and "tag0" in copy.tag_counts()
    copy.add([Post(id="new", text="x")], unit(1, 4), [None], role="online")
    store.close()
    assert PostStore(tmp_path / "s.sqlite").count() == 4  # committed writes survive reopening
