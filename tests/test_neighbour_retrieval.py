"""Neighbour retrieval's tie-break: a tie group larger than the search window (hundreds of indexed posts with the
same text) gives every query the same tied neighbours, whichever subset of the group the index returns first.

Synthetic vectors and posts (named so); one test searches a real FAISS index.
"""

import numpy as np

from tagatlas.index import FaissIndex
from tagatlas.recommender.evidence.neighbours import NEIGHBOUR_SPARE, retrieve
from tagatlas.recommender.neighbours import NeighbourTable

DIM, TIED, OTHERS, K = 8, 300, 40, 5


def synthetic_posts(seed: int = 0) -> tuple[np.ndarray, NeighbourTable]:
    """TIED identical unit vectors (rowids 0..TIED-1, e.g. posts whose whole text is "?"), then OTHERS random ones."""
    rng = np.random.default_rng(seed)
    tied = np.tile(np.eye(DIM, dtype=np.float32)[0], (TIED, 1))
    others = rng.normal(size=(OTHERS, DIM)).astype(np.float32)
    others[:, 0] = 0.0  # orthogonal to the tied direction: every tied post is nearer than any other
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    vectors = np.vstack([tied, others])
    table = NeighbourTable(lambda places, lat, lon: np.array([int(p) for p in places]), [])
    n = len(vectors)
    table.add(list(range(n)), [f"synthetic-{i}" for i in range(n)], [0.0] * n, [0.0] * n, [str(i % 3) for i in range(n)], [[]] * n)
    return vectors, table


class ShuffledTies:
    """Exact inner-product search that returns equal scores in a random order, as FAISS's BLAS path may when float
    noise in the query moves a score in its last bits; counts the searches and their widths."""

    def __init__(self, vectors: np.ndarray, seed: int):
        self.vectors, self.rng, self.widths = vectors, np.random.default_rng(seed), []

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.widths.append(k)
        scores = queries @ self.vectors.T
        ids, sims = np.full((len(queries), k), -1, np.int64), np.full((len(queries), k), -np.inf, np.float32)
        for i, row in enumerate(scores):
            order = np.lexsort((self.rng.permutation(len(row)), -np.round(row, 5)))[:k]
            ids[i, :len(order)], sims[i, :len(order)] = order, row[order]
        return sims, ids


def test_a_tie_group_wider_than_the_window_gives_its_lowest_rowids_whatever_order_the_search_returns():
    vectors, table = synthetic_posts()
    query = vectors[:1] + np.float32(1e-7) * np.random.default_rng(1).normal(size=(1, DIM)).astype(np.float32)
    first_windows, answers = set(), set()
    for seed in range(6):
        search = ShuffledTies(vectors, seed)
        first_windows.add(tuple(sorted(search(query, K + 1 + NEIGHBOUR_SPARE)[1][0])))
        search.widths.clear()
        nb = retrieve(search, table, query, ["synthetic-query"], K)
        answers.add(tuple(nb.ids[0]))
        assert search.widths[0] == K + 1 + NEIGHBOUR_SPARE and len(search.widths) > 1  # it searched wider
        assert tuple(nb.found[1][0]) == tuple(range(K + 1 + NEIGHBOUR_SPARE))
    assert len(first_windows) > 1  # the plain window alone differs from search to search
    assert answers == {tuple(f"synthetic-{i}" for i in range(K))}


def test_the_post_itself_is_left_out_of_its_tie_group_and_the_next_lowest_rowid_takes_its_place():
    vectors, table = synthetic_posts()
    nb = retrieve(ShuffledTies(vectors, 3), table, vectors[:1], ["synthetic-0"], K)
    assert nb.ids[0] == [f"synthetic-{i}" for i in range(1, K + 1)]


def test_a_query_whose_window_ends_past_its_ties_is_searched_once():
    vectors, table = synthetic_posts()
    query = vectors[TIED:TIED + 1]  # one of the distinct posts: the tied group is far from it
    search = ShuffledTies(vectors, 0)
    nb = retrieve(search, table, query, ["synthetic-query"], K)
    assert search.widths == [K + 1 + NEIGHBOUR_SPARE]
    assert nb.ids[0][0] == f"synthetic-{TIED}"


def test_a_real_flat_index_gives_the_lowest_tied_rowids_for_queries_in_any_batch():
    vectors, table = synthetic_posts()
    index = FaissIndex(DIM, factory="Flat", use_gpu=False).index(np.arange(len(vectors), dtype=np.int64), vectors)
    rng = np.random.default_rng(2)
    queries = vectors[:1] + np.float32(1e-7) * rng.normal(size=(8, DIM)).astype(np.float32)
    others = vectors[TIED:TIED + 20]
    alone = retrieve(index.search, table, queries, [f"q{i}" for i in range(8)], K)
    mixed = retrieve(index.search, table, np.vstack([others, queries]), [f"o{i}" for i in range(20)] + [f"q{i}" for i in range(8)], K)
    expected = [f"synthetic-{i}" for i in range(K)]
    assert all(ids == expected for ids in alone.ids)
    assert all(ids == expected for ids in mixed.ids[20:])


def test_a_post_with_nothing_to_compare_ties_with_every_indexed_post_and_gets_the_lowest_rowids():
    vectors, table = synthetic_posts()
    for seed in range(3):
        nb = retrieve(ShuffledTies(vectors, seed), table, np.zeros((1, DIM), np.float32), ["synthetic-blank"], K)
        assert nb.ids[0] == [f"synthetic-{i}" for i in range(K)]
