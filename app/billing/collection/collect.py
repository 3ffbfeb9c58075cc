"""Collecting a finalized invoice: one PaymentIntent per attempt, and after a Stripe outage the look-up that
finds what a lost try made.

Attempts and idempotency
    Every try to collect an invoice is one *attempt* (:mod:`app.billing.collection.attempts`), made with one
    PaymentIntent created with the idempotency key ``emsp-invoice-<number>-attempt-<n>``. A new attempt takes the
    next number (dunning retries, "pay now"). Asking for an attempt that already has a row returns that row
    without calling Stripe (our own guard, which also holds against emulators that ignore idempotency keys); a
    crash after the Stripe call and before the commit leaves no row, and the retried call reuses the same attempt
    number and key, so Stripe answers with the same PaymentIntent instead of charging again. On PostgreSQL the
    invoice row is locked while collecting, so two workers never collect one invoice at once.

After an outage
    A try that gets no answer from Stripe is recorded as an outage of its attempt
    (:mod:`app.billing.collection.outages`) and gives :class:`~app.billing.collection.attempts.Outcome.ERROR`: no
    payment recorded, the invoice unchanged. Until Stripe's answer for it is recorded, every collection of the
    invoice (the resume job ``billing.resume_collection``, finance's "deliver", dunning, "pay now") resumes
    that attempt: same number and key, and first it looks for the PaymentIntent the lost try may have made
    (through its metadata) and records that one, whatever it was for. So neither an amount changed meanwhile
    (a credit note: Stripe refuses the key with other parameters, ``IdempotencyError``, and the same look-up
    answers) nor a key Stripe forgot after 24 hours ever charges twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import stripe

from app.accounts.services import PendingEmail
from app.billing.collection import outages
from app.billing.collection.amounts import (
    CHARGE,
    COLLECTABLE_STATES,
    amount_due_minor,
    received_of,
)
from app.billing.collection.attempts import (
    LIVE_STATUSES,
    WAITING_STATUSES,
    CollectionError,
    Outcome,
    apply_status,
    attempt_payment,
    lock_invoice,
    next_attempt,
    payments_of,
    record_attempt,
    settle_by_credit,
)
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState
from app.db import utcnow
from app.extensions import db
from app.payments.services import active_payment_method, stripe_customer_of
from app.payments.stripe_client import idempotency_key, stripe_client, stripe_field

log = logging.getLogger(__name__)

NO_METHOD_MESSAGE = "No usable payment method on file: add a card or SEPA mandate in the portal."
UNAVAILABLE_MESSAGE = "The payment provider could not be reached."


@dataclass
class CollectionResult:
    invoice: Invoice
    outcome: Outcome
    payment: Payment | None = None
    message: str | None = None
    client_secret: str | None = None  # REQUIRES_ACTION: for Stripe.js in the driver's browser
    emails: list[PendingEmail] = field(default_factory=list)
    attempt: int | None = None  # the attempt collected (set by :func:`collect_invoice`)


def _id_of(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else stripe_field(value, "id")


def _cancel_waiting(invoice: Invoice, now: dt.datetime) -> list[PendingEmail]:
    """A new attempt supersedes one left waiting for 3-D Secure: cancel it, so it can never be paid as well."""
    emails: list[PendingEmail] = []
    for payment in payments_of(invoice):
        if payment.status not in WAITING_STATUSES or not payment.stripe_id:
            continue
        try:
            stripe_client().v1.payment_intents.cancel(payment.stripe_id)
            payment.status = "canceled"
        except stripe.InvalidRequestError as error:
            # Already cancelled or finished at Stripe: read what it is now.
            log.info("could not cancel %s: %s", payment.stripe_id, error)
            intent = stripe_client().v1.payment_intents.retrieve(payment.stripe_id)
            if intent.status == "succeeded":  # the driver completed it after all: count what it brought in
                emails += apply_status(payment, "succeeded", now=now, received=received_of(intent))[1]
            else:
                payment.status = intent.status
    db.session.flush()
    return emails


def collect_invoice(
    invoice: Invoice, *, attempt: int | None = None, on_session: bool = False, now: dt.datetime | None = None
) -> CollectionResult:
    """Collect a finalized invoice with the account's saved card or SEPA mandate.

    ``attempt=None`` makes a new attempt (next number), unless an attempt of the invoice met an outage that is
    not resolved: that one is resumed (:mod:`app.billing.collection.outages`). An explicit ``attempt`` that
    already exists returns it untouched (the run's first collection passes ``attempt=1`` so a re-run never tries
    twice). ``on_session`` is for "pay now": the driver is present, so 3-D Secure is handed to the browser
    instead of failing, and no failure email is sent.
    """
    now = now or utcnow()
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.FINALIZED or not invoice.number:
        raise CollectionError("only a finalized invoice can be collected")
    lock_invoice(invoice)
    # An attempt whose answer an outage took away is resumed, never replaced: its PaymentIntent may exist.
    attempt = attempt or outages.waiting_attempt(invoice.id) or next_attempt(invoice.id)
    result = _collect(invoice, attempt, on_session, now)
    result.attempt = attempt
    if result.outcome != Outcome.ERROR:
        outages.resolve(invoice.id, attempt, now)  # Stripe answered (or nothing is left to ask it)
    return result


def _collect(invoice: Invoice, attempt: int, on_session: bool, now: dt.datetime) -> CollectionResult:
    existing = attempt_payment(invoice.id, CHARGE, attempt)
    if existing is not None:
        return CollectionResult(invoice, Outcome.ALREADY, existing, "this attempt was already made")
    if outages.unresolved(invoice.id, attempt) is not None:
        # An earlier try of this attempt met an outage: find what it made before making anything.
        recovered = _recover(invoice, attempt, now, on_session)
        if recovered is not None:
            return recovered
    if invoice.total_minor <= 0:
        if invoice.payment_state in COLLECTABLE_STATES:
            invoice.payment_state = PaymentState.NOT_DUE
            db.session.flush()
        return CollectionResult(invoice, Outcome.NOT_DUE, message="nothing to collect")
    if invoice.payment_state not in COLLECTABLE_STATES:
        live = [payment for payment in payments_of(invoice) if payment.status in LIVE_STATUSES]
        return CollectionResult(
            invoice, Outcome.ALREADY, live[-1] if live else None, f"invoice is {invoice.payment_state.value}"
        )
    due = amount_due_minor(invoice)
    if due <= 0:
        return CollectionResult(
            invoice, Outcome.NOT_DUE, message="fully credited", emails=settle_by_credit(invoice, now)
        )
    try:
        settled = _cancel_waiting(invoice, now)
    except stripe.StripeError as error:
        log.warning("collecting %s: could not cancel a waiting attempt", invoice.number)
        return _unavailable(invoice, attempt, error, now)
    # A waiting attempt may have been paid after all (in full or in part): never charge again for that.
    due = amount_due_minor(invoice)
    if invoice.payment_state not in COLLECTABLE_STATES or due <= 0:
        outcome = Outcome.PAID if invoice.payment_state == PaymentState.PAID else Outcome.ALREADY
        return CollectionResult(invoice, outcome, message="a waiting attempt was paid", emails=settled)

    method = active_payment_method(invoice.account_id)
    customer = stripe_customer_of(invoice.account_id)
    if method is None or customer is None or not method.is_usable(now.date()):
        payment, _ = record_attempt(invoice, attempt, stripe_id=None, amount_minor=due, message=NO_METHOD_MESSAGE)
        # The first attempt is the run's: the invoice email has just told this driver how to pay by hand, so a
        # "payment failed" email in the same second would only contradict it. Dunning starts all the same.
        outcome, emails = apply_status(
            payment, "no_payment_method", now=now, on_session=on_session, notify=attempt != 1
        )
        return CollectionResult(invoice, outcome, payment, NO_METHOD_MESSAGE, emails=emails)

    params: dict[str, Any] = {
        "amount": due,
        "currency": invoice.currency.lower(),
        "customer": customer.stripe_customer_id,
        "payment_method": method.stripe_payment_method_id,
        "payment_method_types": [method.method_type],
        "confirm": True,
        "off_session": not on_session,
        "metadata": {
            "invoice_number": invoice.number,
            "invoice_id": str(invoice.id),
            "account_id": str(invoice.account_id),
            "attempt": str(attempt),
        },
    }
    key = idempotency_key("invoice", invoice.number, "attempt", attempt)
    try:
        intent = stripe_client().v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": key},
        )
    except stripe.CardError as error:
        # Declined. Real Stripe names the PaymentIntent in the error; emulators may not (then the webhook
        # finds the attempt through the metadata).
        intent_data = stripe_field(error.json_body, "error") or {}
        intent_id = _id_of(stripe_field(intent_data, "payment_intent"))
        message = error.user_message or str(error)
        payment, _ = record_attempt(invoice, attempt, stripe_id=intent_id, amount_minor=due, message=message)
        outcome, emails = apply_status(
            payment, "requires_payment_method", message=message, now=now, on_session=on_session
        )
        return CollectionResult(invoice, outcome, payment, message, emails=emails)
    except stripe.InvalidRequestError as error:
        # Stripe refused the request itself (method detached, mandate revoked…): the attempt failed.
        message = error.user_message or str(error)
        log.warning("PaymentIntent for %s refused: %s", invoice.number, message)
        payment, _ = record_attempt(invoice, attempt, stripe_id=None, amount_minor=due, message=message)
        outcome, emails = apply_status(payment, "failed", message=message, now=now, on_session=on_session)
        return CollectionResult(invoice, outcome, payment, message, emails=emails)
    except stripe.IdempotencyError as error:
        # The key was used before with other parameters: a try of this attempt reached Stripe, its answer was
        # lost and the amount due changed since (a credit note). What that try made is the attempt's result.
        log.warning("collecting %s: attempt %s was tried before with other parameters", invoice.number, attempt)
        recovered = _recover(invoice, attempt, now, on_session)
        if recovered is None or recovered.outcome == Outcome.ERROR:
            return recovered or _unavailable(invoice, attempt, error, now)
        # Kept as an outage of the attempt (resolved by the caller): the resume job then gives back what a credit
        # note issued meanwhile made too much.
        outages.note_outage(invoice.id, attempt, outages.outage_reason(error), now)
        return recovered
    except stripe.StripeError as error:
        return _unavailable(invoice, attempt, error, now)
    return _record_intent(invoice, attempt, intent, due, now, on_session)


def _record_intent(
    invoice: Invoice, attempt: int, intent: Any, amount_minor: int, now: dt.datetime, on_session: bool
) -> CollectionResult:
    """Record the attempt's PaymentIntent and apply what Stripe says about it."""
    message = stripe_field(stripe_field(intent, "last_payment_error"), "message")
    payment, _ = record_attempt(invoice, attempt, stripe_id=intent.id, amount_minor=amount_minor, message=message)
    outcome, emails = apply_status(
        payment, intent.status, message=message, now=now, on_session=on_session, received=received_of(intent)
    )
    return CollectionResult(
        invoice,
        outcome,
        payment,
        payment.failure_message if outcome == Outcome.FAILED else None,
        client_secret=intent.client_secret if outcome == Outcome.REQUIRES_ACTION else None,
        emails=emails,
    )


def _recover(invoice: Invoice, attempt: int, now: dt.datetime, on_session: bool) -> CollectionResult | None:
    """The PaymentIntent an earlier try of the attempt created (its answer was lost), found through its metadata
    and recorded with what Stripe says of it now; ``None`` when that try created none, so the attempt is made
    now. The amount recorded is the one that try asked, which a credit note may have changed since: paid in full,
    the credit note is then refunded (``refunds.refund_credit_note``, from the resume job)."""
    customer = stripe_customer_of(invoice.account_id)
    if customer is None:
        return None  # no Stripe customer: no PaymentIntent can have been made
    try:
        intent = outages.find_attempt_intent(customer.stripe_customer_id, invoice.id, attempt)
    except stripe.StripeError as error:
        return _unavailable(invoice, attempt, error, now)
    if intent is None:
        return None
    log.warning(
        "collecting %s: attempt %s found at Stripe after an outage: %s (%s)",
        invoice.number,
        attempt,
        intent.id,
        intent.status,
    )
    asked = stripe_field(intent, "amount")
    amount = asked if type(asked) is int else amount_due_minor(invoice)
    return _record_intent(invoice, attempt, intent, amount, now, on_session)


def _unavailable(invoice: Invoice, attempt: int, error: stripe.StripeError, now: dt.datetime) -> CollectionResult:
    """Stripe did not answer (or refused a retry it could not match): the attempt waits for the provider."""
    reason = outages.outage_reason(error)
    log.warning("collecting %s: Stripe unavailable (%s)", invoice.number, reason)
    outages.note_outage(invoice.id, attempt, reason, now)
    return CollectionResult(invoice, Outcome.ERROR, message=UNAVAILABLE_MESSAGE)
