"""``POST /webhooks/stripe``: Stripe tells us how payments ended (SEPA settles days later, refunds, disputes).

- The signature is checked on the raw body with ``STRIPE_WEBHOOK_SECRET`` (``Stripe-Signature``: ``t=…,v1=…``,
  HMAC-SHA256 over ``"{t}.{body}"``, five minutes tolerance); anything else is answered 400 (problem+json)
  and changes nothing.
- Each event is handled once: its id is stored in :class:`~app.billing.models.StripeEvent` in the same
  transaction as its effects, so a repeat (Stripe retries until it gets a 2xx) answers 200 and does nothing,
  and a failure rolls both back and answers 500 so Stripe tries again.
- One transaction per event; emails go out after the commit.

Handled: ``payment_intent.succeeded`` / ``.payment_failed`` / ``.processing`` / ``.canceled`` and
``charge.refunded``. Other types are acknowledged and ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.services import PendingEmail, send_pending

# Registers the billing Celery tasks and their beat schedule in every process that builds the app.
from app.billing.collection import tasks as payment_tasks  # noqa: F401
from app.billing.collection.refunds import refunded_minor
from app.billing.collection.services import (
    CHARGE,
    FAILED_STATUSES,
    REFUND,
    apply_status,
    payment_by_stripe_id,
    payments_of,
)
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState, StripeEvent
from app.extensions import db
from app.payments.stripe_client import stripe_client

log = logging.getLogger(__name__)

bp = Blueprint("stripe_webhooks", __name__)

INTENT_STATUS_BY_EVENT = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.processing": "processing",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
}


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else None


def _id_of(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else _field(value, "id")


@bp.post("/webhooks/stripe")
def stripe_webhook():  # type: ignore[no-untyped-def]
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        log.error("Stripe webhook received but STRIPE_WEBHOOK_SECRET is not configured")
        abort(503, description="Webhook verification is not configured.")
    payload = request.get_data(cache=False, as_text=False)
    try:
        stripe_client().construct_event(payload, request.headers.get("Stripe-Signature"), secret)
        event = json.loads(payload)
    except stripe.SignatureVerificationError:
        abort(400, description="Invalid Stripe signature.")
    except ValueError:
        abort(400, description="The body is not a Stripe event.")
    event_id, event_type = _field(event, "id"), _field(event, "type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
        abort(400, description="The event has no id or type.")

    try:
        with db.session.begin_nested():
            db.session.add(StripeEvent(id=event_id[:64], type=event_type[:80]))
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, duplicate=True), 200

    emails, credit_notes = handle_event(event_type, _field(_field(event, "data"), "object") or {})
    db.session.commit()
    send_pending(emails)
    if credit_notes:
        # Refunds that had to wait for this payment (a credit note issued while the SEPA debit was under way).
        # After the commit: the event is acknowledged whatever Stripe answers; a refund that fails is logged and
        # stays due ("Finish delivery" on the credit note).
        from app.billing.documents.delivery import refund_due

        for credit_note_id in credit_notes:
            outcome = refund_due(db.session.get(Invoice, credit_note_id))
            log.info("credit note %s after its invoice was paid: %s", credit_note_id, outcome)
    return jsonify(received=True), 200


def handle_event(event_type: str, obj: dict[str, Any]) -> tuple[list[PendingEmail], list[int]]:
    """Apply one verified event (flushes; the view commits). Returns the emails to send after the commit and
    the credit notes to refund now (their refund waited for this payment)."""
    if event_type in INTENT_STATUS_BY_EVENT:
        return _on_payment_intent(obj, INTENT_STATUS_BY_EVENT[event_type])
    if event_type == "charge.refunded":
        _on_charge_refunded(obj)
    return [], []


def _credit_notes_awaiting_refund(invoice_id: int) -> list[int]:
    """Finalized credit notes of the invoice with no refund yet: refunding them had to wait while the invoice's
    payment was under way (``refunds.refund_credit_note`` answers ``pending`` then)."""
    refunded = select(Payment.invoice_id).where(Payment.kind == REFUND)
    return list(db.session.scalars(select(Invoice.id).where(
        Invoice.credits_invoice_id == invoice_id, Invoice.kind == InvoiceKind.CREDIT_NOTE,
        Invoice.status == InvoiceStatus.FINALIZED, Invoice.id.notin_(refunded)).order_by(Invoice.id)))


def _attempt_for_intent(intent: dict[str, Any]) -> Payment | None:
    """Our attempt for a PaymentIntent: by id, else through the metadata we set on it (an emulator's decline
    carries no PaymentIntent id; a crash may have lost our row after Stripe created the intent)."""
    intent_id = _field(intent, "id")
    if isinstance(intent_id, str):
        found = payment_by_stripe_id(intent_id)
        if found is not None:
            return found
    metadata = _field(intent, "metadata") or {}
    number = metadata.get("invoice_number")
    attempt = str(metadata.get("attempt") or "")
    if not number or not attempt.isdigit():
        return None
    invoice = db.session.scalar(select(Invoice).where(Invoice.number == number, Invoice.kind == InvoiceKind.INVOICE))
    if invoice is None or str(invoice.account_id) != str(metadata.get("account_id")):
        return None
    for payment in payments_of(invoice, CHARGE):
        if payment.attempt == int(attempt):
            if payment.stripe_id is None and isinstance(intent_id, str):
                payment.stripe_id = intent_id
            return payment
    amount = _field(intent, "amount")
    if not isinstance(intent_id, str) or not isinstance(amount, int):
        return None
    # Stripe has an attempt we lost (crash before commit): record it now.
    log.warning("recording attempt %s of %s from the webhook (%s)", attempt, number, intent_id)
    payment = Payment(invoice_id=invoice.id, attempt=int(attempt), kind=CHARGE, stripe_id=intent_id,
                      amount_minor=amount, currency=invoice.currency, status="new")
    db.session.add(payment)
    db.session.flush()
    return payment


def _on_payment_intent(intent: dict[str, Any], status: str) -> tuple[list[PendingEmail], list[int]]:
    payment = _attempt_for_intent(intent)
    if payment is None:
        log.info("webhook for unknown PaymentIntent %s ignored", _field(intent, "id"))
        return [], []
    if status in FAILED_STATUSES and payment.status == "succeeded":
        return [], []  # out of order: a success never turns back into a failure
    message = _field(_field(intent, "last_payment_error"), "message")
    _, emails = apply_status(payment, status, message=message)
    settled = status == "succeeded" and payment.kind == CHARGE
    return emails, _credit_notes_awaiting_refund(payment.invoice_id) if settled else []


def _on_charge_refunded(charge: dict[str, Any]) -> None:
    """Fully refunded (here or in the Stripe dashboard) → the invoice is REFUNDED; partial refunds leave it
    PAID (the credit notes say what was given back)."""
    intent_id = _id_of(_field(charge, "payment_intent"))
    payment = payment_by_stripe_id(intent_id) if intent_id else None
    if payment is None or payment.kind != CHARGE:
        return
    invoice = db.session.get(Invoice, payment.invoice_id)
    if invoice is None:
        return
    amount = _field(charge, "amount") or payment.amount_minor
    amount_refunded = _field(charge, "amount_refunded")
    fully = bool(_field(charge, "refunded")) or (
        isinstance(amount_refunded, int) and amount_refunded >= amount) or refunded_minor(invoice) >= amount
    if fully and invoice.payment_state == PaymentState.PAID:
        invoice.payment_state = PaymentState.REFUNDED
        db.session.flush()
