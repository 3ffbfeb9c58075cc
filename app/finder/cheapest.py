"""The candidates of a cheapest-first search with what their prices depend on, in one statement.

Cheapest first needs the price of every location in the radius (the order needs them all; the ordering itself is
:func:`app.finder.services.search_nearby`'s). A location's price is that of its cheapest matching connector, and a
connector's price depends only on its :data:`~app.finder.prices.PriceKey` (the location's party, country and zone,
the EVSE's power and the connector's tariff ids): one statement reads, per candidate of the place, the distinct
keys of its matching connectors, where the circles would read the candidates and then, by their ids, every
connector again. Without a connector filter the database folds the connectors priced alike (two sockets of an
EVSE, the EVSEs of a row of chargers) into one row; with one, each matching connector comes with its power figures
for the minimum-power rule (:func:`app.finder.candidates.meets_power`), decided here.

The rules are the circles' (:mod:`app.finder.candidates`): published, not of a REMOVED partner, a live EVSE, the
connector filters on one connector. A live EVSE without a connector has no price (its key names no tariff), as a
location without one had before.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Select, and_, cast, select

from app.extensions import db
from app.finder.candidates import REMOVED, Candidate, connector_conditions, location_conditions, meets_power
from app.finder.filters import Filters
from app.finder.page import tariff_ids_of, tariff_ids_text
from app.finder.prices import PriceKey
from app.finder.spatial import Place, area_condition
from app.roaming.models import Connector, Evse, Location

# What a price depends on, after the location's id and position (and, with a connector filter, the connector's id
# and power figures).
_KEY_COLUMNS = (
    Location.country_code,
    Location.party_id,
    Location.country,
    Location.time_zone,
    Evse.max_power_kw,
    tariff_ids_text(),
)
_POSITION = (Location.id, cast(Location.latitude, Float), cast(Location.longitude, Float))
_POWER = (
    Connector.id,
    Connector.power_type,
    Connector.max_voltage,
    Connector.max_amperage,
    Connector.max_electric_power,
)


@lru_cache(maxsize=64)
def _statement(shape: tuple[object, ...], filters: Filters) -> Select[Any]:
    """Built once per shape of place and filters (only the parameters vary)."""
    conditions = [area_condition(shape), *location_conditions(filters)]
    live = and_(Evse.location_id == Location.id, Evse.status != REMOVED)
    if not filters.on_connector:
        return (
            select(*_POSITION, *_KEY_COLUMNS)
            .distinct()
            .select_from(Location)
            .join(Evse, live)
            .outerjoin(Connector, Connector.evse_id == Evse.id)
            .where(*conditions)
        )
    return (
        select(*_POSITION, *_POWER, *_KEY_COLUMNS)
        .select_from(Location)
        .join(Evse, live)
        .join(Connector, Connector.evse_id == Evse.id)
        .where(*conditions, *connector_conditions(filters))
    )


def priced_candidates(place: Place, filters: Filters) -> tuple[dict[int, Candidate], dict[int, set[PriceKey]]]:
    """The candidates in ``place`` (a superset of an area: the index's answer) that pass the per-row ``filters``
    ("open now" is the caller's), by id, and per candidate the distinct price keys of its matching connectors."""
    rows = db.session.connection().execute(_statement(place.shape, filters), place.params).all()
    candidates: dict[int, Candidate] = {}
    keys: dict[int, set[PriceKey]] = {}
    if not filters.on_connector:
        for location_id, lat, lon, country_code, party_id, country, zone, power, tariff_ids in rows:
            if location_id not in candidates:
                candidates[location_id] = Candidate(location_id, lat, lon, None)
                keys[location_id] = set()
            keys[location_id].add((country_code, party_id, country, zone, power, tariff_ids_of(tariff_ids)))
        return candidates, keys
    min_watts: Decimal | None = None if filters.min_power_kw is None else filters.min_power_kw * 1000
    for location_id, lat, lon, connector_id, power_type, voltage, amperage, raw, *key in rows:
        if not meets_power(min_watts, power_type, voltage, amperage, raw):
            continue
        candidate = candidates.get(location_id)
        if candidate is None:
            candidate = candidates[location_id] = Candidate(location_id, lat, lon, [])
            keys[location_id] = set()
        assert candidate.matching is not None  # built with a list just above
        candidate.matching.append(connector_id)
        country_code, party_id, country, zone, power, tariff_ids = key
        keys[location_id].add((country_code, party_id, country, zone, power, tariff_ids_of(tariff_ids)))
    return candidates, keys
