"""Refunds: a credit note on a paid invoice goes back through Stripe (idempotency key = credit note number)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import stripe
from sqlalchemy import func, select
from stripe.params import RefundCreateParams

from app.accounts.services import PendingEmail
from app.billing.collection.amounts import COLLECTABLE_STATES, REFUND, credited_minor, received_minor
from app.billing.collection.attempts import (
    CollectionError,
    attempt_payment,
    lock_invoice,
    payments_of,
    record_attempt,
    settle_by_credit,
)
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentReview, PaymentState
from app.db import utcnow
from app.extensions import db
from app.payments.stripe_client import idempotency_key, stripe_client

log = logging.getLogger(__name__)


@dataclass
class RefundResult:
    credit_note: Invoice
    outcome: str  # refunded | already | not_paid | nothing_to_refund | pending | error
    payment: Payment | None = None
    amount_minor: int = 0
    message: str | None = None
    emails: list[PendingEmail] = field(default_factory=list)


def _paid_charge(invoice: Invoice) -> Payment | None:
    # Money in another currency is finance's to sort out (flagged), never refunded against the invoice.
    paid = [
        payment
        for payment in payments_of(invoice)
        if payment.status == "succeeded" and payment.stripe_id and payment.review != PaymentReview.CURRENCY_MISMATCH
    ]
    return paid[-1] if paid else None


def refunded_minor(invoice: Invoice) -> int:
    """Refunds made for the invoice's credit notes (they are recorded on the credit notes)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Payment.amount_minor), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(
            Invoice.credits_invoice_id == invoice.id,
            Payment.kind == REFUND,
            Payment.status.notin_(["failed", "canceled"]),
        )
    )
    return int(total or 0)


def credit_notes_without_refund(invoice_id: int) -> list[Invoice]:
    """Finalized credit notes of the invoice with no refund recorded yet: a payment of the invoice that brought in
    more than was left due (asked before they were issued) is given back through them."""
    refunded = select(Payment.invoice_id).where(Payment.kind == REFUND)
    return list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.credits_invoice_id == invoice_id,
                Invoice.kind == InvoiceKind.CREDIT_NOTE,
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.id.notin_(refunded),
            )
            .order_by(Invoice.id)
        )
    )


def refund_credit_note(credit_note: Invoice, *, now: dt.datetime | None = None) -> RefundResult:
    """Send a credit note's amount back through Stripe, on the original invoice's successful PaymentIntent.

    - original paid: refund ``abs(credit_note.total_minor)``, but never more than was overpaid (paid minus the
      credited total minus earlier refunds — a credit already deducted before collection is not refunded
      again). Idempotency key = the credit note's number; the Payment row (kind ``refund``, attempt 1) on the
      credit note makes a second call a no-op. Refunded in full → the original becomes REFUNDED.
    - original not paid (OPEN/FAILED/UNCOLLECTIBLE): nothing to refund; the credit lowers what is collected
      (:func:`amount_due_minor`), and an invoice fully covered by credit notes becomes NOT_DUE.
    - original PROCESSING (SEPA under way): ``pending`` — call again once it settled.
    """
    now = now or utcnow()
    if credit_note.kind != InvoiceKind.CREDIT_NOTE or credit_note.status != InvoiceStatus.FINALIZED:
        raise CollectionError("only a finalized credit note can be refunded")
    existing = attempt_payment(credit_note.id, REFUND, 1)
    if existing is not None:
        return RefundResult(credit_note, "already", existing, existing.amount_minor)
    original = db.session.get(Invoice, credit_note.credits_invoice_id) if credit_note.credits_invoice_id else None
    if original is None:
        raise CollectionError("the credit note references no invoice")
    lock_invoice(original)
    if original.payment_state == PaymentState.PROCESSING:
        return RefundResult(credit_note, "pending", message="the original payment is still being processed")
    charge = _paid_charge(original)
    if charge is None or original.payment_state in COLLECTABLE_STATES:  # unpaid, or paid in part only
        return RefundResult(
            credit_note,
            "not_paid",
            message="the credit lowers the open balance",
            emails=settle_by_credit(original, now),
        )
    # Everything received counts (a partial payment and the rest are two charges); one refund goes back on the
    # last charge, so never more than that charge brought in.
    paid = received_minor(original)
    overpaid = paid - refunded_minor(original) - max(original.total_minor - credited_minor(original), 0)
    charge_received = charge.amount_minor if charge.amount_received_minor is None else charge.amount_received_minor
    amount = min(abs(credit_note.total_minor), overpaid, charge_received)
    if amount <= 0:
        return RefundResult(credit_note, "nothing_to_refund", message="already deducted before payment")
    try:
        params: RefundCreateParams = {
            "payment_intent": charge.stripe_id or "",
            "amount": amount,
            "metadata": {
                "credit_note_number": credit_note.number or "",
                "invoice_number": original.number or "",
                "account_id": str(original.account_id),
            },
        }
        refund = stripe_client().v1.refunds.create(
            params=params, options={"idempotency_key": idempotency_key("refund", credit_note.number)}
        )
    except stripe.StripeError as error:
        log.warning("refund of %s failed: %s", credit_note.number, error)
        return RefundResult(credit_note, "error", message=error.user_message or str(error))
    payment, _ = record_attempt(
        credit_note,
        1,
        stripe_id=refund.id,
        amount_minor=amount,
        status=refund.status or "pending",
        message=None,
        kind=REFUND,
    )
    if refunded_minor(original) >= paid:
        original.payment_state = PaymentState.REFUNDED
    db.session.flush()
    return RefundResult(credit_note, "refunded", payment, amount)
