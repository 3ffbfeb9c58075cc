"""Geocoding of typed places (app/finder/geocoding.py, app/finder/gazetteer.py).

The offline gazetteer is the shipped data file itself; the Nominatim and Photon paths run geopy against recorded
answers served over HTTP on loopback (tests/finder/geocoder_recordings), never a public service.
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import json
import logging
import math
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from sqlalchemy import func, select

from app.config import ConfigError, ProductionConfig
from app.extensions import db
from app.finder.gazetteer import DATA_FILE, Gazetteer, OfflineGazetteer, PlaceKind, normalize
from app.finder.geocoding import (
    GeocoderSettings,
    GeocoderUnavailableError,
    InvalidPlaceQueryError,
    Place,
    build_geocoder,
    geocode_place,
    purge_expired_answers,
)
from app.finder.models import GeocodeAnswer
from tests.finder.geocoder_recordings.server import RecordedGeocoder, start_recorded_geocoder
from tests.shared_data import NL_DATA

GHENT = (51.05, 3.71667)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def offline() -> OfflineGazetteer:
    return OfflineGazetteer()


def point(location: Location | None) -> tuple[float, float]:
    assert location is not None
    return (location.latitude, location.longitude)


# -- the offline gazetteer --


@pytest.mark.parametrize("name", ["Gent", "Ghent", "Gand"])
def test_ghent_is_found_by_its_dutch_english_and_french_names(offline: OfflineGazetteer, name: str) -> None:
    location = offline.geocode(name)
    assert point(location) == GHENT
    assert location.raw["country"] == "BE" and location.raw["kind"] == "city"


@pytest.mark.parametrize(
    "names",
    [
        ("Antwerpen", "Anvers", "Antwerp"),
        ("Luik", "Liège"),
        ("Bergen", "Mons"),
        ("Den Haag", "'s-Gravenhage", "The Hague"),
        ("Brussel", "Bruxelles", "Brussels"),
        ("Leuven", "Louvain"),
        ("'s-Hertogenbosch", "Den Bosch", "Bois-le-Duc"),
    ],
)
def test_a_city_is_one_place_in_every_language_spoken_there(offline: OfflineGazetteer, names: tuple[str, ...]) -> None:
    points = {point(offline.geocode(name)) for name in names}
    assert len(points) == 1, {name: offline.geocode(name) for name in names}


@pytest.mark.parametrize(
    ("typed", "same_as"),
    [
        ("liege", "Liège"),
        ("LIÈGE", "Liège"),
        ("  liège  ", "Liège"),
        ("s Gravenhage", "'s-Gravenhage"),
        ("'S-GRAVENHAGE", "Den Haag"),
        ("St-Niklaas", "Sint-Niklaas"),
        ("sint niklaas", "Sint-Niklaas"),
    ],
)
def test_accents_case_and_punctuation_are_ignored(offline: OfflineGazetteer, typed: str, same_as: str) -> None:
    assert point(offline.geocode(typed)) == point(offline.geocode(same_as))


def test_the_label_says_what_was_found_in_the_drivers_words(offline: OfflineGazetteer) -> None:
    assert offline.geocode("Gand", language="fr").address == "Gand, Belgique"
    # "Brussel" and the German "Brüssel" fold to one key: the driver typed the Dutch one.
    assert offline.geocode("brussel", language="nl").address == "Brussel, België"
    assert offline.geocode("liege", language="en").address == "Liège, Belgium"
    assert offline.geocode("Den Haag", language="fr").address == "Den Haag, Pays-Bas"


@pytest.mark.parametrize(
    ("typed", "postcode", "place"),
    [("3500", "3500", "Hasselt"), ("9000", "9000", "Gent"), ("B-9000", "9000", "Gent"), ("1000", "1000", "Bruxelles")],
)
def test_belgian_postcodes(offline: OfflineGazetteer, typed: str, postcode: str, place: str) -> None:
    location = offline.geocode(typed)
    assert location is not None
    assert location.raw["kind"] == "postcode" and location.raw["country"] == "BE"
    assert location.raw["postcode"] == postcode and location.raw["name"] == place


@pytest.mark.parametrize("typed", ["1012 AB", "1012AB", "1012 ab", "1012"])
def test_dutch_postcodes_with_or_without_their_letters(offline: OfflineGazetteer, typed: str) -> None:
    location = offline.geocode(typed)
    assert location is not None
    assert (location.raw["kind"], location.raw["country"], location.raw["postcode"]) == ("postcode", "NL", "1012")
    assert location.raw["name"] == "Amsterdam"
    assert abs(location.latitude - 52.37) < 0.02 and abs(location.longitude - 4.89) < 0.02


def test_dutch_postcode_letters_are_not_a_country_but_a_country_may_follow(offline: OfflineGazetteer) -> None:
    arnhem = offline.geocode("6841 BE")  # a real postcode in Arnhem (the shared NDW data has it)
    assert (arnhem.raw["country"], arnhem.raw["postcode"], arnhem.raw["name"]) == ("NL", "6841", "Arnhem")
    hasselt = offline.geocode("3500 BE")  # no Dutch 3500: the driver named the country
    assert (hasselt.raw["country"], hasselt.raw["name"]) == ("BE", "Hasselt")


def test_a_postcode_is_placed_at_its_largest_place_not_its_first(offline: OfflineGazetteer) -> None:
    # 2200 covers Herentals (27,000 inhabitants) and the hamlets Morkhoven and Noorderwijk.
    location = offline.geocode("2200")
    assert location is not None and location.raw["name"] == "Herentals"


def test_a_postcode_with_its_place_before_or_after(offline: OfflineGazetteer) -> None:
    for typed in ("9000 Gent", "Gent 9000", "B-9000 Gent"):
        location = offline.geocode(typed)
        assert location is not None and location.raw["kind"] == "postcode", typed
        assert location.raw["postcode"] == "9000"


def test_ambiguous_names_prefer_the_larger_place_unless_a_country_is_hinted(offline: OfflineGazetteer) -> None:
    mons = offline.geocode("Mons")
    assert point(offline.geocode("Bergen")) == point(mons)  # Mons (95,000) before Bergen, North Holland
    dutch = offline.geocode("Bergen", country_hint="NL")
    assert dutch is not None and dutch.raw["country"] == "NL"
    assert point(offline.geocode("Bergen, Nederland")) == point(dutch)
    assert point(offline.geocode("Bergen NL")) == point(dutch)
    both = offline.geocode("Bergen", exactly_one=False)
    assert [location.raw["country"] for location in both] == ["BE", "NL"]


def test_a_postcode_of_both_countries_goes_to_the_larger_place_or_the_hinted_country(offline: OfflineGazetteer) -> None:
    # 3511 is Kuringen (a part of Hasselt) in Belgium and the centre of Utrecht in the Netherlands.
    assert offline.geocode("3511").raw["name"] == "Utrecht"
    belgian = offline.geocode("3511", country_hint="BE")
    assert (belgian.raw["country"], belgian.raw["postcode"]) == ("BE", "3511")
    assert offline.geocode("3511", country_codes=["be"]).raw["country"] == "BE"


def test_an_address_is_found_at_its_postcode_or_its_place(offline: OfflineGazetteer) -> None:
    city = offline.geocode("Rue de la Loi 16, Bruxelles")
    assert point(city) == point(offline.geocode("Brussels")) and city.raw["kind"] == "city"
    postcode = offline.geocode("Rue de la Loi 16, 1040 Bruxelles")
    assert postcode.raw["kind"] == "postcode" and postcode.raw["postcode"] == "1040"
    assert point(offline.geocode("Grote Markt Brugge")) == point(offline.geocode("Brugge"))
    assert point(offline.geocode("Brugge centrum")) == point(offline.geocode("Brugge"))
    assert point(offline.geocode("Station Gent-Sint-Pieters")) == GHENT


def test_villages_known_only_from_their_postcode_are_found(offline: OfflineGazetteer) -> None:
    # Lillo, a polder village of Antwerp with a few dozen inhabitants, is in the postcode list (2040) only.
    lillo = offline.geocode("Lillo")
    assert lillo is not None and lillo.raw["country"] == "BE" and lillo.raw["kind"] == "city"
    assert abs(lillo.latitude - 51.3) < 0.1 and abs(lillo.longitude - 4.4) < 0.2  # GeoNames places it roughly


@pytest.mark.parametrize("typed", ["Xyzzyville", "Kerkstraat 1234", "0000", "Paris"])
def test_an_unknown_place_is_none(offline: OfflineGazetteer, typed: str) -> None:
    assert offline.geocode(typed) is None
    assert offline.geocode(typed, exactly_one=False) is None


def test_the_offline_gazetteer_is_a_geopy_geocoder_without_network(offline: OfflineGazetteer) -> None:
    assert isinstance(offline, Geocoder)
    found = offline.geocode({"street": "Rue de la Loi 16", "city": "Bruxelles"}, exactly_one=False)
    assert isinstance(found, list) and all(isinstance(location, Location) for location in found)
    with pytest.raises(GeocoderServiceError, match="no network"):
        offline.adapter.get_json("https://example.org/", timeout=1, headers={})


def test_the_data_file_is_small_and_carries_its_licence() -> None:
    assert DATA_FILE.stat().st_size < 3 * 1024 * 1024
    licence = (DATA_FILE.parent / "LICENCE.md").read_text(encoding="utf-8")
    assert "GeoNames" in licence and "CC BY 4.0" in licence
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as lines:
        header = [line for _, line in zip(range(5), lines, strict=False)]
    assert "GeoNames" in header[1] and "tools/build_gazetteer.py" in header[2]


# -- the build script, on a small data set of the packages' shapes --


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_gazetteer", ROOT / "tools" / "build_gazetteer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_build_keeps_typable_names_only() -> None:
    build = load_build_script()
    for name in ("Gand", "'s-Gravenhage", "Liège", "Sint-Niklaas", "Den Haag"):
        assert build.is_typable_name(name), name
    for name in ("GNE", "LGG", "gnt", "ken t", "Гент", "ヘント", "Ga\tnd", "A|B", ""):
        assert not build.is_typable_name(name), name


def test_the_build_is_reproducible_and_the_gazetteer_reads_it(tmp_path: Path) -> None:
    build = load_build_script()
    cities = {
        "1": {
            "name": "Gent",
            "countrycode": "BE",
            "latitude": 51.05,
            "longitude": 3.71667,
            "population": 265086,
            "alternatenames": ["Gand", "Ghent", "GNE", "Гент", "gnt"],
        },
        "2": {
            "name": "Paris",
            "countrycode": "FR",
            "latitude": 48.85,
            "longitude": 2.35,
            "population": 2_000_000,
            "alternatenames": [],
        },
        "3": {
            "name": "Heusden",
            "countrycode": "BE",
            "latitude": 51.03,
            "longitude": 3.8,
            "population": 7000,
            "alternatenames": [],
        },
    }
    postal = [
        {"country_code": "BE", "postal_code": "9070", "city": "Heusden", "latitude": 51.03, "longitude": 3.8},
        {"country_code": "BE", "postal_code": "9070", "city": "Destelbergen", "latitude": 51.06, "longitude": 3.8},
        {"country_code": "BE", "postal_code": "9000", "city": "Gent", "latitude": 51.05, "longitude": 3.72},
        {"country_code": "BE", "postal_code": "8888", "city": "Nowhere", "latitude": None, "longitude": None},
        {"country_code": "DE", "postal_code": "1010", "city": "Berlin", "latitude": 52.5, "longitude": 13.4},
    ]
    rows = [*build.city_rows(cities), *build.postal_rows(postal)]
    first = build.render(rows, "a test")
    assert build.render(list(reversed(rows)), "a test") == first  # sorted, no timestamp: same input, same bytes
    (tmp_path / "g.tsv.gz").write_bytes(first)
    gazetteer = Gazetteer.load(tmp_path / "g.tsv.gz")
    geocoder = OfflineGazetteer(gazetteer)
    assert geocoder.geocode("Gand").raw["name"] == "Gent"
    assert geocoder.geocode("GNE") is None and geocoder.geocode("Paris") is None
    assert geocoder.geocode("Destelbergen").raw["population"] == 0  # a village the postcodes alone know
    # 9070 sits at Heusden, the place of the two whose population is known.
    assert point(geocoder.geocode("9070")) == (51.03, 3.8)
    assert geocoder.geocode("8888") is None and geocoder.geocode("1010") is None


def test_normalize_folds_what_drivers_type_differently() -> None:
    assert normalize("  'S-Gravenhage ") == normalize("s gravenhage") == "s gravenhage"
    assert normalize("LIÈGE") == normalize("Liège") == "liege"
    assert normalize("Œudeghien") == "oeudeghien"


# -- the service: cache, input, errors --


@pytest.fixture
def geocoder_config(app: Flask) -> Iterator[dict[str, Any]]:
    """The app's geocoder settings, restored after the test."""
    keys = [key for key in app.config if key.startswith("GEOCODER")]
    saved = {key: app.config[key] for key in keys}
    yield app.config
    for key in [key for key in app.config if key.startswith("GEOCODER")]:
        if key in saved:
            app.config[key] = saved[key]
        else:
            del app.config[key]


@pytest.fixture
def recorded(geocoder_config: dict[str, Any]) -> Iterator[RecordedGeocoder]:
    running = start_recorded_geocoder()
    geocoder_config.update(
        GEOCODER="nominatim", GEOCODER_DOMAIN=running.geocoder.domain, GEOCODER_SCHEME="http", GEOCODER_TIMEOUT=1.0
    )
    try:
        yield running.geocoder
    finally:
        running.stop()


def cached_answers() -> list[GeocodeAnswer]:
    return list(db.session.scalars(select(GeocodeAnswer).order_by(GeocodeAnswer.id)))


def test_geocode_place_answers_a_typed_place_offline(db_session: object) -> None:
    place = geocode_place("Gand", language="fr-BE")
    assert place == Place(GHENT[0], GHENT[1], "Gand, Belgique", PlaceKind.CITY, "BE")
    postcode = geocode_place("1012 AB")
    assert postcode is not None and postcode.kind == PlaceKind.POSTCODE and postcode.country == "NL"
    [answer, _] = cached_answers()
    assert (answer.provider, answer.language, answer.country_hint, answer.query_key) == ("offline", "fr", "", "gand")


def test_an_unknown_place_is_none_and_remembered_as_unknown(db_session: object) -> None:
    assert geocode_place("Xyzzyville") is None
    [answer] = cached_answers()
    assert answer.found is False and answer.latitude is None and answer.label is None
    assert geocode_place("XYZZYVILLE ") is None  # the same question: answered from the database
    assert len(cached_answers()) == 1


@pytest.mark.parametrize(
    ("query", "language", "hint", "parameter"),
    [
        ("", None, None, "query"),
        ("   ", None, None, "query"),
        ("G" * 201, None, None, "query"),
        ("Gent\x00", None, None, "query"),
        ("Gent\nBrugge", None, None, "query"),
        ("Ge\u202ent", None, None, "query"),  # a right-to-left override
        ("Gent", "nl; DROP", None, "language"),
        ("Gent", None, "BEL", "country_hint"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    db_session: object, query: str, language: str | None, hint: str | None, parameter: str
) -> None:
    with pytest.raises(InvalidPlaceQueryError) as refused:
        geocode_place(query, language=language, country_hint=hint)
    assert refused.value.parameter == parameter and str(refused.value)
    assert cached_answers() == []


def test_a_second_call_is_answered_from_the_database(db_session: object, recorded: RecordedGeocoder) -> None:
    first = geocode_place("Gent")
    assert geocode_place("Gent") == first
    assert geocode_place("  GENT ") == first  # case and spaces folded
    assert len(recorded.searches()) == 1
    assert geocode_place("Gent", language="fr") is not None  # another language is another question
    assert len(recorded.searches()) == 2
    assert geocode_place("Gent", country_hint="NL") is not None  # and so is another country hint
    assert len(recorded.searches()) == 3


def test_a_stale_answer_is_asked_again_and_replaced(
    db_session: object, recorded: RecordedGeocoder, geocoder_config: dict[str, Any]
) -> None:
    geocode_place("Gent")
    [answer] = cached_answers()
    answer.fetched_at -= dt.timedelta(seconds=geocoder_config["GEOCODER_CACHE_SECONDS"] + 1)
    db.session.flush()
    assert geocode_place("Gent") is not None
    assert len(recorded.searches()) == 2
    [refreshed] = cached_answers()
    assert refreshed.id == answer.id and refreshed.fetched_at > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


def test_unknown_places_are_asked_again_sooner(
    db_session: object, recorded: RecordedGeocoder, geocoder_config: dict[str, Any]
) -> None:
    geocode_place("Xyzzyville")
    geocode_place("Gent")
    negative = geocoder_config["GEOCODER_NEGATIVE_CACHE_SECONDS"]
    assert negative < geocoder_config["GEOCODER_CACHE_SECONDS"]
    for answer in cached_answers():
        answer.fetched_at -= dt.timedelta(seconds=negative + 1)
    db.session.flush()
    geocode_place("Xyzzyville")
    geocode_place("Gent")
    assert [seen.args["q"] for seen in recorded.searches()] == ["Xyzzyville", "Gent", "Xyzzyville"]


def test_purge_removes_only_answers_past_every_lifetime(db_session: object, geocoder_config: dict[str, Any]) -> None:
    geocode_place("Gent")
    geocode_place("Brugge")
    [old, _] = cached_answers()
    old.fetched_at -= dt.timedelta(seconds=geocoder_config["GEOCODER_CACHE_SECONDS"] + 1)
    db.session.flush()
    assert purge_expired_answers() == 1
    assert [answer.query_key for answer in cached_answers()] == ["brugge"]


# -- Nominatim and Photon, over HTTP on loopback --


def test_nominatim_answers_become_places(db_session: object, recorded: RecordedGeocoder) -> None:
    city = geocode_place("Gent", language="nl", country_hint="BE")
    assert city == Place(
        51.0538286, 3.7250121, "Gent, Oost-Vlaanderen, Vlaanderen, België / Belgique / Belgien", PlaceKind.CITY, "BE"
    )
    [request] = recorded.searches("Gent")
    assert request.path == "/search"
    assert request.args["format"] == "json" and request.args["addressdetails"] == "1"
    assert request.args["countrycodes"] == "be,nl" and request.args["accept-language"] == "nl"
    assert "viewbox" in request.args  # the hint: a preference for Belgium, not a limit
    assert request.headers["User-Agent"] == "voltaro-emsp-finder/1.0"
    postcode = geocode_place("1012 AB")
    assert postcode is not None and (postcode.kind, postcode.country) == (PlaceKind.POSTCODE, "NL")
    address = geocode_place("Rue de la Loi 16, Bruxelles")
    assert address is not None and (address.kind, address.country) == (PlaceKind.ADDRESS, "BE")
    assert len(address.label) <= 255
    assert geocode_place("Nowhere at all") is None


def test_photon_answers_become_places_in_our_countries(
    db_session: object, recorded: RecordedGeocoder, geocoder_config: dict[str, Any]
) -> None:
    geocoder_config["GEOCODER"] = "photon"
    bergen = geocode_place("Bergen", language="nl")
    assert bergen is not None and bergen.country == "NL"  # the first answer, in Norway, is not ours
    assert (bergen.latitude, bergen.longitude, bergen.kind) == (52.6691667, 4.7041667, PlaceKind.CITY)
    [request] = recorded.searches("Bergen")
    assert request.path == "/api" and "lang" not in request.args  # Photon speaks en, de and fr only
    address = geocode_place("Wetstraat 16, Brussel", language="fr", country_hint="BE")
    assert address is not None and address.kind == PlaceKind.ADDRESS
    assert recorded.searches("Wetstraat 16, Brussel")[0].args["lang"] == "fr"
    assert geocode_place("Nowhere at all") is None


def test_a_slow_geocoder_gives_a_clear_error_within_the_deadline(
    db_session: object, recorded: RecordedGeocoder, geocoder_config: dict[str, Any]
) -> None:
    geocoder_config["GEOCODER_TIMEOUT"] = 0.5
    recorded.misbehave["delay"] = 20
    started = time.monotonic()
    with pytest.raises(GeocoderUnavailableError, match="in time"):
        geocode_place("Gent")
    assert time.monotonic() - started < 5  # far below the 20 s the server would take
    assert cached_answers() == []  # a failure is not an answer


def test_a_trickling_geocoder_cannot_outlast_the_deadline(
    db_session: object, recorded: RecordedGeocoder, geocoder_config: dict[str, Any]
) -> None:
    geocoder_config["GEOCODER_TIMEOUT"] = 0.5
    recorded.misbehave["drip"] = 0.05  # the recorded answer of ~500 bytes would take ~25 s
    started = time.monotonic()
    with pytest.raises(GeocoderUnavailableError):
        geocode_place("Gent")
    assert time.monotonic() - started < 5


@pytest.mark.filterwarnings("ignore:Latitude normalization:UserWarning")  # geopy's own word on latitude 91.5
@pytest.mark.parametrize(
    "misbehave",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429},
        {"body": b"<html>proxy error</html>"},
        {"body": json.dumps({"unexpected": "shape"}).encode()},
        {"body": json.dumps([{"lat": "91.5", "lon": "3.7", "display_name": "Off the globe"}]).encode()},
        {"body": json.dumps([{"lat": "51", "lon": "3.7", "display_name": "\x00\x01"}]).encode()},
    ],
)
def test_a_failing_geocoder_gives_a_clear_error_not_a_500(
    db_session: object, recorded: RecordedGeocoder, misbehave: dict[str, Any]
) -> None:
    recorded.misbehave.update(misbehave)
    with pytest.raises(GeocoderUnavailableError) as failed:
        geocode_place("Gent")
    assert str(failed.value).startswith("the geocoder")
    assert cached_answers() == []


def test_an_unreachable_geocoder_gives_a_clear_error(db_session: object, geocoder_config: dict[str, Any]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    geocoder_config.update(GEOCODER="nominatim", GEOCODER_DOMAIN=f"127.0.0.1:{port}", GEOCODER_SCHEME="http")
    with pytest.raises(GeocoderUnavailableError, match="could not answer"):
        geocode_place("Gent")


def test_the_geocoder_reaches_only_the_configured_host(db_session: object, recorded: RecordedGeocoder) -> None:
    # A redirect to another private address (an internal service) is not followed.
    other = start_recorded_geocoder()
    try:
        recorded.misbehave["redirect"] = f"http://{other.geocoder.domain}/search?q=Gent&format=json"
        with pytest.raises(GeocoderUnavailableError):
            geocode_place("Gent")
    finally:
        other.stop()
    assert other.geocoder.seen == []


# -- configuration --


def settings_from(**overrides: Any) -> GeocoderSettings:
    config: dict[str, Any] = {
        "APP_ENV": "development",
        "GEOCODER": "offline",
        "GEOCODER_DOMAIN": None,
        "GEOCODER_SCHEME": "https",
        "GEOCODER_TIMEOUT": 3.0,
        "GEOCODER_COUNTRIES": ["BE", "NL"],
        "GEOCODER_CACHE_SECONDS": 3600,
        "GEOCODER_NEGATIVE_CACHE_SECONDS": 60,
    }
    return GeocoderSettings.from_config({**config, **overrides})


def test_the_public_nominatim_is_refused_in_production_and_warned_about_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    public = {"GEOCODER": "nominatim", "GEOCODER_DOMAIN": "nominatim.openstreetmap.org"}
    with pytest.raises(ConfigError, match="usage policy"):
        settings_from(APP_ENV="production", **public)
    development = settings_from(**public)
    with caplog.at_level(logging.WARNING, logger="app.finder.geocoding"):
        build_geocoder(development)
    assert "usage policy" in caplog.text
    own = settings_from(APP_ENV="production", GEOCODER="photon", GEOCODER_DOMAIN="photon.internal:2322/")
    assert own.domain == "photon.internal:2322"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"GEOCODER": "google"}, "GEOCODER must be one of"),
        ({"GEOCODER": "nominatim"}, "needs GEOCODER_DOMAIN"),  # geopy would fall back to the public one
        ({"GEOCODER_SCHEME": "ftp"}, "GEOCODER_SCHEME"),
        ({"GEOCODER_TIMEOUT": 0}, "GEOCODER_TIMEOUT"),
        ({"GEOCODER_TIMEOUT": 120}, "GEOCODER_TIMEOUT"),
        ({"GEOCODER_COUNTRIES": ["Belgium"]}, "GEOCODER_COUNTRIES"),
    ],
)
def test_unusable_geocoder_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(**overrides)


def test_production_refuses_to_start_with_a_public_geocoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/emsp")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_something")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_something")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://emsp.example")
    monkeypatch.setenv("GEOCODER", "offline")
    ProductionConfig.validate()
    monkeypatch.setenv("GEOCODER", "nominatim")
    monkeypatch.delenv("GEOCODER_DOMAIN", raising=False)
    with pytest.raises(ConfigError, match="GEOCODER_DOMAIN"):
        ProductionConfig.validate()
    monkeypatch.setenv("GEOCODER_DOMAIN", "Nominatim.OpenStreetMap.org/")
    with pytest.raises(ConfigError, match="GEOCODER_DOMAIN"):
        ProductionConfig.validate()
    monkeypatch.setenv("GEOCODER_DOMAIN", "nominatim.internal:8080")
    ProductionConfig.validate()


def test_answers_table_keeps_one_row_per_question(db_session: object) -> None:
    for _ in range(3):
        geocode_place("Gent")
    assert db.session.scalar(select(func.count()).select_from(GeocodeAnswer)) == 1


def test_the_cities_and_postcodes_of_real_dutch_charging_locations_are_found(offline: OfflineGazetteer) -> None:
    """The 7,609 NDW locations of the shared data: their city and their postcode, as the CPOs wrote them (typos
    included), must land near the location. The few misses are typos ("Gronjngen"), names of two places where the
    location is at the smaller ("Oosterhout") and wrong postcodes in the feed."""
    with gzip.open(NL_DATA / "locations.json.gz", "rt", encoding="utf-8") as file:
        locations = json.load(file)
    near = {"city": 0, "postal_code": 0}
    for location in locations:
        latitude, longitude = (float(location["coordinates"][axis]) for axis in ("latitude", "longitude"))
        for field_name in near:
            found = offline.geocode(location[field_name]) if location.get(field_name) else None
            if found is not None and haversine_km(latitude, longitude, found.latitude, found.longitude) < 15:
                near[field_name] += 1
    assert len(locations) == 7609
    assert near["city"] >= 0.995 * len(locations), near
    assert near["postal_code"] >= 0.98 * len(locations), near


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2, dphi, dlambda = map(math.radians, (lat1, lat2, lat2 - lat1, lon2 - lon1))
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
