"""Generated charging for ``flask demo generate``: completed sessions and their CDRs, as roaming stores what a CPO
sends (columns + the OCPI object), linked to the card and account as ``roaming.receive.cdrs.store_cdr`` links
them, each session frozen to its connector's tariff version and each CDR's ``total_cost`` what that tariff gives
(``generate_catalogue.session_cost``). Left unrated: rating prices them from the frozen tariff.

Plausible: most sessions near the driver's home, at the hours people charge (evenings, mornings at work); AC
sessions of a few hours at 3.7-11 kW, often parked on afterwards; DC sessions of half an hour at 40-150 kW. A few
outliers the invoice run must hold (``billing.invoicing.outliers``): very large kWh, zero kWh, very long sessions;
and late CDRs: a session of the previous month whose CDR arrives in this one.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from app.charging.models import Cdr, ChargingSession
from app.demo import generate_catalogue as catalogue
from app.demo.generate_base import (
    CHUNK_ROWS,
    ConnectorRef,
    GenerateOptions,
    GenerateReport,
    Writer,
    days_in_month,
    month_bounds,
    shift_month,
    table,
)
from app.demo.generate_catalogue import CPOS, TARIFF_KINDS
from app.demo.generate_people import Drivers
from app.timestamps import ocpi_timestamp

HOME_SHARE = 0.8  # of sessions: in the driver's own city
LATE_SHARE = 0.02  # of a month's CDRs: a session of the month before, arriving late
OUTLIER_SHARE = 0.0005  # of CDRs, for each kind of outlier
# Forced positions so that even a small run has one of each (huge, zero kWh, very long, late).
FORCED = {7: "huge_kwh", 11: "zero_kwh", 13: "very_long", 17: "late"}
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 7, 9, 8, 6, 5, 6, 6, 5, 5, 7, 10, 11, 10, 8, 6, 4, 2)
HOUR_CUMULATIVE = list(accumulate(HOUR_WEIGHTS))
STEP = 36  # seconds: 0.01 h, so every duration is an exact number of hours with two decimals
HUNDREDTH = Decimal("0.01")


def _kind_of(rng: random.Random, index: int) -> str:
    forced = FORCED.get(index)
    if forced is not None:
        return forced
    draw = rng.random()
    for position, kind in enumerate(("huge_kwh", "zero_kwh", "very_long")):
        if draw < OUTLIER_SHARE * (position + 1):
            return kind
    return "late" if draw < 3 * OUTLIER_SHARE + LATE_SHARE else "normal"


def _steps(seconds: float) -> int:
    return max(1, math.ceil(seconds / STEP)) * STEP


def _shape(rng: random.Random, kind: str, connector: ConnectorRef) -> tuple[Decimal, int, int]:
    """kWh (two decimals), charging seconds and parked seconds (multiples of 36) of one session."""
    fast = connector.power_type == "DC"
    if kind == "huge_kwh":  # a meter error: far beyond any battery
        kwh = Decimal(rng.randint(25_000, 60_000)) / 100
        return kwh, _steps(float(kwh) / rng.uniform(150, 300) * 3600), STEP * rng.randint(0, 10)
    if kind == "zero_kwh":  # plugged in, nothing charged
        return Decimal(0), 0, STEP * rng.randint(10, 300)
    if kind == "very_long":  # a car left for the weekend
        kwh = Decimal(rng.randint(1_500, 5_000)) / 100
        return kwh, _steps(float(kwh) / 7.4 * 3600), STEP * rng.randint(5_000, 6_000)
    if fast:
        power = min(float(connector.kw), rng.uniform(40, 150))
        kwh = Decimal(rng.randint(800, 6_000)) / 100
        return kwh, _steps(float(kwh) / power * 3600), STEP * rng.randint(0, 20)
    power = min(float(connector.kw), rng.choice((3.7, 7.4, 11.0))) * rng.uniform(0.75, 0.95)
    kwh = Decimal(rng.randint(300, 4_500)) / 100
    overnight = rng.random() < 0.3
    parked = STEP * (rng.randint(100, 1_000) if overnight else rng.randint(0, 200))
    return kwh, _steps(float(kwh) / power * 3600), parked


def _start(rng: random.Random, month: str, zone: ZoneInfo, last_days: int | None = None) -> dt.datetime:
    days = days_in_month(month)
    day = rng.randint(days - last_days + 1, days) if last_days else rng.randint(1, days)
    hour = rng.choices(range(24), cum_weights=HOUR_CUMULATIVE)[0]
    local = dt.datetime(int(month[:4]), int(month[5:]), day, hour, rng.randint(0, 59), tzinfo=zone)
    return local.astimezone(dt.UTC)


def generate_sessions(
    writer: Writer,
    rng: random.Random,
    options: GenerateOptions,
    drivers: Drivers,
    connectors: list[ConnectorRef],
    *,
    first_month: str,
    say: Callable[[str], None],
) -> None:
    if options.cdrs == 0 or not drivers.card_ids:
        return
    report: GenerateReport = writer.report
    by_city: dict[str, list[ConnectorRef]] = {}
    for connector in connectors:
        by_city.setdefault(connector.city, []).append(connector)
    cumulative = drivers.cumulative_weights()
    tokens = range(len(drivers.card_ids))
    zones = {country: ZoneInfo(name) for country, name in catalogue.TIME_ZONES.items()}
    config = current_app.config
    our_country, our_party = config["COMPANY_COUNTRY_CODE"], config["COMPANY_PARTY_ID"]
    per_month = [options.cdrs // options.months] * options.months
    per_month[-1] += options.cdrs - sum(per_month)
    number = 0
    for month_index, count in enumerate(per_month):
        month = shift_month(first_month, month_index)
        month_start, _end = month_bounds(month)
        previous = shift_month(month, -1)
        for block_start in range(0, count, CHUNK_ROWS):
            size = min(CHUNK_ROWS, count - block_start)
            chosen = rng.choices(tokens, cum_weights=cumulative, k=size)
            first_session = writer.first_id(table(ChargingSession), size)
            first_cdr = writer.first_id(table(Cdr), size)
            sessions, cdrs = [], []
            for offset, token in enumerate(chosen):
                number += 1
                kind = _kind_of(rng, block_start + offset)
                report.outliers[kind] = report.outliers.get(kind, 0) + 1
                city = catalogue.CITIES[drivers.cities[token]].name
                nearby = by_city.get(city)
                pool = nearby if nearby and rng.random() < HOME_SHARE else connectors
                connector = pool[rng.randrange(len(pool))]
                if kind == "huge_kwh":  # only a fast charger could even pretend to deliver that much
                    connector = next((c for c in connectors if c.power_type == "DC"), connector)
                zone = zones[connector.country]
                late = kind == "late"
                start = _start(rng, previous if late else month, zone, last_days=2 if late else None)
                kwh, charging, parked = _shape(rng, kind, connector)
                end = start + dt.timedelta(seconds=charging + parked)
                received = end + dt.timedelta(seconds=rng.randint(60, 4 * 3600))
                if late:  # days after its month ended
                    received = max(received, month_start + dt.timedelta(seconds=rng.randint(3600, 5 * 86_400)))
                session_row, cdr_row = _rows(
                    rng,
                    number,
                    drivers,
                    token,
                    connector,
                    (start, end, received),
                    (kwh, charging, parked),
                    (our_country, our_party),
                )
                session_row["id"] = first_session + offset
                cdr_row["id"] = first_cdr + offset
                sessions.append(session_row)
                cdrs.append(cdr_row)
            writer.write(table(ChargingSession), sessions)
            writer.write(table(Cdr), cdrs)
            say(f"  {month}: {block_start + size} of {count} sessions and CDRs")


def _hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / 3600).quantize(HUNDREDTH)


def _rows(
    rng: random.Random,
    number: int,
    drivers: Drivers,
    token: int,
    connector: ConnectorRef,
    moments: tuple[dt.datetime, dt.datetime, dt.datetime],
    amounts: tuple[Decimal, int, int],
    us: tuple[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    start, end, received = moments
    kwh, charging, parked = amounts
    cpo = CPOS[connector.cpo]
    excl, incl = catalogue.session_cost(TARIFF_KINDS[connector.tariff_kind], kwh, charging, parked)
    session_id = f"{cpo.party_id}-S{number:09d}"
    cdr_id = f"{cpo.party_id}-C{number:09d}"
    app_token = drivers.app_tokens[token]
    cdr_token = {
        "country_code": us[0],
        "party_id": us[1],
        "uid": drivers.uids[token],
        "type": "APP_USER" if app_token else "RFID",
        "contract_id": drivers.contract_ids[token],
    }
    auth_method = "COMMAND" if app_token else "WHITELIST"
    started, ended = ocpi_timestamp(start), ocpi_timestamp(end)
    updated = received - dt.timedelta(seconds=rng.randint(1, 30))
    cost: dict[str, Any] = {"excl_vat": float(excl)}
    if incl is not None:
        cost["incl_vat"] = float(incl)
    periods: list[dict[str, Any]] = []
    if charging:
        periods.append(
            {
                "start_date_time": started,
                "dimensions": [
                    {"type": "ENERGY", "volume": float(kwh)},
                    {"type": "TIME", "volume": float(_hours(charging))},
                ],
                "tariff_id": connector.tariff_id,
            }
        )
    if parked or not charging:
        dimensions = [{"type": "PARKING_TIME", "volume": float(_hours(parked))}]
        if not charging:
            dimensions.insert(0, {"type": "ENERGY", "volume": 0})
        periods.append(
            {
                "start_date_time": ocpi_timestamp(start + dt.timedelta(seconds=charging)),
                "dimensions": dimensions,
                "tariff_id": connector.tariff_id,
            }
        )
    common = {
        "partner_id": connector.partner_id,
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "card_id": drivers.card_ids[token],
        "account_id": drivers.account_ids[token],
        "start_date_time": start,
        "end_date_time": end,
        "location_ocpi_id": connector.location_ocpi_id,
        "evse_uid": connector.evse_uid,
        "currency": "EUR",
        "last_updated": updated,
    }
    session_row = {
        **common,
        "ocpi_id": session_id,
        "ocpi_id_key": session_id,
        "status": "COMPLETED",
        "kwh": kwh,
        "connector_id": connector.connector_id,
        "frozen_tariff_id": connector.tariff_version_id,
        "data": {
            "country_code": cpo.country_code,
            "party_id": cpo.party_id,
            "id": session_id,
            "start_date_time": started,
            "end_date_time": ended,
            "kwh": float(kwh),
            "cdr_token": cdr_token,
            "auth_method": auth_method,
            "location_id": connector.location_ocpi_id,
            "evse_uid": connector.evse_uid,
            "connector_id": connector.connector_id,
            "currency": "EUR",
            "total_cost": cost,
            "status": "COMPLETED",
            "last_updated": ocpi_timestamp(updated),
        },
    }
    total_time = _hours(charging + parked)
    cdr_row = {
        **common,
        "ocpi_id": cdr_id,
        "ocpi_id_key": cdr_id,
        "session_ocpi_id": session_id,
        "token_uid": drivers.uids[token],
        "country": catalogue.ALPHA3[connector.country],
        "total_energy": kwh,
        "total_time": total_time,
        "total_cost_excl_vat": excl,
        "total_cost_incl_vat": incl,
        "credit": False,
        "credit_reference_id": None,
        "credit_reference_key": None,
        "original_cdr_id": None,
        "received_at": received,
        "data": {
            "country_code": cpo.country_code,
            "party_id": cpo.party_id,
            "id": cdr_id,
            "start_date_time": started,
            "end_date_time": ended,
            "session_id": session_id,
            "cdr_token": cdr_token,
            "auth_method": auth_method,
            "cdr_location": {
                "id": connector.location_ocpi_id,
                "name": connector.name,
                "address": connector.address,
                "city": connector.city,
                "postal_code": connector.postal_code,
                "country": catalogue.ALPHA3[connector.country],
                "coordinates": {"latitude": connector.latitude, "longitude": connector.longitude},
                "evse_uid": connector.evse_uid,
                "evse_id": connector.evse_id,
                "connector_id": connector.connector_id,
                "connector_standard": connector.standard,
                "connector_format": connector.connector_format,
                "connector_power_type": connector.power_type,
            },
            "currency": "EUR",
            "charging_periods": periods,
            "total_cost": cost,
            "total_energy": float(kwh),
            "total_time": float(total_time),
            "total_parking_time": float(_hours(parked)),
            "last_updated": ocpi_timestamp(updated),
        },
    }
    return session_row, cdr_row
