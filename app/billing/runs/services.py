"""The monthly invoice run: preview → approve → finalize (numbers, frozen invoices) → deliver.

Every account is a ``RunItem``; a batch of them (a Celery chunk) is finalized in one transaction together with
its items' status, so a run killed mid-way resumes where it stopped: finished accounts have their invoice
(unique per account, period and currency) and a ``done`` item, unfinished ones roll back completely and give
their numbers back. An account that fails is retried alone, so it fails alone. With a Celery broker the items
are shared out in chunks over many workers; without one they run inline.

These services only flush. ``runs.driver`` drives the steps for every door and commits each; ``runs.batches``
commits each batch of accounts (inline or on a worker).

This module holds the steps and is the one the doors import. Beside it: ``periods`` (which month a run may
cover), ``billable`` (what the month has to bill: candidates, outliers held, unbillable accounts, what stayed
uninvoiced or unrated), ``figures`` (the preview's figures), ``items`` (the run items: chunks, failures,
progress, completion).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, select, update

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.billing.invoicing.composition import compose_many, period_bounds
from app.billing.invoicing.invoices import BillingError, finalize_compositions
from app.billing.models import Invoice, InvoiceKind, InvoiceRun, InvoiceStatus, RunItem, RunStatus
from app.billing.runs.billable import (
    candidate_accounts,
    hold_outliers,
    unbillable_accounts,
    uninvoiced_sessions,
    unrated_cdrs,
    unrated_reasons,
)
from app.billing.runs.figures import PartsRunner, preview_figures
from app.billing.runs.items import (
    CHUNK_SIZE,
    complete_if_done,
    failed_items,
    mark_item_failed,
    pending_chunks,
    progress,
)
from app.billing.runs.periods import check_month_ended, check_period, last_ended_month
from app.db import utcnow
from app.db_bulk import insert_rows
from app.extensions import db
from app.rating.pending import rate_pending

# The run's services for callers outside ``runs``: the steps defined here and, re-exported, what the doors, the
# CLI and the benchmarks read from the modules beside it.
__all__ = [
    "CHUNK_SIZE",
    "approve",
    "check_month_ended",
    "check_period",
    "complete_if_done",
    "failed_items",
    "finalize_items",
    "last_ended_month",
    "pending_chunks",
    "preview",
    "progress",
    "run_for",
    "start_finalizing",
    "uninvoiced_sessions",
    "unrated_cdrs",
    "unrated_reasons",
]

log = logging.getLogger(__name__)


def run_for(period: str) -> InvoiceRun | None:
    return db.session.scalar(
        select(InvoiceRun).where(InvoiceRun.period == period, InvoiceRun.status != RunStatus.CANCELLED)
    )


@dataclass(frozen=True)
class PreviewStart:
    """What a preview did before its figures: the CDRs it rated now and those it could not."""

    period: str
    rated: int
    unrated: list[str]


def start_preview(period: str) -> PreviewStart:
    """A preview's first part: may the month be previewed; the CDRs that could not be rated on arrival get
    another chance; outliers are held. Flushed: the driver commits it first when the figures are composed in
    other processes (they see only committed data)."""
    check_month_ended(period)
    run = run_for(period)
    if run is not None and run.status not in (RunStatus.PREVIEW,):
        raise BillingError(
            _l("The run for %(period)s is past its preview: it cannot be computed again.", period=period)
        )
    _start, end = period_bounds(period)
    rated, unrated = rate_pending()
    hold_outliers(end)
    return PreviewStart(period, rated, unrated)


def preview(
    period: str, actor: Actor, *, started: PreviewStart | None = None, parts: PartsRunner | None = None
) -> InvoiceRun:
    """Compute and store the preview of a month (idempotent: a second dry run refreshes the figures).

    One bad unit fails alone: a CDR that cannot be rated stays unrated (``not_rated`` says why), a session whose
    figures cannot be checked is held, an account that cannot be invoiced as it stands is left out of the
    figures and listed in ``failed_accounts`` with why. ``started``: :func:`start_preview` done already (and
    committed, for ``parts``); ``parts``: the figures composed in parts elsewhere (:mod:`app.billing.runs.parallel`)."""
    if started is None or started.period != period:
        started = start_preview(period)
    run = run_for(period)
    accounts = candidate_accounts(period)
    candidates = set(accounts)
    failed = {
        account_id: reason for account_id, reason in unbillable_accounts(period).items() if account_id in candidates
    }
    if run is None:
        run = InvoiceRun(period=period, created_by=actor.label)
        db.session.add(run)
    figures = preview_figures(period, accounts, failed, parts)
    run.preview = {**figures, "rated_now": started.rated, "not_rated": started.unrated[:100]}
    run.accounts_total = len(accounts)
    db.session.flush()
    for account_id, reason in failed.items():
        log.warning("invoice run %s, preview: account %s left out: %s", period, account_id, reason)
    record("billing.preview", "billing_run", run.id, actor=actor, details={"period": period})
    return run


def approve(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    """Finance approves the preview: the accounts to invoice are fixed as run items."""
    if run.status != RunStatus.PREVIEW:
        raise BillingError(_l("Only a run in preview can be approved."))
    check_month_ended(run.period)
    accounts = candidate_accounts(run.period)
    # One multi-row write (COPY on PostgreSQL): a month has a row per account, 100,000 of them and more.
    insert_rows(
        cast(Table, RunItem.__table__),
        [{"run_id": run.id, "account_id": account_id, "status": "pending"} for account_id in accounts],
    )
    run.accounts_total = len(accounts)
    run.status = RunStatus.APPROVED
    run.approved_by = actor.label
    run.approved_at = utcnow()
    db.session.flush()
    record("billing.approve", "billing_run", run.id, actor=actor, details={"accounts": len(accounts)})
    return run


def finalize_items(item_ids: list[int]) -> None:
    """Compose and store the invoices of these run items in the current transaction (the caller commits).

    The batch is composed and stored set-based (a few queries and multi-row inserts for all its accounts, see
    ``composition.compose_many`` and ``invoices.finalize_compositions``) together with its run items' status,
    so committed as one unit (``runs.batches.process_items``) a crash leaves it wholly done or wholly pending,
    with its numbers given back."""
    # The pending items are locked (PostgreSQL; SQLite locks the whole database on write anyway) so a chunk
    # delivered twice to two workers is not done twice: the second skips what the first holds, and sees it
    # done once the first commits.
    items = db.session.execute(
        select(RunItem.id, RunItem.run_id, RunItem.account_id)
        .where(RunItem.id.in_(item_ids), RunItem.status == "pending")
        .order_by(RunItem.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not items:
        return
    periods = dict(
        db.session.execute(
            select(InvoiceRun.id, InvoiceRun.period).where(InvoiceRun.id.in_({item.run_id for item in items}))
        ).all()
    )
    now = utcnow()
    for run_id in sorted({item.run_id for item in items}):
        period = periods[run_id]
        run_items = [item for item in items if item.run_id == run_id]
        account_ids = [item.account_id for item in run_items]
        existing = set(
            db.session.scalars(
                select(Invoice.account_id).where(
                    Invoice.account_id.in_(account_ids),
                    Invoice.period == period,
                    Invoice.kind == InvoiceKind.INVOICE,
                    Invoice.status == InvoiceStatus.FINALIZED,
                )
            )
        )
        accounts = {
            account.id: account
            for account in db.session.scalars(
                select(Account).where(Account.id.in_([a for a in account_ids if a not in existing]))
            )
        }
        todo = [accounts[item.account_id] for item in run_items if item.account_id in accounts]
        # An account whose month cannot be composed fails alone, here, with why; the batch goes on without it.
        failed: dict[int, str] = {}
        invoiced = existing | set(finalize_compositions(compose_many(todo, period, failed=failed), run_id=run_id))
        for item in run_items:
            if item.account_id in failed:
                mark_item_failed(item.id, failed[item.account_id])
        done = [item.id for item in run_items if item.account_id in invoiced]
        skipped = [item.id for item in run_items if item.account_id not in invoiced and item.account_id not in failed]
        if done:
            # Each item points at its account's invoice of the period: one UPDATE for the whole batch.
            invoice_of_item = (
                select(Invoice.id)
                .where(
                    Invoice.account_id == RunItem.account_id,
                    Invoice.period == period,
                    Invoice.kind == InvoiceKind.INVOICE,
                    Invoice.status == InvoiceStatus.FINALIZED,
                )
                .limit(1)
                .scalar_subquery()
            )
            db.session.execute(
                update(RunItem)
                .where(RunItem.id.in_(done))
                .values(status="done", invoice_id=invoice_of_item, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        if skipped:
            db.session.execute(
                update(RunItem)
                .where(RunItem.id.in_(skipped))
                .values(status="skipped", invoice_id=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )


def start_finalizing(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    if run.status not in (RunStatus.APPROVED, RunStatus.FINALIZING):
        raise BillingError(_l("Approve the run first."))
    check_month_ended(run.period)
    if run.status == RunStatus.APPROVED:
        run.status = RunStatus.FINALIZING
        record("billing.finalize", "billing_run", run.id, actor=actor)
    # Failed items get another chance on a resume.
    db.session.execute(
        update(RunItem).where(RunItem.run_id == run.id, RunItem.status == "failed").values(status="pending", error=None)
    )
    db.session.flush()
    return run
