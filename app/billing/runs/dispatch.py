"""The audited steps of an invoice run as finance takes them, and handing invoices to the workers for delivery.

``approve`` and ``start`` add finance's reason (and a retry's audit) to the run services' steps;
``prepare_delivery`` picks and audits what a run still has to send. They only flush: ``runs.driver`` commits them
and hands the work out. ``dispatch_delivery`` renders, emails and collects invoices inline without a broker (Celery
eager mode) or as one task each with one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.audit.services import Actor, record
from app.billing.models import Invoice, InvoiceRun, RunStatus
from app.billing.runs import items
from app.billing.runs import services as runs
from app.extensions import db


def is_eager() -> bool:
    return bool(current_app.extensions["celery"].conf.task_always_eager)


def prepare_delivery(run: InvoiceRun, actor: Actor, reason: str | None = None) -> list[int]:
    """The finalized run's invoices not sent yet, with the step audited. Commit, then :func:`dispatch_delivery`."""
    from app.billing.documents.delivery import invoices_to_deliver
    from app.billing.invoicing.invoices import BillingError

    db.session.refresh(run)  # the run may have been completed by a statement since it was loaded
    if run.status != RunStatus.FINALIZED:
        raise BillingError(_l("The run is not finalized yet."))
    invoice_ids = invoices_to_deliver(run.id)
    record(
        "billing.deliver",
        "billing_run",
        run.id,
        actor=actor,
        reason=(reason or "").strip()[:1000] or None,
        details={"invoices": len(invoice_ids)},
    )
    return invoice_ids


def prepare_invoice_delivery(invoice: Invoice, actor: Actor) -> None:
    """Finance asks to finish one invoice's delivery (audited). Commit, then :func:`dispatch_delivery`."""
    record("invoice.deliver", "invoice", invoice.id, actor=actor)


def dispatch_delivery(invoice_ids: list[int], on_delivered: Callable[[dict[str, str]], None] | None = None) -> bool:
    """Render, email and collect (or refund) these finalized invoices: inline without a broker, else one
    ``billing.deliver_invoice`` task each. Delivery is idempotent per step, so handing an invoice over twice
    repeats nothing. ``on_delivered`` is told what each invoice delivered inline did. Returns True when done
    inline."""
    from app.billing.documents.delivery import deliver_invoice
    from app.billing.runs.tasks import deliver_invoice_task

    if is_eager():
        for invoice_id in invoice_ids:
            result = deliver_invoice(invoice_id)
            if on_delivered:
                on_delivered(result)
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
    with how many failed). Commit before the accounts are handed out (``runs.driver.finalize`` does both)."""
    if run.status == RunStatus.FINALIZING:
        failed = items.progress(run)["failed"]
        runs.start_finalizing(run, actor)
        record(
            "billing.retry",
            "billing_run",
            run.id,
            actor=actor,
            reason=(reason or "").strip()[:1000] or None,
            details={"failed_items": failed},
        )
        return run
    runs.start_finalizing(run, actor)
    _reason_note(run, actor, "finalize", reason)
    return run
