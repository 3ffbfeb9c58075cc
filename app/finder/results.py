"""What a search answers: typed, immutable results a door turns into JSON or HTML without computing anything.

One :class:`LocationResult` per location, built for the page only (:func:`build_results`): its place, the
distance, the operator, the opening hours and whether it is open now, the EVSEs (not REMOVED) with their live
status and connectors, the navigation links, and the price: the driver's all-in price of a typical session at the
cheapest connector that meets the search's filters (each such connector carries its own price), with the CPO's
tariff in words. Money is Decimal, distances are Decimal km to the metre, times are aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.finder.candidates import location_zone
from app.finder.filters import Current, connector_label
from app.finder.navigation import NavigationLinks, navigation_links
from app.finder.opening_hours import OpeningHours, open_at
from app.finder.page import PageLocation, hours_from_json, read_page, sent_coordinates
from app.finder.power import connector_power_kw, is_dc
from app.finder.prices import PriceBook, SessionPrice
from app.finder.tariff_words import TariffWords, tariff_in_words
from app.ocpi_ids import ci_key
from app.pricing import Tariff

_METRE = Decimal("0.001")


@dataclass(frozen=True)
class ConnectorResult:
    id: str
    standard: str  # OCPI ConnectorType as the CPO sent it
    label: str  # "Type 2", "CCS", ...
    format: str  # SOCKET or CABLE
    power_type: str  # AC_1_PHASE, AC_3_PHASE, DC, ...
    current: Current
    power_kw: Decimal | None  # usable power (app.finder.power); None: the feed gives no plausible figure
    matches: bool  # meets the search's connector filters
    price: SessionPrice | None  # for the matching connectors
    tariff: TariffWords | None  # the CPO tariff priced, in words (None: no tariff in force)


@dataclass(frozen=True)
class EvseResult:
    uid: str
    evse_id: str | None
    status: str  # live availability as the CPO pushes it: AVAILABLE, CHARGING, OUTOFORDER, ...
    status_updated_at: dt.datetime
    connectors: tuple[ConnectorResult, ...]


@dataclass(frozen=True)
class LocationResult:
    id: int  # our row id (stable while the location exists)
    country_code: str
    party_id: str
    ocpi_id: str
    name: str | None
    address: str
    city: str
    postal_code: str | None
    country: str  # alpha-3, as OCPI sends it
    latitude: str  # as OCPI: a decimal string
    longitude: str
    distance_km: Decimal | None  # geodesic: from the searched point, or from the route for a route search
    along_route_km: Decimal | None  # route searches: where the route first comes within reach
    operator: str | None
    time_zone: str
    opening_hours: OpeningHours | None  # None: no hours published
    open_now: bool | None  # None: unknown (no hours published)
    max_power_kw: Decimal | None
    evses: tuple[EvseResult, ...]
    price: SessionPrice | None  # the cheapest matching connector's (unknown says why); None: nothing matches
    priced_connector: tuple[str, str] | None  # that connector: (EVSE uid, connector id)
    tariff: TariffWords | None  # the CPO tariff of that connector, in words
    navigation: NavigationLinks
    last_updated: dt.datetime


@dataclass(frozen=True)
class SearchPage:
    items: tuple[LocationResult, ...]
    next_cursor: str | None  # None: this is the last page


def _km(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value)).quantize(_METRE)


def _coordinate(sent: str | None, column: Decimal) -> str:
    return sent if sent is not None else format(column.normalize(), "f")


def price_order(price: SessionPrice | None) -> tuple[int, Decimal]:
    """Cheapest first; unknown prices after every known one (they never sort as free)."""
    if price is None or price.incl_vat is None:
        return (1, Decimal(0))
    return (0, price.incl_vat)


def _words(
    book: PriceBook, price: SessionPrice | None, cache: dict[int, TariffWords | None], at: dt.datetime
) -> TariffWords | None:
    """The priced tariff in words, once per version and page."""
    if price is None or price.tariff_version_id is None:
        return None
    version_id = price.tariff_version_id
    if version_id not in cache:
        version = book.version(version_id)
        parsed = book.parsed(version) if version is not None else None
        words = None
        if version is not None and isinstance(parsed, Tariff):
            words = tariff_in_words(parsed, version.data.get("tariff_alt_text"), today=at.astimezone(dt.UTC).date())
        cache[version_id] = words
    return cache[version_id]


def build_result(
    location: PageLocation,
    matching: set[int] | None,
    book: PriceBook,
    *,
    at: dt.datetime,
    distance_km: float | None,
    along_route_km: float | None = None,
    version_words: dict[int, TariffWords | None] | None = None,
    made: dict[tuple[object, ...], ConnectorResult] | None = None,
) -> LocationResult:
    """One result: ``matching`` are the ids of the connectors that meet the search's filters, the ones priced
    (None: every live connector). ``version_words`` and ``made`` are a page's: the tariffs in words by version,
    and the connector results already made (immutable, so connectors alike share one: the same kind of socket
    with the same id and price at several locations of a page is common)."""
    words_cache = {} if version_words is None else version_words
    connector_results = {} if made is None else made
    zone = location_zone(location.time_zone, location.country)
    hours = hours_from_json(location.opening_times_json, zone)
    party = (location.country_code, location.party_id, location.country, location.time_zone)
    evses = []
    best: tuple[tuple[int, Decimal], SessionPrice, TariffWords | None, tuple[str, str]] | None = None
    powers = []
    for evse in location.evses:
        connectors = []
        for connector in evse.connectors:
            price = words = None
            matches = matching is None or connector.row_id in matching
            if matches:
                price = book.price_of((*party, evse.max_power_kw, connector.tariff_ids))
                words = _words(book, price, words_cache, at)
                order = price_order(price)
                if best is None or order < best[0]:
                    best = (order, price, words, (evse.uid, connector.connector_id))
            plug = (connector.connector_id, connector.standard, connector.format)
            figures = (
                connector.power_type,
                connector.max_voltage,
                connector.max_amperage,
                connector.max_electric_power,
            )
            # The price and words by identity: the book and the page keep one of each, alive all through the page.
            alike = (plug, figures, id(price), id(words), matches)
            made_one = connector_results.get(alike)
            if made_one is None:
                made_one = connector_results[alike] = ConnectorResult(
                    id=connector.connector_id,
                    standard=connector.standard,
                    label=connector_label(connector.standard),
                    format=connector.format,
                    power_type=connector.power_type,
                    current=Current.DC if is_dc(connector.power_type) else Current.AC,
                    power_kw=connector_power_kw(*figures),
                    matches=matches,
                    price=price,
                    tariff=words,
                )
            if made_one.power_kw is not None:
                powers.append(made_one.power_kw)
            connectors.append(made_one)
        evses.append(EvseResult(evse.uid, evse.evse_id, evse.status, evse.last_updated, tuple(connectors)))
    sent_latitude, sent_longitude = sent_coordinates(location)
    return LocationResult(
        id=location.id,
        country_code=location.country_code,
        party_id=location.party_id,
        ocpi_id=location.ocpi_id,
        name=location.name,
        address=location.address,
        city=location.city,
        postal_code=location.postal_code,
        country=location.country,
        latitude=_coordinate(sent_latitude, location.latitude),
        longitude=_coordinate(sent_longitude, location.longitude),
        distance_km=_km(distance_km),
        along_route_km=_km(along_route_km),
        operator=location.operator_name,
        time_zone=zone,
        opening_hours=hours,
        open_now=open_at(hours, at),
        max_power_kw=max(powers) if powers else None,
        evses=tuple(evses),
        price=best[1] if best else None,
        priced_connector=best[3] if best else None,
        tariff=best[2] if best else None,
        navigation=navigation_links(location.latitude, location.longitude),
        last_updated=location.last_updated,
    )


def build_results(
    order: Iterable[tuple[int, float | None, float | None]],
    matching: Mapping[int, Iterable[int] | None],
    book: PriceBook,
    *,
    at: dt.datetime,
    pages: Mapping[int, PageLocation] | None = None,
) -> tuple[LocationResult, ...]:
    """The page's results in ``order`` ((location id, distance km, along route km) each); ``matching``: per
    location, the connectors (``roaming_connectors.id``) that meet the search's filters (None: all). ``pages``:
    the locations already read with their EVSEs and connectors (:mod:`app.finder.nearest`), else read here."""
    entries = list(order)
    locations = pages if pages is not None else read_page(entry[0] for entry in entries)
    wanted = {location_id: None if ids is None else set(ids) for location_id, ids in matching.items()}
    # The tariffs the page's matching connectors name, and the driver's plan: one statement.
    named: set[tuple[str, str, tuple[str, ...]]] = set()
    for location_id, _, _ in entries:
        location = locations.get(location_id)
        if location is None:
            continue
        ids = wanted.get(location_id, set())
        for evse in location.evses:
            for connector in evse.connectors:
                if ids is None or connector.row_id in ids:
                    named.add((location.country_code, location.party_id, connector.tariff_ids))
    book.load_keys(
        (country_code, party_id, ci_key(tariff_id))
        for country_code, party_id, tariff_ids in named
        for tariff_id in tariff_ids
    )
    words: dict[int, TariffWords | None] = {}
    made: dict[tuple[object, ...], ConnectorResult] = {}
    results = []
    for location_id, distance, along in entries:
        location = locations.get(location_id)
        if location is None:
            continue  # deleted between the search and this read: not shown rather than half shown
        results.append(
            build_result(
                location,
                wanted.get(location_id, set()),
                book,
                at=at,
                distance_km=distance,
                along_route_km=along,
                version_words=words,
                made=made,
            )
        )
    return tuple(results)
