"""Collection attempts that met a Stripe outage: what is kept of them, and how their PaymentIntent is found again.

A try to collect an invoice that gets no answer from Stripe (refused or reset connection, no answer within
``STRIPE_READ_TIMEOUT_SECONDS``, a 5xx, a 429) or whose retry Stripe refuses (``IdempotencyError``: the key was
first used with other parameters, because a credit note changed the amount due since) leaves its result unknown:
Stripe may have charged. :class:`~app.billing.models.CollectionOutage` keeps that, per invoice and attempt: since
when, how many tries, why the last one failed (one line, shown to finance on the run page), when the resume job
tries again (:data:`RESUME_DELAYS`: 5, 15, 60 minutes, then hourly) and when Stripe's answer was recorded.

While an outage is unresolved, collection (:func:`app.billing.collection.collect.collect_invoice`) resumes that
attempt, whoever asks (the resume job, finance's "deliver", dunning, "pay now"): the same attempt number, so the
same idempotency key, and before creating anything it looks for the PaymentIntent the attempt may have created,
through its metadata (:func:`find_attempt_intent`), and records that one. So a retry never charges twice, also
once Stripe has forgotten the key (it keeps keys for 24 hours) or when the amount due changed meanwhile.

Why the customer's list and not the Search API: ``GET /v1/payment_intents?customer=`` is read from Stripe's
primary data, so a PaymentIntent created a second before is in it; search (``/v1/payment_intents/search``) is an
index Stripe says lags behind writes (up to a minute, more during an incident), exactly when this runs.

Services flush, never commit; the callers' units of work commit (delivery, the dunning and resume batches).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.billing.models import CollectionOutage, Invoice
from app.extensions import db
from app.payments.stripe_client import stripe_client

log = logging.getLogger(__name__)

# Delay from a try that met the outage to the resume job's next try: the first, second, third; then hourly.
RESUME_DELAYS = (dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(minutes=60))
MAX_REASON = 500
PAGE_SIZE = 100  # the most Stripe lists per page
# Statuses of a PaymentIntent in the order we prefer one when an attempt has several (it never should).
_PREFERRED = {"succeeded": 0, "processing": 1}


def resume_delay(tries: int) -> dt.timedelta:
    """How long after the ``tries``-th failed try the resume job tries again."""
    return RESUME_DELAYS[min(max(tries, 1), len(RESUME_DELAYS)) - 1]


def outage_reason(error: stripe.StripeError) -> str:
    """Why a try met an outage, in one line finance can read (the stored ``reason``)."""
    text = " ".join(str(error.user_message or error).split())
    network = re.search(r"\(Network error: (.*)\)$", text)
    if isinstance(error, stripe.APIConnectionError):
        why = f"Stripe could not be reached or did not answer in time ({network.group(1) if network else text})"
    elif isinstance(error, stripe.IdempotencyError):
        why = f"Stripe refused the retry: the amount changed since a try whose answer was lost ({text})"
    elif isinstance(error, stripe.RateLimitError):
        why = f"Stripe asked us to slow down (HTTP {error.http_status}: {text})"
    else:
        status = f"HTTP {error.http_status}: " if error.http_status else ""
        why = f"Stripe answered with an error ({type(error).__name__}, {status}{text})"
    why = why.replace("\x00", "\\x00")
    return why if len(why) <= MAX_REASON else why[: MAX_REASON - 1] + "…"


# --- the outage of an attempt ----------------------------------------------------------------------------------


def waiting_attempt(invoice_id: int) -> int | None:
    """The attempt of the invoice whose outage is not resolved: collection resumes it (never a new one)."""
    return db.session.scalar(
        select(CollectionOutage.attempt)
        .where(CollectionOutage.invoice_id == invoice_id, CollectionOutage.resolved_at.is_(None))
        .order_by(CollectionOutage.attempt)
        .limit(1)
    )


def unresolved(invoice_id: int, attempt: int) -> CollectionOutage | None:
    outage = db.session.get(CollectionOutage, (invoice_id, attempt))
    return outage if outage is not None and outage.resolved_at is None else None


def note_outage(invoice_id: int, attempt: int, reason: str, now: dt.datetime) -> CollectionOutage:
    """Record that a try of the attempt met an outage (the first one opens it; a later one counts and pushes the
    next try further out). An outage resolved before opens again. Flushes."""
    outage = db.session.get(CollectionOutage, (invoice_id, attempt))
    if outage is None:
        outage = CollectionOutage(
            invoice_id=invoice_id, attempt=attempt, since=now, last_failed_at=now, tries=1, reason=reason[:MAX_REASON]
        )
        try:
            with db.session.begin_nested():
                db.session.add(outage)
        except IntegrityError:
            # Another unit of work noted it first (two batches on one invoice): count this try on its row.
            found = db.session.get(CollectionOutage, (invoice_id, attempt))
            if found is None:
                raise
            outage = found
        else:
            outage.next_try_at = now + resume_delay(1)
            db.session.flush()
            return outage
    if outage.resolved_at is not None:
        outage.resolved_at = None
        outage.since = now
        outage.tries = 0
    outage.tries += 1
    outage.last_failed_at = now
    outage.reason = reason[:MAX_REASON]
    outage.next_try_at = now + resume_delay(outage.tries)
    db.session.flush()
    return outage


def resolve(invoice_id: int, attempt: int, now: dt.datetime) -> bool:
    """Stripe's answer for the attempt is recorded: the outage is over. The resume job still passes once
    (``next_try_at`` now) to finish what it held up: a credit note issued meanwhile is refunded if the invoice
    turned out paid in full. False when the attempt had no unresolved outage."""
    outage = unresolved(invoice_id, attempt)
    if outage is None:
        return False
    outage.resolved_at = now
    outage.next_try_at = now
    db.session.flush()
    log.info("collecting invoice %s: attempt %s answered after %s failed tries", invoice_id, attempt, outage.tries)
    return True


def due(now: dt.datetime, limit: int | None = None) -> list[tuple[int, int]]:
    """(invoice id, attempt) of the outages the resume job has something to do for, oldest first."""
    query = (
        select(CollectionOutage.invoice_id, CollectionOutage.attempt)
        .where(CollectionOutage.next_try_at <= now)
        .order_by(CollectionOutage.next_try_at, CollectionOutage.invoice_id, CollectionOutage.attempt)
    )
    if limit:
        query = query.limit(limit)
    return [(invoice_id, attempt) for invoice_id, attempt in db.session.execute(query)]


def lock_due(invoice_id: int, attempt: int, now: dt.datetime) -> CollectionOutage | None:
    """The outage if the resume job still has something to do for it. On PostgreSQL its invoice is locked first,
    as collection locks it before it writes an outage (the same order, so no deadlock with a delivery or a
    dunning retry of the invoice); an invoice another transaction holds is skipped, for the next run."""
    if db.session.get_bind().dialect.name == "postgresql":
        locked = db.session.scalar(select(Invoice.id).where(Invoice.id == invoice_id).with_for_update(skip_locked=True))
        if locked is None:
            return None
    return db.session.scalar(
        select(CollectionOutage)
        .where(
            CollectionOutage.invoice_id == invoice_id,
            CollectionOutage.attempt == attempt,
            CollectionOutage.next_try_at <= now,
        )
        .execution_options(populate_existing=True)
    )


# --- finding the PaymentIntent of an attempt ---------------------------------------------------------------------


def find_attempt_intent(customer_id: str, invoice_id: int, attempt: int) -> Any | None:
    """The PaymentIntent that attempt ``attempt`` of the invoice created, found among the customer's by the
    metadata collection sets (``invoice_id``, ``attempt``); ``None`` when there is none. Raises the
    ``StripeError`` of an outage. Should an attempt have several (never by our hand), a succeeded one counts."""
    wanted = (str(invoice_id), str(attempt))
    found = [
        intent
        for intent in stripe_client()
        .v1.payment_intents.list(params={"customer": customer_id, "limit": PAGE_SIZE})
        .auto_paging_iter()
        if _metadata_key(intent) == wanted
    ]
    if len(found) > 1:
        log.warning(
            "invoice %s attempt %s has %s PaymentIntents at Stripe: %s",
            invoice_id,
            attempt,
            len(found),
            ", ".join(f"{intent.id} ({intent.status})" for intent in found),
        )
    found.sort(key=lambda intent: (_PREFERRED.get(intent.status, 2), -(intent.created or 0)))
    return found[0] if found else None


def _metadata_key(intent: Any) -> tuple[str | None, str | None]:
    metadata: Any = getattr(intent, "metadata", None) or {}  # a StripeObject (not a dict since stripe 15)
    values = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)
    return values.get("invoice_id"), values.get("attempt")


# --- what finance sees -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """An invoice of a run whose collection waits for the payment provider."""

    invoice_id: int
    number: str | None
    attempt: int
    since: dt.datetime
    tries: int
    reason: str
    next_try_at: dt.datetime | None


def waiting_for_provider(run_id: int, limit: int = 200) -> list[Waiting]:
    """The run's invoices whose collection met an outage not resolved yet, longest waiting first."""
    rows = db.session.execute(
        select(CollectionOutage, Invoice.number)
        .join(Invoice, Invoice.id == CollectionOutage.invoice_id)
        .where(Invoice.run_id == run_id, CollectionOutage.resolved_at.is_(None))
        .order_by(CollectionOutage.since, CollectionOutage.invoice_id)
        .limit(limit)
    )
    return [
        Waiting(
            outage.invoice_id,
            number,
            outage.attempt,
            outage.since,
            outage.tries,
            outage.reason,
            outage.next_try_at,
        )
        for outage, number in rows
    ]
