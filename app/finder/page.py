"""Reading the locations of one page of results: two queries, plain rows, only the columns a result shows.

Not the ORM objects with their JSON documents: a page of 20 Dutch locations carries ~80 connectors, and loading
them as objects (three queries, a JSON document decoded per location, EVSE and connector) cost more than the
whole rest of a search. The EVSEs REMOVED by the CPO are left out here, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select

from app.extensions import db
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
    opening_times: Any  # the OCPI Hours object as sent, if any
    coordinates: Any  # the OCPI GeoLocation as sent
    evses: list[PageEvse] = field(default_factory=list)


# What a result shows of a location, in the order page_location reads them (after the id); app.finder.nearest
# selects the same in its one-statement walk.
LOCATION_COLUMNS = (
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
    Location.last_updated,
    Location.data["opening_times"],
    Location.data["coordinates"],
)
# Built once: the statements are the same for every page, only the ids change (an expanding parameter).
_LOCATIONS = select(Location.id, *LOCATION_COLUMNS).where(Location.id.in_(bindparam("ids", expanding=True)))

# What a result shows of an EVSE and its connector, in the order the pages read them (after the location's id);
# app.finder.nearest selects the same.
EVSE_CONNECTOR_COLUMNS = (
    Evse.id,
    Evse.uid,
    Evse.evse_id,
    Evse.status,
    Evse.last_updated,
    Evse.max_power_kw,
    Connector.id,
    Connector.connector_id,
    Connector.standard,
    Connector.format,
    Connector.power_type,
    Connector.max_voltage,
    Connector.max_amperage,
    Connector.max_electric_power,
    Connector.tariff_ids,
)
_EVSES_AND_CONNECTORS = (
    select(Evse.location_id, *EVSE_CONNECTOR_COLUMNS)
    .join(Connector, Connector.evse_id == Evse.id)
    .where(Evse.location_id.in_(bindparam("ids", expanding=True)), Evse.status != REMOVED)
    .order_by(Evse.location_id, Evse.id, Connector.id)
)


def read_page(ids: Iterable[int]) -> dict[int, PageLocation]:
    """The locations ``ids`` with their live EVSEs and connectors (in the CPO's order), by id."""
    wanted = list(ids)
    if not wanted:
        return {}
    locations = {
        row[0]: PageLocation(*row)  # the columns in the dataclass's order
        for row in db.session.execute(_LOCATIONS, {"ids": wanted})
    }
    evses: dict[int, PageEvse] = {}
    for row in db.session.execute(_EVSES_AND_CONNECTORS, {"ids": wanted}):
        evse = evses.get(row[1])
        if evse is None:
            evse = evses[row[1]] = PageEvse(row[2], row[3], row[4], row[5], row[6])
            locations[row[0]].evses.append(evse)
        evse.connectors.append(
            PageConnector(row[7], row[8], row[9], row[10], row[11], row[12], row[13], row[14], tuple(row[15] or ()))
        )
    return locations


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
