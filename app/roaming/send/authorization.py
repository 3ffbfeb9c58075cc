"""Real-time authorization of our tokens (mod_tokens §POST authorize): may this card charge now, here?

The answer must be fast (a driver stands at the charge point; target p99 < 10 ms), so the decision costs one
database round trip: the card row together with the account's standing (:data:`STANDING_CHECKS`, SQL
conditions asked in the same query). The calling partner comes from a per-process cache
(:mod:`app.roaming.ocpi.auth`) and the log row is written off the request path
(:mod:`app.roaming.send.authorization_log`). Anything slower (fraud scoring) should answer from data kept up to
date elsewhere rather than compute on the spot.

Decision order (first match wins):

1. card replaced or expired (or past ``expires_at``)        → ``EXPIRED``
2. card blocked for payment reasons                           → ``NO_CREDIT``
3. card blocked for any other reason, or not activated yet    → ``BLOCKED``
4. account not in good standing (:func:`account_standing`)    → ``NO_CREDIT``
5. the partner is suspended (we paused it), or a partner rule refuses the location → ``NOT_ALLOWED``
6. otherwise                                                  → ``ALLOWED``

Every answer is logged in :class:`~app.roaming.models.Authorization` with its reason (support shows it on the
account page). Requests for unknown tokens are logged too (``allowed = "UNKNOWN"``), because "my card does not
work" is often a card the CPO mistyped or never had.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, bindparam, literal, select

from app.cards.models import ISSUED_TOKEN_TYPES, BlockReason, Card, CardStatus, TokenType
from app.cards.tokens import token_object
from app.charging.models import Authorization
from app.db import utcnow
from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Partner, PartnerStatus
from app.roaming.send import authorization_log

ALLOWED = "ALLOWED"
BLOCKED = "BLOCKED"
EXPIRED = "EXPIRED"
NO_CREDIT = "NO_CREDIT"
NOT_ALLOWED = "NOT_ALLOWED"
UNKNOWN = "UNKNOWN"  # only in our log: the HTTP answer is 404 / 2004


class Standing(enum.StrEnum):
    GOOD = "good"
    NO_CREDIT = "no_credit"  # unpaid overdue invoices, payment failed, credit limit reached


@dataclass(frozen=True)
class StandingCheck:
    """A reason an account may not charge, written as a SQL condition on the account id: authorization asks
    every check in the same query that finds the card, so a check costs no extra round trip.

    ``condition(account_id)`` returns a boolean SQL expression (typically an ``EXISTS``) that is true when the
    account is *not* in good standing for this reason; ``standing`` is what the account then is.
    """

    name: str
    standing: Standing
    condition: Callable[[ColumnElement[int]], ColumnElement[bool]]


# Billing registers its checks here (e.g. "has overdue unpaid invoices"). Keep each to an indexed lookup: they
# run on every authorization.
STANDING_CHECKS: list[StandingCheck] = []

# Partner/location restrictions: each takes (partner, card, location_references or None) and returns a reason
# to refuse (→ NOT_ALLOWED) or None.
PartnerRule = Callable[[Partner, Card, dict[str, Any] | None], str | None]


def _standing_columns(account_id: ColumnElement[int]) -> list[ColumnElement[bool]]:
    return [check.condition(account_id).label(f"standing_{index}") for index, check in enumerate(STANDING_CHECKS)]


def _standing_from(flags: Sequence[Any]) -> Standing:
    for check, flag in zip(STANDING_CHECKS, flags, strict=True):
        if flag:
            return check.standing
    return Standing.GOOD


def account_standing(account_id: int) -> Standing:
    """The account's standing for charging, from the registered checks. Payment blocks also show on the card
    itself (``block_reason = payment``), which :func:`decide` reads first."""
    if not STANDING_CHECKS:
        return Standing.GOOD
    flags = db.session.execute(select(*_standing_columns(literal(account_id)))).one()
    return _standing_from(flags)


def configured_location_rule(partner: Partner, card: Card, location: dict[str, Any] | None) -> str | None:
    """Config ``ROAMING_LOCATION_RULES = {"NL/TCP": {"allowed_location_ids": [...]}}`` limits where our cards
    may charge on one partner's network (e.g. a pilot that covers some sites only). Party codes and location
    ids are CiStrings: ``nl/tcp`` and ``loc1`` in the configuration or from the CPO match ``NL/TCP``, ``LOC1``."""
    rules = current_app.config.get("ROAMING_LOCATION_RULES") or {}
    party = ci_key(f"{partner.country_code}/{partner.party_id}")
    rule = next((value for key, value in rules.items() if ci_key(str(key)) == party), None)
    if not rule or location is None:
        return None
    allowed = rule.get("allowed_location_ids")
    if allowed is not None and ci_key(str(location.get("location_id"))) not in {ci_key(str(item)) for item in allowed}:
        return f"location {location.get('location_id')} is not open to our drivers on this network"
    return None


# The rules every authorization asks, in order; another package adds its own from its init_app.
PARTNER_RULES: list[PartnerRule] = [configured_location_rule]


@dataclass(frozen=True)
class Decision:
    allowed: str
    reason: str


def decide(card: Card, partner: Partner, location: dict[str, Any] | None, standing: Standing) -> Decision:
    now = utcnow()
    if card.status in (CardStatus.REPLACED, CardStatus.EXPIRED):
        return Decision(EXPIRED, f"card {card.status.value}")
    if card.expires_at is not None and card.expires_at <= now:
        return Decision(EXPIRED, "card validity ended")
    if card.status == CardStatus.BLOCKED:
        if card.block_reason == BlockReason.PAYMENT:
            return Decision(NO_CREDIT, "card blocked: payment")
        reason = card.block_reason.value if card.block_reason else "unknown"
        return Decision(BLOCKED, f"card blocked: {reason}")
    if card.status != CardStatus.ACTIVE:
        return Decision(BLOCKED, f"card not active ({card.status.value})")
    if standing != Standing.GOOD:
        return Decision(NO_CREDIT, f"account standing: {standing.value}")
    if partner.status == PartnerStatus.SUSPENDED:  # we paused this partner: no new charging on its network
        return Decision(NOT_ALLOWED, "partner suspended: our cards are not authorized on its network")
    for rule in PARTNER_RULES:
        refusal = rule(partner, card, location)
        if refusal:
            return Decision(NOT_ALLOWED, refusal)
    return Decision(ALLOWED, "card active, account in good standing")


INFO_TEXT = {
    BLOCKED: "This card is blocked. Please contact customer service.",
    EXPIRED: "This card is no longer valid. Please use your new card.",
    NO_CREDIT: "Charging is paused for this account. Please check your payment details.",
    NOT_ALLOWED: "This card cannot be used at this location.",
}


# Building the card-and-standing statement costs more CPU than running it, so each process builds it once per
# day (the checks compare due dates with today) and per set of registered checks.
_card_statement: tuple[tuple[Any, ...], Select[Card, *tuple[Any, ...]]] | None = None


def _card_with_standing_statement() -> Select[Card, *tuple[Any, ...]]:
    global _card_statement
    key = (utcnow().date(), *STANDING_CHECKS)
    if _card_statement is None or _card_statement[0] != key:
        # .expression: the column the attribute stands for in SQL (what select() would take from it).
        statement: Select[Card, *tuple[Any, ...]] = select(Card, *_standing_columns(Card.account_id.expression)).where(
            Card.uid == bindparam("uid"), Card.token_type == bindparam("token_type")
        )
        _card_statement = (key, statement)
    return _card_statement[1]


def find_card(uid: str, token_type: str) -> tuple[Card, Standing] | None:
    """The card and its account's standing, in one query.

    The uid is a CiString: cards keep theirs folded (``app.ocpi_ids.ci_key``, a check constraint), so a CPO's
    ``04de0001`` finds our ``04DE0001`` through the same unique index, with no function on the column."""
    if token_type not in ISSUED_TOKEN_TYPES:
        return None  # AD_HOC_USER / OTHER: we issue none
    row = db.session.execute(
        _card_with_standing_statement(), {"uid": ci_key(uid), "token_type": TokenType(token_type)}
    ).first()
    if row is None:
        return None
    return row[0], _standing_from(row[1:])


def authorize(partner: Partner, uid: str, token_type: str, location: dict[str, Any] | None) -> dict[str, Any] | None:
    """Decide, log, and return the AuthorizationInfo object; None when the token is unknown (the caller
    answers 404 / 2004). The log row goes through :func:`app.roaming.send.authorization_log.record`."""
    found = find_card(uid, token_type)
    if found is None:
        authorization_log.record(
            partner_id=partner.id,
            card_id=None,
            account_id=None,
            token_uid=uid[:36],
            token_type=token_type[:20],
            allowed=UNKNOWN,
            reason="unknown token",
            authorization_reference=None,
            location_references=location,
        )
        return None
    card, standing = found
    decision = decide(card, partner, location, standing)
    reference = uuid.uuid4().hex  # 32 characters, within CiString(36)
    authorization_log.record(
        partner_id=partner.id,
        card_id=card.id,
        account_id=card.account_id,
        token_uid=uid,
        token_type=token_type,
        allowed=decision.allowed,
        reason=decision.reason[:255],
        authorization_reference=reference,
        location_references=location,
    )
    info: dict[str, Any] = {
        "allowed": decision.allowed,
        "token": token_object(card),
        "authorization_reference": reference,
    }
    if location is not None and decision.allowed == ALLOWED:
        info["location"] = location  # every EVSE asked for is allowed: we have no per-EVSE rules
    if decision.allowed in INFO_TEXT:
        info["info"] = {"language": card.language or "en", "text": INFO_TEXT[decision.allowed]}
    return info


def authorizations_of(account_id: int, limit: int = 50) -> list[Authorization]:
    """The latest authorizations of an account, newest first (support's account page)."""
    return list(
        db.session.scalars(
            select(Authorization)
            .where(Authorization.account_id == account_id)
            .order_by(Authorization.created_at.desc(), Authorization.id.desc())
            .limit(limit)
        )
    )
