"""What an invoice's payments add up to: what was credited, received and is still due.

Credit notes
    A credit note on an unpaid invoice lowers what is collected (:func:`amount_due_minor`); on a paid invoice
    it is refunded through Stripe (:func:`app.billing.collection.refunds.refund_credit_note`), never more than
    what was overpaid.

What was received
    Money received is counted for what Stripe said it received (:func:`received_of`: ``amount_received``, in its
    currency), never for what we asked; money in another currency is not counted (:func:`received_minor`). How a
    success is counted against what was due, and flagged for finance, is
    :func:`app.billing.collection.attempts.apply_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState
from app.extensions import db
from app.payments.stripe_client import stripe_field

# The two kinds of Payment rows: an attempt to collect an invoice, a refund of a credit note.
CHARGE = "charge"
REFUND = "refund"
COLLECTABLE_STATES = (PaymentState.OPEN, PaymentState.FAILED, PaymentState.UNCOLLECTIBLE)


@dataclass(frozen=True)
class Received:
    """Money Stripe says a succeeded PaymentIntent brought in: minor units and ISO currency (upper case)."""

    amount_minor: int
    currency: str


def credited_minor(invoice: Invoice) -> int:
    """What finalized credit notes took off the invoice (positive cents, incl. VAT)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor), 0)).where(
            Invoice.credits_invoice_id == invoice.id,
            Invoice.kind == InvoiceKind.CREDIT_NOTE,
            Invoice.status == InvoiceStatus.FINALIZED,
        )
    )
    return -int(total or 0)


def credit_awaiting_refund_minor(invoice: Invoice) -> int:
    """Credit notes of the invoice not refunded yet: a payment of the full total gives them back."""
    refunded = select(Payment.invoice_id).where(Payment.kind == REFUND)
    total = db.session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor), 0)).where(
            Invoice.credits_invoice_id == invoice.id,
            Invoice.kind == InvoiceKind.CREDIT_NOTE,
            Invoice.status == InvoiceStatus.FINALIZED,
            Invoice.id.notin_(refunded),
        )
    )
    return -int(total or 0)


def received_minor(invoice: Invoice) -> int:
    """Money received on the invoice in its own currency: its succeeded charges, each for what Stripe said it
    received (rows from before that was kept: the amount asked). Money in another currency is not counted."""
    amount = func.coalesce(Payment.amount_received_minor, Payment.amount_minor)
    total = db.session.scalar(
        select(func.coalesce(func.sum(amount), 0)).where(
            Payment.invoice_id == invoice.id,
            Payment.kind == CHARGE,
            Payment.status == "succeeded",
            or_(Payment.received_currency.is_(None), Payment.received_currency == invoice.currency.upper()),
        )
    )
    return int(total or 0)


def amount_due_minor(invoice: Invoice) -> int:
    """What is left to collect on an unpaid invoice: its total minus its credit notes and minus what a partial
    payment already brought in (never negative)."""
    if invoice.payment_state not in (*COLLECTABLE_STATES, PaymentState.PROCESSING):
        return 0
    return max(invoice.total_minor - credited_minor(invoice) - received_minor(invoice), 0)


def received_of(intent: Any) -> Received | None:
    """What a succeeded PaymentIntent brought in: ``amount_received`` (else ``amount``, which emulators send
    alone) and ``currency``; ``None`` when Stripe's answer does not say (then the amount asked is assumed)."""
    amount = stripe_field(intent, "amount_received")
    if amount is None:
        amount = stripe_field(intent, "amount")
    currency = stripe_field(intent, "currency")
    if type(amount) is not int or amount < 0 or not isinstance(currency, str) or len(currency) != 3:
        return None
    return Received(amount, currency.upper())
