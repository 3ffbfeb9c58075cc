"""Writing a batch of validated Locations (``write_locations``, called by
:mod:`app.roaming.receive.location_store`, whose ``upsert_locations`` the importers and the pull client use).

The rules are those of the Receiver's PUT (:func:`app.roaming.receive.locations.upsert_location`): a Location
older than the copy we hold is not applied (stale); otherwise it replaces our copy, EVSEs and connectors matched
by their CiString ids, those no longer sent removed. Only the way of writing differs, because per-object ORM work
(attribute events, a unit-of-work sort, one INSERT per row group) cost ~3 ms a location, 200 s for 70,000:

- what we hold is read in three Core queries per batch (locations, their EVSEs, their connectors), as plain rows;
- each incoming Location is compared with its rows in Python, and only what differs is written: a re-import of
  the same file reads and writes nothing else (idempotent, and faster than the first import);
- each kind of change is one statement for the whole batch: new rows through ``app.db_bulk`` (``COPY`` with ids
  taken from the sequence on PostgreSQL, a multi-row INSERT .. RETURNING on SQLite), changed rows in one
  executemany UPDATE per table, removed rows in one DELETE per table.

The finder's spatial index follows by itself: on PostgreSQL the GiST index on ``ll_to_earth(latitude, longitude)``
is maintained by the server for COPY and UPDATE alike; on SQLite the R*Tree's triggers fire for every inserted,
moved or deleted row of these statements as they do for the ORM's.

ORM objects of these tables that the session already holds are expired afterwards (their rows may have changed
under them); the session is flushed first, so no pending change of the caller is lost. Flushes, never commits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, ColumnElement, RowMapping, Table, Text, bindparam, cast, delete, select, update

from app.db_bulk import insert_returning_ids, insert_rows
from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Connector, Evse, Location
from app.roaming.receive.location_validation import ConnectorRecord, EvseRecord, LocationRecord

LocationKey = tuple[str, str, str]  # (country_code, party_id, ci_key(id))

LOCATIONS: Table = Location.__table__  # type: ignore[assignment]
EVSES: Table = Evse.__table__  # type: ignore[assignment]
CONNECTORS: Table = Connector.__table__  # type: ignore[assignment]
# The finder reads these on every search, through statements prepared while they may have been small: a feed
# that grows them many times over (a first import of 70,000 locations) refreshes their planner statistics
# (app.db_bulk.refresh_grown_statistics). Without it a search prepared while the tables were empty ran for over
# 10 minutes after a first import of the 7,609 shared locations (bench/bench_stale_plans.py).
LOCATION_TABLES = (LOCATIONS, EVSES, CONNECTORS)

# The columns each level writes, in the order of the records' values (see the *_values functions).
LOCATION_COLUMNS = (
    "country_code",
    "party_id",
    "ocpi_id",
    "ocpi_id_key",
    "name",
    "address",
    "city",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "time_zone",
    "operator_name",
    "publish",
    "data",
    "last_updated",
)
EVSE_COLUMNS = ("uid", "evse_id", "status", "max_power_kw", "data", "last_updated")
CONNECTOR_COLUMNS = (
    "connector_id",
    "standard",
    "format",
    "power_type",
    "max_voltage",
    "max_amperage",
    "max_electric_power",
    "tariff_ids",
    "data",
    "last_updated",
)
JSON_COLUMNS = frozenset({"data", "tariff_ids"})
# Ids per DELETE .. WHERE id IN (...): well under SQLite's limit of bound parameters.
_DELETE_CHUNK = 1000


def location_values(record: LocationRecord) -> tuple[Any, ...]:
    return (
        record.country_code,
        record.party_id,
        record.ocpi_id,
        ci_key(record.ocpi_id),
        record.name,
        record.address,
        record.city,
        record.postal_code,
        record.country,
        record.latitude,
        record.longitude,
        record.time_zone,
        record.operator_name,
        record.publish,
        record.data,
        record.last_updated,
    )


def evse_values(record: EvseRecord) -> tuple[Any, ...]:
    return (record.uid, record.evse_id, record.status, record.max_power_kw, record.data, record.last_updated)


def connector_values(record: ConnectorRecord) -> tuple[Any, ...]:
    return (
        record.connector_id,
        record.standard,
        record.format,
        record.power_type,
        record.max_voltage,
        record.max_amperage,
        record.max_electric_power,
        record.tariff_ids,
        record.data,
        record.last_updated,
    )


@dataclass
class WriteOutcome:
    """What :func:`write_locations` did: ``stored`` counts every Location applied, ``unchanged`` those of them
    that were already exactly so (nothing written), ``stale`` those older than our copy (not applied)."""

    stored: int = 0
    unchanged: int = 0
    stale: int = 0


class _NewId:
    """The id of a row inserted later in the same batch (a new Location's, for its new EVSEs)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int | None = None


@dataclass
class _Plan:
    """The differences between a batch and what we hold, grouped by statement."""

    new_locations: list[tuple[LocationRecord, int | None, _NewId]] = field(default_factory=list)  # + partner id
    location_updates: list[dict[str, Any]] = field(default_factory=list)
    new_evses: list[tuple[int | _NewId, EvseRecord, _NewId]] = field(default_factory=list)
    evse_updates: list[dict[str, Any]] = field(default_factory=list)
    new_connectors: list[tuple[int | _NewId, ConnectorRecord]] = field(default_factory=list)
    connector_updates: list[dict[str, Any]] = field(default_factory=list)
    deleted_evses: list[int] = field(default_factory=list)
    deleted_connectors: list[int] = field(default_factory=list)


def write_locations(records: Mapping[LocationKey, LocationRecord], *, partner_id: int | None) -> WriteOutcome:
    """Apply ``records`` (one per key, validated) to the database in the caller's transaction.

    ``partner_id``: the partner the Locations came from (``None`` for a file import: an existing Location keeps
    its partner). The caller wraps this in a savepoint when it wants to retry object by object on a database
    error (see ``upsert_locations``)."""
    outcome = WriteOutcome()
    if not records:
        return outcome
    db.session.flush()  # the caller's pending ORM changes first: rows below are read and written around the ORM
    held = _held_locations(list(records))
    evses_of, connectors_of = _held_children([row["id"] for row in held.values()])
    plan = _Plan()
    for key, record in records.items():
        row = held.get(key)
        if row is None:
            _plan_new_location(plan, record, partner_id)
            outcome.stored += 1
        elif row["last_updated"] > record.last_updated:
            outcome.stale += 1
        else:
            changed = _plan_location(plan, row, record, partner_id, evses_of, connectors_of)
            outcome.stored += 1
            outcome.unchanged += not changed
    _execute(plan)
    _expire_held_objects()
    return outcome


# ------------------------------------------------------------------------------------------------ reading


def _held_locations(keys: list[LocationKey]) -> dict[LocationKey, RowMapping]:
    # One list of values per column of the unique key, all three served by its index, and the exact triples
    # picked in Python: a row-value IN list of a thousand (country, party, id) triples took PostgreSQL ~0.4 s to
    # plan. A batch holds few parties, so the extra rows (an id of one party found under another) are few.
    table = LOCATIONS
    statement = select(table.c.id, table.c.partner_id, *_as_stored(table, LOCATION_COLUMNS)).where(
        table.c.country_code.in_(sorted({key[0] for key in keys})),
        table.c.party_id.in_(sorted({key[1] for key in keys})),
        table.c.ocpi_id_key.in_(sorted({key[2] for key in keys})),
    )
    wanted = set(keys)
    held = {}
    for row in db.session.execute(statement).mappings():
        key = (row["country_code"], row["party_id"], row["ocpi_id_key"])
        if key in wanted:
            held[key] = row
    return held


def _held_children(
    location_ids: list[int],
) -> tuple[dict[int, list[RowMapping]], dict[int, list[RowMapping]]]:
    """The EVSEs per location id and the connectors per EVSE id of ``location_ids``, each in id order (the order
    the relationships read them in)."""
    evses_of: dict[int, list[RowMapping]] = {}
    connectors_of: dict[int, list[RowMapping]] = {}
    if not location_ids:
        return evses_of, connectors_of
    evse_statement = (
        select(EVSES.c.id, EVSES.c.location_id, *_as_stored(EVSES, EVSE_COLUMNS))
        .where(EVSES.c.location_id.in_(location_ids))
        .order_by(EVSES.c.id)
    )
    for row in db.session.execute(evse_statement).mappings():
        evses_of.setdefault(row["location_id"], []).append(row)
    connector_statement = (
        select(CONNECTORS.c.id, CONNECTORS.c.evse_id, *_as_stored(CONNECTORS, CONNECTOR_COLUMNS))
        .join(EVSES, EVSES.c.id == CONNECTORS.c.evse_id)
        .where(EVSES.c.location_id.in_(location_ids))
        .order_by(CONNECTORS.c.id)
    )
    for row in db.session.execute(connector_statement).mappings():
        connectors_of.setdefault(row["evse_id"], []).append(row)
    return evses_of, connectors_of


def _as_stored(table: Table, names: Sequence[str]) -> list[ColumnElement[Any]]:
    """The columns to compare, JSON ones as their stored text: parsing every document of a batch back cost a
    quarter of a re-import, and equal text is equal JSON (see :func:`_same_json`)."""
    return [
        cast(table.c[name], Text).label(name) if isinstance(table.c[name].type, JSON) else table.c[name]
        for name in names
    ]


def _same_json(stored: str | None, value: Any) -> bool:
    """Whether a stored JSON text holds ``value``: the text as we write it (compact through COPY, SQLAlchemy's
    default elsewhere) is compared first; only a text written otherwise is parsed and compared as JSON."""
    if stored is None:
        return value is None
    if stored == json.dumps(value, separators=(",", ":")) or stored == json.dumps(value):
        return True
    return bool(json.loads(stored) == value)


def _differs(row: RowMapping, columns: Sequence[str], values: Sequence[Any]) -> bool:
    # Column by column: JSON documents by _same_json, the others with == (Decimals compare by value, 52.1 ==
    # 52.1000000; aware datetimes across zones).
    for name, value in zip(columns, values, strict=True):
        stored = row[name]
        if name in JSON_COLUMNS:
            if not _same_json(stored, value):
                return True
        elif stored != value:
            return True
    return False


# ------------------------------------------------------------------------------------------------ planning


def _plan_new_location(plan: _Plan, record: LocationRecord, partner_id: int | None) -> None:
    location_id = _NewId()
    plan.new_locations.append((record, partner_id, location_id))
    for evse in record.evses:
        _plan_new_evse(plan, location_id, evse)


def _plan_new_evse(plan: _Plan, location_id: int | _NewId, record: EvseRecord) -> None:
    evse_id = _NewId()
    plan.new_evses.append((location_id, record, evse_id))
    plan.new_connectors.extend((evse_id, connector) for connector in record.connectors)


def _plan_location(
    plan: _Plan,
    row: RowMapping,
    record: LocationRecord,
    partner_id: int | None,
    evses_of: Mapping[int, list[RowMapping]],
    connectors_of: Mapping[int, list[RowMapping]],
) -> bool:
    """Plan the replacement of a held Location by ``record``; whether anything differs."""
    location_id: int = row["id"]
    values = location_values(record)
    changed = False
    if _differs(row, LOCATION_COLUMNS, values) or (partner_id is not None and row["partner_id"] != partner_id):
        update_row = dict(zip(LOCATION_COLUMNS, values, strict=True))
        update_row["partner_id"] = row["partner_id"] if partner_id is None else partner_id
        update_row["row_id"] = location_id
        plan.location_updates.append(update_row)
        changed = True
    held = {ci_key(evse["uid"]): evse for evse in evses_of.get(location_id, ())}
    for evse in record.evses:
        evse_row = held.pop(ci_key(evse.uid), None)
        if evse_row is None:
            _plan_new_evse(plan, location_id, evse)
            changed = True
        else:
            changed |= _plan_evse(plan, evse_row, evse, connectors_of)
    for gone in held.values():  # EVSEs no longer sent: removed with their connectors (the PUT replaces)
        plan.deleted_evses.append(gone["id"])
        plan.deleted_connectors.extend(connector["id"] for connector in connectors_of.get(gone["id"], ()))
        changed = True
    return changed


def _plan_evse(plan: _Plan, row: RowMapping, record: EvseRecord, connectors_of: Mapping[int, list[RowMapping]]) -> bool:
    evse_id: int = row["id"]
    values = evse_values(record)
    changed = False
    if _differs(row, EVSE_COLUMNS, values):
        plan.evse_updates.append({**dict(zip(EVSE_COLUMNS, values, strict=True)), "row_id": evse_id})
        changed = True
    held = {ci_key(connector["connector_id"]): connector for connector in connectors_of.get(evse_id, ())}
    for connector in record.connectors:
        connector_row = held.pop(ci_key(connector.connector_id), None)
        connector_vals = connector_values(connector)
        if connector_row is None:
            plan.new_connectors.append((evse_id, connector))
            changed = True
        elif _differs(connector_row, CONNECTOR_COLUMNS, connector_vals):
            plan.connector_updates.append(
                {**dict(zip(CONNECTOR_COLUMNS, connector_vals, strict=True)), "row_id": connector_row["id"]}
            )
            changed = True
    if held:  # connectors no longer sent
        plan.deleted_connectors.extend(connector["id"] for connector in held.values())
        changed = True
    return changed


# ------------------------------------------------------------------------------------------------ writing


def _resolved(reference: int | _NewId) -> int:
    if isinstance(reference, int):
        return reference
    assert reference.value is not None, "a parent row is inserted before its children"
    return reference.value


def _execute(plan: _Plan) -> None:
    # Removals first: a unique (parent, id) freed by a removed row may be taken by a new one of the same batch.
    _delete(CONNECTORS, plan.deleted_connectors)
    _delete(EVSES, plan.deleted_evses)
    _update(LOCATIONS, plan.location_updates)
    location_rows = [
        {**dict(zip(LOCATION_COLUMNS, location_values(record), strict=True)), "partner_id": partner_id}
        for record, partner_id, _ in plan.new_locations
    ]
    for (_, _, new_id), row_id in zip(plan.new_locations, insert_returning_ids(LOCATIONS, location_rows), strict=True):
        new_id.value = row_id
    _update(EVSES, plan.evse_updates)
    evse_rows = [
        {"location_id": _resolved(parent), **dict(zip(EVSE_COLUMNS, evse_values(record), strict=True))}
        for parent, record, _ in plan.new_evses
    ]
    for (_, _, new_id), row_id in zip(plan.new_evses, insert_returning_ids(EVSES, evse_rows), strict=True):
        new_id.value = row_id
    _update(CONNECTORS, plan.connector_updates)
    insert_rows(
        CONNECTORS,
        [
            {"evse_id": _resolved(parent), **dict(zip(CONNECTOR_COLUMNS, connector_values(record), strict=True))}
            for parent, record in plan.new_connectors
        ],
    )


def _update(table: Table, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE of whole rows (every row carries the same columns and its ``row_id``)."""
    if not rows:
        return
    statement = update(table).where(table.c.id == bindparam("row_id"))
    db.session.execute(statement, rows, execution_options={"synchronize_session": False})


def _delete(table: Table, ids: list[int]) -> None:
    for start in range(0, len(ids), _DELETE_CHUNK):
        db.session.execute(delete(table).where(table.c.id.in_(ids[start : start + _DELETE_CHUNK])))


def _expire_held_objects() -> None:
    """ORM objects of the three tables in the session may be stale now: reload them on next use."""
    for instance in list(db.session.identity_map.values()):
        if isinstance(instance, Location | Evse | Connector):
            db.session.expire(instance)
