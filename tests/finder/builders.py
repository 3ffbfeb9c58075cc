"""Finder test data: OCPI locations and tariffs built to order and stored through roaming's own store path (so the
spatial index is filled the way production fills it), and partners of every status."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Location, Partner, PartnerParty, PartnerStatus
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff

STAMP = "2026-01-01T00:00:00Z"
_ids = itertools.count(1)

# Connector kinds as real Dutch feeds describe them.
TYPE2_11KW = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 16,
    "max_electric_power": 11000,
}
TYPE2_22KW = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
    "max_electric_power": 22000,
}
CCS_150KW = {
    "standard": "IEC_62196_T2_COMBO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 920,
    "max_amperage": 400,
    "max_electric_power": 150000,
}
CCS_50KW = {
    "standard": "IEC_62196_T2_COMBO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 500,
    "max_amperage": 125,
    "max_electric_power": 50000,
}
CHADEMO_50KW = {
    "standard": "CHADEMO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 500,
    "max_amperage": 125,
    "max_electric_power": 50000,
}


def connector(kind: dict[str, Any], *, id: str = "1", tariff_ids: list[str] | None = None) -> dict[str, Any]:
    return {**kind, "id": id, "tariff_ids": tariff_ids or [], "last_updated": STAMP}


def evse(uid: str, *connectors: dict[str, Any], status: str = "AVAILABLE", last_updated: str = STAMP) -> dict[str, Any]:
    return {"uid": uid, "evse_id": None, "status": status, "connectors": list(connectors), "last_updated": last_updated}


def location_object(
    lat: float,
    lon: float,
    *evses: dict[str, Any],
    id: str | None = None,
    country_code: str = "NL",
    party_id: str = "TCP",
    country: str = "NLD",
    time_zone: str = "Europe/Amsterdam",
    publish: bool = True,
    operator: str | None = "Test Operator",
    opening_times: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    number = next(_ids)
    obj: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": id or f"LOC{number}",
        "publish": publish,
        "name": name or f"Location {number}",
        "address": f"Teststraat {number}",
        "city": "Utrecht",
        "postal_code": "3511 AA",
        "country": country,
        "coordinates": {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"},
        "time_zone": time_zone,
        "evses": list(evses) or [evse("E1", connector(TYPE2_11KW))],
        "last_updated": STAMP,
    }
    if operator is not None:
        obj["operator"] = {"name": operator}
    if opening_times is not None:
        obj["opening_times"] = opening_times
    return obj


def add_location(
    lat: float, lon: float, *evses: dict[str, Any], partner: Partner | None = None, **fields: Any
) -> Location:
    """Store a location the way the OCPI door and the importers do (``upsert_location``)."""
    obj = location_object(lat, lon, *evses, **fields)
    return upsert_location(obj, partner=partner, country_code=obj["country_code"], party_id=obj["party_id"])


def energy_tariff(tariff_id: str, price: str, *, party_id: str = "TCP", currency: str = "EUR", **extra: Any) -> Any:
    """A tariff with one ENERGY price per kWh (excl. VAT), stored as a version."""
    data = {
        "country_code": "NL",
        "party_id": party_id,
        "id": tariff_id,
        "currency": currency,
        "elements": [{"price_components": [{"type": "ENERGY", "price": float(price), "vat": 21.0, "step_size": 1}]}],
        "last_updated": STAMP,
        **extra,
    }
    return store_tariff(data, partner=None, country_code="NL", party_id=party_id)


def add_partner(
    name: str,
    party_id: str,
    *,
    status: PartnerStatus = PartnerStatus.REGISTERED,
    is_hub: bool = False,
    relays: tuple[tuple[str, str], ...] = (),
) -> Partner:
    """A partner (flushed): a CPO for its own party, or a hub relaying ``relays`` ((party_id, HubClientInfo
    status) pairs, all NL)."""
    partner = Partner(
        name=name,
        is_hub=is_hub,
        country_code="NL",
        party_id=party_id,
        status=status,
        registered_at=utcnow() if status == PartnerStatus.REGISTERED else None,
        endpoints=[],
    )
    for relayed, state in relays:
        partner.parties.append(
            PartnerParty(country_code="NL", party_id=relayed, role="CPO", status=state, last_updated=utcnow())
        )
    db.session.add(partner)
    db.session.flush()
    return partner


AT = dt.datetime(2026, 10, 14, 8, 0, tzinfo=dt.UTC)  # a Wednesday, 10:00 in Amsterdam
