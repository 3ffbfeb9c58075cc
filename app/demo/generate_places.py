"""Generated charge points for ``flask demo generate``: locations around Belgian and Dutch cities with their EVSEs
and connectors, stored as roaming's importer stores them (columns + the OCPI object as JSON: the location without
its EVSEs, the EVSE without its connectors, the connector)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table

from app.demo import generate_catalogue as catalogue
from app.demo.generate_base import ConnectorRef, Writer, table, weighted_cities
from app.demo.generate_catalogue import CPOS
from app.roaming.models import Connector, Evse, Location

FAST_SHARE = 0.12  # of locations: DC fast chargers (the rest: AC street and car-park chargers)
EVSE_STATUSES = ("AVAILABLE", "CHARGING", "OUTOFORDER")
EVSE_STATUS_WEIGHTS = (85, 10, 5)


@dataclass
class PlaceRows:
    tables: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    connectors: list[ConnectorRef] = field(default_factory=list)


def _cpos_for(country: str, fast: bool) -> list[int]:
    if fast:
        return [index for index, cpo in enumerate(CPOS) if cpo.fast]
    return [index for index, cpo in enumerate(CPOS) if not cpo.fast and cpo.country_code == country]


def location_rows(
    rng: random.Random,
    writer: Writer,
    block_start: int,
    size: int,
    first_partner: int,
    hub_id: int,
    tariffs: dict[tuple[int, str], int],
    changed: str,
    since: dt.datetime,
) -> PlaceRows:
    """``size`` locations (numbered from ``block_start``), their EVSEs and connectors, with ids reserved."""
    locations_table, evses_table, connectors_table = table(Location), table(Evse), table(Connector)
    first_location = writer.first_id(locations_table, size)
    locations: list[dict[str, Any]] = []
    evses: list[dict[str, Any]] = []
    connectors: list[dict[str, Any]] = []
    refs: list[ConnectorRef] = []
    for offset, city_index in enumerate(weighted_cities(rng, size)):
        city = catalogue.CITIES[city_index]
        fast = rng.random() < FAST_SHARE
        cpo_index = rng.choice(_cpos_for(city.country, fast))
        cpo = CPOS[cpo_index]
        partner_id = hub_id if cpo.via_hub else first_partner + cpo_index
        kind = rng.choice(cpo.tariff_kinds)
        tariff_id = f"{cpo.party_id}-{kind.upper().replace('_', '-')}"
        number = block_start + offset + 1
        ocpi_id = f"{cpo.party_id}-L{number:07d}"
        language = city.languages[0]
        street = f"{rng.choice(catalogue.STREETS[language])} {rng.randint(1, 180)}"
        name = f"{rng.choice(catalogue.LOCATION_NAMES)} {street.rsplit(' ', 1)[0]}"
        postal_code = str(rng.randint(*city.postal_codes))
        latitude = f"{city.latitude + rng.gauss(0, 0.02):.7f}"
        longitude = f"{city.longitude + rng.gauss(0, 0.035):.7f}"
        country3 = catalogue.ALPHA3[city.country]
        time_zone = catalogue.TIME_ZONES[city.country]
        location_data = {
            "country_code": cpo.country_code,
            "party_id": cpo.party_id,
            "id": ocpi_id,
            "publish": True,
            "name": name,
            "address": street,
            "city": city.name,
            "postal_code": postal_code,
            "country": country3,
            "coordinates": {"latitude": latitude, "longitude": longitude},
            "parking_type": "PARKING_LOT" if fast else rng.choice(("ON_STREET", "ON_STREET", "PARKING_GARAGE")),
            "operator": {"name": cpo.name},
            "time_zone": time_zone,
            "opening_times": {"twentyfourseven": True},
            "last_updated": changed,
        }
        location_id = first_location + offset
        locations.append(
            {
                "id": location_id,
                "partner_id": partner_id,
                "country_code": cpo.country_code,
                "party_id": cpo.party_id,
                "ocpi_id": ocpi_id,
                "ocpi_id_key": ocpi_id.upper(),
                "name": name,
                "address": street,
                "city": city.name,
                "postal_code": postal_code,
                "country": country3,
                "latitude": Decimal(latitude),
                "longitude": Decimal(longitude),
                "time_zone": time_zone,
                "operator_name": cpo.name,
                "publish": True,
                "data": location_data,
                "last_updated": since,
            }
        )
        evse_count = rng.choice((2, 2, 4, 6)) if fast else rng.choice((1, 2, 2, 2, 3))
        if fast:
            volts, amps, watts = rng.choice(((920, 125, 50_000), (920, 200, 150_000), (920, 400, 300_000)))
            standard, connector_format, power_type = "IEC_62196_T2_COMBO", "CABLE", "DC"
        else:
            volts, amps, watts = rng.choice(((230, 16, 11_000), (230, 32, 22_000)))
            standard, connector_format, power_type = "IEC_62196_T2", "SOCKET", "AC_3_PHASE"
        for evse_number in range(1, evse_count + 1):
            evse_uid = f"{ocpi_id}-{evse_number}"
            evse_id = f"{city.country}*{cpo.party_id}*E{number:07d}{evse_number}"
            connector_data = {
                "id": "1",
                "standard": standard,
                "format": connector_format,
                "power_type": power_type,
                "max_voltage": volts,
                "max_amperage": amps,
                "max_electric_power": watts,
                "tariff_ids": [tariff_id],
                "last_updated": changed,
            }
            status = rng.choices(EVSE_STATUSES, weights=EVSE_STATUS_WEIGHTS)[0]
            evse_data = {
                "uid": evse_uid,
                "evse_id": evse_id,
                "status": status,
                "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
                "connectors": [connector_data],
                "last_updated": changed,
            }
            evses.append(
                {
                    "location_id": location_id,
                    "uid": evse_uid,
                    "evse_id": evse_id,
                    "status": status,
                    "max_power_kw": (Decimal(watts) / 1000).quantize(Decimal("0.001")),
                    "data": {key: value for key, value in evse_data.items() if key != "connectors"},
                    "last_updated": since,
                }
            )
            connectors.append(
                {
                    "connector_id": "1",
                    "standard": standard,
                    "format": connector_format,
                    "power_type": power_type,
                    "max_voltage": volts,
                    "max_amperage": amps,
                    "max_electric_power": watts,
                    "tariff_ids": [tariff_id],
                    "data": connector_data,
                    "last_updated": since,
                }
            )
            refs.append(
                ConnectorRef(
                    cpo=cpo_index,
                    partner_id=partner_id,
                    location_ocpi_id=ocpi_id,
                    evse_uid=evse_uid,
                    evse_id=evse_id,
                    connector_id="1",
                    standard=standard,
                    connector_format=connector_format,
                    power_type=power_type,
                    kw=watts // 1000,
                    tariff_version_id=tariffs[(cpo_index, kind)],
                    tariff_id=tariff_id,
                    tariff_kind=kind,
                    name=name,
                    address=street,
                    city=city.name,
                    postal_code=postal_code,
                    country=city.country,
                    latitude=latitude,
                    longitude=longitude,
                )
            )
    first_evse = writer.first_id(evses_table, len(evses))
    first_connector = writer.first_id(connectors_table, len(connectors))
    for offset, (evse, connector) in enumerate(zip(evses, connectors, strict=True)):
        evse["id"] = first_evse + offset
        connector["id"] = first_connector + offset
        connector["evse_id"] = evse["id"]
    return PlaceRows([(locations_table, locations), (evses_table, evses), (connectors_table, connectors)], refs)


def location_object(
    location: dict[str, Any], evses: list[dict[str, Any]], connectors: dict[int, dict[str, Any]]
) -> Any:
    """The full OCPI Location of generated rows (the tests validate it as the importer would)."""
    return {
        **location["data"],
        "evses": [{**evse["data"], "connectors": [connectors[evse["id"]]["data"]]} for evse in evses],
    }
