"""The user's own places (DESIGN's user habits, applied to where): the place classes of the user's indexed past
posts that carry a location, each trusted by how far apart in time the two posts are. How much a gap can be
trusted is learned from the training users: two photos a photographer takes the same week are nearly always in
the same region, two a year apart much less often."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from tagatlas.data import distance_km
from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence
from tagatlas.recommender.evidence.place_names import NEAR_KM, POSITION_TRUST

GAP_EDGES_DAYS = (1.0, 7.0, 30.0, 365.0)  # time-gap bins whose trust is learned (the last bin is open; one more: unknown time)
PAIRS_PER_USER = 50  # a training user's most recent located posts paired to learn the trust (50 posts: 1,225 pairs)


class GapTrust:
    """How often two located posts of one user, a given time apart, lie within NEAR_KM of each other: a Beta(1, 1)
    posterior mean per gap bin, so a bin never seen in training is trusted one half."""

    def __init__(self):
        self.hits_ = np.zeros(len(GAP_EDGES_DAYS) + 2)
        self.seen_ = np.zeros(len(GAP_EDGES_DAYS) + 2)

    @staticmethod
    def bins(gap_days: np.ndarray) -> np.ndarray:
        """Each gap's bin (NaN, an unknown time: the last one)."""
        gap = np.asarray(gap_days, dtype=float)
        return np.where(np.isfinite(gap), np.searchsorted(GAP_EDGES_DAYS, np.nan_to_num(gap), side="right"), len(GAP_EDGES_DAYS) + 1)

    def fit(self, stored_posts) -> "GapTrust":
        """Learn from stored posts (`StoredPost`s): every pair of one user's located posts counts once."""
        by_user: dict[str, list] = defaultdict(list)
        for s in stored_posts:
            if s.lat is not None and s.lon is not None:
                by_user[s.user_key].append(s)
        for posts in by_user.values():
            posts = sorted(posts, key=lambda s: -s.created_at)[:PAIRS_PER_USER]
            if len(posts) < 2:
                continue
            i, j = np.triu_indices(len(posts), k=1)
            lat, lon, when = (np.array([getattr(s, f) for s in posts]) for f in ("lat", "lon", "created_at"))
            hit = distance_km(lat[i], lon[i], lat[j], lon[j]) <= NEAR_KM
            bins = self.bins(_gaps(when[i], when[j]))
            self.hits_ += np.bincount(bins, weights=hit, minlength=len(self.hits_))
            self.seen_ += np.bincount(bins, minlength=len(self.seen_))
        return self

    def __call__(self, gap_days: np.ndarray) -> np.ndarray:
        b = self.bins(gap_days)
        return (self.hits_[b] + 1.0) / (self.seen_[b] + 2.0)


def _gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Days between timestamps (NaN where either is unknown, stored as 0)."""
    return np.where((a > 0) & (b > 0), np.abs(a - b) / 86400.0, np.nan)


def _placed(table, rowid: int) -> bool:
    """Whether the neighbour table holds this row with a place class."""
    return 0 <= rowid < len(table.valid) and bool(table.valid[rowid]) and table.cls[rowid] >= 0


class UserPlaces(EvidenceSource):
    """r × (the places of the user's past posts, each weighed by its trust) + (1 − r) × the place prior, r being the
    trust of the most trusted past post; the point it names is that post's location, when trusted at least
    POSITION_TRUST (fusion may take it as the coordinates where it lies in the decided area)."""

    name = "user_places"
    needs = frozenset({"user"})
    place_weights = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
    tag_weights = (0.0,)

    def __init__(self):
        self._trust: GapTrust | None = None

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model, table = ctx.model, ctx.table
        if self._trust is None:  # learned once per model object, from what training indexed
            self._trust = GapTrust().fit(ctx.located_training_posts)
        n_places = len(model.geolocator_)
        prior = ctx.place_prior()
        place = np.zeros((len(ctx.posts), n_places))
        position = np.full((len(ctx.posts), 2), np.nan)
        for i, (post, history) in enumerate(zip(ctx.posts, ctx.histories)):
            past = [h for h in history if h.lat is not None and h.lon is not None and _placed(table, h.rowid)]
            if not past:
                continue
            trust = self._trust(_gaps(np.full(len(past), post.timestamp), np.array([h.created_at for h in past])))
            where = np.bincount([table.cls[h.rowid] for h in past], weights=trust, minlength=n_places)
            best = int(np.argmax(trust))
            place[i] = trust[best] * where / where.sum() + (1.0 - trust[best]) * prior
            if trust[best] >= POSITION_TRUST:
                position[i] = (past[best].lat, past[best].lon)
        return SourceEvidence(place=place, position=position)
