"""Charge detail records received from CPOs (mod_cdrs, we are the Receiver) and read by the pull client.

A CDR is the sealed record we bill from, so it is stored exactly once and never changed: the natural key is
the CPO's (country_code, party_id, id), whoever delivers it, with the id compared case-insensitively (a CiString:
``ocpi_id_key``, see :mod:`app.ocpi_ids`) under a unique constraint. A repeat (a CPO retry after a lost
response, the same CDR through push and pull, a hub relaying what the CPO sent us directly, ``replay1`` after
``REPLAY1``) is recognised and answered as a success with the same URL; it is not stored, linked or rated again.

Money is never a float: amounts go from the JSON text to ``Decimal`` columns (see ``app.roaming.ocpi.reader``).
This module only stores; rating (CPO cost, our fees, VAT) is wired by the billing side on top of it.

Derivable fields: OCPI requires them, real CPOs omit them, and we can derive them from what we hold, so a CDR
missing only those is accepted with them filled in (and a note logged) rather than refused and its session lost
(:func:`with_derivable_fields`): ``cdr_location.evse_uid`` from ``evse_id`` (the EVSE of the Location we hold
with that evse_id, else the evse_id itself), ``evse_id``, ``connector_id`` (an EVSE with one connector) and the
connector's standard, format and power type from the Location we hold, its address, city, country and
coordinates, ``total_time`` (end minus start, as the field is defined) and the ``contract_id`` of a token that is
our card. Never money or energy: a CDR without them is refused.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, true, update

from app.cards.models import Card
from app.charging.models import Cdr
from app.db_session import attach_as_loaded, insert_or_ignore
from app.extensions import db
from app.ocpi_ids import ci_key, ci_key_or_none
from app.roaming.models import Evse, Location, Partner
from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import (
    InvalidObjectError,
    Shape,
    jsonable,
    optional_bool,
    optional_decimal,
    optional_str,
    require,
    require_datetime,
    require_decimal,
    require_enum,
    require_object,
    require_str,
    to_datetime,
)
from app.roaming.receive.limits import LATITUDE, LONGITUDE, SESSION_AMOUNT, SESSION_HOURS, SESSION_KWH
from app.roaming.receive.location_validation import GEO_LOCATION
from app.roaming.receive.locations import get_connector, get_evse, get_location
from app.roaming.receive.sessions import (
    AUTH_METHODS,
    CDR_DIMENSIONS,
    CDR_TOKEN_SHAPE,
    CHARGING_PERIOD_SHAPE,
    PRICE_SHAPE,
    check_times,
    held_text,
    issued_token_key,
    missing,
    validate_cdr_token,
    validate_charging_periods,
    with_contract_id,
)
from app.roaming.receive.tariffs import TARIFF_SHAPE

log = logging.getLogger(__name__)

CDR_LOCATION_FIELDS = (
    "id",
    "address",
    "city",
    "country",
    "evse_uid",
    "evse_id",
    "connector_id",
    "connector_standard",
    "connector_format",
    "connector_power_type",
)

# The spec's limits of every field (mod_cdrs §Object description), checked on the whole tree before anything is
# read or looked up (the invoice run reads the stored document back). One deliberate exception: the CdrLocation
# address and state take the Location's limits (255 and 45, not 45 and 20), since a CPO copies them from the
# Location, where the same spec allows them; refusing a billable CDR for that would lose the session.
CDR_LOCATION_SHAPE: Shape = {
    "id": 36,
    "name": 255,
    "address": 255,
    "city": 45,
    "postal_code": 10,
    "state": 45,
    "country": 3,
    "coordinates": GEO_LOCATION,
    "evse_uid": 36,
    "evse_id": 48,
    "connector_id": 36,
}
SIGNED_DATA_SHAPE: Shape = {
    "encoding_method": 36,
    "public_key": 512,
    "url": 512,
    "signed_values": {"nature": 32, "plain_data": 5000, "signed_data": 5000},
}
CDR_SHAPE: Shape = {
    "country_code": 2,
    "party_id": 3,
    "id": 39,
    "session_id": 36,
    "cdr_token": CDR_TOKEN_SHAPE,
    "authorization_reference": 36,
    "cdr_location": CDR_LOCATION_SHAPE,
    "meter_id": 255,
    "currency": 3,
    "tariffs": TARIFF_SHAPE,
    "charging_periods": CHARGING_PERIOD_SHAPE,
    "signed_data": SIGNED_DATA_SHAPE,
    "total_cost": PRICE_SHAPE,
    "total_fixed_cost": PRICE_SHAPE,
    "total_energy_cost": PRICE_SHAPE,
    "total_time_cost": PRICE_SHAPE,
    "total_parking_time": SESSION_HOURS,
    "total_parking_cost": PRICE_SHAPE,
    "total_reservation_cost": PRICE_SHAPE,
    "remark": 255,
    "invoice_reference_id": 39,
    "credit_reference_id": 39,
}


def _validate(data: dict[str, Any]) -> dict[str, Any]:
    """Check every field we rely on (after :func:`check_tree`); the error names the first missing or malformed
    one."""
    fields: dict[str, Any] = {
        "country_code": require_str(data, "country_code", 2).upper(),
        "party_id": require_str(data, "party_id", 3).upper(),
        "ocpi_id": require_str(data, "id", 39),
        "start_date_time": require_datetime(data, "start_date_time"),
        "end_date_time": require_datetime(data, "end_date_time"),
        "session_ocpi_id": optional_str(data, "session_id", 36),
    }
    check_times(fields["start_date_time"], fields["end_date_time"])
    cdr_token = validate_cdr_token(data, "cdr_token")
    require_enum(data, "auth_method", AUTH_METHODS)
    require_object(data, "cdr_location")
    for field in CDR_LOCATION_FIELDS:
        require_str(data, f"cdr_location.{field}", 255)
    # Coordinates must be present and on the globe; their plausibility is not ours to judge (cdr_example.json
    # has latitude and longitude swapped, which is valid).
    require_decimal(data, "cdr_location.coordinates.latitude", LATITUDE)
    require_decimal(data, "cdr_location.coordinates.longitude", LONGITUDE)
    fields["currency"] = require_str(data, "currency", 3).upper()
    require(data, "charging_periods")
    if not validate_charging_periods(data, fields["end_date_time"], CDR_DIMENSIONS):
        raise InvalidObjectError("missing required field charging_periods (at least one ChargingPeriod)")
    fields["total_cost_excl_vat"] = require_decimal(data, "total_cost.excl_vat", SESSION_AMOUNT)
    fields["total_cost_incl_vat"] = optional_decimal(data, "total_cost.incl_vat", SESSION_AMOUNT)
    fields["total_energy"] = require_decimal(data, "total_energy", SESSION_KWH)
    fields["total_time"] = require_decimal(data, "total_time", SESSION_HOURS)
    fields["last_updated"] = require_datetime(data, "last_updated")
    fields["credit"] = bool(optional_bool(data, "credit"))
    fields["credit_reference_id"] = optional_str(data, "credit_reference_id", 39)
    if fields["credit"] and not fields["credit_reference_id"]:
        raise InvalidObjectError("missing required field credit_reference_id (required for a credit CDR)")
    fields["token_uid"] = require_str(cdr_token, "uid", 36)
    fields["location_ocpi_id"] = require_str(data, "cdr_location.id", 36)
    fields["evse_uid"] = require_str(data, "cdr_location.evse_uid", 36)
    fields["country"] = require_str(data, "cdr_location.country", 3).upper()
    return fields


def find_cdr(country_code: str, party_id: str, cdr_id: str) -> Cdr | None:
    """The CDR of the CPO's party with this id in any case, whoever delivered it (one unique-index lookup)."""
    return db.session.scalar(
        select(Cdr).where(
            Cdr.country_code == ci_key(country_code),
            Cdr.party_id == ci_key(party_id),
            Cdr.ocpi_id_key == ci_key(cdr_id),
        )
    )


def store_cdr(partner: Partner, data: dict[str, Any]) -> tuple[Cdr, bool]:
    """Store a CDR once. Returns ``(cdr, created)``; a repeat returns the stored row and ``False``.

    Raises :class:`InvalidObjectError` (OCPI 2001, naming the field) before anything is written.

    The insert itself settles "new or repeat" (``ON CONFLICT DO NOTHING`` on the natural key): no lookup
    before it and no savepoint around it, which matters when a hub delivers a backlog of thousands.
    """
    if not isinstance(data, dict):
        raise InvalidObjectError("a CDR must be a JSON object")
    check_tree(data, CDR_SHAPE)  # before the first lookup: PostgreSQL cannot even compare a NUL
    data = with_derivable_fields(data)
    fields = _validate(data)
    # Our card behind the token is looked up inside the INSERT (two scalar subqueries): one round trip less.
    card_key = issued_token_key(data["cdr_token"])
    values = {
        **fields,
        "partner_id": partner.id,
        "data": jsonable(data),
        "ocpi_id_key": ci_key(fields["ocpi_id"]),
        "credit_reference_key": ci_key_or_none(fields["credit_reference_id"]),
        "card_uid": card_key[0] if card_key else None,
        "card_type": card_key[1] if card_key else None,
    }
    if fields["credit"]:
        original = find_cdr(fields["country_code"], fields["party_id"], fields["credit_reference_id"])
        values["original_cdr_id"] = original.id if original else None
        if original is None:
            log.warning("credit CDR %s refers to unknown CDR %s", fields["ocpi_id"], fields["credit_reference_id"])
    row = db.session.execute(_insert_statement(), values).first()
    if row is None:
        # Stored before: a retry, the same CDR through push and pull or through a hub, or two deliveries racing.
        existing = find_cdr(fields["country_code"], fields["party_id"], fields["ocpi_id"])
        if existing is None:
            raise RuntimeError(f"CDR {fields['ocpi_id']} conflicted on insert but cannot be found")
        return existing, False
    stored = {key: value for key, value in values.items() if key not in ("card_uid", "card_type")}
    cdr = attach_as_loaded(
        Cdr(**stored, id=row.id, received_at=row.received_at, card_id=row.card_id, account_id=row.account_id)
    )
    if not cdr.credit:
        # A credit CDR that arrived before its original (pull order is by last_updated) gets linked now.
        db.session.execute(
            _link_credits_statement,
            {
                "new_original_id": cdr.id,
                "b_country_code": cdr.country_code,
                "b_party_id": cdr.party_id,
                "b_key": values["ocpi_id_key"],
            },
        )
    return cdr, True


# ------------------------------------------------------------------------------------------------ derivable fields

CDR_PLACE_DERIVABLE = (
    "evse_uid",
    "evse_id",
    "connector_id",
    "connector_standard",
    "connector_format",
    "connector_power_type",
    "address",
    "city",
    "country",
    "coordinates",
)
_CONNECTOR_FIELDS = (
    ("connector_standard", "standard"),
    ("connector_format", "format"),
    ("connector_power_type", "power_type"),
)
_HOUR = Decimal(3600)


def with_derivable_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The CDR with the derivable fields it lacks filled in (a copy; see the module docstring). The CPO's own
    values are never replaced; what cannot be derived stays missing, for the validation to name. Looks anything
    up only when a field is missing."""
    derived: list[str] = []
    place = data.get("cdr_location")
    if isinstance(place, dict) and any(missing(place.get(name)) for name in CDR_PLACE_DERIVABLE):
        filled = _fill_place(data, dict(place), derived)
        if derived:
            data = {**data, "cdr_location": filled}
    if missing(data.get("total_time")):
        hours = _duration_hours(data)
        if hours is not None:
            data = {**data, "total_time": hours}
            derived.append("total_time")
    token = with_contract_id(data.get("cdr_token"))
    if token is not None:
        data = {**data, "cdr_token": token}
        derived.append("cdr_token.contract_id")
    if derived:
        log.info(
            "CDR %s/%s/%s lacked %s: derived from what we hold",
            data.get("country_code"),
            data.get("party_id"),
            data.get("id"),
            ", ".join(derived),
        )
    return data


def _fill_place(data: dict[str, Any], place: dict[str, Any], derived: list[str]) -> dict[str, Any]:
    """``place`` (a copy of the CdrLocation) completed from the Location we hold, as far as it names one."""

    def fill(name: str, value: Any) -> None:
        if missing(place.get(name)) and value is not None and value != "":
            place[name] = value
            derived.append(f"cdr_location.{name}")

    country_code, party_id = held_text(data.get("country_code")), held_text(data.get("party_id"))
    location_id = held_text(place.get("id"))
    location = get_location(country_code, party_id, location_id) if country_code and party_id and location_id else None
    evse_id = held_text(place.get("evse_id"))
    if missing(place.get("evse_uid")) and evse_id is not None:
        by_evse_id = _evse_with_evse_id(location, evse_id)
        fill("evse_uid", by_evse_id.uid if by_evse_id is not None else evse_id if len(evse_id) <= 36 else None)
    evse_uid = held_text(place.get("evse_uid"))
    evse = get_evse(location, evse_uid) if location is not None and evse_uid is not None else None
    if evse is not None:
        fill("evse_id", evse.evse_id)
        if len(evse.connectors) == 1:
            fill("connector_id", evse.connectors[0].connector_id)
    connector_id = held_text(place.get("connector_id"))
    connector = get_connector(evse, connector_id) if evse is not None and connector_id is not None else None
    if connector is not None:
        for name, attribute in _CONNECTOR_FIELDS:
            fill(name, getattr(connector, attribute))
    if location is not None:
        fill("address", location.address)
        fill("city", location.city)
        fill("country", location.country)
        coordinates = place.get("coordinates")
        if coordinates is None or (
            isinstance(coordinates, dict)
            and (missing(coordinates.get("latitude")) or missing(coordinates.get("longitude")))
        ):
            place["coordinates"] = {"latitude": str(location.latitude), "longitude": str(location.longitude)}
            derived.append("cdr_location.coordinates")
    return place


def _evse_with_evse_id(location: Location | None, evse_id: str) -> Evse | None:
    if location is None:
        return None
    key = ci_key(evse_id)  # a CiString, like every OCPI id
    return next((evse for evse in location.evses if evse.evse_id and ci_key(evse.evse_id) == key), None)


def _duration_hours(data: dict[str, Any]) -> Decimal | None:
    """``total_time`` as OCPI defines it: the whole session, end minus start, in hours (the column's 6 places)."""
    try:
        start = to_datetime(data.get("start_date_time"), "start_date_time")
        end = to_datetime(data.get("end_date_time"), "end_date_time")
    except InvalidObjectError:
        return None  # the validation names them
    if end < start:
        return None
    length = end - start
    microseconds = (length.days * 86_400 + length.seconds) * 1_000_000 + length.microseconds
    return (Decimal(microseconds) / 1_000_000 / _HOUR).quantize(Decimal("0.000001"), ROUND_HALF_UP)


# The statements of store_cdr are built once per process: building them per CDR (a few dozen bound values)
# cost more CPU than sending them.
_insert_statements: dict[str, Any] = {}


def _insert_statement() -> Any:
    dialect = db.session.get_bind().dialect.name
    statement = _insert_statements.get(dialect)
    if statement is None:
        table = Cdr.__table__
        card = select(Card).where(Card.uid == bindparam("card_uid"), Card.token_type == bindparam("card_type"))
        statement = _insert_statements[dialect] = (
            insert_or_ignore(table)
            .values(
                card_id=card.with_only_columns(Card.id).scalar_subquery(),
                account_id=card.with_only_columns(Card.account_id).scalar_subquery(),
            )
            .on_conflict_do_nothing(index_elements=["country_code", "party_id", "ocpi_id_key"])
            .returning(table.c.id, table.c.received_at, table.c.card_id, table.c.account_id)
        )
    return statement


_link_credits_statement = (
    update(cast(Table, Cdr.__table__))  # Core, not ORM: no session synchronisation for a bulk link
    .where(
        Cdr.country_code == bindparam("b_country_code"),
        Cdr.party_id == bindparam("b_party_id"),
        Cdr.credit == true(),  # "= true": matches the partial index
        Cdr.credit_reference_key == bindparam("b_key"),
        Cdr.original_cdr_id.is_(None),
    )
    .values(original_cdr_id=bindparam("new_original_id"))
)


def cdr_object(cdr: Cdr) -> dict[str, Any]:
    """The CDR as the CPO sent it (OCPI field names)."""
    return dict(cdr.data)
