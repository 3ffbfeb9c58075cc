"""OCPI Session and CDR objects of one charging session at LOC-EST (``tests.factories.one_connector_location``), as
a CPO sends them: the Session while charging, then the CDR with the same charging periods. Shared by the live-cost
tests and the remote start end to end."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.cards.models import Card
from app.timestamps import ocpi_timestamp
from tests.roaming.token_fixtures import our_cdr_token

LOCATION_ID = "LOC-EST"
EVSE_UID = "E1"


def period(start: dt.datetime, kwh: float | None = None, hours: float | None = None, **measured: float) -> dict:  # type: ignore[type-arg]
    """A ChargingPeriod: ENERGY (kWh), TIME (hours) and measured dimensions such as ``POWER=11``."""
    dimensions: list[dict[str, Any]] = []
    if kwh is not None:
        dimensions.append({"type": "ENERGY", "volume": kwh})
    if hours is not None:
        dimensions.append({"type": "TIME", "volume": hours})
    dimensions += [{"type": kind, "volume": volume} for kind, volume in measured.items()]
    return {"start_date_time": ocpi_timestamp(start), "dimensions": dimensions}


def session_object(
    card: Card,
    session_id: str,
    start: dt.datetime,
    *,
    kwh: float,
    last_updated: dt.datetime,
    periods: list[dict] | None = None,  # type: ignore[type-arg]
    status: str = "ACTIVE",
    end: dt.datetime | None = None,
    total_cost: dict | None = None,  # type: ignore[type-arg]
    auth_method: str = "WHITELIST",
    authorization_reference: str | None = None,
) -> dict:  # type: ignore[type-arg]
    session: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": session_id,
        "start_date_time": ocpi_timestamp(start),
        "kwh": kwh,
        "cdr_token": our_cdr_token(card),
        "auth_method": auth_method,
        "location_id": LOCATION_ID,
        "evse_uid": EVSE_UID,
        "connector_id": "1",
        "currency": "EUR",
        "status": status,
        "last_updated": ocpi_timestamp(last_updated),
    }
    if periods is not None:
        session["charging_periods"] = periods
    if end is not None:
        session["end_date_time"] = ocpi_timestamp(end)
    if total_cost is not None:
        session["total_cost"] = total_cost
    if authorization_reference is not None:
        session["authorization_reference"] = authorization_reference
    return session


def cdr_object(
    card: Card,
    cdr_id: str,
    session_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    kwh: float,
    periods: list[dict],  # type: ignore[type-arg]
    cpo_total_excl_vat: float,
    tariff_id: str | None = None,
    auth_method: str = "WHITELIST",
) -> dict:  # type: ignore[type-arg]
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": cdr_id,
        "start_date_time": ocpi_timestamp(start),
        "end_date_time": ocpi_timestamp(end),
        "session_id": session_id,
        "cdr_token": our_cdr_token(card),
        "auth_method": auth_method,
        "cdr_location": {
            "id": LOCATION_ID,
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "country": "NLD",
            "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
            "evse_uid": EVSE_UID,
            "evse_id": "NL*TCP*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [{**item, "tariff_id": tariff_id} if tariff_id else item for item in periods],
        "total_cost": {"excl_vat": cpo_total_excl_vat},
        "total_energy": kwh,
        "total_time": round((end - start).total_seconds() / 3600, 6),
        "last_updated": ocpi_timestamp(end),
    }
