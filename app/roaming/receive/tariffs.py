"""CPO tariffs (OCPI mod_tariffs): every version kept, so a session or CDR can always be priced with the tariff
that applied to it.

A *version* is one distinct ``last_updated`` of a tariff (country_code, party_id, id). Receiving the same
version again (same ``last_updated``) is recognised and returns the same row: a version is immutable once
stored, because frozen sessions refer to it by row id. A DELETE marks every version ``deleted_at`` and keeps
them. A changed content under an unchanged ``last_updated`` replaces the version unless a session froze it.
Every stored tariff is validated with the pure pricing parser, so a stored tariff is always priceable.

Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import Select, select, tuple_

from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.ocpi_ids import ci_key
from app.ocpi_values import parse_ocpi_datetime
from app.pricing import PricingInputError, parse_tariff
from app.roaming.models import Location, Partner, TariffVersion
from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import FieldReader, InvalidObjectError, Shape, jsonable, raise_collected
from app.roaming.receive.limits import (
    SECONDS_OR_WH,
    TARIFF_AMOUNT,
    TARIFF_CURRENT_A,
    TARIFF_KWH,
    TARIFF_POWER_KW,
    UNIT_PRICE,
    VAT_PERCENT,
)
from app.roaming.receive.location_validation import DISPLAY_TEXT, ENERGY_MIX, UnknownObjectError
from app.roaming.receive.locations import BatchResult, get_connector, get_evse
from app.timestamps import ocpi_timestamp

log = logging.getLogger(__name__)

TARIFF_FIELDS = (
    "country_code",
    "party_id",
    "id",
    "currency",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "start_date_time",
    "end_date_time",
    "energy_mix",
    "last_updated",
)

__all__ = [
    "current_tariff",
    "delete_tariff",
    "store_tariff",
    "store_tariffs",
    "tariff_in_force",
    "tariff_object",
    "tariff_versions",
    "tariffs_for_connector",
    "validate_tariff",
]


class _TariffRecord:
    def __init__(
        self,
        data: dict[str, Any],
        country_code: str,
        party_id: str,
        ocpi_id: str,
        currency: str,
        last_updated: dt.datetime,
        start: dt.datetime | None,
        end: dt.datetime | None,
    ) -> None:
        self.data = data
        self.key = (country_code, party_id, ocpi_id)
        self.currency = currency
        self.last_updated = last_updated
        self.start = start
        self.end = end


# The spec's limits of every field (mod_tariffs §Object description), checked on the whole tree first. Pricing
# reads the prices and restrictions (and refuses unknown enums); the bounds keep every product pricing forms
# within its columns (see receive/limits.py).
TARIFF_PRICE: Shape = {"excl_vat": TARIFF_AMOUNT, "incl_vat": TARIFF_AMOUNT}
TARIFF_SHAPE: Shape = {
    "country_code": 2,
    "party_id": 3,
    "id": 36,
    "currency": 3,
    "tariff_alt_text": DISPLAY_TEXT,
    "tariff_alt_url": 255,
    "min_price": TARIFF_PRICE,
    "max_price": TARIFF_PRICE,
    "elements": {
        "price_components": {"price": UNIT_PRICE, "vat": VAT_PERCENT, "step_size": SECONDS_OR_WH},
        "restrictions": {
            "start_time": 5,
            "end_time": 5,
            "start_date": 10,
            "end_date": 10,
            "min_kwh": TARIFF_KWH,
            "max_kwh": TARIFF_KWH,
            "min_current": TARIFF_CURRENT_A,
            "max_current": TARIFF_CURRENT_A,
            "min_power": TARIFF_POWER_KW,
            "max_power": TARIFF_POWER_KW,
            "min_duration": SECONDS_OR_WH,
            "max_duration": SECONDS_OR_WH,
        },
    },
    "energy_mix": ENERGY_MIX,
}


def validate_tariff(data: Any) -> _TariffRecord:
    """Required fields of the Tariff object, then the full pricing parser (names the field path on error)."""
    check_tree(data, TARIFF_SHAPE)
    errors: list[tuple[str, str]] = []
    r = FieldReader(data, "", errors)
    country_code = r.string("country_code", 2, upper=True)
    party_id = r.string("party_id", 3, upper=True)
    ocpi_id = r.string("id", 36)
    currency = r.string("currency", 3, upper=True)
    r.items("elements", required=True, non_empty=True)
    last_updated = r.timestamp("last_updated")
    raise_collected(errors)
    # No error, so every required field was read (FieldReader returns None for one only with an error).
    assert country_code is not None and party_id is not None and ocpi_id is not None and currency is not None
    assert last_updated is not None
    try:
        parsed = parse_tariff(data)
    except PricingInputError as exc:
        raise InvalidObjectError(str(exc), exc.path) from exc
    # JSON numbers again for the data column (the HTTP door reads exact Decimals).
    return _TariffRecord(
        jsonable(data),
        country_code,
        party_id,
        ocpi_id,
        currency,
        last_updated,
        parsed.start_date_time,
        parsed.end_date_time,
    )


def _versions_query(country_code: str, party_id: str, tariff_id: str) -> Select[TariffVersion]:
    # The id is a CiString: compared through its folded key, whoever sent it in which case.
    return select(TariffVersion).where(
        TariffVersion.country_code == ci_key(country_code),
        TariffVersion.party_id == ci_key(party_id),
        TariffVersion.ocpi_id_key == ci_key(tariff_id),
    )


def tariff_versions(country_code: str, party_id: str, tariff_id: str) -> list[TariffVersion]:
    """All versions, oldest first (by the CPO's last_updated)."""
    return list(
        db.session.scalars(_versions_query(country_code, party_id, tariff_id).order_by(TariffVersion.last_updated))
    )


def _store(
    record: _TariffRecord, partner: Partner | None, received_at: dt.datetime | None, existing: TariffVersion | None
) -> TariffVersion:
    if existing is not None:
        # The same version again: recognised. A re-sent version after a DELETE publishes it again.
        existing.deleted_at = None
        if existing.data != record.data:
            # Changed content under the same last_updated (a CPO bug, seen in the official examples). A version
            # a session has frozen as its price promise never changes; otherwise the latest content wins.
            frozen = db.session.scalar(
                select(ChargingSession.id).where(ChargingSession.frozen_tariff_id == existing.id).limit(1)
            )
            if frozen is None:
                existing.data = record.data
                existing.currency = record.currency
            else:
                log.warning(
                    "tariff %s/%s/%s changed without a new last_updated; version %s is frozen by a session and kept",
                    *record.key,
                    existing.id,
                )
        return existing
    version = TariffVersion(
        partner_id=partner.id if partner is not None else None,
        country_code=record.key[0],
        party_id=record.key[1],
        ocpi_id=record.key[2],
        currency=record.currency,
        data=record.data,
        last_updated=record.last_updated,
        received_at=received_at or utcnow(),
    )
    db.session.add(version)
    return version


def store_tariff(
    data: dict[str, Any],
    *,
    partner: Partner | None,
    country_code: str,
    party_id: str,
    tariff_id: str | None = None,
    received_at: dt.datetime | None = None,
) -> TariffVersion:
    """Store one version of a tariff (new row per distinct last_updated; same last_updated → same row)."""
    record = validate_tariff(data)
    for name, stored, url in (
        ("country_code", record.key[0], country_code),
        ("party_id", record.key[1], party_id),
        ("id", record.key[2], tariff_id or record.key[2]),
    ):
        if stored.upper() != url.upper():
            raise InvalidObjectError(f"{name} {stored!r} does not match the URL ({url!r})", name)
    existing = db.session.scalar(_versions_query(*record.key).where(TariffVersion.last_updated == record.last_updated))
    version = _store(record, partner, received_at, existing)
    db.session.flush()
    return version


def store_tariffs(
    objects: Iterable[Any],
    *,
    partner: Partner | None,
    allowed_parties: AbstractSet[tuple[str, str]] | None = None,
    received_at: dt.datetime | None = None,
) -> BatchResult:
    """Many tariffs at once (importer, pull): per-object errors reported, one query for the known versions."""
    result = BatchResult()
    records: dict[tuple[str, str, str, dt.datetime], _TariffRecord] = {}
    for index, obj in enumerate(objects):
        oid = obj.get("id") if isinstance(obj, dict) else None
        try:
            record = validate_tariff(obj)
        except InvalidObjectError as exc:
            result.errors.append((index, oid, exc.message))
            continue
        if allowed_parties is not None and record.key[:2] not in allowed_parties:
            result.errors.append((index, oid, f"party {record.key[0]}/{record.key[1]} not allowed"))
            continue
        records[(record.key[0], record.key[1], ci_key(record.key[2]), record.last_updated)] = record
    if not records:
        return result
    known = {
        (v.country_code, v.party_id, v.ocpi_id_key, v.last_updated): v
        for v in db.session.scalars(
            select(TariffVersion).where(
                tuple_(TariffVersion.country_code, TariffVersion.party_id, TariffVersion.ocpi_id_key).in_(
                    list({key[:3] for key in records})
                )
            )
        )
    }
    for key, record in records.items():
        _store(record, partner, received_at, known.get(key))
        result.stored += 1
    db.session.flush()
    return result


def delete_tariff(country_code: str, party_id: str, tariff_id: str, *, at: dt.datetime | None = None) -> int:
    """The CPO deleted the tariff: mark its versions deleted (kept for the sessions and CDRs that use them).
    Returns how many versions were newly marked; raises UnknownObjectError if we never had the tariff."""
    versions = tariff_versions(country_code, party_id, tariff_id)
    if not versions:
        raise UnknownObjectError(f"Unknown Tariff {country_code}/{party_id}/{tariff_id}")
    moment = at or utcnow()
    marked = 0
    for version in versions:
        if version.deleted_at is None:
            version.deleted_at = moment
            marked += 1
    db.session.flush()
    return marked


def current_tariff(country_code: str, party_id: str, tariff_id: str) -> TariffVersion | None:
    """The newest version (by the CPO's last_updated) that is not deleted."""
    return db.session.scalar(
        _versions_query(country_code, party_id, tariff_id)
        .where(TariffVersion.deleted_at.is_(None))
        .order_by(TariffVersion.last_updated.desc())
        .limit(1)
    )


def _valid_at(version: TariffVersion, at: dt.datetime) -> bool:
    """The tariff's own validity window (start_date_time inclusive, end_date_time exclusive)."""
    start, end = version.data.get("start_date_time"), version.data.get("end_date_time")
    if start and at < parse_ocpi_datetime(start):
        return False
    return not (end and at >= parse_ocpi_datetime(end))


def tariff_in_force(country_code: str, party_id: str, tariff_id: str, at: dt.datetime) -> TariffVersion | None:
    """The version of a tariff that applied at instant ``at`` (the price promise of a session starting then).

    What we promise a driver is what *we knew* when the session started, so the candidates are the versions we
    had received at or before ``at`` (``received_at``) and that were not deleted by then; among them the one the
    CPO published last (highest ``last_updated``: a pull may deliver an old version late) whose own
    start_date_time/end_date_time window contains ``at``.

    If we had received no version yet (the session started before the tariff reached us, e.g. it arrives with
    a later pull or import), the *oldest* version whose window contains ``at`` is the best approximation of what
    the CPO had published then; using a newer one would apply price changes made after the session started.
    Returns None when no version can apply (unknown tariff, deleted before ``at``, or outside its window).
    """
    versions = tariff_versions(country_code, party_id, tariff_id)
    known = [v for v in versions if v.received_at <= at and (v.deleted_at is None or v.deleted_at > at)]
    for version in sorted(known, key=lambda v: v.last_updated, reverse=True):
        if _valid_at(version, at):
            return version
    if known:
        return None  # we knew the tariff, but no version was valid at that instant
    for version in versions:  # oldest first
        if (version.deleted_at is None or version.deleted_at > at) and _valid_at(version, at):
            return version
    return None


def tariffs_for_connector(location: Location, evse_uid: str, connector_id: str, at: dt.datetime) -> list[TariffVersion]:
    """The tariff versions in force at ``at`` for a connector (its tariff_ids, in the CPO's order)."""
    evse = get_evse(location, evse_uid)
    connector = get_connector(evse, connector_id) if evse is not None else None
    if connector is None:
        raise UnknownObjectError(f"Unknown connector {evse_uid}/{connector_id} of Location {location.ocpi_id}")
    found = []
    for tariff_id in connector.tariff_ids or []:
        version = tariff_in_force(location.country_code, location.party_id, tariff_id, at)
        if version is not None:
            found.append(version)
    return found


def tariff_object(version: TariffVersion) -> dict[str, Any]:
    """The OCPI Tariff as sent to us, with only the 2.2.1 field names (strict out)."""
    obj = {k: v for k, v in version.data.items() if k in TARIFF_FIELDS}
    obj["last_updated"] = ocpi_timestamp(version.last_updated)
    return obj
