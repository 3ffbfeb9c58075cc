"""Locations of CPOs: store, patch and read them (OCPI mod_locations), for the Receiver, the importers and the
pull client alike.

Storage: one ``Location`` row per (country_code, party_id, id) with the queried columns and the Location JSON
*without* its EVSEs; one ``Evse`` row per EVSE (JSON without connectors, status = live availability, sanitised
``max_power_kw``) and one ``Connector`` row per connector. The full object is the composition of the three
(:func:`location_object`), so a status PATCH touches one small row.

Identity: location ids, EVSE uids and connector ids are CiStrings. A location is found by its folded key
(``Location.ocpi_id_key``, unique per party), EVSEs and connectors by comparing folded ids, so a GET, PATCH or
PUT naming ``loc1`` reaches the location stored as ``LOC1`` instead of missing it or creating a second one.

Ordering: OCPI pushes may arrive out of order. A PUT or PATCH whose ``last_updated`` is *older* than the one we
hold for that object is acknowledged (the sender did nothing wrong) but not applied, so newer data is never
overwritten by a late message. An equal ``last_updated`` is applied again (idempotent repeat).

A full PUT replaces: EVSEs (and connectors) missing from it are removed from our copy, since the CPO's object is
the truth. (CPOs are told to mark EVSEs REMOVED rather than drop them; a REMOVED EVSE is kept as such.)

Many Locations at once (importers, pull client): ``upsert_locations`` in :mod:`app.roaming.receive.location_store`
(re-exported here with ``BatchResult``), same rules, written as batches of differences.

Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from app.extensions import db
from app.ocpi_ids import ci_equal, ci_key
from app.roaming.models import Connector, Evse, Location, Partner
from app.roaming.ocpi.reader import InvalidObjectError, to_datetime
from app.roaming.receive.location_store import BatchResult, store_locations, upsert_locations, validate_locations
from app.roaming.receive.location_validation import (
    CONNECTOR_FIELDS,
    EVSE_FIELDS,
    LOCATION_FIELDS,
    ConnectorRecord,
    EvseRecord,
    LocationRecord,
    UnknownObjectError,
    sanitise_power_w,
    validate_connector,
    validate_evse,
    validate_location,
)
from app.timestamps import ocpi_timestamp

__all__ = [
    "BatchResult",
    "InvalidObjectError",
    "UnknownObjectError",
    "connector_object",
    "evse_object",
    "get_connector",
    "get_evse",
    "get_location",
    "location_object",
    "patch_connector",
    "patch_evse",
    "patch_location",
    "store_locations",
    "upsert_connector",
    "upsert_evse",
    "upsert_location",
    "upsert_locations",
    "validate_locations",
]


# ------------------------------------------------------------------------------------------------ reading


def _with_children() -> LoaderOption:
    return selectinload(Location.evses).selectinload(Evse.connectors)


def get_location(country_code: str, party_id: str, location_id: str) -> Location | None:
    return db.session.scalar(
        select(Location)
        .options(_with_children())
        .where(
            Location.country_code == ci_key(country_code),
            Location.party_id == ci_key(party_id),
            Location.ocpi_id_key == ci_key(location_id),
        )
    )


def get_evse(location: Location, evse_uid: str) -> Evse | None:
    key = ci_key(evse_uid)  # a CiString, like every OCPI id
    return next((evse for evse in location.evses if ci_key(evse.uid) == key), None)


def get_connector(evse: Evse, connector_id: str) -> Connector | None:
    key = ci_key(connector_id)
    return next((c for c in evse.connectors if ci_key(c.connector_id) == key), None)


def _require_location(country_code: str, party_id: str, location_id: str) -> Location:
    location = get_location(country_code, party_id, location_id)
    if location is None:
        raise UnknownObjectError(f"Unknown Location {country_code}/{party_id}/{location_id}")
    return location


def _require_evse(location: Location, evse_uid: str) -> Evse:
    evse = get_evse(location, evse_uid)
    if evse is None:
        raise UnknownObjectError(f"Unknown EVSE {evse_uid} of Location {location.ocpi_id}")
    return evse


def _require_connector(evse: Evse, connector_id: str) -> Connector:
    connector = get_connector(evse, connector_id)
    if connector is None:
        raise UnknownObjectError(f"Unknown Connector {connector_id} of EVSE {evse.uid}")
    return connector


def _strict(data: dict[str, Any], fields: tuple[str, ...], strict: bool) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in fields} if strict else dict(data)


def connector_object(connector: Connector, *, strict: bool = True) -> dict[str, Any]:
    """The OCPI Connector as stored; ``strict`` keeps only 2.2.1 field names (what we send out)."""
    obj = _strict(connector.data, CONNECTOR_FIELDS, strict)
    obj["last_updated"] = ocpi_timestamp(connector.last_updated)
    return obj


def evse_object(evse: Evse, *, strict: bool = True) -> dict[str, Any]:
    obj = _strict(evse.data, EVSE_FIELDS, strict)
    obj["status"] = evse.status
    obj["connectors"] = [connector_object(c, strict=strict) for c in evse.connectors]
    obj["last_updated"] = ocpi_timestamp(evse.last_updated)
    return obj


def location_object(location: Location, *, strict: bool = True) -> dict[str, Any]:
    obj = _strict(location.data, LOCATION_FIELDS, strict)
    if location.evses:
        obj["evses"] = [evse_object(e, strict=strict) for e in location.evses]
    obj["last_updated"] = ocpi_timestamp(location.last_updated)
    return obj


# ------------------------------------------------------------------------------------------------ applying


def _apply_connector(connector: Connector, record: ConnectorRecord) -> None:
    connector.connector_id = record.connector_id
    connector.standard = record.standard
    connector.format = record.format
    connector.power_type = record.power_type
    connector.max_voltage = record.max_voltage
    connector.max_amperage = record.max_amperage
    connector.max_electric_power = record.max_electric_power
    connector.tariff_ids = record.tariff_ids
    connector.data = record.data
    connector.last_updated = record.last_updated


def _apply_evse(evse: Evse, record: EvseRecord) -> None:
    evse.uid = record.uid
    evse.evse_id = record.evse_id
    evse.status = record.status
    evse.max_power_kw = record.max_power_kw
    evse.data = record.data
    evse.last_updated = record.last_updated
    existing = {ci_key(c.connector_id): c for c in evse.connectors} if evse.id is not None else {}
    connectors = []
    for item in record.connectors:
        connector = existing.pop(ci_key(item.connector_id), None) or Connector()
        _apply_connector(connector, item)
        connectors.append(connector)
    evse.connectors = connectors  # connectors no longer sent are deleted (delete-orphan)


def _apply_location(location: Location, record: LocationRecord, partner: Partner | None) -> None:
    if partner is not None:
        location.partner_id = partner.id
    location.country_code = record.country_code
    location.party_id = record.party_id
    location.ocpi_id = record.ocpi_id
    location.name = record.name
    location.address = record.address
    location.city = record.city
    location.postal_code = record.postal_code
    location.country = record.country
    location.latitude = record.latitude
    location.longitude = record.longitude
    location.time_zone = record.time_zone
    location.operator_name = record.operator_name
    location.publish = record.publish
    location.data = record.data
    location.last_updated = record.last_updated
    existing = {ci_key(e.uid): e for e in location.evses} if location.id is not None else {}
    evses = []
    for item in record.evses:
        evse = existing.pop(ci_key(item.uid), None) or Evse()
        _apply_evse(evse, item)
        evses.append(evse)
    location.evses = evses


def _touch(*parents: Location | Evse, moment: dt.datetime) -> None:
    """A child changed: its parents' last_updated becomes the child's (never moves backwards)."""
    for parent in parents:
        if moment > parent.last_updated:
            parent.last_updated = moment


def _check_key(record_value: str, url_value: str, name: str) -> None:
    if record_value.upper() != url_value.upper():
        raise InvalidObjectError(f"{name} {record_value!r} does not match the URL ({url_value!r})", name)


# ------------------------------------------------------------------------------------------------ PUT


def upsert_location(
    data: dict[str, Any], *, partner: Partner | None, country_code: str, party_id: str, location_id: str | None = None
) -> Location:
    """Create or replace a Location (with its EVSEs and connectors). Older than what we hold → not applied."""
    record = validate_location(data)
    _check_key(record.country_code, country_code, "country_code")
    _check_key(record.party_id, party_id, "party_id")
    if location_id is not None and not ci_equal(record.ocpi_id, location_id):
        raise InvalidObjectError(f"id {record.ocpi_id!r} does not match the URL ({location_id!r})", "id")
    location = get_location(record.country_code, record.party_id, record.ocpi_id)
    if location is None:
        location = Location()
        db.session.add(location)
    elif location.last_updated > record.last_updated:
        return location
    _apply_location(location, record, partner)
    db.session.flush()
    return location


def upsert_evse(
    data: dict[str, Any], *, partner: Partner | None, country_code: str, party_id: str, location_id: str, evse_uid: str
) -> Evse:
    """PUT of one EVSE into a known Location; the Location's last_updated follows."""
    record = validate_evse(data)
    if not ci_equal(record.uid, evse_uid):
        raise InvalidObjectError(f"uid {record.uid!r} does not match the URL ({evse_uid!r})", "uid")
    location = _require_location(country_code, party_id, location_id)
    evse = get_evse(location, evse_uid)
    if evse is None:
        evse = Evse()
        location.evses.append(evse)
    elif evse.last_updated > record.last_updated:
        return evse
    _apply_evse(evse, record)
    _touch(location, moment=record.last_updated)
    if partner is not None:
        location.partner_id = partner.id
    db.session.flush()
    return evse


def upsert_connector(
    data: dict[str, Any],
    *,
    partner: Partner | None,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
    connector_id: str,
) -> Connector:
    """PUT of one Connector into a known EVSE; EVSE and Location last_updated follow."""
    record = validate_connector(data)
    if not ci_equal(record.connector_id, connector_id):
        raise InvalidObjectError(f"id {record.connector_id!r} does not match the URL ({connector_id!r})", "id")
    location = _require_location(country_code, party_id, location_id)
    evse = _require_evse(location, evse_uid)
    connector = get_connector(evse, connector_id)
    if connector is None:
        connector = Connector()
        evse.connectors.append(connector)
    elif connector.last_updated > record.last_updated:
        return connector
    _apply_connector(connector, record)
    _refresh_power(evse)
    _touch(evse, location, moment=record.last_updated)
    db.session.flush()
    return connector


def _refresh_power(evse: Evse) -> None:
    """A connector changed: the EVSE's sanitised maximum power is recomputed from its connectors."""
    powers = [
        sanitise_power_w(c.max_electric_power, c.power_type, c.max_voltage, c.max_amperage) for c in evse.connectors
    ]
    watts = [p for p in powers if p]
    evse.max_power_kw = (Decimal(max(watts)) / 1000).quantize(Decimal("0.001")) if watts else None


# ------------------------------------------------------------------------------------------------ PATCH


def _patch_time(patch: Any) -> dt.datetime:
    if not isinstance(patch, dict):
        raise InvalidObjectError("body must be a JSON object", "body")
    if patch.get("last_updated") is None:
        raise InvalidObjectError("last_updated is required in a PATCH", "last_updated")
    return to_datetime(patch["last_updated"], "last_updated")  # the reader's DateTime rule, window included


def _same_id(left: Any, right: Any) -> bool:
    """Whether two ids of a PATCH body and our copy name the same child (CiStrings; anything else as is)."""
    if isinstance(left, str) and isinstance(right, str):
        return ci_equal(left, right)
    return bool(left == right)


def _merge_list(current: list[dict[str, Any]], patch: Any, key: str, child: str | None, child_key: str | None) -> Any:
    """Merge a list of partial children into the stored list, matching on ``key`` (uid / id); new ones append."""
    if not isinstance(patch, list):
        return patch  # let validation name the error
    merged = [dict(item) for item in current]
    for item in patch:
        if not isinstance(item, dict):
            merged.append(item)
            continue
        target = next((m for m in merged if _same_id(m.get(key), item.get(key))), None)
        if target is None:
            merged.append(item)
        else:
            _merge_object(target, item, child, child_key)
    return merged


def _merge_object(target: dict[str, Any], patch: dict[str, Any], child: str | None, child_key: str | None) -> None:
    for name, value in patch.items():
        if child is not None and name == child and isinstance(target.get(child), list):
            target[name] = _merge_list(target[child], value, child_key or "id", None, None)
        else:
            target[name] = value


def patch_location(
    patch: dict[str, Any], *, partner: Partner | None, country_code: str, party_id: str, location_id: str
) -> Location:
    """Partial update of a Location; ``evses`` in the patch are merged by uid (their connectors by id)."""
    moment = _patch_time(patch)
    location = _require_location(country_code, party_id, location_id)
    if moment < location.last_updated:
        return location
    merged = location_object(location, strict=False)
    for name, value in patch.items():
        if name == "evses":
            merged["evses"] = _merge_list(merged.get("evses", []), value, "uid", "connectors", "id")
        else:
            merged[name] = value
    record = validate_location(merged)
    if (record.country_code, record.party_id, ci_key(record.ocpi_id)) != (
        location.country_code,
        location.party_id,
        location.ocpi_id_key,
    ):
        raise InvalidObjectError("country_code, party_id and id of a Location cannot be changed", "id")
    _apply_location(location, record, partner)
    db.session.flush()
    return location


def patch_evse(
    patch: dict[str, Any], *, partner: Partner | None, country_code: str, party_id: str, location_id: str, evse_uid: str
) -> Evse:
    """Partial update of an EVSE (typically its status: the live availability). The Location's last_updated
    follows."""
    moment = _patch_time(patch)
    location = _require_location(country_code, party_id, location_id)
    evse = _require_evse(location, evse_uid)
    if moment < evse.last_updated:
        return evse
    merged = evse_object(evse, strict=False)
    _merge_object(merged, patch, "connectors", "id")
    record = validate_evse(merged)
    if not ci_equal(record.uid, evse.uid):
        raise InvalidObjectError("uid of an EVSE cannot be changed", "uid")
    _apply_evse(evse, record)
    _touch(location, moment=record.last_updated)
    db.session.flush()
    return evse


def patch_connector(
    patch: dict[str, Any],
    *,
    partner: Partner | None,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str,
    connector_id: str,
) -> Connector:
    moment = _patch_time(patch)
    location = _require_location(country_code, party_id, location_id)
    evse = _require_evse(location, evse_uid)
    connector = _require_connector(evse, connector_id)
    if moment < connector.last_updated:
        return connector
    merged = connector_object(connector, strict=False)
    merged.update(patch)
    record = validate_connector(merged)
    if not ci_equal(record.connector_id, connector.connector_id):
        raise InvalidObjectError("id of a Connector cannot be changed", "id")
    _apply_connector(connector, record)
    _refresh_power(evse)
    _touch(evse, location, moment=record.last_updated)
    db.session.flush()
    return connector
