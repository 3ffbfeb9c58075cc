"""Handing the pending accounts of a finalizing run to the workers: one function for the CLI and the back office.

Without a broker (Celery eager mode) the chunks run inline, one committed transaction per chunk, and the run
is completed before this returns. With a broker each chunk becomes a ``billing.finalize_chunk`` task that any
worker may take; the caller shows progress from the run items (``runs.progress``) and the last chunk to finish
completes the run. Call it after ``runs.start_finalizing`` was committed: workers only see committed items.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from app.audit.services import Actor, record
from app.billing.models import Invoice, InvoiceRun, RunStatus
from app.billing.runs import services as runs
from app.extensions import db


def is_eager() -> bool:
    return bool(current_app.extensions["celery"].conf.task_always_eager)


def dispatch_finalize(run: InvoiceRun, on_done: Callable[[], None] | None = None,
                      chunk_size: int | None = None) -> bool:
    """Process (eager) or enqueue (broker) every pending item of ``run``. ``on_done`` is called after each
    account processed inline. Returns True when the work was done inline, False when it was enqueued."""
    from app.billing.runs.tasks import finalize_chunk

    run_id = run.id
    chunks = runs.pending_chunks(run, chunk_size)
    if is_eager():
        for chunk in chunks:
            runs.process_items(chunk, on_done=on_done)
        runs.complete_if_done(run_id)
        return True
    if not chunks:  # nothing left for a worker to finish: complete it here (e.g. after a crash at the end)
        runs.complete_if_done(run_id)
    for chunk in chunks:
        finalize_chunk.delay(run_id, chunk)
    return False


def prepare_delivery(run: InvoiceRun, actor: Actor, reason: str | None = None) -> list[int]:
    """The finalized run's invoices not sent yet, with the step audited. Commit, then :func:`dispatch_delivery`."""
    from app.billing.documents.delivery import invoices_to_deliver
    from app.billing.invoicing.invoices import BillingError

    db.session.refresh(run)  # the run may have been completed by a statement since it was loaded
    if run.status != RunStatus.FINALIZED:
        raise BillingError("the run is not finalized yet")
    invoice_ids = invoices_to_deliver(run.id)
    record("billing.deliver", "billing_run", run.id, actor=actor, reason=(reason or "").strip()[:1000] or None,
           details={"invoices": len(invoice_ids)})
    return invoice_ids


def prepare_invoice_delivery(invoice: Invoice, actor: Actor) -> None:
    """Finance asks to finish one invoice's delivery (audited). Commit, then :func:`dispatch_delivery`."""
    record("invoice.deliver", "invoice", invoice.id, actor=actor)


def dispatch_delivery(invoice_ids: list[int]) -> bool:
    """Render, email and collect (or refund) these finalized invoices: inline without a broker, else one
    ``billing.deliver_invoice`` task each. Delivery is idempotent per step, so handing an invoice over twice
    repeats nothing. Returns True when done inline."""
    from app.billing.documents.delivery import deliver_invoice
    from app.billing.runs.tasks import deliver_invoice_task

    if is_eager():
        for invoice_id in invoice_ids:
            deliver_invoice(invoice_id)
        return True
    for invoice_id in invoice_ids:
        deliver_invoice_task.delay(invoice_id)
    return False


def _reason_note(run: InvoiceRun, actor: Actor, step: str, reason: str | None) -> None:
    """``runs.approve``/``start_finalizing`` record their step without a reason; a reason finance gives is
    recorded next to it (the audit log is insert-only, so it is not written into that entry)."""
    reason = (reason or "").strip()
    if reason:
        record("billing.run_note", "billing_run", run.id, actor=actor, reason=reason[:1000], details={"step": step})


def approve(run: InvoiceRun, actor: Actor, reason: str | None = None) -> InvoiceRun:
    """Approve the previewed run (the accounts to invoice are fixed), with finance's optional reason."""
    runs.approve(run, actor)
    _reason_note(run, actor, "approve", reason)
    return run


def start(run: InvoiceRun, actor: Actor, reason: str | None = None) -> InvoiceRun:
    """Start finalizing an approved run, or resume one: failed accounts become pending again (a retry, audited
    with how many failed). Commit, then :func:`dispatch_finalize`."""
    if run.status == RunStatus.FINALIZING:
        failed = runs.progress(run)["failed"]
        runs.start_finalizing(run, actor)
        record("billing.retry", "billing_run", run.id, actor=actor, reason=(reason or "").strip()[:1000] or None,
               details={"failed_items": failed})
        return run
    runs.start_finalizing(run, actor)
    _reason_note(run, actor, "finalize", reason)
    return run
