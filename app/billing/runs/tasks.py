"""Celery wrappers of the invoice run: each chunk of accounts is a task, so many workers share one run."""

from __future__ import annotations

from app.billing.runs import batches
from app.jobs import task


@task(name="billing.finalize_chunk", acks_late=True)
def finalize_chunk(run_id: int, item_ids: list[int]) -> None:
    """Finalize a chunk of run items; a worker that dies mid-chunk leaves its items pending for a resume."""
    batches.finalize_chunk(run_id, item_ids)


@task(name="billing.deliver_invoice", acks_late=True)
def deliver_invoice_task(invoice_id: int) -> dict[str, str]:
    """Render, email and collect one invoice; idempotent, so a redelivered task repeats nothing."""
    from app.billing.documents.delivery import deliver_invoice

    return deliver_invoice(invoice_id)
