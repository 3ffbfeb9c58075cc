"""Commands we send to CPOs (mod_commands, we are the Sender): remote start/stop, unlock, reservations.

A command has two answers: the CPO's synchronous ``CommandResponse`` (did it accept to forward it, and how
long may the charge point take) and, later, the asynchronous ``CommandResult`` the CPO POSTs to the
``response_url`` we gave (``/ocpi/2.2.1/commands/{command}/{uid}``). When no result arrives within the
timeout, :func:`expire_commands` records ``TIMEOUT`` so the app can tell the driver. A result is final once
set: repeats and stale results change nothing, and a result arriving after our TIMEOUT is kept beside it
(``late_result``), see :func:`record_result`.

``Command.state`` (:class:`~app.roaming.models.CommandState`) is what we know, kept apart from what the CPO
said (issue 13, real CPOs):

- the CPO took it (``ACCEPTED``, also as a one-item list or with keys in another case) → ``PENDING``; an HTTP/OCPI
  success we cannot read (no result, garbage) → ``PENDING`` as well: the CPO got the command, so its result or
  the timeout will tell, never "failed" (an operator would retry and start a second session);
- the CPO refused it (CommandResponse REJECTED / NOT_SUPPORTED / UNKNOWN_SESSION, OCPI 2xxx, HTTP 4xx) →
  ``REJECTED``: nothing was done;
- no readable answer (timeout, connection lost, HTTP 5xx, OCPI 3xxx) → ``UNKNOWN``: it may have arrived and a
  session may run; ``NOT_SENT`` only when it certainly never reached the CPO (no connection was made);
- the CommandResult then gives ``ACCEPTED`` or ``FAILED`` (the result says why); no result in time: ``TIMEOUT``.

:func:`resend_is_safe` says whether sending the same command again could do it twice.

Commit before sending: the CPO may call ``response_url`` before our transaction ends. The app API therefore
calls :func:`prepare_command`, commits, then :func:`dispatch_command` (and commits again).
:func:`send_command` does both in one go for callers that do not need that (CLI, tests). A command is refused
(:class:`CommandError`, nothing recorded or sent) when the CPO could never post its result back: no public
OCPI base URL, or a loopback one outside development (:func:`app.public_urls.partner_reachable_ocpi_base_url`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import func, select

from app.accounts.models import Account
from app.cards.models import Card
from app.cards.tokens import token_object
from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.ocpi_ids import ci_key
from app.public_urls import PublicUrlNotConfiguredError, partner_reachable_ocpi_base_url
from app.roaming.models import Command, CommandState, Location, Partner, PartnerStatus
from app.roaming.ocpi.client import CallOutcome, OcpiClient, OcpiClientError, OcpiReply, ci_field, single_object
from app.roaming.ocpi.reader import InvalidObjectError

COMMAND_TYPES = frozenset({"CANCEL_RESERVATION", "RESERVE_NOW", "START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR"})
RESPONSE_TYPES = frozenset({"ACCEPTED", "NOT_SUPPORTED", "REJECTED", "UNKNOWN_SESSION"})  # CommandResponseType
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
REJECTED = "REJECTED"
DEFAULT_TIMEOUT_SECONDS = 60  # when the CPO answers without a usable timeout
MAX_TIMEOUT_SECONDS = 24 * 3600  # a longer "timeout" is not one (and 2**40 s would overflow the datetime)
# A command still SENDING this long after the call's own deadline lost the process that sent it.
SENDING_GIVEN_UP_AFTER_DEADLINE = dt.timedelta(minutes=5)
# OCPI client error codes (status_codes.asciidoc), in words for support.
CLIENT_ERROR_WORDS = {
    2000: "client error",
    2001: "invalid or missing parameters",
    2002: "not enough information",
    2003: "unknown location",
    2004: "unknown token",
}
# Where sending the same command again cannot do it twice: the charge point or the CPO said no, or it never left.
SAFE_TO_RESEND = frozenset({CommandState.FAILED, CommandState.REJECTED, CommandState.NOT_SENT})

log = logging.getLogger(__name__)


class CommandError(ValueError):
    pass


def response_url(command: str, uid: str) -> str:
    """Where the CPO posts the command's result: on the configured base URL (``OCPI_BASE_URL``, else
    ``PUBLIC_BASE_URL``), never on the Host header of the request that sent the command, and never on an
    address the CPO cannot reach (:class:`~app.public_urls.PublicUrlNotConfiguredError` then)."""
    return f"{partner_reachable_ocpi_base_url()}/ocpi/2.2.1/commands/{command}/{uid}"


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
    if partner.status != PartnerStatus.REGISTERED:  # suspended, unregistered, removed: we do not call it
        raise CommandError(f"partner {partner.name} is {partner.status.value}: no commands are sent to it")
    if not partner.endpoint_url("commands", "RECEIVER"):
        raise CommandError(f"partner {partner.name} has no Commands receiver endpoint")
    uid = uuid.uuid4().hex
    try:
        body["response_url"] = response_url(command, uid)
    except PublicUrlNotConfiguredError as exc:
        # The CPO would act on the command and post its result where it can never arrive.
        raise CommandError(f"not sent: the CPO could not post the result back to us: {exc}") from exc
    row = Command(
        uid=uid,
        partner_id=partner.id,
        account_id=account.id if account else (card.account_id if card else None),
        card_id=card.id if card else None,
        command=command,
        request=body,
        state=CommandState.SENDING,
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
        # reservation_id is a CiString(36): printable ASCII, where SQL upper() (SQLite, PostgreSQL) is ci_key.
        reservation = db.session.scalar(
            select(Command)
            .where(
                Command.partner_id == partner.id,
                Command.command == "RESERVE_NOW",
                func.upper(Command.request["reservation_id"].as_string()) == ci_key(str(body["reservation_id"])),
            )
            .order_by(Command.id.desc())
            .limit(1)
        )
        if reservation is not None and reservation.request.get("location_id"):
            return _location_party(partner, reservation.request["location_id"])
    return None


def dispatch_command(command: Command, now: dt.datetime | None = None) -> Command:
    """POST the command to the CPO and store what its answer tells (see the module docstring). Flushes; the
    caller commits.

    Redirects at the partner's own origin are followed (a CPO answering 307 to every call is real, issue 13): a
    307/308 means the request was not processed where it was sent, so following it cannot do the command twice.
    The transport never follows a redirect to another origin with our token (app/roaming/ocpi/transport.py).
    After a redirect, a failure is "unknown" rather than "not sent" (:class:`~app.roaming.ocpi.client.CallOutcome`)."""
    now = now or utcnow()
    partner = db.session.get_one(Partner, command.partner_id)
    url = f"{(partner.endpoint_url('commands', 'RECEIVER') or '').rstrip('/')}/{command.command}"
    to = addressee(partner, command.request)
    try:
        reply = OcpiClient(partner).post(
            url,
            command.request,
            to_country_code=to[0] if to else None,
            to_party_id=to[1] if to else None,
        )
    except OcpiClientError as exc:
        _lock(command)
        _record_failed_call(command, exc, now)
    else:
        # The CPO may have posted the CommandResult to our response_url (committed) while we waited for its
        # answer: read the row again, locked, so the final result it recorded is never overwritten.
        _lock(command)
        _record_response(command, reply, now)
    db.session.flush()
    return command


@dataclass(frozen=True)
class CommandResponse:
    """A CPO's CommandResponse as far as it could be read: ``result`` None when it could not (``problem``)."""

    result: str | None
    timeout: int | None
    message: str | None
    problem: str | None = None


def read_command_response(data: Any) -> CommandResponse:
    """The CommandResponse in ``data``, read tolerantly: a one-item list unwrapped, field names in any case,
    the result's value in any case, a timeout sent as ``"30"`` or ``30.0``. Never raises."""
    found = single_object(data)
    if found is None:
        return CommandResponse(None, None, None, "CommandResponse unreadable: no object in data")
    raw = ci_field(found, "result")
    result = ci_key(raw.strip()) if isinstance(raw, str) else None
    timeout = _timeout_seconds(ci_field(found, "timeout"))
    message = _message_text(ci_field(found, "message"))
    if result not in RESPONSE_TYPES:
        what = "no result" if raw is None else "result is not a CommandResponseType"
        return CommandResponse(None, timeout, message, f"CommandResponse unreadable: {what}")
    return CommandResponse(result, timeout, message)


def _timeout_seconds(value: Any) -> int | None:
    """A usable timeout in whole seconds (1 s to a day), else None (our default applies)."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 6:
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():  # False for inf and nan
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIMEOUT_SECONDS:
        return value
    return None


def _record_response(command: Command, reply: OcpiReply, now: dt.datetime) -> None:
    command.response_http_status = reply.http_status
    command.response_status_code = reply.status_code
    answer = read_command_response(reply.data)
    command.response_result = answer.result
    command.response_timeout = answer.timeout
    command.response_problem = answer.problem
    if answer.result is None or answer.result == "ACCEPTED":
        if answer.problem:
            log.warning(
                "command %s %s: %s in a success answer (OCPI %s); waiting for its result or the timeout",
                command.command,
                command.uid,
                answer.problem,
                reply.status_code,
            )
        _await_result(command, answer.timeout, now)
    else:
        # Not accepted: no asynchronous result will come; the response is the final word.
        _refuse(command, answer.result, answer.message, now)


def _record_failed_call(command: Command, exc: OcpiClientError, now: dt.datetime) -> None:
    command.response_http_status = exc.http_status
    command.response_status_code = exc.status_code
    command.response_problem = exc.reason[:255]
    if exc.outcome is CallOutcome.REFUSED:
        _refuse(command, REJECTED, _refusal_words(exc), now)
    elif exc.outcome is CallOutcome.UNREADABLE:
        # An HTTP success: the CPO has the command. Its result, or the timeout, will say what became of it.
        _await_result(command, None, now)
    elif command.result is None:
        command.state = CommandState.NOT_SENT if exc.outcome is CallOutcome.NOT_SENT else CommandState.UNKNOWN


def _await_result(command: Command, timeout: int | None, now: dt.datetime) -> None:
    command.timeout_at = now + dt.timedelta(seconds=timeout or DEFAULT_TIMEOUT_SECONDS)
    if command.result is None:
        command.state = CommandState.PENDING


def _refuse(command: Command, result: str, message: str | None, now: dt.datetime) -> None:
    if command.result is None:
        command.result = result
        command.result_message = message
        command.result_at = now
        command.state = CommandState.REJECTED


def _refusal_words(exc: OcpiClientError) -> str:
    if exc.status_code is not None and 2000 <= exc.status_code < 3000:
        words = CLIENT_ERROR_WORDS.get(exc.status_code, "client error")
        return f"OCPI {exc.status_code} ({words}), HTTP {exc.http_status}"
    return f"HTTP {exc.http_status}"


def _lock(command: Command) -> None:
    """Reload the command's row and lock it until the commit (PostgreSQL; SQLite has one writer anyway)."""
    db.session.refresh(command, with_for_update=True)


def send_command(
    partner: Partner, command: str, payload: dict[str, Any], account: Account | None = None, card: Card | None = None
) -> Command:
    return dispatch_command(prepare_command(partner, command, payload, account, card))


def resend_is_safe(command: Command) -> bool:
    """Whether sending the same command again cannot do it twice (start a second session): only when the
    charge point or the CPO said no, or it never left us. After UNKNOWN, TIMEOUT or while PENDING, check the
    charge point (or the sessions) first."""
    return command.state in SAFE_TO_RESEND


def _message_text(message: Any) -> str | None:
    if not message:
        return None
    # The reader gives non-integer numbers as Decimal (a message is free-form; {"text": 1.5} was a 500): kept
    # as their text, since this is only what support reads.
    return json.dumps(message, ensure_ascii=False, default=str)[:2000]


def _uid_key(uid: str) -> str:
    """Our command uids are lower-case hex (``uuid4().hex``); in the CPO's hands the URL segment is a CiString,
    so its spelling is folded to ours and the lookup stays on the unique index."""
    return uid.lower()


def _state_after_result(command_type: str, result: str) -> CommandState:
    done = result == "ACCEPTED" or (result == "CANCELED_RESERVATION" and command_type == "CANCEL_RESERVATION")
    return CommandState.ACCEPTED if done else CommandState.FAILED


def record_result(
    partner: Partner, command_type: str, uid: str, result: Any, now: dt.datetime | None = None
) -> Command | None:
    """Store the CommandResult POSTed to our response_url. None when no such command of this partner.

    The uid and command type from the URL are found in any case; the CommandResult is read like a
    CommandResponse (one-item list, field names and the result's value in any case).

    Every CommandResultType is final (mod_commands, CommandResultType): the first result stays. A repeated or
    stale result changes nothing and is only logged; the caller still answers success, so the CPO stops
    retrying. After we gave up waiting (:func:`expire_commands`) the first result that still comes is kept
    beside the TIMEOUT (``late_result``), so support can see what happened at the charge point. A result for a
    command whose answer we never read (UNKNOWN) is the word we waited for: it becomes the command's result."""
    command = db.session.scalar(select(Command).where(Command.uid == _uid_key(uid)).with_for_update())
    if command is None or command.partner_id != partner.id or command.command != ci_key(command_type):
        return None
    body = single_object(result)
    if body is None:
        raise InvalidObjectError("a CommandResult must be a JSON object")
    raw = ci_field(body, "result")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidObjectError("missing required field result")
    value = ci_key(raw.strip())
    if value not in RESULT_TYPES:
        raise InvalidObjectError(f"field result must be one of {', '.join(sorted(RESULT_TYPES))}")
    now = now or utcnow()
    text = _message_text(ci_field(body, "message"))
    if command.result is None:
        command.result = value
        command.result_message = text
        command.result_at = now
        command.state = _state_after_result(command.command, value)
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


class Expired(NamedTuple):
    timed_out: int  # PENDING past their timeout: now TIMEOUT
    interrupted: int  # SENDING long after the call's deadline (the sending process stopped): now UNKNOWN


def expire_overdue_commands(now: dt.datetime | None = None) -> Expired:
    """Mark commands the CPO took but never answered, past their timeout, as TIMEOUT, and commands whose sending
    was interrupted (still SENDING well after the call's deadline) as UNKNOWN: they may have reached the CPO.

    Rows are locked, and those another transaction holds (a result being recorded) are left for the next run,
    so a result arriving at the same moment is never overwritten by TIMEOUT."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Command)
        .where(
            Command.state == CommandState.PENDING,
            Command.result.is_(None),
            Command.timeout_at.is_not(None),
            Command.timeout_at <= now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for command in due:
        command.result = TIMEOUT
        command.result_message = "no CommandResult from the CPO within its timeout"
        command.result_at = now
        command.timed_out_at = now
        command.state = CommandState.TIMEOUT
    deadline = dt.timedelta(seconds=float(current_app.config["OCPI_CALL_DEADLINE"]))
    interrupted = db.session.scalars(
        select(Command)
        .where(
            Command.state == CommandState.SENDING,
            Command.created_at <= now - deadline - SENDING_GIVEN_UP_AFTER_DEADLINE,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for command in interrupted:
        log.warning("command %s %s: sending was interrupted; it may have reached the CPO", command.command, command.uid)
        command.state = CommandState.UNKNOWN
        command.response_problem = "no answer recorded: sending was interrupted"
    db.session.flush()
    return Expired(len(due), len(interrupted))


def expire_commands(now: dt.datetime | None = None) -> int:
    """:func:`expire_overdue_commands`; returns how many commands changed state."""
    return sum(expire_overdue_commands(now))
