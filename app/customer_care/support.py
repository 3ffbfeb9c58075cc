"""Support-side account use cases: notes and re-sending the confirmation email, audited.

A note may still be added to a closed account (support records a call or a letter: the account itself does not
change); a confirmation email is not sent for one.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import Account, AccountNote, Role, User
from app.accounts.services import AccountError, PendingEmail, confirmation_email
from app.audit.services import Actor, record
from app.extensions import db


def add_note(account: Account, text: str, actor: Actor) -> AccountNote:
    text = text.strip()
    if not text:
        raise AccountError(_l("A note cannot be empty."), "text")
    note = AccountNote(account_id=account.id, author_user_id=actor.user_id, author_label=actor.label, text=text)
    db.session.add(note)
    db.session.flush()
    record("account.note", "account", account.id, actor=actor, reason=text[:200])
    return note


def notes_of(account_id: int) -> list[AccountNote]:
    return list(
        db.session.scalars(
            select(AccountNote).where(AccountNote.account_id == account_id).order_by(AccountNote.created_at.desc())
        )
    )


def driver_user(account: Account) -> User | None:
    return db.session.scalar(select(User).where(User.account_id == account.id, User.role == Role.DRIVER))


class AccountClosedError(AccountError):
    """A closed account's login is disabled and its email erased: there is nothing to confirm."""


def resend_confirmation_by_staff(account: Account, actor: Actor, reason: str) -> list[PendingEmail]:
    if account.closed_at is not None:
        raise AccountClosedError(_l("This account is closed: nothing can be ordered or changed on it."))
    user = driver_user(account)
    if user is None:
        raise AccountError(_l("This account has no login."))
    if user.is_confirmed:
        raise AccountError(_l("The email address is already confirmed."))
    record("account.resend_confirmation", "account", account.id, actor=actor, reason=reason)
    return [confirmation_email(user)]
