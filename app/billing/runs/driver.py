"""The invoice run, driven: the one sequence ``flask billing`` and the finance back office both follow.

preview → approve → finalize (start or resume; finalize the accounts inline or hand them to the workers; wait for
the workers when the door can; complete) → deliver (PDFs, emails, payments). The services (``runs.services``,
``runs.dispatch``) only flush; this module commits each step, and each batch of accounts through
``runs.batches`` (the units a worker runs too), before anything goes to a worker (workers only see committed
rows). The doors differ only in what they show
while it works (a ``RunObserver``) and whether they wait for the workers; the steps, their order and their
audit are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from app.audit.services import Actor
from app.billing.models import InvoiceRun, RunStatus
from app.billing.runs import batches, dispatch, items
from app.billing.runs import services as runs
from app.extensions import db

POLL_SECONDS = 1.0  # how often a door that waits for the workers reads the run's progress

# Told how many more accounts of the run are finished.
Advance = Callable[[int], None]


def _ignore(_accounts: int) -> None:
    pass


@dataclass
class Delivery:
    """What :func:`deliver` did: how many invoices, inline or queued for the workers, and the payment outcomes
    of those delivered inline ("no payment due" for a credit note or an invoice already paid)."""

    invoices: int
    inline: bool
    payments: dict[str, int] = field(default_factory=dict)


class RunObserver:
    """What a door shows while the driver works. This one shows nothing (the back office renders the run's
    page afterwards); the CLI shows progress bars and the figures."""

    @contextmanager
    def finalizing(self, run: InvoiceRun) -> Iterator[Advance]:
        """Around the finalizing of ``run``; yields what to tell when more accounts are finished."""
        yield _ignore

    def finalized(self, run: InvoiceRun, progress: dict[str, int]) -> None:
        """The run after finalizing here: finalized, or still open with failed accounts."""

    @contextmanager
    def delivering(self, invoices: int) -> Iterator[Callable[[], None]]:
        """Around the inline delivery of ``invoices`` invoices; yields what to tell after each one."""
        yield lambda: None

    def delivered(self, delivery: Delivery) -> None:
        """After the delivery was done inline or queued for the workers."""


SILENT = RunObserver()


# --- the steps -------------------------------------------------------------------------------------------------


def preview(period: str, actor: Actor, *, processes: int = 1) -> InvoiceRun:
    """Compute and store the month's preview (a second one refreshes it). With ``processes`` > 1 the figures are
    composed in that many processes (:mod:`app.billing.runs.parallel`): the ratings and holds the preview makes
    first are committed before, so those processes see them."""
    if processes <= 1:
        run = runs.preview(period, actor)
    else:
        from app.billing.runs.parallel import in_processes  # multiprocessing: only for the doors that ask

        started = runs.start_preview(period)
        db.session.commit()
        run = runs.preview(period, actor, started=started, parts=in_processes(processes))
    db.session.commit()
    return run


def approve(run: InvoiceRun, actor: Actor, reason: str | None = None) -> InvoiceRun:
    """Approve the previewed run: the accounts to invoice are fixed (finance's reason, if any, is recorded)."""
    dispatch.approve(run, actor, reason)
    db.session.commit()
    return run


def finalize(
    run: InvoiceRun,
    actor: Actor,
    reason: str | None = None,
    *,
    then_deliver: bool = True,
    wait_for_workers: bool = False,
    observer: RunObserver = SILENT,
) -> InvoiceRun:
    """Finalize an approved run, or resume one (its failed accounts are retried, audited with ``reason``).

    Without a broker the accounts are finalized here, a committed transaction per batch. With one they go to the
    workers as chunks, and the run finishes here only when the door waits for them (the CLI does; the back
    office's run page shows the progress instead). A run that finished here is then delivered, unless
    ``then_deliver`` is False; a run with failed accounts stays open for a retry and sends nothing yet. Raises
    ``BillingError`` (before anything changed) when the run cannot be finalized."""
    dispatch.start(run, actor, reason)
    db.session.commit()  # workers only see committed items
    run_id = run.id
    with observer.finalizing(run) as advance:
        already = run.accounts_total - items.progress(run)["pending"]
        advance(already)
        inline = _finalize_pending(run, on_done=lambda: advance(1))
        if not inline and wait_for_workers:
            _wait_for_workers(run_id, advance, already)
    if not inline and not wait_for_workers:
        return run  # the workers finish it: the last chunk completes the run
    if not inline:
        batches.complete_run(run_id)  # in case the last worker's check raced with another's
    finished = db.session.get_one(InvoiceRun, run_id)
    progress = items.progress(finished)
    observer.finalized(finished, progress)
    if then_deliver and not progress["failed"] and finished.status == RunStatus.FINALIZED:
        deliver(finished, actor, observer=observer)
    return finished


def deliver(run: InvoiceRun, actor: Actor, reason: str | None = None, *, observer: RunObserver = SILENT) -> Delivery:
    """PDFs, emails and payment collection of the finalized run's invoices not sent yet: inline without a
    broker, else as tasks. Each step of an invoice is done once, so this also retries what failed. Audited;
    raises ``BillingError`` when the run is not finalized."""
    invoice_ids = dispatch.prepare_delivery(run, actor, reason)
    db.session.commit()
    delivery = Delivery(invoices=len(invoice_ids), inline=dispatch.is_eager())
    if not delivery.inline:
        dispatch.dispatch_delivery(invoice_ids)
    else:
        with observer.delivering(len(invoice_ids)) as delivered_one:

            def tally(result: dict[str, str]) -> None:
                outcome = result.get("payment", "no payment due")
                delivery.payments[outcome] = delivery.payments.get(outcome, 0) + 1
                delivered_one()

            dispatch.dispatch_delivery(invoice_ids, on_delivered=tally)
    observer.delivered(delivery)
    return delivery


# --- handing the accounts out ----------------------------------------------------------------------------------


def _finalize_pending(run: InvoiceRun, on_done: Callable[[], None]) -> bool:
    """Finalize (eager) or enqueue (broker) every pending item of ``run``; ``on_done`` is called after each
    account finalized inline. Returns True when the work was done inline (the run is then completed), False
    when it was enqueued as ``billing.finalize_chunk`` tasks that any worker may take."""
    from app.billing.runs import tasks

    run_id = run.id
    chunks = items.pending_chunks(run)
    if dispatch.is_eager():
        for chunk in chunks:
            batches.process_items(chunk, on_done=on_done)
        batches.complete_run(run_id)
        return True
    if not chunks:  # nothing left for a worker to finish: complete it here (e.g. after a crash at the end)
        batches.complete_run(run_id)
    for chunk in chunks:
        tasks.finalize_chunk.delay(run_id, chunk)
    return False


def _wait_for_workers(run_id: int, advance: Advance, already: int) -> None:
    """Follow the workers' progress until no account of the run is pending (failed ones count as finished)."""
    reported = already
    while True:
        db.session.rollback()  # a fresh read each time, holding no lock while workers write
        run = db.session.get_one(InvoiceRun, run_id)
        pending = items.progress(run)["pending"]
        finished = run.accounts_total - pending
        advance(finished - reported)
        reported = finished
        if not pending:
            return
        time.sleep(POLL_SECONDS)
