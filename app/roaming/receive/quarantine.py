"""The quarantine: nothing a partner sends is lost (DESIGN §5, Intake).

Every object a partner sends us that we cannot store — refused at the OCPI door with 2001 naming the field, or
reported by the pull client for one object of a page — is kept raw in ``roaming_quarantine`` with the reason,
the partner, the module, how it came (``push`` with its HTTP method, or ``pull``) and its natural key when that
is readable (the URL of a push, else the object's ``country_code``/``party_id``/``id``, compared through
:func:`app.ocpi_ids.ci_key`). The object is kept as JSON text: a pushed body as received, a pulled object as
serialised again; NUL escaped (PostgreSQL text cannot hold one) and at most ``OCPI_MAX_BODY_BYTES``.

A partner retrying a refused object all day adds no rows: the same object (partner + module + key + a SHA-256 of
how it came and its whole raw text) counts ``received_count`` and ``last_received_at`` on its row. A partner has
at most ``OCPI_QUARANTINE_MAX_PENDING`` pending rows (default 10,000); beyond, objects are counted per partner and
module in ``roaming_quarantine_overflow``, not kept, and the log says so: a hostile partner cannot fill the disk.

:func:`reprocess` runs pending objects through the same store path again (a savepoint per object, the batch goes
on when one fails): stored ones are marked resolved with their outcome and kept for audit, still-failing ones get
their new reason. The read services (:func:`quarantine_summary`, :func:`list_quarantined`, ...) serve the
``flask roaming quarantine`` command and the operations back office.

A service: it flushes, never commits. The door commits a refused object's row on its own (the request's other
work rolled back), the pull client with its page and cursor, the CLI and the task after :func:`reprocess`; they
also tell the CDR listeners of new CDRs (:attr:`ReprocessReport.new_cdr_ids`) after that commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db import utcnow
from app.extensions import db
from app.failures import failure_reason
from app.ocpi_ids import ci_key
from app.ocpi_values import load_json
from app.roaming.models import Partner, QuarantinedObject, QuarantineOverflow
from app.roaming.ocpi.reader import InvalidObjectError, id_text
from app.roaming.receive.locations import BatchResult
from app.roaming.receive.quarantine_replay import PULL as PULL
from app.roaming.receive.quarantine_replay import PUSH as PUSH
from app.roaming.receive.quarantine_replay import Outcome as Outcome
from app.roaming.receive.quarantine_replay import store_again, superseded

log = logging.getLogger(__name__)

MODULES = ("locations", "tariffs", "sessions", "cdrs")
DEFAULT_MAX_PENDING = 10_000
MAX_REASON = 2_000
MAX_LIST = 1_000  # rows one listing returns at most, whatever the caller asks

# What a readable key may not hold (the same characters an id in an OCPI URL may not).
_NOT_IN_A_KEY = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ObjectKeys:
    """The natural key of a received object, each part None when unreadable."""

    country_code: str | None = None
    party_id: str | None = None
    ocpi_id: str | None = None
    evse_uid: str | None = None  # an EVSE or Connector of a Location (PUT/PATCH at that level)
    connector_id: str | None = None

    @property
    def folded(self) -> str:
        parts = (self.country_code, self.party_id, self.ocpi_id, self.evse_uid, self.connector_id)
        return "/".join(ci_key(part) if part else "" for part in parts)


def _readable(value: Any, max_length: int) -> str | None:
    text = id_text(value)
    if not text or len(text) > max_length or _NOT_IN_A_KEY.search(text):
        return None
    return text


def keys_of_object(module: str, obj: Any) -> ObjectKeys:
    """The key an object names itself by (a pull, a CDR's POST body), as far as it is readable."""
    if not isinstance(obj, dict):
        return ObjectKeys()
    country_code, party_id = _readable(obj.get("country_code"), 2), _readable(obj.get("party_id"), 3)
    return ObjectKeys(
        country_code=country_code.upper() if country_code else None,
        party_id=party_id.upper() if party_id else None,
        ocpi_id=_readable(obj.get("id"), 39 if module == "cdrs" else 36),
    )


# ------------------------------------------------------------------------------------------------ keeping


def _max_bytes() -> int:
    return int(current_app.config.get("OCPI_MAX_BODY_BYTES", 1024 * 1024))


def _bounded(text: str) -> tuple[str, bool]:
    """``text`` storable as PostgreSQL text (NUL escaped) and within ``OCPI_MAX_BODY_BYTES`` UTF-8 bytes."""
    text = text.replace("\x00", "\\u0000")
    encoded = text.encode("utf-8")
    if len(encoded) <= _max_bytes():
        return text, False
    return encoded[: _max_bytes()].decode("utf-8", "ignore"), True


def _clean_reason(reason: str) -> str:
    reason = _LONE_SURROGATE.sub("\ufffd", reason.replace("\x00", "\\x00"))
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def _content_hash(via: str, method: str | None, raw: bytes) -> str:
    return hashlib.sha256(f"{via}\n{method or ''}\n".encode() + raw).hexdigest()


def object_text(obj: Any) -> str:
    """A pulled object as JSON text (the pull client parsed it; serialised again, nothing dropped)."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    # A lone surrogate cannot be stored as UTF-8: then every non-ASCII character is written as a JSON escape.
    return json.dumps(obj, default=str) if _LONE_SURROGATE.search(text) else text


def keep_pushed(
    partner_id: int, module: str, method: str, body: bytes, reason: str, url_keys: ObjectKeys
) -> QuarantinedObject | None:
    """Keep a body the OCPI door refused (2001). The key is the URL's; a CDR (no key in its URL) names its own
    when its body is readable. Returns the row, or None when the partner's quarantine is full."""
    keys = url_keys
    if keys.ocpi_id is None:
        try:
            keys = keys_of_object(module, load_json(body))
        except ValueError:
            keys = ObjectKeys()
    text, truncated = _bounded(body.decode("utf-8", "backslashreplace"))
    content_hash = _content_hash(PUSH, method, body)
    return _record(partner_id, module, PUSH, method, keys, text, truncated, content_hash, reason)


def keep_pulled(partner_id: int, module: str, objects: Sequence[Any], batch: BatchResult) -> BatchResult:
    """Keep every object of a pulled page that ``batch`` reports as not stored (its index into ``objects``).
    Returns ``batch`` unchanged, so the pull client reports it as before."""
    for index, _oid, message in batch.errors:
        obj = objects[index]
        full = object_text(obj)
        text, truncated = _bounded(full)
        content_hash = _content_hash(PULL, None, full.encode("utf-8"))
        _record(partner_id, module, PULL, None, keys_of_object(module, obj), text, truncated, content_hash, message)
    return batch


def _record(
    partner_id: int,
    module: str,
    via: str,
    method: str | None,
    keys: ObjectKeys,
    raw: str,
    truncated: bool,
    content_hash: str,
    reason: str,
) -> QuarantinedObject | None:
    """Insert the object, or count one more arrival of the same one (reopened if it had been resolved)."""
    reason = _clean_reason(reason)
    object_key = keys.folded
    same = (
        QuarantinedObject.partner_id == partner_id,
        QuarantinedObject.module == module,
        QuarantinedObject.object_key == object_key,
        QuarantinedObject.content_hash == content_hash,
    )
    now = utcnow()
    row = db.session.scalar(select(QuarantinedObject).where(*same))
    if row is None:
        if _pending_count(partner_id) >= _max_pending():
            _count_overflow(partner_id, module, reason, now)
            return None
        try:
            with db.session.begin_nested():
                row = QuarantinedObject(
                    partner_id=partner_id,
                    module=module,
                    via=via,
                    method=method,
                    country_code=keys.country_code,
                    party_id=keys.party_id,
                    ocpi_id=keys.ocpi_id,
                    evse_uid=keys.evse_uid,
                    connector_id=keys.connector_id,
                    object_key=object_key,
                    content_hash=content_hash,
                    raw=raw,
                    raw_truncated=truncated,
                    reason=reason,
                    received_count=1,
                    first_received_at=now,
                    last_received_at=now,
                )
                db.session.add(row)
            log.info("quarantined %s %s of partner %s (%s): %s", via, module, partner_id, object_key, reason)
            return row
        except IntegrityError:  # the same object kept by a concurrent request a moment ago
            row = db.session.scalars(select(QuarantinedObject).where(*same)).one()
    row.received_count = QuarantinedObject.received_count + 1  # in SQL: concurrent repeats all count
    row.last_received_at = now
    row.reason = reason
    row.resolved_at = None  # received and refused again: pending again
    row.outcome = None
    db.session.flush()
    return row


def _max_pending() -> int:
    return int(current_app.config.get("OCPI_QUARANTINE_MAX_PENDING", DEFAULT_MAX_PENDING))


def _pending_count(partner_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count(QuarantinedObject.id)).where(
                QuarantinedObject.partner_id == partner_id, QuarantinedObject.resolved_at.is_(None)
            )
        )
        or 0
    )


def _count_overflow(partner_id: int, module: str, reason: str, now: dt.datetime) -> None:
    same = (QuarantineOverflow.partner_id == partner_id, QuarantineOverflow.module == module)
    row = db.session.scalar(select(QuarantineOverflow).where(*same))
    dropped = 1
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    QuarantineOverflow(
                        partner_id=partner_id,
                        module=module,
                        dropped=1,
                        first_dropped_at=now,
                        last_dropped_at=now,
                        last_reason=reason,
                    )
                )
        except IntegrityError:  # counted by a concurrent request a moment ago
            row = db.session.scalars(select(QuarantineOverflow).where(*same)).one()
    if row is not None:
        row.dropped = QuarantineOverflow.dropped + 1  # in SQL: concurrent refusals all count
        row.last_dropped_at = now
        row.last_reason = reason
        db.session.flush()
        dropped = row.dropped
    # The first refusal and then every thousandth: a hostile partner must not fill the log either.
    if dropped == 1 or dropped % 1000 == 0:
        log.warning(
            "quarantine of partner %s is full (%d pending, OCPI_QUARANTINE_MAX_PENDING): a refused %s object was "
            "counted, not kept (%d so far): %s",
            partner_id,
            _max_pending(),
            module,
            dropped,
            reason,
        )


# ------------------------------------------------------------------------------------------------ reading


class QuarantineSummaryRow(NamedTuple):
    partner_id: int
    module: str
    pending: int
    oldest: dt.datetime  # when the oldest pending object first arrived


def quarantine_summary() -> list[QuarantineSummaryRow]:
    """Pending objects per partner and module, with the first arrival of the oldest."""
    rows = db.session.execute(
        select(
            QuarantinedObject.partner_id,
            QuarantinedObject.module,
            func.count(QuarantinedObject.id),
            func.min(QuarantinedObject.first_received_at),
        )
        .where(QuarantinedObject.resolved_at.is_(None))
        .group_by(QuarantinedObject.partner_id, QuarantinedObject.module)
        .order_by(QuarantinedObject.partner_id, QuarantinedObject.module)
    )
    return [QuarantineSummaryRow(*row) for row in rows]


def _filtered(query: Any, partner_id: int | None, module: str | None, pending_only: bool) -> Any:
    if partner_id is not None:
        query = query.where(QuarantinedObject.partner_id == partner_id)
    if module is not None:
        query = query.where(QuarantinedObject.module == module)
    if pending_only:
        query = query.where(QuarantinedObject.resolved_at.is_(None))
    return query


def list_quarantined(
    partner_id: int | None = None,
    module: str | None = None,
    pending_only: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> list[QuarantinedObject]:
    """Quarantined objects, the most recently received first (``limit`` at most :data:`MAX_LIST`)."""
    query = _filtered(select(QuarantinedObject), partner_id, module, pending_only)
    query = query.order_by(QuarantinedObject.last_received_at.desc(), QuarantinedObject.id.desc())
    return list(db.session.scalars(query.limit(max(1, min(limit, MAX_LIST))).offset(max(0, offset))))


def count_quarantined(partner_id: int | None = None, module: str | None = None, pending_only: bool = True) -> int:
    """How many objects :func:`list_quarantined` pages through."""
    query = _filtered(select(func.count(QuarantinedObject.id)), partner_id, module, pending_only)
    return int(db.session.scalar(query) or 0)


class ReasonCount(NamedTuple):
    partner_id: int
    module: str
    reason: str
    pending: int


def pending_by_reason(partner_id: int | None = None, module: str | None = None) -> list[ReasonCount]:
    """Pending objects per partner, module and reason, the most frequent reason first."""
    count = func.count(QuarantinedObject.id)
    query = _filtered(
        select(QuarantinedObject.partner_id, QuarantinedObject.module, QuarantinedObject.reason, count),
        partner_id,
        module,
        True,
    )
    query = query.group_by(QuarantinedObject.partner_id, QuarantinedObject.module, QuarantinedObject.reason)
    return [ReasonCount(*row) for row in db.session.execute(query.order_by(count.desc(), QuarantinedObject.partner_id))]


def overflow_counts(partner_id: int | None = None) -> list[QuarantineOverflow]:
    """Objects counted but not kept because a partner's quarantine was full."""
    query = select(QuarantineOverflow).order_by(QuarantineOverflow.partner_id, QuarantineOverflow.module)
    if partner_id is not None:
        query = query.where(QuarantineOverflow.partner_id == partner_id)
    return list(db.session.scalars(query))


# ------------------------------------------------------------------------------------------------ re-processing


@dataclass
class ReprocessReport:
    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # Outcome value → objects
    still_failing: list[tuple[int, str]] = field(default_factory=list)  # (quarantine id, reason)
    not_pending: list[int] = field(default_factory=list)  # ids asked for that are resolved or unknown
    new_cdr_ids: list[int] = field(default_factory=list)  # new CDRs of our accounts: tell the listeners

    @property
    def resolved(self) -> int:
        return sum(self.outcomes.values())


def reprocess(
    partner_id: int | None = None,
    ids: list[int] | None = None,
    *,
    module: str | None = None,
    limit: int | None = None,
) -> ReprocessReport:
    """Run the pending objects (of a partner, a module, or the ``ids`` given) through the same store path again,
    the first received first (a Location before its EVSE's PATCH, a session's PUT before its PATCH). Each object
    in a savepoint of its own: one that fails gets its new reason and the others go on. Flushes."""
    report = ReprocessReport()
    query = _filtered(select(QuarantinedObject), partner_id, module, True)
    if ids is not None:
        query = query.where(QuarantinedObject.id.in_(ids))
    query = query.order_by(QuarantinedObject.first_received_at, QuarantinedObject.id)
    rows = list(db.session.scalars(query.limit(limit) if limit else query))
    if ids is not None:
        found = {row.id for row in rows}
        report.not_pending = [one for one in dict.fromkeys(ids) if one not in found]
    partners: dict[int, Partner] = {}
    for row in rows:
        partner = partners.get(row.partner_id) or db.session.get(Partner, row.partner_id)
        if partner is None:  # cascaded away under us
            continue
        partners[row.partner_id] = partner
        report.examined += 1
        _reprocess_one(partner, row, report)
    db.session.flush()
    return report


def _reprocess_one(partner: Partner, row: QuarantinedObject, report: ReprocessReport) -> None:
    now = utcnow()
    row.reprocessed_at = now
    obj: Any = None
    try:
        with db.session.begin_nested():
            obj = _parsed(row)
            outcome, new_cdr_id = store_again(partner, row, obj)
    except Exception as exc:  # one object fails, the batch goes on (a lost connection stops it)
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise
        if superseded(row, obj):
            _resolve(row, Outcome.SUPERSEDED, now, report)
            return
        row.reason = _clean_reason(failure_reason(exc))
        report.still_failing.append((row.id, row.reason))
        return
    _resolve(row, outcome, now, report)
    if new_cdr_id is not None:
        report.new_cdr_ids.append(new_cdr_id)


def _resolve(row: QuarantinedObject, outcome: Outcome, now: dt.datetime, report: ReprocessReport) -> None:
    row.resolved_at = now
    row.outcome = outcome.value
    report.outcomes[outcome.value] += 1


def _parsed(row: QuarantinedObject) -> Any:
    if row.raw_truncated:
        raise InvalidObjectError(f"only the first {_max_bytes()} bytes were kept: the object cannot be read again")
    try:
        return load_json(row.raw)
    except ValueError as exc:
        raise InvalidObjectError(f"not valid JSON: {exc}", "body") from exc
