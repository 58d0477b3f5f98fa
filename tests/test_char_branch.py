"""The character-aware branch of the head (MRLF): ids, masking, learning from spelling alone, round trips.

All texts here are synthetic (generated in the tests): the place signal lives only in misspelt place
words, so only the character branch can read it (the lexical bag and dense vectors are left empty).
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tagatlas.recommender.head import CHAR_BUCKETS, CharBranch, HeadConfig, HeadTrainer, char_ids

WORDS = ["shinjuku", "namba", "tenjin", "susukino"]
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def noisy(word: str, rng) -> str:
    """The word with one random character changed or dropped (the kind of typo tweets are full of)."""
    i = int(rng.integers(len(word)))
    if rng.random() < 0.5:
        return word[:i] + word[i + 1 :]
    return word[:i] + str(rng.choice(LETTERS)) + word[i + 1 :]


def synthetic_texts(n: int, seed: int):
    rng = np.random.default_rng(seed)
    place = rng.integers(0, len(WORDS), n)
    filler = lambda: "".join(rng.choice(LETTERS, int(rng.integers(3, 8))))  # noqa: E731
    texts = [f"{filler()} {noisy(WORDS[c], rng)} {filler()} {filler()}" for c in place]
    return texts, place


def fit(texts, place, char_dim=24, epochs=30, seed=0):
    n = len(texts)
    x, dense = sp.csr_matrix((n, 8), dtype=np.float32), np.zeros((n, 2), np.float32)
    cfg = HeadConfig(bag_dim=4, hidden=32, dropout=0.0, lr=5e-3, char_dim=char_dim, char_len=64, char_heads=2, seed=seed)
    return HeadTrainer(cfg).fit(x, dense, place, [[] for _ in range(n)], len(WORDS), 0, epochs=epochs, progress=False, texts=texts)


def predict(head, texts):
    n = len(texts)
    return head.predict(sp.csr_matrix((n, 8), dtype=np.float32), np.zeros((n, 2), np.float32), texts=texts)


def test_char_ids_fold_code_points_pad_with_zero_and_cut_at_the_length():
    ids = char_ids(["Ab", "", "東京タワー", "x" * 100], max_len=8)
    assert ids.shape == (4, 8) and ids.dtype == np.int64
    assert (ids[0] == char_ids(["ab"], 8)[0]).all() and ids[0, 0] != ids[0, 1]  # lower-cased
    assert (ids[0, 2:] == 0).all() and (ids[1] == 0).all()
    assert (ids[2, :5] > 0).all() and (ids[2, 5:] == 0).all() and len(set(ids[2, :5])) == 5
    assert (ids[3] > 0).all() and ids.max() < CHAR_BUCKETS


def test_the_branch_masks_padding_and_survives_empty_texts():
    torch.manual_seed(0)
    branch = CharBranch(dim=16, heads=2, max_len=64, dropout=0.0).eval()
    short = torch.from_numpy(char_ids(["tenjin"], 64))
    batch = torch.from_numpy(char_ids(["tenjin", "a much longer text about susukino in sapporo", ""], 64))
    with torch.no_grad():
        alone, together = branch(short), branch(batch)
    assert together.shape == (3, 16) and torch.isfinite(together).all()
    # Padding is masked: a text's vector does not depend on how long the other texts of its batch are.
    assert torch.allclose(alone[0], together[0], atol=1e-5)


def test_the_branch_learns_places_from_misspelt_words_alone():
    texts, place = synthetic_texts(800, seed=1)
    test_texts, test_place = synthetic_texts(300, seed=2)
    with_chars = (predict(fit(texts, place), test_texts).place_probs.argmax(1) == test_place).mean()
    without = (predict(fit(texts, place, char_dim=0, epochs=5), test_texts).place_probs.argmax(1) == test_place).mean()
    assert with_chars > 0.9
    assert without < 0.45  # nothing else carries the signal: chance is 0.25


def test_round_trip_determinism_and_a_clear_error_without_texts():
    texts, place = synthetic_texts(200, seed=3)
    a, b = fit(texts, place, epochs=3, seed=7), fit(texts, place, epochs=3, seed=7)
    pa = predict(a, texts[:20])
    assert np.array_equal(pa.z, predict(b, texts[:20]).z)  # same seed, same head
    loaded = HeadTrainer.from_state_dict(a.state_dict())
    assert loaded.reads_text and np.allclose(predict(loaded, texts[:20]).place_probs, pa.place_probs, atol=1e-6)
    with pytest.raises(ValueError, match="texts"):
        a.predict(sp.csr_matrix((2, 8), dtype=np.float32), np.zeros((2, 2), np.float32))


def test_heads_saved_before_the_branch_still_load():
    texts, place = synthetic_texts(50, seed=4)
    state = fit(texts, place, char_dim=0, epochs=1).state_dict()
    for key in ("char_dim", "char_len", "char_heads"):
        state["config"].pop(key)
    loaded = HeadTrainer.from_state_dict(state)
    assert not loaded.reads_text
    assert loaded.predict(sp.csr_matrix((3, 8), dtype=np.float32), np.zeros((3, 2), np.float32)).place_probs.shape == (3, 4)
