"""An account's real-time authorizations as support reads them: when, which card, our answer and its reason, and
where the driver stood: location, EVSE and the operator (CPO) that asked.

The log (``app.roaming.send.authorization_log``) keeps the OCPI keys the CPO sent (``location_references``: a
location id and EVSE uids) and which partner asked; the names are looked up for the whole page at once
(:mod:`app.customer_care.charge_points`). The reason stays as stored; ``wording.authorization_reason`` says it in
the agent's language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.charging.models import Authorization
from app.customer_care.charge_points import Spot, operator_names, printed_evse_ids, spots_by_partner
from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Partner

PAGE_SIZE = 20
MAX_EVSES_SHOWN = 5  # a request may name every EVSE of a location; the first few say where the driver stood


@dataclass(frozen=True)
class AuthorizationLine:
    id: int
    at: dt.datetime
    card_id: int | None
    token_uid: str
    answer: str  # ALLOWED, BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED (UNKNOWN never has an account)
    reason: str  # as the decision wrote it (wording.authorization_reason says it in words)
    reference: str | None
    location_id: str | None  # as the CPO sent it
    location: str | None  # its name (or address) when we hold the location
    city: str | None
    evses: tuple[str, ...]  # printed EVSE ids (else the uids the CPO sent)
    operator: str | None  # the CPO: the location's operator, else the partner that asked
    partner: str | None  # the connection the request came through (a hub or the CPO itself)


@dataclass(frozen=True)
class AuthorizationPage:
    lines: list[AuthorizationLine]
    page: int
    has_next: bool


def _evse_uids(references: dict[str, Any] | None) -> list[str]:
    uids = (references or {}).get("evse_uids") or []
    return [str(uid) for uid in uids if isinstance(uid, str | int)] if isinstance(uids, list) else []


def _location_id(references: dict[str, Any] | None) -> str | None:
    value = (references or {}).get("location_id")
    return str(value) if isinstance(value, str | int) and str(value) else None


def lines_of(rows: list[tuple[Authorization, str | None, bool | None]]) -> list[AuthorizationLine]:
    """(authorization, partner name, partner is a hub) rows in words: four queries for the whole list."""
    keys = {
        (entry.partner_id, location_id)
        for entry, _name, _hub in rows
        if entry.partner_id is not None and (location_id := _location_id(entry.location_references))
    }
    spots = spots_by_partner(keys)

    def spot_of(entry: Authorization) -> Spot | None:
        location_id = _location_id(entry.location_references)
        if entry.partner_id is None or location_id is None:
            return None
        return spots.get((entry.partner_id, location_id))

    evse_ids = printed_evse_ids(
        (spot.location_id, uid)
        for entry, _name, _hub in rows
        if (spot := spot_of(entry)) is not None
        for uid in _evse_uids(entry.location_references)[:MAX_EVSES_SHOWN]
    )
    operators = operator_names({spot.party for spot in spots.values()}, spots.values())
    lines = []
    for entry, partner_name, partner_is_hub in rows:
        spot = spot_of(entry)
        uids = _evse_uids(entry.location_references)[:MAX_EVSES_SHOWN]
        operator = operators.get(spot.party) if spot else None
        if operator is None and partner_is_hub is False:
            operator = partner_name  # a direct CPO asked: it operates the charge point
        lines.append(
            AuthorizationLine(
                id=entry.id,
                at=entry.created_at,
                card_id=entry.card_id,
                token_uid=entry.token_uid,
                answer=entry.allowed,
                reason=entry.reason,
                reference=entry.authorization_reference,
                location_id=_location_id(entry.location_references),
                location=(spot.name or spot.address) if spot else None,
                city=spot.city if spot else None,
                evses=tuple(evse_ids.get((spot.location_id, ci_key(uid)), uid) if spot else uid for uid in uids),
                operator=operator,
                partner=partner_name,
            )
        )
    return lines


def _query(account_id: int) -> Any:
    return (
        select(Authorization, Partner.name, Partner.is_hub)
        .outerjoin(Partner, Partner.id == Authorization.partner_id)
        .where(Authorization.account_id == account_id)
        .order_by(Authorization.created_at.desc(), Authorization.id.desc())
    )


def authorization_page(account_id: int, page: int = 1, page_size: int = PAGE_SIZE) -> AuthorizationPage:
    """Page ``page`` (from 1) of the account's authorizations, newest first, over the index on (account_id,
    created_at); one row more than a page says whether there is a next one."""
    page = max(page, 1)
    rows = db.session.execute(_query(account_id).limit(page_size + 1).offset((page - 1) * page_size)).all()
    return AuthorizationPage(
        lines=lines_of([tuple(row) for row in rows[:page_size]]),
        page=page,
        has_next=len(rows) > page_size,
    )


def authorization_for_session(account_id: int, reference: str | None, start: dt.datetime) -> AuthorizationLine | None:
    """The authorization that let a session start: the one whose ``authorization_reference`` the CPO repeated
    in the session or CDR, looked for among the account's answers from a day before the start to an hour after
    it (an index range, not the account's whole log). None when the CPO sent no reference (whitelist) or we
    logged none."""
    if not reference:
        return None
    query = _query(account_id).where(
        # A CiString: the CPO may send our reference back in another case (compared on the window's rows only).
        func.upper(Authorization.authorization_reference) == ci_key(reference),
        Authorization.created_at >= start - dt.timedelta(days=1),
        Authorization.created_at <= start + dt.timedelta(hours=1),
    )
    row = db.session.execute(query.limit(1)).first()
    return lines_of([tuple(row)])[0] if row else None
