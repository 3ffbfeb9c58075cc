"""Celery wrappers for collecting payments and dunning. Each task is one unit of work: it commits, then sends
the emails the services prepared.

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``billing.run_dunning`` every hour: retry the invoices whose next dunning attempt is due, remind, and block
  the cards of accounts whose schedule ran out.
"""

from __future__ import annotations

from typing import Any

from app.accounts.services import send_pending
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.services import Outcome, collect_invoice
from app.billing.models import Invoice
from app.extensions import celery, db
from app.jobs import task

BEAT_SCHEDULE = {
    "billing-run-dunning": {"task": "billing.run_dunning", "schedule": 3600.0},
}


# celery ships no types, and app.jobs.task covers plain tasks only (a bound task takes itself first).
@celery.task(name="billing.collect_invoice", bind=True, max_retries=5, default_retry_delay=300)  # type: ignore[untyped-decorator]
def collect_invoice_task(self: Any, invoice_id: int, attempt: int | None = 1) -> str:
    """Collect a freshly finalized invoice (attempt 1 by default, so a re-delivered task never charges twice).
    Retried later when Stripe is unreachable."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        return "missing"
    result = collect_invoice(invoice, attempt=attempt)
    if result.outcome == Outcome.ERROR:
        db.session.rollback()
        if not celery.conf.task_always_eager:
            raise self.retry()
        return result.outcome.value
    db.session.commit()
    send_pending(result.emails)
    return result.outcome.value


@task(name="billing.run_dunning")
def run_dunning_task() -> dict[str, int]:
    return run_dunning(commit=True).as_dict()
