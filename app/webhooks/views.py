"""``POST /webhooks/stripe``: Stripe tells us how payments ended (SEPA settles days later, refunds, disputes).

- The signature is checked on the raw body with ``STRIPE_WEBHOOK_SECRET`` (``Stripe-Signature``: ``t=…,v1=…``,
  HMAC-SHA256 over ``"{t}.{body}"``, ``t`` within five minutes of our clock, before or after:
  :func:`~app.webhooks.stripe_events.verify_signature`); anything else is answered 400 (problem+json) and
  changes nothing.
- A signed event we cannot use (fields missing or of the wrong type, unknown PaymentIntent or invoice, a type
  we do not handle) is answered 200 ``{"ignored": reason}``, logged with its id and kept as a
  :class:`~app.billing.models.StripeEvent` with ``ignored_reason``, and changes nothing: a 4xx or 5xx would
  make Stripe retry it for days, and it would never get better.
- Each event is handled once: its id is stored in :class:`~app.billing.models.StripeEvent` in the same
  transaction as its effects, so a repeat (Stripe retries until it gets a 2xx) answers 200 and does nothing,
  and a failure (the database, not the event) rolls both back and answers 500 so Stripe tries again.
- One transaction per event; emails go out after the commit.
- A success counts for what it brought in (``amount_received`` and ``currency`` against what is due), never for
  what we asked: see :func:`app.billing.collection.services.apply_status`.

Handled: ``payment_intent.succeeded`` / ``.payment_failed`` / ``.processing`` / ``.canceled`` and
``charge.refunded``. Other types are acknowledged and recorded as ignored.
"""

from __future__ import annotations

import hashlib
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
from app.webhooks.stripe_events import (
    IntentFields,
    UnusableEventError,
    intent_fields,
    read_envelope,
    refunded_charge_fields,
    verify_signature,
)

log = logging.getLogger(__name__)

bp = Blueprint("stripe_webhooks", __name__)

INTENT_STATUS_BY_EVENT = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.processing": "processing",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
}
# What a signed event with unexpected content may raise deep in a handler despite the checks: it is the event's
# fault, not ours, so it is acknowledged and recorded as ignored. Database errors are not among them (500: retry).
UNUSABLE_CONTENT_ERRORS = (TypeError, ValueError, KeyError, AttributeError)


@bp.post("/webhooks/stripe")
def stripe_webhook():  # type: ignore[no-untyped-def]
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        log.error("Stripe webhook received but STRIPE_WEBHOOK_SECRET is not configured")
        abort(503, description="Webhook verification is not configured.")
    payload = request.get_data(cache=False, as_text=False)
    try:
        verify_signature(payload, request.headers.get("Stripe-Signature"), secret)
    except stripe.SignatureVerificationError:
        abort(400, description="Invalid Stripe signature.")
    except ValueError:  # not UTF-8 text: cannot have been signed
        abort(400, description="The body is not a Stripe event.")
    # From here on the body is Stripe's: what we cannot use is acknowledged, never answered 4xx/5xx.
    try:
        envelope = read_envelope(payload)
    except UnusableEventError as ignored:
        log.warning(
            "signed Stripe webhook ignored, nothing recorded: %s (body sha256 %s)",
            ignored.reason,
            hashlib.sha256(payload).hexdigest(),
        )
        return jsonify(received=True, ignored=ignored.reason), 200

    if db.session.get(StripeEvent, envelope.id) is not None:
        return jsonify(received=True, duplicate=True), 200
    record = StripeEvent(id=envelope.id, type=envelope.type)
    try:  # the primary key settles a race between two deliveries of one event
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, duplicate=True), 200

    reason = None
    try:
        with db.session.begin_nested():  # undone alone: the event stays recorded as ignored
            emails, credit_notes = handle_event(envelope.type, envelope.object)
    except UnusableEventError as ignored:
        reason = ignored.reason
    except UNUSABLE_CONTENT_ERRORS as error:
        log.exception("Stripe event %s (%s): unusable content", envelope.id, envelope.type)
        reason = f"unusable content ({type(error).__name__})"
    if reason is not None:
        record.ignored_reason = reason
        db.session.commit()
        log.warning("Stripe event %s (%s) ignored: %s", envelope.id, envelope.type or "no type", reason)
        return jsonify(received=True, ignored=reason), 200
    db.session.commit()
    send_pending(emails)
    if credit_notes:
        # Refunds that had to wait for this payment (a credit note issued while the SEPA debit was under way).
        # After the commit: the event is acknowledged whatever Stripe answers; a refund that fails is logged and
        # stays due ("Finish delivery" on the credit note).
        from app.billing.documents.delivery import refund_due

        for credit_note_id in credit_notes:
            credit_note = db.session.get(Invoice, credit_note_id)
            if credit_note is not None:
                outcome = refund_due(credit_note)
                log.info("credit note %s after its invoice was paid: %s", credit_note_id, outcome)
    return jsonify(received=True), 200


def handle_event(event_type: str, obj: Any) -> tuple[list[PendingEmail], list[int]]:
    """Apply one verified event (flushes; the view commits). Returns the emails to send after the commit and
    the credit notes to refund now (their refund waited for this payment). Raises :class:`UnusableEventError` for an
    event it cannot use (before changing anything)."""
    if event_type in INTENT_STATUS_BY_EVENT:
        status = INTENT_STATUS_BY_EVENT[event_type]
        return _on_payment_intent(intent_fields(obj, status), status)
    if event_type == "charge.refunded":
        _on_charge_refunded(obj)
        return [], []
    raise UnusableEventError(StripeEvent.TYPE_NOT_HANDLED if event_type else "the event has no type")


def _credit_notes_awaiting_refund(invoice_id: int) -> list[int]:
    """Finalized credit notes of the invoice with no refund yet: refunding them had to wait while the invoice's
    payment was under way (``refunds.refund_credit_note`` answers ``pending`` then)."""
    refunded = select(Payment.invoice_id).where(Payment.kind == REFUND)
    return list(
        db.session.scalars(
            select(Invoice.id)
            .where(
                Invoice.credits_invoice_id == invoice_id,
                Invoice.kind == InvoiceKind.CREDIT_NOTE,
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.id.notin_(refunded),
            )
            .order_by(Invoice.id)
        )
    )


def _attempt_for_intent(intent: IntentFields) -> Payment:
    """Our attempt for a PaymentIntent: by id, else through the metadata we set on it (an emulator's decline
    carries no PaymentIntent id; a crash may have lost our row after Stripe created the intent).
    :class:`UnusableEventError` when it is none of ours."""
    found = payment_by_stripe_id(intent.id)
    if found is not None:
        return found
    if intent.invoice_number is None or intent.attempt is None:
        raise UnusableEventError(f"unknown PaymentIntent {intent.id} (no invoice_number and attempt in its metadata)")
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.number == intent.invoice_number, Invoice.kind == InvoiceKind.INVOICE)
    )
    if invoice is None or invoice.status != InvoiceStatus.FINALIZED:
        raise UnusableEventError(
            f"PaymentIntent {intent.id}: unknown invoice {intent.invoice_number!r} in its metadata"
        )
    if str(invoice.account_id) != intent.account_id:
        raise UnusableEventError(
            f"PaymentIntent {intent.id}: its metadata's account is not the one of invoice {invoice.number}"
        )
    for payment in payments_of(invoice, CHARGE):
        if payment.attempt == intent.attempt:
            if payment.stripe_id is None:
                payment.stripe_id = intent.id
            elif payment.stripe_id != intent.id:
                raise UnusableEventError(
                    f"PaymentIntent {intent.id}: attempt {intent.attempt} of {invoice.number} is another PaymentIntent"
                )
            return payment
    if intent.amount is None:
        raise UnusableEventError(
            f"PaymentIntent {intent.id}: no attempt {intent.attempt} of {invoice.number} and no "
            f"amount to record it with"
        )
    # Stripe has an attempt we lost (crash before commit): record it now.
    log.warning("recording attempt %s of %s from the webhook (%s)", intent.attempt, invoice.number, intent.id)
    payment = Payment(
        invoice_id=invoice.id,
        attempt=intent.attempt,
        kind=CHARGE,
        stripe_id=intent.id,
        amount_minor=intent.amount,
        currency=invoice.currency,
        status="new",
    )
    db.session.add(payment)
    db.session.flush()
    return payment


def _on_payment_intent(intent: IntentFields, status: str) -> tuple[list[PendingEmail], list[int]]:
    payment = _attempt_for_intent(intent)
    if payment.kind != CHARGE:
        raise UnusableEventError(f"PaymentIntent {intent.id} is recorded as a {payment.kind}, not a charge")
    if status in FAILED_STATUSES and payment.status == "succeeded":
        raise UnusableEventError(f"a failure of PaymentIntent {intent.id}, which already succeeded")  # out of order
    _, emails = apply_status(payment, status, message=intent.failure_message, received=intent.received)
    return emails, _credit_notes_awaiting_refund(payment.invoice_id) if status == "succeeded" else []


def _on_charge_refunded(obj: Any) -> None:
    """Fully refunded (here or in the Stripe dashboard) → the invoice is REFUNDED; partial refunds leave it
    PAID (the credit notes say what was given back)."""
    charge = refunded_charge_fields(obj)
    payment = payment_by_stripe_id(charge.payment_intent_id)
    if payment is None or payment.kind != CHARGE:
        raise UnusableEventError(f"charge.refunded for PaymentIntent {charge.payment_intent_id}, no charge of ours")
    invoice = db.session.get(Invoice, payment.invoice_id)
    assert invoice is not None  # a foreign key
    amount = charge.amount or payment.amount_minor
    fully = (
        charge.refunded
        or (charge.amount_refunded is not None and charge.amount_refunded >= amount)
        or (refunded_minor(invoice) >= amount)
    )
    if fully and invoice.payment_state == PaymentState.PAID:
        invoice.payment_state = PaymentState.REFUNDED
        db.session.flush()
