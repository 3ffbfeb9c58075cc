"""Celery wrappers of the invoice run: each chunk of accounts is a task, so many workers share one run."""

from __future__ import annotations

from app.billing.runs import batches
from app.jobs import task


@task(name="billing.finalize_chunk", acks_late=True)
def finalize_chunk(run_id: int, item_ids: list[int]) -> None:
    """Finalize a chunk of run items. A worker that dies mid-chunk commits none of it, and the task, acknowledged
    only when done, runs again on another worker (with Redis once ``CELERY_BROKER_VISIBILITY_TIMEOUT`` has passed),
    which finalizes what is still pending: done items are skipped, items another worker holds are left to it
    (``tests/faults/test_worker_killed.py``). Finalizing the run again hands out every pending item sooner."""
    batches.finalize_chunk(run_id, item_ids)


@task(name="billing.deliver_invoice", acks_late=True)
def deliver_invoice_task(invoice_id: int) -> dict[str, str]:
    """Render, email and collect one invoice; idempotent, so a redelivered task repeats nothing."""
    from app.billing.documents.delivery import deliver_invoice

    return deliver_invoice(invoice_id)
