"""The dunning batch: retry every invoice whose next attempt is due (hourly, ``billing.run_dunning``).

The policy (schedule, standing, what a success or a failure does) is :mod:`app.billing.collection.dunning`,
which collection calls after each attempt; this runner calls collection. Kept apart so the arrows run one way:
runner → collection → dunning policy.

Each invoice is its own unit of work: with ``commit=True`` the runner commits one invoice at a time and sends
its emails after the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from app.accounts.services import PendingEmail, send_pending
from app.billing.collection.attempts import Outcome
from app.billing.collection.collect import CollectionResult, collect_invoice
from app.billing.models import Dunning, Invoice, PaymentState
from app.db import utcnow
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass
class DunningReport:
    retried: int = 0
    paid: int = 0
    processing: int = 0
    failed: int = 0
    blocked: int = 0
    errors: int = 0
    skipped: int = 0
    emails: list[PendingEmail] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in ("retried", "paid", "processing", "failed", "blocked", "errors", "skipped")
        }


def due_invoice_ids(now: dt.datetime, limit: int | None = None) -> list[int]:
    query = (
        select(Dunning.invoice_id)
        .join(Invoice, Invoice.id == Dunning.invoice_id)
        .where(Dunning.next_attempt_at <= now, Invoice.payment_state.in_([PaymentState.OPEN, PaymentState.FAILED]))
        .order_by(Dunning.next_attempt_at, Dunning.invoice_id)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def _lock_due(invoice_id: int, now: dt.datetime) -> Dunning | None:
    """The dunning row if still due, locked so two workers never retry the same invoice at once."""
    query = select(Dunning).where(Dunning.invoice_id == invoice_id, Dunning.next_attempt_at <= now)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.scalar(query)


def retry_invoice(invoice_id: int, now: dt.datetime) -> CollectionResult | None:
    """One dunning step for one invoice (flushes; the caller commits and then sends ``result.emails``)."""
    dunning = _lock_due(invoice_id, now)
    if dunning is None:
        return None
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.payment_state not in (PaymentState.OPEN, PaymentState.FAILED):
        dunning.next_attempt_at = None
        db.session.flush()
        return None
    # The retry is made now: count it and mark it in flight, so its failure (now or by webhook) moves on.
    dunning.stage += 1
    dunning.next_attempt_at = None
    db.session.flush()
    return collect_invoice(invoice, now=now)


def run_dunning(now: dt.datetime | None = None, *, commit: bool = True, limit: int | None = None) -> DunningReport:
    """Retry every invoice whose next attempt is due. With ``commit=True`` each invoice is its own unit of
    work (committed, then its emails sent). A retry that meets a Stripe outage is made all the same (the stage
    counted, ``next_attempt_at`` empty: in flight) and left to the resume job, which ends it."""
    now = now or utcnow()
    report = DunningReport()
    for invoice_id in due_invoice_ids(now, limit):
        try:
            # A savepoint per invoice: a failure undoes this invoice's step only.
            with db.session.begin_nested():
                result = retry_invoice(invoice_id, now)
        except Exception:
            log.exception("dunning retry of invoice %s failed", invoice_id)
            report.errors += 1
            if not commit:
                raise
            db.session.rollback()
            continue
        if result is not None and result.outcome == Outcome.ERROR:
            # Stripe unreachable: the retry stays in flight, its outage recorded; the resume job
            # (``billing.resume_collection``) takes it up with the same attempt and key, and its answer moves
            # dunning on as any retry's does.
            log.warning("dunning retry of invoice %s waits for the payment provider", invoice_id)
            report.errors += 1
            if commit:
                db.session.commit()
            continue
        if result is None or result.outcome in (Outcome.ALREADY, Outcome.NOT_DUE):
            report.skipped += 1
            if commit:
                db.session.commit()
            continue
        report.retried += 1
        invoice = db.session.get(Invoice, invoice_id)
        if result.outcome == Outcome.PAID:
            report.paid += 1
        elif result.outcome == Outcome.PROCESSING:
            report.processing += 1
        elif invoice is not None and invoice.payment_state == PaymentState.UNCOLLECTIBLE:
            report.blocked += 1
        else:
            report.failed += 1
        if commit:
            db.session.commit()
            send_pending(result.emails)
        else:
            report.emails.extend(result.emails)
    return report
