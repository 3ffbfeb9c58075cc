"""The offline gazetteer: Belgian and Dutch places and postcodes, found by any of their names, without a network.

The data (``data/gazetteer_be_nl.tsv.gz``, GeoNames, CC BY 4.0, see ``data/LICENCE.md``) is built by
``tools/build_gazetteer.py``. It holds two kinds of rows: *city* rows (every populated place of at least 500
inhabitants, with its population and its names in the languages of the world: "Gent", "Ghent", "Gand") and *postal*
rows (one per place of a postcode: Belgian postcodes, Dutch 4-digit postcode areas). From them this module builds:

- places, found by any name: the cities, plus the villages that only the postal rows know;
- postcodes, each at its most populous place ("2200" → Herentals, not the hamlet listed first).

Names compare without accents, case or punctuation (:func:`normalize`: "Liège", "liege" and "LIEGE" are one name,
"'s-Gravenhage" and "s Gravenhage" too). When a name belongs to several places the larger place comes first
("Bergen" is Mons before the Dutch village), unless a country hint says otherwise. :class:`OfflineGazetteer` makes
it a geopy geocoder, chosen by ``GEOCODER = "offline"`` (app/finder/geocoding.py).
"""

from __future__ import annotations

import enum
import functools
import gzip
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geopy.adapters import BaseSyncAdapter
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location

DATA_FILE = Path(__file__).resolve().parent / "data" / "gazetteer_be_nl.tsv.gz"
COUNTRIES = ("BE", "NL")
# Places of one name further apart than this are different places (two villages called "Heide"), not one.
SAME_PLACE_KM = 20.0
# A place name inside a longer text ("Rue de la Loi 16 Bruxelles") is looked for in runs of at most this many words.
MAX_NAME_WORDS = 5

COUNTRY_NAMES = {
    "BE": {"nl": "België", "fr": "Belgique", "en": "Belgium", "de": "Belgien"},
    "NL": {"nl": "Nederland", "fr": "Pays-Bas", "en": "Netherlands", "de": "Niederlande"},
}
# What a driver may type after the place to name its country ("Gent, België", "Den Haag NL").
COUNTRY_WORDS = {
    "belgie": "BE",
    "belgique": "BE",
    "belgium": "BE",
    "belgien": "BE",
    "be": "BE",
    "nederland": "NL",
    "netherlands": "NL",
    "the netherlands": "NL",
    "pays bas": "NL",
    "niederlande": "NL",
    "holland": "NL",
    "nl": "NL",
}
# Belgian "B-9000" and "9000", Dutch "1012 AB", "1012AB" and "1012": the 4 digits are what we know.
_LEADING_POSTCODE = re.compile(
    r"^(?:(?P<prefix>B|BE|NL)\s*-\s*)?(?P<code>[1-9]\d{3})(?:\s?(?P<letters>[A-Za-z]{2}))?(?!\w)\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_TRAILING_POSTCODE = re.compile(r"^(?P<rest>.*\S)\s+(?P<code>[1-9]\d{3})(?:\s?(?P<letters>[A-Za-z]{2}))?$")
_COLUMNS = ("kind", "country", "postcode", "name", "latitude", "longitude", "population", "other_names")
# Letters that NFKD does not take apart (œ is not "o" + mark).
_FOLD = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_WORD = re.compile(r"[0-9a-z]+")
# "St-Niklaas", "St. Truiden", "Ste-Ode": abbreviations drivers type for Sint/Saint/Sainte.
_ABBREVIATIONS = {"sint": "st", "saint": "st", "sainte": "ste"}


class PlaceKind(enum.StrEnum):
    CITY = "city"  # a city, town or village
    POSTCODE = "postcode"
    ADDRESS = "address"  # a street or an address (only an online geocoder finds those)


def normalize(text: str) -> str:
    """The form names compare in: lower case, no accents, words of ASCII letters and digits joined by one space."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded.translate(_FOLD))
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(folded))


@dataclass(frozen=True, slots=True)
class GazetteerEntry:
    kind: PlaceKind
    country: str
    name: str  # the place's own name; for a postcode, its most populous place
    latitude: float
    longitude: float
    population: int  # 0 when unknown (villages known from postcodes only)
    postcode: str = ""
    names: tuple[str, ...] = ()  # every name it may be found by, ``name`` first


@dataclass(frozen=True, slots=True)
class GazetteerMatch:
    entry: GazetteerEntry
    label: str  # what was found, in the driver's words: "Gand", "9000 Gent"

    def address(self, language: str | None) -> str:
        country = COUNTRY_NAMES[self.entry.country]
        return f"{self.label}, {country.get((language or 'en')[:2].lower(), country['en'])}"

    def raw(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "kind": entry.kind.value,
            "country": entry.country,
            "name": entry.name,
            "label": self.label,
            "postcode": entry.postcode or None,
            "population": entry.population,
            "source": "GeoNames (CC BY 4.0)",
        }


@dataclass(frozen=True, slots=True)
class _PostalPlace:
    country: str
    postcode: str
    name: str
    latitude: float
    longitude: float


# A name's key and the spellings found under it ("brussel": "Brussel", "Brüssel") for one entry.
_Named = tuple[GazetteerEntry, tuple[str, ...]]


class Gazetteer:
    """Places and postcodes of Belgium and the Netherlands, searchable by name or postcode."""

    def __init__(self, cities: Iterable[GazetteerEntry], postal_places: Iterable[_PostalPlace]) -> None:
        self._by_name: dict[str, list[_Named]] = defaultdict(list)
        self._by_postcode: dict[str, list[GazetteerEntry]] = defaultdict(list)
        largest: dict[tuple[str, str], GazetteerEntry] = {}  # (country, name key) -> the most populous city
        for city in cities:
            for key in self._add_names(city):
                slot = (city.country, key)
                if slot not in largest or largest[slot].population < city.population:
                    largest[slot] = city
        postal = [(place, normalize(place.name)) for place in postal_places]
        for village in _villages(postal, largest):
            self._add_names(village)
        for postcode in _postcodes(postal, largest):
            self._by_postcode[postcode.postcode].append(postcode)

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> Gazetteer:
        cities: list[GazetteerEntry] = []
        postal: list[_PostalPlace] = []
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            rows = (line.rstrip("\n").split("\t") for line in lines if not line.startswith("#"))
            header = next(rows)
            if tuple(header) != _COLUMNS:
                raise ValueError(f"{path}: unexpected columns {header}; rebuild it with tools/build_gazetteer.py")
            for kind, country, postcode, name, latitude, longitude, population, other_names in rows:
                if kind == "city":
                    names = (name, *(other for other in other_names.split("|") if other))
                    cities.append(
                        GazetteerEntry(
                            PlaceKind.CITY, country, name, float(latitude), float(longitude), int(population),
                            names=names,
                        )
                    )  # fmt: skip
                else:
                    postal.append(_PostalPlace(country, postcode, name, float(latitude), float(longitude)))
        return cls(cities, postal)

    def search(
        self,
        query: str,
        *,
        country_hint: str | None = None,
        countries: Iterable[str] | None = None,
        limit: int = 5,
    ) -> list[GazetteerMatch]:
        """The places ``query`` names, best first: a name ("Gand"), a postcode ("9000", "1012 AB"), or an address
        whose postcode or place we know ("Rue de la Loi 16, 1040 Bruxelles"). ``country_hint`` prefers a
        country; ``countries`` restricts to some."""
        allowed = {code.upper() for code in countries} if countries is not None else set(COUNTRIES)
        parts = [part.strip() for part in " ".join(query.split()).split(",") if part.strip()]
        hint = country_hint.upper() if country_hint else None
        if len(parts) > 1 and normalize(parts[-1]) in COUNTRY_WORDS:  # "Gent, België": the driver said which
            hint = COUNTRY_WORDS[normalize(parts[-1])]
            parts = parts[:-1]
        if not parts:
            return []
        readings = [(parts, hint)]
        head, _, last_word = parts[-1].rpartition(" ")
        if head and normalize(last_word) in COUNTRY_WORDS:  # "3500 BE"; but "6841 BE" is a Dutch postcode: later
            readings.append(([*parts[:-1], head], COUNTRY_WORDS[normalize(last_word)]))
        for reading, reading_hint in readings:
            for finder in (self._whole_name, self._postcodes, self._names_inside):
                found = [match for match in finder(reading) if match.entry.country in allowed]
                if found:
                    return _ranked(found, reading_hint)[:limit]
        return []

    # -- the three ways a query names a place, tried in this order --

    def _whole_name(self, parts: list[str]) -> list[GazetteerMatch]:
        typed = " ".join(parts)
        key = normalize(typed)
        found = self._named(key, typed)
        if not found:  # "Den Haag NL", "Gent belgie"
            for word, country in COUNTRY_WORDS.items():
                if key.endswith(" " + word):
                    found = [m for m in self._named(key.removesuffix(" " + word), typed) if m.entry.country == country]
                    break
        return found

    def _postcodes(self, parts: list[str]) -> list[GazetteerMatch]:
        confirmed: list[GazetteerMatch] = []
        plausible: list[GazetteerMatch] = []
        for part in reversed(parts):  # the postcode usually sits in the last part, before the place
            for code, country, rest, leading in _postcode_candidates(part):
                rest_key = normalize(rest)
                for entry in self._by_postcode.get(code, ()):
                    if country is not None and entry.country != country:
                        continue
                    match = GazetteerMatch(entry, f"{entry.postcode} {entry.name}")
                    if rest_key and any(rest_key == normalize(name) for name in entry.names):
                        confirmed.append(match)  # "9000 Gent": the place agrees with the postcode
                    elif leading:  # a trailing number is a postcode only when the place agrees ("Gent 9000")
                        plausible.append(match)
        return confirmed or plausible

    def _names_inside(self, parts: list[str]) -> list[GazetteerMatch]:
        """A known place name inside a part, the last part first ("Rue de la Loi 16, Bruxelles"), the longest run
        of words first and, among runs as long, the one nearest the end (addresses end with their place):
        "Grote Markt Brugge", "Brugge centrum", "Station Gent-Sint-Pieters"."""
        for part in reversed(parts):
            leading = _LEADING_POSTCODE.match(part)
            words = normalize(leading.group("rest") if leading else part).split()
            for size in range(min(len(words), MAX_NAME_WORDS), 0, -1):
                for start in range(len(words) - size, -1, -1):
                    run = words[start : start + size]
                    if size == 1 and (len(run[0]) < 3 or run[0].isdigit()):
                        continue
                    found = self._named(" ".join(run), part)
                    if found:
                        return found
        return []

    # -- building --

    def _named(self, key: str, typed: str) -> list[GazetteerMatch]:
        return [
            GazetteerMatch(entry, _label(entry, spellings, typed)) for entry, spellings in self._by_name.get(key, ())
        ]

    def _add_names(self, entry: GazetteerEntry) -> list[str]:
        """Index ``entry`` under each of its names (and their "St-" abbreviations); return the names' keys."""
        spellings: dict[str, list[str]] = defaultdict(list)
        keys = []
        for name in entry.names:
            key = normalize(name)
            if key:
                keys.append(key)
                spellings[key].append(name)
                short = _abbreviated(key)
                if short != key:
                    spellings[short].append(name)
        for key, names in spellings.items():
            self._by_name[key].append((entry, tuple(names)))
        return keys


def _postcode_candidates(part: str) -> Iterator[tuple[str, str | None, str, bool]]:
    """(code, country or None, the rest of the part, whether the code led the part) for each reading of ``part``."""
    for pattern, leading in ((_LEADING_POSTCODE, True), (_TRAILING_POSTCODE, False)):
        found = pattern.match(part)
        if not found:
            continue
        groups = found.groupdict()
        country = {"B": "BE", "BE": "BE", "NL": "NL"}.get((groups.get("prefix") or "").upper())
        if groups.get("letters"):
            country = "NL"  # only Dutch postcodes carry letters ("6841 BE" too: a country after it is read later)
        yield groups["code"], country, groups["rest"], leading


def _villages(
    postal: list[tuple[_PostalPlace, str]], largest: Mapping[tuple[str, str], GazetteerEntry]
) -> Iterator[GazetteerEntry]:
    """Places only the postcodes know (villages under 500 inhabitants, Belgian sub-municipalities), one entry per
    name and neighbourhood: a name that several postcodes share is one village when its places lie close."""
    groups: dict[tuple[str, str], list[_PostalPlace]] = defaultdict(list)
    for place, key in postal:
        slot = (place.country, key)
        if key and slot not in largest:
            groups[slot].append(place)
    for (country, _), places in sorted(groups.items()):
        clusters: list[list[_PostalPlace]] = []
        for place in places:
            near = next((c for c in clusters if _km(c[0], place) <= SAME_PLACE_KM), None)
            if near is None:
                clusters.append([place])
            else:
                near.append(place)
        for cluster in clusters:
            latitude = sum(p.latitude for p in cluster) / len(cluster)
            longitude = sum(p.longitude for p in cluster) / len(cluster)
            name = cluster[0].name
            yield GazetteerEntry(PlaceKind.CITY, country, name, latitude, longitude, 0, names=(name,))


def _postcodes(
    postal: list[tuple[_PostalPlace, str]], largest: Mapping[tuple[str, str], GazetteerEntry]
) -> Iterator[GazetteerEntry]:
    """One entry per postcode, at its most populous place (else at the middle of its places)."""
    groups: dict[tuple[str, str], list[tuple[_PostalPlace, int]]] = defaultdict(list)
    for place, key in postal:
        city = largest.get((place.country, key))
        groups[(place.country, place.postcode)].append((place, city.population if city is not None else 0))
    for (country, code), pairs in sorted(groups.items()):
        places = [place for place, _ in pairs]
        populations = [population for _, population in pairs]
        best = max(range(len(places)), key=lambda index: populations[index])  # the first on equal populations
        if populations[best] > 0:
            main = places[best]
            latitude, longitude = main.latitude, main.longitude
        else:
            main = places[0]
            latitude = sum(p.latitude for p in places) / len(places)
            longitude = sum(p.longitude for p in places) / len(places)
        names = (main.name, *(p.name for p in places if p is not main))
        yield GazetteerEntry(
            PlaceKind.POSTCODE, country, main.name, latitude, longitude, populations[best], code, names
        )


def _ranked(matches: list[GazetteerMatch], hint: str | None) -> list[GazetteerMatch]:
    """The hinted country first, then the larger place; each place once."""
    seen: set[int] = set()
    unique = []
    for match in matches:
        if id(match.entry) not in seen:
            seen.add(id(match.entry))
            unique.append(match)
    return sorted(unique, key=lambda m: (m.entry.country != hint, -m.entry.population))


def _abbreviated(key: str) -> str:
    return " ".join(_ABBREVIATIONS.get(word, word) for word in key.split())


def _label(entry: GazetteerEntry, spellings: tuple[str, ...], typed: str) -> str:
    """How to name what was found: the place's own name when the driver typed one of its spellings ("liege" →
    "Liège"), else the spelling the driver typed ("Brussel", not the German "Brüssel" of the same key), else the
    plainest one."""
    if entry.name in spellings:
        return entry.name
    typed_folded = typed.casefold()
    literal = [name for name in spellings if name.casefold() in typed_folded]
    if literal:
        return max(literal, key=len)
    return min(spellings, key=lambda name: sum(not ch.isascii() for ch in name))


def _km(first: _PostalPlace, second: _PostalPlace) -> float:
    """Distance on the sphere (haversine): exact enough to tell neighbouring villages from distant ones."""
    lat1, lon1, lat2, lon2 = map(math.radians, (first.latitude, first.longitude, second.latitude, second.longitude))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


@functools.cache
def shipped_gazetteer() -> Gazetteer:
    """The gazetteer of the shipped data file, read once per process (about 0.1 s)."""
    return Gazetteer.load()


class _NoNetwork(BaseSyncAdapter):  # type: ignore[misc]  # geopy has no type hints
    """The adapter of the offline geocoder: it has nothing to fetch, and says so if ever asked."""

    def __init__(self, *, proxies: Any = None, ssl_context: Any = None) -> None:
        super().__init__(proxies=proxies, ssl_context=ssl_context)

    def get_json(self, url: str, *, timeout: Any, headers: Any) -> Any:
        raise GeocoderServiceError("the offline gazetteer makes no network calls")

    def get_text(self, url: str, *, timeout: Any, headers: Any) -> str:
        raise GeocoderServiceError("the offline gazetteer makes no network calls")


class OfflineGazetteer(Geocoder):  # type: ignore[misc]  # geopy has no type hints
    """A geopy geocoder over :class:`Gazetteer`: ``geocode()`` as Nominatim's, answered from the shipped data.

    ``Location.raw`` holds ``kind`` (city or postcode), ``country``, ``name``, ``label``, ``postcode`` and
    ``population``; ``Location.address`` is the label and the country in ``language`` ("Gand, Belgique")."""

    def __init__(self, gazetteer: Gazetteer | None = None, *, user_agent: str | None = None) -> None:
        super().__init__(user_agent=user_agent, adapter_factory=_NoNetwork)
        self._gazetteer = gazetteer

    @property
    def gazetteer(self) -> Gazetteer:
        return self._gazetteer if self._gazetteer is not None else shipped_gazetteer()

    def geocode(
        self,
        query: str | Mapping[str, str],
        *,
        exactly_one: bool = True,
        timeout: Any = DEFAULT_SENTINEL,  # nothing to wait for; accepted as every geopy geocoder does
        limit: int | None = None,
        language: str | None = None,
        country_codes: str | Iterable[str] | None = None,
        country_hint: str | None = None,
    ) -> Location | list[Location] | None:
        if isinstance(query, Mapping):  # a structured query, as Nominatim takes: its parts, street first
            query = ", ".join(str(value) for value in query.values() if value)
        countries = [country_codes] if isinstance(country_codes, str) else country_codes
        size = 1 if exactly_one else max(1, int(limit or 10))
        matches = self.gazetteer.search(query, country_hint=country_hint, countries=countries, limit=size)
        locations = [Location(m.address(language), (m.entry.latitude, m.entry.longitude), m.raw()) for m in matches]
        if exactly_one:
            return locations[0] if locations else None
        return locations or None
