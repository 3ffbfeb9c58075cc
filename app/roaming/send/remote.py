"""Remote start and stop for a driver (the app API and the portal), on the command service (``commands``).

Everything that can be known here is checked *before* anything is sent, and a refusal (:class:`RefusedError`) says
why with a stable code (:data:`REFUSAL_MESSAGES`: the doors show the message, the app branches on the code):

- start: the location, EVSE (and connector, when named) are known; the card is the account's; the card may
  charge (:func:`app.roaming.send.authorization.decide`, the one truth of "may this card charge": card status,
  the account's standing checks such as an unpaid overdue invoice, partner rules); the account has a usable
  payment method; the location is published and its partner REGISTERED with a Commands receiver; the EVSE is
  ``REMOTE_START_STOP_CAPABLE`` and ``AVAILABLE``;
- stop: the session is the account's and under way (``PENDING`` or ``ACTIVE``).

The command goes to the partner that delivered the location or session (``Location.partner_id``: a CPO, or the
hub that relays it; ``commands.addressee`` then names the CPO behind it in the routing headers).

Idempotency: while a start for the same account and EVSE (or a stop of the same session) is still pending
(being sent, or taken by the CPO and within its timeout), asking again returns that command; nothing is sent
twice. The account's row is locked for the check, so two requests at once cannot both send (PostgreSQL; SQLite
has one writer anyway).

Units of work: the command must be committed before it is sent (the CPO may post its result to our
``response_url`` before the sending request ends; see ``commands``). :func:`start_session` and
:func:`stop_session` therefore take the door's ``commit`` and call it between recording and sending; the door
commits again afterwards. :func:`request_start` / :func:`request_stop` and :func:`send` are the two halves.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import Account
from app.cards.models import Card, CardStatus
from app.charging.models import ChargingSession
from app.charging.services import LIVE_STATUSES
from app.db import utcnow
from app.extensions import db
from app.ocpi_ids import ci_key
from app.payments.services import has_valid_payment_method
from app.roaming.models import Command, CommandState, Connector, Evse, Location, Partner, PartnerStatus
from app.roaming.receive.locations import get_connector, get_evse, get_location
from app.roaming.send.authorization import (
    ALLOWED,
    BLOCKED,
    EXPIRED,
    NO_CREDIT,
    account_standing,
    decide,
)
from app.roaming.send.commands import CommandError, dispatch_command, prepare_command

REMOTE_CAPABILITY = "REMOTE_START_STOP_CAPABLE"  # OCPI Capability of an EVSE (mod_locations)
AVAILABLE = "AVAILABLE"

LOCATION_NOT_FOUND = "location_not_found"
LOCATION_UNAVAILABLE = "location_unavailable"
EVSE_NOT_FOUND = "evse_not_found"
CONNECTOR_NOT_FOUND = "connector_not_found"
EVSE_NOT_REMOTE_CAPABLE = "evse_not_remote_capable"
EVSE_UNAVAILABLE = "evse_unavailable"
NOT_YOUR_CARD = "not_your_card"
CARD_BLOCKED = "card_blocked"
CARD_EXPIRED = "card_expired"
CARD_NOT_ACTIVE = "card_not_active"
NO_PAYMENT_METHOD = "no_payment_method"
OVERDUE_BALANCE = "overdue_balance"
LOCATION_NOT_ALLOWED = "location_not_allowed"
REMOTE_CONTROL_UNAVAILABLE = "remote_control_unavailable"
SESSION_NOT_FOUND = "session_not_found"
SESSION_NOT_ACTIVE = "session_not_active"

REFUSAL_MESSAGES: dict[str, LazyString] = {
    LOCATION_NOT_FOUND: _l("This charging location is not known."),
    LOCATION_UNAVAILABLE: _l("This charging location cannot be used from the app at the moment."),
    EVSE_NOT_FOUND: _l("This charge point is not known at this location."),
    CONNECTOR_NOT_FOUND: _l("This charge point has no such connector."),
    EVSE_NOT_REMOTE_CAPABLE: _l("This charge point cannot be started from the app. Use your charge card."),
    EVSE_UNAVAILABLE: _l("This charge point is not available right now."),
    NOT_YOUR_CARD: _l("This card is not one of yours."),
    CARD_BLOCKED: _l("This card is blocked. Choose another card or contact customer service."),
    CARD_EXPIRED: _l("This card is no longer valid. Use your new card."),
    CARD_NOT_ACTIVE: _l("This card is not active yet. Activate it first."),
    NO_PAYMENT_METHOD: _l("Add a valid payment method before charging."),
    OVERDUE_BALANCE: _l("Charging is paused: an invoice is overdue. Please pay your balance first."),
    LOCATION_NOT_ALLOWED: _l("Your cards cannot be used at this location."),
    REMOTE_CONTROL_UNAVAILABLE: _l("The operator of this charge point cannot be reached from the app right now."),
    SESSION_NOT_FOUND: _l("This session does not exist or is not yours."),
    SESSION_NOT_ACTIVE: _l("This session has already ended."),
}


class RefusedError(Exception):
    """Nothing was sent: ``code`` (one of :data:`REFUSAL_MESSAGES`) says why, ``detail`` in English for logs
    and support."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    @property
    def message(self) -> LazyString:
        return REFUSAL_MESSAGES[self.code]


@dataclass(frozen=True)
class Requested:
    """A command recorded (``fresh``: to be sent) or the identical one still pending (not sent again)."""

    command: Command
    fresh: bool


# --- start -------------------------------------------------------------------------------------------------------


def find_location(country_code: str, party_id: str, location_id: str) -> Location | None:
    """A location by its OCPI key, in whatever case the caller wrote it."""
    return get_location(country_code, party_id, location_id)


def startable_cards(account_id: int) -> list[Card]:
    """The account's cards and app tokens that may start a session (active), newest first."""
    return list(
        db.session.scalars(
            select(Card).where(Card.account_id == account_id, Card.status == CardStatus.ACTIVE).order_by(Card.id.desc())
        )
    )


@dataclass(frozen=True)
class StartTarget:
    """Where a start goes: the partner to send it to, and the EVSE (and connector) at the location."""

    partner: Partner
    location: Location
    evse: Evse
    connector: Connector | None


def check_start(
    account: Account, location: Location | None, evse_uid: str, card: Card, connector_id: str | None = None
) -> StartTarget:
    """Every refusal of a start (see the module docstring), without recording anything: the start page asks it
    before offering the button. Raises :class:`RefusedError`."""
    evse, connector = _charge_point(location, evse_uid, connector_id)
    assert location is not None  # _charge_point refused an unknown location
    if card.account_id != account.id:
        raise RefusedError(NOT_YOUR_CARD, f"card {card.id} is not account {account.id}'s")
    return _startable(account, card, location, evse, connector)


def request_start(
    account: Account,
    location: Location | None,
    evse_uid: str,
    card: Card,
    connector_id: str | None = None,
    now: dt.datetime | None = None,
) -> Requested:
    """Check a remote start and record its START_SESSION command (flushes; nothing is sent). Raises
    :class:`RefusedError`.

    A start still pending for this account and EVSE is returned before the checks that the start itself
    changes (the EVSE becomes CHARGING once the charge point starts)."""
    now = now or utcnow()
    evse, connector = _charge_point(location, evse_uid, connector_id)
    assert location is not None
    if card.account_id != account.id:
        raise RefusedError(NOT_YOUR_CARD, f"card {card.id} is not account {account.id}'s")
    _lock(account)
    pending = _pending(account, "START_SESSION", now, lambda command: _same_evse(command, location, evse))
    if pending is not None:
        return Requested(pending, fresh=False)
    target = _startable(account, card, location, evse, connector)
    payload: dict[str, Any] = {
        "location_id": location.ocpi_id,
        "evse_uid": evse.uid,
        # Given back in the Session and CDR the start leads to (mod_commands StartSession).
        "authorization_reference": uuid.uuid4().hex,
    }
    if connector is not None:
        payload["connector_id"] = connector.connector_id
    return Requested(_prepare(target.partner, "START_SESSION", payload, account, card), fresh=True)


def _charge_point(location: Location | None, evse_uid: str, connector_id: str | None) -> tuple[Evse, Connector | None]:
    if location is None:
        raise RefusedError(LOCATION_NOT_FOUND, "unknown location")
    evse = get_evse(location, evse_uid)
    if evse is None or evse.status == "REMOVED":
        raise RefusedError(EVSE_NOT_FOUND, f"no EVSE {evse_uid} at location {location.ocpi_id}")
    connector = get_connector(evse, connector_id) if connector_id else None
    if connector_id and connector is None:
        raise RefusedError(CONNECTOR_NOT_FOUND, f"no connector {connector_id} at EVSE {evse.uid}")
    return evse, connector


def _startable(
    account: Account, card: Card, location: Location, evse: Evse, connector: Connector | None
) -> StartTarget:
    partner = _reachable_partner(location.partner_id, LOCATION_UNAVAILABLE)
    if not location.publish:
        raise RefusedError(LOCATION_UNAVAILABLE, f"location {location.ocpi_id} is not published")
    _check_card(account, card, partner, location, evse)
    if REMOTE_CAPABILITY not in {ci_key(str(item)) for item in evse.data.get("capabilities") or []}:
        raise RefusedError(EVSE_NOT_REMOTE_CAPABLE, f"EVSE {evse.uid} is not {REMOTE_CAPABILITY}")
    if ci_key(evse.status) != AVAILABLE:
        raise RefusedError(EVSE_UNAVAILABLE, f"EVSE {evse.uid} is {evse.status}")
    return StartTarget(partner, location, evse, connector)


def _check_card(account: Account, card: Card, partner: Partner, location: Location, evse: Evse) -> None:
    """The card may charge here, as real-time authorization would answer the CPO, and the account can pay."""
    references = {"location_id": location.ocpi_id, "evse_uids": [evse.uid]}
    decision = decide(card, partner, references, account_standing(account.id))
    if decision.allowed == EXPIRED:
        raise RefusedError(CARD_EXPIRED, decision.reason)
    if decision.allowed == NO_CREDIT:  # an unpaid overdue invoice, or cards blocked by dunning for one
        raise RefusedError(OVERDUE_BALANCE, decision.reason)
    if decision.allowed == BLOCKED:
        code = CARD_BLOCKED if card.status == CardStatus.BLOCKED else CARD_NOT_ACTIVE
        raise RefusedError(code, decision.reason)
    if decision.allowed != ALLOWED:
        raise RefusedError(LOCATION_NOT_ALLOWED, decision.reason)
    if not has_valid_payment_method(account.id):
        raise RefusedError(NO_PAYMENT_METHOD, f"account {account.id} has no usable payment method")


def _same_evse(command: Command, location: Location, evse: Evse) -> bool:
    body = command.request
    return (
        command.partner_id == location.partner_id
        and ci_key(str(body.get("location_id"))) == location.ocpi_id_key
        and ci_key(str(body.get("evse_uid"))) == ci_key(evse.uid)
    )


# --- stop --------------------------------------------------------------------------------------------------------


def session_of(account_id: int, session_id: int) -> ChargingSession | None:
    """The account's charging session by our id; None when there is none or it is another account's."""
    session = db.session.get(ChargingSession, session_id)
    return session if session is not None and session.account_id == account_id else None


def request_stop(account: Account, session: ChargingSession | None, now: dt.datetime | None = None) -> Requested:
    """Check a remote stop and record its STOP_SESSION command (flushes; nothing is sent). Raises
    :class:`RefusedError`."""
    now = now or utcnow()
    if session is None or session.account_id != account.id:
        raise RefusedError(SESSION_NOT_FOUND, "no such session of this account")
    if session.status not in LIVE_STATUSES:
        raise RefusedError(SESSION_NOT_ACTIVE, f"session {session.ocpi_id} is {session.status}")
    _lock(account)
    pending = _pending(account, "STOP_SESSION", now, lambda command: _same_session(command, session))
    if pending is not None:
        return Requested(pending, fresh=False)
    partner = _reachable_partner(session.partner_id, REMOTE_CONTROL_UNAVAILABLE)
    card = db.session.get(Card, session.card_id) if session.card_id else None
    return Requested(_prepare(partner, "STOP_SESSION", {"session_id": session.ocpi_id}, account, card), fresh=True)


def _same_session(command: Command, session: ChargingSession) -> bool:
    return command.partner_id == session.partner_id and ci_key(str(command.request.get("session_id"))) == (
        session.ocpi_id_key
    )


# --- sending -----------------------------------------------------------------------------------------------------


def send(requested: Requested) -> Command:
    """Send a freshly recorded command (after its commit) and store the CPO's answer (flushes). A pending one
    that was returned again is not sent twice."""
    if requested.fresh and requested.command.state == CommandState.SENDING:
        dispatch_command(requested.command)
    return requested.command


def start_session(
    account: Account,
    location: Location | None,
    evse_uid: str,
    card: Card,
    *,
    commit: Callable[[], None],
    connector_id: str | None = None,
) -> Command:
    """Check, record, ``commit()``, send: the START_SESSION command as the CPO answered it. Raises
    :class:`RefusedError` (nothing recorded or sent). The caller commits the answer."""
    requested = request_start(account, location, evse_uid, card, connector_id)
    commit()
    return send(requested)


def stop_session(account: Account, session: ChargingSession | None, *, commit: Callable[[], None]) -> Command:
    """Check, record, ``commit()``, send: the STOP_SESSION command as the CPO answered it. Raises
    :class:`RefusedError`. The caller commits the answer."""
    requested = request_stop(account, session)
    commit()
    return send(requested)


# --- reading a command back ----------------------------------------------------------------------------------------


def command_status(account: Account, command_id: int) -> Command | None:
    """The account's command; None when there is none or it is another account's."""
    command = db.session.get(Command, command_id)
    return command if command is not None and command.account_id == account.id else None


def latest_stops(account_id: int, limit: int = 20) -> dict[tuple[int | None, str], Command]:
    """The account's newest STOP_SESSION command per session, by the partner it went to and the session id
    (folded: ``ChargingSession.partner_id`` and ``ocpi_id_key``), among its last ``limit`` stop requests."""
    commands = db.session.scalars(
        select(Command)
        .where(Command.account_id == account_id, Command.command == "STOP_SESSION")
        .order_by(Command.id.desc())
        .limit(limit)
    ).all()
    found: dict[tuple[int | None, str], Command] = {}
    for command in commands:
        found.setdefault((command.partner_id, ci_key(str(command.request.get("session_id")))), command)
    return found


def command_location(command: Command) -> Location | None:
    """The location a command is about, as its partner delivered it: the START's ``location_id``, or the
    location of the session a STOP names."""
    body = command.request
    location_id = body.get("location_id")
    if not isinstance(location_id, str) and isinstance(body.get("session_id"), str):
        session = db.session.scalar(
            select(ChargingSession).where(
                ChargingSession.partner_id == command.partner_id,
                ChargingSession.ocpi_id_key == ci_key(body["session_id"]),
            )
        )
        if session is None:
            return None
        return get_location(session.country_code, session.party_id, session.location_ocpi_id)
    if not isinstance(location_id, str):
        return None
    return db.session.scalar(
        select(Location).where(Location.partner_id == command.partner_id, Location.ocpi_id_key == ci_key(location_id))
    )


def shown_state(command: Command, now: dt.datetime | None = None) -> CommandState:
    """The state to show: a command the CPO took whose timeout passed is TIMEOUT even before the periodic
    ``expire_commands`` records it (without a worker, in development, it never would)."""
    now = now or utcnow()
    if command.state == CommandState.PENDING and command.timeout_at is not None and command.timeout_at <= now:
        return CommandState.TIMEOUT
    return command.state


def result_text(command: Command, language: str) -> str | None:
    """The CPO's words with the result (a DisplayText list, one text, or anything else as sent), in
    ``language`` when it gave that one; None when it said nothing."""
    raw = command.result_message
    if not raw:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return raw[:500]
    if isinstance(message, str):
        return message[:500]
    texts = message if isinstance(message, list) else [message]
    displays = [item for item in texts if isinstance(item, dict) and isinstance(item.get("text"), str)]
    if not displays:
        return raw[:500]
    chosen = next((item for item in displays if str(item.get("language", "")).lower() == language), displays[0])
    return str(chosen["text"])[:500]


# --- shared --------------------------------------------------------------------------------------------------------


def _lock(account: Account) -> None:
    """Serialise this account's remote commands until the commit (the pending check, then the insert)."""
    db.session.execute(select(Account.id).where(Account.id == account.id).with_for_update())


def _pending(account: Account, command_type: str, now: dt.datetime, same: Callable[[Command], bool]) -> Command | None:
    """The account's newest command of this type for the same target still under way: being sent, or taken by
    the CPO and still within its timeout."""
    candidates = db.session.scalars(
        select(Command)
        .where(
            Command.account_id == account.id,
            Command.command == command_type,
            Command.state.in_((CommandState.SENDING, CommandState.PENDING)),
        )
        .order_by(Command.id.desc())
    ).all()
    for command in candidates:
        if shown_state(command, now) in (CommandState.SENDING, CommandState.PENDING) and same(command):
            return command
    return None


def _reachable_partner(partner_id: int | None, refusal: str) -> Partner:
    """The partner a command goes to: REGISTERED (suspended, unregistered, removed ones are not called) and
    with a Commands receiver; else ``refusal``."""
    partner = db.session.get(Partner, partner_id) if partner_id is not None else None
    if partner is None or partner.status != PartnerStatus.REGISTERED:
        state = partner.status.value if partner is not None else "unknown"
        raise RefusedError(refusal, f"the partner is {state}: no commands are sent to it")
    if not partner.endpoint_url("commands", "RECEIVER"):
        raise RefusedError(REMOTE_CONTROL_UNAVAILABLE, f"partner {partner.name} has no Commands receiver endpoint")
    return partner


def _prepare(partner: Partner, command: str, payload: dict[str, Any], account: Account, card: Card | None) -> Command:
    try:
        return prepare_command(partner, command, payload, account=account, card=card)
    except CommandError as error:
        raise RefusedError(REMOTE_CONTROL_UNAVAILABLE, str(error)) from error
