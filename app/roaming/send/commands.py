"""Commands we send to CPOs (mod_commands, we are the Sender): remote start/stop, unlock, reservations.

A command has two answers: the CPO's synchronous ``CommandResponse`` (did it accept to forward it, and how
long may the charge point take) and, later, the asynchronous ``CommandResult`` the CPO POSTs to the
``response_url`` we gave (``/ocpi/2.2.1/commands/{command}/{uid}``). When no result arrives within the
timeout, :func:`expire_commands` records ``TIMEOUT`` so the app can tell the driver. A result is final once
set: repeats and stale results change nothing, and a result arriving after our TIMEOUT is kept beside it
(``late_result``), see :func:`record_result`.

Commit before sending: the CPO may call ``response_url`` before our transaction ends. The app API therefore
calls :func:`prepare_command`, commits, then :func:`dispatch_command` (and commits again).
:func:`send_command` does both in one go for callers that do not need that (CLI, tests).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from sqlalchemy import select

from app.accounts.models import Account
from app.cards.models import Card
from app.cards.tokens import token_object
from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.ocpi_ids import ci_key
from app.public_urls import ocpi_base_url
from app.roaming.models import Command, Location, Partner
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from app.roaming.ocpi.reader import InvalidObjectError

COMMAND_TYPES = frozenset({"CANCEL_RESERVATION", "RESERVE_NOW", "START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR"})
RESULT_TYPES = frozenset(
    {
        "ACCEPTED",
        "CANCELED_RESERVATION",
        "EVSE_OCCUPIED",
        "EVSE_INOPERATIVE",
        "FAILED",
        "NOT_SUPPORTED",
        "REJECTED",
        "TIMEOUT",
        "UNKNOWN_RESERVATION",
    }
)
REQUIRED_FIELDS = {
    "START_SESSION": ("token", "location_id"),
    "STOP_SESSION": ("session_id",),
    "UNLOCK_CONNECTOR": ("location_id", "evse_uid", "connector_id"),
    "RESERVE_NOW": ("token", "expiry_date", "reservation_id", "location_id"),
    "CANCEL_RESERVATION": ("reservation_id",),
}
TIMEOUT = "TIMEOUT"
SEND_FAILED = "SEND_FAILED"  # our own marker in response_result: the CPO could not be reached
DEFAULT_TIMEOUT_SECONDS = 60  # when the CPO answers without a usable timeout

log = logging.getLogger(__name__)


class CommandError(ValueError):
    pass


def response_url(command: str, uid: str) -> str:
    """Where the CPO posts the command's result: on the configured base URL (``OCPI_BASE_URL``, else
    ``PUBLIC_BASE_URL``), never on the Host header of the request that sent the command."""
    return f"{ocpi_base_url()}/ocpi/2.2.1/commands/{command}/{uid}"


def prepare_command(
    partner: Partner, command: str, payload: dict[str, Any], account: Account | None = None, card: Card | None = None
) -> Command:
    """Record the command and its request body (with our ``response_url``). Flushes; nothing is sent."""
    if command not in COMMAND_TYPES:
        raise CommandError(f"unknown command {command}")
    body = dict(payload)
    if card is not None and command in ("START_SESSION", "RESERVE_NOW") and "token" not in body:
        body["token"] = token_object(card)
    missing = [field for field in REQUIRED_FIELDS[command] if body.get(field) in (None, "")]
    if missing:
        raise CommandError(f"{command} needs {', '.join(missing)}")
    if not partner.endpoint_url("commands", "RECEIVER"):
        raise CommandError(f"partner {partner.name} has no Commands receiver endpoint")
    uid = uuid.uuid4().hex
    body["response_url"] = response_url(command, uid)
    row = Command(
        uid=uid,
        partner_id=partner.id,
        account_id=account.id if account else (card.account_id if card else None),
        card_id=card.id if card else None,
        command=command,
        request=body,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _location_party(partner: Partner, location_id: Any) -> tuple[str, str] | None:
    rows = db.session.execute(
        select(Location.country_code, Location.party_id)
        .where(Location.partner_id == partner.id, Location.ocpi_id_key == ci_key(str(location_id)))
        .limit(2)
    ).all()
    return (rows[0][0], rows[0][1]) if len(rows) == 1 else None


def addressee(partner: Partner, body: dict[str, Any]) -> tuple[str, str] | None:
    """The CPO party a command is for, so a hub can route it (``OCPI-to-*``): the owner of the location
    (START_SESSION, RESERVE_NOW, UNLOCK_CONNECTOR), of the session (STOP_SESSION) or of the reservation's
    location (CANCEL_RESERVATION), as this partner sent them to us. None when unknown or ambiguous: the request
    then goes to the partner's own party (for a hub: an open routing decision of the hub)."""
    if body.get("location_id"):
        return _location_party(partner, body["location_id"])
    if body.get("session_id"):
        row = db.session.execute(
            select(ChargingSession.country_code, ChargingSession.party_id).where(
                ChargingSession.partner_id == partner.id, ChargingSession.ocpi_id_key == ci_key(str(body["session_id"]))
            )
        ).first()
        return (row[0], row[1]) if row else None
    if body.get("reservation_id"):
        reservation = db.session.scalar(
            select(Command)
            .where(
                Command.partner_id == partner.id,
                Command.command == "RESERVE_NOW",
                Command.request["reservation_id"].as_string() == str(body["reservation_id"]),
            )
            .order_by(Command.id.desc())
            .limit(1)
        )
        if reservation is not None and reservation.request.get("location_id"):
            return _location_party(partner, reservation.request["location_id"])
    return None


def dispatch_command(command: Command, now: dt.datetime | None = None) -> Command:
    """POST the command to the CPO and store its CommandResponse. Flushes; the caller commits."""
    now = now or utcnow()
    partner = db.session.get_one(Partner, command.partner_id)
    url = f"{(partner.endpoint_url('commands', 'RECEIVER') or '').rstrip('/')}/{command.command}"
    to = addressee(partner, command.request)
    try:
        reply = OcpiClient(partner).post(
            url, command.request, to_country_code=to[0] if to else None, to_party_id=to[1] if to else None
        )
    except OcpiClientError as exc:
        _lock(command)
        command.response_result = SEND_FAILED
        if command.result is None:
            command.result = "FAILED"
            command.result_message = str(exc)[:2000]
            command.result_at = now
        db.session.flush()
        return command
    data = reply.data if isinstance(reply.data, dict) else {}
    # The CPO may have posted the CommandResult to our response_url (committed) while we waited for its answer:
    # read the row again, locked, so the final result it recorded is never overwritten.
    _lock(command)
    command.response_result = str(data.get("result") or "")[:30] or None
    timeout = data.get("timeout")
    command.response_timeout = timeout if isinstance(timeout, int) and timeout >= 0 else None
    if command.response_result == "ACCEPTED":
        command.timeout_at = now + dt.timedelta(seconds=command.response_timeout or DEFAULT_TIMEOUT_SECONDS)
    elif command.result is None:
        # Not accepted: no asynchronous result will come; the response is the final word.
        command.result = command.response_result or "FAILED"
        command.result_message = _message_text(data.get("message"))
        command.result_at = now
    db.session.flush()
    return command


def _lock(command: Command) -> None:
    """Reload the command's row and lock it until the commit (PostgreSQL; SQLite has one writer anyway)."""
    db.session.refresh(command, with_for_update=True)


def send_command(
    partner: Partner, command: str, payload: dict[str, Any], account: Account | None = None, card: Card | None = None
) -> Command:
    return dispatch_command(prepare_command(partner, command, payload, account, card))


def _message_text(message: Any) -> str | None:
    if not message:
        return None
    # The reader gives non-integer numbers as Decimal (a message is free-form; {"text": 1.5} was a 500): kept
    # as their text, since this is only what support reads.
    return json.dumps(message, ensure_ascii=False, default=str)[:2000]


def record_result(
    partner: Partner, command_type: str, uid: str, result: dict[str, Any], now: dt.datetime | None = None
) -> Command | None:
    """Store the CommandResult POSTed to our response_url. None when no such command of this partner.

    Every CommandResultType is final (mod_commands, CommandResultType): the first result stays. A repeated or
    stale result changes nothing and is only logged; the caller still answers success, so the CPO stops
    retrying. After we gave up waiting (:func:`expire_commands`) the first result that still comes is kept
    beside the TIMEOUT (``late_result``), so support can see what happened at the charge point."""
    command = db.session.scalar(select(Command).where(Command.uid == uid).with_for_update())
    if command is None or command.partner_id != partner.id or command.command != command_type:
        return None
    if not isinstance(result, dict):
        raise InvalidObjectError("a CommandResult must be a JSON object")
    value = result.get("result")
    if not isinstance(value, str) or not value:
        raise InvalidObjectError("missing required field result")
    if value not in RESULT_TYPES:
        raise InvalidObjectError(f"field result must be one of {', '.join(sorted(RESULT_TYPES))}")
    now = now or utcnow()
    text = _message_text(result.get("message"))
    if command.result is None:
        command.result = value
        command.result_message = text
        command.result_at = now
    elif command.timed_out_at is not None and command.late_result is None:
        log.info(
            "command %s %s: result %s arrived after our timeout; kept as late_result, the command stays %s",
            command.command,
            command.uid,
            value,
            command.result,
        )
        command.late_result = value
        command.late_result_message = text
        command.late_result_at = now
    else:
        kind = "repeated" if value == (command.late_result or command.result) else "stale"
        log.warning(
            "command %s %s: %s result %s ignored; the final result is %s",
            command.command,
            command.uid,
            kind,
            value,
            command.result,
        )
    db.session.flush()
    return command


def expire_commands(now: dt.datetime | None = None) -> int:
    """Mark accepted commands without result past their timeout as TIMEOUT; returns how many.

    Rows are locked, and those another transaction holds (a result being recorded) are left for the next run,
    so a result arriving at the same moment is never overwritten by TIMEOUT."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Command)
        .where(Command.result.is_(None), Command.timeout_at.is_not(None), Command.timeout_at <= now)
        .with_for_update(skip_locked=True)
    ).all()
    for command in due:
        command.result = TIMEOUT
        command.result_message = "no CommandResult from the CPO within its timeout"
        command.result_at = now
        command.timed_out_at = now
    db.session.flush()
    return len(due)
