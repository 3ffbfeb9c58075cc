"""What finance looks up in the back office: invoices by number, structured payment reference, customer, email,
month and payment state, the payments to review, the Stripe events we could not use, and failed payments.
(Exports and the margin report are in :mod:`app.billing.reporting`.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, and_, false, func, select

from app.accounts.models import Account, Role, User
from app.billing.invoicing.invoices import BillingError
from app.billing.invoicing.numbering import compact_reference
from app.billing.models import (
    Dunning,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentState,
    StripeEvent,
)
from app.billing.runs.services import check_period
from app.extensions import db

SEARCH_LIMIT = 100  # matches shown; finance narrows the search beyond that
MAX_REFERENCE = 25  # the longest structured reference (an RF one: RF, 2 check digits, 21 characters)
MAX_NAME_TYPED = 200  # what is read of a typed customer name
MAX_REFERENCE_TYPED = 200  # what is read of a typed reference (a pasted bank statement line with its spaces)


@dataclass(frozen=True)
class InvoiceSearch:
    """Finance's invoice search; every field optional. ``number`` and ``email`` match by prefix, ``customer`` is the
    customer number (leading zeros optional), ``period`` a month like 2026-10, ``state`` a payment state,
    ``reference`` the structured payment reference a bank transfer quoted, as printed or typed (with or without
    the +++, slashes and spaces: ``+++260/0000/00170+++``, ``260000000170``, ``RF42 2026 0000 01``), ``name`` a
    part of the customer's name, in any case ("peeters" finds "Jan Peeters"; a trigram index serves it on
    PostgreSQL)."""

    number: str = ""
    customer: str = ""
    name: str = ""
    email: str = ""
    period: str = ""
    state: str = ""
    reference: str = ""

    @property
    def given(self) -> bool:
        return any((self.number, self.customer, self.name, self.email, self.period, self.state, self.reference))


@dataclass(frozen=True)
class InvoiceMatches:
    rows: list[Row[Invoice, str, str | None]]  # the invoice, its customer's name, their driver's email
    more: bool  # more than ``SEARCH_LIMIT`` matched


def _like_prefix(value: str) -> str:
    """A LIKE pattern matching values that start with ``value`` literally (wildcards in it are not wildcards)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _like_part(value: str) -> str:
    """A LIKE pattern matching values that contain ``value`` literally."""
    return "%" + _like_prefix(value)


def latest_period() -> str | None:
    """The latest month with a finalized invoice: what finance looks at first."""
    return db.session.scalar(select(func.max(Invoice.period)).where(Invoice.status == InvoiceStatus.FINALIZED))


def _is_month(period: str) -> bool:
    try:
        check_period(period)
    except BillingError:
        return False
    return True


def search_invoices(search: InvoiceSearch, limit: int = SEARCH_LIMIT) -> InvoiceMatches:
    """Finalized invoices (and credit notes) matching every given field, newest first. An empty search finds
    nothing; a customer number or month that cannot match finds nothing; an unknown payment state is refused
    with ``BillingError``."""
    if search.state and search.state not in {state.value for state in PaymentState}:
        raise BillingError(f"unknown payment state {search.state!r}")
    if not search.given:
        return InvoiceMatches(rows=[], more=False)
    query = (
        select(Invoice, Account.full_name, User.email)
        .join(Account, Account.id == Invoice.account_id)
        .outerjoin(User, and_(User.account_id == Account.id, User.role == Role.DRIVER))
        .where(Invoice.status == InvoiceStatus.FINALIZED)
    )
    if search.number:
        query = query.where(Invoice.number.like(_like_prefix(search.number.upper()), escape="\\"))
    if search.customer:
        digits = search.customer.lstrip("0") or "0"
        query = query.where(Invoice.account_id == int(digits)) if digits.isdigit() else query.where(false())
    if search.name:
        # lower() on both sides: the expression the trigram index (migration 16b2b0abe013) is built on.
        pattern = _like_part(search.name[:MAX_NAME_TYPED].lower())
        query = query.where(func.lower(Account.full_name).like(pattern, escape="\\"))
    if search.email:
        query = query.where(User.email.like(_like_prefix(search.email.lower()), escape="\\"))
    if search.period:
        query = query.where(Invoice.period == search.period) if _is_month(search.period) else query.where(false())
    if search.state:
        query = query.where(Invoice.payment_state == PaymentState(search.state))
    if search.reference:
        compact = compact_reference(search.reference[:MAX_REFERENCE_TYPED])
        # The exact reference (the unique index), never a prefix: a transfer quotes all of it.
        fits = 0 < len(compact) <= MAX_REFERENCE
        query = query.where(Invoice.payment_reference == compact) if fits else query.where(false())
    rows = db.session.execute(query.order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(limit + 1)).all()
    return InvoiceMatches(rows=list(rows[:limit]), more=len(rows) > limit)


def payments_to_review(limit: int = 200) -> list[Row[Payment, Invoice, str]]:
    """Payments Stripe reported as succeeded that did not pay their invoice as asked (less than due, more than
    due, another currency; ``Payment.review``), with their invoice and customer name, newest first."""
    return list(
        db.session.execute(
            select(Payment, Invoice, Account.full_name)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .join(Account, Account.id == Invoice.account_id)
            .where(Payment.review.is_not(None))
            .order_by(Payment.updated_at.desc(), Payment.id.desc())
            .limit(limit)
        ).all()
    )


def ignored_stripe_events(limit: int = 50) -> list[StripeEvent]:
    """Signed Stripe events we could not use (acknowledged, nothing changed), newest first; events of types we
    do not handle are routine and left out."""
    return list(
        db.session.scalars(
            select(StripeEvent)
            .where(StripeEvent.ignored_reason.is_not(None), StripeEvent.ignored_reason != StripeEvent.TYPE_NOT_HANDLED)
            .order_by(StripeEvent.received_at.desc(), StripeEvent.id)
            .limit(limit)
        )
    )


def failed_payments(limit: int = 500) -> list[Row[Invoice, Dunning | None, str, str | None]]:
    """Invoices whose payment failed or was given up, with their dunning state, customer name and the last
    failure message: failed first, then by due date."""
    last_failure = (
        select(Payment.failure_message)
        .where(Payment.invoice_id == Invoice.id, Payment.failure_message.is_not(None))
        .order_by(Payment.attempt.desc(), Payment.id.desc())
        .limit(1)
        .correlate(Invoice)
        .scalar_subquery()
    )
    return list(
        db.session.execute(
            select(Invoice, Dunning, Account.full_name, last_failure)
            .join(Account, Account.id == Invoice.account_id)
            .outerjoin(Dunning, Dunning.invoice_id == Invoice.id)
            .where(Invoice.payment_state.in_([PaymentState.FAILED, PaymentState.UNCOLLECTIBLE]))
            .order_by(Invoice.payment_state.desc(), Invoice.due_date, Invoice.id)
            .limit(limit)
        ).all()
    )
