"""Storing many Locations at once: ``upsert_locations`` (importers, pull client), in two halves that the importer
runs side by side (``validate_locations``: no database; ``store_locations``: the writes), re-exported by
:mod:`app.roaming.receive.locations`.

The rules are those of the Receiver's PUT (:func:`app.roaming.receive.locations.upsert_location`): a Location
older than the copy we hold is not applied (stale); otherwise it replaces our copy, EVSEs and connectors matched
by their CiString ids, those no longer sent removed. How a batch is written (what we hold read in three queries,
only the differences written, one statement per kind of change) is :mod:`app.roaming.receive.location_writes`;
here: validation, the batch's outcome per object, and the retry object by object when the database refuses the
batch. Flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.extensions import db
from app.failures import failure_reason
from app.ocpi_ids import ci_key
from app.roaming.models import Partner
from app.roaming.ocpi.reader import InvalidObjectError
from app.roaming.receive.location_validation import LocationRecord, validate_location
from app.roaming.receive.location_writes import LocationKey, WriteOutcome, write_locations


@dataclass
class BatchResult:
    """Outcome of storing many objects: per-object errors are reported, not raised."""

    stored: int = 0
    stale: int = 0  # older than what we hold: acknowledged, not applied
    unchanged: int = 0  # of the stored ones: already exactly so, nothing written (locations only)
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)  # (index, object id, message)
    new_cdr_ids: list[int] = field(default_factory=list)  # new CDRs of our accounts: the listeners are told

    def add(self, other: BatchResult, offset: int = 0) -> None:
        self.stored += other.stored
        self.stale += other.stale
        self.unchanged += other.unchanged
        self.errors.extend((index + offset, oid, msg) for index, oid, msg in other.errors)
        self.new_cdr_ids.extend(other.new_cdr_ids)


@dataclass
class ValidatedLocations:
    """A batch of Locations after validation, before storage: the records to write (the latest per key), where
    each came from, and what was already decided (invalid, refused, stale within the batch). Plain data, so a
    worker process may validate the next batch while this one is written (``importers.import_locations``)."""

    result: BatchResult
    records: dict[LocationKey, LocationRecord]
    index_of: dict[LocationKey, tuple[int, Any]]  # (index in the batch, id as sent)


def validate_locations(
    objects: Iterable[Any], *, allowed_parties: AbstractSet[tuple[str, str]] | None = None, plain_json: bool = False
) -> ValidatedLocations:
    """The validation half of :func:`upsert_locations` (no database, no application context needed)."""
    result = BatchResult()
    records: dict[LocationKey, LocationRecord] = {}
    index_of: dict[LocationKey, tuple[int, Any]] = {}
    for index, obj in enumerate(objects):
        oid = obj.get("id") if isinstance(obj, dict) else None
        try:
            record = validate_location(obj, plain_json=plain_json)
        except InvalidObjectError as exc:
            result.errors.append((index, oid, exc.message))
            continue
        if allowed_parties is not None and (record.country_code, record.party_id) not in allowed_parties:
            result.errors.append((index, oid, f"party {record.country_code}/{record.party_id} not allowed"))
            continue
        key = (record.country_code, record.party_id, ci_key(record.ocpi_id))  # the id is a CiString
        previous = records.get(key)
        if previous is not None and previous.last_updated > record.last_updated:
            result.stale += 1
            continue
        records[key] = record
        index_of[key] = (index, oid)
    return ValidatedLocations(result, records, index_of)


def store_locations(validated: ValidatedLocations, *, partner: Partner | None) -> BatchResult:
    """The storing half of :func:`upsert_locations`: write the validated records, report what was done."""
    result, records = validated.result, validated.records
    partner_id = partner.id if partner is not None else None
    refusals = _refusals()
    try:
        with db.session.begin_nested():
            outcome = write_locations(records, partner_id=partner_id)
    except refusals:
        outcome = WriteOutcome()
        for key, record in records.items():
            try:
                with db.session.begin_nested():
                    one = write_locations({key: record}, partner_id=partner_id)
            except refusals as exc:
                index, oid = validated.index_of[key]
                result.errors.append((index, oid, _refusal_reason(exc)))
                continue
            outcome.stored += one.stored
            outcome.unchanged += one.unchanged
            outcome.stale += one.stale
        result.errors.sort(key=lambda error: error[0])
    result.stored += outcome.stored
    result.unchanged += outcome.unchanged
    result.stale += outcome.stale
    return result


def _refusals() -> tuple[type[Exception], ...]:
    """What a database raises when it refuses a row (a unique key taken meanwhile, a value it cannot hold):
    through SQLAlchemy, and straight from the driver for COPY, which runs on the driver's connection."""
    dbapi = db.session.get_bind().dialect.dbapi
    driver: tuple[type[Exception], ...] = () if dbapi is None else (dbapi.DataError, dbapi.IntegrityError)
    return (DataError, IntegrityError, *driver)


def _refusal_reason(error: Exception) -> str:
    return failure_reason(error if isinstance(error, DBAPIError) else DBAPIError(None, None, error))


def upsert_locations(
    objects: Iterable[Any],
    *,
    partner: Partner | None,
    allowed_parties: AbstractSet[tuple[str, str]] | None = None,
    plain_json: bool = False,
) -> BatchResult:
    """Store many Locations with the same validation and rules as :func:`upsert_location`, written as a batch
    (:mod:`app.roaming.receive.location_store`: a few queries for what we hold, only the differences written, one
    statement per kind of change). The importers and the pull client use this.

    ``allowed_parties``: when given, objects of other parties are refused (a CPO may not write another CPO's
    locations, whichever way they arrive). A bad object is reported in ``errors`` and the others are stored; so is
    one the database refuses (a concurrent writer took its key, say): the batch is then written again object by
    object, each in a savepoint, and only the refused ones are reported.

    ``plain_json``: the objects come from ``json.loads`` and are not used by the caller afterwards (the importers):
    validation keeps their values instead of copying them (``validate_location``).
    """
    validated = validate_locations(objects, allowed_parties=allowed_parties, plain_json=plain_json)
    return store_locations(validated, partner=partner)
