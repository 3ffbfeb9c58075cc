"""Collecting finalized invoices through Stripe PaymentIntents, paying the open balance, refunding credit notes.

Attempts and idempotency
    Every try to collect an invoice is one *attempt*: a :class:`~app.billing.models.Payment` row, unique per
    (invoice, ``charge``, attempt), and one PaymentIntent created with the idempotency key
    ``emsp-invoice-<number>-attempt-<n>``. A new attempt takes the next number (dunning retries, "pay now").
    Asking for an attempt that already has a row returns that row without calling Stripe (our own guard, which
    also holds against emulators that ignore idempotency keys); a crash after the Stripe call and before the
    commit leaves no row, and the retried call reuses the same attempt number and key, so Stripe answers with
    the same PaymentIntent instead of charging again. On PostgreSQL the invoice row is locked while collecting,
    so two workers never collect one invoice at once.

After an outage
    A try that gets no answer from Stripe is recorded as an outage of its attempt
    (:mod:`app.billing.collection.outages`). Until Stripe's answer for it is recorded, every collection of the
    invoice (the resume job ``billing.resume_collection``, finance's "deliver", dunning, "pay now") resumes
    that attempt: same number and key, and first it looks for the PaymentIntent the lost try may have made
    (through its metadata) and records that one, whatever it was for. So neither an amount changed meanwhile
    (a credit note: Stripe refuses the key with other parameters, ``IdempotencyError``, and the same look-up
    answers) nor a key Stripe forgot after 24 hours ever charges twice.

Outcomes, never exceptions
    A decline, a missing payment method or a card that needs 3-D Secure off-session is an outcome
    (:class:`Outcome.FAILED`, dunning starts), not an error. Only a Stripe outage gives :class:`Outcome.ERROR`:
    no payment recorded, the invoice unchanged, the attempt's outage recorded (when, why, the next try).

Side effects
    Services flush, never commit. Emails are returned in ``result.emails``; the caller commits and then calls
    :func:`app.accounts.services.send_pending` (``payment_tasks.collect_invoice_task`` does all of that).

Credit notes
    A credit note on an unpaid invoice lowers what is collected (:func:`amount_due_minor`); on a paid invoice
    it is refunded through Stripe (:func:`app.billing.collection.refunds.refund_credit_note`), never more than
    what was overpaid.

What was received
    A success is counted for what Stripe says it received (``amount_received``, in its currency), against what
    was due (:func:`amount_due_minor`), never for what we asked. Less than due: a partial payment, the rest stays
    due and dunning goes on for it (flagged ``underpaid``); another currency: counted for nothing, the invoice
    stays unpaid (flagged ``currency_mismatch``); more than due: paid, and the surplus flagged ``overpaid`` for
    finance to give back. Flagged payments are listed for finance (:mod:`app.billing.reporting`).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass, field
from typing import Any

import stripe
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.accounts.services import PendingEmail
from app.billing.collection import dunning, outages
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentReview, PaymentState
from app.db import utcnow
from app.extensions import db
from app.payments.services import active_payment_method, stripe_customer_of
from app.payments.stripe_client import idempotency_key, stripe_client

log = logging.getLogger(__name__)

CHARGE = "charge"
REFUND = "refund"
# Payment.status values that mean "this attempt brought no money and never will".
FAILED_STATUSES = frozenset({"requires_payment_method", "canceled", "no_payment_method", "failed"})
# Attempts whose result is still to come (SEPA) — no new attempt while one is under way.
LIVE_STATUSES = frozenset({"processing"})
# Attempts waiting for the driver (3-D Secure): superseded (cancelled) by a new attempt.
WAITING_STATUSES = frozenset({"requires_action", "requires_confirmation"})
COLLECTABLE_STATES = (PaymentState.OPEN, PaymentState.FAILED, PaymentState.UNCOLLECTIBLE)

NO_METHOD_MESSAGE = "No usable payment method on file: add a card or SEPA mandate in the portal."
AUTH_REQUIRED_MESSAGE = "Your bank asks you to confirm this payment: pay it from the portal."
UNAVAILABLE_MESSAGE = "The payment provider could not be reached."


class Outcome(enum.StrEnum):
    PAID = "paid"
    PROCESSING = "processing"  # SEPA debit under way; the webhook settles it
    FAILED = "failed"  # declined / no method / authentication needed off-session
    REQUIRES_ACTION = "requires_action"  # on-session only: the browser completes 3-D Secure
    NOT_DUE = "not_due"  # nothing to collect (zero total, fully credited)
    ALREADY = "already"  # nothing done: this attempt exists or the invoice is not collectable
    ERROR = "error"  # Stripe unreachable: only the outage recorded; the resume job tries again


@dataclass
class CollectionResult:
    invoice: Invoice
    outcome: Outcome
    payment: Payment | None = None
    message: str | None = None
    client_secret: str | None = None  # REQUIRES_ACTION: for Stripe.js in the driver's browser
    emails: list[PendingEmail] = field(default_factory=list)
    attempt: int | None = None  # the attempt collected (set by :func:`collect_invoice`)


class CollectionError(ValueError):
    """A programming error: asked to collect something that is not a finalized invoice."""


@dataclass(frozen=True)
class Received:
    """Money Stripe says a succeeded PaymentIntent brought in: minor units and ISO currency (upper case)."""

    amount_minor: int
    currency: str


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return obj[name]
    except (KeyError, TypeError, AttributeError):
        return None


def _id_of(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else _field(value, "id")


# --- amounts ------------------------------------------------------------------------------------------------


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


def _credit_awaiting_refund_minor(invoice: Invoice) -> int:
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
    amount = _field(intent, "amount_received")
    if amount is None:
        amount = _field(intent, "amount")
    currency = _field(intent, "currency")
    if type(amount) is not int or amount < 0 or not isinstance(currency, str) or len(currency) != 3:
        return None
    return Received(amount, currency.upper())


def payments_of(invoice: Invoice, kind: str = CHARGE) -> list[Payment]:
    return list(
        db.session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id, Payment.kind == kind).order_by(Payment.attempt)
        )
    )


def _payment(invoice_id: int, kind: str, attempt: int) -> Payment | None:
    return db.session.scalar(
        select(Payment).where(Payment.invoice_id == invoice_id, Payment.kind == kind, Payment.attempt == attempt)
    )


def payment_by_stripe_id(stripe_id: str) -> Payment | None:
    return db.session.scalar(select(Payment).where(Payment.stripe_id == stripe_id))


def _next_attempt(invoice_id: int, kind: str = CHARGE) -> int:
    latest = db.session.scalar(
        select(func.max(Payment.attempt)).where(Payment.invoice_id == invoice_id, Payment.kind == kind)
    )
    return (latest or 0) + 1


def _lock(invoice: Invoice) -> Invoice:
    """On PostgreSQL, lock the invoice row (and re-read it) for the rest of the transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Invoice).where(Invoice.id == invoice.id).with_for_update().execution_options(populate_existing=True)
        )
    return invoice


# --- recording attempts and applying their result -------------------------------------------------------


def _record(
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
        winner = _payment(invoice.id, kind, attempt) or (payment_by_stripe_id(stripe_id) if stripe_id else None)
        if winner is None:
            raise
        return winner, False
    return row, True


def _is_latest(payment: Payment) -> bool:
    return payment.attempt >= _next_attempt(payment.invoice_id, payment.kind) - 1


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
    elif counted > due + _credit_awaiting_refund_minor(invoice):
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


# --- collecting ---------------------------------------------------------------------------------------------


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
    _lock(invoice)
    # An attempt whose answer an outage took away is resumed, never replaced: its PaymentIntent may exist.
    attempt = attempt or outages.waiting_attempt(invoice.id) or _next_attempt(invoice.id)
    result = _collect(invoice, attempt, on_session, now)
    result.attempt = attempt
    if result.outcome != Outcome.ERROR:
        outages.resolve(invoice.id, attempt, now)  # Stripe answered (or nothing is left to ask it)
    return result


def _collect(invoice: Invoice, attempt: int, on_session: bool, now: dt.datetime) -> CollectionResult:
    existing = _payment(invoice.id, CHARGE, attempt)
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
        payment, _ = _record(invoice, attempt, stripe_id=None, amount_minor=due, message=NO_METHOD_MESSAGE)
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
        intent_data = _field(error.json_body, "error") or {}
        intent_id = _id_of(_field(intent_data, "payment_intent"))
        message = error.user_message or str(error)
        payment, _ = _record(invoice, attempt, stripe_id=intent_id, amount_minor=due, message=message)
        outcome, emails = apply_status(
            payment, "requires_payment_method", message=message, now=now, on_session=on_session
        )
        return CollectionResult(invoice, outcome, payment, message, emails=emails)
    except stripe.InvalidRequestError as error:
        # Stripe refused the request itself (method detached, mandate revoked…): the attempt failed.
        message = error.user_message or str(error)
        log.warning("PaymentIntent for %s refused: %s", invoice.number, message)
        payment, _ = _record(invoice, attempt, stripe_id=None, amount_minor=due, message=message)
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
    message = _field(_field(intent, "last_payment_error"), "message")
    payment, _ = _record(invoice, attempt, stripe_id=intent.id, amount_minor=amount_minor, message=message)
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
    asked = _field(intent, "amount")
    amount = asked if type(asked) is int else amount_due_minor(invoice)
    return _record_intent(invoice, attempt, intent, amount, now, on_session)


def _unavailable(invoice: Invoice, attempt: int, error: stripe.StripeError, now: dt.datetime) -> CollectionResult:
    """Stripe did not answer (or refused a retry it could not match): the attempt waits for the provider."""
    reason = outages.outage_reason(error)
    log.warning("collecting %s: Stripe unavailable (%s)", invoice.number, reason)
    outages.note_outage(invoice.id, attempt, reason, now)
    return CollectionResult(invoice, Outcome.ERROR, message=UNAVAILABLE_MESSAGE)


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
    message = _field(_field(intent, "last_payment_error"), "message")
    return apply_status(payment, intent.status, message=message, on_session=on_session, received=received_of(intent))


# --- the open balance ("pay now") ---------------------------------------------------------------------------


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
