"""Validation of OCPI 2.2.1 Location / EVSE / Connector objects (mod_locations §Object description).

Tolerant in, but never store what the finder or pricing cannot use: every field the spec marks required
(cardinality 1 or +) must be present, every field we keep in a column must fit it, and every error names the
JSON path of the field (``evses[0].connectors[0].power_type is required``) so a partner can find it.
Unknown fields are kept untouched in the JSON ``data``. This module says *which* fields each object has and
their bounds; *how* a field is read (and worded when it is wrong) is the roaming reader's
(:class:`app.roaming.ocpi.reader.FieldReader`, which raises :class:`~app.roaming.ocpi.reader.InvalidObjectError`).

The result is a tree of plain records (``LocationRecord`` → ``EvseRecord`` → ``ConnectorRecord``) holding the
column values and the JSON of each level *without* its children (children live in their own rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import FieldReader, Shape, join_path, jsonable, raise_collected
from app.roaming.receive.limits import (
    AMPERAGE_A,
    GRAMS_PER_KWH,
    MAX_POWER_W,
    PERCENT,
    PIXELS,
    RAW_POWER_W,
    VOLTAGE_V,
    WEEKDAY,
)

EVSE_STATUSES = frozenset(
    {"AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED", "REMOVED", "RESERVED", "UNKNOWN"}
)
POWER_TYPES = frozenset({"AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"})
PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}

# The 2.2.1 field names per object: what we output (strict out). Anything else a partner sent stays in data.
LOCATION_FIELDS = (
    "country_code",
    "party_id",
    "id",
    "publish",
    "publish_allowed_to",
    "name",
    "address",
    "city",
    "postal_code",
    "state",
    "country",
    "coordinates",
    "related_locations",
    "parking_type",
    "evses",
    "directions",
    "operator",
    "suboperator",
    "owner",
    "facilities",
    "time_zone",
    "opening_times",
    "charging_when_closed",
    "images",
    "energy_mix",
    "last_updated",
)
EVSE_FIELDS = (
    "uid",
    "evse_id",
    "status",
    "status_schedule",
    "capabilities",
    "connectors",
    "floor_level",
    "coordinates",
    "physical_reference",
    "directions",
    "parking_restrictions",
    "images",
    "last_updated",
)
CONNECTOR_FIELDS = (
    "id",
    "standard",
    "format",
    "power_type",
    "max_voltage",
    "max_amperage",
    "max_electric_power",
    "tariff_ids",
    "terms_and_conditions",
    "last_updated",
)


# The spec's limits of every field of the objects (mod_locations §Object description and §Data types,
# types.asciidoc), checked on the whole tree before anything is read (``check_tree``): a string longer than its
# string(n) / CiString(n) / URL (255), a number outside its range. Fields read below are also bounded there.
DISPLAY_TEXT: Shape = {"language": 2, "text": 512}
GEO_LOCATION: Shape = {"latitude": 10, "longitude": 11}
IMAGE: Shape = {"url": 255, "thumbnail": 255, "type": 4, "width": PIXELS, "height": PIXELS}
BUSINESS_DETAILS: Shape = {"name": 100, "website": 255, "logo": IMAGE}
ENERGY_MIX: Shape = {
    "energy_sources": {"percentage": PERCENT},
    "environ_impact": {"amount": GRAMS_PER_KWH},
    "supplier_name": 64,
    "energy_product_name": 64,
}
CONNECTOR_SHAPE: Shape = {"id": 36, "tariff_ids": 36, "terms_and_conditions": 255}
EVSE_SHAPE: Shape = {
    "uid": 36,
    "evse_id": 48,
    "connectors": CONNECTOR_SHAPE,
    "floor_level": 4,
    "coordinates": GEO_LOCATION,
    "physical_reference": 16,
    "directions": DISPLAY_TEXT,
    "images": IMAGE,
}
LOCATION_SHAPE: Shape = {
    "country_code": 2,
    "party_id": 3,
    "id": 36,
    "publish_allowed_to": {"uid": 36, "visual_number": 64, "issuer": 64, "group_id": 36},
    "name": 255,
    "address": 255,
    "city": 45,
    "postal_code": 10,
    "state": 45,
    "country": 3,
    "coordinates": GEO_LOCATION,
    "related_locations": {**GEO_LOCATION, "name": DISPLAY_TEXT},
    "evses": EVSE_SHAPE,
    "directions": DISPLAY_TEXT,
    "operator": BUSINESS_DETAILS,
    "suboperator": BUSINESS_DETAILS,
    "owner": BUSINESS_DETAILS,
    "time_zone": 255,
    "opening_times": {"regular_hours": {"weekday": WEEKDAY, "period_begin": 5, "period_end": 5}},
    "images": IMAGE,
    "energy_mix": ENERGY_MIX,
}


class UnknownObjectError(LookupError):
    """The Location / EVSE / Connector / Tariff addressed does not exist (OCPI 2003 for locations)."""


@dataclass
class ConnectorRecord:
    connector_id: str
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None  # raw, as the CPO sent it
    power_w: int | None  # sanitised, see sanitise_power_w
    tariff_ids: list[str]
    data: dict[str, Any]
    last_updated: dt.datetime


@dataclass
class EvseRecord:
    uid: str
    evse_id: str | None
    status: str
    max_power_kw: Decimal | None
    data: dict[str, Any]  # without "connectors"
    last_updated: dt.datetime
    connectors: list[ConnectorRecord] = field(default_factory=list)


@dataclass
class LocationRecord:
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
    publish: bool
    data: dict[str, Any]  # without "evses"
    last_updated: dt.datetime
    evses: list[EvseRecord] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.country_code, self.party_id, self.ocpi_id)


def _coordinate(reader: FieldReader, name: str, limit: int) -> Decimal | None:
    """GeoLocation values are strings in 2.2.1; numbers are tolerated. Stored with 7 decimals (about 1 cm)."""
    value = reader.decimal(name, limit=limit)
    return None if value is None else value.quantize(Decimal("0.0000001"), rounding=ROUND_HALF_UP)


def sanitise_power_w(
    raw: int | None, power_type: str | None, max_voltage: int | None, max_amperage: int | None
) -> int | None:
    """The usable maximum power of a connector in W, coping with the quirks of real feeds.

    Rule (documented for the finder and estimates; the raw value stays untouched in the JSON):
    - nominal power = max_voltage × max_amperage × phases (3 for AC_3_PHASE, 2 for AC_2_PHASE*, else 1);
    - no ``max_electric_power`` (or ≤ 0) → the nominal power;
    - a value about 1000× too small (< 1/100 of nominal, or < 1,000 W when nominal is unknown) was sent in kW
      instead of W → × 1000;
    - a value about 1000× too large (> 100 × nominal, or > 2,000,000 W when nominal is unknown) was sent in mW
      → ÷ 1000;
    - otherwise the value as sent (it may legitimately be below nominal: a 920 V/400 A DC charger limited to
      150 kW; values somewhat above nominal are kept, they usually mean a wrong phase count, not a wrong unit).
    """
    nominal = None
    if max_voltage and max_amperage and max_voltage > 0 and max_amperage > 0:
        nominal = max_voltage * max_amperage * PHASES.get(power_type or "", 1)
    if raw is None or raw <= 0:
        return nominal
    if nominal:
        if raw * 100 < nominal:
            return raw * 1000
        if raw > nominal * 100:
            return raw // 1000
        return raw
    if raw < 1000:
        return raw * 1000
    if raw > 2_000_000:
        return raw // 1000
    return raw


def evse_max_power_kw(connectors: list[ConnectorRecord]) -> Decimal | None:
    powers = [c.power_w for c in connectors if c.power_w]
    if not powers:
        return None
    return (Decimal(max(powers)) / 1000).quantize(Decimal("0.001"))


def _json_value(value: Any, plain: bool) -> Any:
    """The JSON kept in a ``data`` column: a copy with every ``Decimal`` a JSON number again (``jsonable``), or,
    for ``plain`` input (parsed by ``json.loads``: no Decimal in it, and no one else holds it), the value itself.
    The copy costs about a fifth of a Location's validation, which the importers save."""
    return value if plain else jsonable(value)


def _connector(obj: Any, path: str, errors: list[tuple[str, str]], plain: bool = False) -> ConnectorRecord | None:
    r = FieldReader(obj, path, errors)
    before = len(errors)
    connector_id = r.string("id", 36)
    standard = r.string("standard", 40)
    fmt = r.string("format", 10)
    power_type = r.choice("power_type", POWER_TYPES)
    max_voltage = r.integer("max_voltage", VOLTAGE_V)
    max_amperage = r.integer("max_amperage", AMPERAGE_A)
    max_electric_power = r.integer("max_electric_power", RAW_POWER_W, required=False)
    tariff_ids = r.items("tariff_ids", required=False)
    for i, tariff_id in enumerate(tariff_ids):
        if not isinstance(tariff_id, str) or len(tariff_id) > 36:
            errors.append((f"{join_path(path, 'tariff_ids')}[{i}]", "must be a string of at most 36 characters"))
    last_updated = r.timestamp("last_updated")
    if len(errors) > before:
        return None
    # No error collected, so every required field was read (FieldReader returns None for one only with an error).
    assert (
        connector_id is not None
        and standard is not None
        and fmt is not None
        and power_type is not None
        and max_voltage is not None
        and max_amperage is not None
        and last_updated is not None
    )
    power_w = sanitise_power_w(max_electric_power, power_type, max_voltage, max_amperage)
    if power_w is not None and power_w > MAX_POWER_W:
        # Even read in the unit the feed most likely meant: no charger delivers more than 4 MW.
        r.fail(
            "max_electric_power" if max_electric_power else "max_amperage",
            f"gives {power_w} W, more than the {MAX_POWER_W} W no charger exceeds",
        )
        return None
    return ConnectorRecord(
        connector_id,
        standard,
        fmt,
        power_type,
        max_voltage,
        max_amperage,
        max_electric_power,
        power_w,
        list(tariff_ids),
        _json_value(r.obj, plain),
        last_updated,
    )


def _evse(obj: Any, path: str, errors: list[tuple[str, str]], plain: bool = False) -> EvseRecord | None:
    r = FieldReader(obj, path, errors)
    before = len(errors)
    uid = r.string("uid", 36)
    evse_id = r.string("evse_id", 48, required=False)
    status = r.choice("status", EVSE_STATUSES)
    connectors = []
    seen: set[str] = set()
    for i, item in enumerate(r.items("connectors", required=True, non_empty=True)):
        connector = _connector(item, f"{join_path(path, 'connectors')}[{i}]", errors, plain)
        if connector is not None:
            if connector.connector_id in seen:
                errors.append((f"{join_path(path, 'connectors')}[{i}].id", "is not unique within the EVSE"))
            seen.add(connector.connector_id)
            connectors.append(connector)
    if r.obj.get("coordinates") is not None:
        geo = FieldReader(r.obj["coordinates"], join_path(path, "coordinates"), errors)
        _coordinate(geo, "latitude", 90)
        _coordinate(geo, "longitude", 180)
    last_updated = r.timestamp("last_updated")
    if len(errors) > before:
        return None
    # No error collected, so every required field was read (FieldReader returns None for one only with an error).
    assert uid is not None and status is not None and last_updated is not None
    # JSON numbers again (the HTTP door reads exact Decimals): the data columns are JSON.
    data = _json_value({key: value for key, value in r.obj.items() if key != "connectors"}, plain)
    return EvseRecord(uid, evse_id, status, evse_max_power_kw(connectors), data, last_updated, connectors)


def validate_connector(obj: Any) -> ConnectorRecord:
    check_tree(obj, CONNECTOR_SHAPE)
    errors: list[tuple[str, str]] = []
    record = _connector(obj, "", errors)
    raise_collected(errors)
    assert record is not None  # None only with an error, which raise_collected raised
    return record


def validate_evse(obj: Any) -> EvseRecord:
    check_tree(obj, EVSE_SHAPE)
    errors: list[tuple[str, str]] = []
    record = _evse(obj, "", errors)
    raise_collected(errors)
    assert record is not None  # None only with an error, which raise_collected raised
    return record


def validate_location(obj: Any, *, plain_json: bool = False) -> LocationRecord:
    """Validate a whole Location (with its EVSEs and Connectors); raise InvalidObjectError naming the fields.

    ``plain_json``: ``obj`` was parsed by ``json.loads`` (no ``Decimal``) and its caller lets it go, so the
    records' ``data`` may share its values instead of copies (the importers; see ``_json_value``)."""
    check_tree(obj, LOCATION_SHAPE)
    errors: list[tuple[str, str]] = []
    r = FieldReader(obj, "", errors)
    country_code = r.string("country_code", 2, upper=True)
    party_id = r.string("party_id", 3, upper=True)
    ocpi_id = r.string("id", 36)
    publish = r.boolean("publish")
    name = r.string("name", 255, required=False)
    address = r.string("address", 255)
    city = r.string("city", 45)
    postal_code = r.string("postal_code", 10, required=False)
    country = r.string("country", 3)
    geo = FieldReader(r.obj.get("coordinates"), "coordinates", errors) if r.present("coordinates", True) else None
    latitude = _coordinate(geo, "latitude", 90) if geo else None
    longitude = _coordinate(geo, "longitude", 180) if geo else None
    time_zone = r.string("time_zone", 64)
    operator = r.obj.get("operator")
    operator_name = None
    if operator is not None:
        op = FieldReader(operator, "operator", errors)
        operator_name = op.string("name", 100)
    evses = []
    seen: set[str] = set()
    for i, item in enumerate(r.items("evses", required=False)):
        evse = _evse(item, f"evses[{i}]", errors, plain_json)
        if evse is not None:
            if evse.uid in seen:
                errors.append((f"evses[{i}].uid", "is not unique within the Location"))
            seen.add(evse.uid)
            evses.append(evse)
    last_updated = r.timestamp("last_updated")
    raise_collected(errors)
    # No error, so every required field was read (FieldReader returns None for one only with an error; the
    # coordinates are required, so geo was read too).
    assert (
        country_code is not None
        and party_id is not None
        and ocpi_id is not None
        and address is not None
        and city is not None
        and country is not None
        and latitude is not None
        and longitude is not None
        and publish is not None
        and last_updated is not None
    )
    data = _json_value({key: value for key, value in r.obj.items() if key != "evses"}, plain_json)
    return LocationRecord(
        country_code,
        party_id,
        ocpi_id,
        name,
        address,
        city,
        postal_code,
        country,
        latitude,
        longitude,
        time_zone,
        operator_name,
        publish,
        data,
        last_updated,
        evses,
    )
