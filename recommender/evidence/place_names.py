"""Place names in a post's text and hashtags (GeoNames, `tagatlas.data.toponyms`): each name resolved to its
candidate cities (population prior, the post's other names as context), the candidates mapped onto the model's
place classes. How far a name can be trusted is learned from the training posts: a name that is also a common word
("nice", 津波) is seldom near the place it names, and counts for little."""

from __future__ import annotations

import numpy as np

from tagatlas.data import distance_km
from tagatlas.data.geo import EARTH_RADIUS_KM
from tagatlas.data.toponyms import Gazetteer, Mention, Resolved, gazetteer
from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence

NEAR_KM = 161.0  # a candidate city farther than this from every place class points to none; a name "hits" within it
COUNTRY_SHARE = 0.5  # a country named alone counts this much of a city's trust
POSITION_TRUST = 0.5  # a name training posts show to miss more often than hit ("day" for Dayton) never pins coordinates
# (how unseen names are trusted, the least trust that pins coordinates) tried on validation users, the first kept on ties:
# "flat" trusts every unseen name one half (models before the choice existed), "form" as names written the same way hit.
TRUST_SETTINGS = (("flat", POSITION_TRUST), ("form", POSITION_TRUST), ("form", 0.35))
MAX_TRAINING_POSTS = 50_000  # trust is learned on at most this many located training posts


class NameTrust:
    """How often each name, written in a located training post, lies within NEAR_KM of where the post was: a Beta
    posterior mean whose prior is the hit rate of names written the same way (`Gazetteer.form_of`: a whole hashtag, a
    short alternate name inside a split hashtag, ...) in those posts, worth PRIOR_POSTS posts. A name never seen in
    training is trusted as names of its form are: a city's own name written as a hashtag mostly hits, a three-letter
    alternate name ("dsc", "img") almost never does."""

    PRIOR_POSTS = 2.0  # the prior's weight in posts (Beta(1, 1) when a form has no training posts)

    def __init__(self):
        self.hits_: dict[str, int] = {}
        self.seen_: dict[str, int] = {}
        self.form_hits_: dict[str, int] = {}
        self.form_seen_: dict[str, int] = {}
        self._gaz: Gazetteer | None = None

    def fit(self, gaz: Gazetteer, posts) -> "NameTrust":
        from tagatlas.data import nearest_cities

        self._gaz = gaz
        posts = [p for p in posts if p.lat is not None and p.lon is not None][:MAX_TRAINING_POSTS]
        if not posts:
            return self
        countries = [c.country for c in nearest_cities([p.lat for p in posts], [p.lon for p in posts])[0]]
        for post, country in zip(posts, countries):
            by_key: dict[str, list[Mention]] = {}
            for mention in gaz.find(post.text, post.hashtags):
                by_key.setdefault(mention.key, []).append(mention)
            for key, mentions in by_key.items():
                hit = int(_hits(gaz, mentions[0], post.lat, post.lon, country))
                self.seen_[key] = self.seen_.get(key, 0) + 1
                self.hits_[key] = self.hits_.get(key, 0) + hit
                for form in {gaz.form_of(m) for m in mentions}:
                    self.form_seen_[form] = self.form_seen_.get(form, 0) + 1
                    self.form_hits_[form] = self.form_hits_.get(form, 0) + hit
        return self

    def prior(self, form: str) -> float:
        """The hit rate of names written in `form` (Beta(1, 1) smoothed)."""
        return (self.form_hits_.get(form, 0) + 1) / (self.form_seen_.get(form, 0) + 2)

    def __call__(self, mention: Mention, prior_from: str = "form") -> float:
        """How far `mention` is trusted; `prior_from` "flat" starts every name from one half instead of its form's rate."""
        prior = self.prior(self._gaz.form_of(mention)) if prior_from == "form" and self._gaz is not None else 0.5
        return (self.hits_.get(mention.key, 0) + self.PRIOR_POSTS * prior) / (self.seen_.get(mention.key, 0) + self.PRIOR_POSTS)


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
        self.trial: tuple[str, float] = TRUST_SETTINGS[0]  # the trust setting gathered while training tunes fusion

    def trust_setting(self, model) -> tuple[str, float]:
        """(where an unseen name's trust starts, the least trust that pins coordinates): the model's tuned setting, or
        the one on trial while training tunes fusion (`fusion_` None)."""
        fusion = model.fusion_
        return self.trial if fusion is None else (fusion.name_trust, fusion.name_position_trust)

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model = ctx.model
        gaz = gazetteer()
        if self._trust is None:  # learned once per model object, from what training indexed
            self._trust = NameTrust().fit(gaz, ctx.located_training_posts)
        n_places = len(model.geolocator_)
        city_class, class_country = self._city_classes(gaz, model.geolocator_)
        prior_from, position_trust = self.trust_setting(model)
        trust = lambda mention: self._trust(mention, prior_from)  # noqa: E731
        prior = ctx.place_prior()
        place = np.zeros((len(ctx.posts), n_places))
        position = np.full((len(ctx.posts), 2), np.nan)
        for i, (post, clean) in enumerate(zip(ctx.posts, ctx.clean)):
            mentions = gaz.find(clean, post.hashtags)
            resolved = gaz.resolve(mentions)
            place[i] = self._row(resolved, mentions, city_class, class_country, prior, trust)
            position[i] = self._named_city(gaz, resolved, trust, position_trust)
        return SourceEvidence(place=place, position=position)

    def _named_city(self, gaz: Gazetteer, resolved: list[Resolved], trust, position_trust: float) -> tuple[float, float]:
        """Where the post's most trusted city name points (`resolved`: its city mentions, `Gazetteer.resolve`): the
        candidate with the highest trust × resolution probability among names trusted at least `position_trust` (NaN
        when none). Fusion uses it as the coordinates when it lies in the decided area."""
        best, best_score = -1, 0.0
        for mention, cand, prob in resolved:
            j, trusted = int(np.argmax(prob)), trust(mention)
            score = trusted * float(prob[j])
            if trusted >= position_trust and score > best_score:
                best, best_score = int(cand[j]), score
        return (float(gaz.lat[best]), float(gaz.lon[best])) if best >= 0 else (np.nan, np.nan)

    def _row(self, resolved: list[Resolved], mentions: list[Mention], city_class: np.ndarray, class_country: np.ndarray,
             prior: np.ndarray, trust) -> np.ndarray:
        """One post's distribution (zeros: it names no place the model can reach); `resolved`: its city mentions
        (`Gazetteer.resolve`), `mentions`: all of them (a country named alone counts too)."""
        pointed, trusts = [], []
        for mention, cand, prob in resolved:
            cls = city_class[cand]
            ok = cls >= 0
            if not ok.any():
                continue
            dist = np.bincount(cls[ok], weights=prob[ok], minlength=len(prior))
            pointed.append(dist / dist.sum())
            trusts.append(trust(mention))
        if not pointed:  # a country named alone spreads over its places by the prior
            for mention in (m for m in mentions if m.kind == "country"):
                inside = np.where(class_country == mention.code, prior, 0.0)
                if inside.any():
                    pointed.append(inside / inside.sum())
                    trusts.append(COUNTRY_SHARE * trust(mention))
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
