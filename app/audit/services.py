"""Recording and reading the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.extensions import db

SYSTEM_LABEL = "system"


class ActingUser(Protocol):
    """What the audit trail needs of a logged-in user (an ``app.accounts.models.User``). Audit sits below
    accounts (accounts records audit entries), so it names the shape it reads instead of importing the class."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def is_staff(self) -> bool: ...


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user (driver or staff), the CLI, or the system itself."""

    label: str
    user_id: int | None = None
    is_staff: bool = False

    @classmethod
    def of(cls, user: ActingUser) -> Actor:
        return cls(label=user.email, user_id=user.id, is_staff=user.is_staff)

    @classmethod
    def system(cls, label: str = SYSTEM_LABEL) -> Actor:
        """Automated work (billing, expiry jobs, CLI operations) acts with staff powers."""
        return cls(label=label, user_id=None, is_staff=True)


def record(
    action: str,
    subject_type: str,
    subject_id: object,
    *,
    actor: Actor | None = None,
    actor_label: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an audit entry in the caller's unit of work (flushed, committed by the caller)."""
    actor = actor or Actor.system(actor_label or SYSTEM_LABEL)
    entry = AuditEntry(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason,
        details=details,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def entries_for(subject_type: str, subject_id: object, limit: int = 100) -> list[AuditEntry]:
    query = (
        select(AuditEntry)
        .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == str(subject_id))
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def recent(limit: int = 200, action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))
