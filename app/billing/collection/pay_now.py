"""The open balance and "pay now": what the driver owes, and paying it on-session from the portal or the app.

Each unpaid invoice is collected as its own attempt (:func:`app.billing.collection.collect.collect_invoice`,
``on_session=True``): the driver is present, so 3-D Secure goes to the browser instead of failing, and no failure
email is sent. Services flush, never commit; the view commits and then sends ``result.emails``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import stripe
from sqlalchemy import select

from app.accounts.services import PendingEmail
from app.billing.collection.amounts import COLLECTABLE_STATES, amount_due_minor
from app.billing.collection.attempts import Outcome, payment_by_stripe_id, sync_payment
from app.billing.collection.collect import collect_invoice
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState
from app.extensions import db
from app.payments.stripe_client import stripe_client

log = logging.getLogger(__name__)


def open_invoices(account_id: int) -> list[Invoice]:
    """Finalized invoices still waiting for money (incl. SEPA debits under way), oldest first."""
    return list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.account_id == account_id,
                Invoice.kind == InvoiceKind.INVOICE,
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.payment_state.in_([*COLLECTABLE_STATES, PaymentState.PROCESSING]),
                Invoice.total_minor > 0,
            )
            .order_by(Invoice.issue_date, Invoice.id)
        )
    )


def open_balance_minor(account_id: int) -> dict[str, int]:
    """What the driver can pay now, per currency (SEPA debits under way are not counted)."""
    balance: dict[str, int] = {}
    for invoice in open_invoices(account_id):
        if invoice.payment_state in COLLECTABLE_STATES:
            balance[invoice.currency] = balance.get(invoice.currency, 0) + amount_due_minor(invoice)
    return {currency: amount for currency, amount in balance.items() if amount > 0}


@dataclass
class PayNowResult:
    paid: list[Invoice] = field(default_factory=list)
    processing: list[Invoice] = field(default_factory=list)
    failed: Invoice | None = None
    requires_action: Invoice | None = None
    client_secret: str | None = None
    payment_intent_id: str | None = None
    message: str | None = None
    error: bool = False
    emails: list[PendingEmail] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.requires_action is not None:
            return "requires_action"
        if self.failed is not None:
            return "failed"
        if self.processing:
            return "processing"
        return "paid" if self.paid else "nothing_due"


def pay_open_balance(account_id: int, *, payment_intent_id: str | None = None) -> PayNowResult:
    """Charge every unpaid invoice of the account with its saved method, on-session, oldest first; stop at
    the first that needs 3-D Secure (its client secret goes to the browser, which then calls this again with
    the PaymentIntent id) or fails. One PaymentIntent per invoice, so each payment maps to one invoice.
    Paying lifts payment blocks (in :func:`dunning.on_payment_success`) once nothing is overdue any more."""
    result = PayNowResult()
    if payment_intent_id:
        payment = payment_by_stripe_id(payment_intent_id)
        invoice = db.session.get(Invoice, payment.invoice_id) if payment is not None else None
        if payment is None or invoice is None or invoice.account_id != account_id:
            raise LookupError("unknown payment")
        try:
            outcome, emails = sync_payment(payment, on_session=True)
        except stripe.StripeError as error:
            log.warning("pay now: Stripe unavailable (%s)", error)
            result.error = True
            return result
        result.emails.extend(emails)
        if not _absorb(result, invoice, outcome, payment.failure_message, None, payment):
            return result
    for invoice in open_invoices(account_id):
        if invoice.payment_state not in COLLECTABLE_STATES:
            continue
        collected = collect_invoice(invoice, on_session=True)
        result.emails.extend(collected.emails)
        if collected.outcome == Outcome.ERROR:
            result.error = True
            return result
        if not _absorb(
            result, invoice, collected.outcome, collected.message, collected.client_secret, collected.payment
        ):
            return result
    return result


def _absorb(
    result: PayNowResult,
    invoice: Invoice,
    outcome: Outcome,
    message: str | None,
    client_secret: str | None,
    payment: Payment | None,
) -> bool:
    """Add one invoice's outcome; False when paying must stop here."""
    if outcome == Outcome.PAID:
        result.paid.append(invoice)
    elif outcome == Outcome.PROCESSING:
        result.processing.append(invoice)
    elif outcome == Outcome.REQUIRES_ACTION:
        result.requires_action = invoice
        if client_secret is None and payment is not None and payment.stripe_id:
            client_secret = stripe_client().v1.payment_intents.retrieve(payment.stripe_id).client_secret
        result.client_secret = client_secret
        result.payment_intent_id = payment.stripe_id if payment else None
        return False
    elif outcome == Outcome.FAILED:
        result.failed = invoice
        result.message = message
        return False
    return True
