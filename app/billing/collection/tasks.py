"""Celery wrappers for collecting payments and dunning. Each task is one unit of work: it commits, then sends
the emails the services prepared.

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``billing.run_dunning`` every hour: retry the invoices whose next dunning attempt is due, remind, and block
  the cards of accounts whose schedule ran out.
- ``billing.resume_collection`` every minute: collect again the attempts that met a Stripe outage once their
  next try has come (5, 15, 60 minutes after, then hourly), with the same attempt and key, and refund the credit
  notes issued meanwhile if they turned out paid (:mod:`app.billing.collection.resume`).
"""

from __future__ import annotations

from app.accounts.services import send_pending
from app.billing.collection.collect import collect_invoice
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.resume import resume_collection
from app.billing.models import Invoice
from app.extensions import db
from app.jobs import task

BEAT_SCHEDULE = {
    "billing-run-dunning": {"task": "billing.run_dunning", "schedule": 3600.0},
    "billing-resume-collection": {"task": "billing.resume_collection", "schedule": 60.0},
}


@task(name="billing.collect_invoice")
def collect_invoice_task(invoice_id: int, attempt: int | None = 1) -> str:
    """Collect a freshly finalized invoice (attempt 1 by default, so a re-delivered task never charges twice).
    When Stripe is unreachable the attempt's outage is committed and ``billing.resume_collection`` takes it up
    (the same attempt and key, its PaymentIntent looked for first)."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        return "missing"
    result = collect_invoice(invoice, attempt=attempt)
    db.session.commit()
    send_pending(result.emails)
    return result.outcome.value


@task(name="billing.run_dunning")
def run_dunning_task() -> dict[str, int]:
    return run_dunning(commit=True).as_dict()


@task(name="billing.resume_collection")
def resume_collection_task() -> dict[str, int]:
    return resume_collection(commit=True).as_dict()
