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
import json
import math
import random
from bisect import bisect
from collections.abc import Callable
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from app.charging.models import Cdr, ChargingSession
from app.db_bulk import NULL, copy_escape
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

HOME_SHARE = 0.8  # of sessions: in the driver's own city
LATE_SHARE = 0.02  # of a month's CDRs: a session of the month before, arriving late
OUTLIER_SHARE = 0.0005  # of CDRs, for each kind of outlier
# Forced positions so that even a small run has one of each (huge, zero kWh, very long, late).
FORCED = {7: "huge_kwh", 11: "zero_kwh", 13: "very_long", 17: "late"}
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 7, 9, 8, 6, 5, 6, 6, 5, 5, 7, 10, 11, 10, 8, 6, 4, 2)
HOUR_CUMULATIVE = list(accumulate(HOUR_WEIGHTS))
HOUR_TOTAL = HOUR_CUMULATIVE[-1] + 0.0
STEP = 36  # seconds: 0.01 h, so every duration is an exact number of hours with two decimals
HUNDREDTH = Decimal("0.01")


def _int(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint(low, high)``, the same draw (``getrandbits`` of the range's bit length until one falls in it),
    without ``randrange``'s three layers of checks: they were a fifth of the generator's CPU."""
    width = high - low + 1
    bits = width.bit_length()
    drawn = rng.getrandbits(bits)
    while drawn >= width:
        drawn = rng.getrandbits(bits)
    return low + drawn


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
        kwh = Decimal(_int(rng, 25_000, 60_000)) / 100
        return kwh, _steps(float(kwh) / rng.uniform(150, 300) * 3600), STEP * _int(rng, 0, 10)
    if kind == "zero_kwh":  # plugged in, nothing charged
        return Decimal(0), 0, STEP * _int(rng, 10, 300)
    if kind == "very_long":  # a car left for the weekend
        kwh = Decimal(_int(rng, 1_500, 5_000)) / 100
        return kwh, _steps(float(kwh) / 7.4 * 3600), STEP * _int(rng, 5_000, 6_000)
    if fast:
        power = min(float(connector.kw), rng.uniform(40, 150))
        kwh = Decimal(_int(rng, 800, 6_000)) / 100
        return kwh, _steps(float(kwh) / power * 3600), STEP * _int(rng, 0, 20)
    power = min(float(connector.kw), (3.7, 7.4, 11.0)[_int(rng, 0, 2)]) * rng.uniform(0.75, 0.95)
    kwh = Decimal(_int(rng, 300, 4_500)) / 100
    overnight = rng.random() < 0.3
    parked = STEP * (_int(rng, 100, 1_000) if overnight else _int(rng, 0, 200))
    return kwh, _steps(float(kwh) / power * 3600), parked


def _start(
    rng: random.Random, month: tuple[int, int, int], zone: ZoneInfo, last_days: int | None = None
) -> dt.datetime:
    year, number, days = month
    day = _int(rng, days - last_days + 1, days) if last_days else _int(rng, 1, days)
    # rng.choices(range(24), cum_weights=HOUR_CUMULATIVE)[0], without building a list per call (same draw).
    hour = bisect(HOUR_CUMULATIVE, rng.random() * HOUR_TOTAL, 0, 23)
    local = dt.datetime(year, number, day, hour, _int(rng, 0, 59), tzinfo=zone)
    return local.astimezone(dt.UTC)


def _month(month: str) -> tuple[int, int, int]:
    return int(month[:4]), int(month[5:]), days_in_month(month)


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
    by_city: dict[str, list[int]] = {}
    for index, connector in enumerate(connectors):
        by_city.setdefault(connector.city, []).append(index)
    everywhere = list(range(len(connectors)))
    fast = next((index for index, connector in enumerate(connectors) if connector.power_type == "DC"), None)
    cumulative = drivers.cumulative_weights()
    tokens = range(len(drivers.card_ids))
    zones = {country: ZoneInfo(name) for country, name in catalogue.TIME_ZONES.items()}
    config = current_app.config
    texts = _Lines(connectors, drivers, (config["COMPANY_COUNTRY_CODE"], config["COMPANY_PARTY_ID"]))
    per_month = [options.cdrs // options.months] * options.months
    per_month[-1] += options.cdrs - sum(per_month)
    number = 0
    for month_index, count in enumerate(per_month):
        month = shift_month(first_month, month_index)
        month_start, _end = month_bounds(month)
        this_month, previous = _month(month), _month(shift_month(month, -1))
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
                nearby = by_city.get(catalogue.CITIES[drivers.cities[token]].name)
                pool = nearby if nearby and rng.random() < HOME_SHARE else everywhere
                place = pool[_int(rng, 0, len(pool) - 1)]
                if kind == "huge_kwh" and fast is not None:  # only a fast charger could even pretend to deliver that
                    place = fast
                connector = connectors[place]
                late = kind == "late"
                start = _start(rng, previous if late else this_month, zones[connector.country], 2 if late else None)
                kwh, charging, parked = _shape(rng, kind, connector)
                end = start + dt.timedelta(seconds=charging + parked)
                received = end + dt.timedelta(seconds=_int(rng, 60, 4 * 3600))
                if late:  # days after its month ended
                    received = max(received, month_start + dt.timedelta(seconds=_int(rng, 3600, 5 * 86_400)))
                updated = received - dt.timedelta(seconds=_int(rng, 1, 30))
                session_line, cdr_line = texts.lines(
                    (number, first_session + offset, first_cdr + offset),
                    token,
                    place,
                    (start, end, received, updated),
                    (kwh, charging, parked),
                )
                sessions.append(session_line)
                cdrs.append(cdr_line)
            writer.write_lines(table(ChargingSession), SESSION_COLUMNS, sessions)
            writer.write_lines(table(Cdr), CDR_COLUMNS, cdrs)
            say(f"  {month}: {block_start + size} of {count} sessions and CDRs")


def _hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / 3600).quantize(HUNDREDTH)


def _z(moment: dt.datetime) -> str:
    """``ocpi_timestamp`` of a UTC moment in whole seconds (every generated moment is one): the C ``isoformat``
    instead of ``strftime``, a fifth of the cost at two million timestamps a million CDRs."""
    return moment.isoformat()[:19] + "Z"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _number(value: Decimal) -> str:
    """A quantity as the JSON encoder writes ``float(value)``."""
    return repr(float(value))


# The columns of the COPY text lines (``app.db_bulk.insert_lines``): what changes per session first, then what
# depends only on the connector (one pre-written tail per connector).
SESSION_COLUMNS = (
    *("id", "ocpi_id", "ocpi_id_key", "card_id", "account_id", "start_date_time", "end_date_time", "kwh"),
    *("last_updated", "data", "partner_id", "country_code", "party_id", "location_ocpi_id", "evse_uid"),
    *("connector_id", "frozen_tariff_id", "currency", "status"),
)
CDR_COLUMNS = (
    *("id", "ocpi_id", "ocpi_id_key", "session_ocpi_id", "card_id", "account_id", "token_uid", "start_date_time"),
    *("end_date_time", "total_energy", "total_time", "total_cost_excl_vat", "total_cost_incl_vat", "last_updated"),
    *("received_at", "data", "partner_id", "country_code", "party_id", "location_ocpi_id", "evse_uid", "country"),
    *("currency", "credit", "credit_reference_id", "credit_reference_key", "original_cdr_id"),
)


class _Lines:
    """A session and its CDR as COPY text lines (``app.db_bulk.insert_lines``), their OCPI objects as JSON text
    written straight from pieces: what depends only on the CPO, the connector or the token is serialised once
    (``json.dumps``, escaped for COPY once) and the per-session parts (ids, times, quantities: ASCII, nothing to
    escape) are joined around them. The JSON is what ``json.dumps(obj, separators=(",", ":"))`` of the object
    gives, key for key; the tests read every stored row back, store its CDR again through roaming's intake and
    price it with the engine."""

    def __init__(self, connectors: list[ConnectorRef], drivers: Drivers, us: tuple[str, str]) -> None:
        self.connectors = connectors
        self.drivers = drivers
        self.us = us
        self.heads = [
            copy_escape(f'{{"country_code":{_json(cpo.country_code)},"party_id":{_json(cpo.party_id)},"id":"')
            for cpo in CPOS
        ]
        self.places = [
            copy_escape(
                f'"location_id":{_json(c.location_ocpi_id)},"evse_uid":{_json(c.evse_uid)},'
                f'"connector_id":{_json(c.connector_id)}'
            )
            for c in connectors
        ]
        self.locations = [copy_escape(_json(_cdr_location(c))) for c in connectors]
        self.tariff_tails = [copy_escape(f'],"tariff_id":{_json(c.tariff_id)}}}') for c in connectors]
        self.session_tails = []
        self.cdr_tails = []
        for c in connectors:
            cpo = CPOS[c.cpo]
            place = (str(c.partner_id), cpo.country_code, cpo.party_id, c.location_ocpi_id, c.evse_uid)
            self.session_tails.append(
                "\t".join(map(copy_escape, (*place, c.connector_id, str(c.tariff_version_id), "EUR", "COMPLETED")))
                + "\n"
            )
            self.cdr_tails.append(
                "\t".join((*map(copy_escape, (*place, catalogue.ALPHA3[c.country], "EUR")), "f", NULL, NULL, NULL))
                + "\n"
            )
        self.tokens: dict[int, str] = {}  # token index → '"cdr_token":{...},"auth_method":"..."'

    def token(self, token: int) -> str:
        text = self.tokens.get(token)
        if text is None:
            drivers = self.drivers
            app_token = drivers.app_tokens[token]
            cdr_token = {
                "country_code": self.us[0],
                "party_id": self.us[1],
                "uid": drivers.uids[token],
                "type": "APP_USER" if app_token else "RFID",
                "contract_id": drivers.contract_ids[token],
            }
            auth_method = "COMMAND" if app_token else "WHITELIST"
            text = copy_escape(f'"cdr_token":{_json(cdr_token)},"auth_method":"{auth_method}"')
            self.tokens[token] = text
        return text

    def lines(
        self,
        ids: tuple[int, int, int],
        token: int,
        place: int,
        moments: tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime],
        amounts: tuple[Decimal, int, int],
    ) -> tuple[str, str]:
        """The session's line and the CDR's; ``ids``: the session's number (in its OCPI ids), its row id, the
        CDR's row id."""
        number, session_row_id, cdr_row_id = ids
        start, end, received, updated = moments
        kwh, charging, parked = amounts
        connector = self.connectors[place]
        cpo = CPOS[connector.cpo]
        excl, incl = catalogue.session_cost(TARIFF_KINDS[connector.tariff_kind], kwh, charging, parked)
        session_id = f"{cpo.party_id}-S{number:09d}"
        cdr_id = f"{cpo.party_id}-C{number:09d}"
        started, ended, changed = _z(start), _z(end), _z(updated)
        head, token_text = self.heads[connector.cpo], self.token(token)
        kwh_text = _number(kwh)
        cost = (
            f'{{"excl_vat":{_number(excl)}}}'
            if incl is None
            else f'{{"excl_vat":{_number(excl)},"incl_vat":{_number(incl)}}}'
        )
        parked_hours = _hours(parked)
        periods = []
        if charging:
            periods.append(
                f'{{"start_date_time":"{started}","dimensions":[{{"type":"ENERGY","volume":{kwh_text}}},'
                f'{{"type":"TIME","volume":{_number(_hours(charging))}}}{self.tariff_tails[place]}'
            )
        if parked or not charging:
            energy = "" if charging else '{"type":"ENERGY","volume":0},'
            periods.append(
                f'{{"start_date_time":"{_z(start + dt.timedelta(seconds=charging))}","dimensions":[{energy}'
                f'{{"type":"PARKING_TIME","volume":{_number(parked_hours)}}}{self.tariff_tails[place]}'
            )
        total_time = _hours(charging + parked)
        drivers = self.drivers
        card_id, account_id = drivers.card_ids[token], drivers.account_ids[token]
        session_data = (
            f'{head}{session_id}","start_date_time":"{started}","end_date_time":"{ended}","kwh":{kwh_text},'
            f'{token_text},{self.places[place]},"currency":"EUR","total_cost":{cost},"status":"COMPLETED",'
            f'"last_updated":"{changed}"}}'
        )
        cdr_data = (
            f'{head}{cdr_id}","start_date_time":"{started}","end_date_time":"{ended}","session_id":"{session_id}",'
            f'{token_text},"cdr_location":{self.locations[place]},"currency":"EUR",'
            f'"charging_periods":[{",".join(periods)}],"total_cost":{cost},"total_energy":{kwh_text},'
            f'"total_time":{_number(total_time)},"total_parking_time":{_number(parked_hours)},'
            f'"last_updated":"{changed}"}}'
        )
        session_line = (
            f"{session_row_id}\t{session_id}\t{session_id}\t{card_id}\t{account_id}\t{started}\t{ended}\t{kwh}\t"
            f"{changed}\t{session_data}\t{self.session_tails[place]}"
        )
        cdr_line = (
            f"{cdr_row_id}\t{cdr_id}\t{cdr_id}\t{session_id}\t{card_id}\t{account_id}\t{drivers.uids[token]}\t"
            f"{started}\t{ended}\t{kwh}\t{total_time}\t{excl}\t{NULL if incl is None else incl}\t{changed}\t"
            f"{_z(received)}\t{cdr_data}\t{self.cdr_tails[place]}"
        )
        return session_line, cdr_line


def _cdr_location(connector: ConnectorRef) -> dict[str, Any]:
    return {
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
    }
