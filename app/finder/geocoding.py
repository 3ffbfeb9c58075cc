"""Geocoding of the places drivers type ("Gent", "Gand", "3500", "1012 AB", "Rue de la Loi 16, Bruxelles").

:func:`geocode_place` is the service the doors call: it answers a :class:`Place` or ``None`` (an unknown place, for
the door to say so), refuses bad input with :class:`InvalidPlaceQueryError` (naming the parameter) and reports a
geocoder that cannot answer with :class:`GeocoderUnavailableError` (a message, never a 500). It flushes only.

The geocoder is a geopy geocoder chosen by configuration (``GEOCODER``): ``offline`` (the default, no network: the
shipped gazetteer of Belgian and Dutch places, :mod:`app.finder.gazetteer`), ``nominatim`` or ``photon`` (our own
server at ``GEOCODER_DOMAIN``; the domain comes from configuration, never from a request). Calls to a server go
through the project's outgoing-call transport (:mod:`app.roaming.ocpi.transport`) with ``GEOCODER_TIMEOUT`` as the
deadline of the whole call: a trickling server cannot hold a web worker longer. The public
nominatim.openstreetmap.org and photon.komoot.io forbid an application's bulk use: production refuses them,
elsewhere a warning is logged.

Answers are cached in the database (:class:`~app.finder.models.GeocodeAnswer`), keyed by the query (case and spaces
folded), the provider, the language and the country hint; unknown places too, for a shorter time
(``GEOCODER_CACHE_SECONDS``, ``GEOCODER_NEGATIVE_CACHE_SECONDS``). Failures are not cached.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from geopy.adapters import AdapterHTTPError, BaseSyncAdapter
from geopy.exc import GeocoderParseError, GeocoderTimedOut, GeocoderUnavailable, GeopyError
from geopy.geocoders import Nominatim, Photon
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from sqlalchemy import delete, select

from app.config import PUBLIC_GEOCODER_HOSTS, ConfigError
from app.db import utcnow
from app.db_session import insert_or_ignore
from app.extensions import db
from app.finder.gazetteer import OfflineGazetteer, PlaceKind
from app.finder.models import GeocodeAnswer
from app.roaming.ocpi.safe_urls import AllowedPrivate, UrlPolicy
from app.roaming.ocpi.transport import TIMED_OUT, FetchError, FetchLimits, fetch

log = logging.getLogger(__name__)

PROVIDERS = ("offline", "nominatim", "photon")
MAX_QUERY_LENGTH = 200  # characters: the longest real address is under 120
MAX_KEY_LENGTH = 400  # the cache key (case folding may lengthen a query: "ß" → "ss")
MAX_LABEL_LENGTH = 255
MAX_ANSWER_BYTES = 1024 * 1024
PHOTON_LANGUAGES = frozenset({"en", "de", "fr"})  # what Photon answers in; others are refused by it with a 400
# Where a country hint points an online geocoder (a preference, not a limit): (south, west), (north, east).
COUNTRY_BOXES = {"BE": ((49.49, 2.54), (51.51, 6.41)), "NL": ((50.75, 3.35), (53.56, 7.23))}
# Nominatim's place types that are a city, town, village or a part of one; a postcode is its own kind.
CITY_TYPES = frozenset(
    {"city", "town", "village", "hamlet", "municipality", "suburb", "quarter", "neighbourhood", "city_district",
     "borough", "locality", "isolated_dwelling", "district", "county", "state", "region", "province", "country"}
)  # fmt: skip
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # control, invisible, surrogate, private, unassigned


class InvalidPlaceQueryError(ValueError):
    """What was typed cannot be a place. ``parameter`` names the input ("query", "language", "country_hint");
    the message, in English, says why (the doors translate it)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class GeocoderUnavailableError(RuntimeError):
    """The configured geocoder did not answer (timed out, unreachable, an error, an unreadable answer). The
    message is short and safe to log; the doors tell the driver to try again."""


@dataclass(frozen=True, slots=True)
class Place:
    latitude: float
    longitude: float
    label: str  # what was found, for the driver to check: "Gand, Belgique", "9000 Gent, België"
    kind: PlaceKind
    country: str | None  # ISO 3166 alpha-2, upper case, when the geocoder says


@dataclass(frozen=True)
class GeocoderSettings:
    """The geocoder configuration, checked. Hashable: one geocoder is built per distinct settings."""

    provider: str
    domain: str | None
    scheme: str
    timeout: float
    user_agent: str
    countries: tuple[str, ...]
    found_seconds: int
    not_found_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GeocoderSettings:
        provider = str(config.get("GEOCODER") or "offline").strip().lower()
        if provider not in PROVIDERS:
            raise ConfigError(f"GEOCODER must be one of {', '.join(PROVIDERS)}, not {provider!r}")
        domain = (config.get("GEOCODER_DOMAIN") or "").strip().strip("/") or None
        scheme = str(config.get("GEOCODER_SCHEME") or "https").strip().lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"GEOCODER_SCHEME must be http or https, not {scheme!r}")
        timeout = float(config.get("GEOCODER_TIMEOUT") or 0)
        if not 0 < timeout <= 30:
            raise ConfigError("GEOCODER_TIMEOUT must be between 0 and 30 seconds: a web request waits for it")
        if provider != "offline":
            if domain is None:
                # geopy would fall back to the public service, which its usage policy forbids to us.
                raise ConfigError(f"GEOCODER={provider} needs GEOCODER_DOMAIN (our own {provider} server)")
            if _host_of(scheme, domain) in PUBLIC_GEOCODER_HOSTS and config.get("APP_ENV") == "production":
                raise ConfigError(
                    f"GEOCODER_DOMAIN={domain} is a public service whose usage policy forbids our traffic"
                )
        countries = tuple(str(code).strip().upper() for code in config.get("GEOCODER_COUNTRIES") or ())
        if any(not _COUNTRY.match(code) for code in countries):
            raise ConfigError(f"GEOCODER_COUNTRIES must be ISO country codes, not {countries}")
        return cls(
            provider=provider,
            domain=domain,
            scheme=scheme,
            timeout=timeout,
            user_agent=str(config.get("GEOCODER_USER_AGENT") or "voltaro-emsp-finder"),
            countries=countries,
            found_seconds=int(config["GEOCODER_CACHE_SECONDS"]),
            not_found_seconds=int(config["GEOCODER_NEGATIVE_CACHE_SECONDS"]),
        )


def geocode_place(query: str, *, language: str | None = None, country_hint: str | None = None) -> Place | None:
    """Where ``query`` is: a :class:`Place`, or ``None`` for a place the geocoder does not know.

    ``language`` (e.g. "nl", "fr-BE") is the language of the answer's label; ``country_hint`` ("BE", "NL") prefers
    places of that country when a name is ambiguous ("Bergen"). Asks the geocoder only when the database has no
    fresh answer to the same question; stores what it answered (flushes, the caller commits)."""
    text = clean_query(query)
    language_code = _language_code(language)
    hint = _country_code(country_hint)
    settings = GeocoderSettings.from_config(current_app.config)
    key = cache_key(text)
    now = utcnow()
    cached = db.session.execute(
        select(GeocodeAnswer).where(
            GeocodeAnswer.provider == settings.provider,
            GeocodeAnswer.language == language_code,
            GeocodeAnswer.country_hint == hint,
            GeocodeAnswer.query_key == key,
        )
    ).scalar_one_or_none()
    if cached is not None and now < cached.fetched_at + dt.timedelta(seconds=_lifetime(settings, cached.found)):
        return _place_of(cached)
    place = ask_geocoder(settings, text, language=language_code or None, country_hint=hint or None)
    _remember(cached, settings.provider, language_code, hint, key, place, now)
    return place


def clean_query(query: str) -> str:
    """The typed text with its spaces folded, or :class:`InvalidPlaceQueryError` saying why it cannot be a place."""
    if not isinstance(query, str):
        raise InvalidPlaceQueryError("query", "Type a place, an address or a postcode.")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidPlaceQueryError("query", f"A place is at most {MAX_QUERY_LENGTH} characters long.")
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in query):
        raise InvalidPlaceQueryError("query", "A place cannot contain control or invisible characters.")
    text = " ".join(query.split())
    if not text:
        raise InvalidPlaceQueryError("query", "Type a place, an address or a postcode.")
    return text


def cache_key(text: str) -> str:
    """Queries that only differ in case, spacing or Unicode form share one answer ("GENT " and "gent")."""
    key = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidPlaceQueryError("query", f"A place is at most {MAX_QUERY_LENGTH} characters long.")
    return key


def ask_geocoder(
    settings: GeocoderSettings, text: str, *, language: str | None, country_hint: str | None
) -> Place | None:
    """Ask the configured geocoder (no cache): the first place it finds in our countries, or ``None``."""
    geocoder = build_geocoder(settings)
    try:
        if settings.provider == "offline":
            answer = geocoder.geocode(
                text, language=language, country_codes=settings.countries or None, country_hint=country_hint
            )
            locations = [answer] if answer is not None else []
        elif settings.provider == "nominatim":
            answer = geocoder.geocode(
                text,
                exactly_one=True,
                addressdetails=True,
                language=language or False,
                country_codes=[code.lower() for code in settings.countries] or None,
                viewbox=COUNTRY_BOXES.get(country_hint or ""),
            )
            locations = [answer] if answer is not None else []
        else:
            centre = _centre(COUNTRY_BOXES.get(country_hint or ""))
            photon_language = language if language in PHOTON_LANGUAGES else None
            answer = geocoder.geocode(text, exactly_one=False, limit=5, language=photon_language, location_bias=centre)
            locations = list(answer or [])
        places = [_place_from(settings.provider, location) for location in locations]
    except GeocoderTimedOut as exc:
        log.warning("geocoder %s timed out: %s", settings.provider, exc)
        raise GeocoderUnavailableError("the geocoder did not answer in time") from exc
    except GeopyError as exc:
        log.warning("geocoder %s failed: %r", settings.provider, exc)
        raise GeocoderUnavailableError("the geocoder could not answer") from exc
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:  # an answer not as documented
        log.warning("geocoder %s answered something unreadable: %r", settings.provider, exc)
        raise GeocoderUnavailableError("the geocoder's answer could not be read") from exc
    allowed = set(settings.countries)
    return next((p for p in places if not allowed or p.country is None or p.country in allowed), None)


def purge_expired_answers(now: dt.datetime | None = None) -> int:
    """Delete cached answers older than the longest lifetime (a batch job's unit of work commits). Returns how many."""
    settings = GeocoderSettings.from_config(current_app.config)
    cutoff = (now or utcnow()) - dt.timedelta(seconds=max(settings.found_seconds, settings.not_found_seconds))
    result = db.session.execute(delete(GeocodeAnswer).where(GeocodeAnswer.fetched_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


@functools.lru_cache(maxsize=8)
def build_geocoder(settings: GeocoderSettings) -> Geocoder:
    """The geopy geocoder for ``settings`` (kept per process: geocoders hold no per-request state)."""
    if settings.provider == "offline":
        return OfflineGazetteer(user_agent=settings.user_agent)
    assert settings.domain is not None  # from_config refuses a server provider without a domain
    if _host_of(settings.scheme, settings.domain) in PUBLIC_GEOCODER_HOSTS:  # once per process: geocoders are kept
        log.warning(
            "GEOCODER_DOMAIN=%s is a public service whose usage policy forbids our traffic; run our own %s server",
            settings.domain,
            settings.provider,
        )
    limits = FetchLimits(
        connect_timeout=min(settings.timeout, 3.0),
        read_timeout=settings.timeout,
        call_seconds=settings.timeout,
        max_redirects=2,
        max_bytes=MAX_ANSWER_BYTES,
    )
    policy = UrlPolicy(require_https=settings.scheme == "https", allowed_private=(_configured_host(settings),))
    adapter = functools.partial(DeadlineAdapter, policy=policy, limits=limits)
    geocoder_class = Nominatim if settings.provider == "nominatim" else Photon
    return geocoder_class(
        domain=settings.domain,
        scheme=settings.scheme,
        timeout=settings.timeout,
        user_agent=settings.user_agent,
        adapter_factory=adapter,
    )


class DeadlineAdapter(BaseSyncAdapter):  # type: ignore[misc]  # geopy has no type hints
    """geopy's HTTP layer through :func:`app.roaming.ocpi.transport.fetch`: a deadline for the whole call, the
    answer capped in size, redirects checked, and only the configured host reachable on a private address."""

    def __init__(self, *, proxies: Any, ssl_context: Any, policy: UrlPolicy, limits: FetchLimits) -> None:
        super().__init__(proxies=proxies, ssl_context=ssl_context)
        self.policy = policy
        self.limits = limits

    def get_json(self, url: str, *, timeout: Any, headers: dict[str, str]) -> Any:
        text = self.get_text(url, timeout=timeout, headers=headers)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise GeocoderParseError(f"not JSON: {text[:80]!r}") from exc

    def get_text(self, url: str, *, timeout: Any, headers: dict[str, str]) -> str:
        try:
            fetched = fetch("GET", url, headers=headers, policy=self.policy, limits=self.limits)
        except FetchError as exc:
            if exc.reason == TIMED_OUT:
                raise GeocoderTimedOut(f"no answer within {self.limits.call_seconds:g} s") from exc
            raise GeocoderUnavailable(f"{exc.reason}: {exc.detail}") from exc
        text = fetched.content.decode("utf-8", errors="replace")
        if fetched.status >= 400:
            raise AdapterHTTPError(
                f"HTTP {fetched.status}", status_code=fetched.status, headers=dict(fetched.headers), text=text[:500]
            )
        return text


# -- answers → places --


def _place_from(provider: str, location: Location) -> Place:
    raw: Mapping[str, Any] = location.raw
    if provider == "offline":
        kind, country = PlaceKind(raw["kind"]), raw["country"]
    elif provider == "nominatim":
        kind = _nominatim_kind(raw)
        country = (raw.get("address") or {}).get("country_code")
    else:
        properties = raw["properties"]
        kind = _photon_kind(properties)
        country = properties.get("countrycode")
    latitude, longitude = float(location.latitude), float(location.longitude)
    if not (
        math.isfinite(latitude) and math.isfinite(longitude) and -90 <= latitude <= 90 and -180 <= longitude <= 180
    ):
        raise ValueError(f"coordinates out of range: {latitude}, {longitude}")
    return Place(
        latitude=latitude,
        longitude=longitude,
        label=_bounded_label(str(location.address or "")),
        kind=kind,
        country=country.upper() if isinstance(country, str) and _COUNTRY.match(country) else None,
    )


def _nominatim_kind(raw: Mapping[str, Any]) -> PlaceKind:
    place_type = str(raw.get("addresstype") or raw.get("type") or "")
    if place_type == "postcode" or raw.get("type") == "postcode":
        return PlaceKind.POSTCODE
    if place_type in CITY_TYPES or (raw.get("class") == "boundary" and raw.get("type") == "administrative"):
        return PlaceKind.CITY
    return PlaceKind.ADDRESS


def _photon_kind(properties: Mapping[str, Any]) -> PlaceKind:
    if properties.get("osm_value") == "postcode" or properties.get("type") == "postcode":
        return PlaceKind.POSTCODE
    if properties.get("type") in CITY_TYPES or properties.get("osm_value") in CITY_TYPES:
        return PlaceKind.CITY
    return PlaceKind.ADDRESS


def _bounded_label(label: str) -> str:
    """A provider's label as we show it: no control characters, one space between words, at most 255 characters."""
    cleaned = " ".join("".join(" " if unicodedata.category(ch) in _REFUSED_CATEGORIES else ch for ch in label).split())
    if not cleaned:
        raise ValueError("an answer without a name")
    return cleaned if len(cleaned) <= MAX_LABEL_LENGTH else cleaned[: MAX_LABEL_LENGTH - 1].rstrip() + "…"


# -- the cache --


def _lifetime(settings: GeocoderSettings, found: bool) -> int:
    return settings.found_seconds if found else settings.not_found_seconds


def _place_of(answer: GeocodeAnswer) -> Place | None:
    if not answer.found:
        return None
    assert answer.latitude is not None and answer.longitude is not None  # the table's check holds them together
    assert answer.label is not None and answer.kind is not None
    return Place(answer.latitude, answer.longitude, answer.label, answer.kind, answer.country)


def _remember(
    stale: GeocodeAnswer | None,
    provider: str,
    language: str,
    hint: str,
    key: str,
    place: Place | None,
    now: dt.datetime,
) -> None:
    answer = {
        "found": place is not None,
        "latitude": place.latitude if place else None,
        "longitude": place.longitude if place else None,
        "label": place.label if place else None,
        "kind": place.kind if place else None,
        "country": place.country if place else None,
        "fetched_at": now,
    }
    if stale is not None:
        for name, value in answer.items():
            setattr(stale, name, value)
        db.session.flush()
        return
    # Two requests for the same new place may race: the later one refreshes the row the earlier one wrote.
    statement = insert_or_ignore(GeocodeAnswer).values(
        provider=provider, language=language, country_hint=hint, query_key=key, **answer
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["provider", "language", "country_hint", "query_key"], set_=answer
        )
    )


# -- input --


def _language_code(language: str | None) -> str:
    """ "fr-BE" → "fr"; "" when none. The primary language is what geocoders translate names into."""
    if language is None or language == "":
        return ""
    found = _LANGUAGE.match(language) if isinstance(language, str) and len(language) <= 35 else None
    if found is None:
        raise InvalidPlaceQueryError("language", "The language must be a language code such as nl, fr or en.")
    return found.group(1).lower()


def _country_code(country: str | None) -> str:
    if country is None or country == "":
        return ""
    if not isinstance(country, str) or not _COUNTRY.match(country):
        raise InvalidPlaceQueryError("country_hint", "The country must be a two-letter code such as BE or NL.")
    return country.upper()


def _host_of(scheme: str, domain: str) -> str:
    return (urlsplit(f"{scheme}://{domain}").hostname or "").rstrip(".").lower()


def _configured_host(settings: GeocoderSettings) -> AllowedPrivate:
    """Our own geocoder server may sit on a private address; only it, on its port."""
    assert settings.domain is not None
    parts = urlsplit(f"{settings.scheme}://{settings.domain}")
    host = _host_of(settings.scheme, settings.domain)
    port = parts.port or (443 if settings.scheme == "https" else 80)
    return AllowedPrivate.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def _centre(box: tuple[tuple[float, float], tuple[float, float]] | None) -> tuple[float, float] | None:
    if box is None:
        return None
    (south, west), (north, east) = box
    return ((south + north) / 2, (west + east) / 2)
