"""The one query that reads candidate locations in areas: the spatial index, what a driver may see, and the
filters that must hold for the same connector.

With a connector filter: one row per live connector (its EVSE not REMOVED) of a location that the index puts in
the place, after the filters SQL decides exactly (connector standard, AC/DC, EVSE AVAILABLE, operator, our
network, what drivers may see); the minimum power is decided here in Python, on the same row, because the usable
power of a connector is read from three columns with the rules of :mod:`app.finder.power`. Without one: one row
per location that has a live EVSE. What comes back per location is its position and the connectors that meet
every connector filter (None: all its live connectors): those are the ones a result is priced on. The statements
are built once per shape of place and filters (building one costs more than SQLite takes to run it).

Never candidates: unpublished locations (``publish`` false), locations without a live EVSE (a CPO removes a
location by marking its EVSEs REMOVED: OCPI has no DELETE for locations), and locations delivered by a partner
whose connection is REMOVED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, Text, bindparam, cast, func, select

from app.countries import alpha2
from app.extensions import db
from app.finder.filters import Current, Filters
from app.finder.opening_hours import OpeningHours, open_at, zone_name
from app.finder.page import hours_from_json
from app.finder.power import connector_power_w
from app.finder.spatial import Area, Place, SpatialIndex, area_condition, in_areas
from app.finder.sql import ids_condition
from app.rating.countries import DEFAULT_ZONES
from app.roaming.models import Connector, Evse, Location
from app.roaming.places import visible_locations_filter, works_with_our_cards_filter

REMOVED = "REMOVED"
AVAILABLE = "AVAILABLE"


@dataclass(slots=True)
class Candidate:
    """A location the index put in the area and that passes every filter decided per row."""

    location_id: int
    lat: float
    lon: float
    # roaming_connectors.id meeting the connector filters; None: no connector filter, every live connector
    matching: list[int] | None
    # Filled by the search: the fast bound and, once it decides something, the exact distance (km).
    haversine_km: float = 0.0
    exact_km: float | None = None


def visible() -> list[ColumnElement[bool]]:
    """What a driver may ever see: published, and not delivered by a partner whose connection was REMOVED
    (roaming's rule, :func:`app.roaming.places.visible_locations_filter`)."""
    return [Location.publish.is_(True), visible_locations_filter()]


def in_area(areas: Sequence[Area], index: SpatialIndex | None = None) -> Place:
    """Where to look: locations the spatial index puts in ``areas``."""
    return in_areas(areas, index)


_ONE_LOCATION_SHAPE = ("location",)


def at_location(location_id: int) -> Place:
    """Where to look: one location (its details)."""
    return Place(_ONE_LOCATION_SHAPE, Location.id == bindparam("location_id"), {"location_id": location_id})


def _place_condition(shape: tuple[object, ...]) -> ColumnElement[bool]:
    if shape == _ONE_LOCATION_SHAPE:
        return Location.id == bindparam("location_id")
    return area_condition(shape)


def location_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    conditions = visible()
    if filters.operator:
        # lower() on both sides: the same folding of the column and of the name on each database.
        conditions.append(func.lower(Location.operator_name) == func.lower(filters.operator))
    if filters.my_cards:
        conditions.append(works_with_our_cards_filter())
    return conditions


def connector_conditions(filters: Filters, evse: Any = Evse, connector: Any = Connector) -> list[ColumnElement[bool]]:
    """The connector filters SQL decides exactly, on one EVSE and connector row (``evse``, ``connector``: the
    tables or their aliases); the minimum power is decided in Python (:func:`meets_power`)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.connector_types:
        conditions.append(func.upper(connector.standard).in_(sorted(filters.connector_types)))
    if filters.current == Current.DC:
        conditions.append(connector.power_type == "DC")
    elif filters.current == Current.AC:
        conditions.append(connector.power_type != "DC")
    if filters.available_now:
        conditions.append(evse.status == AVAILABLE)
    return conditions


def meets_power(
    min_watts: Decimal | None, power_type: str, voltage: int | None, amperage: int | None, raw: int | None
) -> bool:
    """The minimum-power filter on one connector (``min_watts`` None: no such filter)."""
    if min_watts is None:
        return True
    watts = connector_power_w(power_type, voltage, amperage, raw)
    return watts is not None and watts >= min_watts


@lru_cache(maxsize=256)
def _statement(shape: tuple[object, ...], filters: Filters) -> Select[Any]:
    """The query for a place of this shape and these filters, built once: only its parameters vary (building a
    statement costs more than SQLite takes to run it)."""
    place = _place_condition(shape)
    if not filters.on_connector:
        live = select(Evse.id).where(Evse.location_id == Location.id, Evse.status != REMOVED).exists()
        return select(Location.id, cast(Location.latitude, Float), cast(Location.longitude, Float)).where(
            place, *location_conditions(filters), live
        )
    conditions = [place, *location_conditions(filters), Evse.status != REMOVED, *connector_conditions(filters)]
    return (
        select(
            Location.id,
            cast(Location.latitude, Float),
            cast(Location.longitude, Float),
            Connector.id,
            Connector.power_type,
            Connector.max_voltage,
            Connector.max_amperage,
            Connector.max_electric_power,
        )
        .select_from(Location)
        .join(Evse, Evse.location_id == Location.id)
        .join(Connector, Connector.evse_id == Evse.id)
        .where(*conditions)
    )


def find_candidates(place: Place, filters: Filters) -> dict[int, Candidate]:
    """Locations in ``place`` (:func:`in_area`: a superset of an area, the index's answer; or
    :func:`at_location`) that pass the per-row ``filters``, by id. "Open now" is left to :func:`drop_closed`, for
    the few candidates that are really in the area.

    Without a connector filter every live connector matches: one row per location is read (``matching`` None),
    not one per connector."""
    rows = db.session.connection().execute(_statement(place.shape, filters), place.params)
    if not filters.on_connector:
        return {location_id: Candidate(location_id, lat, lon, None) for location_id, lat, lon in rows}
    found: dict[int, Candidate] = {}
    min_watts = None if filters.min_power_kw is None else filters.min_power_kw * 1000
    for location_id, lat, lon, connector_id, power_type, voltage, amperage, raw in rows:
        if not meets_power(min_watts, power_type, voltage, amperage, raw):
            continue
        candidate = found.get(location_id)
        if candidate is None:
            candidate = found[location_id] = Candidate(location_id, lat, lon, [])
        assert candidate.matching is not None  # built with a list just above
        candidate.matching.append(connector_id)
    return found


def drop_closed(candidates: list[Candidate], at: dt.datetime) -> list[Candidate]:
    """The "open now" filter: drop the locations known to be closed at ``at`` (unknown hours stay, see
    :mod:`app.finder.opening_hours`)."""
    if not candidates:
        return candidates
    hours = hours_of(candidate.location_id for candidate in candidates)
    return [candidate for candidate in candidates if open_at(hours.get(candidate.location_id), at) is not False]


@lru_cache(maxsize=4096)
def location_zone(time_zone: str | None, country: str) -> str:
    """The zone a location's local times are in: its own, else its country's (as rating prices it), else UTC."""
    return zone_name(time_zone, DEFAULT_ZONES.get(alpha2(country), "UTC"))


def hours_of(location_ids: Iterable[int]) -> dict[int, OpeningHours | None]:
    """The published opening hours of these locations (None: unknown), in one query."""
    connection = db.session.connection()
    rows = connection.execute(_hours_statement(connection.dialect.name), {"ids": list(location_ids)})
    return {
        location_id: hours_from_json(opening_times, location_zone(time_zone, country))
        for location_id, opening_times, time_zone, country in rows
    }


@lru_cache(maxsize=4)
def _hours_statement(dialect: str) -> Select[*tuple[Any, ...]]:
    return select(Location.id, cast(Location.data["opening_times"], Text), Location.time_zone, Location.country).where(
        ids_condition(Location.id, dialect)
    )
