"""Re-processing one quarantined object (:mod:`app.roaming.receive.quarantine`): the same store path it failed
on, chosen by its module and how it came (a push by its HTTP method and URL key, as the door stores it; a pulled
object as the pull client stores it), under the same party rule; and whether an object still refused is no longer
needed because the same or a newer object with its key is held. Flushes only, like the services it calls.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any

from app.roaming.models import Connector, Evse, Location, Partner, QuarantinedObject
from app.roaming.ocpi.body import check_tree
from app.roaming.ocpi.reader import InvalidObjectError, to_datetime
from app.roaming.partners.callers import parties_of
from app.roaming.partners.parties import VIA_OBJECT, conflict_for
from app.roaming.receive import cdrs, locations, sessions, tariffs
from app.roaming.receive.location_validation import UnknownObjectError
from app.roaming.receive.locations import BatchResult

PUSH, PULL = "push", "pull"


class Outcome(enum.StrEnum):
    """How a quarantined object was resolved."""

    STORED = "stored"  # stored (or applied) now
    REPEAT = "repeat"  # the same CDR was stored meanwhile (a CDR is stored once)
    STALE = "stale"  # older than what we hold: acknowledged and not applied, as on arrival
    SUPERSEDED = "superseded"  # still refused, but the same or a newer object with its key is stored


def _refuse_foreign_party(partner: Partner, row: QuarantinedObject) -> None:
    """The party rule of the way the object came: the door's (a party of the partner, or for a hub one nobody
    else holds) or the pull client's (a direct CPO's own parties; a hub relays any)."""
    if row.country_code is None or row.party_id is None:
        return  # the store path names the missing or unreadable field
    party = (row.country_code.upper(), row.party_id.upper())
    if party in parties_of(partner):
        return
    if partner.is_hub and (row.via == PULL or conflict_for(partner, party, VIA_OBJECT) is None):
        return
    raise InvalidObjectError(f"party {party[0]}/{party[1]} not allowed")


def store_again(partner: Partner, row: QuarantinedObject, obj: Any) -> tuple[Outcome, int | None]:
    """Store the object ``obj`` (read from ``row.raw``) as it would be stored on arrival. Returns the outcome and,
    for a new CDR of one of our accounts, its id (the listeners are told after the commit); raises what the store
    path raises (``InvalidObjectError`` naming the field, ``UnknownObjectError``...)."""
    _refuse_foreign_party(partner, row)
    if row.module == "cdrs":
        cdr, created = cdrs.store_cdr(partner, obj)
        if not created:
            return Outcome.REPEAT, None
        return Outcome.STORED, (cdr.id if cdr.account_id is not None else None)
    store = _PUSHED.get(row.module) if row.via == PUSH else _PULLED.get(row.module)
    if store is None:
        raise InvalidObjectError(f"unknown module {row.module!r}")
    return store(partner, row, obj), None


def _object(obj: Any) -> dict[str, Any]:
    """A pushed body, checked whole as the door checks it before any service reads it (``load_json_object``)."""
    check_tree(obj)
    if not isinstance(obj, dict):
        raise InvalidObjectError("request body must be a JSON object", "body")
    return obj


def _newer_held(held: dt.datetime | None, obj: Any) -> bool:
    """Whether what we hold (``last_updated`` ``held``) is newer than the object's own ``last_updated``."""
    sent = obj.get("last_updated") if isinstance(obj, dict) else None
    if held is None or sent is None:
        return False
    try:
        return held > to_datetime(sent, "last_updated")
    except InvalidObjectError:
        return False


def _session_pushed(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    body = _object(obj)
    key = (row.country_code or "", row.party_id or "", row.ocpi_id or "")
    if row.method == "PATCH":
        session = sessions.patch_session(partner, *key, body)
        if session is None:
            raise UnknownObjectError(f"Unknown session {key[2]}")
    else:  # PUT, as the door does it: the URL is authoritative for the key
        sessions.check_key(body, *key)
        body = {
            **body,
            "country_code": body.get("country_code") or key[0],
            "party_id": body.get("party_id") or key[1],
            "id": body.get("id") or key[2],
        }
        session = sessions.store_session(partner, body)
    return Outcome.STALE if _newer_held(session.last_updated, body) else Outcome.STORED


def _location_pushed(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    body = _object(obj)
    keys: dict[str, Any] = {
        "partner": partner,
        "country_code": row.country_code or "",
        "party_id": row.party_id or "",
        "location_id": row.ocpi_id or "",
    }
    patch = row.method == "PATCH"
    written: Location | Evse | Connector
    if row.evse_uid is None:
        written = (locations.patch_location if patch else locations.upsert_location)(body, **keys)
    elif row.connector_id is None:
        written = (locations.patch_evse if patch else locations.upsert_evse)(body, evse_uid=row.evse_uid, **keys)
    else:
        writer = locations.patch_connector if patch else locations.upsert_connector
        written = writer(body, evse_uid=row.evse_uid, connector_id=row.connector_id, **keys)
    return Outcome.STALE if _newer_held(written.last_updated, body) else Outcome.STORED


def _tariff_pushed(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    tariffs.store_tariff(
        _object(obj),
        partner=partner,
        country_code=row.country_code or "",
        party_id=row.party_id or "",
        tariff_id=row.ocpi_id or "",
    )
    return Outcome.STORED


def _session_pulled(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    session = sessions.store_session(partner, obj)
    return Outcome.STALE if _newer_held(session.last_updated, obj) else Outcome.STORED


def _batch_outcome(batch: BatchResult) -> Outcome:
    if batch.errors:
        raise InvalidObjectError(batch.errors[0][2])
    return Outcome.STALE if batch.stale else Outcome.STORED


def _allowed(partner: Partner) -> frozenset[tuple[str, str]] | None:
    return None if partner.is_hub else parties_of(partner)


def _location_pulled(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    return _batch_outcome(locations.upsert_locations([obj], partner=partner, allowed_parties=_allowed(partner)))


def _tariff_pulled(partner: Partner, row: QuarantinedObject, obj: Any) -> Outcome:
    return _batch_outcome(tariffs.store_tariffs([obj], partner=partner, allowed_parties=_allowed(partner)))


_Store = Callable[[Partner, QuarantinedObject, Any], Outcome]
_PUSHED: dict[str, _Store] = {"sessions": _session_pushed, "locations": _location_pushed, "tariffs": _tariff_pushed}
_PULLED: dict[str, _Store] = {"sessions": _session_pulled, "locations": _location_pulled, "tariffs": _tariff_pulled}


def superseded(row: QuarantinedObject, obj: Any) -> bool:
    """Whether an object still refused is no longer needed: the CDR with its key is stored (a CDR never changes),
    or the session, location (EVSE, connector) or tariff with its key is held as of the object's last_updated or
    later. Unreadable keys are never superseded."""
    if not (row.country_code and row.party_id and row.ocpi_id):
        return False
    key = (row.country_code, row.party_id, row.ocpi_id)
    if row.module == "cdrs":
        return cdrs.find_cdr(*key) is not None
    held: dt.datetime | None = None
    if row.module == "sessions":
        session = sessions.find_session(*key)
        held = session.last_updated if session else None
    elif row.module == "tariffs":
        versions = tariffs.tariff_versions(*key)
        held = versions[-1].last_updated if versions else None
    elif row.module == "locations":
        held = _location_part_updated(row)
    if held is None or not isinstance(obj, dict) or obj.get("last_updated") is None:
        return False
    return not _sent_after(held, obj)


def _sent_after(held: dt.datetime, obj: dict[str, Any]) -> bool:
    try:
        return to_datetime(obj["last_updated"], "last_updated") > held
    except InvalidObjectError:
        return True  # an unreadable last_updated: we cannot say that ours is as new


def _location_part_updated(row: QuarantinedObject) -> dt.datetime | None:
    location = locations.get_location(row.country_code or "", row.party_id or "", row.ocpi_id or "")
    if location is None or row.evse_uid is None:
        return location.last_updated if location else None
    evse = locations.get_evse(location, row.evse_uid)
    if evse is None or row.connector_id is None:
        return evse.last_updated if evse else None
    connector = locations.get_connector(evse, row.connector_id)
    return connector.last_updated if connector else None
