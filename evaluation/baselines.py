"""Simple baselines that `tagatlas evaluate` runs in the same process, on the same split.

Geolocation: most_frequent, tfidf_logreg, knn_vote, classifier_only, user_last_place. Hashtags: popularity,
user_top, tfidf_knn, classifier_only. Each is trained on the model's training posts (the store),
and the retrieval ones also see the history posts added at evaluation time, as TagAtlas does.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from tagatlas.data import Post, clean_text, mask_hashtags
from tagatlas.index import StoredPost
from tagatlas.recommender.fusion import Evidence


def _text(t: str | None) -> str:
    return clean_text(mask_hashtags(t))


class MostFrequentPlace:
    def fit(self, classes: np.ndarray, n_classes: int) -> "MostFrequentPlace":
        self.class_ = int(np.bincount(classes[classes >= 0], minlength=n_classes).argmax())
        return self

    def predict(self, n: int) -> np.ndarray:
        return np.full(n, self.class_)


class TfidfLogReg:
    """Word uni- and bigram TF-IDF with one-vs-rest logistic regression (log-loss SGD) over the place classes.

    SGD rather than lbfgs: with ~1,000 places and 200k features lbfgs took 270 s on 2 cores, SGD ~45 s.
    alpha=1e-5 was the best of 1e-4…3e-6 on a validation split of tweets2015 training users (never the test split).
    """

    def __init__(self, alpha: float = 1e-5, epochs: int = 15, max_chars: int = 20_000, seed: int = 0):
        self.alpha, self.epochs, self.max_chars, self.seed = alpha, epochs, max_chars, seed

    def fit(self, texts: list[str], classes: np.ndarray) -> "TfidfLogReg":
        """Learn from the training texts; with one place, or no words at all (posts without text), it answers the
        most frequent place (a baseline that needs a missing modality falls back to the prior)."""
        self.vec_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000)
        ok = classes >= 0
        labels, counts = np.unique(classes[ok], return_counts=True)
        self.constant_ = int(labels[counts.argmax()]) if len(labels) else 0
        try:
            x = self.vec_.fit_transform([_text(t)[: self.max_chars] for t in texts])
        except ValueError:  # "empty vocabulary": no word occurs twice in the training texts
            return self
        if len(labels) == 1:  # one place: nothing to learn
            return self
        self.constant_ = None
        self.clf_ = SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=self.epochs, tol=None, n_jobs=-1,
                                  random_state=self.seed).fit(x[ok], classes[ok])
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        if self.constant_ is not None:
            return np.full(len(texts), self.constant_)
        return self.clf_.predict(self.vec_.transform([_text(t)[: self.max_chars] for t in texts]))


def knn_vote(ev: Evidence, k: int) -> np.ndarray:
    """Majority place among the k nearest indexed posts (unweighted; ties to the nearer neighbour)."""
    out = np.zeros(len(ev.nb_class), dtype=int)
    for i, row in enumerate(ev.nb_class[:, :k]):
        row = row[row >= 0]
        if row.size == 0:
            out[i] = int(ev.place_probs[i].argmax())
            continue
        counts = Counter(row.tolist())
        top = max(counts.values())
        out[i] = next(c for c in row.tolist() if counts[c] == top)
    return out


def user_last_place(history: list[Post], queries: list[Post]) -> list[tuple[float, float] | None]:
    """Where the user's located history post closest in time to each query was (None: the user has none): the peer
    any personalised geolocation must beat, since a user's posts of one week are mostly in one region."""
    by_user: dict[str, list[Post]] = defaultdict(list)
    for post in history:
        if post.has_location:
            by_user[post.user_key].append(post)
    out: list[tuple[float, float] | None] = []
    for q in queries:
        past = by_user.get(q.user_key) if q.user_id else None
        closest = min(past, key=lambda h: (abs(q.timestamp - h.timestamp), h.id)) if past else None
        out.append(None if closest is None else (closest.lat, closest.lon))
    return out


class Popularity:
    def fit(self, tag_lists: list[list[str]]) -> "Popularity":
        self.ranking_ = [t for t, _ in Counter(t for tags in tag_lists for t in tags).most_common(50)]
        return self

    def predict(self, n: int) -> list[list[str]]:
        return [list(self.ranking_) for _ in range(n)]


class UserTop:
    """The user's own most used tags in their history, then the globally popular ones."""

    def fit(self, history: list[Post], popularity: Popularity) -> "UserTop":
        self.by_user_: dict[str, Counter] = defaultdict(Counter)
        for post in history:
            self.by_user_[post.user_key].update(post.hashtags)
        self.popularity_ = popularity
        return self

    def predict(self, queries: list[Post]) -> list[list[str]]:
        out = []
        for q in queries:
            own = [t for t, _ in self.by_user_.get(q.user_key, Counter()).most_common()]
            out.append(own + [t for t in self.popularity_.ranking_ if t not in own])
        return out


class TfidfKnnTags:
    """Tags of the k most TF-IDF-similar posts (training + evaluation history), voted by similarity."""

    def __init__(self, k: int = 25, max_chars: int = 20_000):
        self.k, self.max_chars = k, max_chars

    def fit(self, texts: list[str], tag_lists: list[list[str]]) -> "TfidfKnnTags":
        keep = [i for i, tags in enumerate(tag_lists) if tags and _text(texts[i])]
        self.vec_ = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
        try:
            self.x_ = self.vec_.fit_transform([_text(texts[i])[: self.max_chars] for i in keep])
        except ValueError:  # no tagged post has a word (posts without text): it recommends nothing
            self.x_ = np.zeros((0, 0))
        self.tags_ = [tag_lists[i] for i in keep]
        return self

    def predict(self, texts: list[str]) -> list[list[str]]:
        if self.x_.shape[0] == 0:
            return [[] for _ in texts]
        out = []
        for start in range(0, len(texts), 1000):  # bounded memory: 1,000 × training-size similarities at a time
            out.extend(self._predict_chunk(texts[start : start + 1000]))
        return out

    def _predict_chunk(self, texts: list[str]) -> list[list[str]]:
        sims = (self.vec_.transform([_text(t)[: self.max_chars] for t in texts]) @ self.x_.T).toarray()
        out = []
        for row in sims:
            top = np.argsort(-row)[: self.k]
            votes: Counter = Counter()
            for j in top:
                if row[j] > 0:
                    for t in self.tags_[j]:
                        votes[t] += row[j]
            out.append([t for t, _ in votes.most_common(20)])
        return out


def stored_texts_and_tags(stored: list[StoredPost]) -> tuple[list[str], list[list[str]]]:
    return [s.text or "" for s in stored], [s.hashtags for s in stored]
