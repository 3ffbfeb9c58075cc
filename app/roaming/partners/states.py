"""A partner's status over its lifetime: which move may take it from which status to which, and the record of
every move (on the row: when, by whom, why; and in the audit trail).

::

    PENDING ──they POST credentials (our token A) / we register (their token A)──▶ REGISTERED
    REGISTERED ──suspend──▶ SUSPENDED ──resume──▶ REGISTERED
    PENDING, REGISTERED, SUSPENDED ──unregister (we DELETE) / they DELETE──▶ UNREGISTERED
    UNREGISTERED, REMOVED, PENDING ──we register with their (new) token A──▶ REGISTERED
    any status ──a new token A of ours (partner-token)──▶ PENDING
    any status but REMOVED ──remove──▶ REMOVED

``SUSPENDED`` is our decision (credentials kept, our cards refused there, nothing pushed, pulled or commanded,
their sessions and CDRs still accepted); ``UNREGISTERED`` means the credentials ended, whoever ended them; the row
says who (``status_changed_by``), when and why. A move that is not allowed raises :class:`PartnerError` naming
the status and what to do instead; nothing changes. Functions here flush, never commit.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.audit.services import Actor, record
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS
from app.roaming.partners.errors import PartnerError

PENDING = PartnerStatus.PENDING
REGISTERED = PartnerStatus.REGISTERED
SUSPENDED = PartnerStatus.SUSPENDED
UNREGISTERED = PartnerStatus.UNREGISTERED
REMOVED = PartnerStatus.REMOVED

# The statuses in which we call the partner (push tokens, send commands, pull) and our cards are authorized there.
TALKING = frozenset({REGISTERED})
# The statuses whose token may call our door at all; a suspended partner only some modules (door/auth.py).
CALLING = frozenset({PENDING, REGISTERED, SUSPENDED})

AUDIT_SUBJECT = "roaming_partner"
REASON_MAX_CHARS = 500


class Move(enum.StrEnum):
    REGISTER = "register"  # we POST our credentials with the token A they gave us
    ACCEPT_REGISTRATION = "accept_registration"  # they POST theirs with the token A we gave them
    ROTATE = "rotate"  # PUT credentials, either way: new tokens, status kept
    SUSPEND = "suspend"
    RESUME = "resume"
    UNREGISTER = "unregister"  # DELETE credentials, either way
    RESET = "reset"  # flask roaming partner-token: a new token A of ours, they may register again from scratch
    REMOVE = "remove"


@dataclass(frozen=True)
class Rule:
    allowed_from: frozenset[PartnerStatus]
    to: PartnerStatus | None  # None: the status stays (a rotation)
    action: str  # in the audit trail
    verb: str  # for the refusal: "cannot <verb>"


RULES: dict[Move, Rule] = {
    Move.REGISTER: Rule(frozenset({PENDING, UNREGISTERED, REMOVED}), REGISTERED, "partner.registered", "register"),
    Move.ACCEPT_REGISTRATION: Rule(frozenset({PENDING}), REGISTERED, "partner.registered", "accept a registration"),
    Move.ROTATE: Rule(frozenset({REGISTERED, SUSPENDED}), None, "partner.credentials_rotated", "rotate credentials"),
    Move.SUSPEND: Rule(frozenset({REGISTERED}), SUSPENDED, "partner.suspended", "suspend"),
    Move.RESUME: Rule(frozenset({SUSPENDED}), REGISTERED, "partner.resumed", "resume"),
    Move.UNREGISTER: Rule(
        frozenset({PENDING, REGISTERED, SUSPENDED}), UNREGISTERED, "partner.unregistered", "unregister"
    ),
    Move.RESET: Rule(frozenset(PartnerStatus), PENDING, "partner.token_a_issued", "hand out a token A"),
    Move.REMOVE: Rule(frozenset(set(PartnerStatus) - {REMOVED}), REMOVED, "partner.removed", "remove"),
}

# What to do instead, per refused (move, status).
HINTS: dict[tuple[Move, PartnerStatus], str] = {
    (Move.REGISTER, REGISTERED): "already registered; rotate the credentials with update-credentials",
    (Move.REGISTER, SUSPENDED): "resume it, or unregister it first to register from scratch",
    (Move.ROTATE, PENDING): "not registered; register first",
    (Move.ROTATE, UNREGISTERED): "not registered; register again (register --their-token) first",
    (Move.ROTATE, REMOVED): "removed; register again (register --their-token) first",
    (Move.SUSPEND, SUSPENDED): "already suspended",
    (Move.SUSPEND, PENDING): "not registered: nothing to suspend (hand out a new token A or remove it)",
    (Move.RESUME, REGISTERED): "not suspended",
    (Move.UNREGISTER, UNREGISTERED): "not registered",
    (Move.UNREGISTER, REMOVED): "removed",
    (Move.REMOVE, REMOVED): "already removed",
}


def check(partner: Partner, move: Move) -> Rule:
    """The rule of ``move`` when the partner's status allows it; else :class:`PartnerError`."""
    rule = RULES[move]
    if partner.status in rule.allowed_from:
        return rule
    hint = HINTS.get((move, partner.status))
    allowed = ", ".join(sorted(status.value for status in rule.allowed_from))
    raise PartnerError(
        f"{partner.name} is {partner.status.value}: cannot {rule.verb} ({hint or f'only from {allowed}'})"
    )


def apply(
    partner: Partner, move: Move, *, actor: Actor, reason: str | None = None, details: dict[str, Any] | None = None
) -> None:
    """Take ``move`` (checked again: a caller may have waited on the row lock) and record it: the status with
    when, who and why on the row, and an audit entry in the caller's unit of work. Flushes."""
    rule = check(partner, move)
    previous = partner.status
    if rule.to is not None:
        partner.status = rule.to
        partner.status_changed_at = utcnow()
        partner.status_changed_by = actor.label[:255]
        partner.status_reason = reason
    record(
        rule.action,
        AUDIT_SUBJECT,
        partner.id,
        actor=actor,
        reason=reason,
        details={"from": previous.value, "to": partner.status.value, **(details or {})},
    )
    db.session.flush()


def partner_actor(partner: Partner) -> Actor:
    """The partner itself, when it acts through our door (registers, rotates, unregisters)."""
    return Actor(label=f"partner {partner.country_code}/{partner.party_id}")


def clean_reason(text: str | None, *, required: bool = False) -> str | None:
    """An operator's reason, bounded: trimmed, at most 500 characters, no control characters."""
    reason = (text or "").strip()
    if not reason:
        if required:
            raise PartnerError("reason: required", INVALID_OR_MISSING_PARAMETERS)
        return None
    if len(reason) > REASON_MAX_CHARS:
        raise PartnerError(f"reason: at most {REASON_MAX_CHARS} characters", INVALID_OR_MISSING_PARAMETERS)
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in reason):
        raise PartnerError("reason: no control characters", INVALID_OR_MISSING_PARAMETERS)
    return reason


def check_may_call(partner: Partner, what: str) -> None:
    """Refuse a call we would make to the partner (``what``: "token pushes", "commands", "pulls") unless it is
    registered: a suspended, unregistered or removed partner is not called."""
    if partner.status not in TALKING:
        since = f" since {partner.status_changed_at:%Y-%m-%d %H:%M} UTC" if partner.status_changed_at else ""
        raise PartnerError(f"{partner.name} is {partner.status.value}{since}: no {what}")
