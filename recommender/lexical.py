"""Hashed word and character n-gram TF-IDF: the lexical signal (place names, misspellings) dense encoders blur.

Character n-grams are MRLF's answer to noisy spelling; hashing keeps memory fixed and lets any
new word map to a feature without refitting.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize


class LexicalFeaturizer:
    """fit(texts) learns IDF weights; transform(texts) → L2-normalised sparse rows of `n_features` columns."""

    def __init__(self, n_features: int = 2**18, char_ngrams: tuple[int, int] = (2, 4), max_chars: int = 20_000):
        self.n_features = n_features
        self.char_ngrams = tuple(char_ngrams)
        self.max_chars = max_chars
        half = n_features // 2
        self._words = HashingVectorizer(n_features=half, ngram_range=(1, 2), alternate_sign=False, norm=None,
                                        token_pattern=r"(?u)\b\w+\b", lowercase=True)
        self._chars = HashingVectorizer(n_features=n_features - half, analyzer="char_wb", ngram_range=self.char_ngrams,
                                        alternate_sign=False, norm=None, lowercase=True)

    def _counts(self, texts) -> sp.csr_matrix:
        texts = [(t or "")[: self.max_chars] for t in texts]
        return sp.hstack([self._words.transform(texts), self._chars.transform(texts)], format="csr")

    def fit(self, texts) -> "LexicalFeaturizer":
        self.tfidf_ = TfidfTransformer(sublinear_tf=True, norm=None).fit(self._counts(texts))
        return self

    def transform(self, texts) -> sp.csr_matrix:
        # counts of hashed n-grams are finite and the parameters were checked when fitted: skip scikit-learn's
        # per-call validation, a fixed cost that a live suggestion (one text per call) pays in full
        with config_context(assume_finite=True, skip_parameter_validation=True):
            return normalize(self.tfidf_.transform(self._counts(texts)), norm="l2").astype(np.float32).tocsr()

    def state(self) -> dict:
        return {"n_features": self.n_features, "char_ngrams": list(self.char_ngrams), "max_chars": self.max_chars,
                "idf": self.tfidf_.idf_.astype(np.float32)}

    @classmethod
    def from_state(cls, state: dict) -> "LexicalFeaturizer":
        self = cls(int(state["n_features"]), tuple(state["char_ngrams"]), int(state["max_chars"]))
        self.tfidf_ = TfidfTransformer(sublinear_tf=True, norm=None)
        self.tfidf_.idf_ = np.asarray(state["idf"], dtype=np.float64)
        return self
