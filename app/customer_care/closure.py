"""Closing an account and the driver's personal data (GDPR access and erasure).

Closing blocks every card at once (token updates go to partners), ends the plan, and disables the login. The
billing identity (name, address, VAT number) stays while the law requires invoices to be kept (configurable
per country: 7 years NL, 10 years BE); after that :func:`anonymise_expired` erases it. Everything else that
identifies the person (email, password, card labels and driver names) is erased at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import Account, AccountNote, User
from app.audit.models import AuditEntry
from app.audit.services import Actor, record
from app.cards.models import BlockReason
from app.cards.services import block_all_cards, cards_of
from app.cards.tokens import token_object
from app.charging.models import Authorization, ChargingSession
from app.db import utcnow
from app.extensions import db
from app.payments.models import PaymentMethod
from app.plans.models import Subscription


class ClosureError(ValueError):
    pass


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def export_account_data(account: Account) -> dict[str, Any]:
    """Everything we hold about the account, as JSON-ready data (the driver's right of access)."""
    users = db.session.scalars(select(User).where(User.account_id == account.id)).all()
    subscriptions = db.session.scalars(
        select(Subscription).where(Subscription.account_id == account.id).order_by(Subscription.starts_at)
    ).all()
    methods = db.session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account.id)).all()
    authorizations = db.session.scalars(
        select(Authorization).where(Authorization.account_id == account.id).order_by(Authorization.created_at)
    ).all()
    sessions = db.session.scalars(
        select(ChargingSession)
        .where(ChargingSession.account_id == account.id)
        .order_by(ChargingSession.start_date_time)
    ).all()
    notes = db.session.scalars(select(AccountNote).where(AccountNote.account_id == account.id)).all()
    audit = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == "account", AuditEntry.subject_id == str(account.id))
        .order_by(AuditEntry.occurred_at)
    ).all()
    return {
        "exported_at": _iso(utcnow()),
        "account": {
            "customer_number": f"{account.id:08d}",
            "full_name": account.full_name,
            "street": account.street,
            "postal_code": account.postal_code,
            "city": account.city,
            "country": account.country,
            "language": account.language,
            "company_name": account.company_name,
            "vat_number": account.vat_number,
            "notification_email": account.notification_email,
            "notification_email_pending": account.notification_email_pending,
            "created_at": _iso(account.created_at),
            "closed_at": _iso(account.closed_at),
        },
        "logins": [
            {
                "email": user.email,
                "created_at": _iso(user.created_at),
                "email_confirmed_at": _iso(user.email_confirmed_at),
                "last_login_at": _iso(user.last_login_at),
            }
            for user in users
        ],
        "cards": [
            {
                **({"token": token_object(card)} if card.uid else {}),
                "status": card.status.value,
                "label": card.label,
                "driver_name": card.driver_name,
                "ordered_at": _iso(card.ordered_at),
            }
            for card in cards_of(account.id)
        ],
        "plans": [
            {
                "plan": sub.plan.code,
                "version": sub.plan.version,
                "starts_at": _iso(sub.starts_at),
                "ends_at": _iso(sub.ends_at),
            }
            for sub in subscriptions
        ],
        "payment_methods": [
            {
                "type": method.method_type,
                "brand": method.brand,
                "last4": method.last4,
                "status": method.status.value,
                "created_at": _iso(method.created_at),
            }
            for method in methods
        ],
        "charging_sessions": [
            {
                "id": session.ocpi_id,
                "start": _iso(session.start_date_time),
                "end": _iso(session.end_date_time),
                "kwh": str(session.kwh),
                "location": session.location_ocpi_id,
                "status": session.status,
            }
            for session in sessions
        ],
        "authorizations": [
            {
                "at": _iso(entry.created_at),
                "token_uid": entry.token_uid,
                "result": entry.allowed,
                "reason": entry.reason,
            }
            for entry in authorizations
        ],
        "support_notes": [{"at": _iso(note.created_at), "text": note.text} for note in notes],
        "history": [{"at": _iso(entry.occurred_at), "action": entry.action, "reason": entry.reason} for entry in audit],
    }


def close_account(account: Account, actor: Actor, reason: str) -> None:
    """Close now: cards blocked (reason ``closed``), open orders cancelled, plan ended, logins disabled and
    contact data erased. The final invoice for the open period is made by the next billing run."""
    if account.closed_at is not None:
        raise ClosureError(_l("This account is already closed."))
    now = utcnow()
    block_all_cards(account.id, BlockReason.CLOSED, actor, note=reason)
    for card in cards_of(account.id):
        card.label = None
        card.driver_name = None
    for subscription in db.session.scalars(select(Subscription).where(Subscription.account_id == account.id)):
        if subscription.starts_at >= now:
            db.session.delete(subscription)  # a scheduled change that will never start
        elif subscription.ends_at is None or subscription.ends_at > now:
            subscription.ends_at = now
    db.session.flush()
    for user in db.session.scalars(select(User).where(User.account_id == account.id)):
        user.active = False
        user.email = f"closed-{user.id}@closed.invalid"
        user.password_hash = "!"  # noqa: S105  (not a password: an argon2 hash can never equal "!")
        user.session_version += 1
    account.notification_email = None  # a closed account gets no notices, and keeps no address of its driver
    account.notification_email_pending = None
    account.closed_at = now
    db.session.flush()
    record("account.close", "account", account.id, actor=actor, reason=reason)


def retention_years(country: str) -> int:
    config = current_app.config
    return int(config["RETENTION_YEARS_BY_COUNTRY"].get(country, config["RETENTION_YEARS_DEFAULT"]))


def anonymise_expired(now: dt.datetime | None = None) -> int:
    """Erase the billing identity of accounts closed longer ago than their country's retention period."""
    now = now or utcnow()
    count = 0
    candidates = db.session.scalars(
        select(Account).where(Account.closed_at.is_not(None), Account.anonymised_at.is_(None))
    )
    for account in candidates:
        closed = account.closed_at
        assert closed is not None  # selected for closed_at IS NOT NULL
        years = retention_years(account.country)
        # 29 February closes count from 28 February in non-leap years.
        keep_until = closed.replace(year=closed.year + years, day=min(closed.day, 28 if closed.month == 2 else 31))
        if keep_until > now:
            continue
        account.full_name = f"Anonymised {account.id}"
        account.street = account.postal_code = account.city = "-"
        account.company_name = None
        account.vat_number = None
        account.anonymised_at = now
        db.session.query(AccountNote).filter(AccountNote.account_id == account.id).delete()
        record("account.anonymise", "account", account.id, actor=Actor.system("retention"))
        count += 1
    db.session.flush()
    return count
