"""Reading the locations of one page of results: two queries, plain rows, only the columns a result shows.

Not the ORM objects with their JSON documents: a page of 20 Dutch locations carries ~80 connectors, and loading
them as objects (three queries, a JSON document decoded per location, EVSE and connector) cost more than the
whole rest of a search. The EVSEs REMOVED by the CPO are left out here, once.

The JSON a result shows comes as text, decoded in Python only where it is used, and only once per distinct text:
a connector's tariff ids (a thousand distinct lists in the Dutch data, ~80 connectors a page) and a location's
opening hours (one distinct value in the Dutch data) are kept decoded per process by their text
(:func:`tariff_ids_of`, :func:`hours_from_json`); a location's coordinates as sent are decoded for a shown result only
(:func:`sent_coordinates`). Letting the driver decode every JSON column of every row cost ~220 decodes a search.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, Text, and_, bindparam, cast, join, select, type_coerce

from app.extensions import db
from app.finder.opening_hours import OpeningHours, opening_hours_of
from app.finder.sql import ids_condition
from app.ocpi_ids import ci_key
from app.roaming.models import Connector, Evse, Location
from app.roaming.send.remote import REMOTE_CAPABILITY

REMOVED = "REMOVED"


@dataclass(slots=True)
class PageConnector:
    row_id: int  # roaming_connectors.id
    connector_id: str
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None
    tariff_ids: tuple[str, ...]


@dataclass(slots=True)
class PageEvse:
    uid: str
    evse_id: str | None
    status: str
    last_updated: dt.datetime
    max_power_kw: Decimal | None  # roaming's sanitised power: what the rating estimate uses
    connectors: list[PageConnector] = field(default_factory=list)


@dataclass(slots=True)
class PageLocation:
    id: int
    country_code: str
    party_id: str
    ocpi_id: str
    name: str | None
    address: str
    city: str
    postal_code: str | None
    country: str
    latitude: Decimal
    longitude: Decimal
    time_zone: str | None
    operator_name: str | None
    last_updated: dt.datetime
    opening_times_json: str | None  # the OCPI Hours object as sent, as JSON text (None or "null": none)
    coordinates_json: str | None  # the OCPI GeoLocation as sent, as JSON text
    evses: list[PageEvse] = field(default_factory=list)


# The pages' timestamps come as the driver reads them and are made UTC once per location and EVSE (as_utc), not
# per row: a location's columns repeat on each of its connectors' rows.
_TIMESTAMP = DateTime(timezone=True)


def as_utc(value: dt.datetime) -> dt.datetime:
    """What :class:`app.db.UTCDateTime` answers for a stored timestamp: aware, in UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# What a result shows of a location, in the order page_location reads them (after the id); app.finder.nearest
# selects the same in its one-statement walk.
LOCATION_COLUMNS: tuple[Any, ...] = (
    Location.country_code,
    Location.party_id,
    Location.ocpi_id,
    Location.name,
    Location.address,
    Location.city,
    Location.postal_code,
    Location.country,
    Location.latitude,
    Location.longitude,
    Location.time_zone,
    Location.operator_name,
    type_coerce(Location.last_updated, _TIMESTAMP),
    cast(Location.data["opening_times"], Text),
    cast(Location.data["coordinates"], Text),
)


def page_location(row: Sequence[Any], at: int = 0) -> PageLocation:
    """A :class:`PageLocation` from a row holding the location's id at ``at`` and :data:`LOCATION_COLUMNS` right
    after it."""
    page = PageLocation(*row[at : at + 1 + len(LOCATION_COLUMNS)])  # the columns in the dataclass's order
    page.last_updated = as_utc(page.last_updated)
    return page


# What a result shows of an EVSE and its connector, in the order the pages read them (after the location's id);
# app.finder.nearest selects the same.
EVSE_CONNECTOR_COLUMNS: tuple[Any, ...] = (
    Evse.id,
    Evse.uid,
    Evse.evse_id,
    Evse.status,
    type_coerce(Evse.last_updated, _TIMESTAMP),
    Evse.max_power_kw,
    Connector.id,
    Connector.connector_id,
    Connector.standard,
    Connector.format,
    Connector.power_type,
    Connector.max_voltage,
    Connector.max_amperage,
    Connector.max_electric_power,
    cast(Connector.tariff_ids, Text),
)
_EVSE_AT = 1 + len(LOCATION_COLUMNS)


# Built once: the statement is the same for every page, only the ids change (an expanding parameter). One row per
# live connector, the location's columns on each (a location without one: one row, its EVSE columns NULL).
@lru_cache(maxsize=4)
def _page_statement(dialect: str) -> Select[Any]:
    return (
        select(Location.id, *LOCATION_COLUMNS, *EVSE_CONNECTOR_COLUMNS)
        .select_from(Location)
        .outerjoin(
            join(Evse, Connector, Connector.evse_id == Evse.id),
            and_(Evse.location_id == Location.id, Evse.status != REMOVED),
        )
        .where(ids_condition(Location.id, dialect))
        .order_by(Location.id, Evse.id, Connector.id)
    )


def page_connector(values: Sequence[Any]) -> PageConnector:
    """A :class:`PageConnector` from the connector's columns of :data:`EVSE_CONNECTOR_COLUMNS`."""
    row_id, connector_id, standard, plug_format, power_type, voltage, amperage, raw_power, tariff_ids = values
    ids = tariff_ids_of(tariff_ids)
    return PageConnector(row_id, connector_id, standard, plug_format, power_type, voltage, amperage, raw_power, ids)


def build_page(rows: Sequence[Any], location_at: int, evse_at: int) -> PageLocation:
    """One location with its live EVSEs and connectors from its rows (one per connector, in the CPO's order; a
    location without one: a single row whose EVSE columns are NULL): the location's id and
    :data:`LOCATION_COLUMNS` from ``location_at``, :data:`EVSE_CONNECTOR_COLUMNS` from ``evse_at``."""
    page = page_location(rows[0], location_at)
    evse: PageEvse | None = None
    evse_row = None
    end = evse_at + len(EVSE_CONNECTOR_COLUMNS)
    for row in rows:
        if row[evse_at] is None:
            continue  # no live EVSE with a connector
        evse_id, uid, evse_ocpi_id, status, updated, max_power_kw, *connector = row[evse_at:end]
        if evse is None or evse_row != evse_id:
            evse, evse_row = PageEvse(uid, evse_ocpi_id, status, as_utc(updated), max_power_kw), evse_id
            page.evses.append(evse)
        evse.connectors.append(page_connector(connector))
    return page


class LazyPages(Mapping[int, PageLocation]):
    """Pages built from their rows when first asked for: a walk reads a few locations beyond the page (and the one
    that says more follow), whose results are never built."""

    def __init__(self, rows: dict[int, list[Any]], location_at: int, evse_at: int) -> None:
        self._rows = rows
        self._at = (location_at, evse_at)
        self._built: dict[int, PageLocation] = {}

    def __getitem__(self, location_id: int) -> PageLocation:
        page = self._built.get(location_id)
        if page is None:
            page = self._built[location_id] = build_page(self._rows[location_id], *self._at)
        return page

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def read_page(ids: Iterable[int]) -> dict[int, PageLocation]:
    """The locations ``ids`` with their live EVSEs and connectors (in the CPO's order), by id, in one statement."""
    wanted = list(ids)
    if not wanted:
        return {}
    connection = db.session.connection()  # plain rows: no ORM entities to load
    rows: dict[int, list[Any]] = {}
    for row in connection.execute(_page_statement(connection.dialect.name), {"ids": wanted}).all():
        rows.setdefault(row[0], []).append(row)
    return {location_id: build_page(location_rows, 0, _EVSE_AT) for location_id, location_rows in rows.items()}


# --- JSON read as text (see the module) ---------------------------------------------------------------------------

_DECODED_LIMIT = 20_000  # distinct texts kept per cache; a full cache is emptied rather than kept ordered
_tariff_ids: dict[str, tuple[str, ...]] = {}
_hours: dict[tuple[str, str], OpeningHours | None] = {}


def tariff_ids_text() -> ColumnElement[str]:
    """A connector's tariff ids as their JSON text (decoded by :func:`tariff_ids_of`)."""
    return cast(Connector.tariff_ids, Text)


def tariff_ids_of(text: str | None) -> tuple[str, ...]:
    """The tariff ids of a connector from their JSON text, decoded once per distinct text and process."""
    if text is None:
        return ()
    found = _tariff_ids.get(text)
    if found is None:
        if len(_tariff_ids) >= _DECODED_LIMIT:
            _tariff_ids.clear()
        found = _tariff_ids[text] = tuple(json.loads(text) or ())
    return found


def hours_from_json(opening_times_json: str | None, zone: str) -> OpeningHours | None:
    """:func:`app.finder.opening_hours.opening_hours_of` on a location's ``opening_times`` as JSON text, kept per
    distinct (text, zone) and process (the hours are immutable values)."""
    if opening_times_json is None or opening_times_json == "null":
        return None
    key = (opening_times_json, zone)
    if key in _hours:
        return _hours[key]
    if len(_hours) >= _DECODED_LIMIT:
        _hours.clear()
    found = _hours[key] = opening_hours_of(json.loads(opening_times_json), zone)
    return found


def sent_coordinates(location: PageLocation) -> tuple[str | None, str | None]:
    """The latitude and longitude as the CPO sent them, when it sent strings (OCPI 2.2.1; numbers are tolerated
    at intake and shown from the stored columns instead)."""
    sent = json.loads(location.coordinates_json) if location.coordinates_json else None
    if not isinstance(sent, dict):
        return None, None
    latitude, longitude = sent.get("latitude"), sent.get("longitude")
    return (
        latitude if isinstance(latitude, str) else None,
        longitude if isinstance(longitude, str) else None,
    )


_CAPABILITIES = select(Evse.uid, Evse.data["capabilities"]).where(
    Evse.location_id == bindparam("id"), Evse.status != REMOVED
)


def remote_startable_evses(location_id: int) -> frozenset[str]:
    """The uids of the location's live EVSEs that the CPO says can be started remotely (OCPI capability
    ``REMOTE_START_STOP_CAPABLE``, compared as the remote start service compares it). Only the details panel asks:
    the result pages do not read the EVSEs' JSON documents."""
    startable = set()
    for uid, capabilities in db.session.execute(_CAPABILITIES, {"id": location_id}):
        if isinstance(capabilities, list) and REMOTE_CAPABILITY in {ci_key(str(item)) for item in capabilities}:
            startable.add(uid)
    return frozenset(startable)
