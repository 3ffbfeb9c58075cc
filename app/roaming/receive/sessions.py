"""Charging sessions received from CPOs (mod_sessions, we are the Receiver) and read by the pull client.

A session belongs to the account of its token: ``cdr_token`` is matched to one of our cards (uid + type) when
the token is ours (``country_code``/``party_id`` of the token = our own). A token of another e-MSP can reach us
through a hub or a misconfigured CPO; the session is stored anyway *without* card and account (OCPI has no
status code to refuse it, and refusing would make the CPO retry forever), so support can see it and nothing is
billed to a driver.

Ordering: OCPI gives no sequence numbers, only ``last_updated``. A PUT or PATCH older than what we hold is
acknowledged and ignored, so a delayed retry never overwrites newer data.

Price promise: when a session is first stored we freeze the tariff version in force at its start
(``frozen_tariff_id``); the driver is billed from that version whatever the CPO publishes later.

Derivable fields: a required field that real CPOs omit but that we can derive from what we hold is filled in
(and a note logged) rather than refusing the session: the ``contract_id`` of a token that is our card, the
``connector_id`` of an EVSE we know with a single connector. Never money or energy.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.cards.models import ISSUED_TOKEN_TYPES, Card, TokenType
from app.charging.models import ChargingSession
from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Connector, Evse, Location, Partner, TariffVersion
from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import (
    Bounds,
    InvalidObjectError,
    Shape,
    id_text,
    jsonable,
    optional_datetime,
    require_datetime,
    require_decimal,
    require_enum,
    require_object,
    require_str,
    to_datetime,
)
from app.roaming.receive.limits import (
    CURRENT_A,
    MAX_SESSION_DAYS,
    PERCENT,
    POWER_KW,
    PRICED_KWH,
    REPORTED_KWH,
    SESSION_AMOUNT,
    SESSION_HOURS,
    SESSION_KWH,
)
from app.roaming.receive.locations import get_evse, get_location

log = logging.getLogger(__name__)

SESSION_STATUSES = frozenset({"ACTIVE", "COMPLETED", "INVALID", "PENDING", "RESERVATION"})
AUTH_METHODS = frozenset({"AUTH_REQUEST", "COMMAND", "WHITELIST"})
TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})


def _dimension_bounds(energy: Bounds) -> dict[str, Bounds]:
    """Every CdrDimensionType (mod_cdrs) with the physical range of its volume. Pricing reads them, so an
    unknown type is refused (see the reader's docstring on enums)."""
    return {
        "CURRENT": CURRENT_A,
        "MAX_CURRENT": CURRENT_A,
        "MIN_CURRENT": CURRENT_A,
        "ENERGY": energy,
        "ENERGY_EXPORT": energy,
        "ENERGY_IMPORT": energy,
        "POWER": POWER_KW,
        "MAX_POWER": POWER_KW,
        "MIN_POWER": POWER_KW,
        "TIME": SESSION_HOURS,
        "PARKING_TIME": SESSION_HOURS,
        "RESERVATION_TIME": SESSION_HOURS,
        "STATE_OF_CHARGE": PERCENT,
    }


# A CDR's periods are priced (energy in kWh); a Session's are only kept (the official examples send Wh).
CDR_DIMENSIONS = _dimension_bounds(PRICED_KWH)
SESSION_DIMENSIONS = _dimension_bounds(REPORTED_KWH)
MAX_SESSION_LENGTH = dt.timedelta(days=MAX_SESSION_DAYS)

# The spec's limits of every field (mod_sessions and mod_cdrs §Object description), checked on the whole tree
# before anything is read or looked up; the numbers we read are bounded where they are read.
CDR_TOKEN_SHAPE: Shape = {"country_code": 2, "party_id": 3, "uid": 36, "contract_id": 36}
CHARGING_PERIOD_SHAPE: Shape = {"tariff_id": 36}
PRICE_SHAPE: Shape = {"excl_vat": SESSION_AMOUNT, "incl_vat": SESSION_AMOUNT}
SESSION_SHAPE: Shape = {
    "country_code": 2,
    "party_id": 3,
    "id": 36,
    "cdr_token": CDR_TOKEN_SHAPE,
    "authorization_reference": 36,
    "location_id": 36,
    "evse_uid": 36,
    "connector_id": 36,
    "meter_id": 255,
    "currency": 3,
    "charging_periods": CHARGING_PERIOD_SHAPE,
    "total_cost": PRICE_SHAPE,
}


def _our_token_type(cdr_token: dict[str, Any]) -> TokenType | None:
    """The type of a ``CdrToken`` we issued; None when the token is another e-MSP's."""
    config = current_app.config
    owner = (str(cdr_token.get("country_code", "")).upper(), str(cdr_token.get("party_id", "")).upper())
    if owner != (config["COMPANY_COUNTRY_CODE"].upper(), config["COMPANY_PARTY_ID"].upper()):
        return None
    token_type = cdr_token.get("type")
    return TokenType(token_type) if token_type in ISSUED_TOKEN_TYPES else None


def card_for_cdr_token(cdr_token: dict[str, Any]) -> Card | None:
    """Our card behind a ``CdrToken``, or None when the token is another e-MSP's or unknown to us."""
    token_type = _our_token_type(cdr_token)
    if token_type is None:
        return None
    # Card uids are kept folded (a CiString): a CPO's "04de0001" is our "04DE0001", by one index lookup.
    return db.session.scalar(
        select(Card).where(Card.uid == ci_key(str(cdr_token.get("uid"))), Card.token_type == token_type)
    )


def issued_token_key(cdr_token: dict[str, Any]) -> tuple[str, TokenType] | None:
    """``(uid, token type)`` of a ``CdrToken`` we issued (the card's unique key, the uid folded as our cards keep
    it); None for another e-MSP's."""
    token_type = _our_token_type(cdr_token)
    return (ci_key(str(cdr_token.get("uid"))), token_type) if token_type is not None else None


def missing(value: Any) -> bool:
    """Whether a field counts as not sent (absent, null or blank), as the reader's ``require`` sees it."""
    return value is None or (isinstance(value, str) and not value.strip())


def held_text(value: Any) -> str | None:
    """A key field as text for a lookup (numbers tolerated), None when missing."""
    text = id_text(value)
    return text.strip() if text is not None and text.strip() else None


def with_contract_id(cdr_token: Any) -> dict[str, Any] | None:
    """A copy of a ``CdrToken`` without ``contract_id`` that has our card's, when the token is our card (we issued
    both); None when nothing can be derived."""
    if not isinstance(cdr_token, dict) or not missing(cdr_token.get("contract_id")):
        return None
    card = card_for_cdr_token(cdr_token)
    if card is None or not card.contract_id:
        return None
    return {**cdr_token, "contract_id": card.contract_id}


def _with_derivable_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The Session with what we can derive filled in (see the module docstring); the CPO's values are kept."""
    derived: list[str] = []
    token = with_contract_id(data.get("cdr_token"))
    if token is not None:
        data = {**data, "cdr_token": token}
        derived.append("cdr_token.contract_id")
    if missing(data.get("connector_id")):
        connector_id = _single_connector_id(data)
        if connector_id is not None:
            data = {**data, "connector_id": connector_id}
            derived.append("connector_id")
    if derived:
        log.info(
            "session %s/%s/%s lacked %s: derived from what we hold",
            data.get("country_code"),
            data.get("party_id"),
            data.get("id"),
            ", ".join(derived),
        )
    return data


def _single_connector_id(data: dict[str, Any]) -> str | None:
    """The connector of the session's EVSE when the Location we hold gives that EVSE exactly one."""
    keys = [held_text(data.get(name)) for name in ("country_code", "party_id", "location_id", "evse_uid")]
    if None in keys:
        return None
    country_code, party_id, location_id, evse_uid = (key or "" for key in keys)
    location = get_location(country_code, party_id, location_id)
    evse = get_evse(location, evse_uid) if location is not None else None
    return evse.connectors[0].connector_id if evse is not None and len(evse.connectors) == 1 else None


def validate_cdr_token(obj: dict[str, Any], path: str) -> dict[str, Any]:
    token = require_object(obj, path)
    for field in ("country_code", "party_id", "uid", "contract_id"):
        require_str(obj, f"{path}.{field}", 36)
    require_enum(obj, f"{path}.type", TOKEN_TYPES)
    return token


def check_times(start: dt.datetime, end: dt.datetime | None) -> None:
    """A session or CDR ends after it starts, and lasts at most ``MAX_SESSION_DAYS``."""
    if end is None:
        return
    if end < start:
        raise InvalidObjectError("field end_date_time is before start_date_time", "end_date_time")
    if end - start > MAX_SESSION_LENGTH:
        raise InvalidObjectError(
            f"field end_date_time is more than {MAX_SESSION_DAYS} days after start_date_time", "end_date_time"
        )


def validate_charging_periods(
    obj: dict[str, Any], end: dt.datetime | None = None, dimension_bounds: dict[str, Bounds] = SESSION_DIMENSIONS
) -> list[dict[str, Any]]:
    """The periods' start times (none after ``end`` when given: the periods of a CDR lie within it; one may
    start *before* the start — Dutch CPOs send hour-aligned periods), and every dimension a known type with a
    volume in its physical range (``dimension_bounds``)."""
    periods = obj.get("charging_periods") or []
    if not isinstance(periods, list):
        raise InvalidObjectError("field charging_periods must be a list")
    for index, period in enumerate(periods):
        path = f"charging_periods[{index}]"
        if not isinstance(period, dict):
            raise InvalidObjectError(f"field {path} must be an object")
        if period.get("start_date_time") is None:
            raise InvalidObjectError(f"missing required field {path}.start_date_time")
        period_start = to_datetime(period["start_date_time"], f"{path}.start_date_time")
        if end is not None and period_start > end:
            raise InvalidObjectError(f"field {path}.start_date_time is after end_date_time", f"{path}.start_date_time")
        dimensions = period.get("dimensions")
        if not isinstance(dimensions, list) or not dimensions:
            raise InvalidObjectError(f"missing required field {path}.dimensions")
        for number, dimension in enumerate(dimensions):
            if not isinstance(dimension, dict) or "type" not in dimension or dimension.get("volume") is None:
                raise InvalidObjectError(f"field {path}.dimensions[{number}] needs type and volume")
            bounds = dimension_bounds.get(dimension["type"]) if isinstance(dimension["type"], str) else None
            if bounds is None:
                raise InvalidObjectError(
                    f"field {path}.dimensions[{number}].type must be one of {', '.join(sorted(dimension_bounds))}",
                    f"{path}.dimensions[{number}].type",
                )
            bounds.check(dimension["volume"], f"{path}.dimensions[{number}].volume")
    return periods


def _apply(session: ChargingSession, data: dict[str, Any]) -> None:
    """Validate a full Session object and copy it onto the row (the checks name the failing field)."""
    data = _with_derivable_fields(data)
    for field in ("country_code", "party_id"):
        require_str(data, field, 3)
    require_str(data, "id", 36)
    start = require_datetime(data, "start_date_time")
    end = optional_datetime(data, "end_date_time")
    check_times(start, end)
    kwh = require_decimal(data, "kwh", SESSION_KWH)
    cdr_token = validate_cdr_token(data, "cdr_token")
    require_enum(data, "auth_method", AUTH_METHODS)
    location_id = require_str(data, "location_id", 36)
    evse_uid = require_str(data, "evse_uid", 36)
    connector_id = require_str(data, "connector_id", 36)
    currency = require_str(data, "currency", 3)
    status = require_enum(data, "status", SESSION_STATUSES)
    last_updated = require_datetime(data, "last_updated")
    # Periods after the end are refused for CDRs (the billed record) only: a PATCH may add a period to a Session
    # whose stored end it also moves (the official patch example adds 2019 periods to a 2015 session).
    validate_charging_periods(data)
    if data.get("total_cost") is not None:
        require_decimal(data, "total_cost.excl_vat", SESSION_AMOUNT)

    card = card_for_cdr_token(cdr_token)
    session.card_id = card.id if card else None
    session.account_id = card.account_id if card else None
    session.status = status
    session.start_date_time = start
    session.end_date_time = end
    session.kwh = kwh
    session.location_ocpi_id = location_id
    session.evse_uid = evse_uid
    session.connector_id = connector_id
    session.currency = currency.upper()
    session.last_updated = last_updated
    session.data = jsonable(data)


def check_key(data: dict[str, Any], country_code: str, party_id: str, session_id: str) -> None:
    """transport_and_format: the URL and the object must name the same session."""
    for field, expected in (("country_code", country_code), ("party_id", party_id), ("id", session_id)):
        value = data.get(field)
        if value is not None and str(value).upper() != expected.upper():
            raise InvalidObjectError(f"field {field} ({value}) does not match the URL ({expected})")


def find_session(country_code: str, party_id: str, session_id: str) -> ChargingSession | None:
    """The session of the CPO's party with this id in any case, whoever delivered it (one unique-index lookup)."""
    return db.session.scalar(
        select(ChargingSession).where(
            ChargingSession.country_code == ci_key(country_code),
            ChargingSession.party_id == ci_key(party_id),
            ChargingSession.ocpi_id_key == ci_key(session_id),
        )
    )


def store_session(partner: Partner | None, data: dict[str, Any]) -> ChargingSession:
    """Create or replace a session from a full Session object (PUT, or one object of a pull).

    Returns the stored row; when ``data`` is older than what we hold, the row is returned unchanged.
    """
    if not isinstance(data, dict):
        raise InvalidObjectError("a Session must be a JSON object")
    check_tree(data, SESSION_SHAPE)  # before the first lookup: PostgreSQL cannot even compare a NUL
    country_code = require_str(data, "country_code", 2).upper()
    party_id = require_str(data, "party_id", 3).upper()
    session_id = require_str(data, "id", 36)
    existing = find_session(country_code, party_id, session_id)
    if existing is not None:
        if require_datetime(data, "last_updated") < existing.last_updated:
            return existing  # a stale update: keep the newer data
        _apply(existing, {**data, "country_code": country_code, "party_id": party_id})
        if partner is not None:
            existing.partner_id = partner.id
        _freeze_tariff_if_missing(existing)
        db.session.flush()
        return existing

    session = ChargingSession(
        partner_id=partner.id if partner else None, country_code=country_code, party_id=party_id, ocpi_id=session_id
    )
    _apply(session, {**data, "country_code": country_code, "party_id": party_id})
    try:
        with db.session.begin_nested():
            db.session.add(session)
            db.session.flush()
    except IntegrityError:
        # The same session PUT twice at the same moment: the other request stored it; replay on top of it.
        existing = find_session(country_code, party_id, session_id)
        if existing is None:
            raise
        return store_session(partner, data)
    _freeze_tariff_if_missing(session)
    db.session.flush()
    return session


def patch_session(
    partner: Partner | None, country_code: str, party_id: str, session_id: str, patch: dict[str, Any]
) -> ChargingSession | None:
    """Apply a PATCH: listed fields replace ours, ``charging_periods`` are appended (mod_sessions §PATCH).

    Returns None when the session is unknown. ``last_updated`` is required; an older patch is ignored.
    """
    if not isinstance(patch, dict):
        raise InvalidObjectError("a Session PATCH must be a JSON object")
    check_tree(patch, SESSION_SHAPE)
    last_updated = require_datetime(patch, "last_updated")
    check_key(patch, country_code, party_id, session_id)
    session = find_session(country_code, party_id, session_id)
    if session is None:
        return None
    if last_updated < session.last_updated:
        return session
    merged = dict(session.data)
    for key, value in patch.items():
        if key != "charging_periods":
            merged[key] = value
    new_periods = patch.get("charging_periods")
    if new_periods is not None and not isinstance(new_periods, list):  # list(true) was a 500
        raise InvalidObjectError("field charging_periods must be a list", "charging_periods")
    if new_periods:
        merged["charging_periods"] = list(merged.get("charging_periods") or []) + list(new_periods)
    _apply(session, merged)
    _freeze_tariff_if_missing(session)
    db.session.flush()
    return session


def session_object(session: ChargingSession) -> dict[str, Any]:
    """The Session as the CPO sent it (OCPI field names), with our normalised key fields."""
    return {**session.data, "country_code": session.country_code, "party_id": session.party_id, "id": session.ocpi_id}


# --- price promise -------------------------------------------------------------------------------------------


def _freeze_tariff_if_missing(session: ChargingSession) -> None:
    if session.frozen_tariff_id is None:
        tariff = tariff_in_force_for(session)
        if tariff is not None:
            session.frozen_tariff_id = tariff.id


def _period_tariff_id(data: dict[str, Any]) -> str | None:
    for period in data.get("charging_periods") or []:
        if isinstance(period, dict) and period.get("tariff_id"):
            return str(period["tariff_id"])
    return None


def tariff_in_force_for(session: ChargingSession) -> TariffVersion | None:
    """The tariff version that applied when the session started.

    The session itself may name the tariff (a charging period's ``tariff_id``); otherwise the connector's
    ``tariff_ids`` in the stored Location say which tariffs apply. The version lookup belongs to the tariffs
    module (``app.roaming.receive.tariffs``); a small fallback keeps sessions storable before that module exists.
    """
    at = session.start_date_time
    tariff_id = _period_tariff_id(session.data)
    if tariff_id is not None:
        return _tariff_version(session.country_code, session.party_id, tariff_id, at)
    location = db.session.scalar(
        select(Location).where(
            Location.country_code == session.country_code,
            Location.party_id == session.party_id,
            Location.ocpi_id_key == ci_key(session.location_ocpi_id),
        )
    )
    if location is None:
        return None
    tariffs_for_connector: Callable[[Location, str, str, dt.datetime], list[TariffVersion]] | None
    try:
        from app.roaming.receive.tariffs import tariffs_for_connector
    except ImportError:
        tariffs_for_connector = None
    if tariffs_for_connector is not None:
        try:
            found = tariffs_for_connector(location, session.evse_uid, session.connector_id, at)
        except LookupError:  # the CPO has not told us about this EVSE/connector (yet): nothing to freeze
            return None
        if isinstance(found, list | tuple):
            return found[0] if found else None
        return found
    connector = db.session.scalar(
        select(Connector)
        .join(Evse)
        .where(
            Evse.location_id == location.id,
            Evse.uid == session.evse_uid,
            Connector.connector_id == session.connector_id,
        )
    )
    for candidate in (connector.tariff_ids if connector else None) or []:
        version = _tariff_version(session.country_code, session.party_id, candidate, at)
        if version is not None:
            return version
    return None


def _tariff_version(country_code: str, party_id: str, tariff_id: str, at: dt.datetime) -> TariffVersion | None:
    tariff_in_force: Callable[[str, str, str, dt.datetime], TariffVersion | None] | None
    try:
        from app.roaming.receive.tariffs import tariff_in_force
    except ImportError:
        tariff_in_force = None
    if tariff_in_force is not None:
        return tariff_in_force(country_code, party_id, tariff_id, at)
    # Fallback: the newest version published before the start, else the oldest we have.
    base = select(TariffVersion).where(
        TariffVersion.country_code == country_code,
        TariffVersion.party_id == party_id,
        TariffVersion.ocpi_id_key == ci_key(tariff_id),
    )
    version = db.session.scalar(
        base.where(TariffVersion.last_updated <= at).order_by(TariffVersion.last_updated.desc()).limit(1)
    )
    return version or db.session.scalar(base.order_by(TariffVersion.last_updated).limit(1))
