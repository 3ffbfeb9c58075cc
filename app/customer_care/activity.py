"""An account's activity for support: every audit entry about the account and about each of its cards (ordered,
shipped, activated, blocked, unblocked, replaced, expired, cancelled), whoever caused it (the driver, staff or the
system), newest first.

Card events are audited on the card (``subject_type = "card"``), not on the account, so the account's own
entries alone miss them; one query asks for both over the index on (subject_type, subject_id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from app.accounts.models import Role, User
from app.audit.models import AuditEntry
from app.cards.models import Card
from app.extensions import db

PAGE_SIZE = 30


@dataclass(frozen=True)
class ActivityEntry:
    at: dt.datetime
    action: str  # the audit action code (wording.audit_action says it in words)
    actor: str  # who, as recorded then (an email, or "system", "dunning"...)
    actor_kind: str  # driver | staff | system
    reason: str | None
    card: Card | None  # the card it is about, for card events
    details: dict[str, Any]


@dataclass(frozen=True)
class ActivityPage:
    entries: list[ActivityEntry]
    page: int
    has_next: bool


def _kind(role: Role | None, user_id: int | None) -> str:
    if user_id is None:
        return "system"  # the CLI, jobs, billing: recorded without a user
    if role == Role.DRIVER:
        return "driver"
    return "staff" if role is not None else "system"


def activity_page(account_id: int, cards: list[Card], page: int = 1, page_size: int = PAGE_SIZE) -> ActivityPage:
    """Page ``page`` (from 1) of what happened to the account and to ``cards`` (the account's cards, as the page
    already holds them): one query."""
    page = max(page, 1)
    by_id = {str(card.id): card for card in cards}
    about = [and_(AuditEntry.subject_type == "account", AuditEntry.subject_id == str(account_id))]
    if by_id:
        about.append(and_(AuditEntry.subject_type == "card", AuditEntry.subject_id.in_(list(by_id))))
    rows = db.session.execute(
        select(AuditEntry, User.role)
        .outerjoin(User, User.id == AuditEntry.actor_user_id)
        .where(or_(*about))
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
        .limit(page_size + 1)
        .offset((page - 1) * page_size)
    ).all()
    entries = [
        ActivityEntry(
            at=entry.occurred_at,
            action=entry.action,
            actor=entry.actor_label,
            actor_kind=_kind(role, entry.actor_user_id),
            reason=entry.reason,
            card=by_id.get(entry.subject_id) if entry.subject_type == "card" else None,
            details=entry.details or {},
        )
        for entry, role in rows[:page_size]
    ]
    return ActivityPage(entries=entries, page=page, has_next=len(rows) > page_size)
