"""Collection attempts: their ``Payment`` rows, and moving an attempt and its invoice to what Stripe says of it.

Every try to collect an invoice is one *attempt*: a :class:`~app.billing.models.Payment` row, unique per
(invoice, ``charge``, attempt) (:func:`record_attempt`; a concurrent call or an early webhook that stored it first
wins). How an attempt is made through Stripe is :mod:`app.billing.collection.collect`.

Outcomes, never exceptions
    A decline, a missing payment method or a card that needs 3-D Secure off-session is an outcome
    (:class:`Outcome.FAILED`, dunning starts), not an error. Only a Stripe outage gives :class:`Outcome.ERROR`:
    no payment recorded, the invoice unchanged, the attempt's outage recorded (when, why, the next try), and the
    resume job ``billing.resume_collection`` tries it again (:mod:`app.billing.collection.outages`).

What was received
    A success is counted for what Stripe says it received (``amount_received``, in its currency), against what
    was due (:func:`~app.billing.collection.amounts.amount_due_minor`), never for what we asked. Less than due: a
    partial payment, the rest stays due and dunning goes on for it (flagged ``underpaid``); another currency:
    counted for nothing, the invoice stays unpaid (flagged ``currency_mismatch``); more than due: paid, and the
    surplus flagged ``overpaid`` for finance to give back. Flagged payments are listed for finance
    (:mod:`app.billing.reporting`).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.services import PendingEmail
from app.billing.collection import dunning
from app.billing.collection.amounts import (
    CHARGE,
    COLLECTABLE_STATES,
    Received,
    amount_due_minor,
    credit_awaiting_refund_minor,
    received_of,
)
from app.billing.models import Invoice, Payment, PaymentReview, PaymentState
from app.db import utcnow
from app.extensions import db
from app.payments.stripe_client import stripe_client, stripe_field

log = logging.getLogger(__name__)

# Payment.status values that mean "this attempt brought no money and never will".
FAILED_STATUSES = frozenset({"requires_payment_method", "canceled", "no_payment_method", "failed"})
# Attempts whose result is still to come (SEPA) — no new attempt while one is under way.
LIVE_STATUSES = frozenset({"processing"})
# Attempts waiting for the driver (3-D Secure): superseded (cancelled) by a new attempt.
WAITING_STATUSES = frozenset({"requires_action", "requires_confirmation"})

AUTH_REQUIRED_MESSAGE = "Your bank asks you to confirm this payment: pay it from the portal."


class Outcome(enum.StrEnum):
    PAID = "paid"
    PROCESSING = "processing"  # SEPA debit under way; the webhook settles it
    FAILED = "failed"  # declined / no method / authentication needed off-session
    REQUIRES_ACTION = "requires_action"  # on-session only: the browser completes 3-D Secure
    NOT_DUE = "not_due"  # nothing to collect (zero total, fully credited)
    ALREADY = "already"  # nothing done: this attempt exists or the invoice is not collectable
    ERROR = "error"  # Stripe unreachable: only the outage recorded; the resume job tries again


class CollectionError(ValueError):
    """A programming error: asked to collect something that is not a finalized invoice."""


def payments_of(invoice: Invoice, kind: str = CHARGE) -> list[Payment]:
    return list(
        db.session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id, Payment.kind == kind).order_by(Payment.attempt)
        )
    )


def attempt_payment(invoice_id: int, kind: str, attempt: int) -> Payment | None:
    """The row of one attempt, if it was recorded."""
    return db.session.scalar(
        select(Payment).where(Payment.invoice_id == invoice_id, Payment.kind == kind, Payment.attempt == attempt)
    )


def payment_by_stripe_id(stripe_id: str) -> Payment | None:
    return db.session.scalar(select(Payment).where(Payment.stripe_id == stripe_id))


def next_attempt(invoice_id: int, kind: str = CHARGE) -> int:
    latest = db.session.scalar(
        select(func.max(Payment.attempt)).where(Payment.invoice_id == invoice_id, Payment.kind == kind)
    )
    return (latest or 0) + 1


def lock_invoice(invoice: Invoice) -> Invoice:
    """On PostgreSQL, lock the invoice row (and re-read it) for the rest of the transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Invoice).where(Invoice.id == invoice.id).with_for_update().execution_options(populate_existing=True)
        )
    return invoice


def record_attempt(
    invoice: Invoice,
    attempt: int,
    *,
    stripe_id: str | None,
    amount_minor: int,
    message: str | None,
    status: str = "new",
    kind: str = CHARGE,
) -> tuple[Payment, bool]:
    """Insert the attempt (status ``new`` until :func:`apply_status` sets Stripe's); ``(row, False)`` if a
    concurrent call (or an early webhook) stored it first."""
    row = Payment(
        invoice_id=invoice.id,
        attempt=attempt,
        kind=kind,
        stripe_id=stripe_id,
        amount_minor=amount_minor,
        currency=invoice.currency,
        status=status,
        failure_message=message,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        winner = attempt_payment(invoice.id, kind, attempt) or (payment_by_stripe_id(stripe_id) if stripe_id else None)
        if winner is None:
            raise
        return winner, False
    return row, True


def _is_latest(payment: Payment) -> bool:
    return payment.attempt >= next_attempt(payment.invoice_id, payment.kind) - 1


def apply_status(
    payment: Payment,
    status: str,
    *,
    message: str | None = None,
    now: dt.datetime | None = None,
    on_session: bool = False,
    received: Received | None = None,
    notify: bool = True,
) -> tuple[Outcome, list[PendingEmail]]:
    """Move an attempt (and its invoice) to what Stripe says about its PaymentIntent. Idempotent: applying the
    same status twice changes nothing and sends nothing twice. Used after creating, by webhooks, and after the
    browser completed 3-D Secure. ``received`` is what a success brought in (:func:`received_of`; ``None``:
    the amount asked, in the invoice's currency)."""
    now = now or utcnow()
    invoice = db.session.get(Invoice, payment.invoice_id)
    assert invoice is not None
    previous = payment.status
    # What was due before this success counts (read before the attempt is marked succeeded).
    due = amount_due_minor(invoice) if status == "succeeded" and previous != "succeeded" else 0
    payment.status = status
    if message:
        payment.failure_message = message[:2000]
    db.session.flush()
    if status == "succeeded":
        if previous == "succeeded":  # already counted
            unpaid = invoice.payment_state in (*COLLECTABLE_STATES, PaymentState.PROCESSING)
            return (Outcome.FAILED if unpaid else Outcome.PAID), []
        return _apply_success(
            invoice,
            payment,
            received or Received(payment.amount_minor, invoice.currency.upper()),
            due,
            previous,
            now,
            on_session,
        )
    if status == "processing":
        if invoice.payment_state in COLLECTABLE_STATES:
            invoice.payment_state = PaymentState.PROCESSING
            db.session.flush()
        return Outcome.PROCESSING, []
    if status in WAITING_STATUSES and on_session:
        return Outcome.REQUIRES_ACTION, []
    # Failed (declined, no method, cancelled) — or waiting for authentication nobody will give off-session.
    if status in WAITING_STATUSES and not payment.failure_message:
        payment.failure_message = AUTH_REQUIRED_MESSAGE
    if previous in FAILED_STATUSES:
        return Outcome.FAILED, []  # already handled (e.g. the webhook after a synchronous decline)
    if not _is_latest(payment) or invoice.payment_state in (
        PaymentState.PAID,
        PaymentState.REFUNDED,
        PaymentState.NOT_DUE,
    ):
        return Outcome.FAILED, []  # an older attempt: the invoice has moved on
    if invoice.payment_state == PaymentState.PROCESSING and previous not in LIVE_STATUSES:
        return Outcome.FAILED, []  # another attempt is under way
    emails = dunning.on_payment_failure(
        invoice,
        now,
        amount_minor=payment.amount_minor,
        message=payment.failure_message,
        notify=notify and not on_session,
    )
    return Outcome.FAILED, emails


def _apply_success(
    invoice: Invoice, payment: Payment, received: Received, due: int, previous: str, now: dt.datetime, on_session: bool
) -> tuple[Outcome, list[PendingEmail]]:
    """Count a succeeded attempt for what it brought in, against what was ``due`` before it."""
    payment.amount_received_minor = received.amount_minor
    payment.received_currency = received.currency
    counted = received.amount_minor if received.currency == invoice.currency.upper() else 0
    if received.currency != invoice.currency.upper():
        payment.review = PaymentReview.CURRENCY_MISMATCH
    elif counted < due:
        payment.review = PaymentReview.UNDERPAID
    elif counted > due + credit_awaiting_refund_minor(invoice):
        # More than due and than the credit notes given back once it is paid (``refund_credit_note``).
        payment.review = PaymentReview.OVERPAID
    db.session.flush()
    if payment.review is not None:
        log.warning(
            "payment %s of invoice %s (attempt %s): received %s %s, %s %s due: %s, flagged for finance",
            payment.stripe_id,
            invoice.number,
            payment.attempt,
            received.amount_minor,
            received.currency,
            due,
            invoice.currency,
            payment.review.value,
        )
    if counted < due:
        return _partly_paid(invoice, payment, due - counted, previous, now, on_session)
    if invoice.payment_state == PaymentState.REFUNDED:
        return Outcome.PAID, []
    return Outcome.PAID, dunning.on_payment_success(invoice, now, amount_minor=counted)


def _partly_paid(
    invoice: Invoice, payment: Payment, remaining: int, previous: str, now: dt.datetime, on_session: bool
) -> tuple[Outcome, list[PendingEmail]]:
    """A success that left ``remaining`` due: for the invoice it is a failed attempt for the rest, so dunning
    starts or goes on (the driver is told what is still due); an older attempt leaves the invoice as it is."""
    if not _is_latest(payment) or invoice.payment_state in (
        PaymentState.PAID,
        PaymentState.REFUNDED,
        PaymentState.NOT_DUE,
    ):
        return Outcome.FAILED, []
    if invoice.payment_state == PaymentState.PROCESSING and previous not in LIVE_STATUSES:
        return Outcome.FAILED, []  # another attempt is under way: its result decides
    emails = dunning.on_payment_failure(invoice, now, amount_minor=remaining, message=None, notify=not on_session)
    return Outcome.FAILED, emails


def settle_by_credit(invoice: Invoice, now: dt.datetime | None = None) -> list[PendingEmail]:
    """An unpaid invoice whose credit notes cover it: nothing is due any more (no receipt: nothing was paid)."""
    now = now or utcnow()
    if invoice.payment_state in COLLECTABLE_STATES and amount_due_minor(invoice) <= 0:
        invoice.payment_state = PaymentState.NOT_DUE
        dunning.stop_dunning(invoice)
        dunning.lift_payment_blocks(invoice.account_id, now.date())
    return []


def sync_payment(payment: Payment, *, on_session: bool = False) -> tuple[Outcome, list[PendingEmail]]:
    """Read the attempt's PaymentIntent from Stripe and apply it (after 3-D Secure in the browser)."""
    if not payment.stripe_id:
        return (Outcome.FAILED if payment.status in FAILED_STATUSES else Outcome.ALREADY), []
    intent = stripe_client().v1.payment_intents.retrieve(payment.stripe_id)
    message = stripe_field(stripe_field(intent, "last_payment_error"), "message")
    return apply_status(payment, intent.status, message=message, on_session=on_session, received=received_of(intent))
