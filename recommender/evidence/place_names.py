"""Place names in a post's text and hashtags (GeoNames, `tagatlas.data.toponyms`): each name resolved to its
candidate cities (population prior, the post's other names as context), the candidates mapped onto the model's
place classes. How far a name can be trusted is learned from the training posts: a name that is also a common word
("nice", 津波) is seldom near the place it names, and counts for little."""

from __future__ import annotations

import numpy as np

from tagatlas.data import distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.data.toponyms import Gazetteer, Mention, gazetteer
from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence

NEAR_KM = 161.0  # a candidate city farther than this from every place class points to none; a name "hits" within it
COUNTRY_SHARE = 0.5  # a country named alone counts this much of a city's trust
POSITION_TRUST = 0.5  # a name training posts show to miss more often than hit ("day" for Dayton) never pins coordinates
MAX_TRAINING_POSTS = 50_000  # trust is learned on at most this many located training posts


class NameTrust:
    """How often each name, written in a located training post, lies within NEAR_KM of where the post was: a
    Beta(1, 1) posterior mean, so a name never seen in training is trusted one half."""

    def __init__(self):
        self.hits_: dict[str, int] = {}
        self.seen_: dict[str, int] = {}

    def fit(self, gaz: Gazetteer, posts) -> "NameTrust":
        from tagatlas.data import nearest_cities

        posts = [p for p in posts if p.lat is not None and p.lon is not None][:MAX_TRAINING_POSTS]
        if not posts:
            return self
        countries = [c.country for c in nearest_cities([p.lat for p in posts], [p.lon for p in posts])[0]]
        for post, country in zip(posts, countries):
            for mention in {m.key: m for m in gaz.find(post.text, post.hashtags)}.values():
                self.seen_[mention.key] = self.seen_.get(mention.key, 0) + 1
                if _hits(gaz, mention, post.lat, post.lon, country):
                    self.hits_[mention.key] = self.hits_.get(mention.key, 0) + 1
        return self

    def __call__(self, key: str) -> float:
        return (self.hits_.get(key, 0) + 1) / (self.seen_.get(key, 0) + 2)


def _hits(gaz: Gazetteer, mention: Mention, lat: float, lon: float, country: str) -> bool:
    if mention.kind == "country":
        return mention.code == country
    if mention.kind == "state":
        return country == "US"
    cand = np.asarray(mention.cities)
    return bool((distance_km(gaz.lat[cand], gaz.lon[cand], np.full(len(cand), lat), np.full(len(cand), lon)) <= NEAR_KM).any())


class PlaceNames(EvidenceSource):
    """A distribution over place classes from the names a post writes: r × (where its names point) + (1 − r) × the
    place prior, r being the chance that at least one of its names is trustworthy."""

    name = "place_names"
    place_weights = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
    tag_weights = (0.0,)

    def __init__(self):
        self._trust: NameTrust | None = None
        self._classes: tuple[int, np.ndarray, np.ndarray] | None = None  # (places, class of each city, class countries)

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model = ctx.model
        gaz = gazetteer()
        if self._trust is None:  # learned once per model object, from what training indexed
            self._trust = NameTrust().fit(gaz, ctx.located_training_posts)
        n_places = len(model.geolocator_)
        city_class, class_country = self._city_classes(gaz, model.geolocator_)
        prior = ctx.place_prior()
        place = np.zeros((len(ctx.posts), n_places))
        position = np.full((len(ctx.posts), 2), np.nan)
        for i, (post, clean) in enumerate(zip(ctx.posts, ctx.clean)):
            mentions = gaz.find(clean, post.hashtags)
            place[i] = self._row(gaz, mentions, city_class, class_country, prior)
            position[i] = self._named_city(gaz, mentions)
        return SourceEvidence(place=place, position=position)

    def _named_city(self, gaz: Gazetteer, mentions: list[Mention]) -> tuple[float, float]:
        """Where the post's most trusted city name points: the candidate with the highest trust × resolution
        probability among names trusted at least POSITION_TRUST (NaN when none). Fusion uses it as the coordinates
        when it lies in the decided area."""
        best, best_score = -1, 0.0
        for mention, cand, prob in gaz.resolve(mentions):
            j, trust = int(np.argmax(prob)), self._trust(mention.key)
            score = trust * float(prob[j])
            if trust >= POSITION_TRUST and score > best_score:
                best, best_score = int(cand[j]), score
        return (float(gaz.lat[best]), float(gaz.lon[best])) if best >= 0 else (np.nan, np.nan)

    def _row(self, gaz: Gazetteer, mentions: list[Mention], city_class: np.ndarray, class_country: np.ndarray,
             prior: np.ndarray) -> np.ndarray:
        """One post's distribution (zeros: it names no place the model can reach)."""
        pointed, trusts = [], []
        for mention, cand, prob in gaz.resolve(mentions):
            cls = city_class[cand]
            ok = cls >= 0
            if not ok.any():
                continue
            dist = np.bincount(cls[ok], weights=prob[ok], minlength=len(prior))
            pointed.append(dist / dist.sum())
            trusts.append(self._trust(mention.key))
        if not pointed:  # a country named alone spreads over its places by the prior
            for mention in (m for m in mentions if m.kind == "country"):
                inside = np.where(class_country == mention.code, prior, 0.0)
                if inside.any():
                    pointed.append(inside / inside.sum())
                    trusts.append(COUNTRY_SHARE * self._trust(mention.key))
        if not pointed:
            return np.zeros(len(prior))
        trusts = np.asarray(trusts)
        where = np.average(pointed, axis=0, weights=trusts)
        trusted = 1.0 - np.prod(1.0 - trusts)
        return trusted * where + (1.0 - trusted) * prior

    def _city_classes(self, gaz: Gazetteer, geolocator) -> tuple[np.ndarray, np.ndarray]:
        """Each gazetteer city's nearest place class (-1 beyond NEAR_KM), and each class's country (cached)."""
        if self._classes is None or self._classes[0] != len(geolocator):
            dist, idx = geolocator.areas_.tree.query(np.radians(np.column_stack([gaz.lat, gaz.lon])), k=1)
            city_class = np.where(dist[:, 0] * EARTH_RADIUS_KM <= NEAR_KM, idx[:, 0], -1)
            from tagatlas.data import city

            class_country = np.array([city(p).country for p in geolocator.places_], dtype=object)
            self._classes = (len(geolocator), city_class, class_country)
        return self._classes[1], self._classes[2]
