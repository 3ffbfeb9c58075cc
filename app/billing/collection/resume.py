"""The resume batch: collection that met a Stripe outage goes on by itself (``billing.resume_collection``).

Every minute beat runs :func:`resume_collection`, which takes the outages whose ``next_try_at`` has come
(:mod:`app.billing.collection.outages`):

- not resolved: collect the invoice again with the same attempt (so the same idempotency key; collection first
  looks for the PaymentIntent a lost try made). Still no answer: the outage counts the try and waits longer
  (5, 15, 60 minutes, then hourly). An answer (paid, declined, processing…) is applied as any attempt's, dunning
  included: a dunning retry that met the outage was counted when it was made, so its answer moves dunning on.
- resolved (here, or by finance's "deliver", dunning, "pay now" or a webhook): finish what the outage held up.
  An invoice that turned out paid is refunded the credit notes issued meanwhile, for what it brought in above
  what was left due (``refunds.refund_credit_note`` gives back only that). Then the outage is done.

Each outage is its own unit of work: with ``commit=True`` it is committed (then its emails sent) after the
collection and again after each refund. The invoice is locked before its outage (PostgreSQL), the order collection
keeps too; an invoice another transaction holds (a second run of the job, a delivery) is skipped until the next
run, so an attempt is never collected twice at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from app.accounts.services import PendingEmail, send_pending
from app.billing.collection import outages
from app.billing.collection.attempts import Outcome
from app.billing.collection.collect import collect_invoice
from app.billing.collection.refunds import credit_notes_without_refund, refund_credit_note
from app.billing.models import Invoice, PaymentState
from app.db import utcnow
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass
class ResumeReport:
    resumed: int = 0  # attempts collected again
    paid: int = 0
    processing: int = 0
    failed: int = 0  # Stripe answered: declined, no method, authentication needed…
    waiting: int = 0  # still no answer from Stripe: tried again later
    refunded: int = 0  # credit notes given back once the invoice turned out paid
    finished: int = 0  # outages with nothing left to do
    errors: int = 0  # an outage whose step raised (logged; tried again at the next run)
    emails: list[PendingEmail] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in ("resumed", "paid", "processing", "failed", "waiting", "refunded", "finished", "errors")
        }


def resume_collection(now: dt.datetime | None = None, *, commit: bool = True, limit: int | None = None) -> ResumeReport:
    """Resume every outage whose next try has come (see the module)."""
    now = now or utcnow()
    report = ResumeReport()
    for invoice_id, attempt in outages.due(now, limit):
        try:
            _resume(invoice_id, attempt, now, report, commit)
        except Exception:
            log.exception("resuming collection of invoice %s (attempt %s) failed", invoice_id, attempt)
            report.errors += 1
            if not commit:
                raise
            db.session.rollback()  # undoes this outage's step under way; the next run tries it again
            continue
        if commit:
            db.session.commit()
    return report


def _resume(invoice_id: int, attempt: int, now: dt.datetime, report: ResumeReport, commit: bool) -> None:
    outage = outages.lock_due(invoice_id, attempt, now)
    if outage is None:
        return  # another run took it, or it is no longer due
    invoice = db.session.get_one(Invoice, invoice_id)
    if outage.resolved_at is None:
        result = collect_invoice(invoice, attempt=attempt, now=now)
        _done(report, result.emails, commit)
        if result.outcome == Outcome.ERROR:
            report.waiting += 1
            return
        report.resumed += 1
        if result.outcome == Outcome.PAID:
            report.paid += 1
        elif result.outcome == Outcome.PROCESSING:
            report.processing += 1
        elif result.outcome == Outcome.FAILED:
            report.failed += 1
    if invoice.payment_state == PaymentState.PAID:
        for credit_note in credit_notes_without_refund(invoice.id):
            refund = refund_credit_note(credit_note, now=now)
            _done(report, refund.emails, commit)
            if refund.outcome == "error":  # Stripe down again: the next run tries the refund again
                outage.next_try_at = now + outages.resume_delay(1)
                db.session.flush()
                return
            if refund.outcome == "refunded":
                report.refunded += 1
                log.info("credit note %s refunded after the outage of %s", credit_note.number, invoice.number)
    outage.next_try_at = None
    db.session.flush()
    report.finished += 1


def _done(report: ResumeReport, emails: list[PendingEmail], commit: bool) -> None:
    """End a step of the unit of work: commit and send its emails, or keep them for the caller."""
    if commit:
        db.session.commit()
        send_pending(emails)
    else:
        report.emails.extend(emails)
